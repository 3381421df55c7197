//! `tenon trust add|remove|list` (the operator's trust policy file, edited
//! in place: comments, order and layout are kept) and `tenon verify` (what
//! a package's signatures prove under the policy in force).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;
use tenon_engine::{InstallSource, PackageCheck, PublisherBinding};
use tenon_marketplace::{KeyRotation, PublicKey, TrustLevel, TrustPolicy};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::commands::author::write_atomically;
use crate::commands::plugins::trust_line;
use crate::exit::{CommandResult, Failure};
use crate::output::Output;
use crate::session::{Boot, GlobalArgs};

/// `tenon trust` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Trust a key (as an author for every publisher, for one publisher, as
    /// a marketplace), revoke one, or add a key rotation statement.
    Add(AddArgs),
    /// Take a trusted key out of the policy, wherever it appears (a
    /// revocation stays unless `--revoked` lifts it, and only it).
    Remove(RemoveArgs),
    /// Show the policy in force and the publishers bound to keys.
    List,
}

/// `tenon trust add` arguments.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The public key, base64 (as `tenon keygen` prints it).
    #[arg(required_unless_present = "rotation")]
    key: Option<String>,
    /// Trust the key for this publisher's plugins only (`publisher_keys`);
    /// a publisher bound to another key is bound to this one from its next
    /// package signed by it.
    #[arg(long, value_name = "PUBLISHER", conflicts_with_all = ["marketplace", "revoke"])]
    publisher: Option<String>,
    /// Trust the key's marketplace counter-signatures (`marketplace_keys`).
    #[arg(long, conflicts_with = "revoke")]
    marketplace: bool,
    /// Revoke the key (`revoked_keys`): its signatures are refused.
    #[arg(long)]
    revoke: bool,
    /// The trust level the key confers (`key_levels`): untrusted, partner
    /// (when not named) or internal.
    #[arg(long, value_name = "LEVEL", conflicts_with_all = ["marketplace", "revoke"])]
    level: Option<TrustLevel>,
    /// Add a rotation statement (made by `tenon keygen NEW --rotate-from
    /// OLD`) instead of a key; it is verified first.
    #[arg(long, value_name = "STATEMENT", conflicts_with_all = ["key", "publisher", "marketplace", "revoke", "level"])]
    rotation: Option<PathBuf>,
}

/// `tenon trust remove` arguments.
#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// The public key (base64) or its key id (16 hex digits).
    key: String,
    /// Remove it only from this publisher's keys.
    #[arg(long, value_name = "PUBLISHER", conflicts_with = "revoked")]
    publisher: Option<String>,
    /// Lift the key's revocation (`revoked_keys`), and change nothing else.
    /// Without it, a revoked key stays revoked.
    #[arg(long)]
    revoked: bool,
}

/// `tenon verify` arguments.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A package archive (.tenon, with its signatures in <archive>.sig), or
    /// a plugin directory.
    path: PathBuf,
}

/// Runs a `tenon trust` subcommand.
pub(crate) async fn run(command: TrustCommand, global: &GlobalArgs) -> CommandResult {
    match command {
        TrustCommand::Add(args) => add(args, global),
        TrustCommand::Remove(args) => remove(args, global),
        TrustCommand::List => list(global).await,
    }
}

/// What `trust add` and `trust remove` print in JSON.
#[derive(Serialize)]
struct EditJson {
    file: String,
    key_id: String,
    /// Where the key (or statement) was added or removed, by policy field:
    /// `author_keys`, `publisher_keys.acme`, `key_levels`, `rotations` …
    changed: Vec<String>,
}

/// The policy file as an editable document, and its path.
struct PolicyFile {
    path: PathBuf,
    doc: DocumentMut,
}

