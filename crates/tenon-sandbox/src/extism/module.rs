//! What an Extism module imports and exports, read before it is compiled.

use std::collections::BTreeSet;

use wasmparser::{CompositeInnerType, ExternalKind, Parser, Payload, TableType, TypeRef, ValType};

/// The import module of Extism's own host functions and kernel.
pub(super) const EXTISM_ENV: &str = "extism:host/env";
/// The import module of Tenon's host functions.
pub(super) const TENON: &str = "tenon";
/// Extism's module for a host's own functions: Tenon's host functions are
/// there too, for PDKs that import only from it (JavaScript).
pub(super) const EXTISM_USER: &str = "extism:host/user";
/// The import module of WASI preview 1.
pub(super) const WASI_P1: &str = "wasi_snapshot_preview1";
/// WASI imports that can block their thread inside the host for as long as
/// the plugin asks (`poll_oneoff` sleeps until its clock subscription fires,
/// what `std::thread::sleep` compiles to on `wasm32-wasip1`). The epoch
/// watchdog only stops wasm code, never a host call, and Extism 1.41 gives
/// a replacement host function no access to the guest's memory (so one
/// cannot read the subscriptions to clamp them to the call's deadline):
/// modules importing these are refused at load.
pub(super) const BLOCKING_WASI: [&str; 1] = ["poll_oneoff"];

/// The exports Tenon gives a meaning to.
pub(super) const HANDLE_HOOK: &str = "handle_hook";
pub(super) const HANDLE_REQUEST: &str = "handle_request";
pub(super) const ACTIVATE: &str = "activate";
pub(super) const CONFIGURE: &str = "configure";
pub(super) const DEACTIVATE: &str = "deactivate";
pub(super) const SNAPSHOT: &str = "snapshot";
pub(super) const RESTORE: &str = "restore";

/// Lifecycle exports: called by the runtime, never through `Plugin::call`.
pub(super) const LIFECYCLE: [&str; 5] = [ACTIVATE, CONFIGURE, DEACTIVATE, SNAPSHOT, RESTORE];

/// What the runtime needs to know about a module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct ModuleInfo {
    /// Exported functions Extism can call: no parameters, no result or one
    /// `i32` result.
    pub(super) callable: BTreeSet<String>,
    /// Whether the module imports WASI preview 1 (and so gets a WASI context
    /// with the granted directories).
    pub(super) uses_wasi: bool,
    /// Whether a host function it imports waits on the async boundary
    /// (KV, events, secrets, HTTP).
    pub(super) needs_async_host: bool,
    /// Whether it imports any host function Tenon serves (and so needs the
    /// call's context: its boundary, scope and deadline).
    pub(super) uses_host: bool,
    /// The host functions Tenon serves that it imports, as (module, name):
    /// only these are linked (Extism links host functions anew for every
    /// instance).
    pub(super) host_imports: BTreeSet<(String, String)>,
    /// The first WASI import in [`BLOCKING_WASI`] it imports, if any: the
    /// runtime refuses such a module.
    pub(super) blocking_wasi: Option<String>,
    /// Whether it runs code of its own when an instance is made, before
    /// the export called: a start function, or an export Extism calls to
    /// initialise a guest runtime ([`RUNTIME_INIT`]). Extism's timer (and
    /// so Tenon's watchdog) cannot stop that code, so it runs on fuel.
    pub(super) runs_at_instantiation: bool,
}

/// The exports Extism 1.41 calls while it makes an instance, before its
/// timer starts (`detect_guest_runtime`).
pub(super) const RUNTIME_INIT: [&str; 3] = ["_initialize", "__wasm_call_ctors", "hs_init"];

impl ModuleInfo {
    /// Whether `name` is exported and callable.
    pub(super) fn exports(&self, name: &str) -> bool {
        self.callable.contains(name)
    }
}

