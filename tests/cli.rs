//! End-to-end behaviour of the binary: config round trip, advise on the
//! example projects, exit codes, help, and broken pipes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
use common::{json_ok, thoth as bin};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn config_print_is_read_back_by_advise() {
    let out = bin().args(["config", "--print"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(yaml.contains("runtime_environments:"));
    assert!(yaml.contains("platform: "));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".thoth.yaml"), &yaml).unwrap();
    std::fs::write(dir.path().join("requirements.in"), "flask>=2\n").unwrap();
    let report = json_ok(bin().arg("-C").arg(dir.path()).args(["advise", "--json"]));
    let env = &report["inputs"]["environment"];
    // What config detected is what advise uses.
    let parsed: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
    let detected = &parsed["runtime_environments"][0];
    assert_eq!(env["name"].as_str(), detected["name"].as_str());
    assert_eq!(env["platform"].as_str(), detected["platform"].as_str());
    assert_eq!(report["inputs"]["recommendation_type"], "stable");
    assert_eq!(report["error"], false);
    let lock = &report["products"][0]["lock"];
    assert!(
        lock["default"]["flask"]["version"]
            .as_str()
            .unwrap()
            .starts_with("==3.")
    );
    // A requirements.in project gets requirements.txt, as pip-compile writes.
    let written = std::fs::read_to_string(dir.path().join("requirements.txt")).unwrap();
    assert!(written.contains("flask==3."), "{written}");
    assert!(written.contains("--hash=sha256:"), "{written}");
    assert!(!dir.path().join("Pipfile.lock").exists());
}

#[test]
fn config_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".thoth.yaml");
    std::fs::write(&path, "# mine\n").unwrap();
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mine\n");
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .args(["config", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("runtime_environments")
    );
}

