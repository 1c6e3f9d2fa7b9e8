//! Running the binary on the bundled snapshot and reading its reports back.

use std::path::{Path, PathBuf};

use super::checker::{Root, Target};
use super::thoth;
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::CandidateQuery;
use thoth_rs::kb::sqlite::SqliteKb;
use thoth_rs::kb::tags::{Platform, WheelTarget, glibc_for_os};
use thoth_rs::python::{parse_requirement, parse_version};

/// An example project of the repository.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// The bundled snapshot, materialised by a first run of the binary.
pub fn bundled_kb(report: &serde_json::Value) -> SqliteKb {
    SqliteKb::open(Path::new(report["snapshot"]["path"].as_str().unwrap())).unwrap()
}

/// Run `advise --json` on `dir` with `args`, the lock going to a temp file
/// (a Pipfile.lock unless `args` name another format).
pub fn advise(dir: &Path, args: &[&str]) -> (serde_json::Value, String, tempfile::TempDir) {
    let out_dir = tempfile::tempdir().unwrap();
    let lock = out_dir.path().join("lock");
    let format: &[&str] = if args.contains(&"--format") {
        &[]
    } else {
        &["--format", "pipfile-lock"]
    };
    let out = thoth()
        .arg("-C")
        .arg(dir)
        .arg("advise")
        .arg("--json")
        .args(format)
        .args(args)
        .arg("-o")
        .arg(&lock)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "advise failed on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = std::fs::read_to_string(&lock).unwrap();
    (report, text, out_dir)
}

/// The target the report says it resolved for.
pub fn target_of(report: &serde_json::Value) -> Target {
    let env = &report["inputs"]["environment"];
    let python = env["python_version"].as_str().unwrap();
    let mut t = TargetEnvironment::from_runtime(None, Some(python));
    t.platform = env["platform"].as_str().unwrap().to_string();
    t.python_full_version = env["python_full_version"].as_str().unwrap().to_string();
    let mut parts = python.split('.').map(|p| p.parse::<u16>().unwrap());
    let glibc = env["glibc"]
        .as_str()
        .and_then(|g| g.split_once('.'))
        .map(|(a, b)| (a.parse().unwrap(), b.parse().unwrap()))
        .unwrap_or_else(|| glibc_for_os(env["os_name"].as_str(), env["os_version"].as_str()));
    Target {
        query: CandidateQuery {
            target: WheelTarget {
                python: (parts.next().unwrap(), parts.next().unwrap()),
                platform: Platform::from_sysconfig(&t.platform, glibc),
            },
            python_full_version: parse_version(&t.python_full_version).unwrap(),
            exclude_newer: None,
        },
        markers: t.marker_environment().unwrap(),
    }
}

/// The project's requirements as the report lists them.
pub fn roots_of(report: &serde_json::Value, dev: bool) -> Vec<Root> {
    let project = &report["inputs"]["project"];
    let mut lists = vec![&project["requirements"]];
    if dev {
        lists.push(&project["dev_requirements"]);
    }
    lists
        .into_iter()
        .flat_map(|l| l.as_array().unwrap().iter())
        .map(|r| {
            let text = r.as_str().unwrap();
            let text = text.split(" (index ").next().unwrap();
            let req = parse_requirement(text).unwrap();
            (
                req.name.to_string(),
                req.extras.iter().map(ToString::to_string).collect(),
                req.specifiers.to_string(),
                req.marker.map(|m| m.text),
            )
        })
        .collect()
}

/// A project directory holding `requirements.in` with `requirements`.
pub fn project_with(requirements: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), requirements).unwrap();
    dir
}

/// name → version of a Pipfile.lock's default and develop sections.
pub fn lock_versions_of(lock: &serde_json::Value) -> std::collections::BTreeMap<String, String> {
    super::checker::lock_versions(lock, &["default", "develop"])
}

/// The messages of a report's `stack_info`, in order.
pub fn stack_info_messages(report: &serde_json::Value) -> Vec<String> {
    report["stack_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_string())
        .collect()
}
