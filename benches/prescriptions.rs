//! Compiling the real prescriptions corpus (read from ../shared when present)
//! and our own prescriptions/ directory.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::prescription::load;

fn bench_prescriptions(c: &mut Criterion) {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions");
    c.bench_function("compile_own_prescriptions", |b| {
        b.iter(|| load(std::slice::from_ref(&ours)))
    });
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/thoth-prescriptions-a/prescriptions");
    if corpus.is_dir() {
        let mut group = c.benchmark_group("corpus");
        group.sample_size(10);
        group.bench_function("compile_thoth_corpus_half", |b| {
            b.iter(|| load(std::slice::from_ref(&corpus)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_prescriptions);
criterion_main!(benches);
