//! `cargo xtask release plan|check|publish`: the release pipeline.
//!
//! Every publishable crate of the workspace is versioned on its own and
//! tagged `<crate>-v<version>`. A release is planned from what changed since
//! each crate's last tag:
//!
//! - a crate with no tag yet is released at the version in its manifest;
//! - a crate with commits under its directory since its tag gets a bump:
//!   breaking (as `cargo semver-checks` judges its public API against the
//!   tagged release) or compatible, each mapped onto semver's rules for
//!   `0.x` and `1.x` versions;
//! - a crate whose workspace dependency gets a breaking bump gets at least a
//!   compatible one (its requirement on that dependency changes).
//!
//! `plan` prints that (or writes it with `--write`: versions in the
//! manifests, requirements in the root manifest, a CHANGELOG section);
//! `check` proves the crates package (metadata, READMEs, version
//! requirements, `cargo package` of all of them in dependency order);
//! `publish` uploads them in that order and tags each (`--dry-run` stops
//! short of the upload). `docs/dev/release.md` is the operator's guide.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use semver::Version;
use serde_json::Value;

use super::{root, run, step};

/// The task's usage line.
pub(crate) const USAGE: &str = "\
release plan [--json] [--write] [--no-semver-checks]
                  release check [--no-verify]
                  release publish [--dry-run]";

/// Runs `cargo xtask release <subcommand>`.
pub(crate) fn release(args: &[String]) -> Result<()> {
    let (sub, rest) = args
        .split_first()
        .with_context(|| format!("missing subcommand: cargo xtask {USAGE}"))?;
    let flags = Flags::parse(sub, rest)?;
    let workspace = Workspace::load(&root())?;
    match sub.as_str() {
        "plan" => {
            let plan = Plan::compute(&workspace, flags.semver_checks)?;
            if flags.json {
                println!("{}", serde_json::to_string_pretty(&plan.to_json())?);
            } else {
                print!("{}", plan.render());
            }
            if flags.write {
                plan.write(&workspace)?;
                eprintln!(
                    "\nwrote the new versions and the CHANGELOG section; review with `git diff`"
                );
            }
            Ok(())
        }
        "check" => check(&workspace, flags.verify),
        "publish" => publish(&workspace, flags.dry_run),
        other => bail!("unknown release subcommand `{other}`: cargo xtask {USAGE}"),
    }
}

/// The options of one subcommand.
#[derive(Debug, Clone, Copy)]
struct Flags {
    json: bool,
    write: bool,
    semver_checks: bool,
    verify: bool,
    dry_run: bool,
}

impl Flags {
    fn parse(sub: &str, args: &[String]) -> Result<Self> {
        let mut flags = Self {
            json: false,
            write: false,
            semver_checks: true,
            verify: true,
            dry_run: false,
        };
        for arg in args {
            match (sub, arg.as_str()) {
                ("plan", "--json") => flags.json = true,
                ("plan", "--write") => flags.write = true,
                ("plan", "--no-semver-checks") => flags.semver_checks = false,
                ("check", "--no-verify") => flags.verify = false,
                ("publish", "--dry-run") => flags.dry_run = true,
                _ => bail!("`{arg}` is not an option of `release {sub}`: cargo xtask {USAGE}"),
            }
        }
        Ok(flags)
    }
}

/// One package of the workspace, as `cargo metadata` describes it.
#[derive(Debug, Clone)]
struct Crate {
    name: String,
    version: Version,
    /// The package's directory.
    dir: PathBuf,
    manifest: PathBuf,
    publishable: bool,
    /// Workspace packages this one needs at build or run time (normal and
    /// build dependencies; dev-dependencies are stripped on publish).
    needs: BTreeSet<String>,
    /// Requirements on workspace packages, by package name.
    requirements: BTreeMap<String, String>,
    description: Option<String>,
    license: Option<String>,
    repository: Option<String>,
    readme: Option<PathBuf>,
}

/// The workspace's packages.
#[derive(Debug)]
struct Workspace {
    root: PathBuf,
    crates: BTreeMap<String, Crate>,
}

