//! What the resolver's side and the background work share: the layers'
//! configuration, answers delivered so far, counters, and the questions
//! both sides ask of stored data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use super::super::store::{Store, StoredMetadata, StoredPage};
use super::super::{
    Distribution, KbError, MetadataAnswer, PrefetchTarget, ProjectRecord, ReleaseMetadata,
};
use super::{LiveOptions, Refresh};
use crate::index::IndexConfig;
use crate::kb::sqlite::SqliteKb;
use crate::python::Version;

/// What the background work is asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The page of a project on index `.0`.
    Page(usize, String),
    /// The metadata of a release on index `.0`.
    Meta(usize, String, Version),
}

/// A page as an index answered it.
#[derive(Debug, Clone)]
pub(crate) enum PageAnswer {
    /// The project, and the age of the data in seconds.
    Found(Arc<ProjectRecord>, i64),
    /// The index says it has no such project.
    NotFound,
}

/// An answer delivered by the background work.
#[derive(Debug, Clone)]
pub(crate) enum Delivery {
    Page(PageAnswer),
    Meta(MetadataAnswer),
    Failed(String),
}

/// Counters of one run (shared with the background work).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub pages_fetched: AtomicU64,
    pub pages_revalidated: AtomicU64,
    pub pages_not_found: AtomicU64,
    pub meta_base: AtomicU64,
    pub meta_stored: AtomicU64,
    pub meta_pep658: AtomicU64,
    pub meta_range: AtomicU64,
    pub meta_sdist: AtomicU64,
    pub meta_unavailable: AtomicU64,
}

/// What the resolver and the background work share.
pub(crate) struct Layers {
    pub base: Option<Arc<SqliteKb>>,
    /// The base snapshot was chosen explicitly (`--snapshot`): its release
    /// lists answer first.
    pub base_primary: bool,
    /// The index the base snapshot was built from, ending in `/`.
    pub base_index: Option<String>,
    pub indexes: IndexConfig,
    /// Index URLs (without credentials), in `indexes` order.
    pub index_keys: Vec<Arc<str>>,
    pub options: LiveOptions,
    pub ready: Mutex<HashMap<Key, Delivery>>,
    pub arrived: Condvar,
    pub counters: Counters,
    pub target: Mutex<Option<Arc<PrefetchTarget>>>,
    /// What the base snapshot knows of each project's release metadata
    /// (asked once per project; the whole record is not kept).
    pub base_known: Mutex<HashMap<String, Arc<crate::kb::sqlite::KnownMetadata>>>,
}

pub(super) fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

impl Layers {
    /// May the stored page of `name` answer without asking the index?
    pub fn usable(&self, page: &StoredPage, name: &str) -> bool {
        if self.options.offline {
            return true;
        }
        let refreshed = match &self.options.refresh {
            Refresh::None => false,
            Refresh::All => true,
            Refresh::Packages(names) => names.contains(name),
        };
        // A page that listed no files is always asked again.
        if refreshed || page.found && page.files == 0 {
            return false;
        }
        let max_age = page
            .max_age
            .unwrap_or(i64::try_from(self.options.max_age).unwrap_or(i64::MAX));
        page.age(crate::kb::store::now()) < max_age
    }

    pub fn deliver(&self, key: Key, delivery: Delivery) {
        let mut ready = self
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ready.entry(key).or_insert(delivery);
        drop(ready);
        self.arrived.notify_all();
    }

    pub fn delivered(&self, key: &Key) -> Option<Delivery> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The metadata of `name` `version` (whose files on index `index` are
    /// `files`) if a base snapshot or the user knowledge base holds it.
    pub fn stored_metadata(
        &self,
        store: &Store,
        index: usize,
        name: &str,
        version: &Version,
        files: &[Distribution],
    ) -> Result<Option<MetadataAnswer>, KbError> {
        if let Some(base) = &self.base {
            let known = {
                let cached = self
                    .base_known
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(name)
                    .cloned();
                match cached {
                    Some(k) => k,
                    None => {
                        let k = Arc::new(base.known_metadata(name)?);
                        self.base_known
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(name.to_string(), k.clone());
                        k
                    }
                }
            };
            if let Some((meta, digests)) = known.get(version) {
                let same_index = self.base_index.as_deref() == Some(&*self.index_keys[index]);
                let same_file = !same_index
                    && files
                        .iter()
                        .any(|d| d.sha256.as_deref().is_some_and(|h| digests.contains(h)));
                if same_index || same_file {
                    self.counters.meta_base.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(MetadataAnswer::Known(meta.clone())));
                }
            }
        }
        Ok(
            match store.metadata(&self.index_keys[index], name, version)? {
                Some(StoredMetadata::Known {
                    dependencies,
                    requires_python,
                    provides_extras,
                    ..
                }) => {
                    self.counters.meta_stored.fetch_add(1, Ordering::Relaxed);
                    Some(MetadataAnswer::Known(Arc::new(ReleaseMetadata {
                        dependencies: Arc::new(dependencies),
                        requires_python,
                        provides_extras,
                    })))
                }
                Some(StoredMetadata::Unavailable(reason)) => {
                    self.counters.meta_stored.fetch_add(1, Ordering::Relaxed);
                    Some(MetadataAnswer::Unavailable(Arc::from(reason)))
                }
                None => None,
            },
        )
    }

    /// The record as this run keeps it in memory: with a target known,
    /// only the files that could be installed on it (source archives and
    /// fitting wheels), without digests and sizes. The user knowledge base
    /// keeps every file whole; locks read them from there
    /// ([`KnowledgeBase::files`]).
    pub fn for_run(&self, record: &ProjectRecord) -> ProjectRecord {
        let target = self
            .target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match target {
            Some(t) => only_for(record, &t.query.target),
            None => record.clone(),
        }
    }

    /// The target's wheel tags, once known.
    pub fn wheel_target(&self) -> Option<crate::kb::tags::WheelTarget> {
        self.target
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|t| t.query.target.clone())
    }

    /// Position of the index a record was read from.
    pub fn index_of(&self, record: &ProjectRecord) -> Option<usize> {
        let index = record.index.as_deref()?;
        self.index_keys.iter().position(|k| &**k == index)
    }
}

/// `record` without the wheels `target` cannot install.
pub fn only_for(record: &ProjectRecord, target: &crate::kb::tags::WheelTarget) -> ProjectRecord {
    ProjectRecord {
        name: record.name.clone(),
        display_name: record.display_name.clone(),
        index: record.index.clone(),
        releases: record
            .releases
            .iter()
            .map(|r| crate::kb::Release {
                version: r.version.clone(),
                upload_time: r.upload_time.clone(),
                yanked: r.yanked,
                yanked_reason: r.yanked_reason.clone(),
                requires_python: r.requires_python.clone(),
                distributions: {
                    let keep = |d: &&Distribution| {
                        crate::kb::tags::is_sdist(&d.filename)
                            || target.accepts_filename(&d.filename)
                    };
                    let mut kept = Vec::with_capacity(r.distributions.iter().filter(keep).count());
                    // Digests and sizes are read from the store when a lock
                    // needs them.
                    kept.extend(r.distributions.iter().filter(keep).map(|d| Distribution {
                        filename: d.filename.clone(),
                        sha256: None,
                        size: None,
                        upload_time: d.upload_time.clone(),
                        requires_python: d.requires_python.clone(),
                        yanked: d.yanked,
                        url: d.url.clone(),
                    }));
                    kept
                },
                dependencies: r.dependencies.clone(),
                provides_extras: r.provides_extras.clone(),
                advisories: r.advisories.clone(),
            })
            .collect(),
    }
}
