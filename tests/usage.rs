//! Library usage read from the project itself: its Python files are
//! scanned and units that select on `library_usage` fire, ours and the
//! real corpus's; `--library-usage FILE` gives a report instead and
//! `--no-library-usage` turns the scan off.

mod common;

use common::bundled::{advise, stack_info_messages};

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "requests\n").unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const MKTEMP: &str = "tempfile.mktemp() is deprecated and insecure";

const APP: &str = "\
import os
from tempfile import mktemp as scratch_name


def export(rows):
    path = scratch_name(suffix='.csv')
    with open(path, 'w') as out:
        out.writelines(rows)
    return os.path.basename(path)
";

#[test]
fn a_project_calling_tempfile_mktemp_fires_our_unit() {
    let dir = project(&[("app/export.py", APP)]);
    let (report, _, _) = advise(dir.path(), &["-t", "latest"]);
    let usage = &report["inputs"]["library_usage"];
    assert_eq!(
        usage["report"]["tempfile"],
        serde_json::json!(["tempfile", "tempfile.mktemp"]),
        "{usage}"
    );
    assert!(
        usage["from"]
            .as_str()
            .unwrap()
            .starts_with("1 Python file under "),
        "{usage}"
    );
    assert!(
        stack_info_messages(&report)
            .iter()
            .any(|m| m.starts_with(MKTEMP)),
        "{:?}",
        stack_info_messages(&report)
    );

    // Off: the unit has nothing to select on.
    let (report, _, _) = advise(dir.path(), &["-t", "latest", "--no-library-usage"]);
    assert!(report["inputs"]["library_usage"].is_null());
    assert!(
        !stack_info_messages(&report)
            .iter()
            .any(|m| m.starts_with(MKTEMP))
    );
}

#[test]
fn files_in_environments_and_caches_are_not_scanned() {
    // The same call inside a virtual environment is not the project's.
    let dir = project(&[
        (".venv/lib/python3.11/site-packages/x/y.py", APP),
        ("build/lib/app.py", APP),
        ("app/main.py", "import json\nprint(json.dumps({}))\n"),
    ]);
    let (report, _, _) = advise(dir.path(), &["-t", "latest"]);
    let usage = &report["inputs"]["library_usage"]["report"];
    assert!(usage.get("tempfile").is_none(), "{usage}");
    assert_eq!(usage["json"], serde_json::json!(["json", "json.dumps"]));
    assert!(
        !stack_info_messages(&report)
            .iter()
            .any(|m| m.starts_with(MKTEMP))
    );
}

#[test]
fn a_usage_file_in_either_shape_replaces_the_scan() {
    let dir = project(&[("app/main.py", "import json\n")]);
    for text in [
        r#"{"report": {"tempfile": ["tempfile.mktemp"]}, "version": "0.1"}"#,
        r#"{"tempfile": ["tempfile.mktemp"]}"#,
    ] {
        let file = dir.path().join("usage.json");
        std::fs::write(&file, text).unwrap();
        let (report, _, _) = advise(
            dir.path(),
            &["-t", "latest", "--library-usage", file.to_str().unwrap()],
        );
        assert!(
            stack_info_messages(&report)
                .iter()
                .any(|m| m.starts_with(MKTEMP)),
            "{text}"
        );
        assert!(report["inputs"]["library_usage"]["report"]["json"].is_null());
    }
    // A bad report is named with its key, exit 2.
    let file = dir.path().join("bad.json");
    std::fs::write(&file, r#"{"report": {"tempfile": "tempfile.mktemp"}}"#).unwrap();
    let out = common::thoth()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--offline", "--library-usage", "bad.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.json: report.tempfile: expected a list of symbols"),
        "{stderr}"
    );
}

#[test]
fn corpus_units_on_library_usage_fire_on_the_scanned_project() {
    let Some(corpus) = common::shared_data("thoth-prescriptions-a/prescriptions") else {
        return;
    };
    // Only the corpus's security warnings directory: its units select on
    // pickle, random, subprocess, ssl and builtins usage.
    let warnings_dir = corpus.join("_security_warnings");
    let code = "import pickle\nimport subprocess\n\ndef load(blob):\n    return pickle.loads(blob)\n\nsubprocess.run(['true'])\n";
    let dir = project(&[("service/store.py", code)]);
    let (report, _, _) = advise(
        dir.path(),
        &[
            "-t",
            "latest",
            "--prescriptions",
            warnings_dir.to_str().unwrap(),
        ],
    );
    let said = stack_info_messages(&report);
    let units: Vec<String> = report["pipeline"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    assert!(
        said.iter()
            .any(|m| m == "Consider restricting globals when using pickle"),
        "{said:?} {units:?}"
    );
    // random is not used: its units stay out.
    assert!(
        !said.iter().any(|m| m.to_lowercase().contains("random")),
        "{said:?}"
    );
}
