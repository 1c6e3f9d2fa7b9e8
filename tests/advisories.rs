//! Advisories from any OSV source: an archive of OSV JSON as OSV publishes
//! per ecosystem, directories, several merged with duplicates folded, on a
//! copy of the bundled snapshot; the report states how old they are.

mod common;

use std::path::Path;

use common::{json_ok, thoth};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/osv")
            .join(name),
    )
    .unwrap()
}

/// `advise --json -t security` on `dir` against `snapshot` (the bundled one
/// when `None`): (exit code, report).
fn security(dir: &Path, snapshot: Option<&Path>) -> (Option<i32>, serde_json::Value) {
    let mut cmd = thoth();
    cmd.arg("-C")
        .arg(dir)
        .args(["advise", "--json", "-t", "security", "-o", "out.txt"]);
    if let Some(s) = snapshot {
        cmd.arg("--snapshot").arg(s);
    }
    let out = cmd.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code(), report)
}

fn locked(report: &serde_json::Value, name: &str) -> String {
    report["products"][0]["packages"][name]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{report}"))
        .to_string()
}

fn import(snapshot: &Path, sources: &[&Path]) -> String {
    let out = thoth()
        .args(["snapshot", "import-advisories"])
        .args(sources)
        .arg("--snapshot")
        .arg(snapshot)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    err
}

#[test]
fn an_osv_archive_moves_security_away_from_affected_releases() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("requirements.in"), "jinja2<3.1.5\n").unwrap();

    // The bundled snapshot's advisories (PyPA's database, 2024-10) know
    // nothing of the sandbox breakout fixed in 3.1.5.
    let (code, before) = security(&project, None);
    assert_eq!(code, Some(0), "{before}");
    assert_eq!(locked(&before, "jinja2"), "3.1.4");
    assert_eq!(before["snapshot"]["advisories"]["stale"], true, "{before}");

    // A copy of it, with the PyPA directory (when ../shared is there), an
    // OSV archive holding GHSA-gmj6-6f8f-6699, and a directory holding the
    // same record again.
    let info = json_ok(thoth().args(["snapshot", "info", "--json"]));
    let snapshot = tmp.path().join("snapshot.sqlite");
    std::fs::copy(info["path"].as_str().unwrap(), &snapshot).unwrap();
    let archive = tmp.path().join("PyPI-all.zip");
    std::fs::write(
        &archive,
        common::wheel::zip(&[(
            "GHSA-gmj6-6f8f-6699.json".to_string(),
            fixture("GHSA-gmj6-6f8f-6699.json"),
        )]),
    )
    .unwrap();
    let again = tmp.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::write(
        again.join("GHSA-gmj6-6f8f-6699.json"),
        fixture("GHSA-gmj6-6f8f-6699.json"),
    )
    .unwrap();
    let pypa = common::shared_data("pypa-advisory-database/vulns");
    let mut sources: Vec<&Path> = pypa.iter().map(|p| p.as_path()).collect();
    sources.extend([archive.as_path(), again.as_path()]);
    let said = import(&snapshot, &sources);
    // The archive's record and its copy are one advisory (PyPA's own
    // database folds a few more: records sharing a CVE alias).
    let number = |after: &str| -> usize {
        said.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (stored, folded, withdrawn) = (
        number(" advisories into"),
        number(" duplicates folded"),
        number(" withdrawn left out"),
    );
    assert!(folded >= 1, "{said}");
    let records: usize = said
        .lines()
        .skip(1)
        .map(|l| {
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(stored + folded + withdrawn, records, "{said}");
    if pypa.is_none() {
        assert_eq!((stored, folded, withdrawn), (1, 1, 0), "{said}");
    }
    assert!(
        said.contains("PyPI-all.zip: 1 records, newest 2024-12-23T19:23:44Z"),
        "{said}"
    );

    // Every 3.x release below 3.1.5 is affected now: security moves to 2.x.
    let (code, after) = security(&project, Some(&snapshot));
    assert_eq!(code, Some(0), "{after}");
    let version = locked(&after, "jinja2");
    assert!(version.starts_with("2."), "{version}");
    let advisories = &after["snapshot"]["advisories"];
    assert_eq!(advisories["newest"], "2024-12-23T19:23:44Z", "{advisories}");
    assert!(
        advisories["source"]
            .as_str()
            .unwrap()
            .contains("PyPI-all.zip (2024-12-23T19:23:44Z)"),
        "{advisories}"
    );
    let why = after["products"][0]["packages"]["jinja2"]["newer_rejected"].to_string();
    assert!(why.contains("GHSA-gmj6-6f8f-6699"), "{why}");

    // With the older xmlattr advisory too (fixed in 3.1.4, every earlier
    // release affected), nothing below 3.1.5 is left, and the failure
    // names both.
    std::fs::write(
        tmp.path().join("again/GHSA-h75v-3vvj-5mfj.json"),
        fixture("GHSA-h75v-3vvj-5mfj.json"),
    )
    .unwrap();
    import(&snapshot, &sources);
    let (code, failed) = security(&project, Some(&snapshot));
    assert_eq!(code, Some(1), "{failed}");
    let message = failed["error_msg"].as_str().unwrap();
    assert!(
        message.contains("GHSA-h75v-3vvj-5mfj") && message.contains("GHSA-gmj6-6f8f-6699"),
        "{message}"
    );
}
