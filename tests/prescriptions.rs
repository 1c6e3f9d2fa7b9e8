//! Prescriptions: the real corpus (read from ../shared when present),
//! schema errors with file/unit/key paths, and hostile YAML.

use std::path::{Path, PathBuf};
use std::process::Command;

use thoth_rs::prescription::{UnitKind, load, load_fresh, parse_file};

mod common;

fn corpus() -> Option<PathBuf> {
    common::shared_data("thoth-prescriptions-a/prescriptions")
}

#[test]
fn real_corpus_compiles_without_errors() {
    let Some(dir) = corpus() else { return };
    let rx = load(std::slice::from_ref(&dir));
    assert!(
        rx.errors.is_empty(),
        "{} errors, first: {:?}",
        rx.errors.len(),
        rx.errors.first()
    );
    assert_eq!(rx.files, 32_553);
    assert_eq!(rx.units.len(), 48_228);
    let by_kind = rx.by_kind();
    for (kind, n) in [
        ("boot", 3_499),
        ("pseudonym", 1),
        ("sieve", 13),
        ("sieve.SkipPackage", 4),
        ("step", 6),
        ("step.Group", 6),
        ("wrap", 42_835),
        ("wrap.GHReleaseNotes", 1_864),
    ] {
        assert_eq!(by_kind.get(kind), Some(&n), "{kind}");
    }
    assert_eq!(rx.namespaces.keys().collect::<Vec<_>>(), ["thoth"]);
    assert!(rx.units.iter().all(|u| u.name.starts_with("thoth.")));
    // Units are routed by package; most are package-specific.
    assert!(rx.by_package.len() > 1000);
    eprintln!("{} generic units of {}", rx.generic.len(), rx.units.len());
    assert!(rx.generic.len() < rx.units.len() / 2);
    // A generic unit has an alternative about no particular package.
    for &i in &rx.generic {
        let u = &rx.units[i];
        assert!(
            u.matches().is_empty()
                || u.matches().iter().any(|m| m.package_name.is_none()
                    && m.package_version
                        .as_ref()
                        .and_then(|p| p.name.as_ref())
                        .is_none()
                    && m.state
                        .as_ref()
                        .and_then(|s| s.resolved_dependencies.first())
                        .is_none()
                    && m.group.is_empty()),
            "{} should be routed",
            u.name
        );
    }
    let flask = rx.by_package["flask"].len();
    assert!(flask > 0 && flask < 200, "{flask}");
    assert_eq!(
        rx.for_package("flask").count(),
        flask + rx.generic.len(),
        "specific units first, then generic"
    );
    // Legacy `==git` versions and `_indexes` sieves without a pipeline flag are dead units: warnings.
    assert!(
        rx.warnings
            .iter()
            .any(|w| w.message.contains("not a PEP 440 version"))
    );
    assert!(rx.warnings.iter().any(|w| w.message.contains("never runs")));

    // The compiled cache gives back exactly what compiling gives: the
    // second `load` reads the cache the first one wrote (or validated).
    let fresh = load_fresh(std::slice::from_ref(&dir));
    let cached = load(std::slice::from_ref(&dir));
    assert_eq!(fresh.units, cached.units);
    assert_eq!(fresh.warnings, cached.warnings);
    assert_eq!(fresh.errors, cached.errors);
    assert_eq!(fresh.files, cached.files);
    assert_eq!(fresh.by_package, cached.by_package);
}

