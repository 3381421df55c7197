//! Packing: what goes in, what stays out, determinism, and the round trip
//! pack → sign → verify → unpack.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;

use common::*;
use pretty_assertions::assert_eq;
use tenon_marketplace::{
    FileKind, Origin, PACKAGE_MTIME, PackOptions, PackageError, SignatureFile, SigningKey, Trust,
    TrustPolicy, UnpackLimits, inspect, pack, unpack, unpack_to_memory, verify,
};

const PACKED: [&str; 7] = [
    "tenon.toml",
    "CHANGELOG.md",
    "LICENSE-MIT",
    "README.md",
    "assets/i18n/en.json",
    "assets/icon.png",
    "target/wasm32-wasip2/release/hello.wasm",
];

fn pack_default(dir: &Path) -> Result<tenon_marketplace::PackedPackage, PackageError> {
    pack(dir, &PackOptions::default())
}

#[test]
fn packs_the_layout_and_nothing_else() {
    let dir = plugin_dir();
    let packed = pack_default(dir.path()).unwrap();
    let paths: Vec<&str> = packed.info.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, PACKED);
    let kinds: Vec<FileKind> = packed.info.files.iter().map(|f| f.kind).collect();
    use FileKind::*;
    assert_eq!(
        kinds,
        [Manifest, Changelog, License, Readme, Asset, Asset, Module]
    );
    assert_eq!(packed.file_name(), "acme.hello-1.0.0.tenon");
    assert_eq!(
        packed.sha256(),
        tenon_marketplace::Sha256Digest::of(&packed.bytes)
    );
    // What pack reports is what inspect finds.
    assert_eq!(inspect(&packed.bytes).unwrap(), packed.info);
    let module = packed.info.module().unwrap();
    assert_eq!(module.size, MODULE.len() as u64);
    assert_eq!(module.sha256, tenon_marketplace::Sha256Digest::of(MODULE));
}

#[test]
fn the_archive_is_canonical_ustar() {
    let dir = plugin_dir();
    let packed = pack_default(dir.path()).unwrap();
    let gz = flate2::read::GzDecoder::new(packed.bytes.as_slice());
    assert_eq!(gz.header().unwrap().mtime(), 0);
    assert_eq!(gz.header().unwrap().filename(), None);
    let mut archive = tar::Archive::new(gz);
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap().raw(true) {
        let entry = entry.unwrap();
        let header = entry.header();
        assert!(header.as_ustar().is_some(), "ustar header");
        assert_eq!(header.entry_type(), tar::EntryType::Regular);
        assert_eq!(header.mtime().unwrap(), PACKAGE_MTIME);
        assert_eq!((header.uid().unwrap(), header.gid().unwrap()), (0, 0));
        assert_eq!(header.mode().unwrap(), 0o644);
        assert_eq!(header.username().unwrap(), Some(""));
        seen.push(String::from_utf8(entry.path_bytes().into_owned()).unwrap());
    }
    assert_eq!(seen, PACKED);
}

