//! Publishers bound to keys, and what an uninstalled plugin left behind.
//!
//! A publisher (the part of a plugin id before `/`) is bound, per tenant,
//! to the key that first signed one of its packages, or to a key the trust
//! policy names for it (`publisher_keys`). A package signed by another key
//! is refused unless a verified rotation statement in the policy leads from
//! the bound key to it (the binding then moves), or the policy names the
//! new key for the publisher (the operator rebinds it). Unsigned packages
//! and plugin directories never bind a publisher, never upgrade a bound
//! publisher's plugin, and never claim a publisher the policy names keys
//! for.
//!
//! What an uninstalled plugin left (config and secrets, grants, KV, data
//! files) passes to a reinstall only when the reinstall is of the same kind
//! and binding as the install that left it, as recorded at the uninstall
//! ([`LeftBy`]): the host's own plugin to the host's own plugin only; a
//! package signed by a key to a package signed by that key (or its rotated
//! successor) that its publisher's binding accepts; an unsigned package to
//! an unsigned one of a publisher bound to no key. Leftovers nobody is
//! recorded to have left (left before the record was kept) pass only to the
//! host's own plugin. Otherwise they are purged before the plugin is
//! stored, and the install report and the event log say exactly what.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tenon_manifest::PluginId;
use tenon_marketplace::{KeyId, PublicKey, TrustPolicy};
use tenon_registry::{
    ConfigValue, EventKind, EventStatus, NewEvent, NewPublisherKey, PublisherKey, SourceKind,
};

use crate::engine::PluginEngine;
use crate::error::{EngineError, PublisherMismatch, Result};
use crate::source::{Candidate, InstallSource};

/// A binding made by the first signature of an unbound publisher.
pub const BOUND_BY_FIRST_SIGNATURE: &str = "first-signature";
/// A binding to a key the trust policy names for the publisher.
pub const BOUND_BY_POLICY: &str = "policy";
/// A binding moved along a verified rotation statement.
pub const BOUND_BY_ROTATION: &str = "rotation";

/// Whether a package is a new install or a later version of an installed
/// plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    Install,
    Upgrade,
}

/// What the binding check decided for one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The key to bind the publisher to from now on, and how, when the
    /// binding changes.
    pub(crate) bind: Option<(PublicKey, &'static str)>,
    /// Whether what an uninstalled plugin of the same id left may pass to
    /// this package.
    pub(crate) leftovers_pass: bool,
    /// Why, in words (for the install report).
    pub(crate) why: &'static str,
}

/// Why a package does not fit its publisher's binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The keys the publisher is bound to.
    pub(crate) bound: Vec<KeyId>,
    /// How: `first-signature`, `policy`, `rotation`.
    pub(crate) bound_by: String,
}

/// Decides how a package signed by `authors` (its author signatures, all
/// verified; empty when unsigned) stands to `publisher`'s binding `bound`
/// under `policy`.
pub(crate) fn decide(
    publisher: &str,
    bound: Option<(&PublicKey, &str)>,
    authors: &[PublicKey],
    policy: &TrustPolicy,
    arrival: Arrival,
) -> std::result::Result<Decision, Mismatch> {
    let named: Vec<PublicKey> = policy
        .publisher_keys
        .get(publisher)
        .map(|keys| {
            keys.iter()
                .filter(|k| !policy.is_revoked(k))
                .copied()
                .collect()
        })
        .unwrap_or_default();
    let rebound_by_policy = authors.iter().find(|a| named.contains(a));
    let decision = |bind: Option<(PublicKey, &'static str)>, leftovers_pass, why| {
        Ok(Decision {
            bind,
            leftovers_pass,
            why,
        })
    };
    const UNBOUND: &str =
        "signed, while they were left by an install no publisher key was bound to";
    const OTHER_KEY: &str = "signed by a key the publisher was not bound to when they were left";
    match bound {
        Some((key, _)) if authors.contains(key) => {
            decision(None, true, "signed by the key its publisher is bound to")
        }
        Some((key, bound_by)) => {
            if !policy.is_revoked(key)
                && let Some(next) = authors
                    .iter()
                    .find(|a| policy.succeeds_for(publisher, key, a))
            {
                return decision(
                    Some((*next, BOUND_BY_ROTATION)),
                    true,
                    "signed by the key its publisher's bound key rotated to",
                );
            }
            if let Some(named) = rebound_by_policy {
                return decision(Some((*named, BOUND_BY_POLICY)), false, OTHER_KEY);
            }
            if authors.is_empty() && arrival == Arrival::Install && named.is_empty() {
                // Unsigned code, where the policy allows it, is not the
                // publisher: it installs, but inherits nothing.
                return decision(
                    None,
                    false,
                    "unsigned, while its publisher is bound to a key",
                );
            }
            Err(Mismatch {
                bound: vec![key.key_id()],
                bound_by: bound_by.to_owned(),
            })
        }
        None if !named.is_empty() => {
            if let Some(named) = rebound_by_policy {
                return decision(Some((*named, BOUND_BY_POLICY)), false, UNBOUND);
            }
            if let Some(next) = authors
                .iter()
                .find(|a| named.iter().any(|n| policy.succeeds_for(publisher, n, a)))
            {
                return decision(Some((*next, BOUND_BY_ROTATION)), false, UNBOUND);
            }
            Err(Mismatch {
                bound: named.iter().map(PublicKey::key_id).collect(),
                bound_by: BOUND_BY_POLICY.to_owned(),
            })
        }
        None => match authors.first() {
            Some(first) => decision(Some((*first, BOUND_BY_FIRST_SIGNATURE)), false, UNBOUND),
            None => decision(
                None,
                true,
                "unsigned, like the install that left them (its publisher is bound to no key)",
            ),
        },
    }
}