impl PolicyFile {
    /// Reads the file to edit (an absent file is an empty policy). A file
    /// that is not a valid policy is not edited.
    fn open(global: &GlobalArgs) -> Result<Self, Failure> {
        let path = global.trust_policy_file()?;
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(Failure::usage(format!(
                    "cannot read the trust policy {}: {e}",
                    path.display()
                )));
            }
        };
        TrustPolicy::from_toml(&text).map_err(|e| {
            Failure::usage(format!("{}: {e}; mend it before editing", path.display()))
        })?;
        let doc = text
            .parse::<DocumentMut>()
            .map_err(|e| Failure::usage(format!("{}: not TOML: {e}", path.display())))?;
        Ok(Self { path, doc })
    }

    /// Checks the edited policy and writes it (through a temporary file
    /// and a rename).
    fn save(&self) -> Result<(), Failure> {
        let text = self.doc.to_string();
        TrustPolicy::from_toml(&text).map_err(|e| {
            Failure::Operation(format!(
                "the edit would leave {} invalid ({e}); nothing was written",
                self.path.display()
            ))
        })?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
        }
        write_atomically(&self.path, text.as_bytes())
    }

    fn invalid(&self, field: &str, what: &str) -> Failure {
        Failure::usage(format!(
            "{}: `{field}` is not {what}; mend it before editing",
            self.path.display()
        ))
    }

    /// The array at `field` of the top-level table (created when absent).
    fn array(&mut self, field: &str) -> Result<&mut Array, Failure> {
        let bad = self.invalid(field, "an array");
        self.doc
            .as_table_mut()
            .entry(field)
            .or_insert(Item::Value(Value::Array(Array::new())))
            .as_array_mut()
            .ok_or(bad)
    }

    /// The table at `field` of the top-level table (created when absent).
    fn table(&mut self, field: &str) -> Result<&mut dyn TableLike, Failure> {
        let bad = self.invalid(field, "a table");
        self.doc
            .as_table_mut()
            .entry(field)
            .or_insert(toml_edit::table())
            .as_table_like_mut()
            .ok_or(bad)
    }
}

/// Whether a policy array entry is the key with id `id`.
fn is_key(value: &Value, id: &str) -> bool {
    value
        .as_str()
        .and_then(|text| text.parse::<PublicKey>().ok())
        .is_some_and(|key| key.key_id().as_str() == id)
}

/// Adds `key` to `array` unless it is there; whether it was added.
fn push_key(array: &mut Array, key: &PublicKey) -> bool {
    if array.iter().any(|v| is_key(v, key.key_id().as_str())) {
        return false;
    }
    array.push(key.to_base64());
    true
}

/// Removes every entry of `array` that is the key `id`; whether any was.
fn drop_key(array: &mut Array, id: &str) -> bool {
    let before = array.len();
    array.retain(|v| !is_key(v, id));
    array.len() != before
}

/// Refuses a publisher name a plugin id could not have.
fn check_publisher(publisher: &str) -> Result<(), Failure> {
    tenon_manifest::PluginId::check_publisher(publisher).map_err(|e| {
        Failure::usage(format!(
            "`--publisher {publisher}` is not a publisher name: {e} (a publisher is the part of a plugin id before `/`)"
        ))
    })
}

fn parse_key(text: &str) -> Result<PublicKey, Failure> {
    text.trim().parse::<PublicKey>().map_err(|e| {
        Failure::usage(format!(
            "`{text}` is not a public key: {e} (give the base64 key `tenon keygen` prints)"
        ))
    })
}