#[test]
fn packing_is_deterministic() {
    let first = plugin_dir();
    let a = pack_default(first.path()).unwrap();
    let b = pack_default(first.path()).unwrap();
    assert_eq!(a.bytes, b.bytes);

    // Another directory, files written in another order, other times and
    // permissions, extra noise: the same bytes.
    let second = tempfile::tempdir().unwrap();
    let root = second.path().join("elsewhere");
    fs::create_dir(&root).unwrap();
    for (rel, content) in tree(first.path()).into_iter().rev() {
        write(&root, &rel, content);
    }
    write(&root, "target/release/more-noise", "x");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for rel in PACKED {
        let file = fs::File::options()
            .write(true)
            .open(root.join(rel))
            .unwrap();
        file.set_modified(old).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root.join(rel), fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    let c = pack_default(&root).unwrap();
    assert_eq!(a.bytes, c.bytes);
    assert_eq!(a.sha256(), c.sha256());
}

#[test]
fn a_content_change_changes_the_identity() {
    let dir = plugin_dir();
    let before = pack_default(dir.path()).unwrap();
    write(dir.path(), "assets/icon.png", "new icon");
    let after = pack_default(dir.path()).unwrap();
    assert_ne!(before.sha256(), after.sha256());
}

#[test]
fn round_trip_pack_sign_verify_unpack() {
    let dir = plugin_dir();
    let packed = pack_default(dir.path()).unwrap();

    let author = SigningKey::generate();
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(tenon_marketplace::Role::Author, &author);
    // The signature file travels as JSON beside the archive.
    let out = tempfile::tempdir().unwrap();
    let archive_path = out.path().join(packed.file_name());
    fs::write(&archive_path, &packed.bytes).unwrap();
    let sig_path = SignatureFile::path_for(&archive_path);
    assert_eq!(sig_path.file_name().unwrap(), "acme.hello-1.0.0.tenon.sig");
    fs::write(&sig_path, signatures.to_json()).unwrap();

    let bytes = fs::read(&archive_path).unwrap();
    let signatures = SignatureFile::from_json(&fs::read(&sig_path).unwrap()).unwrap();
    let policy = TrustPolicy::default().with_publisher_key("acme", author.public_key());
    let verified = verify(&bytes, Some(&signatures), &policy, Origin::Remote).unwrap();
    assert_eq!(verified.verification().trust, Trust::Trusted);
    assert_eq!(verified.verification().author_key, Some(author.key_id()));

    let dest = tempfile::tempdir().unwrap();
    let unpacked = verified
        .unpack(dest.path(), &UnpackLimits::default())
        .unwrap();
    assert_eq!(
        unpacked.root,
        dest.path().join("acme").join("hello").join("1.0.0")
    );
    assert_eq!(unpacked.info, packed.info);
    let expected: Vec<(String, Vec<u8>)> = tree(dir.path())
        .into_iter()
        .filter(|(rel, _)| PACKED.contains(&rel.as_str()))
        .collect();
    assert_eq!(tree(&unpacked.root), expected);
    // Only the package directory is left under dest: no temporary directory.
    assert_eq!(listing(dest.path()), ["acme"]);

    let contents = verified.unpack_to_memory(&UnpackLimits::default()).unwrap();
    assert_eq!(contents.module(), Some(MODULE));
    assert_eq!(
        contents.manifest_source(),
        fs::read(dir.path().join("tenon.toml")).unwrap()
    );
    let in_memory: Vec<(String, Vec<u8>)> = contents.files.clone().into_iter().collect();
    assert_eq!(in_memory, expected);
}

#[test]
fn unpack_never_overwrites() {
    let packed = pack_default(plugin_dir().path()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    unpack(&packed.bytes, dest.path(), &UnpackLimits::default()).unwrap();
    let error = unpack(&packed.bytes, dest.path(), &UnpackLimits::default()).unwrap_err();
    assert_eq!(error.code(), "destination-exists");
    assert!(
        error.to_string().contains("1.0.0` already exists"),
        "{error}"
    );
    assert_eq!(listing(dest.path()), ["acme"]);
    // Another version goes beside it.
    let dir = plugin_dir();
    write(
        dir.path(),
        "tenon.toml",
        manifest_for(
            "acme/hello",
            "1.1.0",
            "target/wasm32-wasip2/release/hello.wasm",
            None,
        ),
    );
    let next = pack_default(dir.path()).unwrap();
    unpack(&next.bytes, dest.path(), &UnpackLimits::default()).unwrap();
    assert_eq!(listing(&dest.path().join("acme/hello")), ["1.0.0", "1.1.0"]);
}

#[test]
fn manifests_in_every_format() {
    for (name, source) in [
        (
            "tenon.json",
            r#"{"manifest_version": 1, "plugin": {"id": "acme/json", "name": "J", "version": "0.1.0", "description": "d", "license": "MIT"}, "engine": {"tenon": "^1"}, "runtime": {"kind": "extism", "module": "p.wasm"}}"#,
        ),
        (
            "tenon.yaml",
            "manifest_version: 1\nplugin:\n  id: acme/yaml\n  name: Y\n  version: 0.2.0\n  description: d\n  license: MIT\nengine:\n  tenon: \"^1\"\nruntime:\n  kind: extism\n  module: p.wasm\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), name, source);
        write(dir.path(), "p.wasm", MODULE);
        let packed = pack_default(dir.path()).unwrap();
        assert_eq!(packed.info.manifest_path, name);
        let info = inspect(&packed.bytes).unwrap();
        assert_eq!(info.files[0].path, name);
        assert_eq!(info.module().unwrap().path, "p.wasm");
    }
}

#[test]
fn a_process_plugin_carries_its_command_executable() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tenon.toml",
        "manifest_version = 1\n[plugin]\nid = \"acme/proc\"\nname = \"P\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n[engine]\ntenon = \"^1\"\n[runtime]\nkind = \"process\"\ncommand = \"bin/run\"\n",
    );
    write(dir.path(), "bin/run", "#!/bin/sh\n");
    let packed = pack_default(dir.path()).unwrap();
    assert_eq!(packed.info.file("bin/run").unwrap().kind, FileKind::Command);
    let dest = tempfile::tempdir().unwrap();
    let unpacked = unpack(&packed.bytes, dest.path(), &UnpackLimits::default()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(unpacked.root.join("bin/run"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        let mode = fs::metadata(unpacked.root.join("tenon.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0);
    }
    // In the archive too.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(packed.bytes.as_slice()));
    let modes: Vec<u32> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().header().mode().unwrap())
        .collect();
    assert_eq!(modes, [0o644, 0o755]);
}

/// Packs `dir` and expects `code`, with `mention` in the message.
fn refused(dir: &Path, options: &PackOptions, code: &str, mention: &str) {
    let error = pack(dir, options).expect_err(mention);
    assert_eq!(error.code(), code, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(mention),
        "{message:?} does not mention {mention:?}"
    );
}

#[test]
fn pack_refusals() {
    let defaults = PackOptions::default();
    type Setup = fn(&Path);
    let cases: Vec<(&str, Setup, &str, &str)> = vec![
        (
            "no manifest",
            |d| fs::remove_file(d.join("tenon.toml")).unwrap(),
            "missing-manifest",
            "no manifest in `",
        ),
        (
            "two manifests",
            |d| write(d, "tenon.json", "{}"),
            "several-manifests",
            "several manifests (tenon.toml, tenon.json)",
        ),
        (
            "invalid manifest",
            |d| write(d, "tenon.toml", "manifest_version = 1\n"),
            "invalid-manifest",
            "`tenon.toml` is not a valid manifest:",
        ),
        (
            "missing module",
            |d| fs::remove_file(d.join("target/wasm32-wasip2/release/hello.wasm")).unwrap(),
            "missing-file",
            "names `target/wasm32-wasip2/release/hello.wasm` as its module",
        ),
        (
            "module is a directory",
            |d| {
                fs::remove_file(d.join("target/wasm32-wasip2/release/hello.wasm")).unwrap();
                fs::create_dir(d.join("target/wasm32-wasip2/release/hello.wasm")).unwrap();
            },
            "missing-file",
            "as its module",
        ),
        (
            "pin mismatch",
            |d| write(d, "target/wasm32-wasip2/release/hello.wasm", "rebuilt"),
            "sha256-mismatch",
            "but the manifest pins",
        ),
        (
            "unsafe asset name",
            |d| write(d, "assets/a:b.png", "x"),
            "unsafe-path",
            "`assets/a:b.png` has an unsafe path",
        ),
        (
            "case duplicate assets",
            |d| write(d, "assets/ICON.png", "x"),
            "duplicate-entry",
            "differ only in case",
        ),
    ];
    for (name, setup, code, mention) in cases {
        let dir = plugin_dir();
        setup(dir.path());
        let error = pack(dir.path(), &defaults).expect_err(name);
        assert_eq!(error.code(), code, "{name}: {error}");
        assert!(
            error.to_string().contains(mention),
            "{name}: {error} lacks {mention:?}"
        );
    }
    let dir = plugin_dir();
    refused(
        &dir.path().join("README.md"),
        &defaults,
        "not-a-directory",
        "is not a directory",
    );
    refused(&dir.path().join("nowhere"), &defaults, "io", "cannot read");
}

#[cfg(unix)]
#[test]
fn pack_refuses_links_and_special_files() {
    use std::os::unix::fs::symlink;
    let defaults = PackOptions::default();

    let dir = plugin_dir();
    symlink("/etc/passwd", dir.path().join("assets/passwd")).unwrap();
    refused(
        dir.path(),
        &defaults,
        "link",
        "entry `assets/passwd` is a symbolic link (to `/etc/passwd`)",
    );

    let dir = plugin_dir();
    fs::remove_file(dir.path().join("LICENSE-MIT")).unwrap();
    symlink("../LICENSE", dir.path().join("LICENSE-MIT")).unwrap();
    refused(
        dir.path(),
        &defaults,
        "link",
        "entry `LICENSE-MIT` is a symbolic link",
    );

    // The module reached through a symlinked directory that leads outside.
    let dir = plugin_dir();
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "wasm32-wasip2/release/hello.wasm", MODULE);
    fs::remove_dir_all(dir.path().join("target")).unwrap();
    symlink(outside.path(), dir.path().join("target")).unwrap();
    refused(
        dir.path(),
        &defaults,
        "link",
        "entry `target` is a symbolic link",
    );

    let dir = plugin_dir();
    let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("assets/sock")).unwrap();
    refused(
        dir.path(),
        &defaults,
        "special-file",
        "entry `assets/sock` is a socket",
    );

    // The plugin directory itself may be reached through a link.
    let dir = plugin_dir();
    let links = tempfile::tempdir().unwrap();
    symlink(dir.path(), links.path().join("plugin")).unwrap();
    pack(&links.path().join("plugin"), &defaults).unwrap();
}

#[test]
fn pack_applies_the_limits() {
    let dir = plugin_dir();
    let limit = |f: fn(&mut UnpackLimits)| {
        let mut options = PackOptions::default();
        f(&mut options.limits);
        options
    };
    refused(
        dir.path(),
        &limit(|l| l.max_entries = 3),
        "too-many-entries",
        "more than 3 entries",
    );
    write(dir.path(), "assets/big.bin", [7u8; 1001]);
    refused(
        dir.path(),
        &limit(|l| l.max_entry_bytes = 1000),
        "entry-too-large",
        "entry `assets/big.bin` is 1001 bytes, more than the limit of 1000",
    );
    refused(
        dir.path(),
        &limit(|l| l.max_total_bytes = 100),
        "total-too-large",
        "exceeds 100 bytes",
    );
    refused(
        dir.path(),
        &limit(|l| l.max_manifest_bytes = 10),
        "entry-too-large",
        "entry `tenon.toml`",
    );
    refused(
        dir.path(),
        &limit(|l| l.max_archive_bytes = 10),
        "archive-too-large",
        "more than the limit of 10",
    );
}

#[test]
fn a_module_under_assets_is_packed_once() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tenon.toml",
        manifest("assets/plugin.wasm", None),
    );
    write(dir.path(), "assets/plugin.wasm", MODULE);
    write(dir.path(), "assets/other.txt", "x");
    let packed = pack_default(dir.path()).unwrap();
    let files: Vec<(&str, FileKind)> = packed
        .info
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.kind))
        .collect();
    assert_eq!(
        files,
        [
            ("tenon.toml", FileKind::Manifest),
            ("assets/other.txt", FileKind::Asset),
            ("assets/plugin.wasm", FileKind::Module)
        ]
    );
    unpack_to_memory(&packed.bytes, &UnpackLimits::default()).unwrap();
}

