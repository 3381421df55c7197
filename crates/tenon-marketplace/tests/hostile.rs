//! Hostile and broken archives, each built header by header: every reader
//! (inspect, unpack to memory, unpack to disk) refuses them with the same
//! error, naming the entry, and leaves nothing behind on disk.

mod common;

use common::*;
use tar::EntryType;
use tenon_marketplace::{
    PackageError, UnpackLimits, inspect, inspect_with, unpack, unpack_to_memory,
};

/// Reads `bytes` every way under `limits`; each must fail with `code`, and
/// the message must hold `mention` (the entry's name, or what went wrong).
fn check_with(name: &str, bytes: &[u8], limits: &UnpackLimits, code: &str, mention: &str) {
    let errors: Vec<(&str, PackageError)> = vec![
        ("inspect", inspect_with(bytes, limits).expect_err(name)),
        (
            "unpack_to_memory",
            unpack_to_memory(bytes, limits).expect_err(name),
        ),
        ("unpack", {
            let dest = tempfile::tempdir().unwrap();
            let error = unpack(bytes, dest.path(), limits).expect_err(name);
            assert_eq!(
                listing(dest.path()),
                Vec::<String>::new(),
                "{name}: unpack left something behind"
            );
            error
        }),
    ];
    for (how, error) in errors {
        assert_eq!(error.code(), code, "{name} ({how}): {error}");
        let message = error.to_string();
        assert!(
            message.contains(mention),
            "{name} ({how}): {message:?} does not mention {mention:?}"
        );
    }
}

fn check(name: &str, bytes: &[u8], code: &str, mention: &str) {
    check_with(name, bytes, &UnpackLimits::default(), code, mention);
}

/// The minimal package plus `extra`.
fn with(extra: Vec<Entry>) -> Vec<u8> {
    let mut entries = minimal();
    entries.extend(extra);
    archive(&entries)
}

#[test]
fn the_minimal_archive_is_accepted() {
    let info = inspect(&archive(&minimal())).unwrap();
    assert_eq!(info.id().as_str(), "acme/hello");
    assert_eq!(info.files.len(), 2);
}

#[test]
fn path_traversal_in_every_spelling() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"../evil",
            "`../evil` has an unsafe path: it has a `..` component (path traversal)",
        ),
        (b"assets/../../evil", "`assets/../../evil`"),
        (b"assets/..", "`assets/..`"),
        (
            b"/etc/passwd",
            "`/etc/passwd` has an unsafe path: it is absolute",
        ),
        (b"//server/share", "Windows drive or UNC prefix"),
        (
            b"C:/Windows/evil",
            "`C:/Windows/evil` has an unsafe path: it starts with a Windows drive",
        ),
        (b"C:\\evil", "Windows drive"),
        (b"\\\\server\\share\\evil", "Windows drive or UNC prefix"),
        (
            b"assets\\..\\..\\evil",
            "`assets\\\\..\\\\..\\\\evil` has an unsafe path: it contains `\\`",
        ),
        (b"./tenon.wasm", "a `.` component"),
        (b"assets//x", "an empty component"),
        (b"assets/\xff", "not valid UTF-8"),
        (b"assets/a\x01b", "`assets/a\\u{1}b`"),
        (b"assets/CON", "reserved device name"),
        (b"assets/x.", "ends with `.` or a space"),
    ];
    for (path, mention) in cases {
        let name = String::from_utf8_lossy(path);
        check(
            &name,
            &with(vec![raw_file(path, "x")]),
            "unsafe-path",
            mention,
        );
    }
}

#[test]
fn links_and_special_files() {
    let cases = [
        (
            EntryType::Symlink,
            "/etc/passwd",
            "link",
            "`assets/x` is a symbolic link (to `/etc/passwd`)",
        ),
        (EntryType::Symlink, "../../..", "link", "a symbolic link"),
        (
            EntryType::Link,
            "tenon.toml",
            "link",
            "`assets/x` is a hard link (to `tenon.toml`)",
        ),
        (
            EntryType::Char,
            "",
            "special-file",
            "`assets/x` is a character device",
        ),
        (
            EntryType::Block,
            "",
            "special-file",
            "`assets/x` is a block device",
        ),
        (
            EntryType::Fifo,
            "",
            "special-file",
            "`assets/x` is a named pipe",
        ),
        (EntryType::GNUSparse, "", "special-file", "a sparse file"),
        (EntryType::Continuous, "", "special-file", "tar type '7'"),
        (EntryType::new(b'Z'), "", "special-file", "tar type 'Z'"),
        (
            EntryType::XHeader,
            "",
            "extended-header",
            "pax extended header",
        ),
        (
            EntryType::XGlobalHeader,
            "",
            "extended-header",
            "pax global extended header",
        ),
        (
            EntryType::GNULongName,
            "",
            "extended-header",
            "GNU long-name",
        ),
        (
            EntryType::GNULongLink,
            "",
            "extended-header",
            "GNU long-link",
        ),
    ];
    for (kind, target, code, mention) in cases {
        let name = format!("{kind:?}");
        check(
            &name,
            &with(vec![special("assets/x", kind, target)]),
            code,
            mention,
        );
    }
}

