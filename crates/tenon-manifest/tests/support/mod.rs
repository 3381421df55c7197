//! Helpers shared by the integration tests.

pub(crate) mod schema_check;
