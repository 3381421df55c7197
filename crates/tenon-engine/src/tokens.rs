//! Bearer tokens for the engine's HTTP API, and the record of what their
//! holders changed. A token is a random secret shown once when it is made;
//! the registry keeps only its sha256, with the holder's name and a role.
//! What a role allows is decided here ([`Role::allows`]), so every host
//! that serves the engine over HTTP draws the line in the same place.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;
use tenon_manifest::PluginId;
use tenon_registry::{EventKind, EventStatus, NewApiToken, NewEvent, Sha256Digest};
use time::OffsetDateTime;

use crate::engine::PluginEngine;
use crate::error::{EngineError, Result};

/// The event kind recording a change made through the HTTP API (detail:
/// `actor`, `action` and what the request named).
pub const API_EVENT_KIND: &str = "api.request";

/// What a token's holder may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read: plugins, events, stats, doctor, metrics.
    Viewer,
    /// Also run plugins: enable, disable, configure, dispatch hooks.
    Operator,
    /// Also change what is installed and trusted: install, upgrade,
    /// rollback, uninstall, grant, revoke.
    Admin,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Self; 3] = [Self::Viewer, Self::Operator, Self::Admin];

    /// Its name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Whether a holder of this role may do what `needed` allows.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = EngineError;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| EngineError::InvalidToken {
                message: format!("`{text}` is not a role: choose viewer, operator or admin"),
            })
    }
}

/// A token as the registry keeps it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Who holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A token just made: the secret is here and nowhere else.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct CreatedToken {
    /// What the registry keeps.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The bearer secret (`tenon_` and 64 hex digits); not recoverable.
    pub secret: String,
}

impl fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("secret", &"********")
            .finish()
    }
}

/// The prefix of every token secret.
const SECRET_PREFIX: &str = "tenon_";
/// The longest token name.
const MAX_NAME_LEN: usize = 64;
/// The longest text looked up as a secret (anything longer is no token).
const MAX_SECRET_LEN: usize = 128;

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidToken {
            message: format!(
                "the token name `{}` is not 1 to {MAX_NAME_LEN} of letters, digits, '-', '_', '.', '@'",
                name.escape_default()
            ),
        })
    }
}

fn info(stored: &tenon_registry::ApiToken) -> Result<TokenInfo> {
    Ok(TokenInfo {
        name: stored.name.clone(),
        role: stored.role.parse()?,
        created_at: stored.created_at,
    })
}

fn secret_hash(secret: &str) -> String {
    Sha256Digest::of(secret.as_bytes()).to_hex()
}

impl PluginEngine {
    /// Makes a bearer token for `name` (unique in the tenant) with `role`,
    /// storing only its hash. The returned secret is the only copy.
    pub async fn create_token(&self, name: &str, role: Role) -> Result<CreatedToken> {
        check_name(name)?;
        let secret = format!(
            "{SECRET_PREFIX}{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let stored = self
            .shared
            .store
            .insert_api_token(&NewApiToken {
                tenant: self.tenant.id.clone(),
                name: name.to_owned(),
                role: role.as_str().to_owned(),
                token_sha256: secret_hash(&secret),
            })
            .await?;
        Ok(CreatedToken {
            info: info(&stored)?,
            secret,
        })
    }

    /// The token whose secret is `secret`, if the tenant has one.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<TokenInfo>> {
        if !secret.starts_with(SECRET_PREFIX) || secret.len() > MAX_SECRET_LEN {
            return Ok(None);
        }
        self.shared
            .store
            .find_api_token(&self.tenant.id, &secret_hash(secret))
            .await?
            .as_ref()
            .map(info)
            .transpose()
    }

    /// The tenant's tokens, by name.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.shared
            .store
            .list_api_tokens(&self.tenant.id)
            .await?
            .iter()
            .map(info)
            .collect()
    }

    /// Revokes a token by name; whether there was one.
    pub async fn revoke_token(&self, name: &str) -> Result<bool> {
        Ok(self
            .shared
            .store
            .delete_api_token(&self.tenant.id, name)
            .await?)
    }

    /// Records in the event log (kind [`API_EVENT_KIND`]) that `actor`
    /// asked for `action` (on `plugin`), and how it ended; written before
    /// this returns. The plugin is named in the detail, not as the event's
    /// plugin, so that purging a plugin's events never erases who changed
    /// it.
    pub async fn record_api_request(
        &self,
        actor: &str,
        action: &str,
        plugin: Option<&PluginId>,
        outcome: std::result::Result<(), &str>,
    ) -> Result<()> {
        let kind = EventKind::parse(API_EVENT_KIND)?;
        let status = if outcome.is_ok() {
            EventStatus::Ok
        } else {
            EventStatus::Error
        };
        let mut detail = serde_json::json!({
            "actor": actor,
            "action": action,
            "plugin": plugin.map(PluginId::as_str),
        });
        if let (Err(error), Value::Object(map)) = (outcome, &mut detail) {
            map.insert("error".to_owned(), Value::String(error.to_owned()));
        }
        let event = NewEvent::new(self.tenant.id.clone(), kind, status).with_detail(detail);
        self.shared.store.append_events(&[event]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_ones_before() {
        for (have, need, allowed) in [
            (Role::Viewer, Role::Viewer, true),
            (Role::Viewer, Role::Operator, false),
            (Role::Viewer, Role::Admin, false),
            (Role::Operator, Role::Viewer, true),
            (Role::Operator, Role::Operator, true),
            (Role::Operator, Role::Admin, false),
            (Role::Admin, Role::Admin, true),
        ] {
            assert_eq!(have.allows(need), allowed, "{have} for {need}");
        }
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn names() {
        for (name, ok) in [
            ("ci", true),
            ("ops@example.com", true),
            ("a.b-c_d", true),
            ("", false),
            ("has space", false),
            ("new\nline", false),
            (&"x".repeat(65), false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name:?}");
        }
    }
}