#[test]
fn advise_reports_example_project_and_writes_lock_where_asked() {
    let dir = example("flask-app");
    let out_dir = tempfile::tempdir().unwrap();
    let lock_path = out_dir.path().join("Pipfile.lock");
    let before = std::fs::read_dir(&dir).unwrap().count();
    let out = bin()
        .arg("-C")
        .arg(&dir)
        .args([
            "advise",
            "--json",
            "--dev",
            "--labels",
            "requester=ci",
            "-o",
        ])
        .arg(&lock_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inputs = &report["inputs"];
    assert_eq!(inputs["project"]["kind"], "Pipfile");
    assert_eq!(
        inputs["project"]["requirements"].as_array().unwrap().len(),
        5
    );
    assert_eq!(inputs["environment"]["name"], "rhel-8-py311");
    assert_eq!(inputs["environment"]["os_name"], "rhel");
    assert_eq!(inputs["recommendation_type"], "stable");
    assert_eq!(inputs["recommendation_type_from"], "environment");
    assert_eq!(inputs["labels"]["team"], "web");
    assert_eq!(inputs["labels"]["requester"], "ci");
    // The lock went to -o, nothing was added next to the project.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), before);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    assert_eq!(written, report["products"][0]["lock"]);
    assert!(
        written["develop"]["pytest"].is_object(),
        "--dev locks dev packages"
    );
    assert!(written["default"]["pytest"].is_null());
    assert_eq!(
        written["default"]["gunicorn"]["markers"], "sys_platform == 'linux'",
        "a direct dependency keeps its Pipfile marker"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pytest>=7 (dev)"), "{stderr}");
    assert!(stderr.contains("flask 3."), "{stderr}");
}

#[test]
fn advise_flag_overrides_environment() {
    let report = json_ok(
        bin().arg("-C").arg(example("flask-app")).args([
            "advise",
            "--json",
            "-e",
            "ubuntu-py312",
            "-t",
            "security",
            "-o",
            std::env::temp_dir()
                .join(format!("thoth-rs-test-{}.lock", std::process::id()))
                .to_str()
                .unwrap(),
        ]),
    );
    assert_eq!(report["inputs"]["environment"]["python_version"], "3.12");
    assert_eq!(report["inputs"]["recommendation_type"], "security");
    assert_eq!(report["inputs"]["recommendation_type_from"], "command-line");
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for args in [
        vec!["advise"],
        vec!["dependency-monkey"],
        vec!["provenance-check"],
        vec!["prescriptions", "check"],
        vec!["snapshot", "sync"],
        vec!["snapshot", "info"],
        vec!["snapshot", "import-advisories"],
        vec!["config"],
    ] {
        let out = bin().args(&args).arg("--help").output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Examples:"),
            "{args:?} help has no examples:\n{text}"
        );
    }
}

#[test]
fn provenance_check_without_a_lock_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .args(["provenance-check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Pipfile.lock") && stderr.contains("not found"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = bin().args(["advise", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn broken_pipe_is_not_a_panic() {
    let mut child = bin()
        .args(["config", "--print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the child writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Without `--format` or `-o`, each kind of project gets the lock its own
/// tool writes, beside the project file; `--format` and `-o` win.
#[test]
fn the_default_lock_follows_the_project_kind() {
    let run = |dir: &Path, args: &[&str]| {
        let out = bin()
            .arg("-C")
            .arg(dir)
            .args(["advise", "-q"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let files = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // NAME.in → NAME.txt with hashes.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.in"), "six\n").unwrap();
    run(dir.path(), &["--project", "dev.in"]);
    assert_eq!(files(dir.path()), ["dev.in", "dev.txt"]);
    let txt = std::fs::read_to_string(dir.path().join("dev.txt")).unwrap();
    assert!(
        txt.contains("six==") && txt.contains("--hash=sha256:"),
        "{txt}"
    );
    // --format alone names the file after the format.
    run(
        dir.path(),
        &["--project", "dev.in", "--format", "pipfile-lock"],
    );
    assert!(dir.path().join("Pipfile.lock").is_file());
    // pyproject.toml → pylock.toml.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"demo\"\nversion = \"1.0\"\ndependencies = [\"six\"]\n",
    )
    .unwrap();
    run(dir.path(), &[]);
    assert_eq!(files(dir.path()), ["pylock.toml", "pyproject.toml"]);
    // requirements.txt as the project → pylock.toml (never over the input).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.txt"), "six\n").unwrap();
    run(dir.path(), &[]);
    assert_eq!(files(dir.path()), ["pylock.toml", "requirements.txt"]);
    // A Pipfile → Pipfile.lock; -o wins over everything.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Pipfile"), "[packages]\nsix = \"*\"\n").unwrap();
    run(dir.path(), &[]);
    assert_eq!(files(dir.path()), ["Pipfile", "Pipfile.lock"]);
    run(dir.path(), &["-o", "elsewhere.lock"]);
    assert!(dir.path().join("elsewhere.lock").is_file());
}

/// pylock.toml admits every interpreter the target stands for: a
/// `python_version` of X.Y means every patch release of it; a patch
/// release in `.thoth.yaml` is accepted and named exactly.
#[test]
fn pylock_environments_admit_the_target_interpreters() {
    let pylock = |python: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("requirements.in"), "six\n").unwrap();
        std::fs::write(
            dir.path().join(".thoth.yaml"),
            format!(
                "runtime_environments:\n  - name: app\n    python_version: \"{python}\"\n    platform: linux-x86_64\n"
            ),
        )
        .unwrap();
        let out = bin()
            .arg("-C")
            .arg(dir.path())
            .args(["advise", "-q", "--format", "pylock", "-o", "pylock.toml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("pylock.toml")).unwrap();
        let doc: toml::Value = toml::from_str(&text).unwrap();
        (
            doc["environments"][0].as_str().unwrap().to_string(),
            doc["requires-python"].as_str().unwrap().to_string(),
        )
    };
    let (env, requires) = pylock("3.11");
    assert_eq!(
        env,
        "sys_platform == 'linux' and platform_machine == 'x86_64' and python_version == '3.11'"
    );
    assert_eq!(requires, "==3.11.*");
    let (env, requires) = pylock("3.11.7");
    assert_eq!(
        env,
        "sys_platform == 'linux' and platform_machine == 'x86_64' and python_full_version == '3.11.7'"
    );
    assert_eq!(requires, "==3.11.7");
}

/// `[dev-packages]` is checked even when the run leaves it out, but then
/// its errors only warn; with `--dev` they stop the run. An end-of-life
/// target Python is named with where it came from and how to pick another.
#[test]
fn unused_sections_warn_and_old_pythons_are_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Pipfile"),
        "[packages]\nsix = \"*\"\n\n[dev-packages]\nmypy = \"latest\"\n\n[requires]\npython_version = \"3.6\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "-o", "out.lock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("dev-packages") && stderr.contains("mypy") && stderr.contains("ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the target is Python 3.6 (from the project's [requires]), which reached its end of life in 2021-12"),
        "{stderr}"
    );
    assert!(
        stderr.contains("python_version` in .thoth.yaml"),
        "{stderr}"
    );
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "--dev", "-o", "out.lock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("Pipfile") && stderr.contains("mypy"),
        "{stderr}"
    );
    // A supported target says nothing of the kind.
    std::fs::write(
        dir.path().join("Pipfile"),
        "[packages]\nsix = \"*\"\n\n[requires]\npython_version = \"3.12\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("-C")
        .arg(dir.path())
        .args(["advise", "-o", "out.lock"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("end of life"), "{stderr}");
}

/// Writing a lock respects what the output path is: a symlinked lock
/// stays a link to its updated target; a directory or a device is refused
/// with exit 2 and left alone. A byte-order mark at the start of a
/// requirements or constraints file is accepted, as pip does; an absurd
/// time budget is a usage error, not a crash.
#[cfg(unix)]
#[test]
fn outputs_and_odd_inputs_are_handled_as_a_user_expects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "\u{feff}six\n").unwrap();
    std::fs::write(dir.path().join("c.txt"), "\u{feff}six>=1.10\n").unwrap();
    std::fs::create_dir(dir.path().join("locks")).unwrap();
    std::fs::write(dir.path().join("locks/real.txt"), "old").unwrap();
    std::os::unix::fs::symlink("locks/real.txt", dir.path().join("requirements.txt")).unwrap();
    let run = |args: &[&str]| {
        bin()
            .arg("-C")
            .arg(dir.path())
            .args(["advise", "-q"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--constraints", "c.txt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = dir.path().join("requirements.txt");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let written = std::fs::read_to_string(dir.path().join("locks/real.txt")).unwrap();
    assert!(written.contains("six=="), "{written}");
    // A directory as the output.
    let out = run(&["-o", "locks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    assert!(dir.path().join("locks").is_dir());
    // A lock that cannot be written (its directory does not exist): exit
    // 3, apart from "no stack" (1) and bad input (2), and nothing left.
    let out = run(&["-o", "no-such-dir/lock.txt"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot write") && err.contains("no-such-dir/lock.txt"),
        "{err}"
    );
    assert!(!dir.path().join("no-such-dir").exists());
    // --time-budget out of range.
    for budget in ["2e19", "0", "-1", "inf"] {
        let out = run(&[&format!("--time-budget={budget}")]);
        assert_eq!(out.status.code(), Some(2), "{budget}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--time-budget"),
            "{budget}"
        );
    }
}
