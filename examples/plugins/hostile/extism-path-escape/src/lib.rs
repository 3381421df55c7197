//! Hostile Extism test plugin: tries to leave its preopened directories
//! (`/data`, read-write, `/data/sub` nested in it, and `/assets`,
//! read-only). It speaks WASI preview 1
//! directly, so every attempt reaches the host's WASI implementation (no
//! guest library refuses on its behalf): the preopens must confine it.
//!
//! A path is opened relative to the preopen with the longest name it starts
//! with (`data/x`, `/data/x` → `x` in `/data`; `/data/sub/x` → `x` in
//! `/data/sub` while that is preopened); any other path is sent as it is
//! relative to the first preopen (`../../etc/passwd`, `/etc/passwd`).
//!
//! - `handle_hook` (any hook): reads `../../etc/passwd`; fails with code
//!   `io` (or `escaped` if the read worked);
//! - `read`, `write`, `list` (input: a path): one operation;
//! - `escape`: tries [`READ_ESCAPES`] and [`WRITE_ESCAPES`], answers
//!   `{"read <path>" | "write <path>": "denied: …" | "ALLOWED …"}`;
//! - `plant` (input: a link target, default [`PLANT_TARGET`]): the
//!   nested-grant escape, first half: removes `sub` through the `/data`
//!   preopen and puts a symlink there; answers `planted`. A host that
//!   reopens `data/sub` by its host path for a later instance follows the
//!   link, and `read /data/sub/secret.key` reads outside;
//! - `ping`: `pong`.

use std::collections::BTreeMap;

use extism_pdk::Error;

/// Where `plant` points `data/sub` by default: from `<data dir>/data`, five
/// levels up (the engine's registry directory).
pub const PLANT_TARGET: &str = "../../../../..";

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

mod raw {
    //! The few WASI calls the plugin makes, with the `unsafe` kept here.
    #![allow(unsafe_code)]

    use wasi::{Errno, Fd};

    /// The preopened directories: descriptor and guest name.
    pub(crate) fn preopens() -> Vec<(Fd, String)> {
        let mut out = Vec::new();
        for fd in 3..64 {
            // SAFETY: plain WASI calls on descriptors; the name buffer is as
            // long as the host says the name is.
            let Ok(prestat) = (unsafe { wasi::fd_prestat_get(fd) }) else {
                break;
            };
            let len = unsafe { prestat.u.dir.pr_name_len };
            let mut name = vec![0u8; len];
            if unsafe { wasi::fd_prestat_dir_name(fd, name.as_mut_ptr(), len) }.is_ok() {
                out.push((fd, String::from_utf8_lossy(&name).into_owned()));
            }
        }
        out
    }

    pub(crate) fn open(dir: Fd, path: &str, write: bool, directory: bool) -> Result<Fd, Errno> {
        let (oflags, rights) = match (write, directory) {
            (_, true) => (wasi::OFLAGS_DIRECTORY, wasi::RIGHTS_FD_READDIR),
            (true, false) => (
                wasi::OFLAGS_CREAT | wasi::OFLAGS_TRUNC,
                wasi::RIGHTS_FD_WRITE,
            ),
            (false, false) => (0, wasi::RIGHTS_FD_READ),
        };
        // SAFETY: `path` is a valid string for the duration of the call.
        unsafe {
            wasi::path_open(
                dir,
                wasi::LOOKUPFLAGS_SYMLINK_FOLLOW,
                path,
                oflags,
                rights,
                0,
                0,
            )
        }
    }

    pub(crate) fn read_all(fd: Fd) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let iov = wasi::Iovec {
                buf: buf.as_mut_ptr(),
                buf_len: buf.len(),
            };
            // SAFETY: the iovec points into `buf`, which outlives the call.
            let n = unsafe { wasi::fd_read(fd, &[iov]) }?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    pub(crate) fn write_all(fd: Fd, mut data: &[u8]) -> Result<(), Errno> {
        while !data.is_empty() {
            let iov = wasi::Ciovec {
                buf: data.as_ptr(),
                buf_len: data.len(),
            };
            // SAFETY: the iovec points into `data`, which outlives the call.
            let n = unsafe { wasi::fd_write(fd, &[iov]) }?;
            data = &data[n..];
        }
        Ok(())
    }

    pub(crate) fn list(fd: Fd) -> Result<Vec<String>, Errno> {
        let mut buf = vec![0u8; 64 * 1024];
        // SAFETY: the host writes at most `buf.len()` bytes into `buf`.
        let used = unsafe { wasi::fd_readdir(fd, buf.as_mut_ptr(), buf.len(), 0) }?;
        let mut names = Vec::new();
        let mut at = 0;
        // A dirent is 24 bytes (next u64, inode u64, name length u32, type
        // u8, padding) followed by the name.
        while at + 24 <= used {
            let len = u32::from_le_bytes([buf[at + 16], buf[at + 17], buf[at + 18], buf[at + 19]])
                as usize;
            let start = at + 24;
            let end = (start + len).min(used);
            names.push(String::from_utf8_lossy(&buf[start..end]).into_owned());
            at = start + len;
        }
        Ok(names)
    }

    pub(crate) fn remove_dir(dir: Fd, path: &str) -> Result<(), Errno> {
        // SAFETY: `path` is a valid string for the duration of the call.
        unsafe { wasi::path_remove_directory(dir, path) }
    }

    pub(crate) fn remove_file(dir: Fd, path: &str) -> Result<(), Errno> {
        // SAFETY: `path` is a valid string for the duration of the call.
        unsafe { wasi::path_unlink_file(dir, path) }
    }

