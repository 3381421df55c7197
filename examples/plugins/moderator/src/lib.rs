//! Blocks `response.pre_deliver` when the content contains one of the words in
//! its config (`blocked_words`: whole words or phrases, case-insensitive);
//! otherwise lets it through unchanged.

use tenon_pdk::hooks::{self, ResponsePreDeliver};
use tenon_pdk::host::log;
use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin};

/// The moderator: lowercase blocked words and the reason template.
pub struct Moderator {
    blocked: Vec<String>,
    reason: String,
}

impl Moderator {
    /// Builds a moderator from its config.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let words: Vec<String> = config.require("blocked_words")?;
        let blocked = words
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        let reason = config.get_or(
            "reason",
            "the response contains the blocked word `{word}`".to_owned(),
        )?;
        Ok(Self { blocked, reason })
    }

    /// The first blocked word `text` contains as a whole word.
    pub fn find(&self, text: &str) -> Option<&str> {
        let text = text.to_lowercase();
        self.blocked
            .iter()
            .find(|word| contains_word(&text, word))
            .map(String::as_str)
    }
}

/// Whether `needle` occurs in `haystack` with no letter or digit touching
/// either end.
fn contains_word(haystack: &str, needle: &str) -> bool {
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    haystack.match_indices(needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        !is_word(before) && !is_word(after)
    })
}

impl Plugin for Moderator {
    fn activate(config: Config) -> Result<Self, Error> {
        Self::from_config(&config)
    }

    fn handle_hook(
        &mut self,
        hook: &str,
        _context: &HookContext,
        data: HookData,
    ) -> Result<HookAction, Error> {
        if hook != hooks::RESPONSE_PRE_DELIVER {
            return Err(Error::unsupported_hook(hook));
        }
        let response: ResponsePreDeliver = data.parse()?;
        match self.find(&response.content) {
            Some(word) => {
                log::info!(
                    "blocked a response for work item `{}`",
                    response.work_item_id
                );
                Ok(HookAction::block(self.reason.replace("{word}", word)))
            }
            None => Ok(HookAction::CONTINUE),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            // Checks a text: answers the blocked word found, or nothing.
            "check" => {
                let text = std::str::from_utf8(input)
                    .map_err(|_| Error::invalid_input("`check` takes UTF-8 text"))?;
                Ok(self.find(text).unwrap_or_default().as_bytes().to_vec())
            }
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(Moderator);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_case_insensitive() {
        let config =
            Config::from_json(r#"{"blocked_words": ["Darn", "top secret", " "]}"#).unwrap();
        let moderator = Moderator::from_config(&config).unwrap();
        let check = |text: &str, expected: Option<&str>| {
            assert_eq!(moderator.find(text), expected, "{text}");
        };
        check("well, DARN it", Some("darn"));
        check("darn.", Some("darn"));
        check("darning socks", None);
        check("this is Top Secret stuff", Some("top secret"));
        check("nothing here", None);
        check("", None);
    }

    #[test]
    fn blocked_words_are_required() {
        let error = Moderator::from_config(&Config::default()).err().unwrap();
        assert_eq!(error.code(), "invalid-config");
        assert!(error.message().contains("blocked_words"));
    }
}
