//! OSV advisories (the PyPA advisory-database layout `vulns/<project>/*.yaml`,
//! and OSV JSON files) mapped onto snapshot releases.
//!
//! For each `ECOSYSTEM` range the events are sorted in PEP 440 order
//! (`introduced: 0` is the lowest version) and walked: `introduced` opens an
//! interval, `fixed` and `limit` close it exclusively, `last_affected` closes
//! it inclusively. A release is affected when an interval holds it, or when
//! the advisory's explicit `versions` list names it (pre-releases before an
//! `introduced` final are listed there). `GIT` ranges are ignored.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde::Deserialize;

use super::Advisory;

mod sources;
use crate::python::{Version, parse_name, parse_version};

/// One OSV record (the fields thoth-rs uses).
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRecord {
    /// Id.
    pub id: String,
    /// Aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Summary.
    #[serde(default)]
    pub summary: Option<String>,
    /// Details (first line used when there is no summary).
    #[serde(default)]
    pub details: Option<String>,
    /// Published.
    #[serde(default)]
    pub published: Option<serde_yaml::Value>,
    /// Modified.
    #[serde(default)]
    pub modified: Option<serde_yaml::Value>,
    /// Withdrawn.
    #[serde(default)]
    pub withdrawn: Option<serde_yaml::Value>,
    /// References.
    #[serde(default)]
    pub references: Vec<OsvReference>,
    /// Affected packages.
    #[serde(default)]
    pub affected: Vec<OsvAffected>,
}

/// A reference link.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvReference {
    /// Kind (ADVISORY, WEB, FIX, …).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// URL.
    pub url: String,
}

/// One affected package.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvAffected {
    /// The package.
    pub package: OsvPackage,
    /// Ranges.
    #[serde(default)]
    pub ranges: Vec<OsvRange>,
    /// Explicit affected versions.
    #[serde(default)]
    pub versions: Vec<serde_yaml::Value>,
}

/// Package identity.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvPackage {
    /// Ecosystem (`PyPI`).
    pub ecosystem: String,
    /// Name.
    pub name: String,
}

/// A range.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRange {
    /// `ECOSYSTEM`, `SEMVER` or `GIT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Events.
    #[serde(default)]
    pub events: Vec<serde_yaml::Mapping>,
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Opens an interval (`None` = from the beginning).
    Introduced(Option<Version>),
    /// Closes exclusively.
    Fixed(Version),
    /// Closes inclusively.
    LastAffected(Version),
    /// Closes exclusively.
    Limit(Version),
}

impl Event {
    fn kind(&self) -> &'static str {
        match self {
            Self::Introduced(_) => "introduced",
            Self::Fixed(_) => "fixed",
            Self::LastAffected(_) => "last_affected",
            Self::Limit(_) => "limit",
        }
    }

    fn version_text(&self) -> String {
        match self {
            Self::Introduced(None) => "0".into(),
            Self::Introduced(Some(v)) | Self::Fixed(v) | Self::LastAffected(v) | Self::Limit(v) => {
                v.to_string()
            }
        }
    }
}

pub(super) fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Tagged(t) => scalar(&t.value),
        _ => None,
    }
}

/// Parse the events of an ECOSYSTEM range; unparsable versions are skipped.
pub fn parse_events(range: &OsvRange) -> Vec<Event> {
    let mut out = Vec::new();
    for map in &range.events {
        for (k, v) in map {
            let (Some(k), Some(v)) = (k.as_str(), scalar(v)) else {
                continue;
            };
            let version = parse_version(&v).ok();
            let event = match (k, version) {
                ("introduced", _) if v.trim() == "0" => Event::Introduced(None),
                ("introduced", Some(v)) => Event::Introduced(Some(v)),
                ("fixed", Some(v)) => Event::Fixed(v),
                ("last_affected", Some(v)) => Event::LastAffected(v),
                ("limit", Some(v)) => Event::Limit(v),
                _ => continue,
            };
            out.push(event);
        }
    }
    out
}

/// An affected interval: lower bound (inclusive, `None` = −∞) and upper bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Inclusive lower bound.
    pub from: Option<Version>,
    /// Upper bound and whether it is inclusive; `None` = open-ended.
    pub to: Option<(Version, bool)>,
}

impl Interval {
    /// Does it hold `v`?
    pub fn contains(&self, v: &Version) -> bool {
        self.from.as_ref().is_none_or(|f| v >= f)
            && match &self.to {
                None => true,
                Some((to, true)) => v <= to,
                Some((to, false)) => v < to,
            }
    }
}

