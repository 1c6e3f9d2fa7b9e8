//! `match.state.package_version_from` (and `_allow_other`) evaluated on the
//! bundled snapshot, with a unit shaped like the corpus's only user of the
//! key (`tf_rm_scipy.yaml`: a `step.SkipPackage` for a package brought in
//! by a range of another), written here for requests and idna.

mod common;

use common::bundled::advise;

fn unit(allow_other: bool) -> String {
    format!(
        "units:\n  steps:\n  - name: RequestsRmIdnaStep\n    type: step.SkipPackage\n    should_include:\n      adviser_pipeline: true\n    match:\n      package_version:\n        name: idna\n      state:\n        package_version_from:\n        - name: requests\n          version: '>=2.30'\n        package_version_from_allow_other: {allow_other}\n    run:\n      stack_info:\n      - type: WARNING\n        message: idna brought in by requests was left out\n        link: https://example.test/unit\n"
    )
}

fn run(reqs: &str, allow_other: bool) -> (Vec<String>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), reqs).unwrap();
    let units = dir.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("unit.yaml"), unit(allow_other)).unwrap();
    let (report, _, _keep) = advise(
        dir.path(),
        &["-t", "latest", "--prescriptions", units.to_str().unwrap()],
    );
    let names = report["products"][0]["packages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    (names, report)
}

#[test]
fn package_version_from_looks_at_who_brought_the_package_in() {
    // Only requests brings idna in: the unit leaves it out.
    let (names, report) = run("requests\n", false);
    assert!(!names.contains(&"idna".to_string()), "{names:?}");
    assert!(names.contains(&"requests".to_string()));
    let skipped = report["products"][0]["skipped"]["idna"].as_str().unwrap();
    assert!(skipped.contains("RequestsRmIdnaStep"), "{skipped}");

    // The project asks for idna itself: another introducer, so the unit
    // does not fire unless others are allowed.
    let (names, _) = run("requests\nidna\n", false);
    assert!(names.contains(&"idna".to_string()), "{names:?}");
    let (names, _) = run("requests\nidna\n", true);
    assert!(!names.contains(&"idna".to_string()), "{names:?}");

    // idna without requests: nothing of the listed range brought it in.
    let (names, _) = run("idna\n", true);
    assert!(names.contains(&"idna".to_string()), "{names:?}");
}
