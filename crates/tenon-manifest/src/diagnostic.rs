//! Diagnostics: what is wrong with a manifest (or a config value), where, and
//! what would be right.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The manifest is refused.
    Error,
    /// Allowed, but suspicious.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// A diagnostic's stable code. The kebab-case text ([`Code::as_str`])
        /// never changes meaning once released; `docs/manifest.md` lists them
        /// all.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable kebab-case text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// The code spelled `text`, if any.
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Code::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// The document is not well-formed TOML, JSON or YAML.
    Syntax = "syntax",
    /// The input is larger than the limit, or a string or list is too long.
    TooLarge = "too-large",
    /// Tables and lists are nested deeper than the limit.
    TooDeep = "too-deep",
    /// A YAML feature Tenon refuses (aliases, tags, several documents, complex keys).
    UnsupportedYaml = "unsupported-yaml",
    /// A key appears twice in the same table.
    DuplicateKey = "duplicate-key",
    /// A field the format does not know.
    UnknownField = "unknown-field",
    /// A required field is absent.
    MissingField = "missing-field",
    /// A value of the wrong type (a number where a string belongs, a null…).
    WrongType = "wrong-type",
    /// A value outside the allowed set or range.
    InvalidValue = "invalid-value",
    /// `manifest_version` is not 1.
    UnsupportedManifestVersion = "unsupported-manifest-version",
    /// A plugin id is not `publisher/name`.
    InvalidId = "invalid-id",
    /// A version is not strict semver.
    InvalidVersion = "invalid-version",
    /// A version requirement does not parse.
    InvalidVersionReq = "invalid-version-req",
    /// A permission kind that is neither built in nor declared by the host.
    UnknownPermission = "unknown-permission",
    /// A capability outside the host's vocabulary.
    UnknownCapability = "unknown-capability",
    /// A hook the host does not declare (a warning: the hook may be newer than the host).
    UnknownHook = "unknown-hook",
    /// A path that is empty, absolute, or climbs out with `..`.
    InvalidPath = "invalid-path",
    /// A malformed host allowlist entry.
    InvalidHostPattern = "invalid-host-pattern",
    /// Two `[[hooks]]` with the same name.
    DuplicateHook = "duplicate-hook",
    /// Two `[[commands]]` with the same name.
    DuplicateCommand = "duplicate-command",
    /// Two `[[endpoints]]` with the same method and path.
    DuplicateEndpoint = "duplicate-endpoint",
    /// Two config fields with the same key.
    DuplicateConfigKey = "duplicate-config-key",
    /// The same value twice in a list where that means nothing.
    DuplicateValue = "duplicate-value",
    /// A plugin depends on itself.
    SelfDependency = "self-dependency",
    /// A WebAssembly runtime without `module`.
    MissingModule = "missing-module",
    /// A process runtime without `command`.
    MissingCommand = "missing-command",
    /// A field that the chosen runtime ignores.
    UnusedField = "unused-field",
    /// `runtime.sha256` is not 64 lowercase hex digits.
    InvalidSha256 = "invalid-sha256",
    /// A size or duration that does not parse, or is zero where that makes no sense.
    InvalidLimit = "invalid-limit",
    /// A limit above what the host allows.
    LimitExceedsMaximum = "limit-exceeds-maximum",
    /// A config default that does not fit its field.
    InvalidDefault = "invalid-default",
    /// `config.fields` and `config.schema` both given, or a malformed config schema.
    InvalidConfigSchema = "invalid-config-schema",
    /// A JSON Schema keyword Tenon's config validator does not enforce.
    UnsupportedSchemaKeyword = "unsupported-schema-keyword",
    /// `permissions.secrets` names a key that is not a config key.
    UnknownSecret = "unknown-secret",
    /// A secret config key the plugin is not allowed to read, or a listed secret that is not marked secret.
    SecretMismatch = "secret-mismatch",
    /// `activation.on_hooks` names a hook the plugin does not handle.
    UndeclaredHook = "undeclared-hook",
    /// `activation.on_commands` names a command the plugin does not declare.
    UndeclaredCommand = "undeclared-command",
    /// `activation.on_events` names a topic the plugin does not subscribe to.
    UndeclaredEvent = "undeclared-event",
    /// The host cannot meet `[engine]`.
    IncompatibleEngine = "incompatible-engine",
    /// `homepage` or `repository` is not an http(s) URL.
    InvalidUrl = "invalid-url",
    /// `license` is not an SPDX expression.
    InvalidLicense = "invalid-license",
    /// No `license`.
    MissingLicense = "missing-license",
    /// No `description`.
    MissingDescription = "missing-description",
    /// No `[engine]` section.
    MissingEngine = "missing-engine",
    /// A config key that the plugin does not declare.
    UnknownConfigKey = "unknown-config-key",
    /// A required config key without a value.
    MissingConfig = "missing-config",
    /// A config value of the wrong type, outside its enum or range.
    InvalidConfigValue = "invalid-config-value",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Code::from_name(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a diagnostic code")))
    }
}

/// One problem: its severity, stable code, the path of the field
/// (`permissions.filesystem[0].path`), a message saying what is wrong and what
/// would be right, and where the format gives it, a 1-based line and column.
///
/// Serializes to JSON as `{"severity", "code", "path", "message", "line",
/// "column"}`, with `null` line and column when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// The field's path; empty for the whole document.
    pub path: String,
    /// What is wrong and what would be right.
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column (in characters), when known.
    pub column: Option<u32>,
}

impl Diagnostic {
    /// An error without a position.
    pub fn error(code: Code, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            path: path.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    /// A warning without a position.
    pub fn warning(code: Code, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, path, message)
        }
    }

    /// Sets the position.
    #[must_use]
    pub fn at(mut self, pos: Option<Pos>) -> Self {
        self.line = pos.map(|p| p.line);
        self.column = pos.map(|p| p.column);
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `[line:column: ]severity[code] path: message`
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "{line}:{}: ", self.column.unwrap_or(1))?;
        }
        write!(f, "{}[{}] ", self.severity, self.code)?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// A 1-based line and column (in characters) in a source document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

/// The closest of `candidates` to `input`, when close enough to suggest.
pub(crate) fn suggest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    // `fail_open` for `open`, `read:org` for `org`: a candidate inside the input.
    let affixed = candidates.iter().copied().find(|c| {
        let c = c.to_ascii_lowercase();
        c.len() >= 3
            && c != lower
            && (lower.ends_with(&c) || lower.starts_with(&c))
            && lower.len() > c.len()
            && !lower.as_bytes()[if lower.ends_with(&c) {
                lower.len() - c.len() - 1
            } else {
                c.len()
            }]
            .is_ascii_alphanumeric()
    });
    if affixed.is_some() {
        return affixed;
    }
    candidates
        .into_iter()
        .map(|c| {
            let score = strsim::jaro_winkler(&lower, &c.to_ascii_lowercase());
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` or nothing.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    match suggest(input, candidates) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}
