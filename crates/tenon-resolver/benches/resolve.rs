//! Resolution on a generated index of 10,000 plugins with 100,000 versions:
//! a typical request (20 requirements pulling a few hundred plugins) and a
//! conflict (that plan installed and kept with the `manual` strategy, plus
//! one more plugin whose dependencies need other versions of installed
//! ones; explained). Target: under 100 ms each.
//!
//! The index is deterministic (a fixed-seed generator): plugin `i` has ten
//! versions over three majors; each version depends on zero to four plugins
//! further down the list with caret requirements on an existing version, a
//! few are yanked or pre-releases, and the newest major of some plugins
//! needs plugin API 2.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_main};
use tenon_manifest::{PluginId, Version, VersionReq};
use tenon_resolver::{
    Index, IndexDependency, IndexVersion, Options, Request, Requirement, Strategy, resolve,
};

const PLUGINS: usize = 10_000;
const VERSIONS: usize = 10;

/// splitmix64: small, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn id(i: usize) -> PluginId {
    PluginId::new(&format!("gen/p{i:05}")).expect("a valid id")
}

/// The ten versions of every plugin: 1.0.0 … 1.3.0, 2.0.0 … 2.3.x,
/// 3.0.0 and 3.1.0-beta.1.
fn versions() -> Vec<Version> {
    [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.3.0",
        "2.0.0",
        "2.1.0",
        "2.2.0",
        "2.3.1",
        "3.0.0",
        "3.1.0-beta.1",
    ]
    .iter()
    .map(|v| Version::parse(v).expect("a valid version"))
    .collect()
}

fn generate() -> Index {
    let mut rng = Rng(0x7e40);
    let versions = versions();
    assert_eq!(versions.len(), VERSIONS);
    let mut index = Index::new();
    for i in 0..PLUGINS {
        for (k, version) in versions.iter().enumerate() {
            let mut entry = IndexVersion::default();
            // Dependencies point further down the list, mostly close by, so
            // the graph is layered like a real ecosystem.
            let fan_out = match rng.below(10) {
                0..=2 => 0,
                3..=5 => 1,
                6..=7 => 2,
                8 => 3,
                _ => 4,
            };
            for _ in 0..fan_out {
                let span = if rng.below(4) == 0 { 2_000 } else { 60 };
                let reach = 1 + rng.below(span);
                let j = i + reach;
                if j >= PLUGINS {
                    continue;
                }
                let target = &versions[rng.below(8)];
                let req = VersionReq::parse(&format!("^{}.{}", target.major, target.minor))
                    .expect("a valid requirement");
                let mut dependency = IndexDependency::runtime(req);
                if rng.below(20) == 0 {
                    dependency = dependency.optional();
                }
                entry.dependencies.insert(id(j), dependency);
            }
            if k == 8 && rng.below(3) == 0 {
                entry.engine.tenon = Some(VersionReq::parse("^2").expect("valid"));
            }
            entry.yanked = rng.below(50) == 0;
            index.insert(id(i), version.clone(), entry);
        }
    }
    index
}

fn typical_request() -> Vec<Requirement> {
    (0..20)
        .map(|n| Requirement::new(id(8_000 + n * 97), VersionReq::STAR))
        .collect()
}

fn bench(c: &mut Criterion) {
    let index = generate();
    assert_eq!(index.version_count(), PLUGINS * VERSIONS);

    let typical = Request::new(typical_request());
    let resolution = resolve(&index, &typical).expect("the typical request resolves");
    eprintln!("typical request: {} plugins chosen", resolution.order.len());

    // An operator's conflict: the typical plan is installed and kept
    // (`manual`), and one more plugin is asked for, at one version, whose
    // dependencies need other versions of installed plugins. It is the first
    // such plugin version below the typical roots whose explanation takes at
    // least three steps; the search is deterministic, like the index.
    let installed: BTreeMap<PluginId, Version> = resolution
        .order
        .iter()
        .map(|s| (s.id.clone(), s.version.clone()))
        .collect();
    let all_versions = versions();
    let conflict = (7_000..8_000)
        .rev()
        .flat_map(|i| all_versions.iter().map(move |v| (i, v)))
        .map(|(i, version)| {
            let mut requirements = typical_request();
            let exact = VersionReq::parse(&format!("={version}")).expect("valid");
            requirements.push(Requirement::new(id(i), exact));
            Request {
                requirements,
                installed: installed.clone(),
                options: Options {
                    strategy: Strategy::Manual,
                    ..Options::default()
                },
                ..Request::default()
            }
        })
        .find(|request| {
            resolve(&index, request)
                .err()
                .is_some_and(|e| e.to_string().lines().count() >= 3)
        })
        .expect("a conflicting request");
    let explanation = resolve(&index, &conflict)
        .expect_err("the conflicting request fails")
        .to_string();
    eprintln!(
        "conflict ({}): {} lines of explanation:\n{explanation}",
        conflict.requirements.last().expect("pushed"),
        explanation.lines().count()
    );

    let mut group = c.benchmark_group("resolve_10k_plugins_100k_versions");
    group.bench_function("typical", |b| {
        b.iter(|| resolve(black_box(&index), black_box(&typical)))
    });
    group.bench_function("conflict_explained", |b| {
        b.iter(|| resolve(black_box(&index), black_box(&conflict)))
    });
    group.finish();
}

/// The benchmarks (what `criterion_group!` generates, documented).
pub fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
