//! Permission grants: what an operator granted against what a plugin
//! declares.
//!
//! A grant covers a declaration when every permission declared is granted
//! at least as broadly (the same host patterns, paths with at least the same
//! mode, quotas at least as large…). The permissions in force for a running
//! plugin are the intersection of what it declares and what was granted.

use std::collections::BTreeMap;

use tenon_manifest::{
    EventsPermission, FsMode, FsPermission, HostPermission, KvPermission, NetworkPermission,
    Permissions,
};

/// The declared permissions that `granted` does not cover, described for an
/// operator (`network: outbound hooks.slack.com`, `secrets: token`…); empty
/// when the grant covers everything.
pub fn missing(declared: &Permissions, granted: &Permissions) -> Vec<String> {
    let mut missing = Vec::new();
    if let Some(net) = &declared.network {
        let g = granted.network.as_ref();
        for pattern in &net.outbound {
            if !g.is_some_and(|g| g.outbound.contains(pattern)) {
                missing.push(format!("network: outbound {pattern}"));
            }
        }
        for method in &net.methods {
            if !g.is_some_and(|g| {
                g.methods.is_empty() || g.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
            }) {
                missing.push(format!("network: method {method}"));
            }
        }
        if net.methods.is_empty() && g.is_some_and(|g| !g.methods.is_empty()) {
            missing.push("network: any method".to_owned());
        }
        if net.allow_private && !g.is_some_and(|g| g.allow_private) {
            missing.push("network: private addresses".to_owned());
        }
        if let Some(size) = net.max_response
            && g.and_then(|g| g.max_response)
                .is_some_and(|granted| granted < size)
        {
            missing.push(format!("network: responses up to {size}"));
        }
    }
    for fs in &declared.filesystem {
        let covered = granted
            .filesystem
            .iter()
            .any(|g| g.path == fs.path && (g.mode == fs.mode || g.mode == FsMode::ReadWrite));
        if !covered {
            missing.push(format!("filesystem: {} ({})", fs.path, fs.mode.as_str()));
        }
    }
    if let Some(kv) = &declared.kv {
        match &granted.kv {
            None => missing.push(match kv.quota {
                Some(quota) => format!("kv (quota {quota})"),
                None => "kv".to_owned(),
            }),
            Some(g) => {
                if let (Some(want), Some(have)) = (kv.quota, g.quota)
                    && have < want
                {
                    missing.push(format!("kv: quota {want} (granted {have})"));
                }
            }
        }
    }
    for secret in &declared.secrets {
        if !granted.secrets.contains(secret) {
            missing.push(format!("secrets: {secret}"));
        }
    }
    if let Some(events) = &declared.events {
        let g = granted.events.as_ref();
        for topic in &events.publish {
            if !g.is_some_and(|g| g.publish.contains(topic)) {
                missing.push(format!("events: publish {topic}"));
            }
        }
        for topic in &events.subscribe {
            if !g.is_some_and(|g| g.subscribe.contains(topic)) {
                missing.push(format!("events: subscribe {topic}"));
            }
        }
    }
    for (kind, want) in &declared.host {
        let have = granted.host.get(kind);
        missing.extend(
            host_missing(want, have)
                .into_iter()
                .map(|what| format!("{kind}: {what}")),
        );
    }
    missing
}

fn host_missing(want: &HostPermission, have: Option<&HostPermission>) -> Vec<String> {
    use HostPermission as H;
    match (want, have) {
        (H::Flag(false), _) => vec![],
        (_, Some(H::Flag(true))) => vec![],
        (H::Flag(true), _) => vec!["all".to_owned()],
        (H::Actions(actions), Some(H::Actions(granted))) => actions
            .iter()
            .filter(|a| !granted.contains(a))
            .cloned()
            .collect(),
        (H::Actions(actions), Some(H::Scoped(granted))) => actions
            .iter()
            .filter(|a| !granted.contains_key(*a))
            .cloned()
            .collect(),
        (H::Actions(actions), _) => actions.clone(),
        (H::Scoped(scoped), Some(H::Actions(granted))) => scoped
            .keys()
            .filter(|a| !granted.contains(a))
            .cloned()
            .collect(),
        (H::Scoped(scoped), Some(H::Scoped(granted))) => scoped
            .iter()
            .flat_map(|(action, scopes)| match granted.get(action) {
                None => vec![format!("{action} {}", scopes.join(" "))],
                Some(have) => scopes
                    .iter()
                    .filter(|s| !have.contains(s))
                    .map(|s| format!("{action} {s}"))
                    .collect(),
            })
            .collect(),
        (H::Scoped(scoped), _) => scoped.keys().cloned().collect(),
    }
}

