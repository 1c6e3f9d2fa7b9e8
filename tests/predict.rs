//! Predictors and recommendation types: every predictor returns stacks the
//! independent checker accepts, learning predictors beat hill climbing where
//! the best stack is not the newest, and the security treatment of
//! advisories on the bundled snapshot (security sieves, latest warns, stable
//! penalises).

use std::collections::BTreeMap;
use std::path::Path;

mod common;
use common::bundled::{advise, bundled_kb, example, project_with, roots_of, target_of};
use common::checker::{check, lock_versions};
use common::universe::{INDEX, add, empty};

use thoth_rs::advise::{Run, explore_roots};
use thoth_rs::environment::TargetEnvironment;
use thoth_rs::kb::memory::MemoryKb;
use thoth_rs::policy::{PredictorKind, RecommendationType};
use thoth_rs::predict::{self, PredictorOptions};
use thoth_rs::resolve::{Budget, RootRequirement, SearchRules};

fn locked(report: &serde_json::Value, name: &str) -> String {
    report["products"][0]["lock"]["default"][name]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} not locked"))
        .to_string()
}

/// The newest release of flask admitted by `<2.3.1` (2.3.0) has an advisory
/// (PYSEC-2023-62); the one before it (2.2.5) has none.
const FLASK: &str = "flask>=2.2,<2.3.1\n";