/// `prescriptions check --json` with its own cache directory.
fn check_json(dir: &Path, cache: &Path) -> serde_json::Value {
    let out = common::thoth()
        .env("XDG_CACHE_HOME", cache)
        .args(["prescriptions", "check", "--json"])
        .arg(dir)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn compiled_cache_follows_every_change_to_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rx");
    let cache = tmp.path().join("cache");
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions");
    for entry in std::fs::read_dir(&ours).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let to = dir.join(entry.file_name());
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(entry.path()).unwrap() {
                let f = f.unwrap();
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        } else {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    // A namespace of its own: under ours, every unit would clash with the
    // bundled one of the same name (an error, as advise refuses it).
    let meta = dir.join("_prescription_metadata.yaml");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("name: thoth-rs", "name: copy")).unwrap();
    // Just written: too recent to trust timestamps, so never from the cache.
    let first = check_json(&dir, &cache);
    let written: Vec<_> = std::fs::read_dir(cache.join("thoth-rs/prescriptions"))
        .unwrap()
        .collect();
    assert_eq!(written.len(), 1, "one cache file per directory");
    assert!(first["units"].as_u64().unwrap() >= 30);
    assert!(first["errors"].as_array().unwrap().is_empty());
    let flask = dir.join("web/flask.yaml");
    let text = std::fs::read_to_string(&flask).unwrap();
    let garbled = |text: &str| text.replace("type: sieve", "type: 12345");
    std::fs::write(&flask, garbled(&text)).unwrap();
    assert!(
        !check_json(&dir, &cache)["errors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a change right after the cache was written is seen"
    );
    std::fs::write(&flask, &text).unwrap();

    // Settled (an hour old): the cache serves loads. A rewrite that keeps
    // the size and is given back its old time goes unseen, which shows
    // the cache answered.
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    age_tree(&dir, hour_ago);
    assert_eq!(check_json(&dir, &cache), first, "compiled again, settled");
    assert_eq!(check_json(&dir, &cache), first, "from the cache");
    assert_eq!(garbled(&text).len(), text.len());
    std::fs::write(&flask, garbled(&text)).unwrap();
    age_tree(&dir, hour_ago);
    assert_eq!(check_json(&dir, &cache), first, "from the cache");

    // Rewriting a file in place (same directory entries) is noticed.
    std::fs::write(
        &flask,
        text.replacen("type: sieve", "type: sieve.Nonsense", 1),
    )
    .unwrap();
    let broken = check_json(&dir, &cache);
    assert!(
        broken["errors"].to_string().contains("sieve.Nonsense"),
        "{broken}"
    );
    // So is a rewrite of the same size, and adding and removing files.
    std::fs::write(&flask, &text).unwrap();
    age_tree(&dir, hour_ago);
    assert_eq!(check_json(&dir, &cache), first);
    std::fs::write(&flask, garbled(&text)).unwrap();
    assert_ne!(check_json(&dir, &cache), first, "same size, newer time");
    std::fs::write(&flask, &text).unwrap();
    age_tree(&dir, hour_ago);
    assert_eq!(check_json(&dir, &cache), first);
    let extra = dir.join("web/extra.yaml");
    std::fs::write(&extra, text.replace("name: ", "name: Extra")).unwrap();
    std::fs::File::open(&extra)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let more = check_json(&dir, &cache);
    assert!(more["units"].as_u64() > first["units"].as_u64(), "added");
    std::fs::remove_file(&extra).unwrap();
    std::fs::remove_file(&flask).unwrap();
    age_tree(&dir, hour_ago);
    let fewer = check_json(&dir, &cache);
    assert!(fewer["units"].as_u64() < first["units"].as_u64(), "removed");
    assert_eq!(
        fewer["files"].as_u64().unwrap() + 1,
        first["files"].as_u64().unwrap()
    );
}

/// Set the modification time of `dir`, everything under it and itself.
fn age_tree(dir: &Path, when: std::time::SystemTime) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            age_tree(&entry.path(), when);
        } else {
            std::fs::File::open(entry.path())
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn merge_keys_follow_yaml_1_1() {
    // A list anchor merged into a map: the earlier map wins, explicit keys override.
    let text = r#"
units:
  wraps:
  - name: First
    type: wrap
    should_include: {adviser_pipeline: true}
    match: &both
    - state: {resolved_dependencies: [{name: tensorflow}]}
    - state: {resolved_dependencies: [{name: tensorflow-gpu}]}
    run: &run
      stack_info: [{type: INFO, message: hello, link: tf_info}]
  - name: Second
    type: wrap
    should_include: {adviser_pipeline: true}
    match: {<<: *both}
    run:
      <<: *run
      justification: [{type: WARNING, message: explicit, link: "https://127.0.0.1/a https://127.0.0.1/b"}]
"#;
    let (units, errors, _) = parse_file(Path::new("merge.yaml"), text, "test");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].matches().len(), 2);
    assert_eq!(units[1].matches().len(), 1, "a merged list becomes one map");
    let names: Vec<_> = units[1].matches()[0]
        .state
        .as_ref()
        .unwrap()
        .resolved_dependencies
        .iter()
        .map(|m| m.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["tensorflow"]);
    assert_eq!(units[1].run().stack_info.len(), 1);
    assert_eq!(
        units[1].run().justification[0].link.len(),
        2,
        "multi-URL links are kept"
    );
    assert_eq!(units[1].kind, UnitKind::Wrap);
}

fn errors_of(text: &str) -> Vec<String> {
    let (_, errors, _) = parse_file(Path::new("bad.yaml"), text, "test");
    errors
        .iter()
        .map(|e| format!("{}|{}|{}", e.unit, e.path, e.message))
        .collect()
}

