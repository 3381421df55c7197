//! Redacts secrets: on `tool.post_exec` it patches `result.output`, on
//! `response.pre_deliver` it patches `content`, replacing API keys, tokens,
//! passwords and the words from its config with `[REDACTED]`.
//!
//! Config: `words` (extra words, case-insensitive), `replacement` (default
//! `[REDACTED]`), `builtin_patterns` (default `true`).

use regex_lite::{Regex, RegexBuilder};
use tenon_pdk::hooks::{self, ResponsePreDeliver, ToolPostExec};
use tenon_pdk::host::log;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// Well-known secret formats. Where a pattern has a capture group, the group
/// is kept (`Bearer `, `api_key=`) and the rest of the match is redacted.
const BUILTIN_PATTERNS: &[&str] = &[
    // PEM private keys, whole blocks.
    r"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
    // Stripe-style keys: sk_live_…, rk_test_…
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
    // OpenAI / Anthropic-style keys: sk-…, sk-proj-…, sk-ant-…
    r"\bsk-[A-Za-z0-9_-]{16,}",
    // GitHub tokens.
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    // GitLab personal access tokens.
    r"\bglpat-[A-Za-z0-9_-]{20,}",
    // Slack tokens.
    r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    // Google API keys.
    r"\bAIza[0-9A-Za-z_-]{35}",
    // JSON Web Tokens.
    r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
    // Bearer tokens: keep the scheme.
    r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}=*",
    // key = value assignments of secret-looking keys: keep the key.
    r#"(?i)\b((?:api[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|client[_-]?secret|secret[_-]?key|secret|token|password|passwd|pwd)["']?\s*[:=]\s*["']?)[^\s"',;&]{4,}"#,
];

/// The redactor: compiled patterns and the replacement text.
pub struct Redactor {
    patterns: Vec<Regex>,
    replacement: String,
}

impl Redactor {
    /// Builds a redactor from the config.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let words: Vec<String> = config.get_or("words", Vec::new())?;
        let replacement = config.get_or("replacement", "[REDACTED]".to_owned())?;
        let builtin = config.get_or("builtin_patterns", true)?;
        let mut patterns = Vec::new();
        if builtin {
            for pattern in BUILTIN_PATTERNS {
                patterns.push(Regex::new(pattern).map_err(|e| {
                    Error::internal(format!(
                        "built-in pattern `{pattern}` does not compile: {e}"
                    ))
                })?);
            }
        }
        for word in words.iter().filter(|w| !w.trim().is_empty()) {
            let pattern = RegexBuilder::new(&regex_lite::escape(word))
                .case_insensitive(true)
                .build()
                .map_err(|e| Error::invalid_config(format!("word `{word}`: {e}")))?;
            patterns.push(pattern);
        }
        Ok(Self {
            patterns,
            replacement,
        })
    }

    /// `text` with every secret replaced, and how many were.
    pub fn redact(&self, text: &str) -> (String, usize) {
        let mut text = text.to_owned();
        let mut count = 0;
        for pattern in &self.patterns {
            if !pattern.is_match(&text) {
                continue;
            }
            let replaced = pattern.replace_all(&text, |caps: &regex_lite::Captures<'_>| {
                count += 1;
                let kept = caps.get(1).map_or("", |m| m.as_str());
                format!("{kept}{}", self.replacement)
            });
            text = replaced.into_owned();
        }
        (text, count)
    }

    fn patch(&self, hook: &str, pointer: &str, text: &str) -> Result<HookAction, Error> {
        let (redacted, count) = self.redact(text);
        if count == 0 {
            return Ok(HookAction::CONTINUE);
        }
        log::info!("{hook}: redacted {count} secret(s) in {pointer}");
        HookAction::set(pointer, redacted)
    }
}

impl Plugin for Redactor {
    fn activate(config: Config) -> Result<Self, Error> {
        Self::from_config(&config)
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        match hook {
            hooks::TOOL_POST_EXEC => {
                let call: ToolPostExec = data.parse()?;
                self.patch(hook, "/result/output", &call.result.output)
            }
            hooks::RESPONSE_PRE_DELIVER => {
                let response: ResponsePreDeliver = data.parse()?;
                self.patch(hook, "/content", &response.content)
            }
            other => Err(Error::unsupported_hook(other)),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            // Redacts any text: handy for operators checking the patterns.
            "redact" => {
                let text = std::str::from_utf8(input)
                    .map_err(|_| Error::invalid_input("`redact` takes UTF-8 text"))?;
                Ok(self.redact(text).0.into_bytes())
            }
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Redactor);

#[cfg(test)]
mod tests {
    use tenon_pdk::serde_json::json;

    use super::*;

    fn redactor(config: tenon_pdk::serde_json::Value) -> Redactor {
        Redactor::from_config(&Config::from_json(&config.to_string()).unwrap()).unwrap()
    }

    #[test]
    fn builtin_patterns() {
        let r = redactor(json!({}));
        let check = |input: &str, expected: &str| {
            assert_eq!(r.redact(input).0, expected, "{input}");
        };
        check("nothing to see", "nothing to see");
        check(
            "key sk-proj-abcdefghijklmnop1234 used",
            "key [REDACTED] used",
        );
        check("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED]");
        check("ghp_16C7e42F292c6912E7710c838347Ae178B4a!", "[REDACTED]!");
        check("AKIAIOSFODNN7EXAMPLE", "[REDACTED]");
        check("xoxb-123456789012-abcdefghij", "[REDACTED]");
        check(
            "Authorization: Bearer abc.def-123456",
            "Authorization: Bearer [REDACTED]",
        );
        check("API_KEY=hunter2hunter2 next", "API_KEY=[REDACTED] next");
        check(
            r#"{"password": "p4ssw0rd!"}"#,
            r#"{"password": "[REDACTED]"}"#,
        );
        check(
            "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.SflKxwRJSMeKKF2QT4fwpM",
            "t=[REDACTED]",
        );
        check(
            "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\nb",
            "a\n[REDACTED]\nb",
        );
    }

    #[test]
    fn configured_words_and_replacement() {
        let r = redactor(json!({
            "words": ["Project Falcon", ""],
            "replacement": "***",
            "builtin_patterns": false
        }));
        assert_eq!(
            r.redact("project falcon ships; sk-abcdefghijklmnopqrstu"),
            ("*** ships; sk-abcdefghijklmnopqrstu".to_owned(), 1)
        );
        let bad = Redactor::from_config(&Config::from_json(r#"{"words": "x"}"#).unwrap());
        assert_eq!(bad.err().unwrap().code(), "invalid-config");
    }
}