#[test]
fn a_pax_header_cannot_smuggle_a_path() {
    // A pax record renaming the next entry to a traversal path: refused for
    // being an extended header before its content is ever applied.
    let record = b"30 path=../../../../etc/evil\n";
    let mut pax = header(b"PaxHeaders/x", EntryType::XHeader, record.len() as u64);
    pax.set_cksum();
    let entries = vec![
        Entry {
            header: pax,
            data: record.to_vec(),
        },
        file("assets/x", "x"),
    ];
    check("pax", &with(entries), "extended-header", "`PaxHeaders/x`");
}

#[test]
fn duplicates_and_conflicts() {
    check(
        "same path twice",
        &with(vec![file("assets/a.txt", "1"), file("assets/a.txt", "2")]),
        "duplicate-entry",
        "entry `assets/a.txt` duplicates `assets/a.txt`",
    );
    check(
        "same path in another case",
        &with(vec![file("assets/A.txt", "1"), file("assets/a.txt", "2")]),
        "duplicate-entry",
        "differ only in case",
    );
    check(
        "the manifest twice",
        &with(vec![file("tenon.toml", manifest("plugin.wasm", None))]),
        "duplicate-entry",
        "`tenon.toml`",
    );
    check(
        "a file under a file",
        &with(vec![file("assets/a", "1"), file("assets/a/b", "2")]),
        "path-conflict",
        "entry `assets/a/b` conflicts with `assets/a`",
    );
    check(
        "a directory over a file",
        &with(vec![
            file("assets/a", "1"),
            special("assets/a/", EntryType::Directory, ""),
        ]),
        "path-conflict",
        "`assets/a`",
    );
}

#[test]
fn entries_outside_the_layout() {
    for path in [
        "src/lib.rs",
        "Cargo.toml",
        "readme.md",
        "docs/README.md",
        "plugin.wasm.bak",
        ".hidden",
    ] {
        check(
            path,
            &with(vec![file(path, "x")]),
            "not-in-layout",
            &format!("entry `{path}` is not part of the package layout"),
        );
    }
    check(
        "a directory outside",
        &with(vec![special("src/", EntryType::Directory, "")]),
        "not-in-layout",
        "`src`",
    );
    // Directory entries inside the layout are fine.
    let ok = with(vec![
        special("assets/", EntryType::Directory, ""),
        special("assets/sub/", EntryType::Directory, ""),
        file("assets/sub/x", "x"),
    ]);
    inspect(&ok).unwrap();
    let mut dir = special("assets/", EntryType::Directory, "");
    dir.header.set_size(3);
    dir.header.set_cksum();
    dir.data = b"abc".to_vec();
    check(
        "a directory with content",
        &with(vec![dir]),
        "corrupt-tar",
        "a directory entry with 3 bytes of content",
    );
}

#[test]
fn size_and_count_limits() {
    let limits = UnpackLimits {
        max_entries: 3,
        ..UnpackLimits::default()
    };
    check_with(
        "too many entries",
        &with(vec![file("assets/a", "1"), file("assets/b", "2")]),
        &limits,
        "too-many-entries",
        "more than 3 entries",
    );
    let limits = UnpackLimits {
        max_entry_bytes: 1024,
        ..UnpackLimits::default()
    };
    check_with(
        "an entry too large",
        &with(vec![file("assets/big", vec![7u8; 1025])]),
        &limits,
        "entry-too-large",
        "entry `assets/big` is 1025 bytes, more than the limit of 1024",
    );
    let limits = UnpackLimits {
        max_manifest_bytes: 16,
        ..UnpackLimits::default()
    };
    check_with(
        "a manifest too large",
        &archive(&minimal()),
        &limits,
        "entry-too-large",
        "entry `tenon.toml`",
    );
    let bytes = archive(&minimal());
    let limits = UnpackLimits {
        max_archive_bytes: bytes.len() as u64 - 1,
        ..UnpackLimits::default()
    };
    check_with(
        "an archive too large",
        &bytes,
        &limits,
        "archive-too-large",
        "more than the limit",
    );
}

