//! The validating walk from the positioned tree to a [`Manifest`]: shapes and
//! types. Every problem is reported and the walk goes on; a field that is
//! wrong gets a stand-in value and its path is marked *poisoned*, so that the
//! semantic checks that follow ([`crate::validate`]) skip what depends on it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use semver::{Version, VersionReq};

use crate::diagnostic::{Code, Diagnostic, Pos, did_you_mean};
use crate::id::PluginId;
use crate::model::*;
use crate::path::{index, join};
use crate::tree::{Entry, Node, Value};
use crate::units::{ByteSize, DurationSpec};

/// What the walk found.
#[derive(Debug)]
pub(crate) struct Walked {
    /// The manifest, with stand-ins for the poisoned fields; `None` when the
    /// document is not a table at all.
    pub(crate) manifest: Option<Manifest>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// Paths whose values are stand-ins.
    pub(crate) poisoned: Vec<String>,
    /// Where each visited path starts.
    pub(crate) positions: HashMap<String, Pos>,
    /// For each list the walk left items out of: the source index of each
    /// item kept.
    pub(crate) index_maps: HashMap<String, Vec<usize>>,
}

/// Walks the document.
pub(crate) fn walk(root: &Node) -> Walked {
    let mut w = Walker {
        diagnostics: Vec::new(),
        poisoned: Vec::new(),
        positions: HashMap::new(),
        index_maps: HashMap::new(),
    };
    let manifest = w.manifest(root);
    Walked {
        manifest,
        diagnostics: w.diagnostics,
        poisoned: w.poisoned,
        positions: w.positions,
        index_maps: w.index_maps,
    }
}

const ROOT_FIELDS: &[&str] = &[
    "manifest_version",
    "plugin",
    "engine",
    "runtime",
    "limits",
    "permissions",
    "hooks",
    "commands",
    "endpoints",
    "activation",
    "dependencies",
    "provides",
    "config",
];

/// A table being walked.
struct Table<'n> {
    entries: &'n [Entry],
    pos: Option<Pos>,
    path: String,
}

impl<'n> Table<'n> {
    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key == key)
    }

    /// `in [plugin]`, or `at the top level`.
    fn place(&self) -> String {
        if self.path.is_empty() {
            "at the top level".to_owned()
        } else {
            format!("in `{}`", self.path)
        }
    }
}

struct Walker {
    diagnostics: Vec<Diagnostic>,
    poisoned: Vec<String>,
    positions: HashMap<String, Pos>,
    index_maps: HashMap<String, Vec<usize>>,
}

impl Walker {
    // ----- reporting -------------------------------------------------------

    fn error(&mut self, code: Code, path: &str, message: String, pos: Option<Pos>) {
        self.diagnostics
            .push(Diagnostic::error(code, path, message).at(pos));
        self.poisoned.push(path.to_owned());
    }

    fn wrong(&mut self, node: &Node, path: &str, expected: &str) {
        let found = node.value.describe();
        let wants_text = ["a string", "a version", "a size", "a duration"]
            .iter()
            .any(|t| expected.starts_with(t));
        let hint = match &node.value {
            Value::Null => {
                ": a manifest holds no nulls (TOML cannot); remove the field to use its default"
                    .to_owned()
            }
            Value::Datetime(_) => ": dates are TOML-only; write it as a string".to_owned(),
            Value::Int(n) if wants_text => format!(" ({n}): quote it, \"{n}\""),
            Value::Float(f) if wants_text => format!(" ({f:?}): quote it, \"{f:?}\""),
            Value::Str(s)
                if expected.contains("`true`")
                    && matches!(
                        s.to_ascii_lowercase().as_str(),
                        "yes" | "no" | "on" | "off" | "y" | "n"
                    ) =>
            {
                format!(" (`{s}`): write true or false, unquoted")
            }
            _ => String::new(),
        };
        self.error(
            Code::WrongType,
            path,
            format!("expected {expected}, found {found}{hint}"),
            node.pos,
        );
    }

    fn record(&mut self, path: &str, pos: Option<Pos>) {
        if let Some(pos) = pos {
            self.positions.insert(path.to_owned(), pos);
        }
    }

    // ----- tables ----------------------------------------------------------