/// Walk events in PEP 440 order into intervals.
pub fn intervals(events: &[Event]) -> Vec<Interval> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    let key = |e: &Event| -> (Option<Version>, u8) {
        match e {
            Event::Introduced(v) => (v.clone(), 0),
            Event::Fixed(v) | Event::Limit(v) => (Some(v.clone()), 1),
            Event::LastAffected(v) => (Some(v.clone()), 1),
        }
    };
    sorted.sort_by_key(|a| key(a));
    let mut out = Vec::new();
    let mut open: Option<Option<Version>> = None;
    for e in sorted {
        match e {
            Event::Introduced(v) => {
                if open.is_none() {
                    open = Some(v.clone());
                }
            }
            Event::Fixed(v) | Event::Limit(v) => {
                if let Some(from) = open.take() {
                    out.push(Interval {
                        from,
                        to: Some((v.clone(), false)),
                    });
                }
            }
            Event::LastAffected(v) => {
                if let Some(from) = open.take() {
                    out.push(Interval {
                        from,
                        to: Some((v.clone(), true)),
                    });
                }
            }
        }
    }
    if let Some(from) = open {
        out.push(Interval { from, to: None });
    }
    out
}

/// A loaded advisory with its mapping rules.
#[derive(Debug, Clone)]
pub struct LoadedAdvisory {
    /// Data shown to users.
    pub advisory: Advisory,
    /// Events per ECOSYSTEM range.
    pub ranges: Vec<Vec<Event>>,
    /// Explicit versions.
    pub versions: Vec<Version>,
    /// Modified timestamp.
    pub modified: Option<String>,
}

impl LoadedAdvisory {
    /// Does the advisory affect `v`?
    pub fn affects(&self, v: &Version) -> bool {
        if self.advisory.withdrawn.is_some() {
            return false;
        }
        self.versions.contains(v)
            || self
                .ranges
                .iter()
                .any(|events| intervals(events).iter().any(|i| i.contains(v)))
    }
}

/// Turn OSV records into advisories, one per (record, PyPI package).
pub fn load_record(record: &OsvRecord) -> Vec<LoadedAdvisory> {
    let mut out = Vec::new();
    for affected in &record.affected {
        if !affected.package.ecosystem.eq_ignore_ascii_case("pypi") {
            continue;
        }
        let Ok(project) = parse_name(&affected.package.name) else {
            continue;
        };
        let ranges: Vec<Vec<Event>> = affected
            .ranges
            .iter()
            .filter(|r| r.kind == "ECOSYSTEM")
            .map(parse_events)
            .collect();
        let mut fixed: Vec<Version> = ranges
            .iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Fixed(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        fixed.sort();
        fixed.dedup();
        let link = record
            .references
            .iter()
            .find(|r| r.kind.as_deref() == Some("ADVISORY"))
            .or_else(|| record.references.first())
            .map(|r| r.url.clone());
        let summary = record.summary.clone().or_else(|| {
            record.details.as_ref().and_then(|d| {
                d.lines()
                    .find(|l| !l.trim().is_empty())
                    .map(|l| l.chars().take(200).collect())
            })
        });
        out.push(LoadedAdvisory {
            advisory: Advisory {
                id: record.id.clone(),
                project: project.to_string(),
                aliases: record.aliases.clone(),
                summary,
                published: record.published.as_ref().and_then(scalar),
                withdrawn: record.withdrawn.as_ref().and_then(scalar),
                link,
                fixed_in: fixed.iter().map(ToString::to_string).collect(),
            },
            ranges,
            versions: affected
                .versions
                .iter()
                .filter_map(scalar)
                .filter_map(|v| parse_version(&v).ok())
                .collect(),
            modified: record.modified.as_ref().and_then(scalar),
        });
    }
    out
}

/// Errors reading an advisory directory.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OsvError {
    /// File.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

pub use sources::{SourceRead, merge, read_dir, read_source};

/// Replace the advisory tables of an open snapshot and map advisories onto
/// its releases. `loaded` carries ranges; `plain` advisories (already mapped
/// in memory) are stored without events.
pub fn store_advisories<'a>(
    conn: &Connection,
    plain: impl IntoIterator<Item = &'a Advisory>,
    loaded: &[LoadedAdvisory],
) -> rusqlite::Result<usize> {
    let insert = |a: &Advisory, modified: Option<&String>| {
        conn.execute(
            "INSERT OR REPLACE INTO advisories (id, project, aliases, summary, published, modified, withdrawn, link) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![a.id, a.project, a.aliases.join(","), a.summary, a.published, modified, a.withdrawn, a.link],
        )
    };
    for a in plain {
        insert(a, None)?;
        for (i, fixed) in a.fixed_in.iter().enumerate() {
            conn.execute(
                "INSERT OR REPLACE INTO advisory_events (advisory_id, range_no, event_no, kind, version) VALUES (?1, 0, ?2, 'fixed', ?3)",
                params![a.id, i as i64, fixed],
            )?;
        }
    }
    // Releases per project, parsed once.
    let mut releases: std::collections::HashMap<String, Vec<(i64, Version)>> =
        std::collections::HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT p.name, r.id, r.version FROM releases r JOIN projects p ON p.id = r.project_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (name, id, version) = row?;
            if let Ok(v) = parse_version(&version) {
                releases.entry(name).or_default().push((id, v));
            }
        }
    }
    let mut mapped = 0;
    for a in loaded {
        insert(&a.advisory, a.modified.as_ref())?;
        for (range_no, events) in a.ranges.iter().enumerate() {
            for (event_no, e) in events.iter().enumerate() {
                conn.execute(
                    "INSERT OR REPLACE INTO advisory_events (advisory_id, range_no, event_no, kind, version) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![a.advisory.id, range_no as i64, event_no as i64, e.kind(), e.version_text()],
                )?;
            }
        }
        if let Some(list) = releases.get(&a.advisory.project) {
            for (release_id, version) in list {
                if a.affects(version) {
                    conn.execute(
                        "INSERT OR IGNORE INTO affected (release_id, advisory_id) VALUES (?1, ?2)",
                        params![release_id, a.advisory.id],
                    )?;
                    mapped += 1;
                }
            }
        }
    }
    Ok(mapped)
}

