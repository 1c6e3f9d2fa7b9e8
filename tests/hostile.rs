//! Hostile inputs the parsers must refuse within bounds. Each run gets an
//! address-space limit of 1 GiB (`ulimit -v`) and is killed after 90 s
//! (`timeout`), limits the test sets itself: a parser that tried to build
//! what the input describes, or took quadratic time, would abort or be
//! killed instead of exiting with its code and a message naming the file.

mod common;

use std::path::Path;

/// Run `thoth-rs ARGS` in `dir` with at most 1 GiB of address space.
fn bounded(dir: &Path, args: &str) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_thoth-rs");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 1048576; exec timeout 90 '{bin}' {args}"))
        .current_dir(dir)
        .env("THOTH_OFFLINE", "1")
        .env("THOTH_KB", dir.join("kb.sqlite"))
        .env("NO_COLOR", "1")
        .env_remove("THOTH_LOG")
        .output()
        .unwrap()
}

/// A 1 MiB anchor referenced 3,000 times: 3 GiB once expanded.
fn alias_bomb(prefix: &str) -> String {
    let mut text = format!("{prefix}big: &a \"{}\"\n", "x".repeat(1 << 20));
    text.push_str("refs:\n");
    for i in 0..3000 {
        text.push_str(&format!("  k{i}: *a\n"));
    }
    text
}

#[test]
fn yaml_alias_bombs_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "six\n").unwrap();
    std::fs::write(dir.path().join(".thoth.yaml"), alias_bomb("")).unwrap();
    let out = bounded(dir.path(), "advise -q");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(".thoth.yaml") && err.contains("aliases would expand it"),
        "{err}"
    );

    // The same in a prescription file: reported as an error of that file.
    let units = dir.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("bomb.yaml"), alias_bomb("units: {}\n")).unwrap();
    std::fs::remove_file(dir.path().join(".thoth.yaml")).unwrap();
    let out = bounded(dir.path(), "prescriptions check units");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("bomb.yaml") && text.contains("aliases would expand it"),
        "{text}"
    );
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("requirements.in"), "six\n").unwrap();
    for open in ["[", "{"] {
        std::fs::write(dir.path().join(".thoth.yaml"), open.repeat(100_000)).unwrap();
        let out = bounded(dir.path(), "advise -q");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{open}: {err}");
        assert!(err.contains(".thoth.yaml"), "{err}");
    }
}

#[test]
fn includes_are_bounded_and_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 5,000 nested `-r` files: refused at the depth limit, naming the file
    // and line of the include, without overflowing the stack.
    for i in 0..5000 {
        std::fs::write(
            d.join(format!("n{i}.in")),
            format!("-r n{}.in\nsix\n", i + 1),
        )
        .unwrap();
    }
    std::fs::write(d.join("n5000.in"), "six\n").unwrap();
    std::fs::copy(d.join("n0.in"), d.join("requirements.in")).unwrap();
    let out = bounded(d, "advise -q --format requirements -o lock.txt");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("includes nested deeper than 64"), "{err}");
    assert!(err.contains(".in:1"), "{err}");

    // Diamond includes, 40 levels (each file includes the next twice):
    // each file is read once, so this resolves at once.
    let diamond = tempfile::tempdir().unwrap();
    let d = diamond.path();
    for i in 0..40 {
        std::fs::write(
            d.join(format!("d{i}.in")),
            format!("-r d{next}.in\n-r d{next}.in\n", next = i + 1),
        )
        .unwrap();
    }
    std::fs::write(d.join("d40.in"), "six\n").unwrap();
    std::fs::copy(d.join("d0.in"), d.join("requirements.in")).unwrap();
    let out = bounded(d, "advise -q --format requirements -o lock.txt");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(d.join("lock.txt"))
            .unwrap()
            .contains("six==")
    );
}

#[test]
fn special_files_are_not_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A FIFO would block a reader forever; /dev/zero never ends.
    let fifo = d.join("pipe.txt");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut cases = vec!["-r /dev/zero\n".to_string()];
    if made {
        cases.push("-r pipe.txt\n".to_string());
    }
    for case in cases {
        std::fs::write(d.join("requirements.in"), &case).unwrap();
        let out = bounded(d, "advise -q");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(err.contains("not a regular file"), "{case}: {err}");
        assert!(err.contains("requirements.in:1"), "{case}: {err}");
    }
    // A FIFO named like a prescription file is skipped with an error, not
    // waited on.
    if made {
        let units = d.join("units");
        std::fs::create_dir_all(&units).unwrap();
        std::process::Command::new("mkfifo")
            .arg(units.join("x.yaml"))
            .status()
            .unwrap();
        let out = bounded(d, "prescriptions check units");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("x.yaml"), "{text}");
    }
}

#[test]
fn inputs_with_tens_of_thousands_of_entries_are_read_in_linear_time() {
    // 20,000 Pipfile packages and 20,000 constraints: quadratic checks
    // (duplicate names, line numbers found from the start of the file)
    // took minutes for such files; each run here is killed after 90 s.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut pipfile = String::from("[packages]\n");
    let mut constraints = String::new();
    for i in 0..20_000 {
        pipfile.push_str(&format!("pkg{i} = \"*\"\n"));
        constraints.push_str(&format!("pkg{i}<9\n"));
    }
    std::fs::write(d.join("Pipfile"), pipfile).unwrap();
    std::fs::write(d.join("c.txt"), constraints).unwrap();
    let out = bounded(d, "advise -q --constraints c.txt");
    let err = String::from_utf8_lossy(&out.stderr);
    // Offline, the projects are unknown: the run gets as far as naming
    // them, which needs every entry read.
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot supply"), "{err}");
}

