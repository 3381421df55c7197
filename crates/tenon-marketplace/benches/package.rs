//! Package throughput, measured beside its anchors in the same run:
//!
//! - `inspect` and `unpack_to_memory` against plain gunzip + tar iteration
//!   with no checks (`anchor/untar_to_sink`): the cost of Tenon's checks;
//! - `unpack` to disk against the `tar` crate's own `Archive::unpack`
//!   (`anchor/tar_unpack`): the cost of the temp-dir-then-rename discipline
//!   and the fsyncs;
//! - `verify` (sha256 of the archive plus ed25519 checks);
//! - `pack` against gzip alone of the same tar stream at the same level
//!   (`anchor/gzip_level6`): the cost of reading and checking the directory.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::fs;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tenon_marketplace::{
    Origin, PackOptions, Role, SignatureFile, SigningKey, TrustPolicy, UnpackLimits, inspect_with,
    pack, unpack, unpack_to_memory, verify,
};

/// A plugin with a 4 MiB module of pseudo-random (poorly compressible) bytes
/// and a few assets.
fn plugin(root: &Path) {
    let mut module = Vec::with_capacity(4 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while module.len() < 4 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half the bytes random, half zero: roughly what wasm compresses like.
        module.extend_from_slice(&(x & 0x0000_ffff_0000_ffff).to_le_bytes());
    }
    let manifest = "manifest_version = 1\n[plugin]\nid = \"acme/bench\"\nname = \"B\"\nversion = \"1.0.0\"\ndescription = \"d\"\nlicense = \"MIT\"\n[engine]\ntenon = \"^1\"\n[runtime]\nkind = \"component\"\nmodule = \"plugin.wasm\"\n";
    fs::write(root.join("tenon.toml"), manifest).unwrap();
    fs::write(root.join("plugin.wasm"), module).unwrap();
    fs::write(root.join("README.md"), "# Bench\n".repeat(100)).unwrap();
    fs::create_dir(root.join("assets")).unwrap();
    for i in 0..20 {
        fs::write(
            root.join(format!("assets/a{i}.txt")),
            format!("asset {i}\n").repeat(200),
        )
        .unwrap();
    }
}

fn untar_to_sink(bytes: &[u8]) -> u64 {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut total = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        total += io::copy(&mut entry, &mut io::sink()).unwrap();
    }
    total
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    plugin(dir.path());
    let packed = pack(dir.path(), &PackOptions::default()).unwrap();
    let bytes = packed.bytes.clone();
    let limits = UnpackLimits::default();
    let key = SigningKey::from_seed(&[1; 32]);
    let mut signatures = SignatureFile::for_package(&packed.info);
    signatures.sign(Role::Author, &key);
    let policy = TrustPolicy::default().with_author_key(key.public_key());

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(packed.info.unpacked_size()));
    group.sample_size(20);
    group.bench_function("anchor/untar_to_sink", |b| {
        b.iter(|| untar_to_sink(black_box(&bytes)))
    });
    group.bench_function("inspect", |b| {
        b.iter(|| inspect_with(black_box(&bytes), &limits).unwrap())
    });
    group.bench_function("unpack_to_memory", |b| {
        b.iter(|| unpack_to_memory(black_box(&bytes), &limits).unwrap())
    });
    let out = tempfile::tempdir().unwrap();
    let mut n = 0u64;
    group.bench_function("anchor/tar_unpack", |b| {
        b.iter(|| {
            n += 1;
            let dest = out.path().join(format!("tar{n}"));
            tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()))
                .unpack(&dest)
                .unwrap();
        })
    });
    group.bench_function("unpack", |b| {
        b.iter(|| {
            n += 1;
            unpack(
                black_box(&bytes),
                &out.path().join(format!("t{n}")),
                &limits,
            )
            .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("trust");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("verify", |b| {
        b.iter(|| {
            verify(
                black_box(&bytes),
                Some(&signatures),
                &policy,
                Origin::Remote,
            )
            .unwrap();
        })
    });
    group.finish();

    let mut group = c.benchmark_group("write");
    group.throughput(Throughput::Bytes(packed.info.unpacked_size()));
    group.sample_size(10);
    let tar_stream = {
        let mut stream = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut stream)
            .unwrap();
        stream
    };
    group.bench_function("anchor/gzip_level6", |b| {
        b.iter(|| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            encoder.write_all(black_box(&tar_stream)).unwrap();
            encoder.finish().unwrap()
        })
    });
    group.bench_function("pack", |b| {
        b.iter(|| pack(black_box(dir.path()), &PackOptions::default()).unwrap())
    });
    group.finish();

    // Keep the compressed size visible in the output.
    let mut module = Vec::new();
    fs::File::open(dir.path().join("plugin.wasm"))
        .unwrap()
        .read_to_end(&mut module)
        .unwrap();
    eprintln!(
        "package: {} bytes compressed, {} bytes of files ({} module)",
        bytes.len(),
        packed.info.unpacked_size(),
        module.len()
    );
}

criterion_group!(package, benches);
criterion_main!(package);
