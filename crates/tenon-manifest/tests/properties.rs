//! Property tests, bounded to run in seconds in debug builds: no input
//! panics any parser, and generated valid manifests round-trip through
//! every format.

use proptest::prelude::*;
use tenon_manifest::{
    Dependency, DependencyScope, FailPolicy, Format, FsMode, FsPermission, HookDecl, Isolation,
    Manifest, PluginId, PluginMeta, Priority, RuntimeKind, RuntimeSpec, ValidationContext, Version,
    VersionReq, parse, parse_bytes,
};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Text that looks a little like a manifest, to reach deeper than random bytes.
fn manifestish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("manifest_version".to_owned()),
        Just("[plugin]".to_owned()),
        Just("[[hooks]]".to_owned()),
        Just("id = \"acme/x\"".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just("- ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("!!str ".to_owned()),
        Just("\"".to_owned()),
        Just(",".to_owned()),
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("= ".to_owned()),
        "[a-z_.]{1,8}",
        "-?[0-9]{1,20}(\\.[0-9]+)?",
    ];
    proptest::collection::vec(token, 0..64).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in Format::ALL {
            let parsed = parse_bytes(&bytes, format, &ValidationContext::default());
            prop_assert!(parsed.is_valid() || parsed.errors().count() > 0);
        }
    }

    #[test]
    fn manifestish_text_never_panics(text in manifestish()) {
        for format in Format::ALL {
            let parsed = parse(&text, format, &ValidationContext::default());
            // An invalid document always says why.
            prop_assert!(parsed.is_valid() || parsed.errors().count() > 0);
        }
    }

    #[test]
    fn valid_manifests_round_trip(mut m in manifest()) {
        let context = ValidationContext::default();
        // Power over hooks is derived from `[[hooks]]` when parsed.
        m.permissions.hooks =
            tenon_manifest::HooksPermission::derive(&m.hooks, context.hook_priority_threshold);
        let errors: Vec<_> = m.validate(&context).into_iter().filter(|d| d.is_error()).collect();
        prop_assert_eq!(errors, vec![]);
        for format in Format::ALL {
            let text = m.to_string_in(format);
            let parsed = parse(&text, format, &context);
            prop_assert_eq!(parsed.manifest.as_ref(), Some(&m), "{}:\n{}\n{:#?}", format, text, parsed.diagnostics);
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}"
}

/// Free text: printable, with quotes, unicode and escapes that the emitters
/// must handle.
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 #:'\"\\\\é€\\t-]{1,24}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        (
            name(),
            name(),
            (0u64..5, 0u64..20, 0u64..100),
            text(),
            proptest::option::of(Just("MIT OR Apache-2.0".to_owned())),
        ),
        prop_oneof![
            Just(RuntimeKind::Component),
            Just(RuntimeKind::Extism),
            Just(RuntimeKind::Native)
        ],
        (
            1u64..4096,
            1u64..60_000,
            proptest::option::of(1u64..1_000_000),
            any::<bool>(),
            1u32..64,
        ),
        proptest::collection::btree_set("[a-z]{1,6}\\.[a-z_]{1,8}", 0..4),
        proptest::collection::vec(("[a-z]{1,8}", any::<bool>()), 0..3),
        proptest::collection::btree_map(name(), (0u64..3, any::<bool>(), 0u8..3), 0..3),
        any::<i32>(),
    )
        .prop_map(|(meta, kind, limits, hooks, fs, deps, priority)| {
            let (publisher, plugin, (major, minor, patch), description, license) = meta;
            let mut plugin = PluginMeta::new(
                PluginId::new(&format!("{publisher}/{plugin}")).unwrap(),
                description.clone(),
                Version::new(major, minor, patch),
            );
            plugin.description = description;
            plugin.authors = vec!["A <a@example.com>".into()];
            plugin.license = license;
            let mut runtime = RuntimeSpec::new(kind);
            runtime.module = kind.is_wasm().then(|| "plugin.wasm".into());
            let mut m = Manifest::new(plugin, runtime);
            let (memory_kib, timeout_ms, fuel, fresh, max_instances) = limits;
            m.limits.memory = tenon_manifest::ByteSize(memory_kib << 10);
            m.limits.timeout = tenon_manifest::DurationSpec::millis(timeout_ms);
            m.limits.fuel = fuel;
            m.limits.isolation = if fresh {
                Isolation::Fresh
            } else {
                Isolation::Reuse
            };
            m.limits.max_instances = max_instances;
            m.hooks = hooks
                .into_iter()
                .map(|name| HookDecl {
                    name,
                    priority: Priority(priority),
                    fail_policy: FailPolicy::Closed,
                    timeout: Some(tenon_manifest::DurationSpec::millis(250)),
                    retries: 1,
                    backoff: None,
                })
                .collect();
            m.activation.on_hooks = m.hooks.iter().map(|h| h.name.clone()).collect();
            m.permissions.filesystem = fs
                .into_iter()
                .enumerate()
                .map(|(i, (dir, rw))| FsPermission {
                    path: format!("{dir}{i}"),
                    mode: if rw { FsMode::ReadWrite } else { FsMode::Read },
                })
                .collect();
            for (dep, (major, optional, scope)) in deps {
                let id = PluginId::new(&format!("other/{dep}")).unwrap();
                m.dependencies.insert(
                    id,
                    Dependency {
                        version: VersionReq::parse(&format!("^{major}")).unwrap(),
                        optional,
                        scope: [
                            DependencyScope::Runtime,
                            DependencyScope::Peer,
                            DependencyScope::Dev,
                        ][scope as usize],
                    },
                );
            }
            m
        })
}