/// What an import stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// Advisories stored (after merging).
    pub advisories: usize,
    /// Release/advisory pairs mapped.
    pub mapped: usize,
    /// Advisories folded into an earlier one with the same id or alias.
    pub duplicates: usize,
    /// Withdrawn records left out.
    pub withdrawn: usize,
    /// Per source: label, records and newest `modified`.
    pub sources: Vec<SourceSummary>,
}

/// One source of an import, as the snapshot records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SourceSummary {
    /// The directory's or archive's file name.
    pub source: String,
    /// OSV records read.
    pub records: usize,
    /// The newest `modified` time of its records.
    pub newest: Option<String>,
}

/// Import advisories from `sources` (directories or OSV archives, merged
/// in order) into the snapshot at `path`, atomically (a copy is updated
/// and renamed over the original); the advisories it had are replaced.
pub fn import_into_snapshot(path: &Path, sources: &[PathBuf]) -> Result<Imported, OsvError> {
    let mut read = Vec::new();
    for source in sources {
        read.push(read_source(source)?);
    }
    let summaries: Vec<SourceSummary> = read
        .iter()
        .map(|s| SourceSummary {
            source: s.label.clone(),
            records: s.records,
            newest: s.newest.clone(),
        })
        .collect();
    let withdrawn = read.iter().map(|s| s.withdrawn).sum();
    let (loaded, duplicates) = merge(read);
    let err = |message: String| OsvError {
        path: path.to_path_buf(),
        message,
    };
    let described = summaries
        .iter()
        .map(|s| {
            format!(
                "{} ({})",
                s.source,
                s.newest.as_deref().unwrap_or("undated")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sources_json = serde_json::to_string(&summaries).map_err(|e| err(e.to_string()))?;
    let (mapped, _) = super::writer::rewrite(path, "import", |conn| {
        let sql = super::sqlite::sql_err(path);
        conn.execute_batch(
            "DELETE FROM affected; DELETE FROM advisory_events; DELETE FROM advisories;",
        )
        .map_err(&sql)?;
        let mapped = store_advisories(conn, std::iter::empty(), &loaded).map_err(&sql)?;
        for (key, value) in [
            (
                "advisories_source",
                format!("{} advisories from {described}", loaded.len()),
            ),
            ("advisories_sources", sources_json.clone()),
        ] {
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .map_err(&sql)?;
        }
        Ok(mapped)
    })
    .map_err(|e| err(e.to_string()))?;
    Ok(Imported {
        advisories: loaded.len(),
        mapped,
        duplicates,
        withdrawn,
        sources: summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        parse_version(s).unwrap()
    }

    #[test]
    fn walk_with_several_branches() {
        let events = vec![
            Event::Introduced(None),
            Event::Fixed(v("2.2.28")),
            Event::Introduced(Some(v("3.0"))),
            Event::Fixed(v("3.2.13")),
            Event::Introduced(Some(v("4.0"))),
            Event::LastAffected(v("4.0.4")),
        ];
        let iv = intervals(&events);
        assert_eq!(iv.len(), 3);
        let hit = |s: &str| iv.iter().any(|i| i.contains(&v(s)));
        assert!(hit("1.11") && hit("2.2.27") && !hit("2.2.28"));
        assert!(!hit("2.9") && hit("3.0") && hit("3.2.12") && !hit("3.2.13"));
        assert!(hit("4.0.4") && !hit("4.0.5"));
        // Pre-releases of 3.0 sort below the introduced final.
        assert!(!hit("3.0rc1"));
    }

    #[test]
    fn open_range_covers_new_versions() {
        let iv = intervals(&[Event::Introduced(None)]);
        assert!(iv[0].contains(&v("99.0")));
    }
}
