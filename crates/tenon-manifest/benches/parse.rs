//! Parsing and validating a normal manifest (the example of issue 2), in
//! each format, beside the anchors: the same document read into untyped
//! values by the format's own parser, with no validation at all.

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tenon_manifest::{Format, ValidationContext, parse};

const TOML: &str = include_str!("../tests/fixtures/slack-notifier.toml");
const JSON: &str = include_str!("../tests/fixtures/slack-notifier.json");
const YAML: &str = include_str!("../tests/fixtures/slack-notifier.yaml");

fn parsing(c: &mut Criterion) {
    let context = ValidationContext::default();
    let mut group = c.benchmark_group("slack-notifier");
    for (source, format) in [
        (TOML, Format::Toml),
        (JSON, Format::Json),
        (YAML, Format::Yaml),
    ] {
        assert!(parse(source, format, &context).is_valid());
        group.bench_function(format!("tenon parse+validate {format}"), |b| {
            b.iter(|| parse(black_box(source), format, &context))
        });
    }
    group.bench_function("anchor toml::from_str (untyped, no validation)", |b| {
        b.iter(|| toml::from_str::<toml::Table>(black_box(TOML)).unwrap())
    });
    group.bench_function(
        "anchor serde_json::from_str (untyped, no validation)",
        |b| b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(JSON)).unwrap()),
    );
    group.bench_function("anchor yaml-rust2 load (untyped, no validation)", |b| {
        b.iter(|| yaml_rust2::YamlLoader::load_from_str(black_box(YAML)).unwrap())
    });
    let manifest = parse(TOML, Format::Toml, &context).manifest.unwrap();
    for format in Format::ALL {
        group.bench_function(format!("tenon to_string_in {format}"), |b| {
            b.iter(|| black_box(&manifest).to_string_in(format))
        });
    }
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
