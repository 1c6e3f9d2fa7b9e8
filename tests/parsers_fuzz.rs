//! Every parser that reads bytes from an index, fed arbitrary and mutated
//! input: it may refuse, it must not panic. Mutations start from real
//! recorded responses (tests/fixtures/live-index) so the fuzzing reaches
//! deep into the formats, not only their first check.

mod common;

use proptest::prelude::*;
use thoth_rs::index::zipmeta::{self, Window};
use thoth_rs::index::{page, sdist, setup_py};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(common::index::fixtures().join(path)).unwrap()
}

/// `bytes` with `edits` applied: (position, new byte) pairs, positions
/// taken modulo the length; then cut to `keep` bytes from the end when
/// `keep` is shorter.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        let n = bytes.len();
        for &(at, b) in edits {
            bytes[at % n] = b;
        }
    }
    if keep < bytes.len() {
        bytes.drain(..bytes.len() - keep);
    }
    bytes
}

/// Everything a wheel's metadata reader does with a tail window.
fn read_zip(bytes: &[u8], claimed_total: u64) {
    let total = claimed_total.max(bytes.len() as u64);
    let window = Window {
        offset: total - bytes.len() as u64,
        bytes: bytes.to_vec(),
        total,
    };
    if let Ok((offset, size)) = zipmeta::find_central_directory(&window) {
        // The directory, when the window holds it.
        let start = offset.checked_sub(window.offset);
        let end = start.and_then(|s| s.checked_add(size));
        if let (Some(s), Some(e)) = (start, end)
            && e <= bytes.len() as u64
        {
            let directory = &bytes[s as usize..e as usize];
            let _ = zipmeta::entries(directory);
            if let Ok((local, compressed, method)) = zipmeta::find_metadata_entry(directory) {
                let _ = zipmeta::local_data_range(bytes, local, compressed);
                let _ = method;
            }
        }
    }
    let _ = zipmeta::local_data_range(bytes, u64::MAX - claimed_total % 64, claimed_total);
    let _ = zipmeta::metadata_from_bytes(bytes);
    let _ = zipmeta::entries(bytes);
    let _ = zipmeta::decompress(bytes, 8);
    let _ = zipmeta::decompress(bytes, 0);
}

/// Cases per parser: `THOTH_FUZZ_CASES`, 400 by default (what CI runs).
fn cases() -> u32 {
    std::env::var("THOTH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn zip_readers_never_panic_on_a_mutated_wheel(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..24),
        keep in 0usize..20_000,
        claimed in any::<u32>(),
    ) {
        let wheel = fixture("files/six-1.16.0-py2.py3-none-any.whl");
        let bytes = mutate(wheel, &edits, keep);
        read_zip(&bytes, u64::from(claimed));
    }

    #[test]
    fn zip_readers_never_panic_on_noise(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        read_zip(&bytes, bytes.len() as u64);
        // With an end-of-directory signature somewhere inside.
        let mut signed = bytes.clone();
        signed.extend_from_slice(b"PK\x05\x06");
        signed.extend_from_slice(&bytes[..bytes.len().min(18)]);
        read_zip(&signed, signed.len() as u64);
    }

    #[test]
    fn page_parsers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..32),
        keep in 0usize..5_000,
        json in any::<bool>(),
    ) {
        let real = fixture("simple/python-slugify/index.json");
        let bytes = mutate(real, &edits, keep);
        let content_type = if json { Some("application/vnd.pypi.simple.v1+json") } else { Some("text/html") };
        let url = "http://127.0.0.1:1/simple/python-slugify/";
        let _ = page::parse_page(url, &bytes, content_type);
        let _ = page::parse_page(url, &bytes, None);
        let html = String::from_utf8_lossy(&bytes).replace('{', "<a href=\"").replace('}', "\">x</a>");
        let _ = page::parse_page(url, html.as_bytes(), Some("text/html"));
        if let Ok((name, files)) = page::parse_page(url, &bytes, None) {
            let _ = page::to_record("python-slugify", name, files, None);
        }
    }

    #[test]
    fn source_archive_readers_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        keep in 0usize..4_000,
    ) {
        let real = fixture("files/python-slugify-4.0.1.tar.gz");
        let bytes = mutate(real, &edits, keep);
        let decoder = flate2::read::GzDecoder::new(&bytes[..]);
        if let Ok(files) = sdist::scan_tar(decoder) {
            let _ = sdist::metadata_from(&files);
        }
        let _ = sdist::scan_tar(&bytes[..]);
    }

    #[test]
    fn text_metadata_readers_never_panic(text in "(?s).{0,600}") {
        let _ = thoth_rs::kb::metadata::parse_metadata(&text);
        let _ = sdist::parse_requires_txt(&text);
        let _ = setup_py::read(&text);
        let _ = setup_py::read_cfg(&text);
    }

    #[test]
    fn setup_py_reader_never_panics_on_mutated_sources(
        edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 0..12),
    ) {
        let source = "from setuptools import setup\nREQS = ['six>=1.10', \"idna\"]\nsetup(name='demo', version='1.0', install_requires=REQS + ['text-unidecode'], extras_require={'x': ['a; python_version<\"3\"']}, python_requires='>=3.7')\n";
        let bytes = mutate(source.as_bytes().to_vec(), &edits, usize::MAX);
        let _ = setup_py::read(&String::from_utf8_lossy(&bytes));
    }
}
