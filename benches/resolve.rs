//! Resolving real requirement sets from the bundled snapshot in `latest`
//! mode with thoth-rs's own prescriptions: a small web app, a data-science
//! stack and an ML stack. Two cases per set: `cold` opens the snapshot anew
//! for every resolution (what one `advise` run pays), `warm` reuses an open
//! snapshot whose project cache is filled (steady state of a long run).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::advise::{Run, resolve_roots};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::KnowledgeBase;
use thoth_rs::kb::bundled;
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::policy::RecommendationType;
use thoth_rs::prescription::Prescriptions;
use thoth_rs::resolve::{RootRequirement, SearchRules};

const SETS: &[(&str, &[&str])] = &[
    (
        "web",
        &[
            "flask>=2.2",
            "flask-sqlalchemy",
            "gunicorn>=20.1",
            "requests[socks]>=2.28",
            "python-dotenv",
        ],
    ),
    (
        "data_science",
        &[
            "numpy>=1.24",
            "pandas>=2.0",
            "scipy",
            "scikit-learn>=1.3",
            "matplotlib>=3.7",
            "jupyterlab",
            "seaborn",
        ],
    ),
    (
        "ml_torch",
        &[
            "torch>=2.1",
            "transformers>=4.40",
            "fastapi",
            "uvicorn[standard]",
            "pydantic>=2",
        ],
    ),
    (
        "ml_tensorflow",
        &["tensorflow", "numpy", "matplotlib", "boto3"],
    ),
];

fn roots(texts: &[&str]) -> Vec<RootRequirement> {
    texts
        .iter()
        .map(|t| {
            RootRequirement::from_requirement(
                &thoth_rs::python::parse_requirement(t).unwrap(),
                false,
            )
        })
        .collect()
}

fn resolve_once(
    kb: &dyn KnowledgeBase,
    env: &TargetEnvironment,
    p: &Prescriptions,
    set: &[&str],
) -> usize {
    let labels = BTreeMap::new();
    let rules = SearchRules {
        index_url: kb.meta().index_url.clone().unwrap_or_default(),
        ..SearchRules::default()
    };
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    let r = resolve_roots(
        kb,
        &Run::adviser(&target, None, RecommendationType::Latest, &labels),
        roots(set),
        rules,
        p,
    )
    .expect("the set resolves");
    r.packages.len()
}

fn bench_resolve(c: &mut Criterion) {
    let path = bundled::materialise(&std::env::temp_dir().join("thoth-rs-bench")).unwrap();
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let prescriptions = thoth_rs::prescription::load_bundled_and(&[]);
    let mut group = c.benchmark_group("resolve_latest");
    group.sample_size(20);
    for (name, set) in SETS {
        group.bench_function(format!("{name}/cold"), |b| {
            b.iter(|| {
                let kb = SqliteKb::open(&path).unwrap();
                black_box(resolve_once(&kb, &env, &prescriptions, set))
            })
        });
        let kb = SqliteKb::open(&path).unwrap();
        group.bench_function(format!("{name}/warm"), |b| {
            b.iter(|| black_box(resolve_once(&kb, &env, &prescriptions, set)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_resolve);
criterion_main!(benches);