fn add(args: AddArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let mut file = PolicyFile::open(global)?;
    let mut changed = Vec::new();
    let key_id = if let Some(statement) = &args.rotation {
        let bytes = std::fs::read(statement)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", statement.display())))?;
        let rotation = KeyRotation::from_json(&bytes)
            .and_then(|r| r.check().map(|()| r))
            .map_err(|e| Failure::Operation(format!("{}: {e}", statement.display())))?;
        let present = TrustPolicy::from_toml(&file.doc.to_string())
            .map(|p| p.rotations.contains(&rotation))
            .unwrap_or(false);
        if !present {
            push_rotation(&mut file, &rotation)?;
            changed.push("rotations".to_owned());
        }
        rotation.to.key_id().to_string()
    } else {
        let key = parse_key(args.key.as_deref().unwrap_or_default())?;
        let (field, array) = if args.revoke {
            ("revoked_keys".to_owned(), file.array("revoked_keys")?)
        } else if args.marketplace {
            (
                "marketplace_keys".to_owned(),
                file.array("marketplace_keys")?,
            )
        } else if let Some(publisher) = &args.publisher {
            check_publisher(publisher)?;
            let bad = file.invalid(&format!("publisher_keys.{publisher}"), "an array");
            let array = file
                .table("publisher_keys")?
                .entry(publisher)
                .or_insert(Item::Value(Value::Array(Array::new())))
                .as_array_mut()
                .ok_or(bad)?;
            (format!("publisher_keys.{publisher}"), array)
        } else {
            ("author_keys".to_owned(), file.array("author_keys")?)
        };
        if push_key(array, &key) {
            changed.push(field);
        }
        if let Some(level) = args.level {
            // By the whole key: a short key id is not enough to confer a
            // level.
            let levels = file.table("key_levels")?;
            let name = key.to_base64();
            if levels.get(&name).and_then(Item::as_str) != Some(level.as_str()) {
                levels.insert(&name, toml_edit::value(level.as_str()));
                changed.push("key_levels".to_owned());
            }
        }
        key.key_id().to_string()
    };
    if !changed.is_empty() {
        file.save()?;
    }
    report_edit(&output, &file.path, &key_id, changed, "Added", "already in")
}

fn push_rotation(file: &mut PolicyFile, rotation: &KeyRotation) -> Result<(), Failure> {
    let mut fields = vec![
        ("from", rotation.from.to_base64()),
        ("to", rotation.to.to_base64()),
    ];
    if let Some(publisher) = &rotation.publisher {
        fields.push(("publisher", publisher.clone()));
    }
    fields.push(("signature", rotation.signature.clone()));
    let bad = file.invalid("rotations", "an array of tables");
    let item = file
        .doc
        .as_table_mut()
        .entry("rotations")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
    if let Some(tables) = item.as_array_of_tables_mut() {
        let mut table = Table::new();
        for (name, text) in fields {
            table.insert(name, toml_edit::value(text));
        }
        tables.push(table);
    } else if let Some(array) = item.as_array_mut() {
        let mut table = InlineTable::new();
        for (name, text) in fields {
            table.insert(name, Value::from(text));
        }
        array.push(table);
    } else {
        return Err(bad);
    }
    Ok(())
}

