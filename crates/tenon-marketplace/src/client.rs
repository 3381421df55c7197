//! The marketplace client (the `client` feature): fetches a marketplace's
//! TUF-lite metadata and sparse index over HTTP, checks every byte against
//! the chain of trust, and downloads packages checked against their pinned
//! size and sha256 and the operator's [`TrustPolicy`], before anything is
//! unpacked.
//!
//! Everything it trusted is kept in a cache directory of its own, one per
//! marketplace URL:
//!
//! ```text
//! <cache>/<sha256 of the URL, 16 hex>/
//!   url                      the marketplace's URL
//!   root.json                the trusted root (pinned at first use, or given)
//!   state.json               the highest metadata versions trusted, and when
//!   meta/{timestamp,snapshot,targets}.json   the last metadata trusted
//!   index/<publisher>/<name>  index files, with `<name>.etag`
//!   packages/<sha256>.tenon  downloaded packages
//! ```
//!
//! `state.json` makes a rollback or a freeze refused across restarts: a
//! client never accepts metadata older than what it once trusted. Offline
//! ([`ClientOptions::offline`]), the client reads only the cache: the
//! metadata is checked as it was when last refreshed, and anything not
//! cached is an error saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, Version};
use time::OffsetDateTime;

use crate::catalog::{Category, Listing, Popular, SearchPage, SearchQuery};
use crate::digest::Sha256Digest;
use crate::error::PackageError;
use crate::index::{IndexEntry, IndexError, index_path, parse_index_file};
use crate::metadata::{
    MAX_ROOT_BYTES, MAX_ROOT_ROTATIONS, MAX_TIMESTAMP_BYTES, MetaRole, MetadataError,
    SNAPSHOT_FILE, SeenVersions, TARGETS_FILE, TrustedMetadata,
};
use crate::sign::SignatureFile;
use crate::trust::{Origin, TrustPolicy, Verification, verify};

/// Why the client refused, or could not do, something.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The marketplace URL is not an `http` or `https` URL.
    #[error("`{url}` is not a marketplace URL (http:// or https://)")]
    Url {
        /// What was given.
        url: String,
    },
    /// The request failed: no connection, a connection dropped half-way, a
    /// timeout.
    #[error("{url}: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with an error status.
    #[error("{url}: the marketplace answered {status}{}", detail_suffix(.detail))]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's explanation, if it gave one.
        detail: Option<String>,
    },
    /// The response was longer than what was expected of it (an endless
    /// response is cut there).
    #[error("{url}: the response is longer than the {limit} bytes expected; refusing it")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The most that was accepted.
        limit: u64,
    },
    /// Metadata was refused (forged, expired, rolled back, mixed up).
    #[error("{marketplace}: {source}")]
    Metadata {
        /// The marketplace.
        marketplace: String,
        /// Why.
        #[source]
        source: MetadataError,
    },
    /// An index file was refused.
    #[error("{marketplace}: {source}")]
    Index {
        /// The marketplace.
        marketplace: String,
        /// Why.
        #[source]
        source: IndexError,
    },
    /// A downloaded package was refused (size, checksum, signatures, trust).
    #[error("{id} {version} from {marketplace}: {source}")]
    Package {
        /// The marketplace.
        marketplace: String,
        /// The plugin.
        id: PluginId,
        /// The version.
        version: Version,
        /// Why.
        #[source]
        source: Box<PackageError>,
    },
    /// The marketplace does not list the plugin.
    #[error("{marketplace} has no plugin {id}")]
    UnknownPlugin {
        /// The marketplace.
        marketplace: String,
        /// The plugin asked for.
        id: PluginId,
    },
    /// The marketplace lists the plugin, but not this version.
    #[error("{marketplace} has no version {version} of {id}")]
    UnknownVersion {
        /// The marketplace.
        marketplace: String,
        /// The plugin.
        id: PluginId,
        /// The version asked for.
        version: Version,
    },
    /// Offline, and the cache does not hold what was asked for.
    #[error("offline, and the cache ({}) holds no {what}", .cache.display())]
    NotCached {
        /// The cache directory.
        cache: PathBuf,
        /// What was missing.
        what: String,
    },
    /// A catalog answer was not the JSON document expected.
    #[error("{url}: the marketplace's answer is not what its API describes: {message}")]
    Response {
        /// The URL requested.
        url: String,
        /// What was wrong with it.
        message: String,
    },
    /// The cache could not be read or written.
    #[error("the marketplace cache at {}: {message}", .path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

