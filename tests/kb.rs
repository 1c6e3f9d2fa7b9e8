//! Knowledge-base queries, answered identically by the in-memory and the
//! SQLite implementations, and the OSV mapping on the PyPA advisory database.

use std::sync::Arc;

use thoth_rs::kb::memory::MemoryKb;
use thoth_rs::kb::metadata::dependency_from_requirement;
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::tags::{Platform, WheelTarget};
use thoth_rs::kb::{
    Advisory, CandidateQuery, Distribution, KnowledgeBase, Lookup, ProjectRecord, Rejection,
    Release, Requires, SnapshotMeta, active_dependencies, candidates,
};
use thoth_rs::python::{ExtraName, parse_version};

fn dist(filename: &str, time: &str, rp: Option<&str>) -> Distribution {
    Distribution {
        filename: filename.into(),
        sha256: Some(format!("{:064x}", filename.len() * 7919 + time.len())),
        size: Some(1000),
        upload_time: Some(time.into()),
        requires_python: rp.map(str::to_string),
        yanked: false,
        url: Some(format!("http://127.0.0.1:9/files/{filename}")),
    }
}

fn release(version: &str, time: &str, deps: &[&str], dists: Vec<Distribution>) -> Release {
    Release {
        version: parse_version(version).unwrap(),
        upload_time: Some(time.into()),
        yanked: false,
        yanked_reason: None,
        requires_python: None,
        distributions: dists,
        dependencies: Requires::Known(Arc::new(
            deps.iter()
                .map(|d| dependency_from_requirement(d).unwrap())
                .collect(),
        )),
        provides_extras: Vec::new(),
        advisories: Vec::new(),
    }
}

/// A small universe modelled on real projects.
fn universe() -> MemoryKb {
    let mut kb = MemoryKb {
        meta: SnapshotMeta {
            schema_version: 1,
            cutoff: Some("2024-06-01T00:00:00Z".into()),
            roots: vec!["requests".into()],
            ..SnapshotMeta::default()
        },
        ..MemoryKb::default()
    };
    let mut r2320 = release(
        "2.32.0",
        "2024-05-20T15:00:00Z",
        &[
            "charset-normalizer<4,>=2",
            "idna<4,>=2.5",
            "urllib3<3,>=1.21.1",
            "certifi>=2017.4.17",
            "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
        ],
        vec![dist(
            "requests-2.32.0-py3-none-any.whl",
            "2024-05-20T15:00:00Z",
            Some(">=3.8"),
        )],
    );
    r2320.yanked = true;
    r2320.yanked_reason = Some("conflicts with CVE fix".into());
    r2320.provides_extras = vec!["socks".into()];
    let mut r2313 = release(
        "2.31.0",
        "2023-05-22T15:12:44Z",
        &[
            "charset-normalizer<4,>=2",
            "idna<4,>=2.5",
            "urllib3<3,>=1.21.1",
            "certifi>=2017.4.17",
            "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
        ],
        vec![
            dist(
                "requests-2.31.0-py3-none-any.whl",
                "2023-05-22T15:12:44Z",
                Some(">=3.7"),
            ),
            dist(
                "requests-2.31.0.tar.gz",
                "2023-05-22T15:12:46Z",
                Some(">=3.7"),
            ),
        ],
    );
    r2313.provides_extras = vec!["socks".into()];
    r2313.advisories = vec!["PYSEC-2023-999".into()];
    let r2330 = release(
        "2.33.0",
        "2024-08-01T00:00:00Z",
        &["urllib3>=2"],
        vec![dist(
            "requests-2.33.0-py3-none-any.whl",
            "2024-08-01T00:00:00Z",
            Some(">=3.8"),
        )],
    );
    kb.insert(ProjectRecord {
        name: "requests".into(),
        display_name: "requests".into(),
        releases: vec![r2313, r2320, r2330],
        index: None,
    });

    let np2 = release(
        "2.0.0",
        "2024-06-16T00:00:00Z",
        &[],
        vec![dist(
            "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "2024-06-16T00:00:00Z",
            Some(">=3.9"),
        )],
    );
    let np126 = release(
        "1.26.4",
        "2024-02-05T00:00:00Z",
        &[],
        vec![
            dist(
                "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "2024-02-05T00:00:00Z",
                Some(">=3.9"),
            ),
            dist(
                "numpy-1.26.4-cp311-cp311-win_amd64.whl",
                "2024-02-05T00:00:00Z",
                Some(">=3.9"),
            ),
        ],
    );
    let mut np119 = release(
        "1.19.5",
        "2021-01-05T00:00:00Z",
        &[],
        vec![dist(
            "numpy-1.19.5-cp38-cp38-manylinux2010_x86_64.whl",
            "2021-01-05T00:00:00Z",
            Some(">=3.6"),
        )],
    );
    np119.requires_python = Some(">=3.6,<3.10".into());
    let mut no_meta = release(
        "1.0.0",
        "2010-01-01T00:00:00Z",
        &[],
        vec![dist(
            "numpy-1.0.0-py3-none-any.whl",
            "2010-01-01T00:00:00Z",
            None,
        )],
    );
    no_meta.dependencies = Requires::Unavailable(Arc::from("unreadable in this test"));
    kb.insert(ProjectRecord {
        name: "numpy".into(),
        display_name: "numpy".into(),
        releases: vec![np119, np2, np126, no_meta],
        index: None,
    });
    kb.mark_unavailable(
        "pysocks",
        "not synced: only needed by extra `socks` of requests, which nothing requests",
    );
    kb.advisories.insert(
        "PYSEC-2023-999".into(),
        Advisory {
            id: "PYSEC-2023-999".into(),
            project: "requests".into(),
            aliases: vec!["CVE-2023-32681".into()],
            summary: Some("Proxy-Authorization header leak".into()),
            published: Some("2023-05-26T18:15:00Z".into()),
            withdrawn: None,
            link: Some("http://127.0.0.1/advisory".into()),
            fixed_in: vec!["2.32.0".into()],
        },
    );
    kb
}

