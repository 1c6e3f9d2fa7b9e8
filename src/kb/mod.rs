//! Stage 3: the knowledge base — what the resolver knows about every project,
//! read from a SQLite snapshot of package-index metadata.
//!
//! The resolver talks to the [`KnowledgeBase`] trait only. A lookup returns a
//! whole [`ProjectRecord`] (releases newest first, their files, dependency
//! lists, advisories); the queries the resolver makes — candidate versions
//! for a target, dependencies for given extras, hashes, advisories — are
//! functions over that record, so the SQLite and in-memory implementations
//! answer them identically.
//!
//! Unavailability is data, not an error: a project can be
//! [`Lookup::Unavailable`] (recorded by `snapshot sync` with a reason) or
//! [`Lookup::Missing`] (never synced). `Err` means the snapshot is broken.

pub mod bundled;
pub mod memory;
pub mod metadata;
pub mod osv;
pub mod packed;
pub mod sqlite;
pub mod tags;
pub mod writer;

use std::sync::Arc;

use crate::python::{Marker, MarkerEnvironment, Version};
use tags::WheelTarget;

/// Current schema version of snapshot files.
pub const SCHEMA_VERSION: i64 = 2;
/// The oldest snapshot schema still readable (version 1 has no file URLs).
pub const OLDEST_SCHEMA_VERSION: i64 = 1;

/// A knowledge-base failure (the snapshot is unreadable or inconsistent).
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// SQLite failed.
    #[error("snapshot {path}: {source}")]
    Sqlite {
        /// Snapshot file.
        path: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a snapshot of a schema this build reads.
    #[error("snapshot {path}: {message}")]
    Schema {
        /// Snapshot file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One file of a release.
///
/// Project records from a snapshot carry what resolution needs (name,
/// upload time, Requires-Python, yank); the digest, size and URL, which
/// only lock files need, come from [`KnowledgeBase::files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distribution {
    /// File name (wheel tags are parsed from it).
    pub filename: String,
    /// sha256 hex digest, when known.
    pub sha256: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Upload time, RFC 3339 UTC.
    pub upload_time: Option<String>,
    /// The file's own Requires-Python.
    pub requires_python: Option<String>,
    /// Yanked file.
    pub yanked: bool,
    /// Absolute URL of the file on its index, when recorded.
    pub url: Option<String>,
}

/// One Requires-Dist entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    /// Normalised name.
    pub name: String,
    /// Extras requested of the dependency (normalised).
    pub extras: Vec<String>,
    /// Specifier text (empty = any).
    pub specifier: String,
    /// Full marker text, including any `extra == "…"` clause.
    pub marker: Option<String>,
    /// The extra of the parent that gates this dependency, if any.
    pub extra: Option<String>,
}

/// One release of a project.
#[derive(Debug, Clone)]
pub struct Release {
    /// Version.
    pub version: Version,
    /// Earliest upload time of its files, RFC 3339 UTC.
    pub upload_time: Option<String>,
    /// Yanked (every file yanked).
    pub yanked: bool,
    /// Reason given for the yank.
    pub yanked_reason: Option<String>,
    /// Requires-Python from the release metadata.
    pub requires_python: Option<String>,
    /// Files.
    pub distributions: Vec<Distribution>,
    /// Requires-Dist; `None` when the metadata could not be read.
    pub dependencies: Option<Arc<Vec<Dependency>>>,
    /// Provides-Extra (normalised).
    pub provides_extras: Vec<String>,
    /// Ids of advisories affecting this release.
    pub advisories: Vec<String>,
}

/// Everything stored about one project.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    /// Normalised name.
    pub name: String,
    /// Name as the index spells it.
    pub display_name: String,
    /// Releases, newest first (PEP 440 order).
    pub releases: Vec<Release>,
}

/// The result of looking a project up.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Stored.
    Found(Arc<ProjectRecord>),
    /// Known to the snapshot but without releases, with the reason.
    Unavailable(String),
    /// Not in the snapshot at all.
    Missing,
}

/// A security advisory (OSV).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Advisory {
    /// OSV id (`PYSEC-…`, `GHSA-…`).
    pub id: String,
    /// Normalised project name.
    pub project: String,
    /// Aliases (CVE ids …).
    pub aliases: Vec<String>,
    /// One-line summary.
    pub summary: Option<String>,
    /// Published timestamp.
    pub published: Option<String>,
    /// Withdrawn timestamp, if withdrawn.
    pub withdrawn: Option<String>,
    /// A reference URL.
    pub link: Option<String>,
    /// Versions that fix it, in PEP 440 order.
    pub fixed_in: Vec<String>,
}

