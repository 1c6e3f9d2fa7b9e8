//! The snapshot shipped with the binary: size, closure and the releases our
//! prescriptions name.

use std::path::PathBuf;

mod common;

use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::{KnowledgeBase, Lookup, bundled};
use thoth_rs::python::parse_version;

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("thoth-cache")
}

#[test]
fn snapshot_info_reports_the_bundled_snapshot() {
    let info = common::json_ok(
        common::thoth()
            .args(["snapshot", "info", "--json"])
            .env("XDG_CACHE_HOME", cache()),
    );
    assert!(info["projects"].as_i64().unwrap() >= 1000, "{info}");
    assert!(info["releases"].as_i64().unwrap() >= 100_000, "{info}");
    assert!(
        info["releases_with_metadata"].as_i64().unwrap() >= 20_000,
        "{info}"
    );
    assert_eq!(
        info["releases_with_metadata"].as_i64().unwrap()
            + info["releases_without_metadata"].as_i64().unwrap(),
        info["releases"].as_i64().unwrap()
    );
    assert_eq!(info["dangling_dependencies"], 0);
    assert!(info["advisories"].as_i64().unwrap() >= 2600);
    assert!(info["affected_releases"].as_i64().unwrap() > 0);
    assert!(info["roots"].as_array().unwrap().len() >= 150);
    assert!(info["cutoff"].as_str().unwrap().starts_with("20"));
    assert!(
        info["advisories_newest"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );
}

/// The bundle covers the most-downloaded projects it was built from
/// (data/top-projects.txt): each is stored with every release the index
/// listed, its newest ones with dependency metadata.
#[test]
fn the_bundle_covers_the_most_downloaded_projects() {
    let path = bundled::materialise(&cache().join("thoth-rs")).unwrap();
    let kb = SqliteKb::open(&path).unwrap();
    let list = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/top-projects.txt"),
    )
    .unwrap();
    let names: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(names.len(), 1000);
    let mut missing = Vec::new();
    for name in names {
        let normal = thoth_rs::python::parse_name(name).unwrap().to_string();
        match kb.project(&normal).unwrap() {
            Lookup::Found(record) => {
                // Its newest final release was read: metadata, or why there is none
                // (a source archive with dynamic dependencies).
                let newest = record
                    .releases
                    .iter()
                    .find(|r| !r.yanked && !r.version.any_prerelease())
                    .or_else(|| record.releases.iter().find(|r| !r.yanked))
                    .unwrap_or(&record.releases[0]);
                assert!(
                    !matches!(newest.dependencies, thoth_rs::kb::Requires::NotFetched),
                    "{name}: newest release {} not read",
                    newest.version
                );
            }
            other => missing.push(format!("{name}: {other:?}")),
        }
    }
    // A few names of the list may have left the index since it was made.
    assert!(missing.len() <= 5, "{missing:?}");
}