fn query(python: &str, platform: &str, cutoff: Option<&str>) -> CandidateQuery {
    let mut parts = python.split('.').map(|p| p.parse::<u16>().unwrap());
    CandidateQuery {
        target: WheelTarget {
            python: (parts.next().unwrap(), parts.next().unwrap()),
            platform: Platform::from_sysconfig(platform, (2, 28)),
        },
        python_full_version: parse_version(python).unwrap(),
        exclude_newer: cutoff.map(str::to_string),
    }
}

fn check_queries(kb: &dyn KnowledgeBase) {
    let Lookup::Found(requests) = kb.project("requests").unwrap() else {
        panic!("requests missing")
    };
    let versions: Vec<String> = requests
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(
        versions,
        ["2.33.0", "2.32.0", "2.31.0"],
        "newest first by PEP 440"
    );

    let cands = candidates(
        &requests,
        &query("3.11.4", "linux-x86_64", Some("2024-06-01T00:00:00Z")),
    );
    assert!(matches!(cands[0].rejection, Some(Rejection::TooNew(_))));
    assert_eq!(
        cands[1].rejection,
        Some(Rejection::Yanked(Some("conflicts with CVE fix".into())))
    );
    assert_eq!(cands[2].rejection, None);

    let Lookup::Found(numpy) = kb.project("numpy").unwrap() else {
        panic!("numpy missing")
    };
    let ok = |q: &CandidateQuery| -> Vec<String> {
        candidates(&numpy, q)
            .iter()
            .filter(|c| c.rejection.is_none())
            .map(|c| c.release.version.to_string())
            .collect()
    };
    assert_eq!(
        ok(&query("3.11.4", "linux-x86_64", None)),
        ["1.26.4"],
        "2.0.0 has only cp312 wheels; 1.19.5 needs <3.10"
    );
    assert_eq!(ok(&query("3.12.1", "linux-x86_64", None)), ["2.0.0"]);
    assert_eq!(ok(&query("3.8.10", "linux-x86_64", None)), ["1.19.5"]);
    assert_eq!(ok(&query("3.11.4", "win-amd64", None)), ["1.26.4"]);
    assert!(ok(&query("3.11.4", "linux-aarch64", None)).is_empty());
    let reasons: Vec<Option<Rejection>> =
        candidates(&numpy, &query("3.11.4", "linux-x86_64", None))
            .into_iter()
            .map(|c| c.rejection)
            .collect();
    assert_eq!(reasons[0], Some(Rejection::NoCompatibleFile));
    assert_eq!(
        reasons[2],
        Some(Rejection::RequiresPython(">=3.6,<3.10".into()))
    );
    // A release stored without metadata is unusable, whichever store says so.
    assert!(
        matches!(&reasons[3], Some(Rejection::NoMetadata(_))),
        "{:?}",
        reasons[3]
    );

    // Dependencies for given extras.
    let env = thoth_rs::environment::TargetEnvironment::from_runtime(None, Some("3.11"))
        .marker_environment()
        .unwrap();
    let r231 = requests
        .releases
        .iter()
        .find(|r| r.version == parse_version("2.31.0").unwrap())
        .unwrap();
    let names = |extras: &[ExtraName]| -> Vec<String> {
        active_dependencies(r231, extras, &env)
            .iter()
            .map(|d| d.name.clone())
            .collect()
    };
    assert_eq!(
        names(&[]),
        ["charset-normalizer", "idna", "urllib3", "certifi"]
    );
    assert_eq!(
        names(&["socks".parse().unwrap()])
            .last()
            .map(String::as_str),
        Some("pysocks")
    );

    // Hashes and advisories.
    let hashes = kb
        .hashes("requests", &parse_version("2.31.0").unwrap())
        .unwrap();
    assert_eq!(hashes.len(), 2);
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("sha256:") && h.len() == 71)
    );
    let advisories = kb
        .advisories_of("requests", &parse_version("2.31.0").unwrap())
        .unwrap();
    assert_eq!(advisories.len(), 1);
    assert_eq!(advisories[0].aliases, ["CVE-2023-32681"]);
    assert_eq!(advisories[0].fixed_in, ["2.32.0"]);
    assert!(
        kb.advisories_of("requests", &parse_version("2.33.0").unwrap())
            .unwrap()
            .is_empty()
    );

    assert!(
        matches!(kb.project("pysocks").unwrap(), Lookup::Unavailable(reason) if reason.contains("extra `socks`"))
    );
    assert!(matches!(kb.project("left-pad").unwrap(), Lookup::Missing));
}