fn detail_suffix(detail: &Option<String>) -> String {
    detail
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// The largest catalog answer read, in bytes (a page of at most 100
/// listings is far smaller).
pub const MAX_CATALOG_BYTES: u64 = 4 * 1024 * 1024;

/// How a [`MarketClient`] works.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The directory holding every marketplace's cache.
    pub cache_dir: PathBuf,
    /// Read only the cache; never touch the network.
    pub offline: bool,
    /// The root to trust, when the operator pins one; without it the cached
    /// root is trusted, or, the first time, the one the marketplace serves
    /// (trust on first use).
    pub root: Option<Vec<u8>>,
    /// The largest package downloaded, in bytes (besides its pinned size).
    pub max_package_bytes: u64,
    /// How long one request may take, from connecting to the last byte.
    pub timeout: Duration,
}

impl ClientOptions {
    /// Online, caching under `cache_dir`, packages up to the default
    /// archive limit, requests of at most five minutes.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            offline: false,
            root: None,
            max_package_bytes: crate::limits::UnpackLimits::default().max_archive_bytes,
            timeout: Duration::from_secs(300),
        }
    }
}

/// What the client remembers about a marketplace across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// The highest versions trusted.
    seen: SeenVersions,
    /// When the cached metadata was last trusted (offline checks use it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    refreshed_at: Option<OffsetDateTime>,
}

/// A package downloaded and checked: its size and sha256 are the ones the
/// trusted index pins, and its signatures satisfy the trust policy. Nothing
/// in it has been decompressed.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The index line it was downloaded for.
    pub entry: IndexEntry,
    /// The archive.
    pub bytes: Vec<u8>,
    /// Its signature file, as the trusted index lists it.
    pub signatures: SignatureFile,
    /// What verifying it found.
    pub verification: Verification,
    /// Where it is cached.
    pub path: PathBuf,
}

/// A client of one marketplace.
#[derive(Debug)]
pub struct MarketClient {
    url: String,
    http: reqwest::Client,
    dir: PathBuf,
    options: ClientOptions,
    trusted: Option<TrustedMetadata>,
}