fn remove(args: RemoveArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let mut file = PolicyFile::open(global)?;
    let text = args.key.trim();
    let id = match text.parse::<PublicKey>() {
        Ok(key) => key.key_id().to_string(),
        Err(_) if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) => {
            text.to_ascii_lowercase()
        }
        Err(_) => {
            return Err(Failure::usage(format!(
                "`{text}` is neither a public key (base64) nor a key id (16 hex digits)"
            )));
        }
    };
    let id = id.as_str();
    if let Some(publisher) = &args.publisher {
        check_publisher(publisher)?;
    }
    let mut changed = Vec::new();
    let doc = file.doc.as_table_mut();
    if args.revoked {
        if doc
            .get_mut("revoked_keys")
            .and_then(Item::as_array_mut)
            .is_some_and(|array| drop_key(array, id))
        {
            changed.push("revoked_keys".to_owned());
        }
    } else if let Some(publisher) = &args.publisher {
        let removed = doc
            .get_mut("publisher_keys")
            .and_then(Item::as_table_like_mut)
            .and_then(|t| t.get_mut(publisher))
            .and_then(Item::as_array_mut)
            .is_some_and(|array| drop_key(array, id));
        if removed {
            changed.push(format!("publisher_keys.{publisher}"));
        }
    } else {
        // Never `revoked_keys`: removing a trusted key must not un-revoke
        // it (`--revoked` lifts a revocation, explicitly).
        for field in ["author_keys", "marketplace_keys"] {
            if doc
                .get_mut(field)
                .and_then(Item::as_array_mut)
                .is_some_and(|array| drop_key(array, id))
            {
                changed.push(field.to_owned());
            }
        }
        if let Some(publishers) = doc
            .get_mut("publisher_keys")
            .and_then(Item::as_table_like_mut)
        {
            for (publisher, item) in publishers.iter_mut() {
                if item.as_array_mut().is_some_and(|a| drop_key(a, id)) {
                    changed.push(format!("publisher_keys.{}", publisher.get()));
                }
            }
        }
        if let Some(levels) = doc.get_mut("key_levels").and_then(Item::as_table_like_mut) {
            let named: Vec<String> = levels
                .iter()
                .map(|(name, _)| name.to_owned())
                .filter(|name| {
                    name.parse::<PublicKey>()
                        .is_ok_and(|k| k.key_id().as_str() == id)
                })
                .collect();
            for name in &named {
                levels.remove(name);
            }
            if !named.is_empty() {
                changed.push("key_levels".to_owned());
            }
        }
        if remove_rotations(doc, id) {
            changed.push("rotations".to_owned());
        }
    }
    if changed.is_empty() {
        let revoked = TrustPolicy::from_toml(&file.doc.to_string())
            .is_ok_and(|p| p.revoked_keys.iter().any(|k| k.key_id().as_str() == id));
        return Err(Failure::Operation(format!(
            "key {id} is not {}in {}{}{}",
            if args.revoked { "revoked " } else { "" },
            file.path.display(),
            args.publisher
                .map(|p| format!(" for publisher `{p}`"))
                .unwrap_or_default(),
            if revoked && !args.revoked {
                " (it is revoked, and stays so: `tenon trust remove KEY --revoked` lifts the revocation)"
            } else {
                ""
            }
        )));
    }
    file.save()?;
    report_edit(&output, &file.path, id, changed, "Removed", "")
}

/// Removes the rotation statements from or to the key `id`.
fn remove_rotations(doc: &mut Table, id: &str) -> bool {
    let names = |get: &dyn Fn(&str) -> Option<String>| {
        ["from", "to"]
            .iter()
            .filter_map(|field| get(field))
            .any(|text| {
                text.parse::<PublicKey>()
                    .is_ok_and(|k| k.key_id().as_str() == id)
            })
    };
    match doc.get_mut("rotations") {
        Some(Item::ArrayOfTables(tables)) => {
            let before = tables.len();
            tables.retain(|t| !names(&|f| t.get(f).and_then(Item::as_str).map(str::to_owned)));
            tables.len() != before
        }
        Some(Item::Value(Value::Array(array))) => {
            let before = array.len();
            array.retain(|v| {
                !v.as_inline_table().is_some_and(|t| {
                    names(&|f| t.get(f).and_then(Value::as_str).map(str::to_owned))
                })
            });
            array.len() != before
        }
        _ => false,
    }
}

fn report_edit(
    output: &Output,
    path: &Path,
    id: &str,
    changed: Vec<String>,
    verb: &str,
    unchanged: &str,
) -> CommandResult {
    let report = EditJson {
        file: path.display().to_string(),
        key_id: id.to_string(),
        changed,
    };
    if output.is_json() {
        return output.json(&report);
    }
    if report.changed.is_empty() {
        return output.text(&format!(
            "key {} is {unchanged} {} as asked: nothing changed\n",
            report.key_id, report.file
        ));
    }
    output.text(&format!(
        "{} key {} ({}) in {} (comments and layout kept)\n",
        output.good(verb),
        report.key_id,
        report.changed.join(", "),
        report.file
    ))
}

