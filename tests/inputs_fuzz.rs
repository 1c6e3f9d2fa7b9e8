//! Every parser of a file the user (or an image, or a snapshot) gives
//! thoth-rs, fed mutations of real files: it may refuse, it must not panic,
//! and it must not try to allocate what a damaged length claims.
//!
//! The number of cases per parser is `THOTH_FUZZ_CASES` (256 by default,
//! which CI runs); the README's reliability campaign used a larger number.

mod common;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use thoth_rs::image::rpmdb::{RpmPackage, build_header, parse_header};
use thoth_rs::input::pipfile::Pipfile;
use thoth_rs::input::pipfile_lock::PipfileLock;
use thoth_rs::input::pyproject::PyProject;
use thoth_rs::input::requirements::RequirementsFile;
use thoth_rs::input::thoth_yaml::ThothConfig;
use thoth_rs::kb::packed;

fn cases() -> u32 {
    std::env::var("THOTH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo(rel)).unwrap()
}

/// Tokens that mean something to one of the formats, spliced into text.
const TOKENS: &[&str] = &[
    "-r ",
    "-c ",
    "-e ",
    "--hash=sha256:",
    "\\\n",
    "[",
    "]",
    "{",
    "}",
    "[[",
    "]]",
    "\"",
    "'",
    "\"\"\"",
    "=",
    "==",
    "===",
    "~=",
    "!=",
    ">=",
    "<",
    ",",
    ";",
    "@",
    "#",
    "\n",
    "\r\n",
    "\t",
    "  - ",
    ": ",
    "&a ",
    "*a",
    "<<: ",
    "!!binary ",
    "---\n",
    "...",
    "\u{feff}",
    "\0",
    "é",
    "🐍",
    "python_version",
    "extra ==",
    "sys_platform",
    "(",
    ")",
    "and",
    "or",
    "not in",
    "*",
    ".*",
    "0",
    "-1",
    "99999999999999999999",
    "1e400",
    "true",
    "null",
    "~",
    "|",
    ">",
    "%",
    "file:",
    "git+",
    "..",
    "/",
    "package_name:",
    "version:",
];

/// One mutation of a text.
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the byte at a position.
    Byte(usize, u8),
    /// Insert a token at a position.
    Token(usize, usize),
    /// Delete a range.
    Cut(usize, usize),
    /// Repeat a range in place.
    Repeat(usize, usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Token(a, t)),
        (any::<usize>(), 0usize..64).prop_map(|(a, n)| Edit::Cut(a, n)),
        (any::<usize>(), 1usize..32, 2u8..20).prop_map(|(a, n, k)| Edit::Repeat(a, n, k)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Byte(at, b) => {
                if !bytes.is_empty() {
                    bytes[at % n] = b;
                }
            }
            Edit::Token(at, t) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Edit::Cut(at, len) => {
                let at = at % (bytes.len() + 1);
                let end = (at + len).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Repeat(at, len, times) => {
                let at = at % (bytes.len() + 1);
                let end = (at + len).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                for _ in 0..times {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
        }
    }
    bytes
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..12)
}

/// The real files each text parser starts from.
fn seeds(rels: &[&str]) -> Vec<Vec<u8>> {
    rels.iter().map(|r| read(r)).collect()
}

/// A directory holding the requirements fixtures, so that `-r`/`-c`
/// includes of a mutated file find (or miss) real files.
fn requirements_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(repo("tests/fixtures/inputs/requirements")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        dir
    })
    .path()
}

/// A prescription file of the real corpus when `../shared` is there, else
/// ours.
fn prescription_seeds() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = [
        "prescriptions/web/flask.yaml",
        "prescriptions/packaging/backports.yaml",
        "prescriptions/release-notes/wraps.yaml",
    ]
    .iter()
    .map(|r| (r.to_string(), read(r)))
    .collect();
    for rel in [
        "thoth-prescriptions-a/prescriptions/_security_warnings/tempfile.yaml",
        "thoth-prescriptions-a/prescriptions/_generic/so_python_38_tags.yaml",
        "thoth-prescriptions-a/prescriptions/_indexes/pytorch_cu111.yaml",
    ] {
        if let Some(p) = common::shared_data(rel) {
            out.push((rel.to_string(), std::fs::read(p).unwrap()));
        }
    }
    out
}

