//! From source text to the positioned tree, one module per format.

pub(crate) mod json;
pub(crate) mod toml;
pub(crate) mod yaml;
