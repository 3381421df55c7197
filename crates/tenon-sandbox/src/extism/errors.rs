//! Turning what Extism reports into [`SandboxError`]s that say what happened.
//!
//! Extism reports every failure as an `anyhow::Error`: a trap arrives as
//! "error while executing at wasm backtrace: …" with the trap further down
//! the chain, a plugin's own error as its message, a timeout as "timeout",
//! an exhausted memory limit as "oom". The operator needs the kind and the
//! plugin's own words, so this module digs them out.

use std::time::Duration;

use crate::error::{SandboxError, TrapKind};
use crate::host::PermissionDenial;
use crate::limits::{MAX_ERROR_CODE, cut_owned};

use super::abi::OwnError;
use super::protocol;

/// What the runtime knows about a failed call besides Extism's error.
#[derive(Debug)]
pub(super) struct Circumstances<'a> {
    /// The plugin.
    pub(super) plugin: &'a str,
    /// The exported function that was called.
    pub(super) function: &'a str,
    /// Whether the call's deadline passed (the watchdog cancelled it, or a
    /// host request ran out of time).
    pub(super) deadline_passed: bool,
    /// The timeout the call had.
    pub(super) timeout: Duration,
    /// The last permission the call was refused.
    pub(super) denial: Option<PermissionDenial>,
    /// The error the plugin set for the call (`error_set`), if any.
    pub(super) own: Option<OwnError>,
    /// The instance's memory cap, in bytes.
    pub(super) memory_limit: u64,
    /// The largest error message the plugin may hand over.
    pub(super) error_limit: u64,
    /// The longest message kept from the plugin, in bytes.
    pub(super) max_message: usize,
}

/// Classifies a failed Extism call.
pub(super) fn classify(error: &::extism::Error, at: Circumstances<'_>) -> SandboxError {
    let max = at.max_message;
    match classify_full(error, at) {
        SandboxError::Trap {
            plugin,
            kind,
            message,
        } => SandboxError::Trap {
            plugin,
            kind,
            message: cut_owned(message, max),
        },
        SandboxError::Plugin {
            plugin,
            code,
            message,
        } => SandboxError::Plugin {
            plugin,
            code: cut_owned(code, MAX_ERROR_CODE),
            message: cut_owned(message, max),
        },
        other => other,
    }
}

fn classify_full(error: &::extism::Error, at: Circumstances<'_>) -> SandboxError {
    let plugin = at.plugin.to_owned();
    let root = error.root_cause().to_string();
    let trap = error
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime::Trap>())
        .copied();
    if at.deadline_passed || trap == Some(wasmtime::Trap::Interrupt) {
        return SandboxError::Timeout {
            plugin,
            after: at.timeout,
        };
    }
    let own = match at.own {
        Some(OwnError::TooLarge(size)) => {
            return SandboxError::OutputTooLarge {
                plugin,
                what: format!("its error message from `{}`", at.function),
                size: Some(size),
                limit: at.error_limit,
            };
        }
        Some(OwnError::Text(text)) => Some(text),
        None => None,
    };
    if error.chain().any(|e| e.to_string() == "oom") {
        return SandboxError::OutOfMemory {
            plugin,
            limit: at.memory_limit,
        };
    }
    if root == "plugin ran out of fuel" || trap == Some(wasmtime::Trap::OutOfFuel) {
        return SandboxError::Trap {
            plugin,
            kind: TrapKind::OutOfFuel,
            message: format!("`{}` used up its fuel", at.function),
        };
    }
    if let Some(denial) = at.denial {
        return SandboxError::PermissionDenied {
            plugin,
            permission: denial.permission,
            detail: format!("{}: {}", denial.attempted, denial.reason),
        };
    }
    if let Some(name) = root.strip_prefix("Function not found: ") {
        return SandboxError::MissingExport {
            plugin,
            export: name.to_owned(),
        };
    }
    let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>();
    let from_trap_text = error.chain().any(|e| {
        e.to_string()
            .starts_with("error while executing at wasm backtrace")
    });
    if trap.is_some() || backtrace.is_some() || from_trap_text {
        return SandboxError::Trap {
            plugin,
            kind: trap.map_or(TrapKind::Unreachable, trap_kind),
            message: trap_message(error, trap, backtrace, at.function, own),
        };
    }
    if let Some(own) = &own {
        let (code, message) = protocol::plugin_error(own);
        return SandboxError::Plugin {
            plugin,
            code,
            message,
        };
    }
    if let Some(code) = root.strip_prefix("Returned non-zero exit code: ") {
        return SandboxError::Plugin {
            plugin,
            code: "exit-code".to_owned(),
            message: format!("`{}` returned {code} without an error message", at.function),
        };
    }
    if let Some(status) = wasi_exit(error) {
        return SandboxError::Trap {
            plugin,
            kind: TrapKind::Other,
            message: format!("`{}` exited with status {status}", at.function),
        };
    }
    // What is left is the plugin's own error (`error_set`, a PDK's `Err`).
    let (code, message) = protocol::plugin_error(&root);
    SandboxError::Plugin {
        plugin,
        code,
        message,
    }
}

