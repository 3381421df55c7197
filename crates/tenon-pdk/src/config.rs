//! The configuration a plugin is activated with.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

/// A plugin's configuration: the JSON object the operator set, with the
/// manifest's defaults applied and secrets left out (read granted secrets
/// with [`host::config::secret`](crate::host::config::secret)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    values: Map<String, Value>,
}

impl Config {
    /// Reads the JSON text the host passes to `activate`/`configure`. Empty
    /// text or `null` is an empty config; anything but an object is an
    /// `invalid-config` error.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        match serde_json::from_str(text) {
            Ok(Value::Object(values)) => Ok(Self { values }),
            Ok(Value::Null) => Ok(Self::default()),
            Ok(other) => Err(Error::invalid_config(format!(
                "the config must be a JSON object, not {}",
                kind(&other)
            ))),
            Err(e) => Err(Error::invalid_config(format!(
                "the config is not valid JSON: {e}"
            ))),
        }
    }

    /// A config holding these values.
    pub fn from_map(values: Map<String, Value>) -> Self {
        Self { values }
    }

    /// The value of `key` decoded as `T`, or `None` when it is absent or
    /// `null`. A value of the wrong type is an `invalid-config` error naming
    /// the key.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::deserialize(value).map(Some).map_err(|e| {
                Error::invalid_config(format!(
                    "config key `{key}` does not have the expected shape: {e}"
                ))
            }),
        }
    }

    /// The value of `key`; an absent key is an `invalid-config` error.
    pub fn require<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        self.get(key)?
            .ok_or_else(|| Error::invalid_config(format!("config key `{key}` is required")))
    }

    /// The value of `key`, or `default` when it is absent.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// The whole config decoded as `T` (typically a struct with
    /// `#[serde(default)]` fields).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&Value::Object(self.values.clone())).map_err(|e| {
            Error::invalid_config(format!("the config does not have the expected shape: {e}"))
        })
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw values.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.values
    }

    /// The raw values, owned.
    pub fn into_map(self) -> Map<String, Value> {
        self.values
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn reads_objects_and_refuses_the_rest() {
        let check =
            |text: &str, expected: Result<usize, &str>| match (Config::from_json(text), expected) {
                (Ok(config), Ok(len)) => assert_eq!(config.as_map().len(), len, "{text}"),
                (Err(error), Err(fragment)) => {
                    assert_eq!(error.code(), "invalid-config");
                    assert!(error.message().contains(fragment), "{text}: {error}");
                }
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            };
        check("", Ok(0));
        check("null", Ok(0));
        check("{}", Ok(0));
        check(r#"{"a": 1, "b": [2]}"#, Ok(2));
        check("[1]", Err("not an array"));
        check("\"x\"", Err("not a string"));
        check("{", Err("not valid JSON"));
    }

    #[test]
    fn typed_access_names_the_key() {
        let config =
            Config::from_json(r#"{"blocked_words": ["spam"], "limit": 3, "off": null}"#).unwrap();
        assert_eq!(
            config.get::<Vec<String>>("blocked_words").unwrap(),
            Some(vec!["spam".to_owned()])
        );
        assert_eq!(config.get::<u32>("missing").unwrap(), None);
        assert_eq!(config.get::<u32>("off").unwrap(), None);
        assert_eq!(config.get_or("missing", 7u32).unwrap(), 7);
        assert_eq!(config.require::<u32>("limit").unwrap(), 3);
        let error = config.require::<u32>("missing").unwrap_err();
        assert_eq!(error.message(), "config key `missing` is required");
        let error = config.get::<String>("limit").unwrap_err();
        assert!(
            error
                .message()
                .starts_with("config key `limit` does not have the expected shape: invalid type: integer `3`, expected a string"),
            "{error}"
        );
        assert!(config.contains("off") && !config.is_empty());
    }

    #[test]
    fn parses_the_whole_config_into_a_struct() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(default)]
        struct Settings {
            limit: u32,
            words: Vec<String>,
        }
        impl Default for Settings {
            fn default() -> Self {
                Self {
                    limit: 10,
                    words: Vec::new(),
                }
            }
        }
        let config = Config::from_json(r#"{"words": ["a"]}"#).unwrap();
        assert_eq!(
            config.parse::<Settings>().unwrap(),
            Settings {
                limit: 10,
                words: vec!["a".into()]
            }
        );
        let bad = Config::from_json(r#"{"limit": "ten"}"#).unwrap();
        assert_eq!(
            bad.parse::<Settings>().unwrap_err().code(),
            "invalid-config"
        );
    }
}
