//! Host services: named methods a host offers its plugins beyond the fixed
//! host API (`org.get`, `robots.list`, `db.query`), each with the host
//! permission it requires and JSON schemas for its input and output.
//!
//! A host describes them in a [`HostServices`] registry and hands it over
//! through [`crate::HostApi::services`]; plugins call them through one host
//! function in every runtime, and [`crate::Boundary::call_service`] checks
//! the grant, the input's size and schema, runs the handler under the call's
//! deadline and checks its answer against the output schema.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tenon_manifest::{HostPermission, Permissions, ValueSchema};

use crate::host::Caller;

/// The failure a service's handler reports: a code of the host's choosing
/// (`not_found`, `conflict`…) and a message. The plugin receives both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceError {
    /// A short, stable code.
    pub code: String,
    /// What happened.
    pub message: String,
}

impl ServiceError {
    /// A failure with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The host's implementation of one service method. It is called only for a
/// caller holding the method's permission, with input that fits the
/// method's input schema, and its answer is checked against the output
/// schema before the plugin sees it.
#[async_trait]
pub trait ServiceHandler: Send + Sync + 'static {
    /// Answers one call.
    async fn call(&self, caller: &Caller, input: Value) -> Result<Value, ServiceError>;
}

/// A [`ServiceHandler`] made of an async closure (see [`service_fn`]).
pub struct ServiceFn<F>(F);

/// A [`ServiceHandler`] from an async closure taking the caller and the
/// input.
pub fn service_fn<F, Fut>(f: F) -> ServiceFn<F>
where
    F: Fn(Caller, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ServiceError>> + Send + 'static,
{
    ServiceFn(f)
}

#[async_trait]
impl<F, Fut> ServiceHandler for ServiceFn<F>
where
    F: Fn(Caller, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ServiceError>> + Send + 'static,
{
    async fn call(&self, caller: &Caller, input: Value) -> Result<Value, ServiceError> {
        (self.0)(caller.clone(), input).await
    }
}

/// The host permission a method requires, as the host's vocabulary spells
/// it: `read:org` (the action `read` of the kind `org`, granted by
/// `org = ["read"]`) or `org` (the whole kind, granted by `org = true`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePermission {
    kind: String,
    action: Option<String>,
}

impl ServicePermission {
    /// Parses `action:kind` or `kind`. Both are lower-case words
    /// (`a-z`, `0-9`, `_`, `-`, starting with a letter); the kind is a host
    /// kind, never one of the built-in ones (`network`, `kv`…), which no
    /// service can stand for.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (action, kind) = match text.split_once(':') {
            Some((action, kind)) => (Some(action), kind),
            None => (None, text),
        };
        for word in action.iter().chain([&kind]) {
            if !is_word(word) {
                return Err(format!(
                    "`{text}` is not a permission: write `action:kind` or `kind`, lower-case words such as `read:org`"
                ));
            }
        }
        if Permissions::BUILTIN_KINDS.contains(&kind) || matches!(kind, "hooks" | "config") {
            return Err(format!(
                "`{kind}` is a built-in permission kind: a service needs a kind of the host's own vocabulary, such as `org`"
            ));
        }
        Ok(Self {
            kind: kind.to_owned(),
            action: action.map(str::to_owned),
        })
    }

    /// The permission kind (`org`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The action (`read`), or `None` for the whole kind.
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }

    /// Whether `permissions` (a plugin's effective ones) hold it.
    pub fn held_by(&self, permissions: &Permissions) -> bool {
        match (permissions.host.get(&self.kind), &self.action) {
            (Some(HostPermission::Flag(true)), _) => true,
            (Some(HostPermission::Actions(actions)), Some(action)) => actions.contains(action),
            (Some(HostPermission::Scoped(scoped)), Some(action)) => scoped.contains_key(action),
            _ => false,
        }
    }

    /// How a manifest asks for it (`org = ["read"]`, `org = true`).
    pub fn manifest_form(&self) -> String {
        match &self.action {
            Some(action) => format!("{} = [\"{action}\"]", self.kind),
            None => format!("{} = true", self.kind),
        }
    }
}

