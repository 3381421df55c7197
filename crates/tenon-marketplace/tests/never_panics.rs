//! Arbitrary input never panics a reader: raw bytes, arbitrary data behind
//! a gzip header, arbitrary tar streams, and mutations of a valid archive.

mod common;

use common::*;
use proptest::prelude::*;
use tenon_marketplace::{UnpackLimits, inspect_with, unpack, unpack_to_memory};

fn small_limits() -> UnpackLimits {
    UnpackLimits {
        max_entries: 64,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 2 << 20,
        ..UnpackLimits::default()
    }
}

/// Every reader, on `bytes`: errors are fine, panics are not; and when one
/// reader accepts, all agree.
fn read_every_way(bytes: &[u8]) {
    let limits = small_limits();
    let inspected = inspect_with(bytes, &limits);
    let in_memory = unpack_to_memory(bytes, &limits);
    assert_eq!(inspected.is_ok(), in_memory.is_ok());
    if let (Ok(info), Ok(contents)) = (&inspected, &in_memory) {
        assert_eq!(info, &contents.info);
    }
    if let (Err(a), Err(b)) = (&inspected, &in_memory) {
        assert_eq!(a.code(), b.code());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_every_way(&bytes);
    }

    #[test]
    fn arbitrary_gzip_content(content in proptest::collection::vec(any::<u8>(), 0..8192)) {
        read_every_way(&gzip(&content));
    }

    #[test]
    fn arbitrary_tar_headers(
        headers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 512), 1..4),
        data in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        // Random headers with a valid checksum, so tar parses their fields.
        let mut stream = tar(&minimal());
        stream.truncate(stream.len() - 1024);
        for raw in headers {
            let mut header = tar::Header::new_old();
            header.as_mut_bytes().copy_from_slice(&raw);
            header.set_cksum();
            stream.extend_from_slice(header.as_bytes());
            stream.extend_from_slice(&data);
        }
        stream.extend_from_slice(&[0; 1024]);
        read_every_way(&gzip(&stream));
    }

    #[test]
    fn mutated_archives(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        in_tar in any::<bool>(),
    ) {
        let mut stream = tar(&[minimal(), vec![file("assets/a.txt", "hello"), file("README.md", "# hi")]].concat());
        let mut bytes = if in_tar { stream.clone() } else { archive(&minimal()) };
        for (at, xor) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= xor | 1;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if in_tar {
            stream = bytes;
            bytes = gzip(&stream);
        }
        read_every_way(&bytes);
    }
}

#[test]
fn disk_unpack_survives_mutations_and_cleans_up() {
    let good = archive(&[minimal(), vec![file("assets/a.txt", "hello")]].concat());
    let dest = tempfile::tempdir().unwrap();
    let mut accepted = 0;
    for i in (0..good.len()).step_by(7) {
        let mut bytes = good.clone();
        bytes[i] ^= 0xa5;
        let out = dest.path().join(i.to_string());
        match unpack(&bytes, &out, &small_limits()) {
            Ok(_) => {
                accepted += 1;
                assert_eq!(listing(&out), ["acme"]);
            }
            Err(_) => assert_eq!(listing(&out), Vec::<String>::new(), "flip at {i}"),
        }
    }
    // Flips in the gzip header's mtime/os fields leave the content intact.
    assert!(accepted < good.len() / 7);
}
