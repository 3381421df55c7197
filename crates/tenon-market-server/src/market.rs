//! [`Market`]: the marketplace over its database (SQLite, or PostgreSQL
//! with the `postgres` feature) — publishing, the signed index, curation,
//! downloads and tokens. The statements live in [`crate::db`], one
//! implementation per backend; this module holds what they share.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, Version, VersionReq};
use tenon_marketplace::metadata::MetaRole;
use tenon_marketplace::{IndexEntry, Sha256Digest, UnpackLimits};
use time::{Duration, OffsetDateTime};

use crate::db::Backend;
use crate::error::MarketError;
use crate::keys::MarketKeys;
use crate::search::{
    Category, Listing, PluginDetail, SearchPage, SearchQuery, Update, UpdatesRequest,
};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish new versions into namespaces the account owns (or claims).
    Publish,
    /// Yank and unyank, deprecate.
    Yank,
    /// Add and remove a namespace's owners.
    Owners,
    /// Curation: featured plugins, verified namespaces, tokens for others.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 4] = [Self::Publish, Self::Yank, Self::Owners, Self::Admin];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Yank => "yank",
            Self::Owners => "owners",
            Self::Admin => "admin",
        }
    }
}

impl FromStr for Scope {
    type Err = MarketError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                MarketError::BadRequest(format!(
                    "unknown scope `{s}` (known: publish, yank, owners, admin)"
                ))
            })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account the token belongs to.
    pub account: String,
    /// What the token may do.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Refuses unless the token has `scope` (admin has every scope).
    pub fn require(&self, scope: Scope) -> Result<(), MarketError> {
        if self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin) {
            return Ok(());
        }
        Err(MarketError::Forbidden(format!(
            "this token lacks the `{}` scope",
            scope.as_str()
        )))
    }
}

/// How long each online role's metadata is valid.
#[derive(Debug, Clone, Copy)]
pub struct Expiries {
    /// Targets (default 30 days).
    pub targets: Duration,
    /// Snapshot (default 7 days).
    pub snapshot: Duration,
    /// Timestamp (default 1 day); re-signed when less than half is left.
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        Self {
            targets: Duration::days(30),
            snapshot: Duration::days(7),
            timestamp: Duration::days(1),
        }
    }
}

/// The server's settings.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Bounds on uploaded packages (the archive limit bounds the upload).
    pub limits: UnpackLimits,
    /// Metadata lifetimes.
    pub expiries: Expiries,
    /// Publishes allowed per account per minute.
    pub publishes_per_minute: u32,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            limits: UnpackLimits::default(),
            expiries: Expiries::default(),
            publishes_per_minute: 30,
        }
    }
}

/// A marketplace: its database, keys and settings. Cheap to share behind
/// an `Arc`.
#[derive(Debug)]
pub struct Market {
    pub(crate) config: MarketConfig,
    backend: Backend,
}

/// Runs `$body` with `$store` bound to the backend's store.
macro_rules! on_backend {
    ($market:expr, $store:ident => $body:expr) => {
        match &$market.backend {
            Backend::Sqlite($store) => $body,
            #[cfg(feature = "postgres")]
            Backend::Postgres($store) => $body,
        }
    };
}

