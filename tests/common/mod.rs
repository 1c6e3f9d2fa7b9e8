//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod bundled;
pub mod index;
pub mod wheel;

/// The binary under test, with logging and colour settings cleared,
/// working offline on the bundled snapshot with an empty user knowledge
/// base of its own (tests never use the network or the developer's data).
pub fn thoth() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thoth-rs"));
    cmd.env_remove("THOTH_LOG")
        .env("NO_COLOR", "1")
        .env("THOTH_OFFLINE", "1")
        .env("THOTH_KB", empty_user_kb())
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_EXTRA_INDEX_URL");
    cmd
}

/// A user knowledge base path no test writes to (working offline, nothing
/// is fetched, so it stays empty), one per test process.
pub fn empty_user_kb() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("empty-kb-{}.sqlite", std::process::id()))
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
pub mod checker;

/// Small in-memory universes for resolver tests.
pub mod universe {
    use std::sync::Arc;

    use thoth_rs::kb::memory::MemoryKb;
    use thoth_rs::kb::metadata::dependency_from_requirement;
    use thoth_rs::kb::{Distribution, ProjectRecord, Release, Requires, SnapshotMeta};
    use thoth_rs::python::parse_version;

    /// Loopback index URL recorded in test snapshots.
    pub const INDEX: &str = "http://127.0.0.1:9/simple/";

    /// A release with one pure-Python wheel and the given Requires-Dist.
    pub fn release(name: &str, version: &str, deps: &[&str]) -> Release {
        Release {
            version: parse_version(version).unwrap(),
            upload_time: Some("2024-01-01T00:00:00Z".into()),
            yanked: false,
            yanked_reason: None,
            requires_python: None,
            distributions: vec![Distribution {
                filename: format!("{}-{version}-py3-none-any.whl", name.replace('-', "_")),
                sha256: Some(format!(
                    "{:0>64}",
                    format!("{:x}", name.len() * 1000 + version.len())
                )),
                size: Some(1000),
                upload_time: Some("2024-01-01T00:00:00Z".into()),
                requires_python: None,
                yanked: false,
                url: Some(format!(
                    "{INDEX}files/{}-{version}-py3-none-any.whl",
                    name.replace('-', "_")
                )),
            }],
            dependencies: Requires::Known(Arc::new(
                deps.iter()
                    .map(|d| dependency_from_requirement(d).unwrap())
                    .collect(),
            )),
            provides_extras: Vec::new(),
            advisories: Vec::new(),
        }
    }

    /// An empty knowledge base recording the loopback index.
    pub fn empty() -> MemoryKb {
        MemoryKb {
            meta: SnapshotMeta {
                schema_version: 1,
                index_url: Some(INDEX.into()),
                ..SnapshotMeta::default()
            },
            ..MemoryKb::default()
        }
    }

    /// Add a project with `releases` (version, Requires-Dist).
    pub fn add(kb: &mut MemoryKb, name: &str, releases: &[(&str, &[&str])]) {
        kb.insert(ProjectRecord {
            name: name.into(),
            display_name: name.into(),
            releases: releases
                .iter()
                .map(|(v, deps)| release(name, v, deps))
                .collect(),
            index: None,
        });
    }
}
