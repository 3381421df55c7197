//! The positioned tree every format is parsed into before the validating walk.

use crate::diagnostic::{Code, Diagnostic, Pos};

/// Bounds on the input, enforced while parsing any format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputLimits {
    /// Largest document, in bytes (default 1 MiB).
    pub max_bytes: usize,
    /// Deepest nesting of tables and lists (default 32).
    pub max_depth: usize,
    /// Longest string or key, in bytes (default 64 KiB).
    pub max_string: usize,
    /// Most items in one list or table (default 4096).
    pub max_items: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 32,
            max_string: 64 << 10,
            max_items: 4096,
        }
    }
}

/// A value with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) pos: Option<Pos>,
}

impl Node {
    /// The value as plain JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) | Value::Datetime(s) => J::String(s.clone()),
            Value::Array(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Table(entries) => J::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.node.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A key of a table, with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Option<Pos>,
    pub(crate) node: Node,
}

/// The values of the three formats, united.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A TOML date or time (refused by the walk: other formats cannot hold it).
    Datetime(String),
    Array(Vec<Node>),
    /// Entries in source order.
    Table(Vec<Entry>),
}

impl Value {
    /// `a string`, `an integer`… for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "a list",
            Value::Table(_) => "a table",
        }
    }
}

/// Collects the problems a parser finds while building the tree, and checks
/// the bounds that every format shares.
#[derive(Debug)]
pub(crate) struct Builder {
    pub(crate) limits: InputLimits,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl Builder {
    pub(crate) fn new(limits: InputLimits) -> Self {
        Self {
            limits,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn error(&mut self, code: Code, path: &str, message: String, pos: Option<Pos>) {
        self.diagnostics
            .push(Diagnostic::error(code, path, message).at(pos));
    }

    pub(crate) fn failed(&self) -> bool {
        !self.diagnostics.is_empty()
    }

    /// Checks a string's length; reports and returns false when too long.
    pub(crate) fn check_string(&mut self, s: &str, pos: Option<Pos>) -> bool {
        if s.len() > self.limits.max_string {
            let max = self.limits.max_string;
            self.error(
                Code::TooLarge,
                "",
                format!(
                    "a string of {} bytes is longer than the limit of {max} bytes",
                    s.len()
                ),
                pos,
            );
            return false;
        }
        true
    }

    /// Checks a list's or table's length before one more item is added.
    pub(crate) fn check_items(&mut self, len: usize, pos: Option<Pos>) -> bool {
        if len >= self.limits.max_items {
            let max = self.limits.max_items;
            self.error(
                Code::TooLarge,
                "",
                format!("a list or table holds more than the limit of {max} items"),
                pos,
            );
            return false;
        }
        true
    }

    /// Reports nesting past the limit; returns false when `depth` is too deep.
    pub(crate) fn check_depth(&mut self, depth: usize, pos: Option<Pos>) -> bool {
        if depth > self.limits.max_depth {
            let max = self.limits.max_depth;
            self.error(
                Code::TooDeep,
                "",
                format!("tables and lists are nested deeper than the limit of {max} levels"),
                pos,
            );
            return false;
        }
        true
    }

    /// Adds an entry to a table under construction, refusing duplicate keys
    /// (reported, the first one kept). False when the table is too large and
    /// parsing should stop.
    pub(crate) fn insert(
        &mut self,
        entries: &mut Vec<Entry>,
        entry: Entry,
        table_pos: Option<Pos>,
    ) -> bool {
        if let Some(first) = entries.iter().find(|e| e.key == entry.key) {
            let first_line = first
                .key_pos
                .map(|p| format!(" (first on line {})", p.line))
                .unwrap_or_default();
            let key = entry.key.clone();
            self.error(
                Code::DuplicateKey,
                "",
                format!("the key `{key}` appears twice in the same table{first_line}: keep one"),
                entry.key_pos,
            );
            return true;
        }
        if !self.check_items(entries.len(), entry.key_pos.or(table_pos)) {
            return false;
        }
        entries.push(entry);
        true
    }
}

/// Maps byte offsets to 1-based lines and character columns.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    source: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Self { source, starts }
    }

    pub(crate) fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .source
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        Pos {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}