#[test]
fn schema_errors_name_unit_and_key_path() {
    let base = |body: &str| {
        format!(
            "units:\n  steps:\n  - name: S\n    type: step\n    should_include: {{adviser_pipeline: true}}\n{body}"
        )
    };
    let cases = [
        (base("    match: {package_version: {name: numpy}}\n    run: {score: 1}\n"), "run.score", "must be a float"),
        (base("    match: {package_version: {name: numpy}}\n    run: {score: 1.5}\n"), "run.score", "outside [-1, 1]"),
        (base("    match: {package_version: {name: NumPy_Stuff, version: '>=1,<'}}\n"), "match.package_version.version", "invalid version specifier"),
        (base("    match: {package_version: {name: numpy}}\n    run: {not_acceptable: x, score: 0.5}\n"), "run", "exclude score"),
        (base("    match: {package_version: {name: numpy}}\n    run: {scor: 0.5}\n"), "run.scor", "unknown key"),
        (base("    match: {package_version: {name: numpy}}\n    run: {stack_info: [{type: DEBUG, message: x}]}\n"), "run.stack_info[0].type", "unknown message type"),
        (base("    match: {package_version: {name: numpy}}\n    run: {stack_info: [{type: INFO, message: x, link: 'not a link!'}]}\n"), "run.stack_info[0].link", "neither an http(s) URL"),
        (base("    run: {score: 0.5}\n"), "match", "need a match section"),
        (base("    match: {package_version: {name: numpy, index_url: {nope: x}}}\n"), "match.package_version.index_url.nope", "unknown key"),
        ("units:\n  sieves:\n  - name: X\n    type: step\n    should_include: {}\n".to_string(), "type", "does not belong in `sieves`"),
        ("units:\n  boots:\n  - name: B\n    type: boot\n    should_include: {recommendation_types: [fastest]}\n".to_string(), "should_include.recommendation_types[0]", "unknown recommendation type"),
        ("units:\n  boots:\n  - name: B\n    type: boot\n    should_include: {runtime_environments: {hardware: [{cpu_families: [six]}]}}\n".to_string(), "should_include.runtime_environments.hardware[0].cpu_families[0]", "expected an integer"),
        ("units:\n  steps:\n  - name: G\n    type: step.Group\n    should_include: {}\n    match: {group: [{package_version: {name: a}}]}\n".to_string(), "match.group", "at least two"),
        ("units: [1, 2]\n".to_string(), "units", "expected a map"),
    ];
    for (text, path, message) in cases {
        let errors = errors_of(&text);
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("|{path}|")) && e.contains(message)),
            "expected `{path}`: `{message}` in {errors:?}\n{text}"
        );
    }
}

#[test]
fn hostile_yaml_is_an_error_not_a_crash() {
    // Billion laughs.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, prev) in ('b'..='j').zip('a'..='i') {
        bomb.push_str(&format!(
            "{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    bomb.push_str("units: {}\n");
    assert!(!errors_of(&bomb).is_empty());
    // Deep nesting.
    let deep = format!("units: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    assert!(!errors_of(&deep).is_empty());
    // Not YAML at all, and wrong top-level types.
    assert!(!errors_of("units: [unclosed\n").is_empty());
    assert!(!errors_of("42\n").is_empty());
    assert!(!errors_of("units:\n  wraps: {name: x}\n").is_empty());
}

#[test]
fn check_command_reports_json_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("_prescription_metadata.yaml"),
        "prescription:\n  name: mine\n  release: '1.0'\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("nu_")).unwrap();
    std::fs::write(
        dir.path().join("nu_/ok.yaml"),
        "units:\n  wraps:\n  - name: W\n    type: wrap\n    should_include: {adviser_pipeline: true}\n    run: {justification: [{type: INFO, message: hi, link: x}]}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_thoth-rs"))
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["prescriptions", "check", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["files"], 1);
    assert_eq!(report["units"], 1);
    assert_eq!(report["by_kind"]["wrap"], 1);
    assert_eq!(report["namespaces"]["mine"], "1.0");
    assert!(report["errors"].as_array().unwrap().is_empty());

    std::fs::write(dir.path().join("nu_/bad.yaml"), "units:\n  steps:\n  - name: S\n    type: step\n    should_include: {adviser_pipeline: true}\n    match: {package_version: {name: numpy}}\n    run: {score: 2}\n").unwrap();
    let out = run(&["prescriptions", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = &report["errors"][0];
    assert!(err["file"].as_str().unwrap().ends_with("bad.yaml"));
    assert_eq!(err["unit"], "mine.S");
    assert_eq!(err["path"], "run.score");
    for key in ["file", "unit", "path", "message"] {
        assert!(err.get(key).is_some());
    }
}