impl std::fmt::Display for ServicePermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.action {
            Some(action) => write!(f, "{action}:{}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

/// A lower-case word: `a-z` first, then `a-z`, `0-9`, `_` or `-`, at most
/// 64 bytes.
fn is_word(text: &str) -> bool {
    text.len() <= 64
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Why a service method could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceDefinitionError {
    /// The name is not `service.method`.
    #[error(
        "`{name}` cannot name a service method: write `service.method` in lower-case words, such as `org.get`"
    )]
    Name {
        /// The name given.
        name: String,
    },
    /// The permission is not one a plugin can be granted.
    #[error("service method `{name}`: {reason}")]
    Permission {
        /// The method.
        name: String,
        /// Why.
        reason: String,
    },
    /// A schema is outside the subset Tenon enforces.
    #[error("service method `{name}`: its {which} schema is refused: {problems}")]
    Schema {
        /// The method.
        name: String,
        /// `input` or `output`.
        which: &'static str,
        /// Every problem, with its path.
        problems: String,
    },
    /// The name is registered already.
    #[error("service method `{name}` is registered twice: register each method once")]
    Duplicate {
        /// The method.
        name: String,
    },
}

/// One method of a service: its permission, schemas and handler.
#[derive(Clone)]
pub struct ServiceMethod {
    permission: ServicePermission,
    input: ValueSchema,
    output: ValueSchema,
    description: String,
    handler: Arc<dyn ServiceHandler>,
}

impl std::fmt::Debug for ServiceMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceMethod")
            .field("permission", &self.permission)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl ServiceMethod {
    /// The permission a caller must hold.
    pub fn permission(&self) -> &ServicePermission {
        &self.permission
    }

    /// The input's schema.
    pub fn input_schema(&self) -> &ValueSchema {
        &self.input
    }

    /// The output's schema.
    pub fn output_schema(&self) -> &ValueSchema {
        &self.output
    }

    /// What it does, in the host's words (may be empty).
    pub fn description(&self) -> &str {
        &self.description
    }

    pub(crate) fn handler(&self) -> &dyn ServiceHandler {
        &*self.handler
    }
}

/// What a host registers for one method (see [`HostServices::register`]).
pub struct MethodSpec {
    /// The permission, `action:kind` or `kind` (see [`ServicePermission`]).
    pub permission: String,
    /// The JSON schema the input must fit.
    pub input: Value,
    /// The JSON schema the host's answer must fit.
    pub output: Value,
    /// What it does (shown by `tenon info`).
    pub description: String,
    /// The implementation.
    pub handler: Arc<dyn ServiceHandler>,
}

impl std::fmt::Debug for MethodSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodSpec")
            .field("permission", &self.permission)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// The services a host offers, by `service.method` name.
#[derive(Debug, Clone, Default)]
pub struct HostServices {
    methods: BTreeMap<String, BTreeMap<String, ServiceMethod>>,
}

/// The registry of a host that offers no service.
static NONE: HostServices = HostServices {
    methods: BTreeMap::new(),
};

/// What a lookup of `service`, `method` found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// The method.
    Found(&'a ServiceMethod),
    /// No such service; the names the host offers.
    NoService(Vec<&'a str>),
    /// The service has no such method; its methods.
    NoMethod(Vec<&'a str>),
}

impl HostServices {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The empty registry of a host that offers no service.
    pub fn none() -> &'static Self {
        &NONE
    }

    /// Registers the method `name` (`service.method`: the method is the
    /// last dot-separated word, so `acme.db.query` is the method `query` of
    /// the service `acme.db`). Refuses a malformed name, a permission no
    /// plugin could be granted, a schema outside the subset Tenon enforces,
    /// and a name registered already.
    pub fn register(&mut self, name: &str, spec: MethodSpec) -> Result<(), ServiceDefinitionError> {
        let (service, method) = split_name(name).ok_or_else(|| ServiceDefinitionError::Name {
            name: name.to_owned(),
        })?;
        let permission = ServicePermission::parse(&spec.permission).map_err(|reason| {
            ServiceDefinitionError::Permission {
                name: name.to_owned(),
                reason,
            }
        })?;
        let schema = |value: Value, which: &'static str| {
            ValueSchema::new(value, which).map_err(|problems| ServiceDefinitionError::Schema {
                name: name.to_owned(),
                which,
                problems: problems
                    .iter()
                    .map(|d| format!("{}: {}", d.path, d.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            })
        };
        let input = schema(spec.input, "input")?;
        let output = schema(spec.output, "output")?;
        let methods = self.methods.entry(service.to_owned()).or_default();
        if methods.contains_key(method) {
            return Err(ServiceDefinitionError::Duplicate {
                name: name.to_owned(),
            });
        }
        methods.insert(
            method.to_owned(),
            ServiceMethod {
                permission,
                input,
                output,
                description: spec.description,
                handler: spec.handler,
            },
        );
        Ok(())
    }

    /// Whether no method is registered.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }

    /// Every method, as (`service.method`, method), in name order.
    pub fn methods(&self) -> impl Iterator<Item = (String, &ServiceMethod)> {
        self.methods.iter().flat_map(|(service, methods)| {
            methods
                .iter()
                .map(move |(method, m)| (format!("{service}.{method}"), m))
        })
    }

    /// Finds `method` of `service`.
    pub fn lookup(&self, service: &str, method: &str) -> Lookup<'_> {
        match self.methods.get(service) {
            None => Lookup::NoService(self.methods.keys().map(String::as_str).collect()),
            Some(methods) => match methods.get(method) {
                Some(found) => Lookup::Found(found),
                None => Lookup::NoMethod(methods.keys().map(String::as_str).collect()),
            },
        }
    }
}

/// `service.method` split at its last dot, each part lower-case words.
fn split_name(name: &str) -> Option<(&str, &str)> {
    let (service, method) = name.rsplit_once('.')?;
    (service.split('.').all(is_word) && is_word(method)).then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(permission: &str, input: Value) -> MethodSpec {
        MethodSpec {
            permission: permission.to_owned(),
            input,
            output: json!({}),
            description: String::new(),
            handler: Arc::new(service_fn(|_, input| async move { Ok(input) })),
        }
    }

    #[test]
    fn permissions_parse_and_are_held_only_as_granted() {
        let read_org = ServicePermission::parse("read:org").unwrap();
        assert_eq!((read_org.kind(), read_org.action()), ("org", Some("read")));
        assert_eq!(read_org.to_string(), "read:org");
        assert_eq!(read_org.manifest_form(), "org = [\"read\"]");
        let whole = ServicePermission::parse("org").unwrap();
        assert_eq!(whole.manifest_form(), "org = true");
        for bad in [
            "",
            ":org",
            "read:",
            "Read:org",
            "read:org:x",
            "read:kv",
            "network",
            "1org",
        ] {
            assert!(ServicePermission::parse(bad).is_err(), "{bad:?}");
        }
        let perms = |host: Vec<(&str, HostPermission)>| Permissions {
            host: host.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ..Permissions::default()
        };
        let actions =
            |a: &[&str]| HostPermission::Actions(a.iter().map(|s| (*s).to_owned()).collect());
        let cases = [
            (perms(vec![]), false, false),
            (perms(vec![("org", actions(&["read"]))]), true, false),
            (perms(vec![("org", actions(&["write"]))]), false, false),
            (perms(vec![("robots", actions(&["read"]))]), false, false),
            (perms(vec![("org", HostPermission::Flag(true))]), true, true),
            (
                perms(vec![("org", HostPermission::Flag(false))]),
                false,
                false,
            ),
            (
                perms(vec![(
                    "org",
                    HostPermission::Scoped([("read".to_owned(), vec!["acme".to_owned()])].into()),
                )]),
                true,
                false,
            ),
        ];
        for (i, (p, read, all)) in cases.iter().enumerate() {
            assert_eq!(read_org.held_by(p), *read, "case {i}: read:org");
            assert_eq!(whole.held_by(p), *all, "case {i}: org");
        }
    }

    #[test]
    fn registration_refuses_what_could_never_work() {
        let mut services = HostServices::new();
        services
            .register("org.get", spec("read:org", json!({"type": "object"})))
            .unwrap();
        services
            .register("acme.db.query", spec("db", json!({})))
            .unwrap();
        let refused = |services: &mut HostServices, name: &str, spec: MethodSpec| {
            services.register(name, spec).unwrap_err().to_string()
        };
        let error = refused(&mut services, "org.get", spec("read:org", json!({})));
        assert!(error.contains("registered twice"), "{error}");
        for name in ["org", "Org.get", "org..get", ".get", "org.", "org.get!"] {
            let error = refused(&mut services, name, spec("read:org", json!({})));
            assert!(
                error.contains("cannot name a service method"),
                "{name}: {error}"
            );
        }
        let error = refused(&mut services, "org.put", spec("write:secrets", json!({})));
        assert!(error.contains("built-in permission kind"), "{error}");
        let error = refused(
            &mut services,
            "org.put",
            spec("write:org", json!({"type": "object", "pattern": "x"})),
        );
        assert!(
            error.contains("its input schema is refused") && error.contains("input.pattern"),
            "{error}"
        );
        let names: Vec<String> = services.methods().map(|(name, _)| name).collect();
        assert_eq!(names, ["acme.db.query", "org.get"]);
        assert!(matches!(
            services.lookup("acme.db", "query"),
            Lookup::Found(_)
        ));
        assert!(matches!(services.lookup("org", "put"), Lookup::NoMethod(m) if m == ["get"]));
        assert!(
            matches!(services.lookup("orgs", "get"), Lookup::NoService(s) if s == ["acme.db", "org"])
        );
        assert!(HostServices::none().is_empty());
    }
}
