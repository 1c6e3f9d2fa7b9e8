//! The resolver end to end on the bundled snapshot and the example
//! projects: locks pass an independent checker, `latest` picks what a
//! newest-first resolver picks, conflicts are explained, runs are
//! reproducible, and every output format is well formed.

use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::bundled::{advise, bundled_kb, example, project_with, roots_of, target_of};
use common::checker::{check, lock_versions};
use common::thoth;

use thoth_rs::kb::{KnowledgeBase, Lookup};
use thoth_rs::python::{parse_requirement, parse_version};

/// Run the binary in `dir` with `args`.
fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    thoth().arg("-C").arg(dir).args(args).output().unwrap()
}

#[test]
fn example_locks_pass_the_independent_checker() {
    for (name, dev) in [
        ("flask-app", true),
        ("data-science", false),
        ("ml-service", false),
    ] {
        let args: &[&str] = if dev { &["--dev"] } else { &[] };
        let (report, text, _tmp) = advise(&example(name), args);
        let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kb = bundled_kb(&report);
        let versions = lock_versions(&lock, &["default", "develop"]);
        assert!(versions.len() > 5, "{name}: {versions:?}");
        let problems = check(&kb, &target_of(&report), &roots_of(&report, dev), &versions);
        assert!(problems.is_empty(), "{name}: {problems:#?}");
        // Every entry carries hashes the snapshot knows.
        for (pkg, entry) in lock["default"].as_object().unwrap() {
            let version =
                parse_version(entry["version"].as_str().unwrap().trim_start_matches("==")).unwrap();
            let known = kb.hashes(pkg, &version).unwrap();
            let listed: Vec<String> = entry["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_string())
                .collect();
            assert!(!listed.is_empty(), "{name}: {pkg} has no hashes");
            assert_eq!(listed, known, "{name}: {pkg}");
        }
    }
}

#[test]
fn constraints_hold_in_the_data_science_lock() {
    let (_, text, _tmp) = advise(&example("data-science"), &[]);
    let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
    let numpy = lock["default"]["numpy"]["version"].as_str().unwrap();
    let v = parse_version(numpy.trim_start_matches("==")).unwrap();
    assert!(
        v < parse_version("2.4").unwrap(),
        "constraint numpy<2.4 broken: {numpy}"
    );
}

/// `latest` must pick, for every package, the newest release that installs
/// on the target and satisfies every requirement on it in the final stack:
/// what a newest-first resolver returns when nothing conflicts.
#[test]
fn latest_picks_what_a_newest_first_resolver_picks() {
    let (report, text, _tmp) = advise(&example("flask-app"), &["-t", "latest", "--dev"]);
    assert_eq!(report["statistics"]["search"]["backtracks"], 0);
    let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
    let kb = bundled_kb(&report);
    let target = target_of(&report);
    let versions = lock_versions(&lock, &["default", "develop"]);
    // Requirements on each package within the stack.
    let mut reqs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, _, spec, _) in roots_of(&report, true) {
        reqs.entry(name).or_default().push(spec);
    }
    let packages = &report["products"][0]["packages"];
    for (name, info) in packages.as_object().unwrap() {
        for via in info["via"].as_array().unwrap() {
            let r = parse_requirement(via["requirement"].as_str().unwrap()).unwrap();
            reqs.entry(name.clone())
                .or_default()
                .push(r.specifiers.to_string());
        }
    }
    for (name, version) in &versions {
        let Lookup::Found(record) = kb.project(name).unwrap() else {
            panic!("{name} missing")
        };
        let newest = thoth_rs::kb::candidates(&record, &target.query)
            .into_iter()
            .filter(|c| c.rejection.is_none() && !c.release.version.any_prerelease())
            .map(|c| c.release.version.clone())
            .find(|v| {
                reqs.get(name)
                    .into_iter()
                    .flatten()
                    .all(|s| thoth_rs::python::parse_specifiers(s).unwrap().contains(v))
            })
            .unwrap();
        assert_eq!(version, &newest.to_string(), "{name}");
    }
}

