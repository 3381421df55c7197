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
//! files) passes to a reinstall only when the reinstall comes from the same
//! publisher as far as can be proven: signed by the key the publisher was
//! bound to (or its rotated successor), or, for a publisher never bound,
//! unsigned like the install that left it. Otherwise it is purged before
//! the plugin is stored, and the install report says so.

use serde::Serialize;
use tenon_manifest::PluginId;
use tenon_marketplace::{KeyId, PublicKey, TrustPolicy};
use tenon_registry::{NewPublisherKey, PublisherKey};

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
                && let Some(next) = authors.iter().find(|a| policy.succeeds(key, a))
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
                .find(|a| named.iter().any(|n| policy.succeeds(n, a)))
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

/// What became of an uninstalled plugin's leftovers at a reinstall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leftovers {
    /// Whether they passed to the new install (otherwise they were
    /// purged).
    pub passed: bool,
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

    /// Decides what an uninstalled plugin's leftovers do at a new install
    /// of `id`: pass when `standing` allows, else purged (config, grants,
    /// KV, data files). `None` when it left nothing.
    pub(crate) async fn settle_leftovers(
        &self,
        id: &PluginId,
        standing: Option<&Standing>,
    ) -> Result<Option<Leftovers>> {
        let store = &self.shared.store;
        let tenant = &self.tenant.id;
        let config_keys = store.get_config(tenant, id).await?.values.len() as u64;
        let grants = store.list_grants(tenant, id).await?.len() as u64;
        let kv_entries = store.kv_usage(tenant, id).await?.keys;
        let dir = self.paths().plugin_data(tenant.as_str(), id)?;
        let files = tokio::fs::symlink_metadata(&dir).await.is_ok();
        if config_keys == 0 && grants == 0 && kv_entries == 0 && !files {
            return Ok(None);
        }
        let passed = standing.is_none_or(|s| s.decision.leftovers_pass);
        let reason = match standing {
            None => "the host's own plugin".to_owned(),
            Some(s) if passed => s.decision.why.to_owned(),
            Some(s) => format!("{}: they were purged", s.decision.why),
        };
        if !passed {
            store.purge_leftovers(tenant, id).await?;
            if files && let Err(error) = tokio::fs::remove_dir_all(&dir).await {
                tracing::warn!(plugin = %id, "cannot delete {}: {error}", dir.display());
            }
        }
        Ok(Some(Leftovers {
            passed,
            config_keys,
            grants,
            kv_entries,
            files,
            reason,
        }))
    }
}

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
}
