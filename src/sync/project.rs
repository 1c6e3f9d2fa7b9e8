//! `snapshot sync --project`: a frozen knowledge base holding what resolving
//! one project needs, built through the live knowledge base.
//!
//! The project is resolved as `advise` would (for each environment and
//! recommendation type asked for), online, so every page and release
//! metadata the searches needed is fetched and stored in the user knowledge
//! base. The snapshot then takes, for every project a search looked up, its
//! whole release list with every file, and for each release the metadata
//! that is known (read, or "unavailable, because …") — the others are
//! marked "not fetched", so an offline run says so instead of treating them
//! as absent. Advisories of those projects come along from the base
//! snapshot. `advise --offline --snapshot FILE` then gives the same stack as
//! the live runs.

use std::path::Path;

use crate::kb::layered::{LayeredKb, Origin};
use crate::kb::writer::SnapshotWriter;
use crate::kb::{
    KbError, KnowledgeBase, Lookup, MetadataAnswer, ProjectRecord, Requires, SnapshotMeta,
};

/// What a project snapshot holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ProjectSnapshot {
    /// Projects stored with releases.
    pub projects: usize,
    /// Names recorded as unavailable.
    pub unavailable: usize,
    /// Releases stored.
    pub releases: usize,
    /// … with dependency metadata.
    pub with_metadata: usize,
    /// … whose metadata is known to be unavailable.
    pub metadata_unavailable: usize,
    /// … whose metadata was not fetched.
    pub not_fetched: usize,
    /// Advisories copied from the base snapshot.
    pub advisories: usize,
    /// The cutoff recorded: when the oldest page it holds was read.
    pub cutoff: String,
}

/// A release list with every file: from the user knowledge base for pages
/// read from an index, from the base snapshot for its own records.
fn whole_record(
    kb: &LayeredKb,
    name: &str,
    found: &ProjectRecord,
    origin: &Origin,
) -> Result<ProjectRecord, KbError> {
    if let Origin::Snapshot { .. } = origin
        && let Some(base) = kb.base()
    {
        let mut record = found.clone();
        for release in &mut record.releases {
            release.distributions = base.files(name, &release.version)?;
        }
        return Ok(record);
    }
    if let Some(index) = kb.index_key(found)
        && let Some(page) = kb.store().page(&index, name)?
        && let Some(mut record) = page.record
    {
        record.index = None;
        return Ok(record);
    }
    Ok(found.clone())
}

/// What a snapshot records about how it was made.
#[derive(Debug, Clone, Default)]
pub struct SnapshotFacts {
    /// The roots (requirement texts).
    pub roots: Vec<String>,
    /// Files uploaded after this time (Unix seconds) are left out, and the
    /// cutoff recorded is no later.
    pub exclude_newer: Option<i64>,
    /// The `--max-versions` the releases were chosen with.
    pub max_versions: Option<i64>,
    /// Files of releases without metadata are listed without digest and
    /// URL (such a release cannot be locked from the snapshot alone: an
    /// offline search never takes it, and online the index is asked).
    pub lean: bool,
    /// Legacy URLs of the index (`--index-alias`); when empty, the base
    /// snapshot's are kept.
    pub index_aliases: Vec<String>,
}

/// Leave out files uploaded after `cutoff`, and releases left with none.
fn before(record: &mut ProjectRecord, cutoff: i64) {
    let late = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| crate::time::Timestamp::parse_time(t).map(crate::time::Timestamp::unix))
            .is_some_and(|at| at > cutoff)
    };
    for release in &mut record.releases {
        release.distributions.retain(|d| !late(&d.upload_time));
    }
    record
        .releases
        .retain(|r| !r.distributions.is_empty() && !late(&r.upload_time));
}

/// Fill in what the layers know of `record`'s releases (metadata the
/// listing did not carry, advisories by `rules`), drop digests of
/// releases without metadata when `lean`, and count them in `report`.
fn complete(
    kb: &LayeredKb,
    record: &mut ProjectRecord,
    index: Option<std::sync::Arc<str>>,
    rules: &[crate::kb::sqlite::AdvisoryRule],
    lean: bool,
    report: &mut ProjectSnapshot,
) -> Result<(), KbError> {
    // The record as the index lists it (digests included), for finding
    // what the layers know of each release.
    let listed = ProjectRecord {
        index,
        ..record.clone()
    };
    for (i, release) in record.releases.iter_mut().enumerate() {
        if matches!(release.dependencies, Requires::NotFetched) {
            match kb.known_metadata(&listed, i)? {
                Some(MetadataAnswer::Known(meta)) => {
                    release.dependencies = Requires::Known(meta.dependencies.clone());
                    release.requires_python = meta
                        .requires_python
                        .clone()
                        .or(release.requires_python.take());
                    release.provides_extras = meta.provides_extras.clone();
                }
                Some(MetadataAnswer::Unavailable(reason)) => {
                    release.dependencies = Requires::Unavailable(reason);
                }
                None => {}
            }
        }
        if lean && matches!(release.dependencies, Requires::NotFetched) {
            for d in &mut release.distributions {
                d.sha256 = None;
                d.url = None;
            }
        }
        release.advisories = rules
            .iter()
            .filter(|r| r.affects(&release.version))
            .map(|r| r.id.clone())
            .collect();
        report.releases += 1;
        match release.dependencies {
            Requires::Known(_) => report.with_metadata += 1,
            Requires::Unavailable(_) => report.metadata_unavailable += 1,
            Requires::NotFetched => report.not_fetched += 1,
        }
    }
    Ok(())
}

