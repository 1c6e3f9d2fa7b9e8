//! What a package index says about projects, as data: a project's record
//! (its releases newest first, their files and dependency lists), wheel
//! filename tags and core metadata. It sits below both the index client
//! that reads these from the network ([`crate::index`]) and the knowledge
//! base that stores and answers from them ([`crate::kb`]), so neither
//! imports the other for its types.

pub mod metadata;
pub mod tags;

use std::sync::Arc;

use crate::python::Version;

/// One file of a release.
///
/// Project records from a snapshot carry what resolution needs (name,
/// upload time, Requires-Python, yank); the digest, size and URL, which
/// only lock files need, come from [`crate::kb::KnowledgeBase::files`].
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
    /// Requires-Dist, as far as it is known (see [`Requires`]).
    pub dependencies: Requires,
    /// Provides-Extra (normalised).
    pub provides_extras: Vec<String>,
    /// Ids of advisories affecting this release.
    pub advisories: Vec<String>,
}

/// What is known of a release's dependency metadata. "Not fetched yet" is a
/// state of its own, distinct from "cannot be had".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requires {
    /// Read: the Requires-Dist list.
    Known(Arc<Vec<Dependency>>),
    /// Cannot be had, with the reason (metadata unreadable, dependencies
    /// dynamic in a source archive …).
    Unavailable(Arc<str>),
    /// Not asked for yet: [`crate::kb::KnowledgeBase::metadata`] fetches it.
    NotFetched,
}

impl Requires {
    /// The dependency list, when known.
    pub fn known(&self) -> Option<&Arc<Vec<Dependency>>> {
        match self {
            Self::Known(deps) => Some(deps),
            _ => None,
        }
    }
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
    /// The index the record was read from (without credentials), when it
    /// differs from [`crate::kb::SnapshotMeta::index_url`] or came from the network.
    pub index: Option<Arc<str>>,
}

/// Upload times normalised to `YYYY-MM-DDTHH:MM:SSZ`, so they compare as
/// text (see [`crate::time::Timestamp`]).
pub fn normalise_time(text: &str) -> Option<String> {
    crate::time::Timestamp::parse_time(text).map(|t| t.to_string())
}