/// The permissions in force: what is declared, narrowed to what was granted.
pub fn effective(declared: &Permissions, granted: &Permissions) -> Permissions {
    let network = declared.network.as_ref().and_then(|net| {
        let g = granted.network.as_ref()?;
        Some(NetworkPermission {
            outbound: net
                .outbound
                .iter()
                .filter(|p| g.outbound.contains(p))
                .cloned()
                .collect(),
            methods: match (net.methods.is_empty(), g.methods.is_empty()) {
                (_, true) => net.methods.clone(),
                (true, false) => g.methods.clone(),
                (false, false) => net
                    .methods
                    .iter()
                    .filter(|m| g.methods.iter().any(|x| x.eq_ignore_ascii_case(m)))
                    .cloned()
                    .collect(),
            },
            allow_private: net.allow_private && g.allow_private,
            max_response: match (net.max_response, g.max_response) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    });
    let filesystem = declared
        .filesystem
        .iter()
        .filter_map(|fs| {
            let g = granted.filesystem.iter().find(|g| g.path == fs.path)?;
            let mode = if fs.mode == FsMode::ReadWrite && g.mode == FsMode::ReadWrite {
                FsMode::ReadWrite
            } else {
                FsMode::Read
            };
            Some(FsPermission {
                path: fs.path.clone(),
                mode,
            })
        })
        .collect();
    let kv = declared.kv.as_ref().and_then(|kv| {
        let g = granted.kv.as_ref()?;
        Some(KvPermission {
            quota: match (kv.quota, g.quota) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    });
    let events = declared.events.as_ref().and_then(|e| {
        let g = granted.events.as_ref()?;
        Some(EventsPermission {
            publish: e
                .publish
                .iter()
                .filter(|t| g.publish.contains(t))
                .cloned()
                .collect(),
            subscribe: e
                .subscribe
                .iter()
                .filter(|t| g.subscribe.contains(t))
                .cloned()
                .collect(),
        })
    });
    let host: BTreeMap<String, HostPermission> = declared
        .host
        .iter()
        .filter_map(|(kind, want)| {
            let have = granted.host.get(kind)?;
            host_missing(want, Some(have))
                .is_empty()
                .then(|| (kind.clone(), want.clone()))
        })
        .collect();
    Permissions {
        network,
        filesystem,
        kv,
        secrets: declared
            .secrets
            .iter()
            .filter(|s| granted.secrets.contains(s))
            .cloned()
            .collect(),
        events,
        host,
    }
}

/// Every declared permission, described, for disclosure before a grant.
pub fn describe(declared: &Permissions) -> Vec<String> {
    missing(declared, &Permissions::default())
}

#[cfg(test)]
mod tests {
    use tenon_manifest::{ByteSize, HostPattern};

    use super::*;

    fn declared() -> Permissions {
        Permissions {
            network: Some(NetworkPermission {
                outbound: vec!["hooks.slack.com".parse::<HostPattern>().unwrap()],
                ..Default::default()
            }),
            filesystem: vec![FsPermission {
                path: "data".into(),
                mode: FsMode::ReadWrite,
            }],
            kv: Some(KvPermission {
                quota: Some(ByteSize::mib(1)),
            }),
            secrets: vec!["token".into()],
            events: Some(EventsPermission {
                publish: vec!["notify.*".into()],
                subscribe: vec![],
            }),
            host: [(
                "org".to_owned(),
                HostPermission::Actions(vec!["read".into()]),
            )]
            .into(),
        }
    }

    #[test]
    fn nothing_granted_misses_everything() {
        assert_eq!(
            describe(&declared()),
            [
                "network: outbound hooks.slack.com",
                "filesystem: data (readwrite)",
                "kv (quota 1MiB)",
                "secrets: token",
                "events: publish notify.*",
                "org: read",
            ]
        );
        assert_eq!(
            effective(&declared(), &Permissions::default()),
            Permissions::default()
        );
    }

    #[test]
    fn a_full_grant_covers_and_keeps_everything() {
        assert!(missing(&declared(), &declared()).is_empty());
        assert_eq!(effective(&declared(), &declared()), declared());
    }

    #[test]
    fn a_new_version_asking_for_more_needs_more() {
        let granted = declared();
        let mut more = declared();
        more.secrets.push("signing-key".into());
        more.filesystem.push(FsPermission {
            path: "cache".into(),
            mode: FsMode::Read,
        });
        more.kv = Some(KvPermission {
            quota: Some(ByteSize::mib(4)),
        });
        assert_eq!(
            missing(&more, &granted),
            [
                "filesystem: cache (read)",
                "kv: quota 4MiB (granted 1MiB)",
                "secrets: signing-key",
            ]
        );
        let eff = effective(&more, &granted);
        assert_eq!(eff.secrets, ["token"]);
        assert_eq!(eff.kv.unwrap().quota, Some(ByteSize::mib(1)));
        assert_eq!(eff.filesystem.len(), 1);
    }

    #[test]
    fn readwrite_covers_read_but_not_the_reverse() {
        let rw = Permissions {
            filesystem: vec![FsPermission {
                path: "d".into(),
                mode: FsMode::ReadWrite,
            }],
            ..Default::default()
        };
        let r = Permissions {
            filesystem: vec![FsPermission {
                path: "d".into(),
                mode: FsMode::Read,
            }],
            ..Default::default()
        };
        assert!(missing(&r, &rw).is_empty());
        assert_eq!(missing(&rw, &r), ["filesystem: d (readwrite)"]);
        assert_eq!(effective(&rw, &r).filesystem[0].mode, FsMode::Read);
    }

    #[test]
    fn host_vocabulary_kinds() {
        let want = |p: HostPermission| Permissions {
            host: [("database".to_owned(), p)].into(),
            ..Default::default()
        };
        let scoped = |pairs: &[(&str, &[&str])]| {
            HostPermission::Scoped(
                pairs
                    .iter()
                    .map(|(a, s)| (a.to_string(), s.iter().map(|x| x.to_string()).collect()))
                    .collect(),
            )
        };
        let declared = want(scoped(&[("read", &["forms", "users"])]));
        assert!(missing(&declared, &want(HostPermission::Flag(true))).is_empty());
        assert_eq!(
            missing(&declared, &want(scoped(&[("read", &["forms"])]))),
            ["database: read users"]
        );
        assert_eq!(
            missing(&declared, &Permissions::default()),
            ["database: read"]
        );
    }
}