/// Packed project records of the bundled snapshot: (name, display, blob).
fn packed_seeds() -> &'static [(String, String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(String, String, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let info = common::json_ok(common::thoth().args(["snapshot", "info", "--json"]));
        let conn = rusqlite::Connection::open_with_flags(
            info["path"].as_str().unwrap(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT p.name, p.display_name, r.data FROM project_records r JOIN projects p ON p.id = r.project_id
                 WHERE p.name IN ('six', 'flask', 'requests', 'numpy', 'urllib3', 'python-dateutil')",
            )
            .unwrap();
        let rows: Vec<(String, String, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(rows.len() >= 5, "{rows:?}");
        rows
    })
}

/// FNV-1a 64 as the packed format's trailer, so that mutated bodies get
/// past the checksum and into the decoder.
fn fnv(data: &[u8]) -> [u8; 8] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_le_bytes()
}

/// A small image layer with the files the analysis reads.
fn layer_seed() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut file = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    };
    file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n");
    file(
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nRequires-Dist: typing; python_version<'3'\n",
    );
    file(
        "usr/lib/python3.11/EXTERNALLY-MANAGED",
        b"[externally-managed]\n",
    );
    file(
        "var/lib/dpkg/status",
        b"Package: python3\nStatus: install ok installed\nVersion: 3.11.2-1\n\n",
    );
    file(".wh.gone", b"");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "usr/bin/python3", "python3.11")
        .unwrap();
    b.into_inner().unwrap()
}

fn docker_archive(layer: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |p: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, p, data).unwrap();
    };
    add(
        "config.json",
        br#"{"architecture":"amd64","config":{"Env":["PATH=/usr/bin"]}}"#,
    );
    add("l0/layer.tar", layer);
    add(
        "manifest.json",
        br#"[{"Config":"config.json","RepoTags":["fuzz:1"],"Layers":["l0/layer.tar"]}]"#,
    );
    b.into_inner().unwrap()
}