#[test]
fn memory_and_sqlite_answer_alike() {
    let memory = universe();
    check_queries(&memory);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb.sqlite");
    memory.write_sqlite(&path).unwrap();
    let sqlite = SqliteKb::open(&path).unwrap();
    assert_eq!(
        sqlite.meta().cutoff.as_deref(),
        Some("2024-06-01T00:00:00Z")
    );
    assert_eq!(sqlite.meta().roots, ["requests"]);
    check_queries(&sqlite);

    // Project records from SQLite carry what resolution needs; digests,
    // sizes and URLs come with `files`, as stored.
    let v = parse_version("2.31.0").unwrap();
    let Lookup::Found(record) = sqlite.project("requests").unwrap() else {
        panic!("requests is stored");
    };
    let light = &record
        .releases
        .iter()
        .find(|r| r.version == v)
        .unwrap()
        .distributions;
    assert!(!light.is_empty());
    assert!(
        light
            .iter()
            .all(|d| d.sha256.is_none() && d.url.is_none() && d.size.is_none())
    );
    let full = sqlite.files("requests", &v).unwrap();
    assert_eq!(full, memory.files("requests", &v).unwrap());
    assert_eq!(
        full.iter().map(|d| d.filename.as_str()).collect::<Vec<_>>(),
        light
            .iter()
            .map(|d| d.filename.as_str())
            .collect::<Vec<_>>()
    );
    assert!(
        full.iter()
            .all(|d| d.sha256.is_some() && d.url.is_some() && d.size == Some(1000))
    );
    assert!(
        sqlite
            .files("requests", &parse_version("9.9").unwrap())
            .unwrap()
            .is_empty()
    );
    assert!(sqlite.files("left-pad", &v).unwrap().is_empty());
}

