//! Compiling the real prescriptions corpus (read from ../shared when present)
//! and our own prescriptions/ directory.
//!
//! `corpus/load_thoth_corpus_half` is what every run with `--prescriptions
//! <corpus>` pays once the corpus has been compiled: one stat per directory
//! and per file, and reading the compiled cache (every unit's name, kind,
//! file and should_include, and the routing; a unit's `match` and `run` are
//! decoded when a run first consults it).
//! `corpus/load_thoth_corpus_half_every_body` also decodes every body, more
//! than any run needs. Compiling from YAML (the first run, or after any
//! change) takes tens of seconds here; it is benchmarked only with
//! `THOTH_BENCH_FRESH=1`.

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use thoth_rs::prescription::{load, load_fresh, parse_file};

/// Every prescription file under `dir` with its text, in sorted order.
fn read_tree(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(read_tree(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && !path.ends_with("_prescription_metadata.yaml")
        {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path, text));
        }
    }
    out
}

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
        // The commands keep their prescriptions until the process exits
        // (nothing frees them), so freeing is not part of the measurement.
        group.bench_function("load_thoth_corpus_half", |b| {
            b.iter_with_large_drop(|| load(std::slice::from_ref(&corpus)))
        });
        group.bench_function("load_thoth_corpus_half_every_body", |b| {
            b.iter_with_large_drop(|| {
                let rx = load(std::slice::from_ref(&corpus));
                assert!(rx.units.iter().all(|u| u.usable()));
                rx
            })
        });
        // The compiling itself (YAML parsing, merge keys, validation) of every
        // file, read into memory beforehand, on as many threads as
        // `prescriptions check` uses: what a first run costs beyond the file
        // system.
        let texts = read_tree(&corpus);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        group.bench_function("parse_thoth_corpus_half_in_memory", |b| {
            b.iter_with_large_drop(|| {
                std::thread::scope(|scope| {
                    let handles: Vec<_> = texts
                        .chunks(texts.len().div_ceil(threads))
                        .map(|part| {
                            scope.spawn(move || {
                                part.iter()
                                    .map(|(path, text)| parse_file(path, text, "thoth").0.len())
                                    .sum::<usize>()
                            })
                        })
                        .collect();
                    let units: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
                    assert_eq!(units, warm.units.len());
                })
            })
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
