//! Semantic checks of a [`Manifest`]: what its types cannot say. They run on
//! parsed manifests (skipping what depends on a poisoned field) and on
//! manifests built in code ([`Manifest::validate`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::config;
use crate::context::ValidationContext;
use crate::diagnostic::{Code, Diagnostic, did_you_mean};
use crate::engine::{HostInfo, IncompatibilityReason, check_engine};
use crate::model::*;
use crate::path::{index, join};
use crate::units::{ByteSize, DurationSpec};

/// Runs every check; `good(path)` says whether the value at `path` is real
/// (not a stand-in for a value the walk refused), and `remap(path)` turns a
/// path of the manifest into the path in the source (they differ when the
/// walk left out list items that were not tables).
pub(crate) fn check(
    manifest: &Manifest,
    ctx: &ValidationContext,
    good: &dyn Fn(&str) -> bool,
    remap: &dyn Fn(&str) -> String,
) -> Vec<Diagnostic> {
    let mut c = Checker {
        m: manifest,
        ctx,
        good,
        remap,
        out: Vec::new(),
    };
    c.manifest_version();
    c.plugin();
    c.engine();
    c.runtime();
    c.limits();
    c.permissions();
    c.hooks();
    c.commands();
    c.endpoints();
    c.activation();
    c.dependencies();
    c.provides();
    c.config();
    c.out
}

struct Checker<'a> {
    m: &'a Manifest,
    ctx: &'a ValidationContext,
    good: &'a dyn Fn(&str) -> bool,
    remap: &'a dyn Fn(&str) -> String,
    out: Vec<Diagnostic>,
}

/// The characters allowed in hook, command and event names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/')
}

const MAX_NAME_LEN: usize = 128;