/// One key of the policy, in `trust list`.
#[derive(Serialize)]
struct KeyJson {
    key_id: String,
    public_key: String,
    /// What it is trusted as: `author`, `publisher`, `marketplace`,
    /// `revoked`.
    role: &'static str,
    /// For `publisher` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    publisher: Option<String>,
    /// The level it confers (authors and publishers).
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<TrustLevel>,
}

/// One rotation statement, in `trust list`.
#[derive(Serialize)]
struct RotationJson {
    from: String,
    to: String,
    /// The one publisher the statement speaks for; `null` for every one.
    publisher: Option<String>,
}

/// What `trust list` prints in JSON.
#[derive(Serialize)]
struct ListJson {
    /// The policy file in force, if any.
    file: Option<String>,
    /// Whether `--dev` loosened it.
    dev: bool,
    keys: Vec<KeyJson>,
    rotations: Vec<RotationJson>,
    allow_unsigned: String,
    allow_unsigned_directories: bool,
    unsigned_level: TrustLevel,
    require_marketplace_signature: bool,
    trust_marketplace_countersigned: bool,
    /// The publishers this registry's tenant has bound to keys.
    bindings: Vec<PublisherBinding>,
}

fn keys_of(policy: &TrustPolicy) -> Vec<KeyJson> {
    let entry = |key: &PublicKey, role, publisher: Option<&String>, leveled: bool| KeyJson {
        key_id: key.key_id().to_string(),
        public_key: key.to_base64(),
        role,
        publisher: publisher.cloned(),
        level: leveled.then(|| policy.level_of(key)),
    };
    let mut keys: Vec<KeyJson> = policy
        .author_keys
        .iter()
        .map(|k| entry(k, "author", None, true))
        .collect();
    for (publisher, list) in &policy.publisher_keys {
        keys.extend(
            list.iter()
                .map(|k| entry(k, "publisher", Some(publisher), true)),
        );
    }
    keys.extend(
        policy
            .marketplace_keys
            .iter()
            .map(|k| entry(k, "marketplace", None, false)),
    );
    keys.extend(
        policy
            .revoked_keys
            .iter()
            .map(|k| entry(k, "revoked", None, false)),
    );
    keys
}

async fn list(global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let policy = global.trust()?;
    let file = global.trust_policy_path()?;
    let bindings = global
        .with_engine(Boot::No, async |engine| {
            Ok(engine.publisher_bindings().await?)
        })
        .await?;
    let report = ListJson {
        file: file.map(|p| p.display().to_string()),
        dev: global.dev,
        keys: keys_of(&policy),
        rotations: policy
            .rotations
            .iter()
            .map(|r| RotationJson {
                from: r.from.key_id().to_string(),
                to: r.to.key_id().to_string(),
                publisher: r.publisher.clone(),
            })
            .collect(),
        allow_unsigned: format!("{:?}", policy.allow_unsigned).to_lowercase(),
        allow_unsigned_directories: policy.allow_unsigned_directories,
        unsigned_level: policy.unsigned_level,
        require_marketplace_signature: policy.require_marketplace_signature,
        trust_marketplace_countersigned: policy.trust_marketplace_countersigned,
        bindings,
    };
    if output.is_json() {
        return output.json(&report);
    }
    let mut text = format!(
        "policy: {}{}\n",
        report
            .file
            .as_deref()
            .unwrap_or("none (no key is trusted; unsigned packages and directories are refused)"),
        if report.dev {
            " (loosened by --dev)"
        } else {
            ""
        }
    );
    let mut table = output.table(["KEY ID", "ROLE", "PUBLISHER", "LEVEL"]);
    for key in &report.keys {
        table.add_row(vec![
            output.cell(&key.key_id),
            output.cell(key.role),
            output.cell(key.publisher.as_deref().unwrap_or("any")),
            output.cell(key.level.map_or("-", TrustLevel::as_str)),
        ]);
    }
    if report.keys.is_empty() {
        text.push_str("keys: none\n");
    } else {
        text.push_str(&output.render(&mut table));
        text.push('\n');
    }
    for rotation in &report.rotations {
        text.push_str(&format!(
            "rotation: {} → {}{}\n",
            rotation.from,
            rotation.to,
            rotation
                .publisher
                .as_ref()
                .map(|p| format!(" (for publisher `{p}` only)"))
                .unwrap_or_default()
        ));
    }
    text.push_str(&format!(
        "unsigned packages: {}; plugin directories: {}; unsigned level: {}\n",
        report.allow_unsigned,
        if report.allow_unsigned_directories {
            "allowed (development switch)"
        } else {
            "refused"
        },
        report.unsigned_level
    ));
    if report.require_marketplace_signature || report.trust_marketplace_countersigned {
        text.push_str(&format!(
            "marketplace counter-signature: {}{}\n",
            if report.require_marketplace_signature {
                "required"
            } else {
                "optional"
            },
            if report.trust_marketplace_countersigned {
                ", vouches for its authors"
            } else {
                ""
            }
        ));
    }
    if report.bindings.is_empty() {
        text.push_str("bound publishers: none\n");
    }
    for binding in &report.bindings {
        text.push_str(&format!(
            "bound publisher: {} → key {} ({}, {})\n",
            binding.publisher, binding.key_id, binding.bound_by, binding.bound_at
        ));
    }
    output.text(&text)
}