impl MarketClient {
    /// A client of the marketplace at `url` (`http://…` or `https://…`).
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let url = crate::catalog::marketplace_url(url).ok_or_else(|| ClientError::Url {
            url: url.to_owned(),
        })?;
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tenon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Http {
                url: url.clone(),
                message: e.to_string(),
            })?;
        let key = Sha256Digest::of(url.as_bytes()).to_string();
        let dir = options.cache_dir.join(&key[..16]);
        Ok(Self {
            url,
            http,
            dir,
            options,
            trusted: None,
        })
    }

    /// The marketplace's URL (without a final `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This marketplace's cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the client reads only its cache.
    pub fn is_offline(&self) -> bool {
        self.options.offline
    }

    /// The HTTP client (for the JSON API: search, publishing).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn metadata_error(&self, source: MetadataError) -> ClientError {
        ClientError::Metadata {
            marketplace: self.url.clone(),
            source,
        }
    }

    /// Brings the trusted metadata up to date: the root (rotations, one
    /// version at a time), then timestamp, snapshot and targets, each
    /// checked as `docs/marketplace.md` says; the versions trusted are
    /// stored before this returns. Offline, the cached metadata is checked
    /// as of when it was trusted.
    pub async fn refresh(&mut self) -> Result<(), ClientError> {
        if self.options.offline {
            return self.load_cached().await;
        }
        self.refresh_at(OffsetDateTime::now_utc()).await
    }

    async fn refresh_at(&mut self, now: OffsetDateTime) -> Result<(), ClientError> {
        self.write_cache("url", self.url.as_bytes()).await?;
        let state = self.state().await?;
        let root = self.trusted_root().await?;
        // The trusted root may have expired while this client was away: it
        // is walked forward first, and only the last root must be fresh.
        let mut trusted = TrustedMetadata::trusting_root(&root, state.seen)
            .map_err(|e| self.metadata_error(e))?;
        // Root rotations: `meta/<N+1>.root.json` until there is none, at
        // most `MAX_ROOT_ROTATIONS` of them.
        let mut rotations = 0;
        while let Some(next) = trusted.root().version.checked_add(1) {
            if rotations == MAX_ROOT_ROTATIONS {
                return Err(self.metadata_error(MetadataError::TooManyRootRotations {
                    limit: MAX_ROOT_ROTATIONS,
                }));
            }
            rotations += 1;
            let path = format!("meta/{next}.root.json");
            let Some(bytes) = self.get_optional(&path, MAX_ROOT_BYTES).await? else {
                break;
            };
            trusted
                .update_root(&bytes)
                .map_err(|e| self.metadata_error(e))?;
            self.write_cache("root.json", &bytes).await?;
        }
        trusted
            .check_root_fresh(now)
            .map_err(|e| self.metadata_error(e))?;
        let timestamp = self
            .get("meta/timestamp.json", MAX_TIMESTAMP_BYTES, None)
            .await?;
        let snapshot_pin = trusted
            .update_timestamp(&timestamp, now)
            .map_err(|e| self.metadata_error(e))?
            .meta[SNAPSHOT_FILE]
            .clone();
        let snapshot = self
            .pinned_file(
                "meta/snapshot.json",
                snapshot_pin.length,
                &snapshot_pin.sha256,
            )
            .await?;
        let targets_pin = trusted
            .update_snapshot(&snapshot, now)
            .map_err(|e| self.metadata_error(e))?
            .meta[TARGETS_FILE]
            .clone();
        let targets = self
            .pinned_file("meta/targets.json", targets_pin.length, &targets_pin.sha256)
            .await?;
        trusted
            .update_targets(&targets, now)
            .map_err(|e| self.metadata_error(e))?;
        // Trusted: remember it, versions first.
        let state = State {
            seen: trusted.versions(),
            refreshed_at: Some(now),
        };
        self.write_state(&state).await?;
        self.write_cache("meta/timestamp.json", &timestamp).await?;
        self.write_cache("meta/snapshot.json", &snapshot).await?;
        self.write_cache("meta/targets.json", &targets).await?;
        self.trusted = Some(trusted);
        Ok(())
    }

    /// The cached metadata, checked as of when it was trusted.
    async fn load_cached(&mut self) -> Result<(), ClientError> {
        let state = self.state().await?;
        let Some(at) = state.refreshed_at else {
            return Err(self.not_cached("marketplace metadata (refresh once online)"));
        };
        let root = self.require_cached("root.json").await?;
        let mut trusted = TrustedMetadata::new(&root, SeenVersions::default(), at)
            .map_err(|e| self.metadata_error(e))?;
        let timestamp = self.require_cached("meta/timestamp.json").await?;
        let snapshot = self.require_cached("meta/snapshot.json").await?;
        let targets = self.require_cached("meta/targets.json").await?;
        let check = |trusted: &mut TrustedMetadata| -> Result<(), MetadataError> {
            trusted.update_timestamp(&timestamp, at)?;
            trusted.update_snapshot(&snapshot, at)?;
            trusted.update_targets(&targets, at)?;
            Ok(())
        };
        check(&mut trusted).map_err(|e| self.metadata_error(e))?;
        self.trusted = Some(trusted);
        Ok(())
    }

    fn trusted(&self) -> Result<&TrustedMetadata, ClientError> {
        self.trusted
            .as_ref()
            .ok_or_else(|| self.metadata_error(MetadataError::Missing(MetaRole::Targets)))
    }

    /// The trusted metadata's versions (after [`Self::refresh`]).
    pub fn versions(&self) -> Option<SeenVersions> {
        self.trusted.as_ref().map(TrustedMetadata::versions)
    }

    /// Every version of `id` the trusted index lists, in publishing order.
    /// The file is read from the cache when it is the one targets pins,
    /// else fetched (with the cached ETag) and checked against the pin.
    pub async fn index(&self, id: &PluginId) -> Result<Vec<IndexEntry>, ClientError> {
        let path = index_path(id);
        let pin = match self.trusted()?.target(&path) {
            Ok(pin) => pin.clone(),
            Err(MetadataError::UnknownTarget(_)) => {
                return Err(ClientError::UnknownPlugin {
                    marketplace: self.url.clone(),
                    id: id.clone(),
                });
            }
            Err(e) => return Err(self.metadata_error(e)),
        };
        let bytes = self.pinned_file(&path, pin.length, &pin.sha256).await?;
        self.trusted()?
            .check_target(&path, &bytes)
            .map_err(|e| self.metadata_error(e))?;
        self.write_cache(&path, &bytes).await?;
        parse_index_file(id, &bytes).map_err(|source| ClientError::Index {
            marketplace: self.url.clone(),
            source,
        })
    }

    /// Downloads `id` `version` (from the cache when it holds it), checks
    /// its size and sha256 against the trusted index line and its
    /// signatures against `policy`, and caches it.
    pub async fn download(
        &self,
        entry: &IndexEntry,
        policy: &TrustPolicy,
    ) -> Result<Downloaded, ClientError> {
        let package_error = |source| ClientError::Package {
            marketplace: self.url.clone(),
            id: entry.id.clone(),
            version: entry.version.clone(),
            source: Box::new(source),
        };
        let cached = format!("packages/{}.tenon", entry.sha256);
        let path = self.dir.join(&cached);
        let bytes = match self.read_cache(&cached).await? {
            Some(bytes) if Sha256Digest::of(&bytes) == entry.sha256 => bytes,
            _ if self.options.offline => {
                return Err(self.not_cached(&format!("package of {} {}", entry.id, entry.version)));
            }
            _ => {
                if entry.size > self.options.max_package_bytes {
                    return Err(package_error(PackageError::ArchiveTooLarge {
                        size: entry.size,
                        limit: self.options.max_package_bytes,
                    }));
                }
                let url = format!(
                    "api/v1/plugins/{}/{}/{}/download",
                    entry.id.publisher(),
                    entry.id.name(),
                    entry.version
                );
                self.get(&url, entry.size, None).await?
            }
        };
        let mut signatures =
            SignatureFile::new(entry.sha256, entry.id.clone(), entry.version.clone());
        signatures.signatures = entry.signatures.clone();
        let verification = verify(&bytes, Some(&signatures), policy, Origin::Remote)
            .map_err(package_error)?
            .verification()
            .clone();
        self.write_cache(&cached, &bytes).await?;
        Ok(Downloaded {
            entry: entry.clone(),
            bytes,
            signatures,
            verification,
            path,
        })
    }

    /// The line of `id` `version` in the trusted index.
    pub async fn entry(&self, id: &PluginId, version: &Version) -> Result<IndexEntry, ClientError> {
        self.index(id)
            .await?
            .into_iter()
            .find(|e| e.version == *version)
            .ok_or_else(|| ClientError::UnknownVersion {
                marketplace: self.url.clone(),
                id: id.clone(),
                version: version.clone(),
            })
    }

    // ---- The catalog (unsigned: for choosing a plugin, never for
    // deciding what is installed) ----

    /// A page of the marketplace's search (`GET /api/v1/search`); pass the
    /// page's `next` as `query.cursor` for the following one.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage, ClientError> {
        self.get_json("api/v1/search", &query_params(query)).await
    }

    /// The categories with how many plugins list each
    /// (`GET /api/v1/categories`).
    pub async fn categories(&self) -> Result<Vec<Category>, ClientError> {
        #[derive(Deserialize)]
        struct Answer {
            categories: Vec<Category>,
        }
        let answer: Answer = self.get_json("api/v1/categories", &[]).await?;
        Ok(answer.categories)
    }

    /// The curated plugins in their order (`GET /api/v1/featured`); with
    /// `host`'s `api` and `host_version`, only those with a version that
    /// fits it.
    pub async fn featured(&self, host: &SearchQuery) -> Result<Vec<Listing>, ClientError> {
        #[derive(Deserialize)]
        struct Answer {
            plugins: Vec<Listing>,
        }
        let answer: Answer = self.get_json("api/v1/featured", &host_params(host)).await?;
        Ok(answer.plugins)
    }

    /// The most downloaded plugins over the last `days` days, at most
    /// `limit` (`GET /api/v1/popular`), filtered for `host` as
    /// [`Self::featured`] is.
    pub async fn popular(
        &self,
        days: u32,
        limit: u32,
        host: &SearchQuery,
    ) -> Result<Vec<Popular>, ClientError> {
        #[derive(Deserialize)]
        struct Answer {
            plugins: Vec<Popular>,
        }
        let mut params = host_params(host);
        params.push(("days".to_owned(), days.to_string()));
        params.push(("limit".to_owned(), limit.to_string()));
        let answer: Answer = self.get_json("api/v1/popular", &params).await?;
        Ok(answer.plugins)
    }

    // ---- HTTP ----

    fn full(&self, path: &str) -> String {
        format!("{}/{}", self.url, path.trim_start_matches('/'))
    }

    /// A file pinned by `length` and `sha256`: the cached copy when it is
    /// exactly that, else fetched (conditionally, with the cached ETag).
    async fn pinned_file(
        &self,
        path: &str,
        length: u64,
        sha256: &Sha256Digest,
    ) -> Result<Vec<u8>, ClientError> {
        let cached = self.read_cache(path).await?;
        if let Some(bytes) = &cached
            && bytes.len() as u64 == length
            && Sha256Digest::of(bytes) == *sha256
        {
            return Ok(cached.unwrap_or_default());
        }
        if self.options.offline {
            return Err(self.not_cached(path));
        }
        let etag_file = format!("{path}.etag");
        let etag = match &cached {
            Some(_) => self
                .read_cache(&etag_file)
                .await?
                .and_then(|e| String::from_utf8(e).ok()),
            None => None,
        };
        let (bytes, new_etag) = self.fetch(path, length, etag.as_deref()).await?;
        let bytes = match bytes {
            Some(bytes) => bytes,
            // 304: the cached copy (checked by the caller against the pin).
            None => cached.unwrap_or_default(),
        };
        if let Some(tag) = new_etag {
            self.write_cache(&etag_file, tag.as_bytes()).await?;
        }
        Ok(bytes)
    }

    /// GET `path`, at most `limit` bytes; 404 is `None`.
    async fn get_optional(&self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, ClientError> {
        match self.get(path, limit, None).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(ClientError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET `path`, at most `limit` bytes.
    async fn get(
        &self,
        path: &str,
        limit: u64,
        etag: Option<&str>,
    ) -> Result<Vec<u8>, ClientError> {
        let (bytes, _) = self.fetch(path, limit, etag).await?;
        Ok(bytes.unwrap_or_default())
    }

    /// GET `path`: the body (`None` for a 304) and the ETag. Reading stops
    /// past `limit` bytes.
    async fn fetch(
        &self,
        path: &str,
        limit: u64,
        etag: Option<&str>,
    ) -> Result<(Option<Vec<u8>>, Option<String>), ClientError> {
        self.fetch_url(self.full(path), limit, etag).await
    }

    /// GET the JSON document at `path` with the query `params` (at most
    /// [`MAX_CATALOG_BYTES`]), read as a `T`.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(String, String)],
    ) -> Result<T, ClientError> {
        if self.options.offline {
            return Err(self.not_cached(&format!(
                "catalog answers ({path} is only read from the marketplace)"
            )));
        }
        let full = self.full(path);
        let url = reqwest::Url::parse_with_params(&full, params)
            .map_err(|_| ClientError::Url { url: full.clone() })?
            .to_string();
        let (bytes, _) = self.fetch_url(url.clone(), MAX_CATALOG_BYTES, None).await?;
        serde_json::from_slice(&bytes.unwrap_or_default()).map_err(|e| ClientError::Response {
            url,
            message: e.to_string(),
        })
    }

    /// GET `url`: the body (`None` for a 304) and the ETag. Reading stops
    /// past `limit` bytes.
    async fn fetch_url(
        &self,
        url: String,
        limit: u64,
        etag: Option<&str>,
    ) -> Result<(Option<Vec<u8>>, Option<String>), ClientError> {
        let http_error = |e: reqwest::Error| ClientError::Http {
            url: url.clone(),
            message: describe(&e),
        };
        let mut request = self.http.get(&url);
        if let Some(etag) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(http_error)?;
        let status = response.status();
        let new_etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if status == reqwest::StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok((None, new_etag));
        }
        if !status.is_success() {
            let detail = read_capped(&mut response, 64 * 1024)
                .await
                .ok()
                .flatten()
                .and_then(|body| error_detail(&body));
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                detail,
            });
        }
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(ClientError::TooLarge { url, limit });
        }
        match read_capped(&mut response, limit)
            .await
            .map_err(http_error)?
        {
            Some(body) => Ok((Some(body), new_etag)),
            None => Err(ClientError::TooLarge { url, limit }),
        }
    }

    // ---- The cache ----

    fn not_cached(&self, what: &str) -> ClientError {
        ClientError::NotCached {
            cache: self.dir.clone(),
            what: what.to_owned(),
        }
    }

    fn cache_error(path: &Path, e: impl std::fmt::Display) -> ClientError {
        ClientError::Cache {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    async fn read_cache(&self, relative: &str) -> Result<Option<Vec<u8>>, ClientError> {
        let path = self.dir.join(relative);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::cache_error(&path, e)),
        }
    }

    async fn require_cached(&self, relative: &str) -> Result<Vec<u8>, ClientError> {
        self.read_cache(relative)
            .await?
            .ok_or_else(|| self.not_cached(relative))
    }

    /// Writes a cache file whole: a temporary file renamed over it.
    async fn write_cache(&self, relative: &str, bytes: &[u8]) -> Result<(), ClientError> {
        let path = self.dir.join(relative);
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| Self::cache_error(&parent, e))?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| Self::cache_error(&tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Self::cache_error(&path, e))
    }

    async fn state(&self) -> Result<State, ClientError> {
        match self.read_cache("state.json").await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Self::cache_error(&self.dir.join("state.json"), e)),
            None => Ok(State::default()),
        }
    }

    async fn write_state(&self, state: &State) -> Result<(), ClientError> {
        let bytes = serde_json::to_vec_pretty(state).expect("the state serializes");
        self.write_cache("state.json", &bytes).await
    }

    /// The root to start from: the operator's, else the cached one, else
    /// the one served now (pinned from then on).
    async fn trusted_root(&self) -> Result<Vec<u8>, ClientError> {
        if let Some(root) = &self.options.root {
            if self.read_cache("root.json").await?.is_none() {
                self.write_cache("root.json", root).await?;
            }
            return self.require_cached("root.json").await;
        }
        if let Some(root) = self.read_cache("root.json").await? {
            return Ok(root);
        }
        let root = self.get("meta/root.json", MAX_ROOT_BYTES, None).await?;
        self.write_cache("root.json", &root).await?;
        Ok(root)
    }
}