#[test]
fn security_picks_the_clean_release_and_latest_warns() {
    let dir = project_with(FLASK);
    let (security, _, _t1) = advise(dir.path(), &["-t", "security"]);
    assert_eq!(locked(&security, "flask"), "==2.2.5");
    let why = security["products"][0]["packages"]["flask"]["newer_rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["version"] == "2.3.0")
        .unwrap()
        .clone();
    let reason = why["reason"].as_str().unwrap();
    assert!(reason.contains("PYSEC-2023-62"), "{reason}");
    assert!(reason.contains("security"), "{reason}");

    let (latest, _, _t2) = advise(dir.path(), &["-t", "latest"]);
    assert_eq!(locked(&latest, "flask"), "==2.3.0");
    let warnings: Vec<&serde_json::Value> = latest["products"][0]["justification"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "WARNING" && m["package_name"] == "flask")
        .collect();
    assert!(
        warnings.iter().any(|m| m["advisory"] == "PYSEC-2023-62"
            && m["message"].as_str().unwrap().contains("CVE-2023-30861")),
        "{warnings:#?}"
    );
    // latest warns but does not penalise.
    assert_eq!(latest["products"][0]["score"], 0.0);
}

#[test]
fn allow_cve_label_keeps_an_accepted_advisory() {
    let dir = project_with(FLASK);
    let (report, _, _t) = advise(
        dir.path(),
        &["-t", "security", "--labels", "allow-cve=CVE-2023-30861"],
    );
    assert_eq!(locked(&report, "flask"), "==2.3.0");
}

#[test]
fn stable_scores_advisories_and_explores_to_the_clean_release() {
    let dir = project_with(FLASK);
    let (report, _, _t) = advise(
        dir.path(),
        &["-t", "stable", "--limit", "60", "--seed", "1"],
    );
    assert_eq!(locked(&report, "flask"), "==2.2.5");
    // AUTO under stable is hill climbing (README, Recommendation quality).
    assert_eq!(report["statistics"]["predictor"], "hill-climbing");
    assert!(report["statistics"]["episodes"].as_u64().unwrap() > 1);
    // The newest-first stack (flask 2.3.0, one advisory) scores −0.2; the
    // stack reported scores higher.
    assert!(report["products"][0]["score"].as_f64().unwrap() > -0.2);
}

#[test]
fn stable_stops_when_no_stack_can_beat_the_first() {
    // flask-app: no unit included under stable can raise a score, and the
    // newest-first stack has no advisory, so it scores the most any stack
    // can (0) and is the nearest to the newest releases.
    let (report, lock, _t) = advise(&example("flask-app"), &["-t", "stable", "--seed", "1"]);
    assert_eq!(report["statistics"]["episodes"], 1);
    assert_eq!(report["products"][0]["score"], 0.0);
    // Exploring anyway (two stacks asked for) finds nothing better: the
    // best of 60 episodes is the same stack.
    let (explored, explored_lock, _t2) = advise(
        &example("flask-app"),
        &[
            "-t", "stable", "--seed", "1", "--limit", "60", "--count", "2",
        ],
    );
    assert!(explored["statistics"]["episodes"].as_u64().unwrap() > 1);
    assert_eq!(explored["products"][0]["score"], 0.0);
    assert_eq!(
        explored["products"][0]["packages"], report["products"][0]["packages"],
        "a longer exploration found a different best stack"
    );
    assert_eq!(explored_lock, lock);
}

#[test]
fn stable_stops_when_every_admitted_release_has_the_advisory() {
    // requests 2.28 to 2.30 all carry PYSEC-2023-74: the project's own
    // requirement makes the penalty unavoidable, so the newest-first stack
    // (-0.2) is the best there is, and exploring finds nothing better.
    let dir = project_with("requests>=2.28,<2.31\n");
    let (report, lock, _t) = advise(dir.path(), &["-t", "stable", "--seed", "1"]);
    assert_eq!(report["statistics"]["episodes"], 1);
    assert_eq!(report["products"][0]["score"], -0.2);
    let (explored, explored_lock, _t2) = advise(
        dir.path(),
        &[
            "-t", "stable", "--seed", "1", "--limit", "60", "--count", "2",
        ],
    );
    assert!(explored["statistics"]["episodes"].as_u64().unwrap() > 1);
    assert_eq!(explored["products"][0]["score"], -0.2);
    assert_eq!(explored_lock, lock);
    // When an older admitted release is clean (flask 2.2.5 below 2.3.0's
    // advisory), exploring goes on.
    let dir = project_with(FLASK);
    let (report, _, _t3) = advise(
        dir.path(),
        &["-t", "stable", "--seed", "1", "--limit", "30"],
    );
    assert!(report["statistics"]["episodes"].as_u64().unwrap() > 1);
}

#[test]
fn every_predictor_returns_stacks_the_checker_accepts() {
    for name in [
        "adaptive-simulated-annealing",
        "temporal-difference",
        "mcts",
        "hill-climbing",
        "random-walk",
        "approximating-latest",
        "sampling",
    ] {
        let (report, text, _t) = advise(
            &example("flask-app"),
            &[
                "-t",
                "stable",
                "--predictor",
                name,
                "--limit",
                "25",
                "--count",
                "3",
                "--seed",
                "5",
            ],
        );
        assert_eq!(report["statistics"]["predictor"], name);
        let kb = bundled_kb(&report);
        let target = target_of(&report);
        let roots = roots_of(&report, false);
        let products = report["products"].as_array().unwrap();
        assert!(!products.is_empty(), "{name}");
        let mut last = f64::INFINITY;
        for product in products {
            let versions = lock_versions(&product["lock"], &["default"]);
            let problems = check(&kb, &target, &roots, &versions);
            assert!(problems.is_empty(), "{name}: {problems:#?}");
            let score = product["score"].as_f64().unwrap();
            assert!(score <= last, "{name}: products not best first");
            last = score;
        }
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, products[0]["lock"], "{name}");
    }
}

#[test]
fn same_seed_same_exploration() {
    let args = [
        "-t", "stable", "--limit", "40", "--seed", "11", "--count", "2",
    ];
    let (a, text_a, _t1) = advise(&example("flask-app"), &args);
    let (b, text_b, _t2) = advise(&example("flask-app"), &args);
    assert_eq!(text_a, text_b);
    assert_eq!(a["products"], b["products"]);
    assert_eq!(
        a["statistics"]["distinct_stacks"],
        b["statistics"]["distinct_stacks"]
    );
}

