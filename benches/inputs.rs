//! Parsing speed of the input formats (requirement strings, Pipfile,
//! requirements files with includes).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::input::pipfile::Pipfile;
use thoth_rs::input::requirements::RequirementsFile;
use thoth_rs::python::parse_requirement;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inputs")
}

fn bench_inputs(c: &mut Criterion) {
    c.bench_function("parse_requirement", |b| {
        b.iter(|| {
            parse_requirement(black_box(
                "requests[security,socks] >=2.8.1, ==2.8.* ; python_version > \"3.8\" and sys_platform == 'linux'",
            ))
            .unwrap()
        });
    });
    let pipfile = std::fs::read_to_string(fixtures().join("Pipfile")).unwrap();
    c.bench_function("parse_pipfile", |b| {
        b.iter(|| Pipfile::parse(Path::new("Pipfile"), black_box(&pipfile)).unwrap());
    });
    let requirements = fixtures().join("requirements/requirements.in");
    c.bench_function("read_requirements_with_includes", |b| {
        b.iter(|| RequirementsFile::from_path(black_box(&requirements)).unwrap());
    });
}

criterion_group!(benches, bench_inputs);
criterion_main!(benches);