/// Facts about the snapshot itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotMeta {
    /// Schema version.
    pub schema_version: i64,
    /// When it was built.
    pub created_at: Option<String>,
    /// Index it was built from.
    pub index_url: Option<String>,
    /// Root requirements.
    pub roots: Vec<String>,
    /// Releases uploaded after this were not taken.
    pub cutoff: Option<String>,
    /// Newest K versions kept per project.
    pub max_versions: Option<i64>,
    /// Where advisories came from and when.
    pub advisories_source: Option<String>,
}

/// Why a release is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Uploaded after the cutoff.
    TooNew(String),
    /// Yanked and not pinned exactly.
    Yanked(Option<String>),
    /// Requires-Python excludes the target.
    RequiresPython(String),
    /// No file installable on the target.
    NoCompatibleFile,
    /// Dependency metadata unavailable.
    NoMetadata,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooNew(t) => write!(f, "uploaded {t}, after the cutoff"),
            Self::Yanked(Some(r)) => write!(f, "yanked ({r})"),
            Self::Yanked(None) => f.write_str("yanked"),
            Self::RequiresPython(rp) => write!(f, "requires Python {rp}"),
            Self::NoCompatibleFile => f.write_str("no file installable on the target platform"),
            Self::NoMetadata => f.write_str("dependency metadata unavailable in the snapshot"),
        }
    }
}

/// What candidate filtering is done for.
#[derive(Debug, Clone)]
pub struct CandidateQuery {
    /// Interpreter and platform.
    pub target: WheelTarget,
    /// Full Python version of the target.
    pub python_full_version: Version,
    /// Ignore files uploaded after this RFC 3339 UTC time.
    pub exclude_newer: Option<String>,
}

/// One release checked against a query.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The release.
    pub release: &'a Release,
    /// `None` when usable; otherwise why not.
    pub rejection: Option<Rejection>,
}

/// Requires-Python answers for one target. A project's files repeat a
/// handful of Requires-Python strings, so each is parsed once per query.
struct PythonCheck<'a, 'q> {
    python: &'q Version,
    seen: std::collections::HashMap<&'a str, bool>,
}

impl<'a> PythonCheck<'a, '_> {
    fn allows(&mut self, requires_python: Option<&'a str>) -> bool {
        let Some(text) = requires_python.map(str::trim).filter(|s| !s.is_empty()) else {
            return true;
        };
        let python = self.python;
        *self
            .seen
            .entry(text)
            .or_insert_with(|| match crate::python::parse_specifiers(text) {
                Ok(spec) => spec.contains(python),
                // An unparsable Requires-Python is ignored, as installers do.
                Err(_) => true,
            })
    }
}

/// Check every release of `record` against `query`, newest first.
pub fn candidates<'a>(record: &'a ProjectRecord, query: &CandidateQuery) -> Vec<Candidate<'a>> {
    let mut python = PythonCheck {
        python: &query.python_full_version,
        seen: std::collections::HashMap::new(),
    };
    record
        .releases
        .iter()
        .map(|release| Candidate {
            release,
            rejection: reject(release, query, &mut python),
        })
        .collect()
}

fn reject<'a>(
    release: &'a Release,
    query: &CandidateQuery,
    python: &mut PythonCheck<'a, '_>,
) -> Option<Rejection> {
    if release.dependencies.is_none() {
        return Some(Rejection::NoMetadata);
    }
    if !python.allows(release.requires_python.as_deref()) {
        return Some(Rejection::RequiresPython(
            release.requires_python.clone().unwrap_or_default(),
        ));
    }
    let in_time = |d: &Distribution| match (&query.exclude_newer, &d.upload_time) {
        (Some(cutoff), Some(t)) => t.as_str() <= cutoff.as_str(),
        _ => true,
    };
    let files = || release.distributions.iter().filter(|d| in_time(d));
    if files().next().is_none() {
        return Some(Rejection::TooNew(
            release.upload_time.clone().unwrap_or_default(),
        ));
    }
    let compatible = files()
        .filter(|d| tags::is_sdist(&d.filename))
        .any(|d| python.allows(d.requires_python.as_deref()))
        || files().filter(|d| !tags::is_sdist(&d.filename)).any(|d| {
            query.target.accepts_filename(&d.filename)
                && python.allows(d.requires_python.as_deref())
        });
    if !compatible {
        return Some(Rejection::NoCompatibleFile);
    }
    if release.yanked {
        return Some(Rejection::Yanked(release.yanked_reason.clone()));
    }
    None
}