#[test]
fn a_header_lying_about_its_size_is_caught_by_the_counter() {
    // The header declares 1 GiB; the entry limit refuses it before a byte is
    // read.
    let mut liar = header(b"assets/liar", EntryType::Regular, 1 << 30);
    liar.set_cksum();
    let entries = vec![Entry {
        header: liar,
        data: Vec::new(),
    }];
    check(
        "liar",
        &gzip(&tar_without_end(&[minimal(), entries].concat())),
        "entry-too-large",
        "`assets/liar`",
    );
}

#[test]
fn gzip_bombs_stop_at_the_total_limit() {
    let limits = UnpackLimits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 2 << 20,
        ..UnpackLimits::default()
    };
    // Sixteen entries of 1 MiB of zeros: 16 MiB that compress to ~16 KiB.
    let zeros = vec![0u8; 1 << 20];
    let bombs: Vec<Entry> = (0..16)
        .map(|i| file(&format!("assets/bomb{i:02}"), &zeros))
        .collect();
    let bytes = with(bombs);
    assert!(
        bytes.len() < 100 << 10,
        "the bomb should be small: {}",
        bytes.len()
    );
    check_with(
        "many entries",
        &bytes,
        &limits,
        "total-too-large",
        "exceeds 2097152 bytes uncompressed (while reading entry `assets/bomb01`)",
    );

    // 16 MiB of zeros after the end-of-archive marker, inside the gzip
    // stream: only the counter on the decompressed stream sees them.
    let mut stream = tar(&minimal());
    stream.resize(stream.len() + (16 << 20), 0);
    let bytes = gzip(&stream);
    assert!(bytes.len() < 100 << 10);
    check_with(
        "zeros after the end",
        &bytes,
        &limits,
        "total-too-large",
        "exceeds 2097152 bytes uncompressed",
    );
    // The same padding within the limit is harmless zero padding.
    inspect(&bytes).unwrap();
}

#[test]
fn truncated_archives() {
    let bytes = archive(&[minimal(), vec![file("assets/data", vec![42u8; 20_000])]].concat());
    for cut in [
        1,
        2,
        5,
        10,
        20,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 4,
        bytes.len() - 1,
    ] {
        check(
            &format!("cut at {cut}"),
            &bytes[..cut],
            "truncated",
            "the archive is truncated",
        );
    }
    // A tar stream that stops inside an entry's data, in a complete gzip.
    // (tenon.toml's header and one block of data, then plugin.wasm's header
    // and 20 of its bytes.)
    let mut stream = tar_without_end(&minimal());
    stream.truncate(3 * 512 + 20);
    check(
        "short data",
        &gzip(&stream),
        "truncated",
        "(while reading entry `plugin.wasm`)",
    );
    // One that stops inside a header.
    let mut stream = tar_without_end(&minimal());
    stream.truncate(700);
    check("short header", &gzip(&stream), "truncated", "truncated");
    // One without its end-of-archive marker.
    check(
        "no end marker",
        &gzip(&tar_without_end(&minimal())),
        "truncated",
        "before the end of the tar stream",
    );
    // One with half a marker.
    let mut stream = tar_without_end(&minimal());
    stream.extend_from_slice(&[0; 512]);
    check(
        "half an end marker",
        &gzip(&stream),
        "truncated",
        "truncated",
    );
}

