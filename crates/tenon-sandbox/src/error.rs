//! What can go wrong when running a plugin.

use std::time::Duration;

/// An error from loading or calling a plugin. Every variant says which plugin
/// and what happened; none of them means the host is in trouble.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The module is not valid WebAssembly for its runtime, or does not compile.
    #[error("plugin {plugin}: cannot compile its module: {message}")]
    Compile {
        /// The plugin.
        plugin: String,
        /// The compiler's explanation.
        message: String,
    },
    /// The module targets a plugin API version this host does not serve.
    #[error("plugin {plugin} is built for {found}; this host supports {supported}")]
    Incompatible {
        /// The plugin.
        plugin: String,
        /// What the plugin was built for (for example `tenon:plugin@3.0.0`).
        found: String,
        /// What the host serves (for example `tenon:plugin@1.0.0`).
        supported: String,
    },
    /// The module lacks an export the runtime needs.
    #[error("plugin {plugin} does not export `{export}`")]
    MissingExport {
        /// The plugin.
        plugin: String,
        /// The missing export.
        export: String,
    },
    /// The manifest asks for something this runtime cannot do.
    #[error("plugin {plugin}: {message}")]
    Unsupported {
        /// The plugin.
        plugin: String,
        /// What is not supported.
        message: String,
    },
    /// The call ran past its deadline and was stopped.
    #[error("plugin {plugin} timed out after {after:?}")]
    Timeout {
        /// The plugin.
        plugin: String,
        /// The deadline it was given.
        after: Duration,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error("plugin {plugin} ran out of memory (limit {limit} bytes)")]
    OutOfMemory {
        /// The plugin.
        plugin: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The plugin trapped (a panic, an unreachable, a stack overflow…).
    #[error("plugin {plugin} trapped ({kind}): {message}")]
    Trap {
        /// The plugin.
        plugin: String,
        /// What kind of trap.
        kind: TrapKind,
        /// The trap's message, with the plugin's own panic message when known.
        message: String,
    },
    /// The plugin used a permission it was not granted.
    #[error("plugin {plugin} was denied {permission}: {detail}")]
    PermissionDenied {
        /// The plugin.
        plugin: String,
        /// The permission, as in the manifest (`network`, `filesystem`, `kv`…).
        permission: String,
        /// What it tried.
        detail: String,
    },
    /// The plugin returned an error of its own.
    #[error("plugin {plugin} failed: {code}: {message}")]
    Plugin {
        /// The plugin.
        plugin: String,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The plugin returned something that does not follow the protocol.
    #[error("plugin {plugin} broke the protocol: {message}")]
    Protocol {
        /// The plugin.
        plugin: String,
        /// What was wrong.
        message: String,
    },
    /// Every instance was busy for the whole wait timeout.
    #[error(
        "plugin {plugin} is busy: no instance free after waiting {waited:?} (max_instances {max_instances})"
    )]
    Busy {
        /// The plugin.
        plugin: String,
        /// How long the call waited.
        waited: Duration,
        /// The pool's size.
        max_instances: u32,
    },
    /// A fairness cap (see [`crate::FairnessLimits`]) left no room for
    /// another live instance, and no idle instance of another plugin could
    /// be dropped to make room: the call (or start) was refused at once.
    #[error(
        "plugin {plugin}: no instance for this call: {cap} (FairnessLimits::{setting}), \
         and no idle instance of another plugin could be reclaimed"
    )]
    InstanceCap {
        /// The plugin.
        plugin: String,
        /// Whose cap, and the cap, in words (``tenant `acme` is at its cap
        /// of 2 live instances``).
        cap: String,
        /// The [`crate::FairnessLimits`] field that sets it
        /// (`tenant_instances`, `pool_memory`…).
        setting: &'static str,
    },
    /// The plugin is not started, or was stopped.
    #[error("plugin {plugin} is not running")]
    NotRunning {
        /// The plugin.
        plugin: String,
    },
    /// The plugin handed the host more bytes at once than a limit allows
    /// (an answer, an error message, a host call's arguments); the host
    /// refused it before copying or parsing it, and kept none of it.
    #[error(
        "plugin {plugin}: {what} {}over the limit of {limit} bytes",
        size.map(|s| format!("is {s} bytes, ")).unwrap_or_default()
    )]
    OutputTooLarge {
        /// The plugin.
        plugin: String,
        /// What was too large (`its answer to handle_hook`…).
        what: String,
        /// Its size, in bytes, when the host could see it without reading it.
        size: Option<u64>,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A directory `permissions.filesystem` grants cannot be opened inside
    /// the plugin's data directory: a component of its path is a symbolic
    /// link or not a directory (something replaced it), or the OS refused.
    #[error("plugin {plugin}: cannot open its granted directory `{path}`: {message}")]
    Filesystem {
        /// The plugin.
        plugin: String,
        /// The granted directory, relative to the data directory.
        path: String,
        /// Why.
        message: String,
    },
    /// A process plugin's operating-system process failed: it could not be
    /// started, broke the handshake, was unhealthy, or exited or broke its
    /// connection mid-call. The message quotes the end of its stderr.
    #[error("plugin {plugin}: its process {cause}: {message}")]
    Process {
        /// The plugin.
        plugin: String,
        /// What failed.
        cause: ProcessFailure,
        /// The details, with its exit status and stderr when known.
        message: String,
    },
    /// The host side failed (IO, the compiled-module cache, instantiation).
    #[error("plugin {plugin}: host failure: {message}")]
    Host {
        /// The plugin.
        plugin: String,
        /// What failed.
        message: String,
    },
}

