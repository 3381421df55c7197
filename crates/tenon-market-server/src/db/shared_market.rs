impl Store {
    async fn initialise_metadata(&self) -> Result<(), MarketError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM metadata LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !exists {
            self.resign(&mut tx, None, OffsetDateTime::now_utc())
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ----- tokens --------------------------------------------------------

    /// Creates `account` if new; the principal acting as it with `scopes`
    /// (for in-process callers such as seeding, which need no token).
    pub(crate) async fn account(&self, account: &str, scopes: &[Scope]) -> Result<Principal, MarketError> {
        check_account(account)?;
        sqlx::query("INSERT INTO accounts (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(account)
            .bind(unix(OffsetDateTime::now_utc()))
            .execute(&self.pool)
            .await?;
        Ok(Principal {
            account: account.to_owned(),
            scopes: scopes.to_vec(),
        })
    }

    /// Creates `account` if new and a token for it with `scopes`; returns
    /// the secret (shown once; only its sha256 is stored).
    pub(crate) async fn create_token(
        &self,
        account: &str,
        scopes: &[Scope],
    ) -> Result<String, MarketError> {
        check_account(account)?;
        if scopes.is_empty() {
            return Err(MarketError::BadRequest(
                "a token needs at least one scope".to_owned(),
            ));
        }
        let secret = format!("tnm_{}", hex_random());
        let now = unix(OffsetDateTime::now_utc());
        let mut scope_list: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        scope_list.sort_unstable();
        scope_list.dedup();
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO accounts (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(account)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tokens (hash, account, scopes, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&secret))
        .bind(account)
        .bind(scope_list.join(","))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The caller a token belongs to.
    pub(crate) async fn authenticate(&self, secret: &str) -> Result<Principal, MarketError> {
        let row = sqlx::query("SELECT account, scopes FROM tokens WHERE hash = $1")
            .bind(token_hash(secret))
            .fetch_optional(&self.pool)
            .await?
            .ok_or(MarketError::Unauthorized)?;
        let scopes: String = row.get("scopes");
        Ok(Principal {
            account: row.get("account"),
            scopes: scopes.split(',').filter_map(|s| s.parse().ok()).collect(),
        })
    }

    // ----- publishing ----------------------------------------------------

    /// Publishes an upload (see [`crate::upload`]) as `who`. Everything is
    /// checked before anything is stored: the frame, the signature file,
    /// the author signature (by a key the namespace is bound to, or any
    /// valid author key for a namespace claimed now), the whole archive
    /// (layout, traversal, links, bombs, the manifest and that it names what
    /// was signed), the names and ownership; then the package, its index
    /// line and freshly signed metadata are stored in one transaction.
    pub(crate) async fn publish(&self, who: &Principal, body: &[u8]) -> Result<IndexEntry, MarketError> {
        who.require(Scope::Publish)?;
        self.rate_check_publish(&who.account)?;
        let upload = parse_upload(body, self.config.limits.max_archive_bytes)?;
        let plugin = upload.signatures.plugin.clone();
        let namespace = plugin.publisher().to_owned();

        let bound_keys: Vec<String> =
            sqlx::query_scalar("SELECT public_key FROM namespace_keys WHERE namespace = $1")
                .bind(&namespace)
                .fetch_all(&self.pool)
                .await?;
        let mut policy = TrustPolicy::default();
        let claiming = bound_keys.is_empty();
        if claiming {
            for entry in &upload.signatures.signatures {
                if entry.role == Role::Author {
                    policy = policy.with_publisher_key(&namespace, entry.public_key);
                }
            }
        } else {
            for key in &bound_keys {
                policy = policy.with_publisher_key(&namespace, key.parse()?);
            }
        }
        let verified = verify(
            upload.archive,
            Some(&upload.signatures),
            &policy,
            Origin::Remote,
        )
        .map_err(|e| match e {
            PackageError::UntrustedAuthor { plugin, key_ids } if !claiming => {
                MarketError::Forbidden(format!(
                    "{plugin} is signed by author key(s) {}, but the namespace `{namespace}` is bound to {}; sign with a bound key",
                    join(key_ids.iter().map(ToString::to_string)),
                    join(bound_keys.iter().filter_map(|k| k.parse::<tenon_marketplace::PublicKey>().ok()).map(|k| k.key_id().to_string())),
                ))
            }
            other => other.into(),
        })?;
        let contents = verified.unpack_to_memory(&self.config.limits)?;
        let info = &contents.info;
        let author_key = verified
            .verification()
            .author_key
            .clone()
            .and_then(|id| {
                upload
                    .signatures
                    .signatures
                    .iter()
                    .find(|s| s.role == Role::Author && s.public_key.key_id() == id)
                    .map(|s| s.public_key)
            })
            .ok_or_else(|| {
                MarketError::Forbidden(format!("{plugin} carries no trusted author signature"))
            })?;

        let now = OffsetDateTime::now_utc();
        let mut tx = self.begin_write().await?;
        self.claim_namespace(&mut tx, who, &namespace, claiming, &author_key, now)
            .await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM plugins WHERE normalized = $1")
                .bind(format!("{namespace}/{}", normalize(plugin.name())))
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(existing) = &existing
            && existing != plugin.as_str()
        {
            return Err(NameError::Collision {
                kind: "plugin",
                name: plugin.to_string(),
                existing: existing.clone(),
            }
            .into());
        }
        let versions: Vec<String> =
            sqlx::query_scalar("SELECT version FROM versions WHERE plugin = $1")
                .bind(plugin.as_str())
                .fetch_all(&mut *tx)
                .await?;
        let version = info.version();
        if let Some(same) = versions
            .iter()
            .filter_map(|v| Version::parse(v).ok())
            .find(|v| v.cmp_precedence(version).is_eq())
        {
            return Err(MarketError::Conflict(format!(
                "{plugin} {same} is published already; versions are immutable (publish a new one, or yank this one)"
            )));
        }

        let mut signatures = upload.signatures.clone();
        signatures.sign(Role::Marketplace, &self.keys.online);
        let entry = IndexEntry::for_package(info, signatures.signatures.clone(), now);
        let readme = contents
            .get("README.md")
            .filter(|b| b.len() <= MAX_README_BYTES)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_owned);
        sqlx::query(
            "INSERT INTO packages (sha256, bytes, signatures) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(info.sha256.to_hex())
        .bind(upload.archive)
        .bind(signatures.to_json())
        .execute(&mut *tx)
        .await?;
        self.upsert_plugin(&mut tx, &entry, info, readme, existing.is_none(), now)
            .await?;
        sqlx::query(
            "INSERT INTO versions (plugin, version, seq, entry, sha256, published_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(plugin.as_str())
        .bind(version.to_string())
        .bind(versions.len() as i64)
        .bind(entry.to_line())
        .bind(info.sha256.to_hex())
        .bind(unix(now))
        .execute(&mut *tx)
        .await?;
        refresh_compat(&mut tx, &plugin).await?;
        self.resign(&mut tx, Some(&plugin), now).await?;
        tx.commit().await?;
        metrics::counter!("tenon_market_publishes_total").increment(1);
        tracing::info!(plugin = %plugin, version = %version, account = %who.account, "published");
        Ok(entry)
    }

    fn rate_check_publish(&self, account: &str) -> Result<(), MarketError> {
        let minute = unix(OffsetDateTime::now_utc()) / 60;
        if self.publish_window.lock().admit(
            &account.to_owned(),
            minute,
            self.config.publishes_per_minute,
        ) {
            return Ok(());
        }
        Err(MarketError::RateLimited {
            who: format!("account {account}"),
            retry_after_secs: 60,
        })
    }

    async fn claim_namespace(
        &self,
        tx: &mut Tx,
        who: &Principal,
        namespace: &str,
        claiming: bool,
        author_key: &tenon_marketplace::PublicKey,
        now: OffsetDateTime,
    ) -> Result<(), MarketError> {
        let existing: Option<String> =
            sqlx::query_scalar("SELECT name FROM namespaces WHERE normalized = $1")
                .bind(normalize(namespace))
                .fetch_optional(&mut **tx)
                .await?;
        match existing {
            Some(name) if name != namespace => Err(NameError::Collision {
                kind: "namespace",
                name: namespace.to_owned(),
                existing: name,
            }
            .into()),
            Some(_) => {
                let owner = sqlx::query(
                    "SELECT 1 FROM namespace_owners WHERE namespace = $1 AND account = $2",
                )
                .bind(namespace)
                .bind(&who.account)
                .fetch_optional(&mut **tx)
                .await?;
                if owner.is_none() {
                    return Err(MarketError::Forbidden(format!(
                        "the namespace `{namespace}` belongs to other owners; ask one of them to add account `{}`",
                        who.account
                    )));
                }
                if claiming {
                    bind_key(tx, namespace, author_key).await?;
                }
                Ok(())
            }
            None => {
                check_namespace(namespace)?;
                sqlx::query(
                    "INSERT INTO namespaces (name, normalized, created_at) VALUES ($1, $2, $3)",
                )
                .bind(namespace)
                .bind(normalize(namespace))
                .bind(unix(now))
                .execute(&mut **tx)
                .await?;
                sqlx::query("INSERT INTO namespace_owners (namespace, account) VALUES ($1, $2)")
                    .bind(namespace)
                    .bind(&who.account)
                    .execute(&mut **tx)
                    .await?;
                bind_key(tx, namespace, author_key).await
            }
        }
    }

    async fn upsert_plugin(
        &self,
        tx: &mut Tx,
        entry: &IndexEntry,
        info: &tenon_marketplace::PackageInfo,
        readme: Option<String>,
        new: bool,
        now: OffsetDateTime,
    ) -> Result<(), MarketError> {
        let meta = &info.manifest.plugin;
        let json = |v: &Vec<String>| serde_json::to_string(v).expect("strings serialize");
        let id = entry.id.as_str();
        let latest: Option<String> = sqlx::query_scalar("SELECT latest FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        // Listing fields follow the newest version (pre-releases only when
        // nothing else is published).
        let newest = latest
            .as_deref()
            .and_then(|l| Version::parse(l).ok())
            .is_none_or(|l| newer_listing(&entry.version, &l));
        if new {
            sqlx::query(
                "INSERT INTO plugins (id, namespace, normalized, name, description, license,
                   categories, keywords, runtime, latest, readme, created_at, updated_at, compat)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, '[]')",
            )
            .bind(id)
            .bind(entry.id.publisher())
            .bind(format!(
                "{}/{}",
                entry.id.publisher(),
                normalize(entry.id.name())
            ))
            .bind(&meta.name)
            .bind(&meta.description)
            .bind(&meta.license)
            .bind(json(&meta.categories))
            .bind(json(&meta.keywords))
            .bind(entry.runtime.as_str())
            .bind(entry.version.to_string())
            .bind(&readme)
            .bind(unix(now))
            .execute(&mut **tx)
            .await?;
        } else if newest {
            sqlx::query(
                "UPDATE plugins SET name = $2, description = $3, license = $4, categories = $5,
                   keywords = $6, runtime = $7, latest = $8, readme = $9, updated_at = $10
                 WHERE id = $1",
            )
            .bind(id)
            .bind(&meta.name)
            .bind(&meta.description)
            .bind(&meta.license)
            .bind(json(&meta.categories))
            .bind(json(&meta.keywords))
            .bind(entry.runtime.as_str())
            .bind(entry.version.to_string())
            .bind(&readme)
            .bind(unix(now))
            .execute(&mut **tx)
            .await?;
        } else {
            sqlx::query("UPDATE plugins SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(unix(now))
                .execute(&mut **tx)
                .await?;
        }
        if new || newest {
            let pk: i64 = sqlx::query_scalar("SELECT pk FROM plugins WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            sqlx::query("DELETE FROM plugin_fts WHERE rowid = $1")
                .bind(pk)
                .execute(&mut **tx)
                .await?;
            sqlx::query(FTS_INSERT)
            .bind(pk)
            .bind(id.replace(['/', '-'], " "))
            .bind(&meta.name)
            .bind(&meta.description)
            .bind(meta.keywords.join(" "))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Re-signs targets (with `changed`'s index file re-pinned), snapshot
    /// and timestamp, each one version up, inside `tx`.
    async fn resign(
        &self,
        tx: &mut Tx,
        changed: Option<&PluginId>,
        now: OffsetDateTime,
    ) -> Result<(), MarketError> {
        let previous = latest_metadata(tx, MetaRole::Targets).await?;
        let mut targets = match &previous {
            Some((_, bytes)) => body_of::<Targets>(bytes)?,
            None => Targets {
                role: MetaRole::Targets,
                spec_version: SPEC_VERSION,
                version: 0,
                expires: now,
                targets: BTreeMap::new(),
            },
        };
        if let Some(id) = changed {
            let file = index_file_in(tx, id).await?;
            targets
                .targets
                .insert(index_path(id), FileMeta::of(&file, None));
        }
        targets.version += 1;
        targets.expires = now + self.config.expiries.targets;
        let targets_bytes = sign_metadata(&targets, &[&self.keys.online]);
        store_metadata(tx, MetaRole::Targets, targets.version, &targets_bytes).await?;
        self.sign_pinning(
            tx,
            MetaRole::Snapshot,
            TARGETS_FILE,
            &targets_bytes,
            targets.version,
            now,
        )
        .await
    }

    /// Signs the next `role` (snapshot or timestamp) pinning `pinned`, then
    /// (for snapshot) the next timestamp pinning it.
    async fn sign_pinning(
        &self,
        tx: &mut Tx,
        role: MetaRole,
        file: &str,
        pinned: &[u8],
        pinned_version: u64,
        now: OffsetDateTime,
    ) -> Result<(), MarketError> {
        let mut role = role;
        let mut file = file.to_owned();
        let mut pinned = pinned.to_vec();
        let mut pinned_version = pinned_version;
        loop {
            let version = latest_metadata(tx, role)
                .await?
                .map_or(0, |(version, _)| version)
                + 1;
            let expires = now
                + match role {
                    MetaRole::Snapshot => self.config.expiries.snapshot,
                    _ => self.config.expiries.timestamp,
                };
            let body = Pinning {
                role,
                spec_version: SPEC_VERSION,
                version,
                expires,
                meta: BTreeMap::from([(file, FileMeta::of(&pinned, Some(pinned_version)))]),
            };
            let bytes = sign_metadata(&body, &[&self.keys.online]);
            store_metadata(tx, role, version, &bytes).await?;
            if role == MetaRole::Timestamp {
                return Ok(());
            }
            role = MetaRole::Timestamp;
            file = SNAPSHOT_FILE.to_owned();
            pinned = bytes;
            pinned_version = version;
        }
    }

    /// [`crate::Market::metadata_at`].
    pub(crate) async fn metadata_at(
        &self,
        role: MetaRole,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, MarketError> {
        if role == MetaRole::Root {
            return Ok(self.keys.root.clone());
        }
        // Renewals are writes, serialised with the others: the first reader
        // that finds the metadata due renews it, the next ones find it
        // fresh. A failure (SQLite busy past its timeout) is retried.
        let mut attempt = 0;
        loop {
            match self.renew(now).await {
                Ok(()) => break,
                Err(error) if attempt < 4 => {
                    tracing::debug!("metadata renewal failed, retrying: {error}");
                    attempt += 1;
                    tokio::task::yield_now().await;
                }
                Err(error) => return Err(error),
            }
        }
        let mut tx = self.pool.begin().await?;
        let (_, bytes) = latest_metadata(&mut tx, role)
            .await?
            .ok_or_else(|| MarketError::NotFound(format!("{role} metadata")))?;
        tx.commit().await?;
        Ok(bytes)
    }

    /// Re-signs the online roles that have less than half their lifetime
    /// left at `now`: targets (and so snapshot and timestamp), else the
    /// snapshot (and so the timestamp), else the timestamp alone. Looks
    /// first without the write lock, and again under it when something is
    /// due.
    async fn renew(&self, now: OffsetDateTime) -> Result<(), MarketError> {
        let mut look = self.pool.begin().await?;
        let due = self.renew_in(&mut look, now, false).await?;
        look.commit().await?;
        if !due {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        if self.renew_in(&mut tx, now, true).await? {
            tx.commit().await?;
        }
        Ok(())
    }

    /// Whether something is due at `now`; with `sign`, re-signs it in `tx`.
    async fn renew_in(
        &self,
        tx: &mut Tx,
        now: OffsetDateTime,
        sign: bool,
    ) -> Result<bool, MarketError> {
        let expiries = self.config.expiries;
        let due =
            |expires: OffsetDateTime, lifetime: time::Duration| expires - now < lifetime / 2;
        let missing = |role: MetaRole| MarketError::NotFound(format!("{role} metadata"));
        let (targets_version, targets) = latest_metadata(tx, MetaRole::Targets)
            .await?
            .ok_or_else(|| missing(MetaRole::Targets))?;
        let (snapshot_version, snapshot) = latest_metadata(tx, MetaRole::Snapshot)
            .await?
            .ok_or_else(|| missing(MetaRole::Snapshot))?;
        let (_, timestamp) = latest_metadata(tx, MetaRole::Timestamp)
            .await?
            .ok_or_else(|| missing(MetaRole::Timestamp))?;
        let targets_due = due(body_of::<Targets>(&targets)?.expires, expiries.targets);
        let snapshot_due = due(body_of::<Pinning>(&snapshot)?.expires, expiries.snapshot);
        let timestamp_due = due(body_of::<Pinning>(&timestamp)?.expires, expiries.timestamp);
        if !sign {
            return Ok(targets_due || snapshot_due || timestamp_due);
        }
        if targets_due {
            self.resign(tx, None, now).await?;
        } else if snapshot_due {
            self.sign_pinning(
                tx,
                MetaRole::Snapshot,
                TARGETS_FILE,
                &targets,
                targets_version,
                now,
            )
            .await?;
        } else if timestamp_due {
            self.sign_pinning(
                tx,
                MetaRole::Timestamp,
                SNAPSHOT_FILE,
                &snapshot,
                snapshot_version,
                now,
            )
            .await?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// A plugin's index file (one line per version).
    pub(crate) async fn index_file(&self, id: &PluginId) -> Result<Vec<u8>, MarketError> {
        let mut conn = self.pool.acquire().await?;
        let bytes = index_file_on(&mut conn, id).await?;
        if bytes.is_empty() {
            return Err(MarketError::NotFound(format!("plugin {id}")));
        }
        Ok(bytes)
    }

    // ----- yank, deprecate, owners, curation ----------------------------

    /// Yanks (or unyanks) a version: its line keeps everything but the flag.
    pub(crate) async fn yank(
        &self,
        who: &Principal,
        id: &PluginId,
        version: &Version,
        yanked: bool,
    ) -> Result<(), MarketError> {
        who.require(Scope::Yank)?;
        let now = OffsetDateTime::now_utc();
        let mut tx = self.begin_write().await?;
        self.require_owner(&mut tx, who, id.publisher()).await?;
        let line: String =
            sqlx::query_scalar("SELECT entry FROM versions WHERE plugin = $1 AND version = $2")
                .bind(id.as_str())
                .bind(version.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| MarketError::NotFound(format!("{id} {version}")))?;
        let mut entry: IndexEntry = serde_json::from_str(&line)
            .map_err(|e| MarketError::Corrupt(format!("a stored index line of {id}: {e}")))?;
        entry.yanked = yanked;
        sqlx::query(
            "UPDATE versions SET entry = $3, yanked = $4 WHERE plugin = $1 AND version = $2",
        )
        .bind(id.as_str())
        .bind(version.to_string())
        .bind(entry.to_line())
        .bind(yanked)
        .execute(&mut *tx)
        .await?;
        refresh_compat(&mut tx, id).await?;
        self.resign(&mut tx, Some(id), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a plugin deprecated (with an optional replacement) or not.
    pub(crate) async fn deprecate(
        &self,
        who: &Principal,
        id: &PluginId,
        deprecated: bool,
        replacement: Option<&PluginId>,
    ) -> Result<(), MarketError> {
        who.require(Scope::Yank)?;
        let mut tx = self.pool.begin().await?;
        self.require_owner(&mut tx, who, id.publisher()).await?;
        let done =
            sqlx::query("UPDATE plugins SET deprecated = $2, replacement = $3 WHERE id = $1")
                .bind(id.as_str())
                .bind(deprecated)
                .bind(replacement.map(PluginId::as_str))
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(MarketError::NotFound(format!("plugin {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    /// The accounts owning `namespace`.
    pub(crate) async fn owners(&self, namespace: &str) -> Result<Vec<String>, MarketError> {
        let owners: Vec<String> = sqlx::query_scalar(
            "SELECT account FROM namespace_owners WHERE namespace = $1 ORDER BY account",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        if owners.is_empty() {
            return Err(MarketError::NotFound(format!("namespace `{namespace}`")));
        }
        Ok(owners)
    }

    /// Adds or removes an owner of `namespace` (the last owner stays).
    pub(crate) async fn set_owner(
        &self,
        who: &Principal,
        namespace: &str,
        account: &str,
        owner: bool,
    ) -> Result<(), MarketError> {
        who.require(Scope::Owners)?;
        let mut tx = self.pool.begin().await?;
        self.require_owner(&mut tx, who, namespace).await?;
        if owner {
            let known = sqlx::query("SELECT 1 FROM accounts WHERE name = $1")
                .bind(account)
                .fetch_optional(&mut *tx)
                .await?;
            if known.is_none() {
                return Err(MarketError::NotFound(format!("account `{account}`")));
            }
            sqlx::query(
                "INSERT INTO namespace_owners (namespace, account) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(namespace)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        } else {
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM namespace_owners WHERE namespace = $1")
                    .bind(namespace)
                    .fetch_one(&mut *tx)
                    .await?;
            if count <= 1 {
                return Err(MarketError::Conflict(format!(
                    "`{account}` is the last owner of `{namespace}`; add another first"
                )));
            }
            sqlx::query("DELETE FROM namespace_owners WHERE namespace = $1 AND account = $2")
                .bind(namespace)
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn require_owner(
        &self,
        tx: &mut Tx,
        who: &Principal,
        namespace: &str,
    ) -> Result<(), MarketError> {
        if who.scopes.contains(&Scope::Admin) {
            return Ok(());
        }
        let owner =
            sqlx::query("SELECT 1 FROM namespace_owners WHERE namespace = $1 AND account = $2")
                .bind(namespace)
                .bind(&who.account)
                .fetch_optional(&mut **tx)
                .await?;
        if owner.is_none() {
            return Err(MarketError::Forbidden(format!(
                "account `{}` does not own the namespace `{namespace}`",
                who.account
            )));
        }
        Ok(())
    }

    /// Features a plugin at `rank` (lower first), or un-features it (admin).
    pub(crate) async fn set_featured(
        &self,
        who: &Principal,
        id: &PluginId,
        rank: Option<i64>,
    ) -> Result<(), MarketError> {
        who.require(Scope::Admin)?;
        let done = sqlx::query("UPDATE plugins SET featured = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(rank)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(MarketError::NotFound(format!("plugin {id}")));
        }
        Ok(())
    }

    /// Marks a namespace's publisher verified or not (admin).
    pub(crate) async fn set_verified(
        &self,
        who: &Principal,
        namespace: &str,
        verified: bool,
    ) -> Result<(), MarketError> {
        who.require(Scope::Admin)?;
        let done = sqlx::query("UPDATE namespaces SET verified = $2 WHERE name = $1")
            .bind(namespace)
            .bind(verified)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(MarketError::NotFound(format!("namespace `{namespace}`")));
        }
        Ok(())
    }

    // ----- downloads -----------------------------------------------------

    /// A version's archive and signature file. The download counts once per
    /// `client` (an account or a hashed address) per plugin per day.
    pub(crate) async fn download(
        &self,
        id: &PluginId,
        version: &Version,
        client: &str,
    ) -> Result<(Vec<u8>, String), MarketError> {
        let row = sqlx::query(
            "SELECT p.bytes, p.signatures FROM versions v JOIN packages p ON p.sha256 = v.sha256
             WHERE v.plugin = $1 AND v.version = $2",
        )
        .bind(id.as_str())
        .bind(version.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| MarketError::NotFound(format!("{id} {version}")))?;
        let day = unix(OffsetDateTime::now_utc()) / 86_400;
        let mut tx = self.pool.begin().await?;
        let counted = sqlx::query(
            "INSERT INTO downloads (plugin, day, client) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id.as_str())
        .bind(day)
        .bind(token_hash(client))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if counted {
            sqlx::query("UPDATE plugins SET downloads = downloads + 1 WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
            let downloads: i64 = sqlx::query_scalar("SELECT downloads FROM plugins WHERE id = $1")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE plugins SET log_downloads = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind((1.0 + downloads as f64).ln())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE versions SET downloads = downloads + 1 WHERE plugin = $1 AND version = $2",
            )
            .bind(id.as_str())
            .bind(version.to_string())
            .execute(&mut *tx)
            .await?;
            metrics::counter!("tenon_market_downloads_total").increment(1);
        }
        tx.commit().await?;
        Ok((row.get("bytes"), row.get("signatures")))
    }
}

async fn bind_key(
    tx: &mut Tx,
    namespace: &str,
    key: &tenon_marketplace::PublicKey,
) -> Result<(), MarketError> {
    sqlx::query("INSERT INTO namespace_keys (namespace, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(namespace)
        .bind(key.to_base64())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Recomputes a plugin's `compat` column from its versions.
async fn refresh_compat(
    tx: &mut Tx,
    id: &PluginId,
) -> Result<(), MarketError> {
    let lines: Vec<String> =
        sqlx::query_scalar("SELECT entry FROM versions WHERE plugin = $1 ORDER BY seq")
            .bind(id.as_str())
            .fetch_all(&mut **tx)
            .await?;
    let compat: Vec<Compat> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<IndexEntry>(l).ok())
        .map(|e| Compat {
            version: e.version,
            tenon: e.engine.tenon,
            host: e.engine.host,
            yanked: e.yanked,
        })
        .collect();
    sqlx::query("UPDATE plugins SET compat = $2 WHERE id = $1")
        .bind(id.as_str())
        .bind(serde_json::to_string(&compat).expect("compat serializes"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn index_file_in(
    tx: &mut Tx,
    id: &PluginId,
) -> Result<Vec<u8>, MarketError> {
    index_file_on(tx, id).await
}

async fn index_file_on(
    conn: &mut <Db as sqlx::Database>::Connection,
    id: &PluginId,
) -> Result<Vec<u8>, MarketError> {
    let lines: Vec<String> =
        sqlx::query_scalar("SELECT entry FROM versions WHERE plugin = $1 ORDER BY seq")
            .bind(id.as_str())
            .fetch_all(&mut *conn)
            .await?;
    let mut file = Vec::new();
    for line in lines {
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    Ok(file)
}

async fn latest_metadata(
    tx: &mut Tx,
    role: MetaRole,
) -> Result<Option<(u64, Vec<u8>)>, MarketError> {
    let row = sqlx::query(
        "SELECT version, body FROM metadata WHERE role = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(role.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|row| (row.get::<i64, _>("version") as u64, row.get("body"))))
}

async fn store_metadata(
    tx: &mut Tx,
    role: MetaRole,
    version: u64,
    bytes: &[u8],
) -> Result<(), MarketError> {
    sqlx::query("INSERT INTO metadata (role, version, body) VALUES ($1, $2, $3)")
        .bind(role.as_str())
        .bind(version as i64)
        .bind(bytes)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
