//! Hostile inputs the parsers must refuse within bounds. Each run gets an
//! address-space limit of 1 GiB (`ulimit -v`, set by the test): a parser
//! that tried to build what the input describes would abort instead of
//! exiting 2 with a message naming the file.

mod common;

use std::path::Path;

/// Run `thoth-rs ARGS` in `dir` with at most 1 GiB of address space.
fn bounded(dir: &Path, args: &str) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_thoth-rs");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 1048576; exec '{bin}' {args}"))
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
