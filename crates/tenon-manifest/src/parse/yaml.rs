//! YAML, through `yaml-rust2`'s event parser, resolved with the YAML 1.2 core
//! schema. Aliases, tags other than the core ones, complex keys and several
//! documents are refused: a manifest is plain data, and refusing aliases
//! rules out "billion laughs" expansion.

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::{Code, Pos};
use crate::tree::{Builder, Entry, Node, Value};

const CORE_TAG_HANDLES: [&str; 2] = ["!!", "tag:yaml.org,2002:"];

/// Parses `source` into a tree; problems are reported to `builder` and give
/// `None`.
pub(crate) fn parse(source: &str, builder: &mut Builder) -> Option<Node> {
    let mut parser = Parser::new_from_str(source);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    loop {
        let (event, marker) = match parser.next_token() {
            Ok(next) => next,
            Err(error) => {
                let pos = pos(error.marker());
                builder.error(
                    Code::Syntax,
                    "",
                    format!("invalid YAML: {}", error.info()),
                    Some(pos),
                );
                return None;
            }
        };
        let at = Some(pos(&marker));
        let node = match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    builder.error(
                        Code::UnsupportedYaml,
                        "",
                        "a manifest is one YAML document: remove the second `---` and what follows"
                            .to_owned(),
                        at,
                    );
                    return None;
                }
                continue;
            }
            Event::Alias(_) => {
                builder.error(
                    Code::UnsupportedYaml,
                    "",
                    "YAML aliases (`*name`) are not supported in manifests: write the value out"
                        .to_owned(),
                    at,
                );
                return None;
            }
            Event::Scalar(text, style, _anchor, tag) => {
                if !builder.check_string(&text, at) {
                    return None;
                }
                let expecting_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                if expecting_key {
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = Some((text, at));
                    }
                    continue;
                }
                let value = scalar(text, style, tag.as_ref(), at, builder)?;
                Node { value, pos: at }
            }
            Event::SequenceStart(_, ref tag) | Event::MappingStart(_, ref tag) => {
                let is_sequence = matches!(event, Event::SequenceStart(..));
                if matches!(stack.last(), Some(Frame::Map { key: None, .. })) {
                    builder.error(
                        Code::UnsupportedYaml,
                        "",
                        "a key must be a plain string, not a list or a table".to_owned(),
                        at,
                    );
                    return None;
                }
                if let Some(tag) = tag {
                    let expected = if is_sequence { "seq" } else { "map" };
                    if !(CORE_TAG_HANDLES.contains(&tag.handle.as_str()) && tag.suffix == expected)
                    {
                        unsupported_tag(tag, at, builder);
                        return None;
                    }
                }
                if !builder.check_depth(stack.len() + 1, at) {
                    return None;
                }
                stack.push(if is_sequence {
                    Frame::Seq {
                        items: Vec::new(),
                        pos: at,
                    }
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        pos: at,
                        key: None,
                    }
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { items, pos }) => Node {
                    value: Value::Array(items),
                    pos,
                },
                Some(Frame::Map { entries, pos, .. }) => Node {
                    value: Value::Table(entries),
                    pos,
                },
                None => continue,
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, pos }) => {
                if !builder.check_items(items.len(), *pos) {
                    return None;
                }
                items.push(node);
            }
            Some(Frame::Map { entries, pos, key }) => {
                let (key, key_pos) = key.take().unwrap_or_default();
                if !builder.insert(entries, Entry { key, key_pos, node }, *pos) {
                    return None;
                }
            }
        }
    }
    Some(root.unwrap_or(Node {
        value: Value::Null,
        pos: None,
    }))
}

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Option<Pos>,
    },
    Map {
        entries: Vec<Entry>,
        pos: Option<Pos>,
        key: Option<(String, Option<Pos>)>,
    },
}

fn pos(marker: &Marker) -> Pos {
    Pos {
        line: u32::try_from(marker.line()).unwrap_or(u32::MAX).max(1),
        column: u32::try_from(marker.col() + 1).unwrap_or(u32::MAX),
    }
}

fn unsupported_tag(tag: &Tag, at: Option<Pos>, builder: &mut Builder) {
    builder.error(
        Code::UnsupportedYaml,
        "",
        format!(
            "the YAML tag `{}{}` is not supported: only the core tags !!str, !!int, !!float, !!bool, !!null, !!seq and !!map are",
            tag.handle, tag.suffix
        ),
        at,
    );
}

/// Resolves a scalar with the YAML 1.2 core schema.
fn scalar(
    text: String,
    style: TScalarStyle,
    tag: Option<&Tag>,
    at: Option<Pos>,
    builder: &mut Builder,
) -> Option<Value> {
    let forced = match tag {
        None => None,
        Some(tag) if CORE_TAG_HANDLES.contains(&tag.handle.as_str()) => match tag.suffix.as_str() {
            "str" => return Some(Value::Str(text)),
            suffix @ ("int" | "float" | "bool" | "null") => Some(suffix),
            _ => {
                unsupported_tag(tag, at, builder);
                return None;
            }
        },
        Some(tag) => {
            unsupported_tag(tag, at, builder);
            return None;
        }
    };
    if style != TScalarStyle::Plain && forced.is_none() {
        return Some(Value::Str(text));
    }
    let value = resolve_plain(&text);
    if let Some(forced) = forced {
        let fits = matches!(
            (forced, &value),
            ("int", Value::Int(_))
                | ("float", Value::Float(_) | Value::Int(_))
                | ("bool", Value::Bool(_))
                | ("null", Value::Null)
        );
        if !fits {
            builder.error(
                Code::Syntax,
                "",
                format!("invalid YAML: `{text}` is not a valid !!{forced}"),
                at,
            );
            return None;
        }
        if let ("float", Value::Int(n)) = (forced, &value) {
            return Some(Value::Float(*n as f64));
        }
    }
    Some(value)
}

/// The core schema's resolution of a plain scalar.
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = resolve_int(text) {
        return int;
    }
    if is_core_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_owned())
}

fn resolve_int(text: &str) -> Option<Value> {
    let (radix, digits) = if let Some(hex) = text.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = text.strip_prefix("0o") {
        (8, oct)
    } else {
        let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(match text.parse::<i64>() {
            Ok(n) => Value::Int(n),
            // Too large for 64 bits: keep the text, the walk reports the type.
            Err(_) => Value::Str(text.to_owned()),
        });
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(match i64::from_str_radix(digits, radix) {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Str(text.to_owned()),
    })
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let int_start = i;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let int_digits = i - int_start;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if int_digits == 0 && i == frac_start {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        let exp_start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == bytes.len()
}
