//! Running the real `tenon` binary against a throw-away registry.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// The `tenon` binary cargo built for these tests.
pub fn tenon_binary() -> &'static str {
    env!("CARGO_BIN_EXE_tenon")
}

/// A `tenon` command with an environment that does not leak the caller's
/// settings: no colour, no `TENON_*` variables.
pub fn bare_command() -> Command {
    let mut command = Command::new(tenon_binary());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("TENON_") {
            command.env_remove(key);
        }
    }
    command.env("NO_COLOR", "1").stdin(Stdio::null());
    command
}

/// How a run ended.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Standard output as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// The development policy a `tenon new` project gets.
pub const DEVELOPMENT_POLICY: &str = "allow_unsigned = \"local\"\nallow_unsigned_directories = true\nunsigned_level = \"internal\"\n";

/// A registry in a fresh directory (deleted on drop), and the commands run
/// against it.
pub struct Tenon {
    /// The directory holding the registry, its key and plugin data.
    pub dir: TempDir,
}

impl Tenon {
    /// A fresh registry directory whose trust policy (`trust.toml` beside
    /// the registry) has the development switch on, as in a `tenon new`
    /// project: the example plugins are installed from their directories.
    pub fn new() -> Self {
        let tenon = Self::strict();
        tenon.set_policy(DEVELOPMENT_POLICY);
        tenon
    }

    /// A fresh registry directory without a trust policy file: no key is
    /// trusted, unsigned packages and directories are refused.
    pub fn strict() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// Replaces the trust policy file beside the registry.
    pub fn set_policy(&self, toml: &str) {
        std::fs::write(self.dir.path().join("trust.toml"), toml).expect("writing trust.toml");
    }

    /// The registry file.
    pub fn registry(&self) -> PathBuf {
        self.dir.path().join("registry.db")
    }

    /// A command on this registry.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = bare_command();
        command
            .current_dir(self.dir.path())
            .arg("--registry")
            .arg(self.registry())
            .args(args);
        command
    }

    /// Runs `tenon ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("tenon runs"))
    }

    /// Runs `tenon ARGS` with `input` on its standard input.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write as _;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tenon runs");
        child
            .stdin
            .take()
            .expect("a stdin")
            .write_all(input)
            .expect("writing stdin");
        Run::from(child.wait_with_output().expect("tenon runs"))
    }

    /// Runs `tenon ARGS`, expecting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "tenon {args:?} failed:\n{}{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs `tenon --format json ARGS`, expecting success; returns the
    /// document.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let run = self.run(&all);
        assert_eq!(
            run.code, 0,
            "tenon {all:?} failed:\n{}{}",
            run.stdout, run.stderr
        );
        run.json()
    }

    /// Runs `tenon ARGS`, expecting exit `code` and `error: …` on stderr
    /// containing `message`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32, message: &str) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "tenon {args:?}: expected exit {code}:\n{}{}",
            run.stdout, run.stderr
        );
        assert!(
            run.stderr.contains("error: ") && run.stderr.contains(message),
            "tenon {args:?}: stderr lacks `{message}`:\n{}",
            run.stderr
        );
        run.stderr
    }
}

/// The installable directory of an example plugin (built once per process).
pub fn example(name: &str) -> PathBuf {
    tenon_build::ensure_examples_built()
        .expect(name)
        .dir
        .clone()
}

/// The path of an example plugin's directory, as text for arguments.
pub fn example_arg(name: &str) -> String {
    example(name).display().to_string()
}

/// Copies an example plugin's installable directory to `dest`, letting
/// `edit` rewrite its manifest.
pub fn copy_example(name: &str, dest: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    let source = example(name);
    std::fs::create_dir_all(dest).expect("creating the copy");
    for entry in std::fs::read_dir(&source).expect("reading the plugin directory") {
        let entry = entry.expect("an entry");
        if entry.file_type().expect("a type").is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name())).expect("copying");
        }
    }
    let manifest = dest.join("tenon.toml");
    let text = std::fs::read_to_string(&manifest).expect("the manifest");
    std::fs::write(&manifest, edit(text)).expect("writing the manifest");
    dest.to_path_buf()
}

/// A manifest's text with its first `version = "…"` line replaced.
pub fn with_version(text: &str, version: &str) -> String {
    let mut done = false;
    text.lines()
        .map(|line| {
            if !done && line.trim_start().starts_with("version =") {
                done = true;
                format!("version = \"{version}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