#[test]
fn manifest_warnings_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tenon.toml",
        "manifest_version = 1\n[plugin]\nid = \"acme/bare\"\nname = \"B\"\nversion = \"1.0.0\"\n[runtime]\nkind = \"component\"\nmodule = \"p.wasm\"\n",
    );
    write(dir.path(), "p.wasm", MODULE);
    let packed = pack_default(dir.path()).unwrap();
    assert!(!packed.info.warnings.is_empty());
    let codes: Vec<&str> = packed
        .info
        .warnings
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert!(codes.contains(&"missing-license"), "{codes:?}");
}

#[test]
fn a_large_module_streams_through() {
    // 8 MiB of incompressible-ish bytes: unpacked to disk and memory intact.
    let dir = tempfile::tempdir().unwrap();
    let mut module = Vec::with_capacity(8 << 20);
    let mut x: u32 = 0x1234_5678;
    while module.len() < 8 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        module.extend_from_slice(&x.to_le_bytes());
    }
    write(dir.path(), "tenon.toml", manifest("plugin.wasm", None));
    write(dir.path(), "plugin.wasm", &module);
    let packed = pack_default(dir.path()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let unpacked = unpack(&packed.bytes, dest.path(), &UnpackLimits::default()).unwrap();
    let mut on_disk = Vec::new();
    fs::File::open(unpacked.root.join("plugin.wasm"))
        .unwrap()
        .read_to_end(&mut on_disk)
        .unwrap();
    assert!(on_disk == module);
}

