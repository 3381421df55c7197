//! TOML, through `toml`'s spanned document tree.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Code;
use crate::tree::{Builder, Entry, LineIndex, Node, Value};

/// Parses `source` into a tree; syntax errors (all of them) are reported to
/// `builder` and give `None`.
pub(crate) fn parse(source: &str, builder: &mut Builder) -> Option<Node> {
    let lines = LineIndex::new(source);
    let (table, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        for error in errors {
            let pos = error.span().map(|span| lines.pos(span.start));
            let message = error.message().trim_end().replace('\n', " ");
            builder.error(Code::Syntax, "", format!("invalid TOML: {message}"), pos);
        }
        return None;
    }
    let mut convert = Convert {
        lines: &lines,
        builder,
    };
    let entries = convert.table(table.get_ref(), 1)?;
    Some(Node {
        value: Value::Table(entries),
        pos: None,
    })
}

struct Convert<'a, 'b> {
    lines: &'a LineIndex<'a>,
    builder: &'b mut Builder,
}

impl Convert<'_, '_> {
    fn table(&mut self, table: &DeTable<'_>, depth: usize) -> Option<Vec<Entry>> {
        let mut items: Vec<_> = table.iter().collect();
        items.sort_by_key(|(key, _)| key.span().start);
        let mut entries = Vec::with_capacity(items.len());
        for (key, value) in items {
            let key_pos = Some(self.lines.pos(key.span().start));
            if !self.builder.check_string(key.get_ref(), key_pos) {
                return None;
            }
            let node = self.value(value, depth + 1)?;
            let entry = Entry {
                key: key.get_ref().to_string(),
                key_pos,
                node,
            };
            if !self.builder.insert(&mut entries, entry, key_pos) {
                return None;
            }
        }
        Some(entries)
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, depth: usize) -> Option<Node> {
        let pos = Some(self.lines.pos(value.span().start));
        let value = match value.get_ref() {
            DeValue::String(s) => {
                if !self.builder.check_string(s, pos) {
                    return None;
                }
                Value::Str(s.to_string())
            }
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Value::Int(n),
                Err(_) => {
                    self.builder.error(
                        Code::Syntax,
                        "",
                        format!("invalid TOML: the integer `{i}` does not fit in 64 bits"),
                        pos,
                    );
                    return None;
                }
            },
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(x) => Value::Float(x),
                Err(_) => {
                    self.builder.error(
                        Code::Syntax,
                        "",
                        format!("invalid TOML: `{f}` is not a float"),
                        pos,
                    );
                    return None;
                }
            },
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::Datetime(d.to_string()),
            DeValue::Array(items) => {
                if !self.builder.check_depth(depth, pos) {
                    return None;
                }
                let mut nodes = Vec::with_capacity(items.len());
                for item in items.iter() {
                    if !self.builder.check_items(nodes.len(), pos) {
                        return None;
                    }
                    nodes.push(self.value(item, depth + 1)?);
                }
                Value::Array(nodes)
            }
            DeValue::Table(table) => {
                if !self.builder.check_depth(depth, pos) {
                    return None;
                }
                Value::Table(self.table(table, depth)?)
            }
        };
        Some(Node { value, pos })
    }
}