/// The query string of a search: every field that is set, as the server
/// reads it.
fn query_params(query: &SearchQuery) -> Vec<(String, String)> {
    let texts = [
        ("q", &query.q),
        ("category", &query.category),
        ("tag", &query.tag),
        ("license", &query.license),
        ("runtime", &query.runtime),
        ("publisher", &query.publisher),
        ("cursor", &query.cursor),
    ];
    let mut params: Vec<(String, String)> = texts
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect();
    if let Some(verified) = query.verified {
        params.push(("verified".to_owned(), verified.to_string()));
    }
    params.extend(host_params(query));
    params.push(("sort".to_owned(), query.sort.as_str().to_owned()));
    if let Some(limit) = query.limit {
        params.push(("limit".to_owned(), limit.to_string()));
    }
    params
}

/// The host part of a query (`api`, `host_version`), which the curated
/// lists take.
fn host_params(host: &SearchQuery) -> Vec<(String, String)> {
    let mut params = Vec::new();
    if let Some(api) = &host.api {
        params.push(("api".to_owned(), api.to_string()));
    }
    if let Some(version) = &host.host_version {
        params.push(("host_version".to_owned(), version.to_string()));
    }
    params
}

/// Reads a body up to `limit` bytes: `None` when there is more.
async fn read_capped(
    response: &mut reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// The first `errors[].detail` of a marketplace error body.
fn error_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value["errors"][0]["detail"].as_str().map(str::to_owned)
}

/// An HTTP error with its causes (reqwest's own text is terse).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