/// A publisher's binding, as shown to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublisherBinding {
    /// The publisher.
    pub publisher: String,
    /// The key's id.
    pub key_id: String,
    /// The key, base64.
    pub public_key: String,
    /// How it came about: `first-signature`, `policy` or `rotation`.
    pub bound_by: String,
    /// When, RFC 3339.
    pub bound_at: String,
}

impl PublisherBinding {
    fn of(key: &PublisherKey) -> Self {
        Self {
            publisher: key.publisher.clone(),
            key_id: key.key_id.clone(),
            public_key: key.public_key.clone(),
            bound_by: key.bound_by.clone(),
            bound_at: key
                .bound_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

/// Who left what an uninstalled plugin left, recorded by the uninstall
/// (the registry keeps it as JSON until a reinstall or a purge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeftBy {
    /// The kind of source the uninstalled plugin came from.
    pub(crate) source: SourceKind,
    /// The trusted author key that signed it (base64), when signed.
    #[serde(default)]
    pub(crate) author_key: Option<String>,
}

impl LeftBy {
    /// The record of `record`, an installed plugin about to be uninstalled.
    pub(crate) fn of(record: &tenon_registry::PluginRecord) -> Self {
        Self {
            source: record.source.kind,
            author_key: crate::trust::TrustRecord::from_stored(record.verification.as_ref())
                .and_then(|trust| trust.author_key),
        }
    }

    /// The stored form.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a leftovers owner always serializes")
    }

    /// `who`, in words.
    fn describe(&self) -> String {
        match (&self.author_key, self.source.is_host()) {
            (_, true) => format!("the host's own ({}) plugin", self.source.as_str()),
            (Some(key), false) => match key.parse::<PublicKey>() {
                Ok(key) => format!("a package signed by key {}", key.key_id()),
                Err(_) => "a package signed by a key this build cannot read".to_owned(),
            },
            (None, false) => format!("an unsigned plugin ({})", self.source.as_str()),
        }
    }
}

/// Whether what `owner` left passes to a candidate from a `source` source
/// signed by `authors`, whose standing towards its publisher is `standing`
/// (`None` for the host's own plugins), and why.
pub(crate) fn leftovers_pass(
    owner: Option<&LeftBy>,
    source: SourceKind,
    authors: &[PublicKey],
    standing: Option<&Decision>,
    policy: &TrustPolicy,
) -> (bool, String) {
    let Some(owner) = owner else {
        return if source.is_host() {
            (
                true,
                "the host's own plugin, and no record says who left them".to_owned(),
            )
        } else {
            (
                false,
                "no record says who left them (they were left before Tenon kept one)".to_owned(),
            )
        };
    };
    let left = format!("left by {}", owner.describe());
    if owner.source.is_host() != source.is_host() {
        let this = if source.is_host() {
            "this is the host's own plugin"
        } else {
            "this is a package"
        };
        return (false, format!("{left}, while {this}"));
    }
    let Some(standing) = standing else {
        return (true, format!("{left}, to the host's own plugin"));
    };
    if !standing.leftovers_pass {
        return (false, format!("{left}; this one is {}", standing.why));
    }
    match &owner.author_key {
        None if authors.is_empty() => (true, format!("{left}; this one is {}", standing.why)),
        None => (false, format!("{left}, while this one is signed")),
        Some(key) => match key.parse::<PublicKey>() {
            Ok(key) if authors.iter().any(|a| policy.succeeds(&key, a)) => {
                (true, format!("{left}; this one is {}", standing.why))
            }
            Ok(_) if authors.is_empty() => (false, format!("{left}, while this one is unsigned")),
            _ => (
                false,
                format!("{left}, while this one is signed by another key"),
            ),
        },
    }
}

/// What became of an uninstalled plugin's leftovers at a reinstall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftovers {
    /// Whether they passed to the new install (otherwise they were
    /// purged).
    pub passed: bool,
    /// The config keys (secrets included; never their values).
    pub keys: Vec<String>,
    /// Config keys (secrets included).
    pub config_keys: u64,
    /// Grants.
    pub grants: u64,
    /// KV entries.
    pub kv_entries: u64,
    /// Whether it had a data directory.
    pub files: bool,
    /// Why, in words.
    pub reason: String,
}