impl Workspace {
    fn load(root: &Path) -> Result<Self> {
        let output = Command::new(cargo_program())
            .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
            .current_dir(root)
            .output()
            .context("could not run `cargo metadata`")?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let metadata: Value =
            serde_json::from_slice(&output.stdout).context("`cargo metadata` printed no JSON")?;
        Self::from_metadata(root, &metadata)
    }

    fn from_metadata(root: &Path, metadata: &Value) -> Result<Self> {
        let packages = metadata["packages"]
            .as_array()
            .context("`cargo metadata` has no packages")?;
        let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
        let mut crates = BTreeMap::new();
        for package in packages {
            let name = str_field(package, "name")?.to_owned();
            let manifest = PathBuf::from(str_field(package, "manifest_path")?);
            let dir = manifest
                .parent()
                .context("a manifest path has no directory")?
                .to_path_buf();
            let version = Version::parse(str_field(package, "version")?)
                .with_context(|| format!("{name}'s version"))?;
            // `publish`: null means any registry, [] means `publish = false`.
            let publishable = !package["publish"].as_array().is_some_and(Vec::is_empty);
            let mut needs = BTreeSet::new();
            let mut requirements = BTreeMap::new();
            for dep in package["dependencies"].as_array().into_iter().flatten() {
                let Some(dep_name) = dep["name"].as_str() else {
                    continue;
                };
                if !names.contains(dep_name) || dep_name == name {
                    continue;
                }
                let kind = dep["kind"].as_str();
                if kind != Some("dev") {
                    needs.insert(dep_name.to_owned());
                    let req = dep["req"].as_str().unwrap_or("*").to_owned();
                    requirements.insert(dep_name.to_owned(), req);
                }
            }
            let text = |key: &str| package[key].as_str().map(str::to_owned);
            crates.insert(
                name.clone(),
                Crate {
                    readme: text("readme").map(|r| dir.join(r)),
                    description: text("description"),
                    license: text("license"),
                    repository: text("repository"),
                    name,
                    version,
                    dir,
                    manifest,
                    publishable,
                    needs,
                    requirements,
                },
            );
        }
        Ok(Self {
            root: root.to_path_buf(),
            crates,
        })
    }

    fn publishable(&self) -> impl Iterator<Item = &Crate> {
        self.crates.values().filter(|c| c.publishable)
    }

    /// The publishable crates, each after every workspace crate it needs
    /// (ties broken by name, so the order is stable).
    fn publish_order(&self) -> Result<Vec<&Crate>> {
        let publishable: BTreeMap<&str, &Crate> =
            self.publishable().map(|c| (c.name.as_str(), c)).collect();
        let mut waiting: BTreeMap<&str, BTreeSet<&str>> = publishable
            .values()
            .map(|c| {
                let needs = c
                    .needs
                    .iter()
                    .map(String::as_str)
                    .filter(|n| publishable.contains_key(n))
                    .collect();
                (c.name.as_str(), needs)
            })
            .collect();
        let mut order = Vec::with_capacity(waiting.len());
        while !waiting.is_empty() {
            let ready: Vec<&str> = waiting
                .iter()
                .filter(|(_, needs)| needs.is_empty())
                .map(|(name, _)| *name)
                .collect();
            if ready.is_empty() {
                let stuck: Vec<&str> = waiting.keys().copied().collect();
                bail!(
                    "the publishable crates depend on each other in a cycle: {}",
                    stuck.join(", ")
                );
            }
            for name in ready {
                waiting.remove(name);
                for needs in waiting.values_mut() {
                    needs.remove(name);
                }
                order.push(publishable[name]);
            }
        }
        Ok(order)
    }

    fn relative<'a>(&self, path: &'a Path) -> &'a Path {
        path.strip_prefix(&self.root).unwrap_or(path)
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Result<&'a str> {
    value[key]
        .as_str()
        .with_context(|| format!("`cargo metadata` gives a package without `{key}`"))
}

/// How a crate's public API changed since its last release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `cargo semver-checks` found a breaking change.
    Breaking,
    /// `cargo semver-checks` found none.
    Compatible,
    /// Not checked (`--no-semver-checks`): treated as breaking.
    Unchecked,
}

impl Api {
    fn as_str(self) -> &'static str {
        match self {
            Self::Breaking => "breaking",
            Self::Compatible => "compatible",
            Self::Unchecked => "not checked (treated as breaking)",
        }
    }
}