/// Reads a module's imports and exports. Fails on anything that is not a core
/// WebAssembly module whose imports Tenon's Extism runtime can satisfy.
pub(super) fn inspect(bytes: &[u8]) -> Result<ModuleInfo, String> {
    let mut info = ModuleInfo::default();
    let mut types: Vec<Option<(usize, Vec<ValType>)>> = Vec::new();
    let mut funcs: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, u32)> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a WebAssembly module: {e}"))? {
            Payload::Version { encoding, .. } => {
                if encoding == wasmparser::Encoding::Component {
                    return Err("this is a WebAssembly component; Extism runs core modules \
                                (set runtime.kind = \"component\" for components)"
                        .to_owned());
                }
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    let group = group.map_err(|e| format!("bad type section: {e}"))?;
                    for sub in group.into_types() {
                        types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => {
                                Some((f.params().len(), f.results().to_vec()))
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| format!("bad import section: {e}"))?;
                    check_import(import.module, import.name)?;
                    if let TypeRef::Table(table) = &import.ty {
                        check_table(table)?;
                    }
                    if let TypeRef::Func(ty) | TypeRef::FuncExact(ty) = import.ty {
                        funcs.push(ty);
                    }
                    if import.module == WASI_P1 {
                        info.uses_wasi = true;
                        if BLOCKING_WASI.contains(&import.name) && info.blocking_wasi.is_none() {
                            info.blocking_wasi = Some(import.name.to_owned());
                        }
                    }
                    let served = match import.module {
                        TENON | EXTISM_USER => true,
                        EXTISM_ENV => super::abi::ENV_FUNCTIONS.contains(&import.name),
                        _ => false,
                    };
                    if served {
                        info.uses_host = true;
                        info.host_imports
                            .insert((import.module.to_owned(), import.name.to_owned()));
                    }
                    let needs_async = match import.module {
                        // All of Tenon's functions but `log` wait for the
                        // host.
                        TENON | EXTISM_USER => import.name != "log",
                        EXTISM_ENV => matches!(import.name, "http_request" | "config_get"),
                        _ => false,
                    };
                    info.needs_async_host |= needs_async;
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    funcs.push(ty.map_err(|e| format!("bad function section: {e}"))?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(|e| format!("bad table section: {e}"))?;
                    check_table(&table.ty)?;
                }
            }
            Payload::StartSection { .. } => info.runs_at_instantiation = true,
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("bad export section: {e}"))?;
                    if export.kind == ExternalKind::Func {
                        info.runs_at_instantiation |= RUNTIME_INIT.contains(&export.name);
                        exports.push((export.name.to_owned(), export.index));
                    }
                }
            }
            _ => {}
        }
    }
    for (name, index) in exports {
        let ty = funcs
            .get(index as usize)
            .and_then(|t| types.get(*t as usize))
            .and_then(Option::as_ref);
        let callable = match ty {
            Some((0, results)) => results.is_empty() || results.as_slice() == [ValType::I32],
            _ => false,
        };
        if callable {
            info.callable.insert(name);
        }
    }
    Ok(info)
}

/// Refuses a table that could hold more than
/// [`MAX_TABLE_ELEMENTS`](crate::limits::MAX_TABLE_ELEMENTS): Extism's
/// resource limiter lets a table without a declared maximum grow without
/// bound (its elements live in host memory, outside `limits.memory`), and
/// Tenon cannot hand Extism a limiter of its own. A declared maximum is
/// enforced by wasmtime and by Extism.
fn check_table(table: &TableType) -> Result<(), String> {
    let limit = crate::limits::MAX_TABLE_ELEMENTS as u64;
    match table.maximum {
        Some(maximum) if maximum <= limit => Ok(()),
        Some(maximum) => Err(format!(
            "a table of the module may grow to {maximum} elements; plugins may have at most \
             {limit}"
        )),
        None => Err(format!(
            "a table of the module has no maximum size, so it could grow without bound; \
             declare a maximum of at most {limit} elements"
        )),
    }
}