/// A package's standing towards its publisher, checked before anything is
/// stored and recorded after.
pub(crate) struct Standing {
    publisher: String,
    decision: Decision,
}

/// What a package proves under the engine's trust policy, and what
/// installing it would do to its publisher's binding
/// ([`PluginEngine::check_package`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageCheck {
    /// The plugin.
    pub id: PluginId,
    /// Its version.
    pub version: tenon_manifest::Version,
    /// What checking its origin found: signers and roles, trust level,
    /// posture.
    pub trust: crate::trust::TrustRecord,
    /// The version installed in this tenant, if any.
    pub installed: Option<tenon_manifest::Version>,
    /// Its publisher's binding now, if any.
    pub binding: Option<PublisherBinding>,
    /// The key installing it would bind the publisher to (key id), and how
    /// (`first-signature`, `policy`, `rotation`), when it would change.
    pub would_bind: Option<(String, String)>,
}

/// The refusal of `candidate`, whose publisher is bound to the keys
/// `bound` (ids) by `bound_by`.
pub(crate) fn refusal(candidate: &Candidate, bound: Vec<String>, bound_by: &str) -> EngineError {
    let manifest = &candidate.manifest;
    EngineError::PublisherKey(Box::new(PublisherMismatch {
        id: manifest.plugin.id.clone(),
        version: manifest.plugin.version.clone(),
        publisher: manifest.plugin.id.publisher().to_owned(),
        bound,
        bound_by: bound_by.to_owned(),
        signed_by: candidate
            .authors
            .iter()
            .map(|k| k.key_id().to_string())
            .collect(),
    }))
}

impl Standing {
    /// The key this package binds its publisher to, and how, when it does.
    pub(crate) fn binds(&self) -> Option<(&PublicKey, &'static str)> {
        self.decision.bind.as_ref().map(|(key, by)| (key, *by))
    }
}

impl PluginEngine {
    /// The tenant's publisher bindings, by publisher.
    pub async fn publisher_bindings(&self) -> Result<Vec<PublisherBinding>> {
        Ok(self
            .shared
            .store
            .list_publisher_keys(&self.tenant.id)
            .await?
            .iter()
            .map(PublisherBinding::of)
            .collect())
    }

    /// Checks a plugin as installing (or, when installed, upgrading to) it
    /// would, without storing anything: its signatures under the trust
    /// policy, what its level allows, and its publisher's binding. A
    /// refusal is the error an install would return.
    pub async fn check_package(&self, source: impl Into<InstallSource>) -> Result<PackageCheck> {
        let candidate = self.read_source(&source.into()).await?;
        let id = candidate.manifest.plugin.id.clone();
        let installed = self
            .shared
            .store
            .get_plugin(&self.tenant.id, &id)
            .await?
            .map(|record| record.version);
        let arrival = if installed.is_some() {
            Arrival::Upgrade
        } else {
            Arrival::Install
        };
        let standing = self.check_publisher(&candidate, arrival).await?;
        let binding = self
            .shared
            .store
            .get_publisher_key(&self.tenant.id, id.publisher())
            .await?
            .as_ref()
            .map(PublisherBinding::of);
        Ok(PackageCheck {
            version: candidate.manifest.plugin.version.clone(),
            trust: candidate.trust,
            installed,
            binding,
            would_bind: standing
                .as_ref()
                .and_then(Standing::binds)
                .map(|(key, by)| (key.key_id().to_string(), by.to_owned())),
            id,
        })
    }