impl Market {
    /// Opens the database `db` names: a `postgres://` or `postgresql://` URL
    /// (with the `postgres` feature), otherwise a SQLite path (see
    /// [`Market::open_sqlite`]). Runs the backend's migrations.
    pub async fn open(
        db: &str,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        if db.starts_with("postgres://") || db.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Self::open_postgres(db, keys, config).await;
            #[cfg(not(feature = "postgres"))]
            return Err(MarketError::BadRequest(
                "this build has no PostgreSQL support: build tenon-market-server with the `postgres` feature".to_owned(),
            ));
        }
        Self::open_sqlite(db, keys, config).await
    }

    /// Opens (creating if missing) the SQLite database at `path` (`:memory:`
    /// for a private in-memory one) and runs its migrations.
    pub async fn open_sqlite(
        path: &str,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        keys.check(OffsetDateTime::now_utc())?;
        let store = crate::db::sqlite::Store::open(path, keys, config.clone()).await?;
        Ok(Self {
            config,
            backend: Backend::Sqlite(store),
        })
    }

    /// Connects to the PostgreSQL database at `url` and runs its migrations
    /// (in the schema the URL's `search_path` option names, if any, which
    /// must exist).
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(
        url: &str,
        keys: MarketKeys,
        config: MarketConfig,
    ) -> Result<Self, MarketError> {
        keys.check(OffsetDateTime::now_utc())?;
        let store = crate::db::postgres::Store::open(url, keys, config.clone()).await?;
        Ok(Self {
            config,
            backend: Backend::Postgres(store),
        })
    }

    /// Which database this marketplace runs on: `sqlite` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The signed root this marketplace serves.
    pub fn root(&self) -> &[u8] {
        on_backend!(self, s => &s.keys.root)
    }

    /// Root `version` as kept in the key directory (served as
    /// `meta/<version>.root.json`, for clients walking root rotations).
    pub fn root_version(&self, version: u64) -> Option<&[u8]> {
        on_backend!(self, s => s.keys.roots.get(&version).map(Vec::as_slice))
    }

    /// The online key's public half (the marketplace counter-signature key).
    pub fn marketplace_key(&self) -> tenon_marketplace::PublicKey {
        on_backend!(self, s => s.keys.online.public_key())
    }

    /// Creates `account` if new; the principal acting as it with `scopes`
    /// (for in-process callers such as seeding, which need no token).
    pub async fn account(&self, account: &str, scopes: &[Scope]) -> Result<Principal, MarketError> {
        on_backend!(self, s => s.account(account, scopes).await)
    }

    /// Creates `account` if new and a token for it with `scopes`; returns
    /// the secret (shown once; only its sha256 is stored).
    pub async fn create_token(
        &self,
        account: &str,
        scopes: &[Scope],
    ) -> Result<String, MarketError> {
        on_backend!(self, s => s.create_token(account, scopes).await)
    }

    /// The caller a token belongs to.
    pub async fn authenticate(&self, secret: &str) -> Result<Principal, MarketError> {
        on_backend!(self, s => s.authenticate(secret).await)
    }

    /// Publishes an upload (see [`crate::upload`]) as `who`. Everything is
    /// checked before anything is stored: the frame, the signature file,
    /// the author signature (by a key the namespace is bound to, or any
    /// valid author key for a namespace claimed now), the whole archive
    /// (layout, traversal, links, bombs, the manifest and that it names what
    /// was signed), the names and ownership; then the package, its index
    /// line and freshly signed metadata are stored in one transaction.
    pub async fn publish(&self, who: &Principal, body: &[u8]) -> Result<IndexEntry, MarketError> {
        on_backend!(self, s => s.publish(who, body).await)
    }

    /// The newest metadata file of `role`. Targets, snapshot and timestamp
    /// are re-signed first when less than half of their lifetime is left,
    /// so a running server never serves a frozen index.
    pub async fn metadata(&self, role: MetaRole) -> Result<Vec<u8>, MarketError> {
        self.metadata_at(role, OffsetDateTime::now_utc()).await
    }

    /// [`Market::metadata`] as at `now` (renewing what is due at `now`).
    pub async fn metadata_at(
        &self,
        role: MetaRole,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, MarketError> {
        on_backend!(self, s => s.metadata_at(role, now).await)
    }

    /// A plugin's index file (one line per version).
    pub async fn index_file(&self, id: &PluginId) -> Result<Vec<u8>, MarketError> {
        on_backend!(self, s => s.index_file(id).await)
    }

    /// Yanks (or unyanks) a version: its line keeps everything but the flag.
    pub async fn yank(
        &self,
        who: &Principal,
        id: &PluginId,
        version: &Version,
        yanked: bool,
    ) -> Result<(), MarketError> {
        on_backend!(self, s => s.yank(who, id, version, yanked).await)
    }

    /// Marks a plugin deprecated (with an optional replacement) or not.
    pub async fn deprecate(
        &self,
        who: &Principal,
        id: &PluginId,
        deprecated: bool,
        replacement: Option<&PluginId>,
    ) -> Result<(), MarketError> {
        on_backend!(self, s => s.deprecate(who, id, deprecated, replacement).await)
    }

    /// The accounts owning `namespace`.
    pub async fn owners(&self, namespace: &str) -> Result<Vec<String>, MarketError> {
        on_backend!(self, s => s.owners(namespace).await)
    }

    /// Adds or removes an owner of `namespace` (the last owner stays).
    pub async fn set_owner(
        &self,
        who: &Principal,
        namespace: &str,
        account: &str,
        owner: bool,
    ) -> Result<(), MarketError> {
        on_backend!(self, s => s.set_owner(who, namespace, account, owner).await)
    }

    /// Features a plugin at `rank` (lower first), or un-features it (admin).
    pub async fn set_featured(
        &self,
        who: &Principal,
        id: &PluginId,
        rank: Option<i64>,
    ) -> Result<(), MarketError> {
        on_backend!(self, s => s.set_featured(who, id, rank).await)
    }

    /// Marks a namespace's publisher verified or not (admin).
    pub async fn set_verified(
        &self,
        who: &Principal,
        namespace: &str,
        verified: bool,
    ) -> Result<(), MarketError> {
        on_backend!(self, s => s.set_verified(who, namespace, verified).await)
    }

    /// A version's archive and signature file. The download counts once per
    /// `client` (an account or a hashed address) per plugin per day.
    pub async fn download(
        &self,
        id: &PluginId,
        version: &Version,
        client: &str,
    ) -> Result<(Vec<u8>, String), MarketError> {
        on_backend!(self, s => s.download(id, version, client).await)
    }

    /// Searches the catalog.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, MarketError> {
        on_backend!(self, s => s.search(query).await)
    }

    /// One plugin's listing (as a search hit would show it for `query`'s
    /// host), its README and every version's index line.
    pub async fn plugin(
        &self,
        id: &PluginId,
        query: &SearchQuery,
    ) -> Result<PluginDetail, MarketError> {
        on_backend!(self, s => s.plugin(id, query).await)
    }

    /// Every version's index line, in publishing order.
    pub async fn versions(&self, id: &PluginId) -> Result<Vec<IndexEntry>, MarketError> {
        on_backend!(self, s => s.versions(id).await)
    }

    /// Every category with how many plugins list it.
    pub async fn categories(&self) -> Result<Vec<Category>, MarketError> {
        on_backend!(self, s => s.categories().await)
    }

    /// The featured plugins, by their curated rank.
    pub async fn featured(&self, query: &SearchQuery) -> Result<Vec<Listing>, MarketError> {
        on_backend!(self, s => s.featured(query).await)
    }

    /// The plugins with the most unique-client downloads over the last
    /// `days` days.
    pub async fn popular(
        &self,
        days: u32,
        limit: u32,
        query: &SearchQuery,
    ) -> Result<Vec<(Listing, i64)>, MarketError> {
        on_backend!(self, s => s.popular(days, limit, query).await)
    }

    /// For each installed plugin, the newest version that fits the host and
    /// is newer than the installed one.
    pub async fn updates(&self, request: &UpdatesRequest) -> Result<Vec<Update>, MarketError> {
        on_backend!(self, s => s.updates(request).await)
    }
}