/// What `tenon verify` prints in JSON.
#[derive(Serialize)]
struct VerifyJson {
    path: String,
    /// Whether installing (or upgrading to) it would pass the trust checks.
    accepted: bool,
    /// Why not, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    #[serde(flatten)]
    check: Option<PackageCheck>,
}

/// Runs `tenon verify`.
pub(crate) async fn verify(args: VerifyArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    if !args.path.exists() {
        return Err(Failure::usage(format!(
            "cannot read {}: no such file or directory",
            args.path.display()
        )));
    }
    let source = InstallSource::path(&args.path);
    let checked = global
        .with_engine(Boot::No, async |engine| {
            Ok(engine.check_package(source).await)
        })
        .await?;
    let (check, refused) = match checked {
        Ok(check) => (Some(check), None),
        Err(error) if error.is_refusal() => (None, Some(error.to_string())),
        Err(error) => return Err(error.into()),
    };
    let report = VerifyJson {
        path: args.path.display().to_string(),
        accepted: refused.is_none(),
        refused,
        check,
    };
    let failed = || Failure::Operation(String::new());
    if output.is_json() {
        output.json(&report)?;
        return if report.accepted {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let Some(check) = &report.check else {
        return Err(Failure::Operation(format!(
            "{} would be refused: {}",
            report.path,
            report.refused.unwrap_or_default()
        )));
    };
    let mut text = format!(
        "{} {} {} ({})\n",
        output.good("Verified"),
        output.bold(check.id.as_str()),
        check.version,
        report.path
    );
    text.push_str(&format!("  trust: {}\n", trust_line(Some(&check.trust))));
    if let Some(sha) = &check.trust.sha256 {
        text.push_str(&format!("  sha256: {sha}\n"));
    }
    let publisher = check.id.publisher();
    let binding = match (&check.binding, &check.would_bind) {
        (Some(b), None) => format!(
            "bound to key {} ({}); this package fits",
            b.key_id, b.bound_by
        ),
        (Some(b), Some((key, how))) => format!(
            "bound to key {} ({}); installing this moves it to key {key} ({how})",
            b.key_id, b.bound_by
        ),
        (None, Some((key, how))) => {
            format!("not bound; installing this binds it to key {key} ({how})")
        }
        (None, None) => "not bound (unsigned packages bind no key)".to_owned(),
    };
    text.push_str(&format!("  publisher {publisher}: {binding}\n"));
    text.push_str(&format!(
        "  installed: {}\n",
        check
            .installed
            .as_ref()
            .map_or("no".to_owned(), |v| format!(
                "{v} (this would be an upgrade)"
            ))
    ));
    output.text(&text)
}