impl Checker<'_> {
    fn error(&mut self, code: Code, path: impl Into<String>, message: String) {
        self.out.push(Diagnostic::error(code, path, message));
    }

    fn warn(&mut self, code: Code, path: impl Into<String>, message: String) {
        self.out.push(Diagnostic::warning(code, path, message));
    }

    fn good(&self, path: &str) -> bool {
        (self.good)(path)
    }

    /// `list[i]` as the source spells it, for messages.
    fn item(&self, list: &str, i: usize) -> String {
        (self.remap)(&index(list, i))
    }

    /// Checks a name (hook, command, event topic): not empty, not too long,
    /// only `allowed` characters.
    fn name(
        &mut self,
        path: &str,
        name: &str,
        what: &str,
        allowed: fn(char) -> bool,
        rule: &str,
    ) -> bool {
        let problem = if name.is_empty() {
            Some("is empty".to_owned())
        } else if name.len() > MAX_NAME_LEN {
            Some(format!("is longer than {MAX_NAME_LEN} characters"))
        } else {
            name.chars()
                .find(|c| !allowed(*c))
                .map(|c| format!("holds {c:?}"))
        };
        match problem {
            Some(problem) => {
                self.error(
                    Code::InvalidValue,
                    path,
                    format!("the {what} `{name}` {problem}: {rule}"),
                );
                false
            }
            None => true,
        }
    }

    /// Reports values that appear twice in a list (a warning: harmless but
    /// probably a mistake).
    fn duplicates(&mut self, path: &str, values: &[String]) {
        let mut seen = BTreeSet::new();
        for (i, v) in values.iter().enumerate() {
            if !seen.insert(v.as_str()) {
                self.warn(
                    Code::DuplicateValue,
                    index(path, i),
                    format!("`{v}` is listed twice: remove one"),
                );
            }
        }
    }

    fn non_empty(&mut self, path: &str, values: &[String], what: &str) {
        for (i, v) in values.iter().enumerate() {
            if v.trim().is_empty() {
                self.error(
                    Code::InvalidValue,
                    index(path, i),
                    format!("an empty {what}: remove it or write one"),
                );
            }
        }
        self.duplicates(path, values);
    }

    fn size_limit(&mut self, path: &str, value: ByteSize, max: Option<ByteSize>, zero_ok: bool) {
        if !self.good(path) {
            return;
        }
        if value.0 == 0 && !zero_ok {
            self.error(
                Code::InvalidLimit,
                path,
                "a size of 0 leaves nothing: write a positive size such as \"64MiB\"".to_owned(),
            );
        } else if let Some(max) = max.filter(|max| value > *max) {
            self.error(
                Code::LimitExceedsMaximum,
                path,
                format!("{value} is above this host's maximum of {max}: ask for at most {max}"),
            );
        }
    }

    fn duration_limit(
        &mut self,
        path: &str,
        value: DurationSpec,
        max: Option<DurationSpec>,
        zero_ok: bool,
    ) {
        if !self.good(path) {
            return;
        }
        if value.0.is_zero() && !zero_ok {
            self.error(
                Code::InvalidLimit,
                path,
                "a duration of 0 allows nothing: write a positive duration such as \"1500ms\""
                    .to_owned(),
            );
        } else if let Some(max) = max.filter(|max| value > *max) {
            self.error(
                Code::LimitExceedsMaximum,
                path,
                format!("{value} is above this host's maximum of {max}: ask for at most {max}"),
            );
        }
    }

    fn count_limit(&mut self, path: &str, value: u64, max: Option<u64>, zero_ok: bool, what: &str) {
        if !self.good(path) {
            return;
        }
        if value == 0 && !zero_ok {
            self.error(
                Code::InvalidLimit,
                path,
                format!("0 {what} allows nothing: write at least 1"),
            );
        } else if let Some(max) = max.filter(|max| value > *max) {
            self.error(
                Code::LimitExceedsMaximum,
                path,
                format!(
                    "{value} {what} is above this host's maximum of {max}: ask for at most {max}"
                ),
            );
        }
    }

    /// A path inside the plugin's directory: relative, not empty, no `..`.
    fn relative_path(&mut self, path: &str, value: &str, root: &str) {
        if let Err(problem) = check_relative_path(value) {
            self.error(
                Code::InvalidPath,
                path,
                format!("`{value}` {problem}: write a path relative to {root}, such as `data`, that stays inside it"),
            );
        }
    }

    fn capability(&mut self, path: &str, name: &str) {
        if name.trim().is_empty() {
            self.error(
                Code::InvalidValue,
                path,
                "an empty capability: remove it or name one".to_owned(),
            );
            return;
        }
        if let Some(vocabulary) = &self.ctx.capabilities
            && !vocabulary.contains(name)
        {
            let hint = did_you_mean(name, vocabulary.iter().map(String::as_str));
            let known = vocabulary
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            self.error(
                Code::UnknownCapability,
                path,
                format!("`{name}` is not a capability this host knows{hint}; it knows: {known}"),
            );
        }
    }

    // ----- sections --------------------------------------------------------

    fn manifest_version(&mut self) {
        if self.good("manifest_version") && self.m.manifest_version != MANIFEST_VERSION {
            self.error(
                Code::UnsupportedManifestVersion,
                "manifest_version",
                format!(
                    "manifest version {} is not supported: this Tenon reads `manifest_version = {MANIFEST_VERSION}`",
                    self.m.manifest_version
                ),
            );
        }
    }

    fn plugin(&mut self) {
        if !self.good("plugin") {
            return;
        }
        let p = &self.m.plugin;
        if self.good("plugin.name") && p.name.trim().is_empty() {
            self.error(
                Code::InvalidValue,
                "plugin.name",
                "the name is empty: write a human name such as \"Slack Notifier\"".to_owned(),
            );
        }
        if self.good("plugin.description") && p.description.trim().is_empty() {
            self.warn(
                Code::MissingDescription,
                "plugin.description",
                "no description: add one or two sentences saying what the plugin does".to_owned(),
            );
        }
        match &p.license {
            None => self.warn(
                Code::MissingLicense,
                "plugin.license",
                "no license: add an SPDX expression such as \"MIT\" or \"Apache-2.0 OR MIT\""
                    .to_owned(),
            ),
            Some(license) => {
                if let Err(problem) = check_spdx(license) {
                    self.error(
                        Code::InvalidLicense,
                        "plugin.license",
                        format!("`{license}` is not an SPDX expression ({problem}): write one such as \"MIT\", \"Apache-2.0 OR MIT\" or \"LicenseRef-Acme\""),
                    );
                }
            }
        }
        for (key, value) in [("homepage", &p.homepage), ("repository", &p.repository)] {
            if let Some(url) = value
                && !is_http_url(url)
            {
                self.error(
                        Code::InvalidUrl,
                        join("plugin", key),
                        format!("`{url}` is not an http(s) URL: write one such as \"https://example.com/acme/plugin\""),
                    );
            }
        }
        self.non_empty("plugin.authors", &p.authors, "author");
        self.non_empty("plugin.keywords", &p.keywords, "keyword");
        self.non_empty("plugin.categories", &p.categories, "category");
        for (i, cap) in p.capabilities.iter().enumerate() {
            self.capability(&index("plugin.capabilities", i), cap);
        }
        self.duplicates("plugin.capabilities", &p.capabilities);
    }

    fn engine(&mut self) {
        let engine = &self.m.engine;
        self.non_empty("engine.features", &engine.features, "feature");
        let host = HostInfo {
            api_versions: &self.ctx.api_versions,
            host_version: self.ctx.host_version.as_ref(),
            features: self.ctx.features.as_ref(),
        };
        let Err(incompatibility) = check_engine(engine, &host) else {
            return;
        };
        for reason in incompatibility.reasons {
            let path = match &reason {
                // An empty list of served versions means "not checked" here.
                IncompatibilityReason::Api { .. } if self.ctx.api_versions.is_empty() => continue,
                IncompatibilityReason::Api { .. } => "engine.tenon",
                IncompatibilityReason::Host { .. } => "engine.host",
                IncompatibilityReason::Features { .. } => "engine.features",
            };
            if self.good(path) {
                self.error(
                    Code::IncompatibleEngine,
                    path,
                    format!("this host cannot run the plugin: it {reason}"),
                );
            }
        }
    }

    fn runtime(&mut self) {
        if !self.good("runtime") {
            return;
        }
        let r = &self.m.runtime;
        let kind_known = self.good("runtime.kind");
        if kind_known && r.kind.is_wasm() && r.module.is_none() {
            self.error(
                Code::MissingModule,
                "runtime.module",
                format!(
                    "the {} runtime runs a WebAssembly module: add `module = \"plugin.wasm\"`, relative to the plugin directory",
                    r.kind
                ),
            );
        }
        if let Some(module) = &r.module {
            self.relative_path("runtime.module", module, "the plugin directory");
        }
        if let Some(sha) = &r.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            self.error(
                    Code::InvalidSha256,
                    "runtime.sha256",
                    format!("`{sha}` is not a sha256: write 64 lowercase hex digits (the output of `sha256sum`)"),
                );
        }
        if kind_known && r.kind == RuntimeKind::Process && r.command.is_none() {
            self.error(
                Code::MissingCommand,
                "runtime.command",
                "the process runtime starts an executable: add `command = \"bin/plugin\"`, relative to the plugin directory".to_owned(),
            );
        }
        if let Some(command) = &r.command {
            self.relative_path("runtime.command", command, "the plugin directory");
        }
        if let Some(entry) = &r.entry
            && entry.trim().is_empty()
        {
            self.error(
                Code::InvalidValue,
                "runtime.entry",
                "the entry is empty: name the entry point the host registered, or remove it"
                    .to_owned(),
            );
        }
        if !kind_known {
            return;
        }
        let unused: [(&str, bool, &str); 5] = [
            (
                "module",
                r.module.is_some() && !r.kind.is_wasm(),
                "component and extism",
            ),
            (
                "sha256",
                r.sha256.is_some() && !r.kind.is_wasm(),
                "component and extism",
            ),
            (
                "entry",
                r.entry.is_some() && r.kind != RuntimeKind::Native,
                "native",
            ),
            (
                "command",
                r.command.is_some() && r.kind != RuntimeKind::Process,
                "process",
            ),
            (
                "args",
                !r.args.is_empty() && r.kind != RuntimeKind::Process,
                "process",
            ),
        ];
        for (field, is_unused, kinds) in unused {
            if is_unused {
                self.warn(
                    Code::UnusedField,
                    join("runtime", field),
                    format!(
                        "`{field}` is used only by the {kinds} runtime, not {}: remove it",
                        r.kind
                    ),
                );
            }
        }
    }

    fn limits(&mut self) {
        let l = &self.m.limits;
        let max = &self.ctx.maxima;
        self.size_limit("limits.memory", l.memory, Some(max.memory), false);
        self.duration_limit("limits.timeout", l.timeout, Some(max.timeout), false);
        if let Some(fuel) = l.fuel {
            self.count_limit("limits.fuel", fuel, max.fuel, false, "fuel");
        }
        self.count_limit(
            "limits.max_instances",
            u64::from(l.max_instances),
            Some(u64::from(max.max_instances)),
            false,
            "instances",
        );
        self.duration_limit(
            "limits.wait_timeout",
            l.wait_timeout,
            Some(max.wait_timeout),
            true,
        );
        if let Some(stack) = l.stack {
            self.size_limit("limits.stack", stack, Some(max.stack), false);
        }
        if let Some(output) = l.max_output {
            self.size_limit("limits.max_output", output, Some(max.max_output), false);
        }
    }

    fn permissions(&mut self) {
        let p = &self.m.permissions;
        if let Some(network) = &p.network {
            for (i, method) in network.methods.iter().enumerate() {
                if !EndpointDecl::METHODS.contains(&method.as_str()) {
                    self.error(
                        Code::InvalidValue,
                        index("permissions.network.methods", i),
                        format!(
                            "`{method}` is not an HTTP method: use one of {}",
                            EndpointDecl::METHODS.join(" | ")
                        ),
                    );
                }
            }
            self.duplicates("permissions.network.methods", &network.methods);
            if let Some(max_response) = network.max_response {
                self.size_limit(
                    "permissions.network.max_response",
                    max_response,
                    Some(self.ctx.maxima.max_response),
                    false,
                );
            }
        }
        let mut seen = BTreeMap::new();
        for (i, fs) in p.filesystem.iter().enumerate() {
            let path = join(&index("permissions.filesystem", i), "path");
            if !self.good(&path) {
                continue;
            }
            self.relative_path(&path, &fs.path, "the plugin's data directory");
            if let Some(first) = seen.insert(fs.path.as_str(), i) {
                let first = self.item("permissions.filesystem", first);
                self.warn(
                    Code::DuplicateValue,
                    path,
                    format!(
                        "`{}` is already listed at {first}: keep one entry per directory",
                        fs.path
                    ),
                );
            }
        }
        if let Some(KvPermission { quota: Some(quota) }) = p.kv {
            self.size_limit(
                "permissions.kv.quota",
                quota,
                Some(self.ctx.maxima.kv_quota),
                false,
            );
        }
        self.secrets();
        if let Some(events) = &p.events {
            for (field, topics) in [
                ("publish", &events.publish),
                ("subscribe", &events.subscribe),
            ] {
                let path = join("permissions.events", field);
                for (i, topic) in topics.iter().enumerate() {
                    let path = index(&path, i);
                    let named = self.name(
                        &path,
                        topic,
                        "event topic",
                        |c| is_name_char(c) || c == '*',
                        "write a topic or pattern of letters, digits, '.', '_', '-', ':', '/' and '*', such as `notify.*`",
                    );
                    if let (true, Err(problem)) = (named, tenon_types::TopicPattern::check(topic)) {
                        self.error(
                            Code::InvalidValue,
                            &path,
                            format!("the event topic pattern `{topic}` is malformed: {problem}"),
                        );
                    }
                }
                self.duplicates(&path, topics);
            }
        }
        for (kind, permission) in &p.host {
            let path = join("permissions", kind);
            if !self.ctx.permission_kinds.contains(kind) {
                let known: Vec<&str> = Permissions::BUILTIN_KINDS
                    .iter()
                    .copied()
                    .chain(self.ctx.permission_kinds.iter().map(String::as_str))
                    .collect();
                let hint = did_you_mean(kind, known.iter().copied());
                self.error(
                    Code::UnknownPermission,
                    &path,
                    format!(
                        "`{kind}` is not a permission kind{hint}: use one of {} (the host may declare more)",
                        known.join(", ")
                    ),
                );
            }
            match permission {
                HostPermission::Flag(_) => {}
                HostPermission::Actions(actions) => self.non_empty(&path, actions, "action"),
                HostPermission::Scoped(scoped) => {
                    for (action, scopes) in scoped {
                        let action_path = join(&path, action);
                        if action.trim().is_empty() {
                            self.error(
                                Code::InvalidValue,
                                &action_path,
                                "an empty action: name one such as `read`".to_owned(),
                            );
                        }
                        self.non_empty(&action_path, scopes, "scope");
                    }
                }
            }
        }
    }

    /// `permissions.secrets` against the config keys, both ways.
    fn secrets(&mut self) {
        if !self.good("config") {
            return;
        }
        let secrets = &self.m.permissions.secrets;
        let config = &self.m.config;
        let keys = config.keys();
        for (i, secret) in secrets.iter().enumerate() {
            let path = index("permissions.secrets", i);
            if !keys.contains(&secret.as_str()) {
                let hint = did_you_mean(secret, keys.iter().copied());
                self.error(
                    Code::UnknownSecret,
                    path,
                    format!("`{secret}` is not a config key{hint}: a secret names a config field marked `secret = true`"),
                );
            } else if !config.is_secret(secret) {
                self.warn(
                    Code::SecretMismatch,
                    path,
                    format!("the config key `{secret}` is listed as a secret but not marked `secret = true`: mark it, so it is stored encrypted and redacted"),
                );
            }
        }
        self.duplicates("permissions.secrets", secrets);
        for key in keys {
            if config.is_secret(key) && !secrets.iter().any(|s| s == key) {
                self.warn(
                    Code::SecretMismatch,
                    "permissions.secrets",
                    format!("the config key `{key}` is secret but not listed in `permissions.secrets`, so the plugin cannot read it: add \"{key}\""),
                );
            }
        }
    }

    fn hooks(&mut self) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, hook) in self.m.hooks.iter().enumerate() {
            let path = index("hooks", i);
            let name_path = join(&path, "name");
            if !self.good(&name_path) {
                continue;
            }
            if self.name(
                &name_path,
                &hook.name,
                "hook name",
                is_name_char,
                "write the host's hook name, such as `response.pre_deliver`",
            ) {
                if let Some(first) = seen.insert(hook.name.as_str(), i) {
                    let first = self.item("hooks", first);
                    self.error(
                        Code::DuplicateHook,
                        &name_path,
                        format!(
                            "the hook `{}` is already declared at {first}: declare each hook once",
                            hook.name
                        ),
                    );
                } else if let Some(known) = &self.ctx.hooks
                    && !known.contains(&hook.name)
                {
                    let hint = did_you_mean(&hook.name, known.iter().map(String::as_str));
                    self.warn(
                            Code::UnknownHook,
                            &name_path,
                            format!("this host declares no hook `{}`{hint}; the handler will never run here", hook.name),
                        );
                }
            }
            if let Some(timeout) = hook.timeout {
                self.duration_limit(
                    &join(&path, "timeout"),
                    timeout,
                    Some(self.ctx.maxima.timeout),
                    false,
                );
            }
            self.count_limit(
                &join(&path, "retries"),
                u64::from(hook.retries),
                Some(u64::from(self.ctx.maxima.retries)),
                true,
                "retries",
            );
        }
    }

    fn commands(&mut self) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, command) in self.m.commands.iter().enumerate() {
            let path = join(&index("commands", i), "name");
            if !self.good(&path) {
                continue;
            }
            let valid = self.name(
                &path,
                &command.name,
                "command name",
                |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
                "write letters, digits, '_', '.' or '-' (callers address it as `plugin-id:name`)",
            );
            if valid && let Some(first) = seen.insert(command.name.as_str(), i) {
                let first = self.item("commands", first);
                self.error(
                        Code::DuplicateCommand,
                        &path,
                        format!("the command `{}` is already declared at {first}: declare each command once", command.name),
                    );
            }
            if let Some(function) = &command.function
                && function.trim().is_empty()
            {
                self.error(Code::InvalidValue, join(&index("commands", i), "function"), "the function is empty: name the exported function, or remove it to use the command's name".to_owned());
            }
        }
    }

    fn endpoints(&mut self) {
        let mut seen: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (i, endpoint) in self.m.endpoints.iter().enumerate() {
            let path = index("endpoints", i);
            let route = &endpoint.path;
            let route_good = self.good(&join(&path, "path"));
            let method_good = self.good(&join(&path, "method"));
            if route_good
                && (!route.starts_with('/')
                    || route.chars().any(|c| c.is_whitespace() || c.is_control())
                    || route.split('/').any(|segment| segment == ".."))
            {
                self.error(
                    Code::InvalidPath,
                    join(&path, "path"),
                    format!("`{route}` is not a route: write one that starts with '/', without spaces or `..`, such as `/webhook`"),
                );
            }
            if method_good && !EndpointDecl::METHODS.contains(&endpoint.method.as_str()) {
                self.error(
                    Code::InvalidValue,
                    join(&path, "method"),
                    format!(
                        "`{}` is not an HTTP method: use one of {}",
                        endpoint.method,
                        EndpointDecl::METHODS.join(" | ")
                    ),
                );
            }
            if self.good(&join(&path, "function")) && endpoint.function.trim().is_empty() {
                self.error(
                    Code::InvalidValue,
                    join(&path, "function"),
                    "the function is empty: name the exported function that serves the endpoint"
                        .to_owned(),
                );
            }
            if let Some(rate) = &endpoint.rate_limit
                && rate.requests == 0
                && self.good(&join(&path, "rate_limit.requests"))
            {
                self.error(
                    Code::InvalidValue,
                    join(&path, "rate_limit.requests"),
                    "0 requests allows nothing: write at least 1".to_owned(),
                );
            }
            if route_good
                && method_good
                && let Some(first) = seen.insert((endpoint.method.as_str(), route.as_str()), i)
            {
                let first = self.item("endpoints", first);
                self.error(
                    Code::DuplicateEndpoint,
                    &path,
                    format!(
                        "{} {route} is already declared at {first}: declare each route once",
                        endpoint.method
                    ),
                );
            }
        }
    }

    fn activation(&mut self) {
        let a = &self.m.activation;
        if self.good("hooks") {
            for (i, hook) in a.on_hooks.iter().enumerate() {
                if !self.m.hooks.iter().any(|h| &h.name == hook) {
                    let hint = did_you_mean(hook, self.m.hooks.iter().map(|h| h.name.as_str()));
                    self.error(
                        Code::UndeclaredHook,
                        index("activation.on_hooks", i),
                        format!("`{hook}` is not among the plugin's [[hooks]]{hint}: declare it there or remove it here"),
                    );
                }
            }
        }
        if self.good("commands") {
            for (i, command) in a.on_commands.iter().enumerate() {
                if !self.m.commands.iter().any(|c| &c.name == command) {
                    let hint =
                        did_you_mean(command, self.m.commands.iter().map(|c| c.name.as_str()));
                    self.error(
                        Code::UndeclaredCommand,
                        index("activation.on_commands", i),
                        format!("`{command}` is not among the plugin's [[commands]]{hint}: declare it there or remove it here"),
                    );
                }
            }
        }
        let subscribed: &[String] = self
            .m
            .permissions
            .events
            .as_ref()
            .map_or(&[], |e| e.subscribe.as_slice());
        for (i, topic) in a.on_events.iter().enumerate() {
            if !subscribed
                .iter()
                .any(|pattern| tenon_types::topic_matches(pattern, topic))
            {
                self.warn(
                    Code::UndeclaredEvent,
                    index("activation.on_events", i),
                    format!("the plugin does not subscribe to `{topic}`, so it cannot be started by it: add it to permissions.events.subscribe"),
                );
            }
        }
        self.duplicates("activation.on_hooks", &a.on_hooks);
        self.duplicates("activation.on_commands", &a.on_commands);
        self.duplicates("activation.on_events", &a.on_events);
    }

    fn dependencies(&mut self) {
        if !self.good("plugin.id") {
            return;
        }
        let id = &self.m.plugin.id;
        if self.m.dependencies.contains_key(id) {
            self.error(
                Code::SelfDependency,
                join("dependencies", id.as_str()),
                format!("`{id}` depends on itself: remove this entry"),
            );
        }
    }

    fn provides(&mut self) {
        let p = &self.m.provides;
        for (i, ability) in p.abilities.iter().enumerate() {
            let path = index("provides.abilities", i);
            if self.good(&join(&path, "capability")) {
                self.capability(&join(&path, "capability"), &ability.capability);
            }
            self.non_empty(&join(&path, "operations"), &ability.operations, "operation");
        }
        if let Some(provider) = &p.provider
            && self.good("provides.provider.name")
            && provider.name.trim().is_empty()
        {
            self.error(
                Code::InvalidValue,
                "provides.provider.name",
                "the provider's name is empty: name it, such as \"github\"".to_owned(),
            );
        }
        self.non_empty("provides.integrations", &p.integrations, "integration");
        self.non_empty("provides.skills", &p.skills, "skill");
    }

    fn config(&mut self) {
        self.out
            .extend(config::check_spec(&self.m.config, self.good, self.remap));
    }
}