/// Four independent traps: `aN` 3.0 and 2.0 need `bN>=2`, whose releases
/// score −0.5; `aN` 1.0 scores −0.2 but allows `bN` 1.0, which scores 0.
/// Newest first gives −0.5 per pair; moving one package at a time never
/// improves it (hill climbing's local optimum), the best is −0.2 per pair.
fn traps() -> (MemoryKb, tempfile::TempDir) {
    let mut kb = empty();
    let mut units = String::from("units:\n  steps:\n");
    for i in 0..4 {
        let b = format!("b{i}");
        let need = format!("{b}>=2");
        add(
            &mut kb,
            &format!("a{i}"),
            &[
                ("3.0", &[need.as_str()]),
                ("2.0", &[need.as_str()]),
                ("1.0", &[b.as_str()]),
            ],
        );
        add(&mut kb, &b, &[("3.0", &[]), ("2.0", &[]), ("1.0", &[])]);
        units.push_str(&format!(
            "  - name: OldA{i}Step\n    type: step\n    should_include:\n      adviser_pipeline: true\n    match:\n      package_version:\n        name: a{i}\n        version: '<2'\n    run:\n      score: -0.2\n"
        ));
        units.push_str(&format!(
            "  - name: NewB{i}Step\n    type: step\n    should_include:\n      adviser_pipeline: true\n    match:\n      package_version:\n        name: b{i}\n        version: '>=2'\n    run:\n      score: -0.5\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("_prescription_metadata.yaml"),
        "prescription:\n  name: traps\n  release: '1'\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("traps.yaml"), units).unwrap();
    (kb, dir)
}

fn best_score(kb: &MemoryKb, units: &Path, kind: PredictorKind, seed: u64, limit: u64) -> f64 {
    let prescriptions = thoth_rs::prescription::load(&[units.to_path_buf()]);
    assert!(
        prescriptions.errors.is_empty(),
        "{:?}",
        prescriptions.errors
    );
    let env = TargetEnvironment::from_runtime(None, Some("3.11"));
    let labels = BTreeMap::new();
    let roots = (0..4)
        .map(|i| {
            RootRequirement::from_requirement(
                &thoth_rs::python::parse_requirement(&format!("a{i}")).unwrap(),
                false,
            )
        })
        .collect();
    let mut predictor = predict::build(kind, seed, &PredictorOptions::default());
    let target = thoth_rs::environment::Target::new(env.clone()).unwrap();
    let found = explore_roots(
        kb,
        &Run::adviser(&target, None, RecommendationType::Stable, &labels),
        roots,
        SearchRules {
            index_url: INDEX.trim_end_matches('/').into(),
            ..SearchRules::default()
        },
        &prescriptions,
        predictor.as_mut(),
        &Budget {
            limit,
            count: 1,
            time: None,
            distinct: None,
            polish: false,
        },
    )
    .unwrap();
    found.products[0].score
}

#[test]
fn learning_beats_hill_climbing_when_the_best_stack_is_not_the_newest() {
    let (kb, units) = traps();
    let limit = 200;
    let newest = -2.0;
    let optimum = -0.8;
    let hill = best_score(&kb, units.path(), PredictorKind::HillClimbing, 0, limit);
    assert!(
        (hill - newest).abs() < 1e-9,
        "hill climbing left its local optimum: {hill}"
    );
    let mut wins = BTreeMap::new();
    for kind in [
        PredictorKind::TemporalDifference,
        PredictorKind::AdaptiveSimulatedAnnealing,
    ] {
        for seed in 0..20 {
            let s = best_score(&kb, units.path(), kind, seed, limit);
            assert!(s >= hill - 1e-9, "{kind} seed {seed}: {s} < {hill}");
            assert!(s <= optimum + 1e-9);
            if s > hill + 1e-9 {
                *wins.entry(kind.to_string()).or_insert(0) += 1;
            }
        }
    }
    // Not only "no worse": both escape the local optimum on most seeds.
    for kind in ["temporal-difference", "adaptive-simulated-annealing"] {
        let w = wins.get(kind).copied().unwrap_or(0);
        assert!(w >= 15, "{kind} beat hill climbing on only {w} of 20 seeds");
    }
}

#[test]
fn dependency_monkey_writes_distinct_valid_stacks() {
    let (report, _, _t) = advise(&example("flask-app"), &["-t", "latest"]);
    let kb = bundled_kb(&report);
    let target = target_of(&report);
    let roots = roots_of(&report, false);
    for decision in ["all", "random"] {
        let out = tempfile::tempdir().unwrap();
        let summary = common::json_ok(
            common::thoth()
                .arg("-C")
                .arg(example("flask-app"))
                .args(["dependency-monkey", "--count", "4", "--seed", "2", "--json"])
                .args(["--decision-type", decision, "--output"])
                .arg(out.path()),
        );
        assert_eq!(summary["found"], 4, "{decision}");
        let mut seen = std::collections::BTreeSet::new();
        for n in 1..=4 {
            let text = std::fs::read_to_string(out.path().join(n.to_string()).join("Pipfile.lock"))
                .unwrap();
            let lock: serde_json::Value = serde_json::from_str(&text).unwrap();
            let versions = lock_versions(&lock, &["default"]);
            let problems = check(&kb, &target, &roots, &versions);
            assert!(problems.is_empty(), "{decision} stack {n}: {problems:#?}");
            assert!(
                seen.insert(versions),
                "{decision}: stack {n} repeats an earlier one"
            );
        }
        let written: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(written, summary);
        let expected = if decision == "all" {
            "approximating-latest"
        } else {
            "random-walk"
        };
        assert_eq!(summary["predictor"], expected);
    }
}

#[test]
fn dependency_monkey_takes_the_same_resolve_options_as_advise() {
    // Constraints apply to every stack, as they do to advise's.
    let dir = tempfile::tempdir().unwrap();
    let constraints = dir.path().join("constraints.txt");
    std::fs::write(&constraints, "flask<3\nwerkzeug<3\n").unwrap();
    let summary = common::json_ok(
        common::thoth()
            .arg("-C")
            .arg(example("flask-app"))
            .args(["dependency-monkey", "--count", "3", "--seed", "2", "--json"])
            .args(["--dry-run", "-t", "latest", "--constraints"])
            .arg(&constraints),
    );
    assert_eq!(summary["found"], 3);
    for stack in summary["stacks"].as_array().unwrap() {
        for (name, below) in [("flask", 3), ("werkzeug", 3)] {
            let version = stack["packages"][name].as_str().unwrap();
            let major: u64 = version.split('.').next().unwrap().parse().unwrap();
            assert!(major < below, "{name} {version} breaks the constraint");
        }
    }
}

#[test]
fn provenance_check_flags_unknown_packages_hashes_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["Pipfile", ".thoth.yaml"] {
        std::fs::copy(example("flask-app").join(f), dir.path().join(f)).unwrap();
    }
    let run = || {
        common::thoth()
            .arg("-C")
            .arg(dir.path())
            .args(["provenance-check", "--json"])
            .output()
            .unwrap()
    };
    let advised = common::thoth()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "-t", "latest", "-q"])
        .output()
        .unwrap();
    assert!(advised.status.success());
    let clean = run();
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(report["findings"], serde_json::json!([]));

    let path = dir.path().join("Pipfile.lock");
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    lock["default"]["flask"]["hashes"][0] = format!("sha256:{}", "0".repeat(64)).into();
    lock["default"]["click"]["version"] = "==0.0.1".into();
    lock["default"]["not-a-package"] = serde_json::json!({"version": "==1.0", "hashes": []});
    lock["_meta"]["sources"][0]["url"] = "http://127.0.0.1:9/other/simple".into();
    std::fs::write(&path, thoth_rs::lock::json::pretty(&lock)).unwrap();
    let pipfile = std::fs::read_to_string(dir.path().join("Pipfile"))
        .unwrap()
        .replace("[packages]", "[packages]\nsix = \"*\"");
    std::fs::write(dir.path().join("Pipfile"), pipfile).unwrap();

    let tampered = run();
    assert_eq!(tampered.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&tampered.stdout).unwrap();
    let found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["package_name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for expected in [
        ("INVALID-LOCK-HASH", ""),
        ("INVALID-ARTIFACT-HASH", "flask"),
        ("MISSING-PACKAGE", "click"),
        ("MISSING-PACKAGE", "not-a-package"),
        ("ARTIFACT-DIFFERENT-SOURCE", "flask"),
    ] {
        assert!(
            found
                .iter()
                .any(|(id, p)| id == expected.0 && p == expected.1),
            "{expected:?} not in {found:?}"
        );
    }
    assert_eq!(report["error"], true);
    assert!(report["stack_info"].as_array().unwrap().len() >= 5);
}