    /// Checks a package against its publisher's binding; refuses one that
    /// does not fit.
    pub(crate) async fn check_publisher(
        &self,
        candidate: &Candidate,
        arrival: Arrival,
    ) -> Result<Option<Standing>> {
        if candidate.trust.checked == crate::trust::Checked::Host {
            return Ok(None);
        }
        let id = &candidate.manifest.plugin.id;
        let publisher = id.publisher();
        let stored = self
            .shared
            .store
            .get_publisher_key(&self.tenant.id, publisher)
            .await?;
        let bound = stored
            .as_ref()
            .map(|key| {
                key.public_key
                    .parse::<PublicKey>()
                    .map(|parsed| (parsed, key.bound_by.clone()))
            })
            .transpose()
            .map_err(|_| {
                refusal(
                    candidate,
                    stored.iter().map(|k| k.key_id.clone()).collect(),
                    "a stored binding this build cannot read",
                )
            })?;
        let decision = decide(
            publisher,
            bound.as_ref().map(|(key, by)| (key, by.as_str())),
            &candidate.authors,
            &self.shared.trust,
            arrival,
        )
        .map_err(|mismatch| {
            refusal(
                candidate,
                mismatch.bound.iter().map(ToString::to_string).collect(),
                &mismatch.bound_by,
            )
        })?;
        Ok(Some(Standing {
            publisher: publisher.to_owned(),
            decision,
        }))
    }