/// Why `path` is not a clean relative path.
pub(crate) fn check_relative_path(path: &str) -> Result<(), &'static str> {
    if path.trim().is_empty() {
        return Err("is empty");
    }
    if path.contains('\0') {
        return Err("holds a NUL character");
    }
    let bytes = path.as_bytes();
    if path.starts_with(['/', '\\'])
        || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':')
    {
        return Err("is absolute");
    }
    if path.split(['/', '\\']).any(|segment| segment == "..") {
        return Err("climbs out with `..`");
    }
    Ok(())
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// A syntax check of an SPDX license expression: identifiers (with an
/// optional `+`), `AND`, `OR`, `WITH` and parentheses. Identifiers are not
/// checked against the SPDX list.
pub(crate) fn check_spdx(expression: &str) -> Result<(), String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in expression.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !word.is_empty() {
                tokens.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    if tokens.is_empty() {
        return Err("it is empty".to_owned());
    }
    let mut at = 0;
    spdx_expr(&tokens, &mut at, 0)?;
    if at != tokens.len() {
        return Err(format!("unexpected `{}`", tokens[at]));
    }
    Ok(())
}

fn is_spdx_operator(token: &str) -> bool {
    matches!(token, "AND" | "OR" | "WITH" | "and" | "or" | "with")
}