/// The kind of version change a crate gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bump {
    /// Nothing to release.
    None,
    /// A semver-compatible release (patch for `0.x`, minor from `1.0`).
    Compatible,
    /// A breaking release (minor for `0.x`, major from `1.0`).
    Breaking,
}

impl Bump {
    /// The version after `last` for this kind of change.
    fn apply(self, last: &Version) -> Version {
        let mut next = Version::new(last.major, last.minor, last.patch);
        match (self, last.major) {
            (Self::None, _) => return last.clone(),
            (Self::Compatible, 0) => next.patch += 1,
            (Self::Compatible, _) => {
                next.minor += 1;
                next.patch = 0;
            }
            (Self::Breaking, 0) => {
                next.minor += 1;
                next.patch = 0;
            }
            (Self::Breaking, _) => {
                next.major += 1;
                next.minor = 0;
                next.patch = 0;
            }
        }
        next
    }
}

/// One crate's line of the plan.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    current: Version,
    /// The last released version and its tag, when there is one.
    last: Option<(Version, String)>,
    /// Commit subjects touching the crate since its tag.
    commits: Vec<String>,
    api: Option<Api>,
    bump: Bump,
    next: Option<Version>,
    reason: String,
}

/// The release plan: each publishable crate in publish order.
#[derive(Debug)]
struct Plan {
    entries: Vec<Entry>,
    date: String,
}

