//! What a report says about the stack it reports, on the bundled snapshot
//! with our own prescriptions: why newer releases were not taken (reasons
//! true of that stack), a warning for each direct dependency held below
//! the newest release its requirement admits, and stack_info limited to
//! what concerns the reported stack.

mod common;

use std::path::Path;

use common::bundled::{advise, stack_info_messages};

fn project(reqs: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), reqs).unwrap();
    dir
}

fn package<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    &report["products"][0]["packages"][name]
}

fn reasons(report: &serde_json::Value, name: &str) -> Vec<(String, String)> {
    package(report, name)["newer_rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn run(dir: &Path, kind: &str) -> serde_json::Value {
    advise(
        dir,
        &["-t", kind, "--seed", "1", "--format", "requirements"],
    )
    .0
}

#[test]
fn a_held_back_direct_dependency_is_a_warning_with_the_true_reason() {
    let dir = project("flask\nwerkzeug<3\n");
    let report = run(dir.path(), "latest");
    let flask = package(&report, "flask");
    assert!(
        flask["version"].as_str().unwrap().starts_with("2."),
        "{flask}"
    );
    // Every newer flask was tried, and failed on werkzeug: the reason names
    // both requirements that clash.
    let flask_reasons = reasons(&report, "flask");
    assert!(!flask_reasons.is_empty());
    for (version, why) in &flask_reasons {
        assert!(
            why.starts_with("tried: no release of werkzeug could be used with werkzeug<3 (the project) and werkzeug>=")
                && why.ends_with(&format!("(flask {version})")),
            "{version}: {why}"
        );
    }
    // werkzeug's newer releases are excluded by the project's own pin.
    for (version, why) in reasons(&report, "werkzeug") {
        assert_eq!(
            why, "excluded by werkzeug<3 (required by the project)",
            "{version}"
        );
    }
    let newest = &flask_reasons[0].0;
    let warning = format!(
        "flask is locked at {}, not at {newest}, the newest release its requirement admits; {newest}: {}",
        flask["version"].as_str().unwrap(),
        flask_reasons[0].1
    );
    assert!(
        stack_info_messages(&report).contains(&warning),
        "{:?}",
        stack_info_messages(&report)
    );
    // werkzeug is where its requirement puts it: no warning about it.
    assert!(
        !stack_info_messages(&report)
            .iter()
            .any(|m| m.starts_with("werkzeug is locked")),
        "{:?}",
        stack_info_messages(&report)
    );
}

#[test]
fn releases_an_exploration_never_reached_are_said_to_be_untried() {
    let dir = project("flask<2\n");
    let report = run(dir.path(), "stable");
    let chosen = package(&report, "flask")["version"]
        .as_str()
        .unwrap()
        .to_string();
    let flask_reasons = reasons(&report, "flask");
    // Whatever the predictor chose, every newer release has a reason that
    // is one of the true kinds, never a guess.
    for (version, why) in &flask_reasons {
        assert!(
            why.starts_with("tried: ")
                || why
                    == &format!(
                        "not tried: the predictor ordered {chosen} before it and that led to a stack"
                    )
                || why.starts_with("a stack with it scores")
                || why == "no stack with it was found"
                || why.starts_with("excluded by")
                || why.starts_with("requires Python"),
            "{version}: {why}"
        );
    }
}

#[test]
fn stack_info_keeps_only_what_concerns_the_reported_stack() {
    // The exploration tries Flask 1.x with Jinja2 3.1 and our unit refuses
    // it, but the stack reported holds Flask 3: the refusal's warning does
    // not belong to it.
    // Two stacks are asked for, so the exploration goes on past the first
    // (alone, that one cannot be beaten and the search would stop there).
    let dir = project("flask\njinja2\nitsdangerous\n");
    let report = advise(
        dir.path(),
        &[
            "-t",
            "stable",
            "--seed",
            "1",
            "--format",
            "requirements",
            "--count",
            "2",
        ],
    )
    .0;
    assert!(
        report["pipeline"]["thoth-rs.Flask1Jinja231Step"]["runs"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        report["pipeline"]
    );
    assert!(
        package(&report, "flask")["version"]
            .as_str()
            .unwrap()
            .starts_with("3."),
        "{}",
        report["products"][0]["packages"]
    );
    let all = stack_info_messages(&report);
    assert!(
        !all.iter().any(|m| m.contains("Flask before 2.0")),
        "{all:?}"
    );

    // With Flask 1.0 locked (it admits any Jinja2 from 2.10), Jinja2 is
    // held below 3.1 by that unit: there the warning explains the stack and
    // is kept, and Jinja2's newer releases name the refusal.
    let dir = project("flask==1.0.2\njinja2\n");
    let report = run(dir.path(), "latest");
    let jinja2 = package(&report, "jinja2")["version"].as_str().unwrap();
    assert!(jinja2.starts_with("3.0."), "{jinja2}");
    let all = stack_info_messages(&report);
    assert!(
        all.iter().any(|m| m.contains("Flask before 2.0")),
        "{all:?}"
    );
    let (newest, why) = &reasons(&report, "jinja2")[0];
    assert!(
        why.starts_with("tried: not acceptable to unit thoth-rs.Flask1Jinja231Step"),
        "{newest}: {why}"
    );
    assert!(
        all.iter()
            .any(|m| m.starts_with(&format!("jinja2 is locked at {jinja2}, not at {newest}"))),
        "{all:?}"
    );
}

#[test]
fn a_failed_run_reports_what_the_units_said_while_looking() {
    let dir = project("flask==1.0.2\njinja2>=3.1\n");
    let out = common::thoth()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--json", "-t", "latest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stack_info"][0]["type"], "ERROR");
    assert!(
        stack_info_messages(&report)
            .iter()
            .any(|m| m.contains("Flask before 2.0")),
        "{:?}",
        stack_info_messages(&report)
    );
    assert_eq!(
        report["pipeline"]["thoth-rs.Flask1Jinja231Step"]["kind"],
        "step.Group"
    );
}

#[test]
fn an_accepted_advisory_is_a_warning_naming_it() {
    // requests 2.30.0 has PYSEC-2023-74 (CVE-2023-32681) in the bundled
    // snapshot: refused under security unless accepted, and when accepted
    // locked with a warning that names the advisory and the label.
    let dir = project("requests==2.30.0\n");
    let refused = common::thoth()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "-t", "security", "-o", "out.txt"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("PYSEC-2023-74") && stderr.contains("allow-cve"),
        "{stderr}"
    );
    for kind in ["security", "stable", "latest"] {
        let (report, stderr, _out) = advise(
            dir.path(),
            &["-t", kind, "--labels", "allow-cve=CVE-2023-32681"],
        );
        assert_eq!(
            package(&report, "requests")["version"],
            "2.30.0",
            "{kind}: {stderr}"
        );
        let warnings: Vec<&serde_json::Value> = report["products"][0]["justification"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["accepted"] == "allow-cve")
            .collect();
        assert_eq!(warnings.len(), 1, "{kind}: {warnings:?}");
        assert_eq!(warnings[0]["type"], "WARNING");
        assert_eq!(warnings[0]["advisory"], "PYSEC-2023-74");
        let text = warnings[0]["message"].as_str().unwrap();
        assert!(
            text.contains("CVE-2023-32681") && text.contains("accepted with the label allow-cve"),
            "{text}"
        );
    }
}

#[test]
fn dependency_monkey_stacks_carry_their_score_and_justification() {
    // Stacks of requests<2.31 on the bundled snapshot: every one has
    // requests 2.30.0 (PYSEC-2023-74); its score and its warning say so.
    let dir = project("requests<2.31\n");
    let out = common::thoth()
        .arg("-C")
        .arg(dir.path())
        .args([
            "dependency-monkey",
            "--count",
            "3",
            "--seed",
            "1",
            "--output",
            "dm",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("dm/summary.json")).unwrap())
            .unwrap();
    let stacks = summary["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 3, "{summary}");
    for stack in stacks {
        let advisories: Vec<&str> = stack["justification"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "WARNING")
            .filter_map(|m| m["advisory"].as_str())
            .collect();
        assert!(advisories.contains(&"PYSEC-2023-74"), "{stack}");
        // −0.2 per advisory, floored at −1.
        let expected = (-0.2 * advisories.len() as f64).max(-1.0);
        let score = stack["score"].as_f64().unwrap();
        assert!(
            (score - expected).abs() < 1e-9,
            "{score} vs {expected}: {stack}"
        );
    }
    assert!(stderr.contains("stack 1 (score -0."), "{stderr}");
}

fn versions(report: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    report["products"][0]["packages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, p)| (name.clone(), p["version"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn stable_changes_only_what_an_advisory_asks_for() {
    // flask 2.3.0 has PYSEC-2023-62, fixed in 2.2.5. Under stable the
    // stack moves flask down and leaves everything else where latest has
    // it; only blinker, which nothing but flask 2.3 requires, goes away.
    let dir = project("flask>=2.2,<2.3.1\n");
    let latest = versions(&run(dir.path(), "latest"));
    for seed in ["1", "2", "3"] {
        let report = advise(
            dir.path(),
            &["-t", "stable", "--seed", seed, "--format", "requirements"],
        )
        .0;
        let stable = versions(&report);
        let added: Vec<_> = stable.difference(&latest).collect();
        let removed: Vec<_> = latest
            .difference(&stable)
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            added,
            [&("flask".to_string(), "2.2.5".to_string())],
            "seed {seed}"
        );
        assert_eq!(removed, ["blinker", "flask"], "seed {seed}");
        // The warning on the held-back direct dependency names the
        // advisory that moved it down.
        let warning = stack_info_messages(&report)
            .into_iter()
            .find(|m| m.starts_with("flask is locked at 2.2.5"))
            .expect("a held-back warning for flask");
        assert!(
            warning.ends_with("2.3.0: a stack with it scores 0.20 lower: flask 2.3.0 has the advisory PYSEC-2023-62"),
            "{warning}"
        );
    }
}