#[test]
fn an_over_long_base_image_is_named_with_its_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.in"), "six\n").unwrap();
    let long = "a".repeat(5000);
    std::fs::write(
        d.join(".thoth.yaml"),
        format!("runtime_environments:\n- name: app\n  base_image: {long}:1\n"),
    )
    .unwrap();
    let out = bounded(d, "advise -q");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(".thoth.yaml") && err.contains("base_image") && err.contains("at most 255"),
        "{err}"
    );
    std::fs::remove_file(d.join(".thoth.yaml")).unwrap();
    let out = bounded(d, &format!("advise -q --base-image {long}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--base-image") && err.contains("at most 255"),
        "{err}"
    );
}

/// A copy of the bundled snapshot at `to`, damaged by `damage`.
fn damaged_copy(to: &Path, damage: impl FnOnce(&Path)) {
    let info = common::json_ok(common::thoth().args(["snapshot", "info", "--json"]));
    std::fs::copy(info["path"].as_str().unwrap(), to).unwrap();
    damage(to);
}

fn sql(path: &Path, batch: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(batch)
        .unwrap();
}

#[test]
fn damaged_or_hostile_snapshots_are_bad_input_with_one_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.in"), "flask\n").unwrap();
    let snap = d.join("snap.sqlite");
    type Damage = Box<dyn FnOnce(&Path)>;
    // What the message must say (any one of).
    let cases: Vec<(&str, Damage, &[&str])> = vec![
        (
            "zeroed pages",
            Box::new(|p: &Path| {
                use std::io::{Seek, SeekFrom, Write};
                let mut f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                let len = f.metadata().unwrap().len();
                f.seek(SeekFrom::Start(len / 4096 / 3 * 4096)).unwrap();
                f.write_all(&vec![0; len as usize / 3]).unwrap();
            }),
            &["malformed", "damaged"],
        ),
        (
            "truncated",
            Box::new(|p: &Path| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(1 << 20)
                    .unwrap();
            }),
            &["malformed", "damaged"],
        ),
        (
            "a table replaced by an endless view",
            Box::new(|p: &Path| {
                sql(
                    p,
                    "ALTER TABLE releases RENAME TO kept;
                     CREATE VIEW releases AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)
                       SELECT kept.* FROM kept WHERE (SELECT count(*) FROM r) > 0;",
                )
            }),
            &["view releases"],
        ),
        (
            "a trigger",
            Box::new(|p: &Path| {
                sql(
                    p,
                    "CREATE TABLE t (x); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;",
                )
            }),
            &["trigger tr"],
        ),
    ];
    for (what, damage, needle) in cases {
        damaged_copy(&snap, damage);
        for args in [
            "advise -q --snapshot snap.sqlite -o out.lock",
            "snapshot info --snapshot snap.sqlite",
        ] {
            let out = bounded(d, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {args}: {err}");
            assert!(
                err.contains("snap.sqlite") && needle.iter().any(|n| err.contains(n)),
                "{what}: {args}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
        assert!(!d.join("out.lock").exists(), "{what}");
    }
}

#[test]
fn temporary_files_of_killed_runs_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.in"), "six\n").unwrap();
    // What a run killed while writing its lock would leave: its process
    // (an id above the kernel's maximum) no longer exists.
    let stale = d.join(".requirements.txt.4194305.0.tmp");
    std::fs::write(&stale, "half a lock").unwrap();
    let out = bounded(d, "advise -q");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.join("requirements.txt").is_file());
    assert!(!stale.exists());
}

#[test]
fn prescriptions_check_and_advise_agree_on_a_name_clash_with_ours() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.in"), "six\n").unwrap();
    // A directory holding a copy of one of our own files.
    let units = d.join("units");
    std::fs::create_dir_all(&units).unwrap();
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions");
    std::fs::copy(
        ours.join("packaging/backports.yaml"),
        units.join("backports.yaml"),
    )
    .unwrap();
    std::fs::copy(
        ours.join("_prescription_metadata.yaml"),
        units.join("_prescription_metadata.yaml"),
    )
    .unwrap();
    let out = bounded(d, "prescriptions check units");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Enum34OnPython3Sieve") && err.contains("advise would refuse"),
        "{err}"
    );
    let out = bounded(d, "advise -q --prescriptions units");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Enum34OnPython3Sieve"), "{err}");
}

#[test]
fn numeric_options_out_of_range_are_usage_errors_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("requirements.in"), "six\n").unwrap();
    for (args, option) in [
        ("advise --time-budget 2e19", "--time-budget"),
        ("advise --concurrency 0", "--concurrency"),
        ("advise --concurrency 100000", "--concurrency"),
        ("advise --max-age 99999999999999", "--max-age"),
        (
            "snapshot sync --package six --jobs 100000 -o s.sqlite",
            "--jobs",
        ),
        ("dependency-monkey --count 99999999999999999999", "--count"),
    ] {
        let out = bounded(d, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args}: {err}");
        assert!(err.contains(option), "{args}: {err}");
        assert!(!d.join("s.sqlite").exists());
    }
}