#[test]
fn bundled_snapshot_is_closed_and_holds_pinned_releases() {
    let path = bundled::materialise(&cache().join("thoth-rs")).unwrap();
    let kb = SqliteKb::open(&path).unwrap();
    // Every dependency name of every stored release is stored or explained.
    let names: Vec<String> = kb
        .with_connection(|c| {
            let mut s = c.prepare("SELECT DISTINCT name FROM dependencies")?;
            let rows = s.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .unwrap();
    assert!(names.len() > 500);
    for name in &names {
        match kb.project(name).unwrap() {
            Lookup::Found(_) => {}
            Lookup::Unavailable(reason) => assert!(!reason.is_empty(), "{name}"),
            Lookup::Missing => {
                panic!("{name} is referenced but neither stored nor recorded unavailable")
            }
        }
    }
    // Releases that prescriptions name are kept besides the newest 25.
    for (name, version) in [
        ("pillow", "8.3.0"),
        ("tensorflow", "2.1.0"),
        ("flask-openid", "1.3.0"),
        ("setuptools", "57.5.0"),
        ("h5py", "2.10.0"),
        ("urllib3", "1.26.18"),
    ] {
        assert!(
            kb.release(name, &parse_version(version).unwrap())
                .unwrap()
                .is_some(),
            "{name} {version} missing"
        );
    }
    // Releases are newest first and every one has hashes.
    let Lookup::Found(numpy) = kb.project("numpy").unwrap() else {
        panic!("numpy missing")
    };
    assert!(
        numpy
            .releases
            .windows(2)
            .all(|w| w[0].version > w[1].version)
    );
    assert!(numpy.releases.len() >= 20);
    assert!(
        !kb.hashes("numpy", &numpy.releases[0].version)
            .unwrap()
            .is_empty()
    );
}

/// Every project of the bundled snapshot loads the same from its packed
/// record as from the tables, and a damaged record falls back to them.
#[test]
fn packed_records_match_the_tables() {
    let path = bundled::materialise(&cache().join("thoth-rs")).unwrap();
    let packed = SqliteKb::open(&path).unwrap();
    let (names, records): (Vec<String>, i64) = packed
        .with_connection(|c| {
            let mut s = c.prepare("SELECT name FROM projects WHERE status = 'ok' ORDER BY name")?;
            let names = s
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let records = c.query_row("SELECT count(*) FROM project_records", [], |r| r.get(0))?;
            Ok((names, records))
        })
        .unwrap();
    assert!(names.len() >= 400);
    assert_eq!(records, names.len() as i64, "one packed record per project");

    let dir = tempfile::tempdir().unwrap();
    let edit = |file: &str, sql: &str| {
        let copy = dir.path().join(file);
        std::fs::copy(&path, &copy).unwrap();
        rusqlite::Connection::open(&copy)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        SqliteKb::open(&copy).unwrap()
    };
    let tables = edit("tables.sqlite", "DROP TABLE project_records;");
    let damaged = edit(
        "damaged.sqlite",
        "UPDATE project_records SET data = x'01ff' \
         WHERE project_id = (SELECT id FROM projects WHERE name = 'requests');",
    );
    // One byte of flask's record edited (its newest version 3.1.3 made
    // 3.1.9, which the snapshot does not hold): the checksum refuses the
    // record and the tables answer.
    let edited = {
        let copy = dir.path().join("edited.sqlite");
        std::fs::copy(&path, &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let (id, mut blob): (i64, Vec<u8>) = conn
            .query_row(
                "SELECT project_id, data FROM project_records \
                 WHERE project_id = (SELECT id FROM projects WHERE name = 'flask')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let at = blob.windows(5).position(|w| w == b"3.1.3").unwrap();
        blob[at + 4] = b'9';
        conn.execute(
            "UPDATE project_records SET data = ?1 WHERE project_id = ?2",
            rusqlite::params![blob, id],
        )
        .unwrap();
        drop(conn);
        SqliteKb::open(&copy).unwrap()
    };
    let Lookup::Found(flask) = edited.project("flask").unwrap() else {
        panic!("flask is stored")
    };
    assert_eq!(flask.releases[0].version.to_string(), "3.1.3");
    let show = |kb: &SqliteKb, name: &str| match kb.project(name).unwrap() {
        Lookup::Found(record) => format!("{record:?}"),
        other => panic!("{name}: {other:?}"),
    };
    for name in &names {
        let expected = show(&tables, name);
        assert_eq!(show(&packed, name), expected, "{name}");
        assert_eq!(show(&damaged, name), expected, "{name}");
    }
    // Files (digests, URLs) are found through the packed record's row ids.
    let Lookup::Found(requests) = packed.project("requests").unwrap() else {
        panic!("requests is stored")
    };
    for release in &requests.releases {
        let files = packed.files("requests", &release.version).unwrap();
        assert_eq!(files, tables.files("requests", &release.version).unwrap());
        assert_eq!(files.len(), release.distributions.len());
        // A release with metadata can be locked: every file has its digest
        // and URL (the bundle lists the others' files without them).
        if release.dependencies.known().is_some() {
            assert!(files.iter().all(|f| f.sha256.is_some() && f.url.is_some()));
        }
    }
}

/// A damaged copy of the bundled snapshot in the cache (truncated, or
/// changed in place) is unpacked again instead of failing every run.
#[test]
fn a_damaged_unpacked_bundle_repairs_itself() {
    let root = tempfile::tempdir().unwrap();
    let run = || {
        common::thoth()
            .env("THOTH_CACHE_DIR", root.path())
            .args(["advise", "-t", "latest", "-o"])
            .arg(root.path().join("lock"))
            .arg("-C")
            .arg(common::bundled::example("flask-app"))
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let lock = std::fs::read(root.path().join("lock")).unwrap();
    let unpacked = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snapshot-"))
                && p.extension().is_some_and(|e| e == "sqlite")
        })
        .unwrap();
    let size = std::fs::metadata(&unpacked).unwrap().len();
    // Truncated to half.
    std::fs::File::options()
        .write(true)
        .open(&unpacked)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
    let second = run();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(std::fs::read(root.path().join("lock")).unwrap(), lock);
    assert_eq!(std::fs::metadata(&unpacked).unwrap().len(), size);
    // Garbage written over the middle, the size kept.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::options()
            .write(true)
            .open(&unpacked)
            .unwrap();
        f.seek(SeekFrom::Start(size / 3)).unwrap();
        f.write_all(&vec![0xAB; 1 << 20]).unwrap();
    }
    let third = run();
    assert!(
        third.status.success(),
        "{}",
        String::from_utf8_lossy(&third.stderr)
    );
    assert_eq!(std::fs::read(root.path().join("lock")).unwrap(), lock);
}
