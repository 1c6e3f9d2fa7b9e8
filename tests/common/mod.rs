//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test, with logging and colour settings cleared.
pub fn thoth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thoth-rs"));
    cmd.env_remove("THOTH_LOG").env("NO_COLOR", "1");
    cmd
}

/// Run `cmd`, require success, and parse its stdout as JSON.
pub fn json_ok(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A directory of ../shared/data, or `None` (with a message) when absent.
pub fn shared_data(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: {} is not present", p.display());
        None
    }
}
