//! [`MarketError`]: every way a marketplace request can fail, with the HTTP
//! status it maps to.

use tenon_marketplace::{MetadataError, PackageError};

use crate::names::NameError;

/// Why a marketplace operation failed. Each variant says what and where;
/// [`MarketError::status`] is the HTTP status the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    /// The request is malformed (a bad query, a bad upload frame, bad JSON).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a token the server does not know.
    #[error("this request needs a valid API token (`Authorization: Bearer …`)")]
    Unauthorized,
    /// The token lacks the scope, or its account does not own the namespace.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing by that name.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with what is stored (a version published
    /// twice, a taken name).
    #[error("{0}")]
    Conflict(String),
    /// A body over the limit.
    #[error("the {what} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size (or how much was read before giving up).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many requests from one token or address.
    #[error("too many requests from {who}; retry in {retry_after_secs} s")]
    RateLimited {
        /// The token's account or the address.
        who: String,
        /// Seconds until a request is allowed again.
        retry_after_secs: u64,
    },
    /// The request (its body included) took longer than the server allows.
    #[error("the request took longer than {millis} ms and was abandoned (a body sent too slowly?)")]
    Timeout {
        /// The limit, in milliseconds.
        millis: u128,
    },
    /// A package refused (corrupt, forged, traversal, bomb, bad manifest).
    #[error("package refused: {0}")]
    Package(#[from] PackageError),
    /// A plugin or namespace name refused.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The server's own metadata does not verify (a key or database problem).
    #[error("the server's signed metadata is inconsistent: {0}")]
    Metadata(#[from] MetadataError),
    /// A key or root file could not be read or written.
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Something the server stored earlier does not read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database's migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl MarketError {
    /// The HTTP status code this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::Name(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Timeout { .. } => 408,
            Self::Conflict(_) => 409,
            Self::TooLarge { .. } => 413,
            Self::Package(_) => 422,
            Self::RateLimited { .. } => 429,
            Self::Metadata(_)
            | Self::Corrupt(_)
            | Self::Io { .. }
            | Self::Database(_)
            | Self::Migrate(_) => 500,
        }
    }

    /// The message shown to clients: server-side failures are not detailed
    /// (they are logged instead).
    pub fn detail(&self) -> String {
        if self.status() >= 500 {
            "internal server error (logged on the server)".to_owned()
        } else {
            self.to_string()
        }
    }
}
