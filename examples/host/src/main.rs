//! `tenon-demo`: runs Tenon's demo host (see the library's documentation).
//! `cargo xtask demo` runs it; an optional argument names the directory for
//! its registry (default `target/demo`).

use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(tenon_demo::default_dir);
    let mut stdout = std::io::stdout().lock();
    tenon_demo::run(&dir, &mut stdout).await?;
    Ok(())
}
