//! The three formats a manifest can be written in.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A manifest's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// `tenon.toml`, the canonical one.
    Toml,
    /// `tenon.json`.
    Json,
    /// `tenon.yaml` or `tenon.yml`.
    Yaml,
}

/// A format name that is not `toml`, `json`, `yaml` or `yml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a manifest format: use toml, json or yaml")]
pub struct UnknownFormat(pub String);

impl Format {
    /// Every format, canonical first.
    pub const ALL: [Self; 3] = [Self::Toml, Self::Json, Self::Yaml];

    /// The format of a file, from its extension (case-insensitive): `.toml`,
    /// `.json`, `.yaml` or `.yml`. Pure: the file is not opened.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        Self::from_name(ext).ok()
    }

    /// The format named `toml`, `json`, `yaml` or `yml` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Self, UnknownFormat> {
        match name.to_ascii_lowercase().as_str() {
            "toml" => Ok(Self::Toml),
            "json" => Ok(Self::Json),
            "yaml" | "yml" => Ok(Self::Yaml),
            _ => Err(UnknownFormat(name.to_owned())),
        }
    }

    /// `toml`, `json` or `yaml`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Toml => "toml",
            Self::Json => "json",
            Self::Yaml => "yaml",
        }
    }

    /// The canonical file name: `tenon.toml`, `tenon.json`, `tenon.yaml`.
    pub const fn file_name(self) -> &'static str {
        match self {
            Self::Toml => "tenon.toml",
            Self::Json => "tenon.json",
            Self::Yaml => "tenon.yaml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_path() {
        for (path, expected) in [
            ("tenon.toml", Some(Format::Toml)),
            ("a/b/tenon.JSON", Some(Format::Json)),
            ("x.yaml", Some(Format::Yaml)),
            ("x.yml", Some(Format::Yaml)),
            ("tenon", None),
            ("x.txt", None),
            ("toml", None),
        ] {
            assert_eq!(Format::from_path(Path::new(path)), expected, "{path}");
        }
        assert_eq!(
            "xml".parse::<Format>().unwrap_err().to_string(),
            "`xml` is not a manifest format: use toml, json or yaml"
        );
    }
}
