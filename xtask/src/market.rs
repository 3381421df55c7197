//! `cargo xtask market-serve [--listen ADDR]`: a marketplace on this
//! machine in one command, seeded with the example plugins.
//!
//! It builds the example plugins (as `build-plugins` does), keeps a demo
//! author key and the marketplace's keys under `target/market-demo/`
//! (made on the first run, reused afterwards), packs and signs each example
//! plugin, and runs `tenon market serve` on the SQLite database beside them
//! with the packages as seeds. Every step is a documented `tenon` command, so
//! the task is the README's manual steps in one: re-running it reuses the
//! keys and the database, and the versions published already are skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use tenon_build::{EXAMPLES_PUBLISHER, build_workspace, examples_build_options, examples_dir};

use super::{root, run, step};

/// The options of the task, in its help line's words.
pub(crate) const USAGE: &str = "market-serve [--listen ADDR]";

/// Where the server listens unless told otherwise (`tenon market serve`'s
/// default).
const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// The task's working directory, relative to the repository root.
pub(crate) const DEMO_DIR: &str = "target/market-demo";

/// The files of [`DEMO_DIR`], relative to it.
const AUTHOR_KEY: &str = "author.key";
const MARKET_KEYS: &str = "market-keys";
const DATABASE: &str = "market.db";
const PACKAGES: &str = "packages";

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    listen: String,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(addr) if addr.parse::<std::net::SocketAddr>().is_ok() => {
                    addr.clone_into(&mut listen);
                }
                Some(addr) => bail!(
                    "`{addr}` is not an address to listen on (write IP:PORT, as 127.0.0.1:8470): cargo xtask {USAGE}"
                ),
                None => bail!("--listen needs an address: cargo xtask {USAGE}"),
            },
            other => bail!("unknown option `{other}`: cargo xtask {USAGE}"),
        }
    }
    Ok(Options { listen })
}

/// A signed package of one example plugin, as `tenon pack` reported it.
#[derive(Debug)]
struct Packed {
    id: String,
    file: PathBuf,
    public_key: String,
}

pub(crate) fn market_serve(args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let root = root();
    let dir = root.join(DEMO_DIR);
    std::fs::create_dir_all(dir.join(PACKAGES))
        .with_context(|| format!("creating {}", dir.join(PACKAGES).display()))?;

    step("example plugins");
    let examples = examples_dir();
    let built = build_workspace(&examples, &examples_build_options())
        .with_context(|| format!("building the plugins of {}", examples.display()))?;
    let showcase: Vec<(&String, PathBuf)> = built
        .iter()
        .filter(|(_, plugin)| tenon_build::is_showcase(plugin.id()))
        .map(|(name, plugin)| (name, plugin.dir.clone()))
        .collect();
    if showcase.is_empty() {
        bail!(
            "no example plugin of publisher `{EXAMPLES_PUBLISHER}` in {}",
            examples.display()
        );
    }

    step("keys");
    if dir.join(AUTHOR_KEY).exists() {
        eprintln!("  reusing {}", dir.join(AUTHOR_KEY).display());
    } else {
        run(tenon(&root, &dir).args(["keygen", AUTHOR_KEY]))?;
    }
    if dir.join(MARKET_KEYS).join("root.json").exists() {
        eprintln!("  reusing {}", dir.join(MARKET_KEYS).display());
    } else {
        run(tenon(&root, &dir).args(["market", "init", "--keys", MARKET_KEYS]))?;
    }

    step("signed packages");
    let mut packed = Vec::new();
    for (name, plugin_dir) in &showcase {
        let out = Path::new(PACKAGES).join(format!("{name}.tenon"));
        let report = output_json(
            tenon(&root, &dir)
                .args(["--format", "json", "pack"])
                .arg(plugin_dir)
                .args(["--sign", AUTHOR_KEY, "--out"])
                .arg(&out),
        )?;
        let text = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("`tenon pack` reported no {pointer}: {report}"))
        };
        packed.push(Packed {
            id: text("/id")?,
            file: out,
            public_key: text("/signature/public_key")?,
        });
    }
    for package in &packed {
        eprintln!("  {:<32} {}", package.id, dir.join(&package.file).display());
    }

    let key = &packed[0].public_key;
    let example = packed
        .iter()
        .find(|p| p.id.ends_with("/echo"))
        .unwrap_or(&packed[0]);
    step("marketplace");
    eprintln!(
        "  database and keys: {dir}\n  \
         trust the demo author's key (once, for the registry you install into):\n    \
         tenon trust add {key} --publisher {EXAMPLES_PUBLISHER}\n  \
         then install by name:\n    \
         tenon install {id} --from http://{listen}\n  \
         (start afresh by deleting {dir}; Ctrl-C stops the server)\n",
        dir = dir.display(),
        id = example.id,
        listen = options.listen,
    );
    let mut serve = tenon(&root, &dir);
    serve.args([
        "market",
        "serve",
        "--keys",
        MARKET_KEYS,
        "--db",
        DATABASE,
        "--listen",
        &options.listen,
    ]);
    for package in &packed {
        serve.arg("--seed").arg(&package.file);
    }
    run(&mut serve).with_context(|| {
        format!(
            "the marketplace stopped (if it refused a seed signed by another key, delete {} to start afresh)",
            dir.display()
        )
    })
}

/// `tenon` (built and run by cargo from this repository) in `dir`.
fn tenon(root: &Path, dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "tenon-cli",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml"))
        .arg("--")
        .current_dir(dir);
    command
}

/// Runs `command` and parses its standard output as JSON.
fn output_json(command: &mut Command) -> Result<serde_json::Value> {
    let shown = format!("{command:?}");
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !output.status.success() {
        bail!("{shown} failed with {}", output.status);
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{shown} did not print one JSON document"))
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_LISTEN, Options, parse};

    #[test]
    fn options_parse_or_say_what_is_wrong() {
        let ok = |listen: &str| {
            Ok::<_, String>(Options {
                listen: listen.to_owned(),
            })
        };
        for (args, expected) in [
            (&[][..], ok(DEFAULT_LISTEN)),
            (&["--listen", "0.0.0.0:9000"][..], ok("0.0.0.0:9000")),
            (&["--listen", "127.0.0.1:0"][..], ok("127.0.0.1:0")),
            (&["--listen", "[::1]:8470"][..], ok("[::1]:8470")),
            (
                &["--listen", "localhost"][..],
                Err("`localhost` is not an address".to_owned()),
            ),
            (
                &["--listen"][..],
                Err("--listen needs an address".to_owned()),
            ),
            (&["--db"][..], Err("unknown option `--db`".to_owned())),
        ] {
            let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
            match (parse(&args), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{args:?}"),
                (Err(got), Err(want)) => {
                    let got = got.to_string();
                    assert!(got.contains(&want), "{args:?}: {got}");
                    assert!(got.contains("cargo xtask market-serve"), "{got}");
                }
                (got, want) => panic!("{args:?}: got {got:?}, expected {want:?}"),
            }
        }
    }
}