impl Plan {
    fn compute(workspace: &Workspace, semver_checks: bool) -> Result<Self> {
        let tags = release_tags(&workspace.root)?;
        let order = workspace.publish_order()?;
        if semver_checks && order.iter().any(|c| tags.contains_key(&c.name)) {
            ensure_cargo_tool("semver-checks", "cargo-semver-checks")?;
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(order.len());
        for krate in order {
            let last = tags.get(&krate.name).cloned();
            let Some((last_version, tag)) = &last else {
                entries.push(Entry {
                    name: krate.name.clone(),
                    current: krate.version.clone(),
                    last: None,
                    commits: Vec::new(),
                    api: None,
                    bump: Bump::Breaking,
                    next: Some(krate.version.clone()),
                    reason: "first release".to_owned(),
                });
                continue;
            };
            let dir = workspace.relative(&krate.dir).to_path_buf();
            let commits = commits_since(&workspace.root, tag, &dir)?;
            let broken_deps: Vec<&str> = entries
                .iter()
                .filter(|e| e.bump == Bump::Breaking && krate.needs.contains(&e.name))
                .map(|e| e.name.as_str())
                .collect();
            let (api, mut bump, mut reason) = if commits.is_empty() {
                (None, Bump::None, "no changes since its tag".to_owned())
            } else {
                let api = if semver_checks {
                    semver_check(&workspace.root, &krate.name, tag)?
                } else {
                    Api::Unchecked
                };
                let bump = match api {
                    Api::Compatible => Bump::Compatible,
                    Api::Breaking | Api::Unchecked => Bump::Breaking,
                };
                let reason = format!("{} commit(s), API {}", commits.len(), api.as_str());
                (Some(api), bump, reason)
            };
            if !broken_deps.is_empty() && bump < Bump::Compatible {
                bump = Bump::Compatible;
                reason = format!("needs the breaking release of {}", broken_deps.join(", "));
            }
            let mut next = (bump != Bump::None).then(|| bump.apply(last_version));
            // A version already raised by hand beyond the computed one wins.
            if let Some(planned) = &next
                && krate.version > *planned
            {
                reason.push_str("; keeps the higher version in its manifest");
                next = Some(krate.version.clone());
            }
            entries.push(Entry {
                name: krate.name.clone(),
                current: krate.version.clone(),
                last: last.clone(),
                commits,
                api,
                bump,
                next,
                reason,
            });
        }
        Ok(Self {
            entries,
            date: today()?,
        })
    }

    fn releases(&self) -> impl Iterator<Item = (&Entry, &Version)> {
        self.entries
            .iter()
            .filter_map(|e| e.next.as_ref().map(|next| (e, next)))
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        let _ = writeln!(out, "Release plan (publish order):\n");
        let _ = writeln!(
            out,
            "  {:<width$}  {:<9}  {:<9}  {:<9}  why",
            "crate", "manifest", "released", "next"
        );
        for entry in &self.entries {
            let released = entry
                .last
                .as_ref()
                .map_or_else(|| "-".to_owned(), |(v, _)| v.to_string());
            let next = entry
                .next
                .as_ref()
                .map_or_else(|| "-".to_owned(), Version::to_string);
            let _ = writeln!(
                out,
                "  {:<width$}  {:<9}  {:<9}  {:<9}  {}",
                entry.name,
                entry.current.to_string(),
                released,
                next,
                entry.reason
            );
        }
        let releases: Vec<_> = self.releases().collect();
        if releases.is_empty() {
            out.push_str("\nNothing to release.\n");
            return out;
        }
        out.push_str("\nTags, created by `cargo xtask release publish` after each upload:\n\n");
        for (entry, next) in &releases {
            let _ = writeln!(out, "  {}", tag_name(&entry.name, next));
        }
        out.push_str("\nCHANGELOG section:\n\n");
        let _ = writeln!(out, "  {}", self.changelog_heading());
        out
    }

    fn changelog_heading(&self) -> String {
        let versions: Vec<String> = self
            .releases()
            .map(|(entry, next)| format!("{} {next}", entry.name))
            .collect();
        format!("## [{}] - {}", versions.join(", "), self.date)
    }

    fn to_json(&self) -> Value {
        let crates: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "name": e.name,
                    "manifest_version": e.current.to_string(),
                    "released": e.last.as_ref().map(|(v, _)| v.to_string()),
                    "tag": e.last.as_ref().map(|(_, t)| t.clone()),
                    "commits": e.commits.len(),
                    "api": e.api.map(Api::as_str),
                    "next": e.next.as_ref().map(Version::to_string),
                    "new_tag": e.next.as_ref().map(|n| tag_name(&e.name, n)),
                    "reason": e.reason,
                })
            })
            .collect();
        serde_json::json!({
            "date": self.date,
            "publish_order": crates,
            "changelog_heading": (self.releases().next().is_some()).then(|| self.changelog_heading()),
        })
    }

    /// Writes the plan: each released crate's version in its manifest, the
    /// root manifest's requirement on it, and the CHANGELOG section.
    fn write(&self, workspace: &Workspace) -> Result<()> {
        let root_manifest = workspace.root.join("Cargo.toml");
        let mut root_text = read(&root_manifest)?;
        for (entry, next) in self.releases() {
            let krate = &workspace.crates[&entry.name];
            if *next != krate.version {
                let text = read(&krate.manifest)?;
                write(&krate.manifest, &set_package_version(&text, next)?)?;
            }
            root_text = set_workspace_requirement(&root_text, &entry.name, next)?;
        }
        write(&root_manifest, &root_text)?;
        let changelog = workspace.root.join("CHANGELOG.md");
        let text = read(&changelog)?;
        write(
            &changelog,
            &open_release_section(&text, &self.changelog_heading())?,
        )?;
        Ok(())
    }
}

/// `<crate>-v<version>`.
fn tag_name(name: &str, version: &Version) -> String {
    format!("{name}-v{version}")
}

/// The newest release tag of each crate (`<crate>-v<version>`).
fn release_tags(root: &Path) -> Result<BTreeMap<String, (Version, String)>> {
    let listed = git(root, &["tag", "--list", "*-v*"])?;
    let mut tags: BTreeMap<String, (Version, String)> = BTreeMap::new();
    for tag in listed.lines().map(str::trim).filter(|t| !t.is_empty()) {
        let Some((name, version)) = tag.rsplit_once("-v") else {
            continue;
        };
        let Ok(version) = Version::parse(version) else {
            continue;
        };
        let newer = tags.get(name).is_none_or(|(v, _)| version > *v);
        if newer {
            tags.insert(name.to_owned(), (version, tag.to_owned()));
        }
    }
    Ok(tags)
}

/// The subjects of the commits since `tag` that touch `dir`.
fn commits_since(root: &Path, tag: &str, dir: &Path) -> Result<Vec<String>> {
    let range = format!("{tag}..HEAD");
    let dir = dir.to_string_lossy();
    let log = git(root, &["log", "--format=%s", &range, "--", &dir])?;
    Ok(log.lines().map(str::to_owned).collect())
}