#[test]
fn upgrade_adds_packed_records_to_an_older_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb.sqlite");
    universe().write_sqlite(&path).unwrap();
    // As the previous layout had it: no packed records, a covering index.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE project_records; DROP INDEX distributions_release; \
             CREATE INDEX distributions_files ON distributions(release_id, filename, upload_time, requires_python, yanked);",
        )
        .unwrap();
    check_queries(&SqliteKb::open(&path).unwrap());
    let packed = thoth_rs::kb::writer::upgrade(&path).unwrap();
    let kb = SqliteKb::open(&path).unwrap();
    let (records, projects, indexes) = kb
        .with_connection(|c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, String>(0));
            Ok((
                one("SELECT count(*) || '' FROM project_records")?,
                one("SELECT count(*) || '' FROM projects WHERE status = 'ok'")?,
                one("SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE name LIKE 'distributions_%' ORDER BY name)")?,
            ))
        })
        .unwrap();
    assert_eq!(records, projects);
    assert_eq!(records, packed.to_string());
    assert_eq!(indexes, "distributions_release");
    check_queries(&kb);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp left"
    );

    // Not a snapshot: an error, and the file is left as it was.
    let other = dir.path().join("notes.sqlite");
    std::fs::write(&other, b"not a database").unwrap();
    assert!(thoth_rs::kb::writer::upgrade(&other).is_err());
    assert_eq!(std::fs::read(&other).unwrap(), b"not a database");
}

