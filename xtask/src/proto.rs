//! `cargo xtask proto`: regenerates the committed Rust code of the process
//! plugins' gRPC contract (`crates/tenon-plugin-proto/src/gen/`) from
//! `proto/` with protox (a protobuf compiler in Rust, so no `protoc`) and
//! tonic-prost-build. A test below fails when the committed code is stale.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{root, step};

/// The `.proto` files, relative to `proto/`.
const FILES: [&str; 2] = [
    "tenon/plugin/v1/plugin.proto",
    "grpc/health/v1/health.proto",
];
/// Where the generated code is committed, relative to the repository root.
pub(crate) const OUT: &str = "crates/tenon-plugin-proto/src/gen";

pub(crate) fn proto(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask proto");
    }
    let out = root().join(OUT);
    step(&format!("generating {OUT} from proto/"));
    generate(&out)
}

/// Compiles `proto/` and writes the generated Rust into `out`.
pub(crate) fn generate(out: &Path) -> Result<()> {
    let includes = [root().join("proto")];
    let descriptors = protox::compile(FILES, includes).context("compiling proto/")?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    tonic_prost_build::configure()
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_fds(descriptors)
        .context("generating the Rust code")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_generated_code_is_fresh() {
        let fresh = tempfile::tempdir().unwrap();
        generate(fresh.path()).unwrap();
        let committed = root().join(OUT);
        let mut names: Vec<_> = std::fs::read_dir(fresh.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        for name in names {
            let want = std::fs::read_to_string(fresh.path().join(&name)).unwrap();
            let have = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
            assert!(
                want == have,
                "{} is stale: run `cargo xtask proto` and commit the result",
                committed.join(&name).display()
            );
        }
    }
}