    /// A table whose fields are `known`; others are reported with a
    /// suggestion. `None` (reported) when the node is not a table.
    fn table<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Table<'n>> {
        let table = self.open_table(node, path)?;
        for entry in table.entries {
            if !known.contains(&entry.key.as_str()) {
                let hint = did_you_mean(&entry.key, known.iter().copied());
                let message = format!(
                    "unknown field `{}` {}{hint}; expected one of: {}",
                    entry.key,
                    table.place(),
                    known.join(", ")
                );
                self.diagnostics.push(
                    Diagnostic::error(Code::UnknownField, table.field(&entry.key), message)
                        .at(entry.key_pos),
                );
            }
        }
        Some(table)
    }

    /// A table of free keys.
    fn open_table<'n>(&mut self, node: &'n Node, path: &str) -> Option<Table<'n>> {
        self.record(path, node.pos);
        match &node.value {
            Value::Table(entries) => Some(Table {
                entries,
                pos: node.pos,
                path: path.to_owned(),
            }),
            _ => {
                self.wrong(node, path, "a table");
                None
            }
        }
    }

    /// The value of `key`, recording its position.
    fn get<'n>(&mut self, table: &Table<'n>, key: &str) -> Option<&'n Node> {
        let entry = table.entries.iter().find(|e| e.key == key)?;
        self.record(&table.field(key), entry.node.pos);
        Some(&entry.node)
    }

    /// The value of a required `key`; reports it missing.
    fn require<'n>(&mut self, table: &Table<'n>, key: &str, example: &str) -> Option<&'n Node> {
        let node = self.get(table, key);
        if node.is_none() {
            let path = table.field(key);
            self.error(
                Code::MissingField,
                &path,
                format!(
                    "missing required field `{key}` {}: add {example}",
                    table.place()
                ),
                table.pos,
            );
        }
        node
    }

    /// A sub-table with its own fields, or `None` when absent or wrong.
    fn sub_table<'n>(&mut self, table: &Table<'n>, key: &str, known: &[&str]) -> Option<Table<'n>> {
        let node = self.get(table, key)?;
        self.table(node, &table.field(key), known)
    }

    // ----- scalars ---------------------------------------------------------

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong(node, path, "a string");
                None
            }
        }
    }

    fn opt_string(&mut self, table: &Table<'_>, key: &str) -> Option<String> {
        let node = self.get(table, key)?;
        self.string(node, &table.field(key))
    }

    fn req_string(&mut self, table: &Table<'_>, key: &str, example: &str) -> Option<String> {
        let node = self.require(table, key, example)?;
        self.string(node, &table.field(key))
    }

    fn boolean(&mut self, table: &Table<'_>, key: &str) -> bool {
        let Some(node) = self.get(table, key) else {
            return false;
        };
        match node.value {
            Value::Bool(b) => b,
            _ => {
                self.wrong(node, &table.field(key), "`true` or `false`");
                false
            }
        }
    }

    /// An integer in `min..=max`.
    fn integer<T: TryFrom<i64>>(
        &mut self,
        node: &Node,
        path: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        match node.value {
            Value::Int(n) if (min..=max).contains(&n) => T::try_from(n).ok(),
            Value::Int(n) => {
                self.error(
                    Code::InvalidValue,
                    path,
                    format!("{n} is out of range: write an integer from {min} to {max}"),
                    node.pos,
                );
                None
            }
            _ => {
                self.wrong(node, path, "an integer");
                None
            }
        }
    }

    fn opt_integer<T: TryFrom<i64>>(
        &mut self,
        table: &Table<'_>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Option<T> {
        let node = self.get(table, key)?;
        self.integer(node, &table.field(key), min, max)
    }

    fn number(&mut self, table: &Table<'_>, key: &str) -> Option<f64> {
        let node = self.get(table, key)?;
        match node.value {
            Value::Int(n) => Some(n as f64),
            Value::Float(f) if f.is_finite() => Some(f),
            _ => {
                self.wrong(node, &table.field(key), "a finite number");
                None
            }
        }
    }

    /// A list of strings; absent means empty. Wrong items are reported and
    /// left out.
    fn strings(&mut self, table: &Table<'_>, key: &str) -> Vec<String> {
        let Some(node) = self.get(table, key) else {
            return Vec::new();
        };
        let path = table.field(key);
        self.list(node, &path, |w, item, item_path| w.string(item, item_path))
    }

    /// The items of a list, each walked by `each`; absent items (wrong ones)
    /// are left out.
    fn list<T>(
        &mut self,
        node: &Node,
        path: &str,
        mut each: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        let Value::Array(items) = &node.value else {
            self.wrong(node, path, "a list");
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = index(path, i);
            self.record(&item_path, item.pos);
            if let Some(value) = each(self, item, &item_path) {
                out.push(value);
                kept.push(i);
            } else {
                self.poisoned.push(item_path);
            }
        }
        if kept.len() < items.len() {
            self.index_maps.insert(path.to_owned(), kept);
        }
        out
    }

    /// A keyword of an enum, listing the allowed spellings when wrong.
    fn keyword<K: Keyword>(&mut self, node: &Node, path: &str, what: &str) -> Option<K> {
        let text = self.string(node, path)?;
        if let Some(value) = K::from_keyword(&text) {
            return Some(value);
        }
        let hint = did_you_mean(&text, K::VARIANTS.iter().map(|(n, _)| *n));
        self.error(
            Code::InvalidValue,
            path,
            format!(
                "`{text}` is not a valid {what}: use one of {}{hint}",
                K::allowed()
            ),
            node.pos,
        );
        None
    }

    fn opt_keyword<K: Keyword>(&mut self, table: &Table<'_>, key: &str, what: &str) -> Option<K> {
        let node = self.get(table, key)?;
        self.keyword(node, &table.field(key), what)
    }

    /// A string parsed by `parse`; its error is the message.
    fn parsed<T, E: Display>(
        &mut self,
        node: &Node,
        path: &str,
        code: Code,
        parse: impl FnOnce(&str) -> Result<T, E>,
        advice: &str,
    ) -> Option<T> {
        let text = self.string(node, path)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(code, path, format!("{e}{advice}"), node.pos);
                None
            }
        }
    }

    fn version(&mut self, node: &Node, path: &str) -> Option<Version> {
        let text = self.string(node, path)?;
        match Version::parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    Code::InvalidVersion,
                    path,
                    format!(
                        "`{text}` is not a semver version ({e}): write MAJOR.MINOR.PATCH such as `1.2.0`"
                    ),
                    node.pos,
                );
                None
            }
        }
    }

    fn version_req(&mut self, node: &Node, path: &str) -> Option<VersionReq> {
        let text = self.string(node, path)?;
        match VersionReq::parse(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(
                    Code::InvalidVersionReq,
                    path,
                    format!(
                        "`{text}` is not a version requirement ({e}): write one such as `^1.2`, `>=1.0, <2.0` or `~1.4.2`"
                    ),
                    node.pos,
                );
                None
            }
        }
    }

    /// A size: a string with a unit, or a whole number of bytes.
    fn size(&mut self, node: &Node, path: &str) -> Option<ByteSize> {
        self.unit(node, path, "a size such as \"64MiB\"")
    }

    /// A duration: a string with a unit, or a whole number of milliseconds.
    fn duration(&mut self, node: &Node, path: &str) -> Option<DurationSpec> {
        self.unit(node, path, "a duration such as \"1500ms\"")
    }

    fn unit<T>(&mut self, node: &Node, path: &str, expected: &str) -> Option<T>
    where
        T: std::str::FromStr<Err = crate::units::UnitError>,
    {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(n) if *n >= 0 => n.to_string(),
            Value::Int(n) => {
                self.error(
                    Code::InvalidLimit,
                    path,
                    format!("{n} is negative: write {expected}"),
                    node.pos,
                );
                return None;
            }
            _ => {
                self.wrong(node, path, expected);
                return None;
            }
        };
        match text.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(Code::InvalidLimit, path, e.to_string(), node.pos);
                None
            }
        }
    }

    fn opt_size(&mut self, table: &Table<'_>, key: &str) -> Option<ByteSize> {
        let node = self.get(table, key)?;
        self.size(node, &table.field(key))
    }

    fn opt_duration(&mut self, table: &Table<'_>, key: &str) -> Option<DurationSpec> {
        let node = self.get(table, key)?;
        self.duration(node, &table.field(key))
    }

    /// Any data, as JSON (no nulls, no dates, no NaN: the three formats must
    /// all hold it).
    fn json(&mut self, node: &Node, path: &str) -> Option<serde_json::Value> {
        use serde_json::Value as J;
        self.record(path, node.pos);
        Some(match &node.value {
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => J::Number(n),
                None => {
                    self.error(
                        Code::InvalidValue,
                        path,
                        "NaN and infinities are not allowed: JSON cannot hold them".to_owned(),
                        node.pos,
                    );
                    return None;
                }
            },
            Value::Str(s) => J::String(s.clone()),
            Value::Null | Value::Datetime(_) => {
                self.wrong(node, path, "a string, number, boolean, list or table");
                return None;
            }
            Value::Array(items) => {
                let mut ok = true;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match self.json(item, &index(path, i)) {
                        Some(v) => out.push(v),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                J::Array(out)
            }
            Value::Table(entries) => {
                let mut ok = true;
                let mut out = serde_json::Map::with_capacity(entries.len());
                for entry in entries {
                    match self.json(&entry.node, &join(path, &entry.key)) {
                        Some(v) => {
                            out.insert(entry.key.clone(), v);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                J::Object(out)
            }
        })
    }

    // ----- sections --------------------------------------------------------

    fn manifest(&mut self, root: &Node) -> Option<Manifest> {
        let Value::Table(_) = root.value else {
            self.wrong(root, "", "a table of manifest sections");
            return None;
        };
        let t = self.table(root, "", ROOT_FIELDS)?;
        let manifest_version = match self.require(&t, "manifest_version", "`manifest_version = 1`")
        {
            Some(node) => self
                .integer(node, "manifest_version", 0, i64::from(u32::MAX))
                .unwrap_or(MANIFEST_VERSION),
            None => MANIFEST_VERSION,
        };
        let plugin = self.plugin(&t);
        if !t.has("engine") {
            self.diagnostics.push(Diagnostic::warning(
                Code::MissingEngine,
                "engine",
                "no [engine] section: add `[engine] tenon = \"^1.0\"` so hosts can tell whether the plugin fits (`^1` is assumed)".to_owned(),
            ));
        }
        let engine = self.engine(&t);
        let runtime = self.runtime(&t);
        let limits = self.limits(&t);
        let permissions = self.permissions(&t);
        let hooks = self.hooks(&t);
        let commands = self.commands(&t);
        let endpoints = self.endpoints(&t);
        let activation = self.activation(&t);
        let dependencies = self.dependencies(&t);
        let provides = self.provides(&t);
        let config = self.config(&t);
        Some(Manifest {
            manifest_version,
            plugin,
            engine,
            runtime,
            limits,
            permissions,
            hooks,
            commands,
            endpoints,
            activation,
            dependencies,
            provides,
            config,
        })
    }

    fn plugin(&mut self, root: &Table<'_>) -> PluginMeta {
        const FIELDS: &[&str] = &[
            "id",
            "name",
            "version",
            "description",
            "authors",
            "license",
            "homepage",
            "repository",
            "keywords",
            "categories",
            "capabilities",
        ];
        let mut meta = PluginMeta {
            id: PluginId::placeholder(),
            name: String::new(),
            version: Version::new(0, 0, 0),
            description: String::new(),
            authors: Vec::new(),
            license: None,
            homepage: None,
            repository: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            capabilities: Vec::new(),
        };
        let node = self.require(
            root,
            "plugin",
            "a `[plugin]` table with id, name and version",
        );
        let Some(t) = node.and_then(|node| self.table(node, "plugin", FIELDS)) else {
            self.poisoned.push("plugin".to_owned());
            return meta;
        };
        if let Some(node) = self.require(&t, "id", "`id = \"publisher/name\"`") {
            meta.id = self
                .parsed(
                    node,
                    "plugin.id",
                    Code::InvalidId,
                    PluginId::new,
                    " (an id is publisher/name, each part 1-64 of a-z, 0-9 and '-', such as `acme/slack-notifier`)",
                )
                .unwrap_or_else(PluginId::placeholder);
        }
        meta.name = self
            .req_string(&t, "name", "`name = \"A human name\"`")
            .unwrap_or_default();
        if let Some(node) = self.require(&t, "version", "`version = \"1.0.0\"`")
            && let Some(v) = self.version(node, "plugin.version")
        {
            meta.version = v;
        }
        meta.description = self.opt_string(&t, "description").unwrap_or_default();
        meta.authors = self.strings(&t, "authors");
        meta.license = self.opt_string(&t, "license");
        meta.homepage = self.opt_string(&t, "homepage");
        meta.repository = self.opt_string(&t, "repository");
        meta.keywords = self.strings(&t, "keywords");
        meta.categories = self.strings(&t, "categories");
        meta.capabilities = self.strings(&t, "capabilities");
        meta
    }

    fn engine(&mut self, root: &Table<'_>) -> EngineRequirement {
        let mut engine = EngineRequirement::default();
        let Some(t) = self.sub_table(root, "engine", &["tenon", "host", "features"]) else {
            return engine;
        };
        if let Some(node) = self.require(
            &t,
            "tenon",
            "`tenon = \"^1.0\"`, the plugin API versions it was built for",
        ) {
            match self.version_req(node, "engine.tenon") {
                Some(req) => engine.tenon = req,
                None => self.poisoned.push("engine.tenon".to_owned()),
            }
        }
        if let Some(node) = self.get(&t, "host") {
            engine.host = self.version_req(node, "engine.host");
        }
        engine.features = self.strings(&t, "features");
        engine
    }

    fn runtime(&mut self, root: &Table<'_>) -> RuntimeSpec {
        const FIELDS: &[&str] = &["kind", "module", "sha256", "entry", "command", "args"];
        let mut runtime = RuntimeSpec {
            kind: RuntimeKind::Component,
            module: None,
            sha256: None,
            entry: None,
            command: None,
            args: Vec::new(),
        };
        let node = self.require(root, "runtime", "a `[runtime]` table with `kind`");
        let Some(t) = node.and_then(|node| self.table(node, "runtime", FIELDS)) else {
            self.poisoned.push("runtime".to_owned());
            return runtime;
        };
        let kind = self
            .require(
                &t,
                "kind",
                "`kind = \"component\"` (component | extism | native | process)",
            )
            .and_then(|node| self.keyword(node, "runtime.kind", "runtime kind"));
        match kind {
            Some(kind) => runtime.kind = kind,
            None => self.poisoned.push("runtime.kind".to_owned()),
        }
        runtime.module = self.opt_string(&t, "module");
        runtime.sha256 = self.opt_string(&t, "sha256");
        runtime.entry = self.opt_string(&t, "entry");
        runtime.command = self.opt_string(&t, "command");
        runtime.args = self.strings(&t, "args");
        runtime
    }

    fn limits(&mut self, root: &Table<'_>) -> Limits {
        const FIELDS: &[&str] = &[
            "memory",
            "timeout",
            "fuel",
            "isolation",
            "max_instances",
            "wait_timeout",
            "stack",
            "max_output",
        ];
        let mut limits = Limits::default();
        let Some(t) = self.sub_table(root, "limits", FIELDS) else {
            return limits;
        };
        if let Some(v) = self.opt_size(&t, "memory") {
            limits.memory = v;
        }
        if let Some(v) = self.opt_duration(&t, "timeout") {
            limits.timeout = v;
        }
        limits.fuel = self.opt_integer(&t, "fuel", 0, i64::MAX);
        if let Some(v) = self.opt_keyword(&t, "isolation", "isolation") {
            limits.isolation = v;
        }
        if let Some(v) = self.opt_integer(&t, "max_instances", 0, i64::from(u32::MAX)) {
            limits.max_instances = v;
        }
        if let Some(v) = self.opt_duration(&t, "wait_timeout") {
            limits.wait_timeout = v;
        }
        limits.stack = self.opt_size(&t, "stack");
        limits.max_output = self.opt_size(&t, "max_output");
        limits
    }

    fn permissions(&mut self, root: &Table<'_>) -> Permissions {
        let mut perms = Permissions::default();
        let Some(node) = self.get(root, "permissions") else {
            return perms;
        };
        let Some(t) = self.open_table(node, "permissions") else {
            return perms;
        };
        for entry in t.entries {
            let path = t.field(&entry.key);
            self.record(&path, entry.node.pos);
            let node = &entry.node;
            match entry.key.as_str() {
                // Derived from `[[hooks]]` after the walk, whatever is
                // written here (a serialized manifest carries it).
                "hooks" => {}
                "network" => perms.network = self.network(node, &path),
                "filesystem" => {
                    perms.filesystem = self.list(node, &path, |w, item, item_path| {
                        let t = w.table(item, item_path, &["path", "mode"])?;
                        let path = w
                            .req_string(
                                &t,
                                "path",
                                "`path = \"data\"`, relative to the plugin's data directory",
                            )
                            .unwrap_or_default();
                        let mode = w
                            .opt_keyword(&t, "mode", "filesystem mode")
                            .unwrap_or_default();
                        Some(FsPermission { path, mode })
                    });
                }
                "kv" => {
                    if let Some(t) = self.table(node, &path, &["quota"]) {
                        perms.kv = Some(KvPermission {
                            quota: self.opt_size(&t, "quota"),
                        });
                    }
                }
                "secrets" => {
                    perms.secrets = self.list(node, &path, |w, item, p| w.string(item, p));
                }
                "events" => {
                    if let Some(t) = self.table(node, &path, &["publish", "subscribe"]) {
                        perms.events = Some(EventsPermission {
                            publish: self.strings(&t, "publish"),
                            subscribe: self.strings(&t, "subscribe"),
                        });
                    }
                }
                kind => {
                    if let Some(p) = self.host_permission(node, &path) {
                        perms.host.insert(kind.to_owned(), p);
                    }
                }
            }
        }
        perms
    }

    fn network(&mut self, node: &Node, path: &str) -> Option<NetworkPermission> {
        let t = self.table(
            node,
            path,
            &["outbound", "methods", "allow_private", "max_response"],
        )?;
        let outbound = match self.get(&t, "outbound") {
            Some(node) => self.list(node, &t.field("outbound"), |w, item, p| {
                w.parsed(
                    item,
                    p,
                    Code::InvalidHostPattern,
                    str::parse::<HostPattern>,
                    "",
                )
            }),
            None => Vec::new(),
        };
        let methods = self.strings(&t, "methods");
        Some(NetworkPermission {
            outbound,
            methods,
            allow_private: self.boolean(&t, "allow_private"),
            max_response: self.opt_size(&t, "max_response"),
        })
    }

    fn host_permission(&mut self, node: &Node, path: &str) -> Option<HostPermission> {
        const EXPECTED: &str = "`true`, a list of actions such as [\"read\"], or a table of actions to scopes such as { read = [\"forms\"] }";
        match &node.value {
            Value::Bool(b) => Some(HostPermission::Flag(*b)),
            Value::Array(_) => Some(HostPermission::Actions(self.list(
                node,
                path,
                |w, item, p| w.string(item, p),
            ))),
            Value::Table(entries) => {
                let mut scoped = BTreeMap::new();
                for entry in entries {
                    let p = join(path, &entry.key);
                    self.record(&p, entry.node.pos);
                    let scopes = self.list(&entry.node, &p, |w, item, ip| w.string(item, ip));
                    scoped.insert(entry.key.clone(), scopes);
                }
                Some(HostPermission::Scoped(scoped))
            }
            _ => {
                self.wrong(node, path, EXPECTED);
                None
            }
        }
    }

    fn hooks(&mut self, root: &Table<'_>) -> Vec<HookDecl> {
        const FIELDS: &[&str] = &[
            "name",
            "priority",
            "fail_policy",
            "timeout",
            "retries",
            "backoff",
        ];
        let Some(node) = self.get(root, "hooks") else {
            return Vec::new();
        };
        self.list(node, "hooks", |w, item, path| {
            let t = w.table(item, path, FIELDS)?;
            let name = w
                .req_string(
                    &t,
                    "name",
                    "`name = \"response.pre_deliver\"`, the host's hook name",
                )
                .unwrap_or_default();
            let priority = match w.get(&t, "priority") {
                Some(node) => w.priority(node, &t.field("priority")).unwrap_or_default(),
                None => Priority::default(),
            };
            let fail_policy = w
                .opt_keyword(&t, "fail_policy", "fail policy")
                .unwrap_or_default();
            let timeout = w.opt_duration(&t, "timeout");
            let retries = w
                .opt_integer(&t, "retries", 0, i64::from(u32::MAX))
                .unwrap_or(0);
            let backoff = w.sub_table(&t, "backoff", &["kind", "delay"]).map(|b| {
                let kind = w
                    .opt_keyword(&b, "kind", "backoff kind")
                    .unwrap_or_default();
                let delay = w
                    .require(&b, "delay", "`delay = \"100ms\"`")
                    .and_then(|node| w.duration(node, &b.field("delay")))
                    .unwrap_or_default();
                Backoff { kind, delay }
            });
            Some(HookDecl {
                name,
                priority,
                fail_policy,
                timeout,
                retries,
                backoff,
            })
        })
    }

    fn priority(&mut self, node: &Node, path: &str) -> Option<Priority> {
        const ALLOWED: &str =
            "critical (1000), high (500), normal (100), low (50), cleanup (10) or an integer";
        match &node.value {
            Value::Int(n) => match i32::try_from(*n) {
                Ok(n) => Some(Priority(n)),
                Err(_) => {
                    self.error(
                        Code::InvalidValue,
                        path,
                        format!("the priority {n} does not fit in 32 bits: use {ALLOWED}"),
                        node.pos,
                    );
                    None
                }
            },
            Value::Str(name) => match Priority::from_name(name) {
                Some(p) => Some(p),
                None => {
                    let hint = did_you_mean(name, Priority::NAMED.iter().map(|(n, _)| *n));
                    self.error(
                        Code::InvalidValue,
                        path,
                        format!("`{name}` is not a priority: use {ALLOWED}{hint}"),
                        node.pos,
                    );
                    None
                }
            },
            _ => {
                self.wrong(node, path, "a priority name or an integer");
                None
            }
        }
    }

    fn commands(&mut self, root: &Table<'_>) -> Vec<CommandDecl> {
        let Some(node) = self.get(root, "commands") else {
            return Vec::new();
        };
        self.list(node, "commands", |w, item, path| {
            let t = w.table(item, path, &["name", "description", "function"])?;
            let name = w
                .req_string(&t, "name", "`name = \"sync\"`")
                .unwrap_or_default();
            let description = w.opt_string(&t, "description").unwrap_or_default();
            let function = w.opt_string(&t, "function");
            Some(CommandDecl {
                name,
                description,
                function,
            })
        })
    }

    fn endpoints(&mut self, root: &Table<'_>) -> Vec<EndpointDecl> {
        const FIELDS: &[&str] = &[
            "path",
            "method",
            "function",
            "auth",
            "description",
            "rate_limit",
        ];
        let Some(node) = self.get(root, "endpoints") else {
            return Vec::new();
        };
        self.list(node, "endpoints", |w, item, path| {
            let t = w.table(item, path, FIELDS)?;
            let route = w
                .req_string(&t, "path", "`path = \"/webhook\"`")
                .unwrap_or_default();
            let method = w
                .require(&t, "method", "`method = \"POST\"`")
                .and_then(|node| {
                    let text = w.string(node, &t.field("method"))?;
                    let upper = text.to_ascii_uppercase();
                    if EndpointDecl::METHODS.contains(&upper.as_str()) {
                        Some(upper)
                    } else {
                        w.error(
                            Code::InvalidValue,
                            &t.field("method"),
                            format!(
                                "`{text}` is not an HTTP method: use one of {}",
                                EndpointDecl::METHODS.join(" | ")
                            ),
                            node.pos,
                        );
                        None
                    }
                });
            let function = w
                .req_string(
                    &t,
                    "function",
                    "`function = \"handle_webhook\"`, the exported function that serves it",
                )
                .unwrap_or_default();
            let auth = w.boolean(&t, "auth");
            let description = w.opt_string(&t, "description").unwrap_or_default();
            let rate_limit = w
                .sub_table(&t, "rate_limit", &["requests", "window"])
                .map(|r| {
                    let requests = w
                        .require(&r, "requests", "`requests = 60`")
                        .and_then(|node| {
                            w.integer(node, &r.field("requests"), 1, i64::from(u32::MAX))
                        })
                        .unwrap_or(1);
                    let window = w
                        .require(&r, "window", "`window = \"1m\"`")
                        .and_then(|node| w.duration(node, &r.field("window")))
                        .unwrap_or_default();
                    RateLimit { requests, window }
                });
            Some(EndpointDecl {
                path: route,
                method: method.unwrap_or_default(),
                function,
                auth,
                description,
                rate_limit,
            })
        })
    }

    fn activation(&mut self, root: &Table<'_>) -> Activation {
        const FIELDS: &[&str] = &["on_startup", "on_hooks", "on_commands", "on_events"];
        let Some(t) = self.sub_table(root, "activation", FIELDS) else {
            return Activation::default();
        };
        Activation {
            on_startup: self.boolean(&t, "on_startup"),
            on_hooks: self.strings(&t, "on_hooks"),
            on_commands: self.strings(&t, "on_commands"),
            on_events: self.strings(&t, "on_events"),
        }
    }

    fn dependencies(&mut self, root: &Table<'_>) -> BTreeMap<PluginId, Dependency> {
        let mut deps = BTreeMap::new();
        let Some(node) = self.get(root, "dependencies") else {
            return deps;
        };
        let Some(t) = self.open_table(node, "dependencies") else {
            return deps;
        };
        for entry in t.entries {
            let path = t.field(&entry.key);
            self.record(&path, entry.node.pos);
            let id = match PluginId::new(&entry.key) {
                Ok(id) => Some(id),
                Err(e) => {
                    self.error(
                        Code::InvalidId,
                        &path,
                        format!("{e}: a dependency is named by its plugin id, such as \"acme/http-utils\""),
                        entry.key_pos,
                    );
                    None
                }
            };
            let dep = match &entry.node.value {
                Value::Str(_) => self.version_req(&entry.node, &path).map(Dependency::new),
                Value::Table(_) => self
                    .table(&entry.node, &path, &["version", "optional", "scope"])
                    .map(|d| {
                        let version = self
                            .require(&d, "version", "`version = \"^1.0\"`")
                            .and_then(|node| self.version_req(node, &d.field("version")))
                            .unwrap_or(VersionReq::STAR);
                        let optional = self.boolean(&d, "optional");
                        let scope = self
                            .opt_keyword(&d, "scope", "dependency scope")
                            .unwrap_or_default();
                        Dependency {
                            version,
                            optional,
                            scope,
                        }
                    }),
                _ => {
                    self.wrong(
                        &entry.node,
                        &path,
                        "a version requirement such as \"^1.0\" or a table { version = \"^1.0\", optional = true }",
                    );
                    None
                }
            };
            if let (Some(id), Some(dep)) = (id, dep) {
                deps.insert(id, dep);
            }
        }
        deps
    }

    fn provides(&mut self, root: &Table<'_>) -> Provides {
        const FIELDS: &[&str] = &["abilities", "provider", "integrations", "skills"];
        let Some(t) = self.sub_table(root, "provides", FIELDS) else {
            return Provides::default();
        };
        let abilities = match self.get(&t, "abilities") {
            Some(node) => self.list(node, "provides.abilities", |w, item, path| {
                let a = w.table(item, path, &["capability", "operations"])?;
                let capability = w
                    .req_string(&a, "capability", "`capability = \"notification\"`")
                    .unwrap_or_default();
                Some(Ability {
                    capability,
                    operations: w.strings(&a, "operations"),
                })
            }),
            None => Vec::new(),
        };
        let provider = self
            .sub_table(&t, "provider", &["name", "oauth"])
            .map(|p| Provider {
                name: self
                    .req_string(&p, "name", "`name = \"github\"`")
                    .unwrap_or_default(),
                oauth: self.boolean(&p, "oauth"),
            });
        Provides {
            abilities,
            provider,
            integrations: self.strings(&t, "integrations"),
            skills: self.strings(&t, "skills"),
        }
    }

    fn config(&mut self, root: &Table<'_>) -> ConfigSpec {
        let mut spec = ConfigSpec::default();
        let Some(t) = self.sub_table(
            root,
            "config",
            &["fields", "schema", "defaults", "environments"],
        ) else {
            return spec;
        };
        if let Some(node) = self.get(&t, "fields") {
            spec.fields = self.list(node, "config.fields", |w, item, path| {
                w.config_field(item, path)
            });
        }
        if let Some(node) = self.get(&t, "schema") {
            if let Value::Table(_) = node.value {
                spec.schema = self.json(node, "config.schema");
            } else {
                self.wrong(
                    node,
                    "config.schema",
                    "a table holding a JSON Schema object",
                );
            }
        }
        if let Some(node) = self.get(&t, "defaults") {
            if let Value::Table(_) = node.value {
                if let Some(serde_json::Value::Object(map)) = self.json(node, "config.defaults") {
                    spec.defaults = map;
                }
            } else {
                self.wrong(node, "config.defaults", "a table of config keys to values");
            }
        }
        if let Some(node) = self.get(&t, "environments") {
            let json = match node.value {
                Value::Table(_) => self.json(node, "config.environments"),
                _ => None,
            };
            match json {
                Some(serde_json::Value::Object(map)) => {
                    for (name, overrides) in map {
                        match overrides {
                            serde_json::Value::Object(overrides) => {
                                spec.environments.insert(name, overrides);
                            }
                            other => {
                                let path = format!("config.environments.{name}");
                                let pos = self.positions.get(&path).copied();
                                self.error(
                                    Code::WrongType,
                                    &path,
                                    format!(
                                        "expected a table of config keys to values, found {}",
                                        crate::config::describe(&other)
                                    ),
                                    pos,
                                );
                            }
                        }
                    }
                }
                _ => self.wrong(
                    node,
                    "config.environments",
                    "a table of environments, each a table of config keys to values",
                ),
            }
        }
        spec
    }

    fn config_field(&mut self, node: &Node, path: &str) -> Option<ConfigField> {
        const FIELDS: &[&str] = &[
            "key",
            "type",
            "label",
            "description",
            "required",
            "secret",
            "default",
            "enum",
            "minimum",
            "maximum",
            "min_length",
            "max_length",
        ];
        let t = self.table(node, path, FIELDS)?;
        let key = self
            .req_string(&t, "key", "`key = \"channel\"`")
            .unwrap_or_default();
        let ty = self
            .require(
                &t,
                "type",
                "`type = \"string\"` (string | integer | number | boolean | array | object)",
            )
            .and_then(|node| self.keyword(node, &t.field("type"), "config type"));
        let label = self.opt_string(&t, "label");
        let description = self.opt_string(&t, "description");
        let required = self.boolean(&t, "required");
        let secret = self.boolean(&t, "secret");
        let default = match self.get(&t, "default") {
            Some(node) => self.json(node, &t.field("default")),
            None => None,
        };
        let allowed = match self.get(&t, "enum") {
            Some(node) => {
                let p = t.field("enum");
                let values = self.list(node, &p, |w, item, ip| w.json(item, ip));
                Some(values)
            }
            None => None,
        };
        let minimum = self.number(&t, "minimum");
        let maximum = self.number(&t, "maximum");
        let min_length = self.opt_integer(&t, "min_length", 0, i64::MAX);
        let max_length = self.opt_integer(&t, "max_length", 0, i64::MAX);
        Some(ConfigField {
            key,
            ty: ty.unwrap_or(ConfigType::String),
            label,
            description,
            required,
            secret,
            default,
            allowed,
            minimum,
            maximum,
            min_length,
            max_length,
        })
    }
}