/// Compares a crate's public API with its tagged release.
fn semver_check(root: &Path, name: &str, tag: &str) -> Result<Api> {
    step(&format!("cargo semver-checks: {name} against {tag}"));
    let status = Command::new(cargo_program())
        .args(["semver-checks", "check-release", "--package", name])
        .args(["--baseline-rev", tag])
        .current_dir(root)
        .status()
        .context("could not start cargo semver-checks")?;
    // It exits 1 when it finds breaking changes; anything else is an error
    // of the tool, which must not pass for "compatible".
    match status.code() {
        Some(0) => Ok(Api::Compatible),
        Some(1) => Ok(Api::Breaking),
        _ => bail!("cargo semver-checks could not check {name} against {tag} ({status})"),
    }
}

/// Proves the publishable crates package: metadata, READMEs, requirements
/// on each other, then `cargo package` of all of them in one go (cargo
/// overlays the not-yet-published ones, so each is built against its
/// workspace dependencies as packaged).
fn check(workspace: &Workspace, verify: bool) -> Result<()> {
    step("release metadata");
    let order = workspace.publish_order()?;
    let problems = metadata_problems(workspace, &order);
    if !problems.is_empty() {
        bail!(
            "{} crate(s) are not ready to publish:\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
    eprintln!(
        "  {} publishable crates, in order: {}",
        order.len(),
        order
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    );
    step(if verify {
        "cargo package (each crate built from its package)"
    } else {
        "cargo package --no-verify"
    });
    let mut command = Command::new(cargo_program());
    // A check runs before the release is committed: package the tree as it is.
    command.args(["package", "--locked", "--allow-dirty"]);
    for krate in &order {
        command.args(["--package", &krate.name]);
    }
    if !verify {
        command.arg("--no-verify");
    }
    run(command.current_dir(&workspace.root))
}

/// What keeps each publishable crate from being published, in words.
fn metadata_problems(workspace: &Workspace, order: &[&Crate]) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in order {
        let name = &krate.name;
        for (field, value) in [
            ("description", &krate.description),
            ("license", &krate.license),
            ("repository", &krate.repository),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                problems.push(format!("{name}: `package.{field}` is missing"));
            }
        }
        match &krate.readme {
            None => problems.push(format!("{name}: `package.readme` is not set")),
            Some(path) if !path.is_file() => problems.push(format!(
                "{name}: its README {} does not exist",
                workspace.relative(path).display()
            )),
            Some(_) => {}
        }
        for needed in &krate.needs {
            let dep = &workspace.crates[needed];
            if !dep.publishable {
                problems.push(format!(
                    "{name} depends on {needed}, which is `publish = false`"
                ));
                continue;
            }
            let req = krate.requirements.get(needed).map_or("*", String::as_str);
            match semver::VersionReq::parse(req) {
                Ok(parsed) if req != "*" && parsed.matches(&dep.version) => {}
                _ => problems.push(format!(
                    "{name} requires {needed} `{req}`, which does not name its version {} \
                     (give the workspace dependency a `version`)",
                    dep.version
                )),
            }
        }
    }
    problems
}

/// Publishes every crate of the plan in order and tags each once uploaded.
fn publish(workspace: &Workspace, dry_run: bool) -> Result<()> {
    let order = workspace.publish_order()?;
    let problems = metadata_problems(workspace, &order);
    if !problems.is_empty() {
        bail!(
            "not ready to publish (run `cargo xtask release check`):\n  - {}",
            problems.join("\n  - ")
        );
    }
    let tags = release_tags(&workspace.root)?;
    let pending: Vec<&Crate> = order
        .into_iter()
        .filter(|c| tags.get(&c.name).is_none_or(|(v, _)| c.version > *v))
        .collect();
    if pending.is_empty() {
        eprintln!("every publishable crate is already tagged at its manifest version");
        return Ok(());
    }
    if !dry_run {
        let dirty = git(&workspace.root, &["status", "--porcelain"])?;
        if !dirty.trim().is_empty() {
            bail!("the working tree has uncommitted changes; commit the release first");
        }
    }
    step(if dry_run {
        "cargo publish --dry-run"
    } else {
        "cargo publish"
    });
    let mut command = Command::new(cargo_program());
    command.args(["publish", "--locked"]);
    for krate in &pending {
        command.args(["--package", &krate.name]);
    }
    if dry_run {
        command.arg("--dry-run");
    }
    run(command.current_dir(&workspace.root))?;
    for krate in &pending {
        let tag = tag_name(&krate.name, &krate.version);
        if dry_run {
            eprintln!("  would tag {tag}");
        } else {
            let message = format!("{} {}", krate.name, krate.version);
            git(&workspace.root, &["tag", "-a", &tag, "-m", &message])?;
            eprintln!("  tagged {tag}");
        }
    }
    Ok(())
}