#[test]
fn long_paths_use_the_ustar_prefix() {
    let dir = plugin_dir();
    let long = format!(
        "assets/{}/{}/{}.txt",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(60)
    );
    write(dir.path(), &long, "deep");
    let packed = pack_default(dir.path()).unwrap();
    let contents = unpack_to_memory(&packed.bytes, &UnpackLimits::default()).unwrap();
    assert_eq!(contents.get(&long), Some(&b"deep"[..]));

    // Too long for a ustar header: refused with the rule, not truncated.
    let dir = plugin_dir();
    // 249 bytes, but no split leaves a name of at most 100 bytes and a
    // prefix of at most 155.
    let too_long = format!(
        "assets/{}/{}/{}",
        "a".repeat(80),
        "b".repeat(80),
        "c".repeat(80)
    );
    write(dir.path(), &too_long, "x");
    let error = pack_default(dir.path()).unwrap_err();
    assert_eq!(error.code(), "unsafe-path");
    assert!(
        error.to_string().contains("too long for a ustar header"),
        "{error}"
    );
}

#[test]
fn every_error_code_is_documented() {
    let source = include_str!("../src/error.rs");
    let start = source.find("pub fn code(&self)").unwrap();
    let end = start + source[start..].find("pub fn entry(&self)").unwrap();
    let source = &source[start..end];
    let docs = include_str!("../../../docs/package-format.md");
    let codes: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Self::"))
        .filter_map(|rest| rest.split_once("=> \""))
        .filter_map(|(_, code)| code.strip_suffix("\","))
        .collect();
    assert!(codes.len() > 30, "found {codes:?}");
    for code in codes {
        assert!(
            docs.contains(&format!("| `{code}` |")),
            "`{code}` is not in docs/package-format.md"
        );
    }
}
