//! Installing and updating from a marketplace: `tenon install ID[@REQ]`
//! (the plan shown, then confirmed) and `tenon update [--check]`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::Args;
use serde::Serialize;
use tenon_engine::{InstallSource, MarketPlan, PlannedPlugin, PluginEngine};
use tenon_manifest::{PluginId, VersionReq};

use super::list_or_none;
use super::plugins::{print_switch, trust_badge};
use crate::exit::{CommandResult, Failure};
use crate::session::{Boot, GlobalArgs};

/// The marketplace to use: `--from URL`, else `TENON_MARKETPLACE`, else the
/// trust policy's `marketplace`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FromArgs {
    /// The marketplace's URL (default: $TENON_MARKETPLACE, else the trust
    /// policy's `marketplace`).
    #[arg(long = "from", env = "TENON_MARKETPLACE", value_name = "URL")]
    pub(crate) url: Option<String>,
}

impl FromArgs {
    /// The flag or the environment's URL, else the one `engine`'s trust
    /// policy names.
    fn url(&self, engine: &PluginEngine) -> Result<String, Failure> {
        engine.marketplace_url(self.url.as_deref()).map_err(|_| {
            Failure::usage(
                "no marketplace given: pass --from URL, set TENON_MARKETPLACE, or set `marketplace = \"https://…\"` in the trust policy",
            )
        })
    }
}

/// `ID` or `ID@REQ` (`acme/hello@^1.2`; a bare version is a caret
/// requirement; no `@` is any version). `None` when `text` is no plugin id.
pub(crate) fn parse_wanted(text: &str) -> Option<Result<(PluginId, VersionReq), Failure>> {
    let (id, req) = text.split_once('@').unwrap_or((text, "*"));
    let id: PluginId = id.parse().ok()?;
    Some(VersionReq::parse(req).map(|req| (id, req)).map_err(|e| {
        Failure::usage(format!(
            "`{req}` in `{text}` is not a version requirement: {e}"
        ))
    }))
}

/// What `tenon install ID` prints in JSON.
#[derive(Serialize)]
struct PlanJson {
    marketplace: String,
    plan: Vec<PlannedPlugin>,
    kept: Vec<String>,
    notes: Vec<String>,
    installed: Vec<String>,
}

fn ask(question: &str) -> Result<bool, Failure> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Runs `tenon install ID[@REQ]`: plans, shows the plan, asks (unless
/// `yes`), installs.
pub(crate) async fn install(
    wanted: (PluginId, VersionReq),
    from: &FromArgs,
    yes: bool,
    global: &GlobalArgs,
) -> CommandResult {
    let output = global.output();
    let (id, req) = wanted;
    global
        .with_engine(Boot::No, async |engine| {
            let url = from.url(engine)?;
            let plan: MarketPlan = {
                let _spinner =
                    output.spinner(&format!("resolving, downloading and verifying {id}"));
                engine.plan_marketplace_install(&url, &id, &req).await?
            };
            let mut json = PlanJson {
                marketplace: plan.url.clone(),
                plan: plan.plugins.clone(),
                kept: plan.kept.iter().map(|(i, v)| format!("{i} {v}")).collect(),
                notes: plan.notes.clone(),
                installed: Vec::new(),
            };
            if !output.is_json() {
                let mut table =
                    output.table(["PLUGIN", "VERSION", "FOR", "TRUST", "SIZE", "PERMISSIONS"]);
                for p in &plan.plugins {
                    table.add_row(vec![
                        output.cell(&p.id),
                        output.cell(&p.version),
                        output.cell(if p.dependency {
                            "dependency"
                        } else {
                            "requested"
                        }),
                        output.cell(trust_badge(Some(&p.trust))),
                        output.number(p.size),
                        output.cell(list_or_none(&p.permissions)),
                    ]);
                }
                let mut text = format!("From {}:\n{}\n", plan.url, output.render(&mut table));
                for kept in &json.kept {
                    text.push_str(&format!("  uses installed {kept}\n"));
                }
                for note in &plan.notes {
                    text.push_str(&format!("  note: {note}\n"));
                }
                eprint!("{text}");
            }
            if !yes {
                if output.is_json() || !std::io::stdin().is_terminal() {
                    return Err(Failure::Operation(
                        "not installed: pass --yes to install without being asked".to_owned(),
                    ));
                }
                if !ask(&format!("Install {} plugin(s)?", plan.plugins.len()))? {
                    return Err(Failure::Operation("not installed".to_owned()));
                }
            }
            let reports = {
                let _spinner = output.spinner("installing");
                engine.install_plan(plan).await?
            };
            json.installed = reports
                .iter()
                .map(|r| format!("{} {}", r.id, r.version))
                .collect();
            if output.is_json() {
                return output.json(&json);
            }
            let mut text = String::new();
            for r in &reports {
                text.push_str(&format!(
                    "{} {} {} ({})\n",
                    output.good("Installed"),
                    output.bold(r.id.as_str()),
                    r.version,
                    output.state(r.state)
                ));
                if !r.granted {
                    text.push_str(&format!(
                        "  {} review them with `tenon info {}`, then `tenon grant {}`\n",
                        output.notice("permissions not granted:"),
                        r.id,
                        r.id
                    ));
                }
            }
            output.text(&text)
        })
        .await
}

/// `tenon update` arguments.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Only list the updates; change nothing.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    from: FromArgs,
    /// Only these plugins (default: every installed plugin the marketplace
    /// lists).
    ids: Vec<String>,
}

/// Runs `tenon update`.
pub(crate) async fn update(args: UpdateArgs, global: &GlobalArgs) -> CommandResult {
    let output = global.output();
    let mut only = Vec::new();
    for text in &args.ids {
        only.push(
            text.parse::<PluginId>()
                .map_err(|e| Failure::usage(format!("`{text}`: {e}")))?,
        );
    }
    global
        .with_engine(Boot::No, async |engine| {
            let url = args.from.url(engine)?;
            let updates = {
                let _spinner = output.spinner("checking for updates");
                engine.marketplace_updates(&url, &only).await?
            };
            if args.check {
                if output.is_json() {
                    return output.json(&serde_json::json!({ "updates": updates }));
                }
                if updates.is_empty() {
                    return output.text("everything is up to date");
                }
                let mut table = output.table(["PLUGIN", "INSTALLED", "AVAILABLE"]);
                for u in &updates {
                    table.add_row(vec![
                        output.cell(&u.id),
                        output.cell(&u.installed),
                        output.cell(&u.available),
                    ]);
                }
                return output.text(&output.render(&mut table));
            }
            for u in &updates {
                let exact = VersionReq::parse(&format!("={}", u.available))
                    .expect("an exact requirement parses");
                let report = engine
                    .upgrade(InstallSource::Marketplace {
                        url: url.clone(),
                        id: u.id.clone(),
                        req: exact,
                    })
                    .await?;
                print_switch(&report, "Upgraded", &output)?;
            }
            if updates.is_empty() && !output.is_json() {
                return output.text("everything is up to date");
            }
            Ok(())
        })
        .await
}