/// What went wrong with a process plugin's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProcessFailure {
    /// The executable on disk is not the stored artifact; it was not started.
    Tampered,
    /// The operating system refused to start it.
    Spawn,
    /// It did not become ready within the start-up timeout.
    StartTimeout,
    /// Its handshake line was refused.
    Handshake,
    /// Its socket could not be connected to.
    Connect,
    /// Its health service did not report `SERVING`.
    Health,
    /// It exited, or broke its connection.
    Exited,
}

impl ProcessFailure {
    /// A short stable word (`start-timeout`, `handshake`…).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Spawn => "spawn",
            Self::StartTimeout => "start-timeout",
            Self::Handshake => "handshake",
            Self::Connect => "connect",
            Self::Health => "health",
            Self::Exited => "exited",
        }
    }
}

impl std::fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tampered => "was not started (its executable is not the stored artifact)",
            Self::Spawn => "could not be started",
            Self::StartTimeout => "did not start in time",
            Self::Handshake => "broke the handshake",
            Self::Connect => "could not be connected to",
            Self::Health => "is not healthy",
            Self::Exited => "exited",
        })
    }
}

/// The kinds of trap a plugin can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrapKind {
    /// The plugin panicked or executed `unreachable`.
    Unreachable,
    /// The stack limit was hit.
    StackOverflow,
    /// Fuel ran out.
    OutOfFuel,
    /// An out-of-bounds memory or table access.
    MemoryOutOfBounds,
    /// Integer division by zero or overflow.
    Arithmetic,
    /// Anything else.
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unreachable => "unreachable",
            Self::StackOverflow => "stack overflow",
            Self::OutOfFuel => "out of fuel",
            Self::MemoryOutOfBounds => "memory out of bounds",
            Self::Arithmetic => "arithmetic",
            Self::Other => "other",
        })
    }
}

impl SandboxError {
    /// The plugin the error is about.
    pub fn plugin(&self) -> &str {
        match self {
            Self::Compile { plugin, .. }
            | Self::Incompatible { plugin, .. }
            | Self::MissingExport { plugin, .. }
            | Self::Unsupported { plugin, .. }
            | Self::Timeout { plugin, .. }
            | Self::OutOfMemory { plugin, .. }
            | Self::Trap { plugin, .. }
            | Self::PermissionDenied { plugin, .. }
            | Self::Plugin { plugin, .. }
            | Self::Protocol { plugin, .. }
            | Self::Busy { plugin, .. }
            | Self::InstanceCap { plugin, .. }
            | Self::NotRunning { plugin }
            | Self::OutputTooLarge { plugin, .. }
            | Self::Filesystem { plugin, .. }
            | Self::Process { plugin, .. }
            | Self::Host { plugin, .. } => plugin,
        }
    }

    /// A short stable word for the kind of error (for receipts, events and
    /// metrics labels).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Compile { .. } => "compile",
            Self::Incompatible { .. } => "incompatible",
            Self::MissingExport { .. } => "missing-export",
            Self::Unsupported { .. } => "unsupported",
            Self::Timeout { .. } => "timeout",
            Self::OutOfMemory { .. } => "out-of-memory",
            Self::Trap { .. } => "trap",
            Self::PermissionDenied { .. } => "permission-denied",
            Self::Plugin { .. } => "plugin-error",
            Self::Protocol { .. } => "protocol",
            Self::Busy { .. } => "busy",
            Self::InstanceCap { .. } => "instance_cap",
            Self::NotRunning { .. } => "not-running",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::Filesystem { .. } => "filesystem",
            Self::Process { .. } => "process",
            Self::Host { .. } => "host",
        }
    }
}