/// The largest README stored, in bytes.
pub(crate) const MAX_README_BYTES: usize = 512 * 1024;

pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
pub(crate) fn check_account(account: &str) -> Result<(), MarketError> {
    if account.is_empty()
        || account.len() > 64
        || !account
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(MarketError::BadRequest(format!(
            "an account name is 1 to 64 lowercase ascii letters, digits or '-', not `{account}`"
        )));
    }
    Ok(())
}

pub(crate) fn join(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

pub(crate) fn newer_listing(new: &Version, current: &Version) -> bool {
    match (new.pre.is_empty(), current.pre.is_empty()) {
        (true, false) => true,
        (false, true) => false,
        _ => new.cmp_precedence(current).is_gt(),
    }
}
/// One version's compatibility, as the search filters need it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Compat {
    pub(crate) version: Version,
    pub(crate) tenon: VersionReq,
    #[serde(default)]
    pub(crate) host: Option<VersionReq>,
    pub(crate) yanked: bool,
}

/// The newest version (by precedence) of `compat` that is not yanked and
/// fits the host: `api` a served plugin API version, `host` the host's
/// version. Pre-releases only when nothing else fits.
pub(crate) fn newest_compatible<'a>(
    compat: &'a [Compat],
    api: Option<&Version>,
    host: Option<&Version>,
) -> Option<&'a Version> {
    let fits = |c: &&Compat| {
        !c.yanked
            && api.is_none_or(|api| c.tenon.matches(api))
            && host.is_none_or(|h| c.host.as_ref().is_none_or(|req| req.matches(h)))
    };
    let newest = |release: bool| {
        compat
            .iter()
            .filter(fits)
            .filter(|c| c.version.pre.is_empty() == release)
            .map(|c| &c.version)
            .max_by(|a, b| a.cmp_precedence(b))
    };
    newest(true).or_else(|| newest(false))
}
/// The body of a metadata file the server signed itself.
pub(crate) fn body_of<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MarketError> {
    #[derive(Deserialize)]
    struct Envelope<T> {
        signed: T,
    }
    serde_json::from_slice::<Envelope<T>>(bytes)
        .map(|e| e.signed)
        .map_err(|e| MarketError::Corrupt(format!("stored metadata does not parse: {e}")))
}

/// The sha256 (hex) tokens and download clients are stored as.
pub(crate) fn token_hash(secret: &str) -> String {
    Sha256Digest::of(secret.as_bytes()).to_hex()
}

pub(crate) fn hex_random() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}
