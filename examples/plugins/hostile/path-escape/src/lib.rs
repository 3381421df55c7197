//! Hostile test plugin: tries to leave its preopened directories (`data`,
//! read-write, `data/sub` nested in it, and `assets`, read-only). WASI
//! preopens must confine it: every escape fails with an I/O error and
//! touches nothing outside.
//!
//! - `handle_hook` (any hook): reads `../../etc/passwd`; fails with code `io`
//!   (or, if the read worked, `escaped`);
//! - `call("read", path)`, `call("write", path)`, `call("list", dir)`: one
//!   operation on a path of the caller's choice;
//! - `call("escape")`: tries [`READ_ESCAPES`] and [`WRITE_ESCAPES`], answers
//!   `{"read <path>" | "write <path>": "denied: …" | "ALLOWED …"}`;
//! - `call("plant", target)`: the nested-grant escape, first half: removes
//!   `data/sub` (through `data`, which is writable) and puts a symlink there
//!   pointing to `target` (default [`PLANT_TARGET`]); answers `planted`. A
//!   host that reopens `data/sub` by its host path for a later instance
//!   follows the link, and `read /data/sub/secret.key` reads outside;
//! - `call("ping")`: `pong`.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;

use tenon_pdk::{Config, Error, HookAction, HookContext, HookData, Plugin, json};

/// Reads that must fail.
pub const READ_ESCAPES: &[&str] = &[
    "../../etc/passwd",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "data/../../etc/passwd",
    "data/../../../etc/passwd",
    "/data/../../etc/passwd",
    "assets/../../etc/passwd",
    "..",
    "/",
];

/// Writes that must fail: outside every preopen, or inside the read-only one.
pub const WRITE_ESCAPES: &[&str] = &[
    "../escaped.txt",
    "/tmp/tenon-escaped.txt",
    "data/../escaped.txt",
    "assets/written.txt",
    "/assets/written.txt",
];

/// Where `plant` points `data/sub` by default: from `<data dir>/data`, five
/// levels up (the engine's registry directory).
pub const PLANT_TARGET: &str = "../../../../..";

/// `data/sub`, spelled so that it resolves through the `data` preopen
/// rather than through the `data/sub` one (which it replaces).
const SUB_THROUGH_DATA: &str = "/data/./sub";

/// Holds nothing.
pub struct PathEscape;

fn io(path: &str, error: std::io::Error) -> Error {
    Error::new("io", format!("{path}: {error}"))
}

fn plant(target: &str) -> Result<(), Error> {
    match fs::remove_dir(SUB_THROUGH_DATA) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // Planted before: replace the link.
        Err(_) => fs::remove_file(SUB_THROUGH_DATA).map_err(|e| io(SUB_THROUGH_DATA, e))?,
    }
    // `soft_link` is the one stable way to create a symlink on WASI.
    #[allow(deprecated)]
    fs::soft_link(target, SUB_THROUGH_DATA).map_err(|e| io(SUB_THROUGH_DATA, e))
}

fn path(input: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(input)
        .map(str::trim)
        .map_err(|_| Error::invalid_input("the input is a path, as UTF-8 text"))
}

impl Plugin for PathEscape {
    fn activate(_config: Config) -> Result<Self, Error> {
        Ok(Self)
    }

    fn handle_hook(&mut self, _: &str, _: &HookContext, _: HookData) -> Result<HookAction, Error> {
        let escape = READ_ESCAPES[0];
        match fs::read(escape) {
            Ok(bytes) => Err(Error::new(
                "escaped",
                format!("read {} bytes from {escape}", bytes.len()),
            )),
            Err(error) => Err(io(escape, error)),
        }
    }

    fn call(&mut self, function: &str, input: &[u8]) -> Result<Vec<u8>, Error> {
        match function {
            "read" => {
                let path = path(input)?;
                fs::read(path).map_err(|e| io(path, e))
            }
            "write" => {
                let path = path(input)?;
                fs::write(path, b"tenon").map_err(|e| io(path, e))?;
                Ok(Vec::new())
            }
            "list" => {
                let path = path(input)?;
                let mut names = Vec::new();
                for entry in fs::read_dir(path).map_err(|e| io(path, e))? {
                    let entry = entry.map_err(|e| io(path, e))?;
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                json::encode(&names)
            }
            "escape" => {
                let mut outcomes = BTreeMap::new();
                for path in READ_ESCAPES {
                    let outcome = match fs::read(path) {
                        Ok(bytes) => format!("ALLOWED read {} bytes", bytes.len()),
                        Err(error) => format!("denied: {error}"),
                    };
                    outcomes.insert(format!("read {path}"), outcome);
                }
                for path in WRITE_ESCAPES {
                    let outcome = match fs::write(path, b"tenon") {
                        Ok(()) => "ALLOWED write".to_owned(),
                        Err(error) => format!("denied: {error}"),
                    };
                    outcomes.insert(format!("write {path}"), outcome);
                }
                json::encode(&outcomes)
            }
            "plant" => {
                plant(match path(input)? {
                    "" => PLANT_TARGET,
                    target => target,
                })?;
                Ok(b"planted".to_vec())
            }
            "ping" => Ok(b"pong".to_vec()),
            other => Err(Error::unknown_function(other)),
        }
    }
}

tenon_pdk::export!(PathEscape);