/// Dependencies of `release` that apply with `extras` in `env`.
pub fn active_dependencies<'a>(
    release: &'a Release,
    extras: &[crate::python::ExtraName],
    env: &MarkerEnvironment,
) -> Vec<&'a Dependency> {
    let Some(deps) = &release.dependencies else {
        return Vec::new();
    };
    deps.iter()
        .filter(|d| match &d.marker {
            None => true,
            Some(text) => match crate::python::parse_marker(text) {
                Ok(Marker { tree, .. }) => tree.evaluate(env, extras),
                Err(_) => false,
            },
        })
        .collect()
}

/// The queries the resolver makes.
pub trait KnowledgeBase {
    /// Facts about the snapshot.
    fn meta(&self) -> &SnapshotMeta;

    /// Look a project up by normalised name.
    fn project(&self, name: &str) -> Result<Lookup, KbError>;

    /// An advisory by id.
    fn advisory(&self, id: &str) -> Result<Option<Advisory>, KbError>;

    /// Release of `name` at exactly `version`, if stored.
    fn release(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<(Arc<ProjectRecord>, usize)>, KbError> {
        Ok(match self.project(name)? {
            Lookup::Found(record) => record
                .releases
                .iter()
                .position(|r| &r.version == version)
                .map(|i| (record, i)),
            _ => None,
        })
    }

    /// Every file of the release of `name` at `version`, with digest,
    /// size and URL where known (empty when the release is not stored).
    fn files(&self, name: &str, version: &Version) -> Result<Vec<Distribution>, KbError> {
        Ok(self
            .release(name, version)?
            .map(|(record, i)| record.releases[i].distributions.clone())
            .unwrap_or_default())
    }

    /// sha256 digests of a release's files (`sha256:<hex>`), sorted.
    fn hashes(&self, name: &str, version: &Version) -> Result<Vec<String>, KbError> {
        let mut out: Vec<String> = self
            .files(name, version)?
            .iter()
            .filter_map(|d| d.sha256.as_ref().map(|h| format!("sha256:{h}")))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Index URLs a release is available from (the snapshot's index when
    /// the release is stored; empty otherwise).
    fn indexes(&self, name: &str, version: &Version) -> Result<Vec<String>, KbError> {
        Ok(
            match (self.release(name, version)?, &self.meta().index_url) {
                (Some(_), Some(url)) => vec![url.clone()],
                _ => Vec::new(),
            },
        )
    }

    /// Advisories affecting a release.
    fn advisories_of(&self, name: &str, version: &Version) -> Result<Vec<Advisory>, KbError> {
        let Some((record, i)) = self.release(name, version)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for id in &record.releases[i].advisories {
            if let Some(a) = self.advisory(id)? {
                out.push(a);
            }
        }
        Ok(out)
    }
}

/// Upload times normalised to `YYYY-MM-DDTHH:MM:SSZ`, so they compare as text.
pub fn normalise_time(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() < 19 || t.as_bytes().get(10) != Some(&b'T') && t.as_bytes().get(10) != Some(&b' ') {
        return None;
    }
    let (date, time) = (&t[..10], &t[11..19]);
    if !date.bytes().enumerate().all(|(i, b)| {
        if i == 4 || i == 7 {
            b == b'-'
        } else {
            b.is_ascii_digit()
        }
    }) {
        return None;
    }
    if !time.bytes().enumerate().all(|(i, b)| {
        if i == 2 || i == 5 {
            b == b':'
        } else {
            b.is_ascii_digit()
        }
    }) {
        return None;
    }
    Some(format!("{date}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_normalise() {
        assert_eq!(
            normalise_time("2023-05-22T15:12:44.123456Z").as_deref(),
            Some("2023-05-22T15:12:44Z")
        );
        assert_eq!(
            normalise_time("2023-05-22 15:12:44").as_deref(),
            Some("2023-05-22T15:12:44Z")
        );
        assert_eq!(normalise_time("yesterday"), None);
    }
}