/// The explanation is a derivation: from the project's requirement on
/// sphinx, through the sphinx releases that require jinja2>=3.1 and the
/// jinja2 releases that require markupsafe>=2.0, down to the clash with the
/// project's markupsafe<2, each level naming the releases it rules out.
#[test]
fn a_conflict_two_levels_down_is_a_derivation_from_the_project_to_the_clash() {
    let dir = project_with("sphinx>=8\nmarkupsafe<2\n");
    let out = run_in(dir.path(), &["advise", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &report["explanation"]["derivation"];
    assert_eq!(root["package"], "sphinx");
    assert_eq!(root["required_by"][0], "sphinx>=8 ← the project");
    // Follow the steps that failed below: sphinx → jinja2 → markupsafe.
    let below = |node: &serde_json::Value, package: &str| -> serde_json::Value {
        node["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|step| step["below"]["package"] == package)
            .unwrap_or_else(|| {
                panic!(
                    "no step below {} leads to {package}: {node:#}",
                    node["package"]
                )
            })
            .clone()
    };
    let step = below(root, "jinja2");
    assert!(
        step["requires"].as_str().unwrap().starts_with("jinja2>="),
        "{step:#}"
    );
    let jinja2 = &step["below"];
    let step = below(jinja2, "markupsafe");
    assert!(
        step["requires"]
            .as_str()
            .unwrap()
            .starts_with("markupsafe>="),
        "{step:#}"
    );
    let markupsafe = &step["below"];
    let required: Vec<&str> = markupsafe["required_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"markupsafe<2 ← the project"),
        "{required:?}"
    );
    assert!(
        required
            .iter()
            .any(|r| r.contains("← jinja2==") && r.contains("← sphinx==")),
        "the chain runs through jinja2 and sphinx: {required:?}"
    );
    // At the clash every markupsafe release is excluded by one of the two
    // requirements: nothing else is left to try.
    let reasons: Vec<&str> = markupsafe["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("excluded by markupsafe")),
        "{reasons:?}"
    );

    // The text shows the same tree, indented level by level.
    let out = run_in(dir.path(), &["advise"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Where each package's block starts, and how far it is indented.
    let block = |package: &str| {
        let needle = format!("no version of {package} satisfies");
        stderr
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&needle))
            .map(|(i, l)| (i, l.len() - l.trim_start().len()))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stderr}"))
    };
    let (sphinx, jinja2, markupsafe) = (block("sphinx"), block("jinja2"), block("markupsafe"));
    assert!(sphinx.0 < jinja2.0 && jinja2.0 < markupsafe.0, "{stderr}");
    assert!(sphinx.1 < jinja2.1 && jinja2.1 < markupsafe.1, "{stderr}");
}

#[test]
fn a_conflict_is_explained_and_nothing_is_written() {
    let dir = project_with("flask>=3\nwerkzeug<2\n");
    let lock = dir.path().join("Pipfile.lock");
    std::fs::write(&lock, "previous lock\n").unwrap();
    let out = run_in(dir.path(), &["advise"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no version of werkzeug satisfies"),
        "{stderr}"
    );
    assert!(stderr.contains("werkzeug<2 ← the project"), "{stderr}");
    assert!(
        stderr.contains("← flask==3."),
        "the flask requirement on werkzeug is traced: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "previous lock\n");

    let out = run_in(dir.path(), &["advise", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["error"], true);
    assert_eq!(report["explanation"]["culprits"][0]["name"], "werkzeug");
    // A failed run's report has the sections of a successful one.
    for key in [
        "inputs",
        "knowledge_base",
        "products",
        "stack_info",
        "pipeline",
        "statistics",
    ] {
        assert!(report.get(key).is_some(), "the failure report lacks {key}");
    }
    assert_eq!(report["stack_info"][0]["type"], "ERROR");
    assert!(
        report["stack_info"][0]["message"]
            .as_str()
            .unwrap()
            .contains("werkzeug")
    );
}

#[test]
fn a_package_missing_from_the_snapshot_is_named() {
    let dir = project_with("flask\nno-such-project-anywhere>=1\nnor-this-one\n");
    let out = thoth()
        .arg("-C")
        .arg(dir.path())
        .arg("advise")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Both missing projects are named, with what to do about it.
    assert!(
        stderr.contains("the project requires 2 projects the knowledge base cannot supply"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  no-such-project-anywhere: not in the knowledge base"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  nor-this-one: not in the knowledge base"),
        "{stderr}"
    );
    assert!(
        stderr.contains("working offline, the knowledge base lacks 2 project(s): no-such-project-anywhere, nor-this-one"),
        "{stderr}"
    );
    assert!(stderr.contains("run once without --offline"), "{stderr}");
    assert!(
        stderr.contains("thoth-rs snapshot sync --project ")
            && stderr.contains("thoth-rs advise --offline --project ")
            && stderr.contains("--snapshot snapshot.sqlite"),
        "{stderr}"
    );
}

#[test]
fn same_inputs_and_seed_give_the_same_bytes() {
    for format in ["pipfile-lock", "requirements", "pylock"] {
        let (_, a, _t1) = advise(
            &example("data-science"),
            &["--seed", "7", "--format", format],
        );
        let (_, b, _t2) = advise(
            &example("data-science"),
            &["--seed", "7", "--format", format],
        );
        assert_eq!(a, b, "{format}");
    }
}

#[test]
fn pipfile_lock_layout_is_pipenvs() {
    let (_, text, _tmp) = advise(&example("flask-app"), &[]);
    assert!(
        text.starts_with("{\n    \"_meta\": {\n        \"hash\": {\n            \"sha256\": \"")
    );
    assert!(text.ends_with("\n}\n"));
    // Keys sorted at every level, 4-space indent, ": " and "," separators:
    // re-serialising the parsed value the same way gives the same text.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(format!("{}\n", thoth_rs::lock::json::pretty(&v)), text);
    assert!(text.is_ascii());
    let flask = &v["default"]["flask"];
    assert_eq!(flask["index"], "pypi");
    assert!(flask["hashes"][0].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["_meta"]["pipfile-spec"], 6);
    assert_eq!(v["_meta"]["requires"]["python_version"], "3.11");
}

#[test]
fn pipfile_hash_is_pipenvs() {
    // Expected values computed with Pipenv's algorithm (sha256 of
    // json.dumps(..., sort_keys=True, separators=(",", ":")) over sources,
    // requires, packages and dev-packages) on the same files.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pipfiles");
    let default = thoth_rs::lock::default_source("http://127.0.0.1:9/simple/");
    for (file, expected) in [
        (
            "basic",
            "fe0b7dbf4c9a14d8b2e1a3cf6157dbde99807f6d663598f5197abd4cd7e576a3",
        ),
        (
            "non-ascii",
            "8c558b182afde1e82db0f2f9953cf998b59b19994a00f847bce2a29a028b5a53",
        ),
        (
            "sections",
            "22295d00ce46e792ef4fdb09a0eb485d74814e8dcab6d2751a460421caf83af5",
        ),
        (
            "no-source",
            "9c9a844a239ce834d473f3a05c3c9ccd0d2cf15324cb9faf164f96ec1382137d",
        ),
    ] {
        let path = dir.join(format!("{file}.Pipfile"));
        let text = std::fs::read_to_string(&path).unwrap();
        let pipfile = thoth_rs::input::pipfile::Pipfile::parse(&path, &text).unwrap();
        let input = thoth_rs::lock::pipfile_hash_input(&pipfile.raw, &default);
        assert_eq!(thoth_rs::lock::hash_of(&input), expected, "{file}");
    }
}

#[test]
fn requirements_format_pins_with_hashes_and_via() {
    let (_, text, _tmp) = advise(&example("flask-app"), &["--format", "requirements"]);
    assert!(text.contains("\nflask==3."), "{text}");
    assert!(text.contains(" \\\n    --hash=sha256:"), "{text}");
    assert!(text.contains("    # via -r Pipfile"), "{text}");
    assert!(text.contains("gunicorn==") && text.contains(" ; sys_platform == 'linux'"));
    // Every pinned line is followed by at least one hash.
    for block in text.split("\n\n").skip(1) {
        assert!(block.contains("--hash=sha256:"), "{block}");
    }
}

#[test]
fn pylock_format_is_pep_751() {
    let (_, text, _tmp) = advise(&example("flask-app"), &["--format", "pylock"]);
    let doc: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(doc["lock-version"].as_str(), Some("1.0"));
    assert_eq!(doc["created-by"].as_str(), Some("thoth-rs"));
    let packages = doc["packages"].as_array().unwrap();
    let flask = packages
        .iter()
        .find(|p| p["name"].as_str() == Some("flask"))
        .unwrap();
    let wheel = &flask["wheels"].as_array().unwrap()[0];
    assert!(wheel["name"].as_str().unwrap().ends_with(".whl"));
    assert_eq!(wheel["hashes"]["sha256"].as_str().unwrap().len(), 64);
    // PEP 751 wants `url` or `path` on every file: the snapshot's file URLs.
    for p in packages {
        let files = p["wheels"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(p.get("sdist"));
        for f in files {
            let name = f["name"].as_str().unwrap();
            let url = f["url"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no url"));
            assert!(
                url.starts_with("https://") || url.starts_with("http://"),
                "{url}"
            );
            assert!(url.ends_with(&format!("/{name}")), "{url} is not {name}");
        }
    }
}

#[test]
fn keep_lock_scores_the_existing_lock_first() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["Pipfile", ".thoth.yaml"] {
        std::fs::copy(example("flask-app").join(f), dir.path().join(f)).unwrap();
    }
    let run = |extra: &[&str]| {
        let out = thoth()
            .arg("-C")
            .arg(dir.path())
            .args(["advise", "--json", "-t", "latest"])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run(&[]);
    let newest_click = first["products"][0]["lock"]["default"]["click"]["version"].clone();
    // Hand-pin an older click that still satisfies flask.
    let path = dir.path().join("Pipfile.lock");
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    lock["default"]["click"]["version"] = "==8.1.7".into();
    std::fs::write(&path, thoth_rs::lock::json::pretty(&lock)).unwrap();

    let kept = run(&["--keep-lock"]);
    assert_eq!(kept["products"][0]["existing_lock_kept"], true);
    assert_eq!(
        kept["products"][0]["lock"]["default"]["click"]["version"],
        "==8.1.7"
    );

    let fresh = run(&[]);
    assert_eq!(fresh["products"][0]["existing_lock_kept"], false);
    assert_eq!(
        fresh["products"][0]["lock"]["default"]["click"]["version"],
        newest_click
    );
}

#[test]
fn example_locks_with_the_real_corpus_pass_the_independent_checker() {
    // Thoth's own prescriptions on top of ours: units such as
    // TensorFlowRMSciPyStep (scipy dropped when tensorflow brought it in)
    // must not fire on a stack without tensorflow, so every lock stays a
    // complete, valid stack.
    let Some(corpus) = common::shared_data("thoth-prescriptions-a/prescriptions") else {
        return;
    };
    let corpus = corpus.to_str().unwrap();
    for name in ["data-science", "ml-service"] {
        for kind in ["latest", "stable"] {
            let (report, text, _tmp) = advise(
                &example(name),
                &["-t", kind, "--prescriptions", corpus, "--seed", "1"],
            );
            let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
            let kb = bundled_kb(&report);
            let versions = lock_versions(&lock, &["default"]);
            if name == "data-science" {
                assert!(
                    versions.contains_key("scipy"),
                    "{name} {kind}: {versions:?}"
                );
            }
            let problems = check(
                &kb,
                &target_of(&report),
                &roots_of(&report, false),
                &versions,
            );
            assert!(problems.is_empty(), "{name} {kind}: {problems:#?}");
            assert!(
                report["products"][0]["skipped"]
                    .as_object()
                    .unwrap()
                    .is_empty(),
                "{name} {kind}: {}",
                report["products"][0]["skipped"]
            );
        }
    }
}

#[test]
fn a_configured_cuda_version_picks_framework_builds_made_for_it() {
    // TensorFlow's table: 2.14 is the last build for CUDA 11 (11.8), 2.15
    // needs 12.2 and 2.16 needs 12.3; PyTorch's default-index wheels bundle
    // CUDA 12 from 2.1 on.
    for (cuda, requirement, name, expected) in [
        ("11.8", "tensorflow", "tensorflow", "2.14."),
        ("12.2", "tensorflow", "tensorflow", "2.15."),
        ("11.8", "torch", "torch", "2.0."),
    ] {
        let dir = project_with(&format!("{requirement}\n"));
        std::fs::write(
            dir.path().join(".thoth.yaml"),
            format!(
                "host: localhost\nruntime_environments:\n- name: gpu\n  operating_system: {{name: ubuntu, version: \"22.04\"}}\n  python_version: \"3.11\"\n  cuda_version: \"{cuda}\"\n  hardware: {{gpu_model: \"A100\"}}\n"
            ),
        )
        .unwrap();
        let (report, _, _tmp) = advise(dir.path(), &["-t", "latest"]);
        let version = report["products"][0]["packages"][name]["version"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            version.starts_with(expected),
            "CUDA {cuda}: {name} {version}"
        );
        // The newest release says why it was not taken.
        let newest = &report["products"][0]["packages"][name]["newer_rejected"][0]["reason"];
        assert!(
            newest.as_str().unwrap().contains("CUDA"),
            "CUDA {cuda}: {newest}"
        );
    }
}