#[test]
fn corrupt_archives() {
    check(
        "empty",
        b"",
        "not-gzip",
        "this starts with nothing (the file is empty)",
    );
    check(
        "garbage",
        b"PK\x03\x04 a zip file",
        "not-gzip",
        "this starts with 50 4b 03 04",
    );
    check(
        "a plain tar",
        &tar(&minimal()),
        "not-gzip",
        "not a package archive",
    );
    check(
        "gzip magic then garbage",
        b"\x1f\x8bnot really gzip at all",
        "corrupt-gzip",
        "corrupt gzip stream at byte",
    );

    let good = archive(&minimal());
    // A wrong CRC in the trailer.
    let mut bad_crc = good.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    check("bad crc", &bad_crc, "corrupt-gzip", "corrupt gzip stream");
    // A tar header with a bad checksum.
    let mut stream = tar(&minimal());
    stream[0] ^= 0x01;
    check(
        "bad tar checksum",
        &gzip(&stream),
        "corrupt-tar",
        "corrupt tar stream at byte 512 of the uncompressed archive: archive header checksum mismatch",
    );
    // Anything after the gzip member.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    check(
        "junk after gzip",
        &trailing,
        "trailing-data",
        &format!("after the end of the gzip stream at byte {}", good.len()),
    );
    let mut two_members = good.clone();
    two_members.extend_from_slice(&gzip(b"more"));
    check(
        "a second gzip member",
        &two_members,
        "trailing-data",
        "gzip stream",
    );
    // Non-zero data after the end-of-archive marker.
    let mut stream = tar(&minimal());
    let end = stream.len();
    stream.extend_from_slice(b"hidden");
    check(
        "data after the end marker",
        &gzip(&stream),
        "trailing-data",
        &format!("end of the tar stream at byte {end}"),
    );
}

#[test]
fn every_single_byte_flip_is_refused_or_harmless() {
    // Flipping any byte of a compressed archive either fails with a clean
    // error or (in padding the format ignores) still yields the same files.
    let good = archive(&minimal());
    let expected = unpack_to_memory(&good, &UnpackLimits::default())
        .unwrap()
        .files;
    for i in 0..good.len() {
        let mut bytes = good.clone();
        bytes[i] ^= 0x55;
        if let Ok(contents) = unpack_to_memory(&bytes, &UnpackLimits::default()) {
            assert_eq!(contents.files, expected, "flip at {i}");
        }
    }
}

#[test]
fn manifest_problems() {
    check(
        "no manifest",
        &archive(&[file("plugin.wasm", MODULE)]),
        "missing-manifest",
        "no manifest in the archive",
    );
    check(
        "two manifests",
        &with(vec![file("tenon.json", "{}")]),
        "several-manifests",
        "the archive holds several manifests (tenon.toml, tenon.json)",
    );
    check(
        "an invalid manifest",
        &archive(&[
            file(
                "tenon.toml",
                "manifest_version = 1\n[plugin]\nid = \"Not An Id\"\n",
            ),
            file("plugin.wasm", MODULE),
        ]),
        "invalid-manifest",
        "`tenon.toml` is not a valid manifest:",
    );
    check(
        "a manifest that is not UTF-8",
        &archive(&[file("tenon.toml", b"\xff\xfe"), file("plugin.wasm", MODULE)]),
        "invalid-manifest",
        "not UTF-8",
    );
    check(
        "a missing module",
        &archive(&[
            file("tenon.toml", manifest("build/plugin.wasm", None)),
            file("plugin.wasm", MODULE),
        ]),
        "missing-file",
        "the manifest names `build/plugin.wasm` as its module, but the package has no such file",
    );
    let wrong_pin = "0".repeat(64);
    check(
        "a pin mismatch",
        &archive(&[
            file("tenon.toml", manifest("plugin.wasm", Some(&wrong_pin))),
            file("plugin.wasm", MODULE),
        ]),
        "sha256-mismatch",
        &format!(
            "`plugin.wasm` has sha256 {}, but the manifest pins {wrong_pin}",
            tenon_marketplace::Sha256Digest::of(MODULE)
        ),
    );
}

#[test]
fn a_failed_unpack_leaves_the_destination_as_it_was() {
    let dest = tempfile::tempdir().unwrap();
    write(dest.path(), "other/plugin/file", "kept");
    // The bad entry comes after good ones, so files were already written to
    // the temporary directory when it is refused.
    let bytes = with(vec![
        file("assets/ok", vec![1u8; 100_000]),
        raw_file(b"../evil", "x"),
    ]);
    let error = unpack(&bytes, dest.path(), &UnpackLimits::default()).unwrap_err();
    assert_eq!(error.code(), "unsafe-path");
    assert_eq!(
        tree(dest.path()),
        vec![("other/plugin/file".to_owned(), b"kept".to_vec())]
    );
    assert!(!dest.path().parent().unwrap().join("evil").exists());
}