/// Refuses imports no host function answers, naming them (instead of a link
/// error at the first call).
fn check_import(module: &str, name: &str) -> Result<(), String> {
    match module {
        EXTISM_ENV | WASI_P1 => Ok(()),
        TENON | EXTISM_USER if super::abi::TENON_FUNCTIONS.contains(&name) => Ok(()),
        TENON | EXTISM_USER => Err(format!(
            "the module imports `{module}::{name}`, which this host does not offer (it offers {})",
            super::abi::TENON_FUNCTIONS.join(", ")
        )),
        _ => Err(format!(
            "the module imports `{module}::{name}`; an Extism plugin may import only from \
             `{EXTISM_ENV}`, `{TENON}` (also as `{EXTISM_USER}`) and `{WASI_P1}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).expect("valid WAT")
    }

    /// Hostile: a module that grows a table in a loop. Extism 1.41's
    /// limiter allows any growth of a table without a maximum, so such
    /// modules (and tables whose maximum is above the cap, defined or
    /// imported) are refused at load, naming the cause.
    #[test]
    fn tables_that_could_grow_past_the_cap_are_refused() {
        let grower = |table: &str| {
            format!(
                r#"(module {table}
                    (func (export "grow") (result i32)
                      (loop $again
                        (br_if $again (i32.ne (table.grow 0 (ref.null func) (i32.const 65536))
                                              (i32.const -1))))
                      (i32.const 0)))"#
            )
        };
        let cases = [
            ("(table 1 funcref)", Some("no maximum size")),
            (
                "(table 1 100001 funcref)",
                Some("may grow to 100001 elements"),
            ),
            (
                r#"(import "extism:host/env" "t" (table 1 funcref))"#,
                Some("no maximum size"),
            ),
            ("(table 1 100000 funcref)", None),
            ("(table 1 1 funcref)", None),
        ];
        for (table, refused) in cases {
            let result = inspect(&wasm(&grower(table)));
            match (refused, result) {
                (None, Ok(_)) => {}
                (Some(cause), Err(message)) => {
                    assert!(message.contains(cause), "{table}: {message}");
                }
                (expected, result) => {
                    panic!(
                        "{table}: expected refusal {expected:?}, got {:?}",
                        result.err()
                    );
                }
            }
        }
    }

    #[test]
    fn reads_callable_exports_and_host_needs() {
        let info = inspect(&wasm(
            r#"(module
                (import "extism:host/env" "input_length" (func (result i64)))
                (import "tenon" "kv_get" (func (param i64) (result i64)))
                (func (export "run") (result i32) i32.const 0)
                (func (export "nothing"))
                (func (export "takes_args") (param i32))
                (func (export "returns_i64") (result i64) i64.const 0)
                (memory (export "memory") 1))"#,
        ))
        .unwrap();
        assert_eq!(
            info.callable.iter().map(String::as_str).collect::<Vec<_>>(),
            ["nothing", "run"]
        );
        assert!(info.needs_async_host);
        assert!(info.uses_host);
        assert!(!info.uses_wasi);
        assert_eq!(
            info.host_imports.into_iter().collect::<Vec<_>>(),
            [("tenon".to_owned(), "kv_get".to_owned())]
        );
    }

    #[test]
    fn tenon_functions_are_also_extism_user_functions() {
        let info = inspect(&wasm(
            r#"(module
                (import "extism:host/user" "kv_set" (func (param i64) (result i64)))
                (import "extism:host/user" "log" (func (param i64))))"#,
        ))
        .unwrap();
        assert!(info.needs_async_host);
        let err = inspect(&wasm(
            r#"(module (import "extism:host/user" "launch" (func)))"#,
        ))
        .unwrap_err();
        assert!(err.contains("`extism:host/user::launch`"), "{err}");
    }

    #[test]
    fn sees_wasi_and_sync_only_hosts() {
        let info = inspect(&wasm(
            r#"(module
                (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
                (import "extism:host/env" "log_info" (func (param i64)))
                (func (export "run") (result i32) i32.const 0))"#,
        ))
        .unwrap();
        assert!(info.uses_wasi);
        assert!(!info.needs_async_host);
        assert!(info.uses_host, "log_info is Tenon's");
        let kernel_only = inspect(&wasm(
            r#"(module (import "extism:host/env" "input_length" (func (result i64))))"#,
        ))
        .unwrap();
        assert!(!kernel_only.uses_host);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let check = |text: &str, expected: &str| {
            let err = inspect(&wasm(text)).unwrap_err();
            assert!(err.contains(expected), "{err}");
        };
        check(r#"(module (import "env" "abort" (func)))"#, "`env::abort`");
        check(
            r#"(module (import "tenon" "format_disk" (func)))"#,
            "`tenon::format_disk`",
        );
        check("(component)", "component");
        assert!(
            inspect(b"not wasm")
                .unwrap_err()
                .contains("not a WebAssembly module")
        );
    }
}