/// Sets `version` in the `[package]` table of a crate's manifest (replacing
/// `version.workspace = true` where the crate inherited it).
fn set_package_version(text: &str, version: &Version) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut section = String::new();
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            section = trimmed.to_owned();
        }
        let is_version = trimmed.starts_with("version ") || trimmed.starts_with("version=");
        let inherits = trimmed.starts_with("version.workspace");
        if !done && section == "[package]" && (is_version || inherits) {
            let _ = writeln!(out, "version = \"{version}\"");
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        bail!("the manifest has no `version` in its [package] table");
    }
    Ok(out)
}

/// Sets the `version` requirement of `name` in the root manifest's
/// `[workspace.dependencies]` (one line per Tenon crate).
fn set_workspace_requirement(text: &str, name: &str, version: &Version) -> Result<String> {
    let prefix = format!("{name} = {{");
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.starts_with(&prefix) {
            found = true;
            let Some(start) = line.find("version = \"") else {
                bail!("the workspace dependency `{name}` has no `version` to update");
            };
            let value_start = start + "version = \"".len();
            let value_end = line[value_start..]
                .find('"')
                .map(|i| value_start + i)
                .context("an unterminated version string")?;
            out.push_str(&line[..value_start]);
            out.push_str(&version.to_string());
            out.push_str(&line[value_end..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !found {
        bail!("the root manifest has no workspace dependency `{name}`");
    }
    Ok(out)
}

/// Turns the CHANGELOG's `## [Unreleased]` section into the release's
/// section under `heading`, with a new empty `## [Unreleased]` above it.
fn open_release_section(text: &str, heading: &str) -> Result<String> {
    const UNRELEASED: &str = "## [Unreleased]";
    let at = text
        .find(UNRELEASED)
        .context("the CHANGELOG has no `## [Unreleased]` section")?;
    let mut out = String::with_capacity(text.len() + heading.len() + 2);
    out.push_str(&text[..at]);
    out.push_str(UNRELEASED);
    out.push_str("\n\n");
    out.push_str(heading);
    out.push_str(&text[at + UNRELEASED.len()..]);
    Ok(out)
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .context("could not run git")?;
    if !output.status.success() {
        bail!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).context("git printed something that is not UTF-8")
}

/// Today's date (UTC), `YYYY-MM-DD`, for the CHANGELOG.
fn today() -> Result<String> {
    let output = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .context("could not run `date`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Installs `cargo <command>` from crates.io (package `package`) when it is
/// missing.
fn ensure_cargo_tool(command: &str, package: &str) -> Result<()> {
    let installed = Command::new(cargo_program())
        .args([command, "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if !installed {
        step(&format!("installing {package} from crates.io (once)"));
        run(Command::new(cargo_program()).args(["install", package, "--locked"]))?;
    }
    Ok(())
}

fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn bumps_follow_semver_for_zero_and_stable_versions() {
        let cases = [
            (Bump::Compatible, "0.1.0", "0.1.1"),
            (Bump::Breaking, "0.1.3", "0.2.0"),
            (Bump::Compatible, "1.4.2", "1.5.0"),
            (Bump::Breaking, "1.4.2", "2.0.0"),
            (Bump::None, "1.4.2", "1.4.2"),
            (Bump::Compatible, "0.3.0-rc.1", "0.3.1"),
        ];
        for (bump, last, next) in cases {
            assert_eq!(bump.apply(&v(last)), v(next), "{bump:?} after {last}");
        }
    }

    fn metadata(packages: Value) -> Workspace {
        Workspace::from_metadata(
            Path::new("/r"),
            &serde_json::json!({ "packages": packages }),
        )
        .unwrap()
    }

    fn package(name: &str, publish: bool, deps: &[(&str, &str, &str)]) -> Value {
        let deps: Vec<Value> = deps
            .iter()
            .map(|(n, kind, req)| {
                let kind = if kind.is_empty() {
                    Value::Null
                } else {
                    (*kind).into()
                };
                serde_json::json!({ "name": n, "kind": kind, "req": req })
            })
            .collect();
        serde_json::json!({
            "name": name,
            "version": "0.1.0",
            "manifest_path": format!("/r/crates/{name}/Cargo.toml"),
            "publish": if publish { Value::Null } else { serde_json::json!([]) },
            "dependencies": deps,
            "description": "d", "license": "MIT", "repository": "https://x",
            "readme": "README.md",
        })
    }

    #[test]
    fn publish_order_puts_dependencies_first_and_skips_internal_crates() {
        let ws = metadata(serde_json::json!([
            package(
                "engine",
                true,
                &[("hooks", "", "^0.1.0"), ("sandbox", "", "^0.1.0")]
            ),
            package("sandbox", true, &[("manifest", "", "^0.1.0")]),
            package("hooks", true, &[("tests", "dev", "*")]),
            package("manifest", true, &[]),
            package("tests", false, &[("engine", "", "*")]),
        ]));
        let order: Vec<&str> = ws
            .publish_order()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(order, ["hooks", "manifest", "sandbox", "engine"]);
    }

    #[test]
    fn a_cycle_is_named() {
        let ws = metadata(serde_json::json!([
            package("a", true, &[("b", "", "^0.1.0")]),
            package("b", true, &[("a", "build", "^0.1.0")]),
        ]));
        let err = ws.publish_order().unwrap_err().to_string();
        assert!(err.contains("cycle: a, b"), "{err}");
    }

    #[test]
    fn metadata_problems_name_the_crate_and_the_fix() {
        let mut bad = package("engine", true, &[("hooks", "", "*"), ("tests", "", "*")]);
        bad["description"] = Value::Null;
        let ws = metadata(serde_json::json!([
            bad,
            package("hooks", true, &[]),
            package("tests", false, &[]),
        ]));
        let order = ws.publish_order().unwrap();
        let problems = metadata_problems(&ws, &order);
        assert!(
            problems
                .iter()
                .any(|p| p == "engine: `package.description` is missing")
        );
        assert!(problems.iter().any(|p| p.contains("requires hooks `*`")));
        assert!(
            problems
                .iter()
                .any(|p| p.contains("tests, which is `publish = false`"))
        );
    }

    #[test]
    fn versions_are_written_in_place() {
        let manifest = "[package]\nname = \"a\"\nversion.workspace = true\n\n[dependencies]\nversion = \"x\"\n";
        let written = set_package_version(manifest, &v("0.2.0")).unwrap();
        assert_eq!(
            written,
            "[package]\nname = \"a\"\nversion = \"0.2.0\"\n\n[dependencies]\nversion = \"x\"\n"
        );
        let root = "[workspace.dependencies]\ntenon-a = { path = \"crates/tenon-a\", version = \"0.1.0\" }\ntenon-ab = { path = \"x\", version = \"0.1.0\" }\n";
        let written = set_workspace_requirement(root, "tenon-a", &v("0.2.0")).unwrap();
        assert!(written.contains("tenon-a = { path = \"crates/tenon-a\", version = \"0.2.0\" }"));
        assert!(written.contains("tenon-ab = { path = \"x\", version = \"0.1.0\" }"));
        assert!(set_workspace_requirement(root, "tenon-z", &v("1.0.0")).is_err());
    }

    #[test]
    fn the_unreleased_section_becomes_the_release() {
        let text = "# Changelog\n\n## [Unreleased]\n\n### Added\n- x\n";
        let out = open_release_section(text, "## [a 0.2.0] - 2026-12-07").unwrap();
        assert_eq!(
            out,
            "# Changelog\n\n## [Unreleased]\n\n## [a 0.2.0] - 2026-12-07\n\n### Added\n- x\n"
        );
    }
}
