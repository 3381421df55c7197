//! A small positioned JSON parser (RFC 8259), bounded by [`InputLimits`].
//!
//! [`InputLimits`]: crate::InputLimits

use crate::diagnostic::{Code, Pos};
use crate::tree::{Builder, Entry, LineIndex, Node, Value};

/// Parses `source` into a tree; syntax errors are reported to `builder` and
/// give `None`.
pub(crate) fn parse(source: &str, builder: &mut Builder) -> Option<Node> {
    let mut parser = Parser {
        bytes: source.as_bytes(),
        source,
        at: 0,
        lines: LineIndex::new(source),
        builder,
    };
    let result = parser.document();
    match result {
        Ok(node) => Some(node),
        Err(Stop::Reported) => None,
        Err(Stop::Syntax(message, at)) => {
            let pos = parser.lines.pos(at);
            parser.builder.error(
                Code::Syntax,
                "",
                format!("invalid JSON: {message}"),
                Some(pos),
            );
            None
        }
    }
}

enum Stop {
    /// Already reported (a bound was exceeded).
    Reported,
    /// A syntax error at a byte offset.
    Syntax(String, usize),
}

struct Parser<'a, 'b> {
    bytes: &'a [u8],
    source: &'a str,
    at: usize,
    lines: LineIndex<'a>,
    builder: &'b mut Builder,
}

impl Parser<'_, '_> {
    fn document(&mut self) -> Result<Node, Stop> {
        self.skip_ws();
        let node = self.value(1)?;
        self.skip_ws();
        if self.at < self.bytes.len() {
            return Err(self.syntax("unexpected text after the end of the document"));
        }
        Ok(node)
    }

    fn pos(&self, at: usize) -> Option<Pos> {
        Some(self.lines.pos(at))
    }

    fn syntax(&self, message: &str) -> Stop {
        let found = match self.source.get(self.at..).and_then(|s| s.chars().next()) {
            Some(c) => format!("{message} (found `{}`)", c.escape_debug()),
            None => format!("{message} (found the end of the input)"),
        };
        Stop::Syntax(found, self.at)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, Stop> {
        let start = self.at;
        let pos = self.pos(start);
        let value = match self.bytes.get(self.at) {
            Some(b'{') => {
                if !self.builder.check_depth(depth, pos) {
                    return Err(Stop::Reported);
                }
                self.object(depth, pos)?
            }
            Some(b'[') => {
                if !self.builder.check_depth(depth, pos) {
                    return Err(Stop::Reported);
                }
                self.array(depth, pos)?
            }
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.keyword("true", Value::Bool(true))?,
            Some(b'f') => self.keyword("false", Value::Bool(false))?,
            Some(b'n') => self.keyword("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.syntax("expected a value")),
        };
        Ok(Node { value, pos })
    }

    fn keyword(&mut self, word: &str, value: Value) -> Result<Value, Stop> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.syntax("expected a value"))
        }
    }

    fn object(&mut self, depth: usize, pos: Option<Pos>) -> Result<Value, Stop> {
        self.at += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.eat(b'}') {
            return Ok(Value::Table(entries));
        }
        loop {
            self.skip_ws();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(self.syntax("expected a key in double quotes"));
            }
            let key_pos = self.pos(self.at);
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(b':') {
                return Err(self.syntax("expected `:` after the key"));
            }
            self.skip_ws();
            let node = self.value(depth + 1)?;
            if !self
                .builder
                .insert(&mut entries, Entry { key, key_pos, node }, pos)
            {
                return Err(Stop::Reported);
            }
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(Value::Table(entries));
            }
            return Err(self.syntax("expected `,` or `}`"));
        }
    }

    fn array(&mut self, depth: usize, pos: Option<Pos>) -> Result<Value, Stop> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            let node = self.value(depth + 1)?;
            if !self.builder.check_items(items.len(), pos) {
                return Err(Stop::Reported);
            }
            items.push(node);
            self.skip_ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            return Err(self.syntax("expected `,` or `]`"));
        }
    }

    fn string(&mut self) -> Result<String, Stop> {
        let start = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let run_start = self.at;
            while let Some(&b) = self.bytes.get(self.at) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.at += 1;
            }
            // The run is between ASCII delimiters, so it is valid UTF-8.
            out.push_str(&self.source[run_start..self.at]);
            if out.len() > self.builder.limits.max_string {
                self.builder.check_string(&out, self.pos(start));
                return Err(Stop::Reported);
            }
            match self.bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let c = self.escape()?;
                    out.push(c);
                }
                Some(_) => {
                    return Err(self.syntax("control characters must be escaped in strings"));
                }
                None => {
                    self.at = start;
                    return Err(self.syntax("this string is never closed"));
                }
            }
        }
    }

    fn escape(&mut self) -> Result<char, Stop> {
        let Some(&b) = self.bytes.get(self.at) else {
            return Err(self.syntax("expected an escape sequence"));
        };
        self.at += 1;
        Ok(match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if (0xD800..0xDC00).contains(&first) {
                    if !(self.eat(b'\\') && self.eat(b'u')) {
                        return Err(
                            self.syntax("a high surrogate must be followed by `\\u` and a low one")
                        );
                    }
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.syntax("expected a low surrogate"));
                    }
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    char::from_u32(code).ok_or_else(|| self.syntax("invalid escape"))?
                } else {
                    char::from_u32(first)
                        .ok_or_else(|| self.syntax("a lone low surrogate is not a character"))?
                }
            }
            _ => {
                self.at -= 1;
                return Err(self.syntax("unknown escape sequence"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, Stop> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| self.syntax("expected four hex digits"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.syntax("expected hex digits"))?;
        let value =
            u32::from_str_radix(text, 16).map_err(|_| self.syntax("expected hex digits"))?;
        self.at += 4;
        Ok(value)
    }

    fn number(&mut self) -> Result<Value, Stop> {
        let start = self.at;
        self.eat(b'-');
        match self.bytes.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.syntax("expected a digit")),
        }
        let mut float = false;
        if self.eat(b'.') {
            float = true;
            if !matches!(self.bytes.get(self.at), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit after `.`"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            float = true;
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if !matches!(self.bytes.get(self.at), Some(b'0'..=b'9')) {
                return Err(self.syntax("expected a digit in the exponent"));
            }
            self.digits();
        }
        let text = &self.source[start..self.at];
        if !float && let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => {
                self.at = start;
                Err(self.syntax("this number is too large"))
            }
        }
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }
}
