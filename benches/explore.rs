//! Complete candidate stacks evaluated per second in `stable` mode: the
//! TensorFlow set (tensorflow, numpy, matplotlib, boto3 — 44 packages) and
//! the web set (18 packages) explored by temporal-difference learning with
//! our prescriptions and the advisory penalty step, on a warm snapshot.
//! `run` is one exploration of 200 stacks from scratch (the projects'
//! views for the target are built first, as in one `advise` run);
//! `steady` reuses the views, so it measures the episodes alone.
//! Criterion reports the throughput in stacks (elements) per second.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use thoth_rs::advise::{Run, candidate_query, explore_in, explore_roots};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::KnowledgeBase;
use thoth_rs::kb::bundled;
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::policy::{PredictorKind, RecommendationType};
use thoth_rs::predict::{self, PredictorOptions};
use thoth_rs::resolve::security::Security;
use thoth_rs::resolve::{Budget, RootRequirement, SearchRules, Universe};

const EPISODES: u64 = 200;

const SETS: &[(&str, &[&str])] = &[
    (
        "tensorflow_44",
        &["tensorflow", "numpy", "matplotlib", "boto3"],
    ),
    (
        "web_18",
        &[
            "flask>=2.2",
            "flask-sqlalchemy",
            "gunicorn>=20.1",
            "requests[socks]>=2.28",
            "python-dotenv",
        ],
    ),
];

fn bench_explore(c: &mut Criterion) {
    let path = bundled::materialise(&std::env::temp_dir().join("thoth-rs-bench")).unwrap();
    let kb = SqliteKb::open(&path).unwrap();
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let prescriptions = thoth_rs::prescription::load_bundled_and(&[]);
    let labels = BTreeMap::new();
    let mut group = c.benchmark_group("explore_stable");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EPISODES));
    // Two stacks asked for: the exploration then runs every episode even
    // when the first stack cannot be beaten (which would end it at once).
    let budget = Budget {
        limit: EPISODES,
        count: 2,
        time: None,
        distinct: None,
        polish: false,
    };
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    let run = Run::adviser(&target, None, RecommendationType::Stable, &labels);
    let rules = || SearchRules {
        index_url: kb.meta().index_url.clone().unwrap_or_default(),
        security: Security::for_run(RecommendationType::Stable, &labels),
        ..SearchRules::default()
    };
    let td = || {
        predict::build(
            PredictorKind::TemporalDifference,
            1,
            &PredictorOptions::default(),
        )
    };
    for (name, set) in SETS {
        let roots = || -> Vec<RootRequirement> {
            set.iter()
                .map(|t| {
                    RootRequirement::from_requirement(
                        &thoth_rs::python::parse_requirement(t).unwrap(),
                        false,
                    )
                })
                .collect()
        };
        group.bench_function(format!("{name}/run"), |b| {
            b.iter(|| {
                let mut predictor = td();
                let found = explore_roots(
                    &kb,
                    &run,
                    roots(),
                    rules(),
                    &prescriptions,
                    predictor.as_mut(),
                    &budget,
                )
                .expect("the set resolves");
                black_box(found.products[0].statistics.accepted)
            })
        });
        let mut universe = Universe::new(
            &kb,
            candidate_query(&env, None).unwrap(),
            env.marker_environment().unwrap(),
        );
        group.bench_function(format!("{name}/steady"), |b| {
            b.iter(|| {
                let mut predictor = td();
                let found = explore_in(
                    &mut universe,
                    &run,
                    roots(),
                    rules(),
                    &prescriptions,
                    predictor.as_mut(),
                    &budget,
                )
                .expect("the set resolves");
                black_box(found.products[0].statistics.accepted)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_explore);
criterion_main!(benches);
