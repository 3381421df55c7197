//! The fixtures of the runtimes Tenon ships: where each finds "the looping
//! plugin", "the echo plugin"… and how its runtime is set up for tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tenon_manifest::Manifest;
use tenon_sandbox::{Runtime, SandboxConfig};

use super::{Fixture, Role};

/// One compiled-code cache for the whole test process, so each module
/// compiles once however many tests load it.
pub fn shared_cache() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a cache directory"))
        .path()
        .to_owned()
}

/// The example plugin of Cargo package `package`: its manifest and module
/// (the examples are built once per test process).
pub fn built(package: &str) -> (Manifest, Arc<[u8]>) {
    let plugin = tenon_build::ensure_examples_built().expect(package);
    let module = plugin.module_bytes().expect("the built module");
    (plugin.manifest.clone(), module.into())
}

#[cfg(feature = "component")]
#[allow(unused_imports)]
pub use self::component::*;

#[cfg(feature = "component")]
mod component {
    use super::*;
    use tenon_sandbox::{ComponentConfig, ComponentRuntime};

    /// The component runtime's settings in tests: the shared cache, a small
    /// pool.
    pub fn runtime_config(sandbox: SandboxConfig) -> ComponentConfig {
        let mut config = ComponentConfig::default()
            .with_sandbox(sandbox)
            .with_cache_dir(shared_cache());
        config.pool_instances = 64;
        config
    }

    /// The component runtime.
    pub struct Components;

    impl Fixture for Components {
        fn runtime(&self, sandbox: SandboxConfig) -> Arc<dyn Runtime> {
            Arc::new(ComponentRuntime::new(runtime_config(sandbox)).expect("a component runtime"))
        }

        fn plugin(&self, role: Role) -> (Manifest, Arc<[u8]>) {
            built(match role {
                Role::Echo => "echo",
                Role::Counter => "counter",
                Role::Looper => "hostile-looper",
                Role::MemoryBomb => "hostile-memory-bomb",
                Role::DeepRecursion => "hostile-deep-recursion",
                Role::Panicker => "hostile-panicker",
                Role::ForbiddenHost => "hostile-forbidden-host",
                Role::PathEscape => "hostile-path-escape",
                Role::HugeOutput => "hostile-huge-output",
                Role::PingPong => "hostile-ping-pong",
            })
        }
    }
}

#[cfg(feature = "extism")]
#[allow(unused_imports)]
pub use self::extism::*;

#[cfg(feature = "extism")]
mod extism {
    use super::*;
    use tenon_sandbox::{CallThreading, ExtismConfig, ExtismRuntime};

    /// The Extism runtime, calls running as `threading` says.
    pub struct Extism {
        pub threading: CallThreading,
    }

    /// Calls on the calling thread.
    pub const INLINE: Extism = Extism {
        threading: CallThreading::Inline,
    };

    /// Calls on the runtime's plugin-call threads (the default).
    pub const DEDICATED: Extism = Extism {
        threading: CallThreading::Dedicated,
    };

    /// The Extism runtime with `sandbox`, calls running as `threading` says.
    pub fn runtime(sandbox: SandboxConfig, threading: CallThreading) -> ExtismRuntime {
        ExtismRuntime::new(
            // Two call threads whatever the machine, so a test of the
            // threads' shares means the same on every machine.
            ExtismConfig::default()
                .with_sandbox(sandbox)
                .with_cache_dir(shared_cache())
                .with_threading(threading)
                .with_call_threads(2),
        )
    }

    impl Fixture for Extism {
        fn runtime(&self, sandbox: SandboxConfig) -> Arc<dyn Runtime> {
            Arc::new(runtime(sandbox, self.threading))
        }

        fn plugin(&self, role: Role) -> (Manifest, Arc<[u8]>) {
            built(match role {
                Role::Echo => "extism-echo",
                Role::Counter => "extism-counter",
                Role::Looper => "hostile-extism-looper",
                Role::MemoryBomb => "hostile-extism-memory-bomb",
                Role::DeepRecursion => "hostile-extism-deep-recursion",
                Role::Panicker => "hostile-extism-panicker",
                Role::ForbiddenHost => "hostile-extism-forbidden-host",
                Role::PingPong => "hostile-extism-ping-pong",
                Role::PathEscape => "hostile-extism-path-escape",
                Role::HugeOutput => "hostile-extism-huge-output",
            })
        }
    }
}
