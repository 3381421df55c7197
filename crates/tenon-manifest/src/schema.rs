//! The manifest's own JSON Schema (draft 2020-12), for editors.
//!
//! Hand-written to follow the parser: every manifest the parser accepts is
//! valid against it (the fixtures check this), and it refuses what it can
//! express (unknown fields, wrong types, malformed ids, versions, sizes and
//! durations). Checks that need more than a schema (duplicates,
//! cross-references, host vocabularies) are the parser's alone.

use serde_json::{Value, json};

/// A pattern matching any of `words` in any letter case (ECMA-262 regular
/// expressions, which editors use, have no case-insensitive flag inline).
fn any_case(words: &[&str]) -> String {
    let alternatives: Vec<String> = words
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase()))
                .collect()
        })
        .collect();
    format!("^({})$", alternatives.join("|"))
}

/// The manifest's JSON Schema (draft 2020-12).
pub fn manifest_json_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://tenon.invalid/schemas/manifest-1.json",
        "title": "Tenon plugin manifest",
        "description": "tenon.toml / tenon.json / tenon.yaml, manifest_version 1. See docs/manifest.md.",
        "type": "object",
        "required": ["manifest_version", "plugin", "runtime"],
        "additionalProperties": false,
        "properties": {
            "manifest_version": { "description": "The manifest format version.", "const": 1 },
            "plugin": { "$ref": "#/$defs/plugin" },
            "engine": { "$ref": "#/$defs/engine" },
            "runtime": { "$ref": "#/$defs/runtime" },
            "limits": { "$ref": "#/$defs/limits" },
            "permissions": { "$ref": "#/$defs/permissions" },
            "hooks": { "type": "array", "items": { "$ref": "#/$defs/hook" } },
            "commands": { "type": "array", "items": { "$ref": "#/$defs/command" } },
            "endpoints": { "type": "array", "items": { "$ref": "#/$defs/endpoint" } },
            "activation": { "$ref": "#/$defs/activation" },
            "dependencies": {
                "description": "Other plugins it needs, by id.",
                "type": "object",
                "propertyNames": { "$ref": "#/$defs/pluginId" },
                "additionalProperties": { "$ref": "#/$defs/dependency" }
            },
            "provides": { "$ref": "#/$defs/provides" },
            "config": { "$ref": "#/$defs/config" }
        },
        "$defs": {
            "pluginId": {
                "description": "publisher/name: lowercase ascii letters, digits and '-', each part 1-64.",
                "type": "string",
                "pattern": "^[a-z0-9-]{1,64}/[a-z0-9-]{1,64}$"
            },
            "version": {
                "description": "A strict semver version, such as 1.2.0.",
                "type": "string",
                "pattern": "^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?(\\+[0-9a-zA-Z-]+(\\.[0-9a-zA-Z-]+)*)?$"
            },
            "versionReq": {
                "description": "A semver requirement, such as ^1.2, >=1.0, <2.0 or ~1.4.2.",
                "type": "string",
                "minLength": 1
            },
            "size": {
                "description": "A size: a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), or a whole number of bytes.",
                "oneOf": [
                    { "type": "integer", "minimum": 0 },
                    { "type": "string", "pattern": "^\\s*[0-9][0-9._]*\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\\s*$" }
                ]
            },
            "duration": {
                "description": "A duration: a number and a unit (ns, us, ms, s, m, h), or a whole number of milliseconds.",
                "oneOf": [
                    { "type": "integer", "minimum": 0 },
                    { "type": "string", "pattern": "^\\s*[0-9][0-9._]*\\s*(ns|us|µs|ms|s|m|h)?\\s*$" }
                ]
            },
            "strings": { "type": "array", "items": { "type": "string" } },
            "name": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:/-]{1,128}$"
            },
            "names": { "type": "array", "items": { "$ref": "#/$defs/name" } },
            "relativePath": {
                "description": "A path relative to the plugin's directory, without `..`.",
                "type": "string",
                "minLength": 1,
                "not": { "pattern": "^[/\\\\]|^[A-Za-z]:|(^|[/\\\\])\\.\\.([/\\\\]|$)" }
            },
            "data": {
                "description": "Any data but null (TOML has no null).",
                "type": ["string", "number", "boolean", "array", "object"],
                "items": { "$ref": "#/$defs/data" },
                "additionalProperties": { "$ref": "#/$defs/data" }
            },
            "plugin": {
                "type": "object",
                "required": ["id", "name", "version"],
                "additionalProperties": false,
                "properties": {
                    "id": { "$ref": "#/$defs/pluginId" },
                    "name": { "type": "string", "minLength": 1 },
                    "version": { "$ref": "#/$defs/version" },
                    "description": { "type": "string" },
                    "authors": { "$ref": "#/$defs/strings" },
                    "license": { "description": "An SPDX expression.", "type": "string", "minLength": 1 },
                    "homepage": { "type": "string", "pattern": "^https?://[^\\s/?#]+" },
                    "repository": { "type": "string", "pattern": "^https?://[^\\s/?#]+" },
                    "keywords": { "$ref": "#/$defs/strings" },
                    "categories": { "$ref": "#/$defs/strings" },
                    "capabilities": { "description": "From the host's capability vocabulary.", "$ref": "#/$defs/strings" }
                }
            },
            "engine": {
                "type": "object",
                "required": ["tenon"],
                "additionalProperties": false,
                "properties": {
                    "tenon": { "description": "The plugin API versions it was built for.", "$ref": "#/$defs/versionReq" },
                    "host": { "description": "The host application's versions it works with.", "$ref": "#/$defs/versionReq" },
                    "features": { "description": "Host features it needs.", "$ref": "#/$defs/strings" }
                }
            },
            "runtime": {
                "type": "object",
                "required": ["kind"],
                "additionalProperties": false,
                "properties": {
                    "kind": { "enum": ["component", "extism", "native", "process"] },
                    "module": { "$ref": "#/$defs/relativePath" },
                    "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                    "entry": { "type": "string", "minLength": 1 },
                    "command": { "$ref": "#/$defs/relativePath" },
                    "args": { "$ref": "#/$defs/strings" }
                }
            },
            "limits": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "memory": { "$ref": "#/$defs/size" },
                    "timeout": { "$ref": "#/$defs/duration" },
                    "fuel": { "type": "integer", "minimum": 1 },
                    "isolation": { "enum": ["reuse", "fresh"] },
                    "max_instances": { "type": "integer", "minimum": 1, "maximum": 4294967295u64 },
                    "wait_timeout": { "$ref": "#/$defs/duration" },
                    "stack": { "$ref": "#/$defs/size" },
                    "max_output": { "$ref": "#/$defs/size" }
                }
            },
            "hostPermission": {
                "description": "A host-defined permission: true, a list of actions, or actions to scopes.",
                "oneOf": [
                    { "type": "boolean" },
                    { "$ref": "#/$defs/strings" },
                    { "type": "object", "additionalProperties": { "$ref": "#/$defs/strings" } }
                ]
            },
            "permissions": {
                "type": "object",
                "properties": {
                    "network": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "outbound": {
                                "type": "array",
                                "items": {
                                    "type": "string",
                                    "pattern": "^(\\*\\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:([0-9]{1,5}|\\*))?$"
                                }
                            },
                            "methods": { "type": "array", "items": { "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] } },
                            "allow_private": { "type": "boolean" },
                            "max_response": { "$ref": "#/$defs/size" }
                        }
                    },
                    "filesystem": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["path"],
                            "additionalProperties": false,
                            "properties": {
                                "path": { "$ref": "#/$defs/relativePath" },
                                "mode": { "enum": ["read", "readwrite"] }
                            }
                        }
                    },
                    "kv": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": { "quota": { "$ref": "#/$defs/size" } }
                    },
                    "secrets": { "description": "Config keys holding secrets it may read.", "$ref": "#/$defs/strings" },
                    "events": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "publish": { "$ref": "#/$defs/strings" },
                            "subscribe": { "$ref": "#/$defs/strings" }
                        }
                    }
                },
                "additionalProperties": { "$ref": "#/$defs/hostPermission" }
            },
            "hook": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": { "$ref": "#/$defs/name" },
                    "priority": {
                        "description": "critical (1000), high (500), normal (100), low (50), cleanup (10) or an integer; higher runs first. A priority above the host's threshold (default 500) is a permission the operator grants (`hooks: priority N on HOOK`).",
                        "oneOf": [
                            { "type": "string", "pattern": any_case(&["critical", "high", "normal", "low", "cleanup"]) },
                            { "type": "integer", "minimum": -2147483648i64, "maximum": 2147483647 }
                        ]
                    },
                    "fail_policy": {
                        "description": "open: an error or timeout lets the chain go on; closed: it stops the host's operation, a permission the operator grants (`hooks: fail closed on HOOK`).",
                        "enum": ["open", "closed"]
                    },
                    "timeout": { "$ref": "#/$defs/duration" },
                    "retries": { "type": "integer", "minimum": 0 },
                    "backoff": {
                        "type": "object",
                        "required": ["delay"],
                        "additionalProperties": false,
                        "properties": {
                            "kind": { "enum": ["linear", "exponential"] },
                            "delay": { "$ref": "#/$defs/duration" }
                        }
                    }
                }
            },
            "command": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$" },
                    "description": { "type": "string" },
                    "function": { "type": "string", "minLength": 1 }
                }
            },
            "endpoint": {
                "type": "object",
                "required": ["path", "method", "function"],
                "additionalProperties": false,
                "properties": {
                    "path": { "type": "string", "pattern": "^/" },
                    "method": { "type": "string", "pattern": any_case(&["get", "post", "put", "patch", "delete", "head", "options"]) },
                    "function": { "type": "string", "minLength": 1 },
                    "auth": { "type": "boolean" },
                    "description": { "type": "string" },
                    "rate_limit": {
                        "type": "object",
                        "required": ["requests", "window"],
                        "additionalProperties": false,
                        "properties": {
                            "requests": { "type": "integer", "minimum": 1, "maximum": 4294967295u64 },
                            "window": { "$ref": "#/$defs/duration" }
                        }
                    }
                }
            },
            "activation": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "on_startup": { "type": "boolean" },
                    "on_hooks": { "$ref": "#/$defs/strings" },
                    "on_commands": { "$ref": "#/$defs/strings" },
                    "on_events": { "$ref": "#/$defs/strings" }
                }
            },
            "dependency": {
                "oneOf": [
                    { "$ref": "#/$defs/versionReq" },
                    {
                        "type": "object",
                        "required": ["version"],
                        "additionalProperties": false,
                        "properties": {
                            "version": { "$ref": "#/$defs/versionReq" },
                            "optional": { "type": "boolean" },
                            "scope": { "enum": ["runtime", "peer", "dev"] }
                        }
                    }
                ]
            },
            "provides": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "abilities": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["capability"],
                            "additionalProperties": false,
                            "properties": {
                                "capability": { "type": "string", "minLength": 1 },
                                "operations": { "$ref": "#/$defs/strings" }
                            }
                        }
                    },
                    "provider": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": false,
                        "properties": {
                            "name": { "type": "string", "minLength": 1 },
                            "oauth": { "type": "boolean" }
                        }
                    },
                    "integrations": { "$ref": "#/$defs/strings" },
                    "skills": { "$ref": "#/$defs/strings" }
                }
            },
            "configField": {
                "type": "object",
                "required": ["key", "type"],
                "additionalProperties": false,
                "properties": {
                    "key": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$" },
                    "type": { "enum": ["string", "integer", "number", "boolean", "array", "object"] },
                    "label": { "type": "string" },
                    "description": { "type": "string" },
                    "required": { "type": "boolean" },
                    "secret": { "type": "boolean" },
                    "default": { "$ref": "#/$defs/data" },
                    "enum": { "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/data" } },
                    "minimum": { "type": "number" },
                    "maximum": { "type": "number" },
                    "min_length": { "type": "integer", "minimum": 0 },
                    "max_length": { "type": "integer", "minimum": 0 }
                }
            },
            "config": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "fields": { "type": "array", "items": { "$ref": "#/$defs/configField" } },
                    "schema": {
                        "description": "A JSON Schema object (the subset documented in docs/manifest.md).",
                        "type": "object",
                        "additionalProperties": { "$ref": "#/$defs/data" }
                    },
                    "defaults": { "type": "object", "additionalProperties": { "$ref": "#/$defs/data" } },
                    "environments": {
                        "description": "Per environment (TENON_ENV), values that replace the defaults.",
                        "type": "object",
                        "propertyNames": { "pattern": "^[a-z0-9_-]{1,32}$" },
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": { "$ref": "#/$defs/data" }
                        }
                    }
                }
            }
        }
    })
}