#[test]
fn identical_dependency_sets_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb.sqlite");
    universe().write_sqlite(&path).unwrap();
    let kb = SqliteKb::open(&path).unwrap();
    // requests 2.31.0 and 2.32.0 share a set; numpy's empty sets collapse into one.
    let sets = kb
        .with_connection(|c| {
            c.query_row("SELECT count(*) FROM dependency_sets", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .unwrap();
    assert_eq!(sets, 3);
}

#[test]
fn opening_garbage_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb.sqlite");
    std::fs::write(&path, b"not a database at all").unwrap();
    let err = SqliteKb::open(&path).unwrap_err().to_string();
    assert!(err.contains("kb.sqlite"), "{err}");
    assert!(SqliteKb::open(&dir.path().join("missing.sqlite")).is_err());
}

mod common;

fn advisory_db() -> Option<std::path::PathBuf> {
    common::shared_data("pypa-advisory-database")
}

#[test]
fn osv_walk_matches_the_advisory_database() {
    let Some(db) = advisory_db() else { return };
    let loaded = thoth_rs::kb::osv::read_dir(&db.join("vulns")).unwrap();
    assert!(loaded.len() >= 2600, "read {} advisories", loaded.len());
    // For every advisory that lists versions, the range walk alone must agree
    // with the list on the listed versions, except where the list names
    // pre-releases below an `introduced` final (which the union covers).
    let mut checked = 0;
    let mut disagreements = Vec::new();
    for a in &loaded {
        if a.versions.is_empty() || a.ranges.is_empty() || a.advisory.withdrawn.is_some() {
            continue;
        }
        checked += 1;
        let walk_only = |v: &thoth_rs::python::Version| {
            a.ranges.iter().any(|events| {
                thoth_rs::kb::osv::intervals(events)
                    .iter()
                    .any(|i| i.contains(v))
            })
        };
        let missed: Vec<String> = a
            .versions
            .iter()
            .filter(|v| !walk_only(v) && !v.any_prerelease())
            .map(ToString::to_string)
            .collect();
        if !missed.is_empty() {
            disagreements.push(format!("{}: {missed:?}", a.advisory.id));
        }
        assert!(
            a.versions.iter().all(|v| a.affects(v)),
            "{}: the union must hold every listed version",
            a.advisory.id
        );
    }
    assert!(checked > 2000, "only {checked} advisories checked");
    assert!(
        disagreements.len() * 100 <= checked,
        "{} of {checked} disagree: {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );

    // A Django advisory with one range per branch (PYSEC-2023-61).
    let django = loaded
        .iter()
        .find(|a| a.advisory.id == "PYSEC-2023-61")
        .expect("PYSEC-2023-61");
    assert_eq!(django.advisory.project, "django");
    for (v, hit) in [
        ("3.1.14", false),
        ("3.2.18", true),
        ("3.2.19", false),
        ("4.1.8", true),
        ("4.1.9", false),
        ("4.2", true),
        ("4.2.1", false),
        ("3.2rc1", true),
    ] {
        assert_eq!(django.affects(&parse_version(v).unwrap()), hit, "{v}");
    }
}

#[test]
fn import_advisories_maps_onto_stored_releases() {
    let Some(db) = advisory_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kb.sqlite");
    let mut kb = MemoryKb {
        meta: SnapshotMeta {
            schema_version: 1,
            ..SnapshotMeta::default()
        },
        ..MemoryKb::default()
    };
    let releases = ["3.2.18", "3.2.19", "4.1.8", "4.1.9", "4.2.1"]
        .iter()
        .map(|v| {
            release(
                v,
                "2023-01-01T00:00:00Z",
                &[],
                vec![dist(
                    &format!("Django-{v}-py3-none-any.whl"),
                    "2023-01-01T00:00:00Z",
                    None,
                )],
            )
        })
        .collect();
    kb.insert(ProjectRecord {
        name: "django".into(),
        display_name: "Django".into(),
        releases,
        index: None,
    });
    kb.write_sqlite(&path).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thoth-rs"))
        .args(["snapshot", "import-advisories"])
        .arg(db.join("vulns").join("django"))
        .arg("--snapshot")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kb = SqliteKb::open(&path).unwrap();
    let ids = |v: &str| -> Vec<String> {
        kb.advisories_of("django", &parse_version(v).unwrap())
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect()
    };
    assert!(ids("3.2.18").contains(&"PYSEC-2023-61".to_string()));
    assert!(!ids("3.2.19").contains(&"PYSEC-2023-61".to_string()));
    assert!(ids("4.1.8").contains(&"PYSEC-2023-61".to_string()));
    assert!(!ids("4.1.9").contains(&"PYSEC-2023-61".to_string()));
    assert!(!ids("4.2.1").contains(&"PYSEC-2023-61".to_string()));
    // Every stored pair is re-derivable from the advisory's own rules.
    let loaded = thoth_rs::kb::osv::read_dir(&db.join("vulns").join("django")).unwrap();
    for v in ["3.2.18", "3.2.19", "4.1.8", "4.1.9", "4.2.1"] {
        let version = parse_version(v).unwrap();
        let mut expected: Vec<String> = loaded
            .iter()
            .filter(|a| a.affects(&version))
            .map(|a| a.advisory.id.clone())
            .collect();
        let mut got = ids(v);
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{v}");
    }
    assert!(
        kb.meta()
            .advisories_source
            .as_deref()
            .unwrap_or("")
            .contains("advisories")
    );
}

#[test]
fn osv_json_records_are_read_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("GHSA-test-0001.json"),
        r#"{"id": "GHSA-test-0001", "aliases": ["CVE-2099-0001"], "summary": "demo", "affected": [{"package": {"ecosystem": "PyPI", "name": "Requests"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"last_affected": "2.31.0"}]}, {"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]}]}]}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("README.md"), "not an advisory").unwrap();
    let loaded = thoth_rs::kb::osv::read_dir(dir.path()).unwrap();
    assert_eq!(loaded.len(), 1);
    let a = &loaded[0];
    assert_eq!(a.advisory.project, "requests");
    assert_eq!(a.ranges.len(), 1, "GIT ranges are ignored");
    assert!(
        a.affects(&parse_version("2.31.0").unwrap()),
        "last_affected is inclusive"
    );
    assert!(!a.affects(&parse_version("2.31.1").unwrap()));
    assert!(!a.affects(&parse_version("1.9").unwrap()));
}
