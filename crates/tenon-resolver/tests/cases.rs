//! Data-driven resolution cases: every `tests/cases/*.json` file holds an
//! index, what is installed, a request, options and the expected result (the
//! load order, the plan and the notes) or the expected explanation, word for
//! word.
//!
//! Set `TENON_BLESS=1` to rewrite the expectations from the actual results
//! (then review the diff).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tenon_manifest::{PluginId, Version};
use tenon_resolver::{
    HostVersions, Index, Options, PLUGIN_API_VERSION, Request, Requirement, Resolution, Strategy,
    resolve,
};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case shows.
    description: String,
    index: Index,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    installed: BTreeMap<PluginId, Version>,
    request: Vec<String>,
    #[serde(default)]
    options: CaseOptions,
    expect: Expect,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strategy: Option<Strategy>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    prerelease: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    prune: bool,
    /// Plugin API versions the host serves (default 1.0.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api: Option<Vec<Version>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<Version>,
}

#[derive(Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
enum Expect {
    /// `"id version"` in load order, `"action id from -> to"`, note messages.
    Ok {
        order: Vec<String>,
        plan: Vec<String>,
        #[serde(default)]
        notes: Vec<String>,
    },
    /// The error's full text.
    Error { error: String },
}

impl Expect {
    fn from_result(result: Result<Resolution, tenon_resolver::ResolveError>) -> Self {
        match result {
            Ok(resolution) => Expect::Ok {
                order: resolution.order.iter().map(ToString::to_string).collect(),
                plan: resolution
                    .plan
                    .iter()
                    .map(|e| {
                        let version = |v: &Option<Version>| {
                            v.as_ref().map(ToString::to_string).unwrap_or_default()
                        };
                        match (&e.from, &e.to) {
                            (Some(from), Some(to)) if from != to => {
                                format!("{} {} {from} -> {to}", e.action, e.id)
                            }
                            (from, None) => format!("{} {} {}", e.action, e.id, version(from)),
                            (_, to) => format!("{} {} {}", e.action, e.id, version(to)),
                        }
                    })
                    .collect(),
                notes: resolution.notes.iter().map(ToString::to_string).collect(),
            },
            Err(error) => Expect::Error {
                error: error.to_string(),
            },
        }
    }
}

fn run(case: &Case) -> Expect {
    let requirements: Vec<Requirement> = case
        .request
        .iter()
        .map(|r| r.parse().unwrap_or_else(|e| panic!("request {r}: {e}")))
        .collect();
    let request = Request {
        requirements,
        installed: case.installed.clone(),
        host: HostVersions {
            api: case
                .options
                .api
                .clone()
                .unwrap_or_else(|| vec![PLUGIN_API_VERSION]),
            host: case.options.host.clone(),
        },
        options: Options {
            strategy: case.options.strategy.unwrap_or_default(),
            prerelease: case.options.prerelease,
            prune: case.options.prune,
        },
    };
    Expect::from_result(resolve(&case.index, &request))
}

/// Runs one case file; returns a failure description.
fn check(path: &Path, bless: bool) -> Option<String> {
    let text = std::fs::read_to_string(path).expect("readable case");
    let mut case: Case = match serde_json::from_str(&text) {
        Ok(case) => case,
        Err(e) => return Some(format!("{}: malformed case: {e}", path.display())),
    };
    let actual = run(&case);
    if actual == case.expect {
        return None;
    }
    if bless {
        case.expect = actual;
        let mut text = serde_json::to_string_pretty(&case).expect("serializable");
        text.push('\n');
        std::fs::write(path, text).expect("writable case");
        return None;
    }
    Some(format!(
        "{} ({}):\n{}",
        path.display(),
        case.description,
        pretty_assertions::Comparison::new(&case.expect, &actual)
    ))
}

#[test]
fn cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 30,
        "expected the case files in {}",
        dir.display()
    );
    let bless = std::env::var_os("TENON_BLESS").is_some();
    let failures: Vec<String> = paths.iter().filter_map(|p| check(p, bless)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n\n")
    );
}