/// The facts a project snapshot records about itself.
fn snapshot_meta(kb: &LayeredKb, facts: SnapshotFacts, cutoff: &str) -> SnapshotMeta {
    SnapshotMeta {
        schema_version: crate::kb::SCHEMA_VERSION,
        created_at: Some(crate::time::Timestamp::now().to_string()),
        index_url: kb.meta().index_url.clone(),
        roots: facts.roots,
        cutoff: Some(cutoff.to_string()),
        max_versions: facts.max_versions,
        advisories_source: kb.base().and_then(|b| b.meta().advisories_source.clone()),
        index_aliases: if facts.index_aliases.is_empty() {
            kb.base()
                .map(|b| b.meta().index_aliases.clone())
                .unwrap_or_default()
        } else {
            facts.index_aliases
        },
    }
}

/// Write a snapshot of everything `kb` looked up to `output`, atomically.
pub fn write_project_snapshot(
    kb: &LayeredKb,
    facts: SnapshotFacts,
    output: &Path,
) -> Result<ProjectSnapshot, KbError> {
    let mut report = ProjectSnapshot::default();
    let now = crate::kb::store::now();
    let mut oldest = now;
    let mut writer = SnapshotWriter::create(output)?;
    let base_rules = |name: &str| -> Result<Vec<crate::kb::sqlite::AdvisoryRule>, KbError> {
        match kb.base() {
            Some(base) => base.advisory_rules(name),
            None => Ok(Vec::new()),
        }
    };
    let mut written: Vec<String> = Vec::new();
    let mut unavailable: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut referenced: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (name, lookup, origin) in kb.looked_up() {
        match (&lookup, &origin) {
            (_, Origin::UserKb { age_seconds, .. }) => oldest = oldest.min(now - age_seconds),
            (_, Origin::Snapshot { .. }) => {
                if let Some(cutoff) = kb.base().and_then(|b| b.meta().cutoff.clone())
                    && let Some(at) = crate::time::Timestamp::parse_time(&cutoff)
                        .map(crate::time::Timestamp::unix)
                {
                    oldest = oldest.min(at);
                }
            }
            _ => {}
        }
        let found = match lookup {
            Lookup::Found(record) => record,
            Lookup::Unavailable(reason) => {
                writer.add_unavailable(&name, &reason)?;
                unavailable.insert(name);
                report.unavailable += 1;
                continue;
            }
            Lookup::Missing => {
                writer.add_unavailable(&name, "not in the knowledge base")?;
                unavailable.insert(name);
                report.unavailable += 1;
                continue;
            }
        };
        let mut record = whole_record(kb, &name, &found, &origin)?;
        if let Some(cutoff) = facts.exclude_newer {
            before(&mut record, cutoff);
        }
        let rules = base_rules(&name)?;
        complete(
            kb,
            &mut record,
            found.index.clone(),
            &rules,
            facts.lean,
            &mut report,
        )?;
        for release in &record.releases {
            if let Requires::Known(deps) = &release.dependencies {
                referenced.extend(deps.iter().map(|d| d.name.clone()));
            }
        }
        writer.add_project(&record)?;
        written.push(name);
        report.projects += 1;
    }
    // Closed: every name a stored release depends on is stored or says why
    // not (an offline search then explains instead of guessing).
    let stored: std::collections::BTreeSet<&String> = written.iter().collect();
    for name in &referenced {
        if !stored.contains(name) && !unavailable.contains(name) {
            writer.add_unavailable(
                name,
                "not in this snapshot: none of the releases and extras it followed needs it",
            )?;
            report.unavailable += 1;
        }
    }
    if let Some(base) = kb.base() {
        report.advisories = writer.copy_advisories(base.path(), &written)?;
    }
    if let Some(cutoff) = facts.exclude_newer {
        oldest = oldest.min(cutoff);
    }
    report.cutoff = crate::time::Timestamp::from_unix(oldest)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let meta = snapshot_meta(kb, facts, &report.cutoff);
    writer.set_meta(&meta)?;
    writer.finish()?;
    Ok(report)
}