fn spdx_expr(tokens: &[String], at: &mut usize, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err("parentheses are nested too deep".to_owned());
    }
    spdx_term(tokens, at, depth)?;
    while let Some(op) = tokens.get(*at) {
        if matches!(op.as_str(), "AND" | "OR" | "and" | "or") {
            *at += 1;
            spdx_term(tokens, at, depth)?;
        } else {
            break;
        }
    }
    Ok(())
}

fn spdx_term(tokens: &[String], at: &mut usize, depth: usize) -> Result<(), String> {
    let Some(token) = tokens.get(*at) else {
        return Err("it ends where a license was expected".to_owned());
    };
    *at += 1;
    if token == "(" {
        spdx_expr(tokens, at, depth + 1)?;
        if tokens.get(*at).map(String::as_str) != Some(")") {
            return Err("a `(` is never closed".to_owned());
        }
        *at += 1;
        return Ok(());
    }
    spdx_id(token)?;
    if tokens.get(*at).is_some_and(|t| t == "WITH" || t == "with") {
        *at += 1;
        let exception = tokens
            .get(*at)
            .ok_or_else(|| "`WITH` must be followed by an exception".to_owned())?;
        *at += 1;
        spdx_id(exception)?;
    }
    Ok(())
}

fn spdx_id(token: &str) -> Result<(), String> {
    let id = token.strip_suffix('+').unwrap_or(token);
    if is_spdx_operator(id) || id == "(" || id == ")" {
        return Err(format!("`{token}` where a license was expected"));
    }
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    {
        return Err(format!("`{token}` is not a license identifier"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx() {
        for ok in [
            "MIT",
            "Apache-2.0 OR MIT",
            "(MIT AND BSD-3-Clause) OR GPL-2.0+",
            "GPL-2.0-only WITH Classpath-exception-2.0",
            "LicenseRef-Acme",
        ] {
            assert_eq!(check_spdx(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "my license",
            "MIT OR",
            "(MIT",
            "MIT)",
            "AND",
            "MIT/Apache",
        ] {
            assert!(check_spdx(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn relative_paths() {
        for ok in ["data", "a/b", "./x", "a..b"] {
            assert_eq!(check_relative_path(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "is empty"),
            ("/etc", "is absolute"),
            ("C:\\x", "is absolute"),
            ("../x", "climbs out with `..`"),
            ("a/../../b", "climbs out with `..`"),
            ("a\\..\\b", "climbs out with `..`"),
        ] {
            assert_eq!(check_relative_path(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn event_patterns_have_whole_segment_wildcards() {
        let manifest = |pattern: &str| {
            format!(
                "manifest_version = 1\n[plugin]\nid = \"acme/p\"\nname = \"P\"\nversion = \"1.0.0\"\n[runtime]\nkind = \"native\"\nentry = \"p\"\n[permissions]\nevents = {{ subscribe = [\"{pattern}\"] }}\n"
            )
        };
        let parse = |pattern: &str| {
            crate::parse(
                &manifest(pattern),
                crate::Format::Toml,
                &ValidationContext::default(),
            )
            .into_result()
        };
        for good in ["notify.*", "notify.**", "**", "a.*.c"] {
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in ["notify*", "a.***", "*x.y"] {
            let problems = parse(bad).expect_err(bad);
            assert!(
                problems
                    .iter()
                    .any(|d| d.message.contains("a wildcard is a whole segment")),
                "{bad}: {problems:?}"
            );
        }
    }
}