    pub(crate) fn symlink(target: &str, dir: Fd, path: &str) -> Result<(), Errno> {
        // SAFETY: both strings are valid for the duration of the call.
        unsafe { wasi::path_symlink(target, dir, path) }
    }

    pub(crate) fn close(fd: Fd) {
        // SAFETY: closing a descriptor this plugin opened.
        let _ = unsafe { wasi::fd_close(fd) };
    }
}

/// The preopen a path is relative to (the longest name it starts with),
/// and the rest of the path.
fn locate(path: &str) -> Result<(wasi::Fd, String), String> {
    let preopens = raw::preopens();
    let trimmed = path.trim_start_matches('/');
    let mut best: Option<(usize, wasi::Fd, String)> = None;
    for (fd, name) in &preopens {
        let name = name.trim_start_matches('/');
        if let Some(rest) = trimmed.strip_prefix(name)
            && (rest.is_empty() || rest.starts_with('/'))
            && best.as_ref().is_none_or(|(len, _, _)| name.len() > *len)
        {
            let rest = rest.trim_start_matches('/');
            let rest = if rest.is_empty() { "." } else { rest };
            best = Some((name.len(), *fd, rest.to_owned()));
        }
    }
    if let Some((_, fd, rest)) = best {
        return Ok((fd, rest));
    }
    match preopens.first() {
        Some((fd, _)) => Ok((*fd, path.to_owned())),
        None => Err("no directory is preopened".to_owned()),
    }
}

fn read_file(path: &str) -> Result<Vec<u8>, String> {
    let (dir, rest) = locate(path)?;
    let fd = raw::open(dir, &rest, false, false).map_err(|e| e.to_string())?;
    let result = raw::read_all(fd).map_err(|e| e.to_string());
    raw::close(fd);
    result
}

fn write_file(path: &str) -> Result<(), String> {
    let (dir, rest) = locate(path)?;
    let fd = raw::open(dir, &rest, true, false).map_err(|e| e.to_string())?;
    let result = raw::write_all(fd, b"tenon").map_err(|e| e.to_string());
    raw::close(fd);
    result
}

fn list_dir(path: &str) -> Result<Vec<String>, String> {
    let (dir, rest) = locate(path)?;
    let fd = raw::open(dir, &rest, false, true).map_err(|e| e.to_string())?;
    let result = raw::list(fd).map_err(|e| e.to_string());
    raw::close(fd);
    let mut names: Vec<String> = result?
        .into_iter()
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    Ok(names)
}

fn io(path: &str, error: String) -> Error {
    extism_tenon::error("io", format!("{path}: {error}"))
}

fn path(input: &[u8]) -> Result<String, Error> {
    Ok(std::str::from_utf8(input)?.trim().to_owned())
}

fn handle_hook(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let escape = READ_ESCAPES[0];
    match read_file(escape) {
        Ok(bytes) => Err(extism_tenon::error(
            "escaped",
            format!("read {} bytes from {escape}", bytes.len()),
        )),
        Err(error) => Err(io(escape, error)),
    }
}

fn read(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let path = path(&input)?;
    read_file(&path).map_err(|e| io(&path, e))
}

fn write(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let path = path(&input)?;
    write_file(&path).map_err(|e| io(&path, e))?;
    Ok(Vec::new())
}

fn list(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let path = path(&input)?;
    let names = list_dir(&path).map_err(|e| io(&path, e))?;
    Ok(serde_json::to_vec(&names)?)
}

fn escape(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let mut outcomes = BTreeMap::new();
    for path in READ_ESCAPES {
        let outcome = match read_file(path) {
            Ok(bytes) => format!("ALLOWED read {} bytes", bytes.len()),
            Err(error) => format!("denied: {error}"),
        };
        outcomes.insert(format!("read {path}"), outcome);
    }
    for path in WRITE_ESCAPES {
        let outcome = match write_file(path) {
            Ok(()) => "ALLOWED write".to_owned(),
            Err(error) => format!("denied: {error}"),
        };
        outcomes.insert(format!("write {path}"), outcome);
    }
    Ok(serde_json::to_vec(&outcomes)?)
}

fn plant(input: Vec<u8>) -> Result<Vec<u8>, Error> {
    let target = match path(&input)?.as_str() {
        "" => PLANT_TARGET.to_owned(),
        target => target.to_owned(),
    };
    let data = raw::preopens()
        .into_iter()
        .find(|(_, name)| name.trim_start_matches('/') == "data")
        .map(|(fd, _)| fd)
        .ok_or_else(|| io("/data", "not preopened".to_owned()))?;
    match raw::remove_dir(data, "sub") {
        Ok(()) | Err(wasi::ERRNO_NOENT) => {}
        // Planted before: replace the link.
        Err(_) => raw::remove_file(data, "sub").map_err(|e| io("/data/sub", e.to_string()))?,
    }
    raw::symlink(&target, data, "sub").map_err(|e| io("/data/sub", e.to_string()))?;
    Ok(b"planted".to_vec())
}

fn ping(_input: Vec<u8>) -> Result<Vec<u8>, Error> {
    Ok(b"pong".to_vec())
}

extism_tenon::export!("handle_hook" => handle_hook);
extism_tenon::export!("read" => read);
extism_tenon::export!("write" => write);
extism_tenon::export!("list" => list);
extism_tenon::export!("escape" => escape);
extism_tenon::export!("plant" => plant);
extism_tenon::export!("ping" => ping);
