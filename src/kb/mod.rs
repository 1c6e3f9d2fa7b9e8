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
pub mod layered;
pub mod memory;
pub mod osv;
pub mod packed;
pub(crate) mod remote;
pub mod sqlite;
pub mod store;
pub mod untrusted;
pub mod writer;

use std::sync::Arc;

use crate::python::{Marker, MarkerEnvironment, Version};
pub use crate::record::{
    Dependency, Distribution, ProjectRecord, Release, Requires, metadata, normalise_time, tags,
};
use tags::WheelTarget;

/// Current schema version of snapshot files.
pub const SCHEMA_VERSION: i64 = 3;
/// The oldest snapshot schema still readable (version 1 has no file URLs).
pub const OLDEST_SCHEMA_VERSION: i64 = 1;

/// A knowledge-base failure (the snapshot is unreadable or inconsistent).
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// SQLite failed (on a snapshot or the user knowledge base).
    #[error("{path}: {source}")]
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
    /// The index could not be reached or answered wrongly (after retries).
    #[error("fetching {what}: {message}")]
    Network {
        /// What was being fetched.
        what: String,
        /// What went wrong (URLs without credentials).
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

/// One release's dependency metadata, as [`KnowledgeBase::metadata`]
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMetadata {
    /// Requires-Dist.
    pub dependencies: Arc<Vec<Dependency>>,
    /// Requires-Python from the metadata.
    pub requires_python: Option<String>,
    /// Provides-Extra (normalised).
    pub provides_extras: Vec<String>,
}

/// The answer to "what does this release depend on?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataAnswer {
    /// Read.
    Known(Arc<ReleaseMetadata>),
    /// Cannot be had; the reason is for people.
    Unavailable(Arc<str>),
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
    /// Other URLs of the index the snapshot was built from that projects
    /// still name (a legacy host), recorded as data when it was built; a
    /// project source naming one is read as the index itself.
    pub index_aliases: Vec<String>,
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
    /// Dependency metadata unavailable, with the reason.
    NoMetadata(Arc<str>),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooNew(t) => write!(f, "uploaded {t}, after the cutoff"),
            Self::Yanked(Some(r)) => write!(f, "yanked ({r})"),
            Self::Yanked(None) => f.write_str("yanked"),
            Self::RequiresPython(rp) => write!(f, "requires Python {rp}"),
            Self::NoCompatibleFile => f.write_str("no file installable on the target platform"),
            Self::NoMetadata(why) => write!(f, "dependency metadata unavailable: {why}"),
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
    if let Requires::Unavailable(why) = &release.dependencies {
        return Some(Rejection::NoMetadata(why.clone()));
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
    let Some(deps) = release.dependencies.known() else {
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

/// The metadata a record carries itself for release `release`.
pub fn metadata_of(record: &ProjectRecord, release: usize) -> MetadataAnswer {
    let r = &record.releases[release];
    match &r.dependencies {
        Requires::Known(deps) => MetadataAnswer::Known(Arc::new(ReleaseMetadata {
            dependencies: deps.clone(),
            requires_python: r.requires_python.clone(),
            provides_extras: r.provides_extras.clone(),
        })),
        Requires::Unavailable(why) => MetadataAnswer::Unavailable(why.clone()),
        Requires::NotFetched => MetadataAnswer::Unavailable(Arc::from("not in the knowledge base")),
    }
}

/// The environment a resolution is for, as prefetching needs it to guess
/// which releases the search will try.
#[derive(Debug, Clone)]
pub struct PrefetchTarget {
    /// Interpreter, platform and cutoff.
    pub query: CandidateQuery,
    /// Marker values.
    pub markers: MarkerEnvironment,
}

/// A requirement the search has met, handed to [`KnowledgeBase::prefetch`].
#[derive(Debug, Clone)]
pub struct Wanted {
    /// Normalised name.
    pub name: String,
    /// The specifier of the requirement.
    pub spec: crate::python::VersionSpecifiers,
    /// Extras requested.
    pub extras: Vec<crate::python::ExtraName>,
}

/// The questions the resolver asks. There are two: (a) a project's
/// releases and their files ([`Self::project`]) and (b) one release's
/// dependency metadata ([`Self::metadata`]); whether an answer comes from a
/// snapshot, the user's knowledge base or the network is the
/// implementation's business.
pub trait KnowledgeBase {
    /// Facts about the snapshot (or, for a layered knowledge base, about
    /// its primary index and base snapshot).
    fn meta(&self) -> &SnapshotMeta;

    /// Look a project up by normalised name.
    fn project(&self, name: &str) -> Result<Lookup, KbError>;

    /// The dependency metadata of release `release` of `record`. Stored
    /// records answer from the record itself; a layered knowledge base
    /// fetches what is [`Requires::NotFetched`].
    fn metadata(&self, record: &ProjectRecord, release: usize) -> Result<MetadataAnswer, KbError> {
        Ok(metadata_of(record, release))
    }

    /// A hint: the search has met these requirements and will soon ask
    /// about them. Knowledge bases that fetch can start now; the default
    /// does nothing.
    fn prefetch(&self, _target: &Arc<PrefetchTarget>, _wanted: &[Wanted]) {}

    /// A hint: these projects will be looked up soon (only their pages;
    /// nothing is guessed from them).
    fn prefetch_projects(&self, _names: &[String]) {}

    /// A hint: the search may try these releases of `record` next.
    fn prefetch_metadata(&self, _record: &Arc<ProjectRecord>, _releases: &[usize]) {}

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

    /// Index URLs a release is available from (the index its project was
    /// read from; empty when the release is not stored).
    fn indexes(&self, name: &str, version: &Version) -> Result<Vec<String>, KbError> {
        Ok(match self.release(name, version)? {
            Some((record, _)) => record
                .index
                .as_deref()
                .map(str::to_string)
                .or_else(|| self.meta().index_url.clone())
                .into_iter()
                .collect(),
            None => Vec::new(),
        })
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
