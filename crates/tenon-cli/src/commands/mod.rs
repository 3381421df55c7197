//! One module per top-level command.

pub(crate) mod manifest;
pub(crate) mod resolve;