    /// Records the binding a stored package made or moved.
    pub(crate) async fn record_publisher(&self, standing: Option<&Standing>) -> Result<()> {
        let Some(Standing {
            publisher,
            decision:
                Decision {
                    bind: Some((key, bound_by)),
                    ..
                },
        }) = standing
        else {
            return Ok(());
        };
        self.shared
            .store
            .put_publisher_key(&NewPublisherKey {
                tenant: self.tenant.id.clone(),
                publisher: publisher.clone(),
                public_key: key.to_base64(),
                key_id: key.key_id().to_string(),
                bound_by: (*bound_by).to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Decides what an uninstalled plugin's leftovers would do at an
    /// install of `candidate` (whose standing towards its publisher is
    /// `standing`), without changing anything: they pass when the install
    /// that left them is of the same kind and binding, else they are to be
    /// purged. When they pass, checks that the candidate may inherit them
    /// (a secret stays one; stored secrets are readable). `None` when
    /// nothing was left.
    pub(crate) async fn check_leftovers(
        &self,
        candidate: &Candidate,
        standing: Option<&Standing>,
    ) -> Result<Option<Leftovers>> {
        let store = &self.shared.store;
        let tenant = &self.tenant.id;
        let id = &candidate.manifest.plugin.id;
        let config = store.get_config(tenant, id).await?;
        let grants = store.list_grants(tenant, id).await?.len() as u64;
        let kv_entries = store.kv_usage(tenant, id).await?.keys;
        let dir = self.paths().plugin_data(tenant.as_str(), id)?;
        let files = tokio::fs::symlink_metadata(&dir).await.is_ok();
        if config.values.is_empty() && grants == 0 && kv_entries == 0 && !files {
            return Ok(None);
        }
        let owner = match store.get_leftovers_owner(tenant, id).await? {
            // A record this build cannot read is nobody's.
            Some(text) => serde_json::from_str::<LeftBy>(&text).ok(),
            None => None,
        };
        let (passed, why) = leftovers_pass(
            owner.as_ref(),
            candidate.source.kind,
            &candidate.authors,
            standing.map(|s| &s.decision),
            &self.shared.trust,
        );
        if passed {
            self.check_secrets_kept(&candidate.manifest, true).await?;
            if config.values.values().any(ConfigValue::is_secret) {
                // Fails here, before anything changes, rather than half-way
                // through storing the plugin.
                crate::activate::stored_config(&self.shared, &self.tenant, id).await?;
            }
        }
        Ok(Some(Leftovers {
            passed,
            keys: config.values.keys().cloned().collect(),
            config_keys: config.values.len() as u64,
            grants,
            kv_entries,
            files,
            reason: if passed {
                why
            } else {
                format!("{why}: they were purged")
            },
        }))
    }

    /// Carries out what [`check_leftovers`](Self::check_leftovers)
    /// decided for `id`: purges leftovers that do not pass (config and
    /// secrets, grants, KV, data files) and records exactly what in the
    /// event log (`leftovers_purged`).
    pub(crate) async fn apply_leftovers(
        &self,
        id: &PluginId,
        leftovers: Option<&Leftovers>,
    ) -> Result<()> {
        let Some(leftovers) = leftovers.filter(|l| !l.passed) else {
            return Ok(());
        };
        let store = &self.shared.store;
        let tenant = &self.tenant.id;
        let purged = store.purge_leftovers(tenant, id).await?;
        let dir = self.paths().plugin_data(tenant.as_str(), id)?;
        let mut files = false;
        if leftovers.files {
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => files = true,
                Err(error) => {
                    tracing::warn!(plugin = %id, "cannot delete {}: {error}", dir.display());
                }
            }
        }
        let kind = EventKind::parse(LEFTOVERS_PURGED).expect("a valid event kind");
        store
            .append_events(&[NewEvent::new(tenant.clone(), kind, EventStatus::Ok)
                .with_plugin(id.clone())
                .with_detail(json!({
                    "config_keys": leftovers.keys,
                    "grants": purged.grants,
                    "kv_entries": purged.kv_entries,
                    "files": files,
                    "reason": leftovers.reason,
                }))])
            .await?;
        Ok(())
    }
}

/// The event kind recording a purge of what an uninstalled plugin left.
pub const LEFTOVERS_PURGED: &str = "leftovers_purged";

#[cfg(test)]
mod tests {
    use super::*;
    use tenon_marketplace::{KeyRotation, SigningKey};

    #[test]
    fn bindings_follow_first_signatures_policies_and_rotations() {
        let key = |n: u8| SigningKey::from_seed(&[n; 32]);
        let (old, new, other) = (key(1), key(2), key(3));
        let (o, n, x) = (old.public_key(), new.public_key(), other.public_key());
        let plain = TrustPolicy::default();
        let rotated = TrustPolicy {
            rotations: vec![KeyRotation::sign(&old, &n)],
            ..TrustPolicy::default()
        };
        let revoked_rotated = TrustPolicy {
            revoked_keys: vec![o],
            ..rotated.clone()
        };
        let named = TrustPolicy::default().with_publisher_key("acme", n);
        let rotated_for_beta = TrustPolicy {
            rotations: vec![KeyRotation::sign_for(&old, &n, "beta")],
            ..TrustPolicy::default()
        };
        let (middle, m) = (key(4), key(4).public_key());
        let through_revoked = TrustPolicy {
            rotations: vec![KeyRotation::sign(&old, &m), KeyRotation::sign(&middle, &n)],
            revoked_keys: vec![m],
            ..TrustPolicy::default()
        };
        use Arrival::*;
        type Case<'a> = (
            &'a str,
            Option<&'a PublicKey>,
            Vec<PublicKey>,
            &'a TrustPolicy,
            Arrival,
            Result<(Option<(PublicKey, &'a str)>, bool), Vec<KeyId>>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "first signature binds",
                None,
                vec![o],
                &plain,
                Install,
                Ok((Some((o, "first-signature")), false)),
            ),
            (
                "unsigned, unbound",
                None,
                vec![],
                &plain,
                Install,
                Ok((None, true)),
            ),
            (
                "the bound key",
                Some(&o),
                vec![o],
                &plain,
                Upgrade,
                Ok((None, true)),
            ),
            (
                "another key",
                Some(&o),
                vec![x],
                &plain,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "another key, reinstall",
                Some(&o),
                vec![x],
                &plain,
                Install,
                Err(vec![o.key_id()]),
            ),
            (
                "rotated, without the statement",
                Some(&o),
                vec![n],
                &plain,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "rotated, with the statement",
                Some(&o),
                vec![n],
                &rotated,
                Upgrade,
                Ok((Some((n, "rotation")), true)),
            ),
            (
                "rotated from a revoked key",
                Some(&o),
                vec![n],
                &revoked_rotated,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "unsigned upgrade of a bound publisher",
                Some(&o),
                vec![],
                &plain,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "unsigned install of a bound publisher",
                Some(&o),
                vec![],
                &plain,
                Install,
                Ok((None, false)),
            ),
            (
                "the policy rebinds",
                Some(&o),
                vec![n],
                &named,
                Upgrade,
                Ok((Some((n, "policy")), false)),
            ),
            (
                "the policy names the key",
                None,
                vec![n],
                &named,
                Install,
                Ok((Some((n, "policy")), false)),
            ),
            (
                "claiming a named publisher",
                None,
                vec![x],
                &named,
                Install,
                Err(vec![n.key_id()]),
            ),
            (
                "unsigned, claiming a named publisher",
                None,
                vec![],
                &named,
                Install,
                Err(vec![n.key_id()]),
            ),
            (
                "rotated by a statement made for another publisher",
                Some(&o),
                vec![n],
                &rotated_for_beta,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "rotated through a revoked key",
                Some(&o),
                vec![n],
                &through_revoked,
                Upgrade,
                Err(vec![o.key_id()]),
            ),
            (
                "the bound key among others",
                Some(&o),
                vec![x, o],
                &plain,
                Upgrade,
                Ok((None, true)),
            ),
        ];
        for (name, bound, authors, policy, arrival, expected) in cases {
            let got = decide(
                "acme",
                bound.map(|k| (k, "first-signature")),
                &authors,
                policy,
                arrival,
            )
            .map(|d| (d.bind, d.leftovers_pass))
            .map_err(|m| m.bound);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn leftovers_pass_only_to_the_same_kind_and_binding() {
        let key = |n: u8| SigningKey::from_seed(&[n; 32]);
        let (old, new, other) = (key(1), key(2), key(3));
        let (o, n, x) = (old.public_key(), new.public_key(), other.public_key());
        let policy = TrustPolicy {
            rotations: vec![KeyRotation::sign(&old, &n)],
            ..TrustPolicy::default()
        };
        let left = |source: SourceKind, key: Option<&PublicKey>| LeftBy {
            source,
            author_key: key.map(PublicKey::to_base64),
        };
        let pass = Decision {
            bind: None,
            leftovers_pass: true,
            why: "signed by the key its publisher is bound to",
        };
        let refuse = Decision {
            leftovers_pass: false,
            ..pass.clone()
        };
        use SourceKind::*;
        type Case<'a> = (
            &'a str,
            Option<LeftBy>,
            SourceKind,
            Vec<PublicKey>,
            Option<&'a Decision>,
            bool,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "host to host",
                Some(left(Builtin, None)),
                Native,
                vec![],
                None,
                true,
            ),
            (
                "host to an unsigned package",
                Some(left(Builtin, None)),
                Directory,
                vec![],
                Some(&pass),
                false,
            ),
            (
                "host to a signed package",
                Some(left(Native, None)),
                Archive,
                vec![o],
                Some(&pass),
                false,
            ),
            (
                "a package to the host",
                Some(left(Archive, Some(&o))),
                Builtin,
                vec![],
                None,
                false,
            ),
            (
                "unsigned to unsigned",
                Some(left(Directory, None)),
                Archive,
                vec![],
                Some(&pass),
                true,
            ),
            (
                "unsigned to signed",
                Some(left(Directory, None)),
                Archive,
                vec![o],
                Some(&pass),
                false,
            ),
            (
                "signed to unsigned",
                Some(left(Archive, Some(&o))),
                Directory,
                vec![],
                Some(&pass),
                false,
            ),
            (
                "signed to the same key",
                Some(left(Archive, Some(&o))),
                Marketplace,
                vec![o],
                Some(&pass),
                true,
            ),
            (
                "signed to its rotated successor",
                Some(left(Archive, Some(&o))),
                Archive,
                vec![n],
                Some(&pass),
                true,
            ),
            (
                "signed to another key the binding accepts",
                Some(left(Archive, Some(&o))),
                Archive,
                vec![x],
                Some(&pass),
                false,
            ),
            (
                "the binding refuses",
                Some(left(Archive, Some(&o))),
                Archive,
                vec![o],
                Some(&refuse),
                false,
            ),
            (
                "nobody recorded, to the host",
                None,
                Builtin,
                vec![],
                None,
                true,
            ),
            (
                "nobody recorded, to a package",
                None,
                Directory,
                vec![],
                Some(&pass),
                false,
            ),
        ];
        for (name, owner, source, authors, standing, expected) in cases {
            let (passed, why) = leftovers_pass(owner.as_ref(), source, &authors, standing, &policy);
            assert_eq!(passed, expected, "{name}: {why}");
            assert!(!why.is_empty(), "{name}");
        }
    }
}