/// The C library of this machine when there is one (a real ELF file with
/// version definitions), and the test object built in-process.
fn elf_seeds() -> Vec<Vec<u8>> {
    let mut out = vec![thoth_rs::image::elf::build_test_object(
        "libc.so.6",
        &["GLIBC_2.2.5", "GLIBC_2.17", "GLIBC_2.34"],
    )];
    for p in [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/libc.so.6",
        "/usr/lib64/libc.so.6",
    ] {
        if let Ok(bytes) = std::fs::read(p) {
            out.push(bytes);
            break;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requirements_and_constraints_never_panic(seed in 0usize..4, e in edits()) {
        let names = ["requirements.in", "base.txt", "common.txt", "constraints.txt"];
        let dir = requirements_dir();
        let bytes = apply(std::fs::read(dir.join(names[seed])).unwrap(), &e);
        // Beside the fixtures, so includes resolve; a unique name per case.
        let path = dir.join(format!("case-{}.txt", std::process::id()));
        let _ = RequirementsFile::parse(&path, &text(&bytes));
        std::fs::write(&path, &bytes).unwrap();
        let _ = RequirementsFile::from_path(&path);
        let _ = thoth_rs::input::constraints::read_constraints(&path);
    }

    #[test]
    fn pipfiles_never_panic(seed in 0usize..5, e in edits()) {
        let seeds = seeds(&[
            "tests/fixtures/inputs/Pipfile",
            "examples/flask-app/Pipfile",
            "tests/fixtures/pipfiles/sections.Pipfile",
            "tests/fixtures/pipfiles/non-ascii.Pipfile",
            "tests/fixtures/pipfiles/basic.Pipfile",
        ]);
        let _ = Pipfile::parse(Path::new("Pipfile"), &text(&apply(seeds[seed].clone(), &e)));
    }

    #[test]
    fn pyprojects_never_panic(seed in 0usize..2, e in edits()) {
        let seeds = seeds(&["tests/fixtures/inputs/pyproject.toml", "examples/ml-service/pyproject.toml"]);
        let _ = PyProject::parse(Path::new("pyproject.toml"), &text(&apply(seeds[seed].clone(), &e)));
    }

    #[test]
    fn thoth_yaml_never_panics(seed in 0usize..3, e in edits()) {
        let seeds = seeds(&[
            "tests/fixtures/inputs/thoth.yaml",
            "examples/data-science/.thoth.yaml",
            "examples/flask-app/.thoth.yaml",
        ]);
        let _ = ThothConfig::parse(Path::new(".thoth.yaml"), &text(&apply(seeds[seed].clone(), &e)));
    }

    #[test]
    fn pipfile_locks_never_panic(e in edits()) {
        let seed = read("tests/fixtures/inputs/Pipfile.lock");
        let _ = PipfileLock::parse(Path::new("Pipfile.lock"), &text(&apply(seed, &e)));
    }

    #[test]
    fn prescription_files_never_panic(seed in 0usize..6, e in edits()) {
        let seeds = prescription_seeds();
        let (name, bytes) = &seeds[seed % seeds.len()];
        let _ = thoth_rs::prescription::parse_file(Path::new(name), &text(&apply(bytes.clone(), &e)), "fuzz");
    }

    #[test]
    fn packed_records_never_panic(seed in 0usize..6, e in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), old in any::<bool>()) {
        let seeds = packed_seeds();
        let (name, display, blob) = &seeds[seed % seeds.len()];
        let mut body = blob[..blob.len() - 8].to_vec();
        for &(at, b) in &e {
            let n = body.len();
            body[at % n] = b;
        }
        let data = if old {
            body[0] = packed::FORMAT_1;
            body
        } else {
            let sum = fnv(&body);
            body.extend_from_slice(&sum);
            body
        };
        if let Some((_, record)) = packed::decode(&data, name, display.clone()) {
            // A page of what was decoded, mutated the same way.
            let mut page = packed::encode_page(&record);
            for &(at, b) in &e {
                let n = page.len();
                page[at % n] = b;
            }
            let _ = packed::decode_page(&page, name, None);
            if let Some(r) = record.releases.first() {
                let _ = packed::decode_release_files(&page, &r.version);
            }
        }
        let _ = packed::decode_metadata(&data[1..]);
    }

    #[test]
    fn rpm_headers_never_panic(e in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16), keep in 0usize..2048) {
        let mut blob = build_header(&RpmPackage {
            name: "python3-requests".into(),
            epoch: Some("1".into()),
            version: "2.25.1".into(),
            release: "1.el9".into(),
            arch: Some("noarch".into()),
            src: Some("python-requests-2.25.1-1.el9.src.rpm".into()),
            python_metadata: vec!["/usr/lib/python3.9/site-packages/requests-2.25.1-py3.9.egg-info".into()],
        });
        for &(at, b) in &e {
            let n = blob.len();
            blob[at % n] = b;
        }
        blob.truncate(keep.max(1));
        let _ = parse_header(&blob);
    }

    #[test]
    fn elf_readers_never_panic(seed in 0usize..2, e in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16)) {
        let seeds = elf_seeds();
        let mut bytes = seeds[seed % seeds.len()].clone();
        // Most damage that matters is in the headers: aim half the edits there.
        for (i, &(at, b)) in e.iter().enumerate() {
            let n = if i % 2 == 0 { bytes.len().min(256) } else { bytes.len() };
            bytes[at % n] = b;
        }
        let _ = thoth_rs::image::elf::version_definitions(&bytes);
    }

    #[test]
    fn image_layers_never_panic(e in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12), gz in any::<bool>()) {
        let mut layer = layer_seed();
        for &(at, b) in &e {
            let n = layer.len();
            layer[at % n] = b;
        }
        if gz {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&layer).unwrap();
            layer = enc.finish().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("image.tar");
        std::fs::write(&path, docker_archive(&layer)).unwrap();
        let _ = thoth_rs::image::inspect(&path);
    }
}
