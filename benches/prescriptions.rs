//! Compiling the real prescriptions corpus (read from ../shared when present)
//! and our own prescriptions/ directory.
//!
//! `corpus/load_thoth_corpus_half` is what every run with `--prescriptions
//! <corpus>` pays once the corpus has been compiled: the walk, one stat per
//! file, and reading the compiled cache. Compiling from YAML (the first run,
//! or after any change) takes tens of seconds here; it is benchmarked only
//! with `THOTH_BENCH_FRESH=1`.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::prescription::{load, load_fresh};

fn bench_prescriptions(c: &mut Criterion) {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions");
    c.bench_function("compile_own_prescriptions", |b| {
        b.iter(|| load_fresh(std::slice::from_ref(&ours)))
    });
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/thoth-prescriptions-a/prescriptions");
    if corpus.is_dir() {
        let mut group = c.benchmark_group("corpus");
        group.sample_size(10);
        // Fill the cache once, outside the measurement.
        let warm = load(std::slice::from_ref(&corpus));
        assert!(warm.errors.is_empty());
        group.bench_function("load_thoth_corpus_half", |b| {
            b.iter(|| load(std::slice::from_ref(&corpus)))
        });
        if std::env::var_os("THOTH_BENCH_FRESH").is_some() {
            group.bench_function("compile_thoth_corpus_half_fresh", |b| {
                b.iter(|| load_fresh(std::slice::from_ref(&corpus)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_prescriptions);
criterion_main!(benches);
