//! The filesystem boundary end to end: a plugin's data directory holds
//! nothing of the host's, and nothing a plugin does in it reaches the
//! engine's directory (the registry, its key, the module cache), across a
//! restart, in both WebAssembly runtimes.

use std::path::Path;

use tenon_engine::{EngineError, GrantRequest, PluginId};
use tenon_tests::{builder, plugin};

const SECRET: &str = "the registry's secret key";

/// The hostile path-escape plugins: they grant themselves `data`
/// read-write and `data/sub` read-only, and `plant` replaces `data/sub`
/// with a symlink five levels up (the engine's directory).
const PLUGINS: [(&str, &str); 2] = [
    ("hostile-path-escape", "tenon-hostile/path-escape"),
    (
        "hostile-extism-path-escape",
        "tenon-hostile/extism-path-escape",
    ),
];

fn is_under(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_cannot_reach_the_engine_directory_across_a_restart() {
    for (package, id) in PLUGINS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.key"), SECRET).unwrap();
        let id = id.parse::<PluginId>().unwrap();
        {
            let engine = builder(dir.path()).build().await.expect("builds");
            engine
                .install(plugin(package).dir.as_path())
                .await
                .expect("installs");
            engine.grant(&id, GrantRequest::all("op")).await.unwrap();
            engine.enable(&id).await.expect("enables");
            assert_eq!(
                engine.call(&id, "plant", b"").await.expect(package),
                b"planted"
            );
            engine.shutdown().await;
        }
        // The host restarts: every instance opens its directories anew.
        let engine = builder(dir.path()).build().await.expect("boots");
        for path in ["/data/sub/secret.key", "/data/sub/registry.db"] {
            match engine.call(&id, "read", path.as_bytes()).await {
                Ok(bytes) => panic!(
                    "{package}: ESCAPED: read {path}: {}",
                    String::from_utf8_lossy(&bytes)
                ),
                Err(EngineError::Plugin { source, .. }) => {
                    assert_eq!(source.code(), "plugin-error", "{package} {path}: {source}")
                }
                Err(other) => panic!("{package} {path}: unexpected {other}"),
            }
        }
        assert_eq!(engine.call(&id, "ping", b"").await.unwrap(), b"pong");
        engine.shutdown().await;

        // The layout: the plugin's data directory holds nothing of the
        // host's, and none of the host's files is beneath it.
        let data = dir
            .path()
            .join("data/default")
            .join(id.publisher())
            .join(id.name());
        assert!(data.join("data").is_dir(), "{package}: {}", data.display());
        for host_file in ["secret.key", "registry.db", "cache.key", "cache"] {
            let at = dir.path().join(host_file);
            assert!(!is_under(&at, &data), "{package}: {host_file}");
        }
        assert!(dir.path().join("cache.key").is_file(), "{package}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("secret.key")).unwrap(),
            SECRET
        );
    }
}
