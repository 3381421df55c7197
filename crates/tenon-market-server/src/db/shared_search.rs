impl Store {
    /// Searches the catalog.
    pub(crate) async fn search(&self, query: &SearchQuery) -> Result<SearchPage, MarketError> {
        let limit = query.limit.unwrap_or(20).clamp(1, MAX_PAGE) as usize;
        let cursor = match &query.cursor {
            Some(text) => Some(decode_cursor(text)?),
            None => None,
        };
        let (snap, now) = match &cursor {
            Some(c) => (c.snap, c.now),
            None => {
                let snap: Option<i64> = sqlx::query_scalar("SELECT MAX(pk) FROM plugins")
                    .fetch_one(&self.pool)
                    .await?;
                (snap.unwrap_or(0), unix(OffsetDateTime::now_utc()))
            }
        };
        let fts = query.q.as_deref().and_then(fts_query);
        let q_lower = query.q.as_deref().map(|q| q.trim().to_lowercase());
        let key_expr = match query.sort {
            Sort::Relevance => "score",
            Sort::Downloads => "downloads",
            Sort::Updated => "updated_at",
            Sort::Published => "created_at",
            Sort::Name => "id",
        };
        let compat_filter = query.api.is_some() || query.host_version.is_some();

        // Totals: without a compatibility filter SQL counts; with one, the
        // candidates' compat columns are checked here.
        let mut total_query = self.filtered(query, &fts, &q_lower, snap, now, COUNTED, None);
        let total = if compat_filter {
            let mut all = self.filtered(query, &fts, &q_lower, snap, now, "p.compat", None);
            let rows = all.build().fetch_all(&self.pool).await?;
            rows.iter()
                .filter(|r| self.fits(query, &r.get::<String, _>(0)))
                .count() as u64
        } else {
            let count: i64 = total_query
                .build_query_scalar()
                .fetch_one(&self.pool)
                .await?;
            count as u64
        };

        let mut hits = Vec::new();
        let mut after = cursor.map(|c| (f64::from_bits(c.key), c.id));
        loop {
            let batch = if compat_filter { 200 } else { limit + 1 };
            let mut select = self.filtered(
                query,
                &fts,
                &q_lower,
                snap,
                now,
                LISTING_COLUMNS,
                Some(Page {
                    key: key_expr,
                    after: after.as_ref(),
                    batch,
                }),
            );
            let rows = select.build().fetch_all(&self.pool).await?;
            let exhausted = rows.len() < batch;
            for row in &rows {
                let listing = self.listing(row, query)?;
                after = Some((sort_key(query.sort, row), listing.id.to_string()));
                if compat_filter && listing.compatible_version.is_none() {
                    continue;
                }
                hits.push(listing);
                if hits.len() > limit {
                    break;
                }
            }
            if exhausted || hits.len() > limit {
                break;
            }
        }
        let next = if hits.len() > limit {
            hits.truncate(limit);
            let last = hits.last().expect("limit is at least 1");
            let key = match query.sort {
                Sort::Relevance => last.score.unwrap_or_default(),
                Sort::Downloads => last.downloads as f64,
                Sort::Updated => unix(last.updated_at) as f64,
                Sort::Published => unix(last.published_at) as f64,
                Sort::Name => 0.0,
            };
            Some(encode_cursor(&Cursor {
                key: key.to_bits(),
                id: last.id.to_string(),
                snap,
                now,
            }))
        } else {
            None
        };
        Ok(SearchPage { total, hits, next })
    }

    fn fits(&self, query: &SearchQuery, compat: &str) -> bool {
        let compat: Vec<Compat> = serde_json::from_str(compat).unwrap_or_default();
        newest_compatible(&compat, query.api.as_ref(), query.host_version.as_ref()).is_some()
    }

    /// The query with every filter (with `columns` [`COUNTED`], it counts
    /// the rows instead); `page` adds the keyset condition, the
    /// order and the limit.
    #[allow(clippy::too_many_arguments)]
    fn filtered<'q>(
        &self,
        query: &'q SearchQuery,
        fts: &'q Option<String>,
        q_lower: &'q Option<String>,
        snap: i64,
        now: i64,
        columns: &str,
        page: Option<Page<'q>>,
    ) -> QueryBuilder<'q, Db> {
        let outer = if columns == COUNTED { "COUNT(*)" } else { "*" };
        let mut b = QueryBuilder::new(format!("SELECT {outer} FROM (SELECT "));
        b.push(columns);
        b.push(", CAST((");
        // text score
        match q_lower {
            Some(q) if !q.is_empty() => {
                b.push(format!("1.0 + (CASE WHEN {INSTR}(lower(p.name), "))
                    .push_bind(q.as_str())
                    .push(format!(") > 0 OR {INSTR}(p.id, "))
                    .push_bind(q.as_str())
                    .push(") > 0 THEN 3.0 ELSE 0.0 END) + (CASE WHEN ");
                json_has(&mut b, "keywords", true, q.as_str());
                b.push(" THEN 1.0 ELSE 0.0 END)");
            }
            _ => {
                b.push("1.0");
            }
        }
        b.push(" + 0.5 * p.log_downloads + 2.0 / (1.0 + (")
            .push_bind(now)
            .push(" - p.updated_at) / 2592000.0)) * (CASE WHEN n.verified THEN 1.0 ELSE 0.5 END) * (CASE WHEN p.deprecated THEN 0.5 ELSE 1.0 END) AS DOUBLE PRECISION) AS score");
        b.push(" FROM plugins p JOIN namespaces n ON n.name = p.namespace WHERE p.pk <= ")
            .push_bind(snap);
        if let Some(fts) = fts {
            b.push(" AND p.pk IN (SELECT rowid FROM plugin_fts WHERE ");
            fts_match(&mut b, fts.as_str());
            b.push(")");
        }
        if let Some(category) = &query.category {
            b.push(" AND ");
            json_has(&mut b, "categories", false, category.as_str());
        }
        if let Some(tag) = &query.tag {
            b.push(" AND ");
            json_has(&mut b, "keywords", false, tag.as_str());
        }
        if let Some(license) = &query.license {
            b.push(" AND p.license = ").push_bind(license.as_str());
        }
        if let Some(runtime) = &query.runtime {
            b.push(" AND p.runtime = ").push_bind(runtime.as_str());
        }
        if let Some(publisher) = &query.publisher {
            b.push(" AND p.namespace = ").push_bind(publisher.as_str());
        }
        if query.verified == Some(true) {
            b.push(" AND n.verified");
        }
        b.push(") AS p");
        let Some(Page { key, after, batch }) = page else {
            return b;
        };
        if let Some((k, id)) = after {
            if query.sort == Sort::Name {
                b.push(" WHERE p.id > ").push_bind(id.as_str());
            } else {
                b.push(format!(" WHERE (p.{key} < "))
                    .push_bind(*k)
                    .push(format!(" OR (p.{key} = "))
                    .push_bind(*k)
                    .push(" AND p.id > ")
                    .push_bind(id.as_str())
                    .push("))");
            }
        }
        let direction = if query.sort == Sort::Name {
            ""
        } else {
            " DESC"
        };
        b.push(format!(" ORDER BY p.{key}{direction}, p.id LIMIT "))
            .push_bind(batch as i64);
        b
    }

    fn listing(&self, row: &DbRow, query: &SearchQuery) -> Result<Listing, MarketError> {
        let corrupt = |what: &str| MarketError::Corrupt(format!("a stored plugin row's {what}"));
        let strings = |col: &str| -> Result<Vec<String>, MarketError> {
            serde_json::from_str(&row.get::<String, _>(col)).map_err(|_| corrupt(col))
        };
        let compat: Vec<Compat> =
            serde_json::from_str(&row.get::<String, _>("compat")).map_err(|_| corrupt("compat"))?;
        let compatible_version =
            newest_compatible(&compat, query.api.as_ref(), query.host_version.as_ref()).cloned();
        Ok(Listing {
            id: PluginId::new(&row.get::<String, _>("id")).map_err(|_| corrupt("id"))?,
            name: row.get("name"),
            description: row.get("description"),
            latest: Version::parse(&row.get::<String, _>("latest"))
                .map_err(|_| corrupt("latest"))?,
            compatible_version,
            license: row.get("license"),
            categories: strings("categories")?,
            keywords: strings("keywords")?,
            runtime: row.get("runtime"),
            downloads: row.get("downloads"),
            verified: row.get("verified"),
            deprecated: row.get("deprecated"),
            replacement: row.get("replacement"),
            published_at: from_unix(row.get("created_at")),
            updated_at: from_unix(row.get("updated_at")),
            score: (query.sort == Sort::Relevance).then(|| row.get("score")),
        })
    }

    /// One plugin's listing (as a search hit would show it for `query`'s
    /// host), its README and every version's index line.
    pub(crate) async fn plugin(
        &self,
        id: &PluginId,
        query: &SearchQuery,
    ) -> Result<PluginDetail, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, CAST(0 AS DOUBLE PRECISION) AS score, p.readme FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE p.id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| MarketError::NotFound(format!("plugin {id}")))?;
        let mut listing = self.listing(&row, query)?;
        listing.score = None;
        let versions = self.versions(id).await?;
        Ok(PluginDetail {
            listing,
            readme: row.get("readme"),
            versions,
        })
    }

    /// Every version's index line, in publishing order.
    pub(crate) async fn versions(&self, id: &PluginId) -> Result<Vec<IndexEntry>, MarketError> {
        let lines: Vec<String> =
            sqlx::query_scalar("SELECT entry FROM versions WHERE plugin = $1 ORDER BY seq")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
        if lines.is_empty() {
            return Err(MarketError::NotFound(format!("plugin {id}")));
        }
        lines
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| MarketError::Corrupt(format!("an index line of {id}: {e}")))
            })
            .collect()
    }

    /// Every category with how many plugins list it.
    pub(crate) async fn categories(&self) -> Result<Vec<Category>, MarketError> {
        let rows = sqlx::query(CATEGORIES)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Category {
                name: r.get("name"),
                plugins: r.get("plugins"),
            })
            .collect())
    }

    /// The featured plugins, by their curated rank.
    pub(crate) async fn featured(&self, query: &SearchQuery) -> Result<Vec<Listing>, MarketError> {
        self.listings(
            "p.featured IS NOT NULL ORDER BY p.featured, p.id LIMIT 100",
            query,
        )
        .await
    }

    /// The plugins with the most unique-client downloads over the last
    /// `days` days.
    pub(crate) async fn popular(
        &self,
        days: u32,
        limit: u32,
        query: &SearchQuery,
    ) -> Result<Vec<(Listing, i64)>, MarketError> {
        let since = unix(OffsetDateTime::now_utc()) / 86_400 - i64::from(days.clamp(1, 365)) + 1;
        let rows = sqlx::query(
            "SELECT plugin, COUNT(*) AS n FROM downloads WHERE day >= $1 GROUP BY plugin
             ORDER BY n DESC, plugin LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.get("plugin");
            let one = self.listing_of(&id, query).await?;
            out.push((one, row.get("n")));
        }
        Ok(out)
    }

    async fn listing_of(&self, id: &str, query: &SearchQuery) -> Result<Listing, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, CAST(0 AS DOUBLE PRECISION) AS score FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE p.id = $1"
        );
        let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?;
        let mut listing = self.listing(&row, query)?;
        listing.score = None;
        Ok(listing)
    }

    async fn listings(&self, tail: &str, query: &SearchQuery) -> Result<Vec<Listing>, MarketError> {
        let sql = format!(
            "SELECT {LISTING_COLUMNS}, CAST(0 AS DOUBLE PRECISION) AS score FROM plugins p
             JOIN namespaces n ON n.name = p.namespace WHERE {tail}"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let mut l = self.listing(r, query)?;
                l.score = None;
                Ok(l)
            })
            .collect()
    }

    /// For each installed plugin, the newest version that fits the host and
    /// is newer than the installed one.
    pub(crate) async fn updates(&self, request: &UpdatesRequest) -> Result<Vec<Update>, MarketError> {
        if request.installed.len() > 1000 {
            return Err(MarketError::BadRequest(format!(
                "at most 1000 installed plugins per request, not {}",
                request.installed.len()
            )));
        }
        let mut out = Vec::new();
        for installed in &request.installed {
            let compat: Option<String> =
                sqlx::query_scalar("SELECT compat FROM plugins WHERE id = $1")
                    .bind(installed.id.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(compat) = compat else { continue };
            let compat: Vec<Compat> = serde_json::from_str(&compat)
                .map_err(|e| MarketError::Corrupt(format!("compat of {}: {e}", installed.id)))?;
            if let Some(newest) =
                newest_compatible(&compat, Some(&request.api), request.host_version.as_ref())
                && newest.cmp_precedence(&installed.version).is_gt()
            {
                out.push(Update {
                    id: installed.id.clone(),
                    installed: installed.version.clone(),
                    available: newest.clone(),
                });
            }
        }
        Ok(out)
    }
}

fn sort_key(sort: Sort, row: &DbRow) -> f64 {
    match sort {
        Sort::Relevance => row.get("score"),
        Sort::Downloads => row.get::<i64, _>("downloads") as f64,
        Sort::Updated => row.get::<i64, _>("updated_at") as f64,
        Sort::Published => row.get::<i64, _>("created_at") as f64,
        Sort::Name => 0.0,
    }
}

/// The columns that make [`Store::filtered`] count its rows: the count
/// wraps the filtered rows, as an aggregate beside the score's columns is an
/// error on PostgreSQL.
const COUNTED: &str = "p.pk";
