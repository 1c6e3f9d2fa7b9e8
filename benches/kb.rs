//! Knowledge-base queries the resolver makes, on the bundled snapshot:
//! opening it, loading a project's versions (with candidate filtering for a
//! target), and a release's dependencies for given extras.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::tags::{Platform, WheelTarget};
use thoth_rs::kb::{
    CandidateQuery, KnowledgeBase, Lookup, active_dependencies, bundled, candidates,
};
use thoth_rs::python::parse_version;

fn snapshot_path() -> std::path::PathBuf {
    let cache = std::env::temp_dir().join("thoth-rs-bench");
    bundled::materialise(&cache).expect("the bundled snapshot")
}

fn bench_kb(c: &mut Criterion) {
    let path = snapshot_path();
    c.bench_function("kb_open", |b| {
        b.iter(|| SqliteKb::open(black_box(&path)).unwrap())
    });

    let query = CandidateQuery {
        target: WheelTarget {
            python: (3, 11),
            platform: Platform::from_sysconfig("linux-x86_64", (2, 28)),
        },
        python_full_version: parse_version("3.11.0").unwrap(),
        exclude_newer: None,
    };
    let names = [
        "numpy",
        "pandas",
        "requests",
        "urllib3",
        "botocore",
        "django",
        "torch",
        "tensorflow",
    ];
    c.bench_function("kb_versions_cold_8_projects", |b| {
        b.iter(|| {
            let kb = SqliteKb::open(&path).unwrap();
            let mut n = 0;
            for name in names {
                if let Lookup::Found(record) = kb.project(black_box(name)).unwrap() {
                    n += candidates(&record, &query)
                        .iter()
                        .filter(|c| c.rejection.is_none())
                        .count();
                }
            }
            n
        });
    });
    let kb = SqliteKb::open(&path).unwrap();
    c.bench_function("kb_versions_warm", |b| {
        b.iter(|| match kb.project(black_box("pandas")).unwrap() {
            Lookup::Found(record) => candidates(&record, &query).len(),
            _ => 0,
        });
    });
    let env = TargetEnvironment::from_runtime(None, Some("3.11"))
        .marker_environment()
        .unwrap();
    let Lookup::Found(requests) = kb.project("requests").unwrap() else {
        panic!("requests is a root of the bundled snapshot")
    };
    let extras = ["socks".parse().unwrap()];
    c.bench_function("kb_dependencies_with_extras", |b| {
        b.iter(|| active_dependencies(black_box(&requests.releases[0]), &extras, &env).len());
    });
}

criterion_group!(benches, bench_kb);
criterion_main!(benches);
