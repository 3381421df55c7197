//! Helpers shared by the integration tests: plugin directories to pack, and
//! archives built header by header so that each attack is exact.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};
use tenon_marketplace::Sha256Digest;

/// The bytes of the test module (a wasm header and some payload).
pub const MODULE: &[u8] = b"\0asm\x01\0\0\0 not really code, but bytes to carry";

/// A TOML manifest for `acme/hello` 1.0.0 naming `module`, optionally pinned.
pub fn manifest(module: &str, pin: Option<&str>) -> String {
    manifest_for("acme/hello", "1.0.0", module, pin)
}

/// A TOML manifest for `id` at `version`.
pub fn manifest_for(id: &str, version: &str, module: &str, pin: Option<&str>) -> String {
    let pin = pin
        .map(|p| format!("sha256 = \"{p}\"\n"))
        .unwrap_or_default();
    format!(
        "manifest_version = 1\n\n[plugin]\nid = \"{id}\"\nname = \"Hello\"\nversion = \"{version}\"\ndescription = \"Says hello.\"\nlicense = \"MIT\"\n\n[engine]\ntenon = \"^1\"\n\n[runtime]\nkind = \"component\"\nmodule = \"{module}\"\n{pin}"
    )
}

/// Writes `content` at `rel` under `root`, creating parents.
pub fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A plugin directory with everything a package carries and the usual noise
/// it must leave out.
pub fn plugin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fill_plugin_dir(dir.path());
    dir
}

/// Fills `root` like [`plugin_dir`].
pub fn fill_plugin_dir(root: &Path) {
    let pin = Sha256Digest::of(MODULE).to_hex();
    write(
        root,
        "tenon.toml",
        manifest("target/wasm32-wasip2/release/hello.wasm", Some(&pin)),
    );
    write(root, "target/wasm32-wasip2/release/hello.wasm", MODULE);
    write(root, "README.md", "# Hello\n");
    write(root, "CHANGELOG.md", "## 1.0.0\n- first\n");
    write(root, "LICENSE-MIT", "MIT License\n");
    write(root, "assets/icon.png", [0x89, b'P', b'N', b'G', 1, 2, 3]);
    write(root, "assets/i18n/en.json", "{\"hello\": \"Hello\"}");
    // Noise that must stay out.
    write(root, "src/lib.rs", "fn main() {}");
    write(root, "Cargo.toml", "[package]");
    write(root, "target/debug/junk", "junk");
    write(root, "target/wasm32-wasip2/release/other.wasm", "other");
    write(root, ".git/HEAD", "ref: refs/heads/main");
    write(root, "assets/.DS_Store", "mac");
    write(root, "assets/.cache/x", "cache");
    write(root, "notes.txt", "notes");
}

/// One entry of a hand-built archive.
#[derive(Clone)]
pub struct Entry {
    pub header: Header,
    pub data: Vec<u8>,
}

/// A header with `path` written byte for byte into the name field (no
/// checks, no normalization), of type `kind` and declared `size`.
pub fn header(path: &[u8], kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_ustar();
    {
        let old = header.as_old_mut();
        old.name = [0; 100];
        old.name[..path.len()].copy_from_slice(path);
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// A regular file entry.
pub fn file(path: &str, data: impl AsRef<[u8]>) -> Entry {
    let data = data.as_ref().to_vec();
    Entry {
        header: header(path.as_bytes(), EntryType::Regular, data.len() as u64),
        data,
    }
}

/// A raw-path regular file entry.
pub fn raw_file(path: &[u8], data: impl AsRef<[u8]>) -> Entry {
    let data = data.as_ref().to_vec();
    Entry {
        header: header(path, EntryType::Regular, data.len() as u64),
        data,
    }
}

/// An entry of `kind` without data, pointing at `link` when a link.
pub fn special(path: &str, kind: EntryType, link: &str) -> Entry {
    let mut header = header(path.as_bytes(), kind, 0);
    header.set_link_name_literal(link).unwrap();
    header.set_cksum();
    Entry {
        header,
        data: Vec::new(),
    }
}

/// A valid manifest and module: the minimum a package needs.
pub fn minimal() -> Vec<Entry> {
    vec![
        file("tenon.toml", manifest("plugin.wasm", None)),
        file("plugin.wasm", MODULE),
    ]
}

/// The uncompressed tar stream of `entries`, with the end-of-archive marker.
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = tar_without_end(entries);
    out.extend_from_slice(&[0; 1024]);
    out
}

/// The tar stream without the end-of-archive marker.
pub fn tar_without_end(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(entry.header.as_bytes());
        out.extend_from_slice(&entry.data);
        let pad = (512 - entry.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out
}

/// Gzip.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A gzip'd archive of `entries`.
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    gzip(&tar(entries))
}

/// Every file under `root` (relative, `/`-separated), sorted, with content.
pub fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, fs::read(&path).unwrap()));
        }
    }
}

/// The names directly under `dir`.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}