fn trap_kind(trap: wasmtime::Trap) -> TrapKind {
    use wasmtime::Trap;
    match trap {
        Trap::UnreachableCodeReached => TrapKind::Unreachable,
        Trap::StackOverflow => TrapKind::StackOverflow,
        Trap::OutOfFuel => TrapKind::OutOfFuel,
        Trap::MemoryOutOfBounds | Trap::HeapMisaligned | Trap::TableOutOfBounds => {
            TrapKind::MemoryOutOfBounds
        }
        Trap::IntegerOverflow | Trap::IntegerDivisionByZero | Trap::BadConversionToInteger => {
            TrapKind::Arithmetic
        }
        _ => TrapKind::Other,
    }
}

/// The exit status of a WASI `proc_exit`, if that is how the call ended.
fn wasi_exit(error: &::extism::Error) -> Option<i32> {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<wasmtime_wasi::I32Exit>())
        .map(|exit| exit.0)
}

/// Frames of the language runtime's panic machinery, skipped when naming
/// where a plugin failed.
const RUNTIME_FRAMES: [&str; 12] = [
    "core::",
    "std::",
    "alloc::",
    "rust_begin_unwind",
    "rust_panic",
    "__rust",
    "panic_",
    "runtime.",
    "abort",
    "extism_pdk::",
    "<extism_pdk",
    "__wasm_call",
];

/// The plugin's own account of a trap when it left one (a panic message set
/// as its error before trapping), otherwise the trap and the plugin function
/// it happened in.
fn trap_message(
    error: &::extism::Error,
    trap: Option<wasmtime::Trap>,
    backtrace: Option<&wasmtime::WasmBacktrace>,
    function: &str,
    own: Option<String>,
) -> String {
    let what = trap.map_or_else(|| "trapped".to_owned(), |t| t.to_string());
    // The error the plugin set before trapping (a panic message); failing
    // that, text in the chain that is not the engine's.
    let own = own.or_else(|| {
        error
            .chain()
            .map(|e| e.to_string())
            .filter(|text| !is_engine_text(text))
            .last()
    });
    let location = backtrace.and_then(|bt| {
        bt.frames()
            .iter()
            .filter_map(|frame| frame.func_name())
            .find(|name| !RUNTIME_FRAMES.iter().any(|skip| name.contains(skip)))
            .map(str::to_owned)
    });
    match (own, location) {
        (Some(own), _) => own,
        (None, Some(location)) => format!("{what} in `{location}` (called as `{function}`)"),
        (None, None) => format!("{what} in `{function}`"),
    }
}

/// Text produced by wasmtime or Extism rather than by the plugin.
fn is_engine_text(text: &str) -> bool {
    text.starts_with("error while executing at wasm backtrace")
        || text.starts_with("wasm trap:")
        || text.starts_with("wasm `")
        || wasm_trap_texts().any(|t| t == text)
}

fn wasm_trap_texts() -> impl Iterator<Item = String> {
    use wasmtime::Trap;
    [
        Trap::StackOverflow,
        Trap::MemoryOutOfBounds,
        Trap::HeapMisaligned,
        Trap::TableOutOfBounds,
        Trap::IndirectCallToNull,
        Trap::BadSignature,
        Trap::IntegerOverflow,
        Trap::IntegerDivisionByZero,
        Trap::BadConversionToInteger,
        Trap::UnreachableCodeReached,
        Trap::Interrupt,
        Trap::OutOfFuel,
    ]
    .into_iter()
    .map(|t| t.to_string())
}
