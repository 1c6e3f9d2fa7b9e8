//! Provenance check of an existing Pipfile.lock against the snapshot: every
//! locked package must be known, at its locked version, with hashes the
//! snapshot recorded for that release, from the index the snapshot was built
//! from. Findings carry Thoth's ids so existing tooling can read them.

use std::collections::BTreeMap;

use crate::input::pipfile_lock::{LockedPackage, PipfileLock};
use crate::kb::{KbError, KnowledgeBase, Lookup};
use crate::prescription::schema::{Message, MessageType};

/// One problem (or note) about the lock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// ERROR or WARNING.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// Finding id (`MISSING-PACKAGE`, `INVALID-ARTIFACT-HASH`, …).
    pub id: &'static str,
    /// What is wrong.
    pub justification: String,
    /// Package concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// Its locked version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    /// Lock section (`default` or `develop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<&'static str>,
}

impl Finding {
    /// As a stack_info entry.
    pub fn to_message(&self) -> Message {
        let mut extra = BTreeMap::new();
        extra.insert("id".to_string(), self.id.to_string());
        Message {
            kind: self.kind,
            message: self.justification.clone(),
            link: Vec::new(),
            package_name: self.package_name.clone(),
            extra,
        }
    }
}

fn normalise_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or("");
    if rest.starts_with("[::1]") {
        return true;
    }
    let host = rest.split(['/', ':']).next().unwrap_or("");
    host == "localhost" || host.starts_with("127.")
}

/// Check `lock` against `kb`. `pipfile_hash` is the hash the project's
/// current Pipfile gives, when there is one beside the lock.
pub fn check(
    lock: &PipfileLock,
    kb: &dyn KnowledgeBase,
    pipfile_hash: Option<&str>,
) -> Result<Vec<Finding>, KbError> {
    let mut out = Vec::new();
    if let Some(expected) = pipfile_hash
        && lock.hash.as_deref() != Some(expected)
    {
        out.push(Finding {
            kind: MessageType::Error,
            id: "INVALID-LOCK-HASH",
            justification: format!(
                "the lock's _meta.hash ({}) does not match the Pipfile beside it ({expected}); the lock is out of date",
                lock.hash.as_deref().unwrap_or("missing")
            ),
            package_name: None,
            package_version: None,
            section: None,
        });
    }
    let snapshot_index = kb.meta().index_url.as_deref().map(normalise_url);
    for source in &lock.sources {
        if source.url.starts_with("http://") && !is_loopback(&source.url) {
            out.push(Finding {
                kind: MessageType::Warning,
                id: "INSECURE-SOURCE",
                justification: format!(
                    "source {} uses plain HTTP ({}); artifacts can be altered in transit",
                    source.name, source.url
                ),
                package_name: None,
                package_version: None,
                section: None,
            });
        }
    }
    for (section, packages) in [("default", &lock.default), ("develop", &lock.develop)] {
        for p in packages.values() {
            check_package(lock, kb, p, section, snapshot_index.as_deref(), &mut out)?;
        }
    }
    Ok(out)
}

fn check_package(
    lock: &PipfileLock,
    kb: &dyn KnowledgeBase,
    p: &LockedPackage,
    section: &'static str,
    snapshot_index: Option<&str>,
    out: &mut Vec<Finding>,
) -> Result<(), KbError> {
    let finding = |kind, id, justification: String| Finding {
        kind,
        id,
        justification,
        package_name: Some(p.name.clone()),
        package_version: Some(p.version.to_string()),
        section: Some(section),
    };
    let missing = match kb.project(&p.name)? {
        Lookup::Found(_) => None,
        Lookup::Unavailable(reason) => Some(format!(
            "{} is not available in the snapshot: {reason}",
            p.name
        )),
        Lookup::Missing => Some(format!("{} is not in the snapshot", p.name)),
    };
    if let Some(message) = missing {
        out.push(finding(MessageType::Error, "MISSING-PACKAGE", message));
        return Ok(());
    }
    if kb.release(&p.name, &p.version)?.is_none() {
        out.push(finding(
            MessageType::Error,
            "MISSING-PACKAGE",
            format!(
                "{} {} is not a release the snapshot knows",
                p.name, p.version
            ),
        ));
        return Ok(());
    }
    let known = kb.hashes(&p.name, &p.version)?;
    if p.hashes.is_empty() {
        out.push(finding(
            MessageType::Warning,
            "MISSING-ARTIFACT-HASH",
            format!(
                "{} {} is locked without hashes; its artifacts cannot be verified",
                p.name, p.version
            ),
        ));
    }
    for h in &p.hashes {
        if !known.iter().any(|k| k.eq_ignore_ascii_case(h)) {
            out.push(finding(
                MessageType::Error,
                "INVALID-ARTIFACT-HASH",
                format!(
                    "{} {}: hash {h} matches no artifact of this release in the snapshot",
                    p.name, p.version
                ),
            ));
        }
    }
    let source = match &p.index {
        Some(name) => match lock.sources.iter().find(|s| &s.name == name) {
            Some(s) => Some(s),
            None => {
                out.push(finding(
                    MessageType::Error,
                    "SOURCE-NOT-WHITELISTED",
                    format!(
                        "{} names index {name}, which is not among the lock's sources",
                        p.name
                    ),
                ));
                return Ok(());
            }
        },
        None if lock.sources.len() == 1 => lock.sources.first(),
        None => None,
    };
    if let (Some(source), Some(expected)) = (source, snapshot_index)
        && normalise_url(&source.url) != expected
    {
        out.push(finding(
            MessageType::Error,
            "ARTIFACT-DIFFERENT-SOURCE",
            format!(
                "{} {} is locked from {} but the snapshot records its artifacts on {expected}",
                p.name, p.version, source.url
            ),
        ));
    }
    Ok(())
}
