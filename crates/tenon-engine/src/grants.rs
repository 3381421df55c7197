//! Permission grants: what an operator granted against what a plugin
//! declares.
//!
//! A grant covers a declaration when every permission declared is granted
//! at least as broadly (the same host patterns, paths with at least the same
//! mode, quotas at least as large…). The permissions in force for a running
//! plugin are the intersection of what it declares and what was granted.

use std::collections::BTreeMap;

use tenon_manifest::{
    EventsPermission, FsMode, FsPermission, HooksPermission, HostPermission, KvPermission,
    NetworkPermission, Permissions,
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
    if let Some(hooks) = &declared.hooks {
        let g = granted.hooks.as_ref();
        for hook in &hooks.fail_closed {
            if !g.is_some_and(|g| g.fail_closed.contains(hook)) {
                missing.push(fail_closed_name(hook));
            }
        }
        for (hook, &priority) in &hooks.priority {
            let granted = g.and_then(|g| g.priority.get(hook)).copied();
            if granted.is_none_or(|p| p < priority) {
                missing.push(priority_name(hook, priority));
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

/// How the power to fail closed on `hook` is named.
fn fail_closed_name(hook: &str) -> String {
    format!("{HOOKS_PREFIX}fail closed on {hook}")
}

/// How the power to run at `priority` on `hook` is named.
fn priority_name(hook: &str, priority: i32) -> String {
    format!("{HOOKS_PREFIX}priority {priority} on {hook}")
}

/// The declared permissions a plugin cannot run without that `granted`
/// does not cover: [`missing`] but power over hooks, which a plugin runs
/// without (fail-open, at most at the host's priority threshold; see
/// `activate::handler_options`).
pub fn missing_to_run(declared: &Permissions, granted: &Permissions) -> Vec<String> {
    let mut missing = missing(declared, granted);
    missing.retain(|m| !is_hook_power(m));
    missing
}

/// How every description of power over hooks begins.
const HOOKS_PREFIX: &str = "hooks: ";

/// Whether a permission's description (as [`describe`] words it) is power
/// over hooks, which a plugin runs without.
pub fn is_hook_power(description: &str) -> bool {
    description.starts_with(HOOKS_PREFIX)
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
    let hooks = declared.hooks.as_ref().and_then(|h| {
        let g = granted.hooks.as_ref()?;
        let power = HooksPermission {
            fail_closed: h
                .fail_closed
                .iter()
                .filter(|hook| g.fail_closed.contains(hook))
                .cloned()
                .collect(),
            priority: h
                .priority
                .iter()
                .filter_map(|(hook, &want)| {
                    let have = *g.priority.get(hook)?;
                    Some((hook.clone(), want.min(have)))
                })
                .collect(),
        };
        (!power.fail_closed.is_empty() || !power.priority.is_empty()).then_some(power)
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
        hooks,
        host,
    }
}

/// Every declared permission, described, for disclosure before a grant.
pub fn describe(declared: &Permissions) -> Vec<String> {
    missing(declared, &Permissions::default())
}

/// Whether an operator's `name` names the permission `description` (one
/// line of [`describe`]): the whole line, or its leading words (`secrets`
/// names every secret, `network: outbound` every outbound host, `kv` the
/// KV store whatever its quota).
pub fn names(name: &str, description: &str) -> bool {
    let name = name.trim();
    !name.is_empty()
        && description
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(':') || rest.starts_with(' '))
}

/// The part of `permissions` whose descriptions (as [`describe`] words them)
/// `keep` accepts. A network permission left without any host, method or
/// private-address right goes as a whole, and so does one whose methods were
/// all dropped (no method list would mean any method).
pub fn retain(permissions: &Permissions, keep: impl Fn(&str) -> bool) -> Permissions {
    let network = permissions.network.as_ref().and_then(|net| {
        let outbound: Vec<_> = net
            .outbound
            .iter()
            .filter(|p| keep(&format!("network: outbound {p}")))
            .cloned()
            .collect();
        let methods: Vec<_> = net
            .methods
            .iter()
            .filter(|m| keep(&format!("network: method {m}")))
            .cloned()
            .collect();
        let allow_private = net.allow_private && keep("network: private addresses");
        let methods_dropped = !net.methods.is_empty() && methods.is_empty();
        (!methods_dropped && (!outbound.is_empty() || allow_private)).then_some(NetworkPermission {
            outbound,
            methods,
            allow_private,
            max_response: net.max_response,
        })
    });
    let kv = permissions.kv.as_ref().filter(|kv| {
        keep(&match kv.quota {
            Some(quota) => format!("kv (quota {quota})"),
            None => "kv".to_owned(),
        })
    });
    let events = permissions.events.as_ref().and_then(|e| {
        let publish: Vec<_> = e
            .publish
            .iter()
            .filter(|t| keep(&format!("events: publish {t}")))
            .cloned()
            .collect();
        let subscribe: Vec<_> = e
            .subscribe
            .iter()
            .filter(|t| keep(&format!("events: subscribe {t}")))
            .cloned()
            .collect();
        (!publish.is_empty() || !subscribe.is_empty())
            .then_some(EventsPermission { publish, subscribe })
    });
    let hooks = permissions.hooks.as_ref().and_then(|h| {
        let power = HooksPermission {
            fail_closed: h
                .fail_closed
                .iter()
                .filter(|hook| keep(&fail_closed_name(hook)))
                .cloned()
                .collect(),
            priority: h
                .priority
                .iter()
                .filter(|(hook, priority)| keep(&priority_name(hook, **priority)))
                .map(|(hook, priority)| (hook.clone(), *priority))
                .collect(),
        };
        (!power.fail_closed.is_empty() || !power.priority.is_empty()).then_some(power)
    });
    let host = permissions
        .host
        .iter()
        .filter_map(|(kind, have)| {
            let kept = |action: &str| keep(&format!("{kind}: {action}"));
            let narrowed = match have {
                HostPermission::Flag(true) => kept("all").then_some(HostPermission::Flag(true)),
                HostPermission::Flag(false) => None,
                HostPermission::Actions(actions) => {
                    let actions: Vec<_> = actions.iter().filter(|a| kept(a)).cloned().collect();
                    (!actions.is_empty()).then_some(HostPermission::Actions(actions))
                }
                HostPermission::Scoped(scoped) => {
                    let scoped: BTreeMap<_, _> = scoped
                        .iter()
                        .filter(|(a, _)| kept(a))
                        .map(|(a, s)| (a.clone(), s.clone()))
                        .collect();
                    (!scoped.is_empty()).then_some(HostPermission::Scoped(scoped))
                }
            };
            narrowed.map(|p| (kind.clone(), p))
        })
        .collect();
    Permissions {
        network,
        filesystem: permissions
            .filesystem
            .iter()
            .filter(|fs| keep(&format!("filesystem: {} ({})", fs.path, fs.mode.as_str())))
            .cloned()
            .collect(),
        kv: kv.cloned(),
        secrets: permissions
            .secrets
            .iter()
            .filter(|s| keep(&format!("secrets: {s}")))
            .cloned()
            .collect(),
        events,
        hooks,
        host,
    }
}

/// The names in `asked` that name none of `permissions` (as [`names`]
/// matches them).
pub fn unknown(permissions: &Permissions, asked: &[String]) -> Vec<String> {
    let described = describe(permissions);
    asked
        .iter()
        .filter(|name| !described.iter().any(|d| names(name, d)))
        .cloned()
        .collect()
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
            hooks: Some(HooksPermission {
                fail_closed: vec!["tool.pre_exec".into()],
                priority: [("tool.pre_exec".to_owned(), 900)].into(),
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
                "hooks: fail closed on tool.pre_exec",
                "hooks: priority 900 on tool.pre_exec",
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
    fn power_over_hooks_is_granted_like_any_permission() {
        let mut granted = declared();
        let power = granted.hooks.as_mut().unwrap();
        power.fail_closed.clear();
        power.priority.insert("tool.pre_exec".into(), 600);
        assert_eq!(
            missing(&declared(), &granted),
            [
                "hooks: fail closed on tool.pre_exec",
                "hooks: priority 900 on tool.pre_exec"
            ]
        );
        let effective = effective(&declared(), &granted);
        let power = effective.hooks.unwrap();
        assert!(power.fail_closed.is_empty());
        assert_eq!(power.priority["tool.pre_exec"], 600);
        // A plugin runs without them (fail-open, at the threshold).
        assert!(missing_to_run(&declared(), &granted).is_empty());
        // Named one by one, as an operator grants them.
        let kept = retain(&declared(), |d| d == "hooks: fail closed on tool.pre_exec");
        let power = kept.hooks.unwrap();
        assert_eq!(power.fail_closed, ["tool.pre_exec"]);
        assert!(power.priority.is_empty());
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
    fn names_select_whole_lines_or_their_leading_words() {
        let table: &[(&[&str], &[&str])] = &[
            (&["secrets"], &["secrets: token"]),
            (&["secrets: token"], &["secrets: token"]),
            (&["kv"], &["kv (quota 1MiB)"]),
            (&["network"], &["network: outbound hooks.slack.com"]),
            (
                &["network: outbound"],
                &["network: outbound hooks.slack.com"],
            ),
            (
                &["org: read", "events"],
                &["events: publish notify.*", "org: read"],
            ),
            (&["secret"], &[]),
            (&["secrets: tok"], &[]),
            (&[""], &[]),
        ];
        for (asked, kept) in table {
            let asked: Vec<String> = asked.iter().map(|a| a.to_string()).collect();
            let selected = retain(&declared(), |d| asked.iter().any(|a| names(a, d)));
            assert_eq!(describe(&selected), *kept, "{asked:?}");
            assert_eq!(unknown(&declared(), &asked).is_empty(), !kept.is_empty());
            assert!(missing(&selected, &declared()).is_empty());
        }
    }

    #[test]
    fn retaining_everything_or_nothing() {
        assert_eq!(retain(&declared(), |_| true), declared());
        assert_eq!(retain(&declared(), |_| false), Permissions::default());
        let methods = Permissions {
            network: Some(NetworkPermission {
                outbound: vec!["api.example.com".parse::<HostPattern>().unwrap()],
                methods: vec!["GET".into(), "POST".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let no_post = retain(&methods, |d| d != "network: method POST");
        assert_eq!(no_post.network.unwrap().methods, ["GET"]);
        // Without any method the network grant goes: an empty list would
        // mean every method.
        let none = retain(&methods, |d| !d.starts_with("network: method"));
        assert_eq!(none.network, None);
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
