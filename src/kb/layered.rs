//! The knowledge base a run resolves against: a base snapshot, the user
//! knowledge base ([`super::store`]) and the package index, behind the one
//! [`KnowledgeBase`] seam the resolver knows.
//!
//! Which layer answers what:
//!
//! | question | answered by, in order |
//! |---|---|
//! | a project's releases and files | an explicit `--snapshot` that holds the project; the user knowledge base when its copy is fresh (or always with `--offline`); the index (stored as it arrives); with `--offline` last, the bundled snapshot |
//! | one release's dependency metadata | the base snapshot (same index, or a file with the same digest); the user knowledge base; the index |
//! | advisories | the base snapshot, mapped onto every version by their ranges |
//!
//! A page is fresh for the server's `Cache-Control: max-age`, else for
//! [`DEFAULT_MAX_AGE`]; `--refresh` and `--refresh-package` ignore stored
//! pages. Release metadata never changes once published, so it is kept for
//! good. A name found on an index is taken only from the first index that
//! has it. Network work runs in the background ([`super::remote`]): the
//! search's hints start it early, and a question the search waits on jumps
//! the queue.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::remote::Remote;
use super::sqlite::{AdvisoryRule, SqliteKb};
use super::store::Store;
use super::{
    Advisory, Distribution, KbError, KnowledgeBase, Lookup, MetadataAnswer, PrefetchTarget,
    ProjectRecord, Requires, SnapshotMeta, Wanted,
};
use crate::index::IndexConfig;
use crate::index::http::Waited;
use crate::python::Version;

/// Seconds a stored project page is fresh when the index gave no
/// `Cache-Control` (10 minutes, as the main public index sends).
pub const DEFAULT_MAX_AGE: u64 = 600;

/// Which stored pages to ignore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Refresh {
    /// Use fresh pages.
    #[default]
    None,
    /// Fetch every page again.
    All,
    /// Fetch these projects' pages again.
    Packages(BTreeSet<String>),
}

/// How a run uses the layers.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Never touch the network.
    pub offline: bool,
    /// Pages to fetch again.
    pub refresh: Refresh,
    /// Freshness when the index gives none, in seconds.
    pub max_age: u64,
    /// Requests in flight at most.
    pub jobs: usize,
    /// Show a progress bar while network work runs.
    pub progress: bool,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            offline: false,
            refresh: Refresh::None,
            max_age: DEFAULT_MAX_AGE,
            jobs: 16,
            progress: false,
        }
    }
}

mod layers;
mod prefetch;
mod report;

pub use layers::only_for;
use layers::with_slash;
pub(crate) use layers::{Counters, Delivery, Key, Layers, PageAnswer};
pub use report::LiveReport;

/// Where the data about a project came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Origin {
    /// Fetched from the index during this run.
    Index {
        /// The index.
        index: String,
    },
    /// The user knowledge base.
    UserKb {
        /// The index it was read from.
        index: String,
        /// Seconds since it was fetched.
        age_seconds: i64,
    },
    /// The base snapshot.
    Snapshot {
        /// When the snapshot was built.
        created_at: Option<String>,
    },
    /// Nowhere: missing.
    Nowhere,
}

/// The layered knowledge base of one run.
pub struct LayeredKb {
    layers: Arc<Layers>,
    store: Store,
    remote: OnceLock<Result<Remote, super::remote::StartError>>,
    meta: SnapshotMeta,
    memo: Mutex<HashMap<String, (Lookup, Origin)>>,
    advisory_rules: Mutex<HashMap<String, Arc<Vec<AdvisoryRule>>>>,
    missing_projects: Mutex<BTreeSet<String>>,
    missing_metadata: Mutex<BTreeSet<(String, String)>>,
    waited: Waited,
}

impl std::fmt::Debug for LayeredKb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayeredKb")
            .field("store", &self.store.path())
            .field("indexes", &self.layers.indexes)
            .finish_non_exhaustive()
    }
}

impl LayeredKb {
    /// A layered knowledge base over `base` (`base_primary` when the user
    /// chose it explicitly), the user knowledge base at `store_path`, and
    /// `indexes`.
    pub fn open(
        base: Option<SqliteKb>,
        base_primary: bool,
        store_path: &std::path::Path,
        indexes: IndexConfig,
        options: LiveOptions,
    ) -> Result<Self, KbError> {
        let store = Store::open(store_path)?;
        let base_meta = base.as_ref().map(|b| b.meta().clone()).unwrap_or_default();
        let base_index = base_meta.index_url.as_deref().map(with_slash);
        let index_keys: Vec<Arc<str>> = indexes
            .indexes
            .iter()
            .map(|i| Arc::from(i.as_str()))
            .collect();
        let meta = SnapshotMeta {
            index_url: indexes
                .primary()
                .map(|i| i.without_slash().to_string())
                .or(base_meta.index_url.clone()),
            ..base_meta
        };
        Ok(Self {
            layers: Arc::new(Layers {
                base: base.map(Arc::new),
                base_primary,
                base_index,
                indexes,
                index_keys,
                options,
                ready: Mutex::new(HashMap::new()),
                arrived: Condvar::new(),
                counters: Counters::default(),
                target: Mutex::new(None),
                base_known: Mutex::new(HashMap::new()),
            }),
            store,
            remote: OnceLock::new(),
            meta,
            memo: Mutex::new(HashMap::new()),
            advisory_rules: Mutex::new(HashMap::new()),
            missing_projects: Mutex::new(BTreeSet::new()),
            missing_metadata: Mutex::new(BTreeSet::new()),
            waited: Waited::default(),
        })
    }

    /// The base snapshot, if any.
    pub fn base(&self) -> Option<&SqliteKb> {
        self.layers.base.as_deref()
    }

    /// The user knowledge base.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The index list.
    pub fn indexes(&self) -> &IndexConfig {
        &self.layers.indexes
    }

    /// Working offline.
    pub fn offline(&self) -> bool {
        self.layers.options.offline
    }

    fn remote(&self) -> Result<&Remote, KbError> {
        self.remote
            .get_or_init(|| Remote::start(self.layers.clone(), &self.store))
            .as_ref()
            .map_err(|e| KbError::Network {
                what: "starting the network client".into(),
                message: e.to_string(),
            })
    }

    /// Wait for the background work to answer `key`.
    fn wait(&self, key: &Key) -> Delivery {
        let started = Instant::now();
        let mut ready = self
            .layers
            .ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(d) = ready.get(key) {
                let d = d.clone();
                drop(ready);
                self.waited.add(started);
                return d;
            }
            let (guard, _) = self
                .layers
                .arrived
                .wait_timeout(ready, std::time::Duration::from_millis(500))
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ready = guard;
            if self
                .remote
                .get()
                .and_then(|r| r.as_ref().ok())
                .is_some_and(Remote::stopped)
                && !ready.contains_key(key)
            {
                return Delivery::Failed("the network worker stopped".into());
            }
        }
    }

    /// The page of `name` on index `i`: fresh from the store, or fetched.
    fn page_on(&self, i: usize, name: &str) -> Result<Option<(PageAnswer, Origin)>, KbError> {
        let key = Key::Page(i, name.to_string());
        let index = self.layers.index_keys[i].to_string();
        if let Some(Delivery::Page(answer)) = self.layers.delivered(&key) {
            let origin = match &answer {
                PageAnswer::Found(_, age) if *age > 0 => Origin::UserKb {
                    index,
                    age_seconds: *age,
                },
                _ => Origin::Index { index },
            };
            return Ok(Some((answer, origin)));
        }
        let target = self.layers.wheel_target();
        let stored = self
            .store
            .page_for(&self.layers.index_keys[i], name, target.as_ref())?;
        if let Some(page) = stored
            && self.layers.usable(&page, name)
        {
            let age = page.age(super::store::now());
            let origin = Origin::UserKb {
                index,
                age_seconds: age,
            };
            return Ok(Some(match page.record {
                Some(record) => (PageAnswer::Found(Arc::new(record), age), origin),
                None => (PageAnswer::NotFound, origin),
            }));
        }
        if self.layers.options.offline {
            return Ok(None);
        }
        let remote = self.remote()?;
        remote.ask(key.clone(), crate::index::http::Priority::URGENT);
        match self.wait(&key) {
            Delivery::Page(answer) => Ok(Some((answer, Origin::Index { index }))),
            Delivery::Failed(message) => Err(KbError::Network {
                what: format!("the page of {name}"),
                message,
            }),
            Delivery::Meta(_) => unreachable!("a page key is answered with a page"),
        }
    }

    fn load_project(&self, name: &str) -> Result<(Lookup, Origin), KbError> {
        let base_origin = || Origin::Snapshot {
            created_at: self.meta.created_at.clone(),
        };
        if self.layers.base_primary
            && let Some(base) = &self.layers.base
            && let found @ Lookup::Found(_) = base.project(name)?
        {
            return Ok((found, base_origin()));
        }
        let indexes: Vec<usize> = {
            let allowed = self.layers.indexes.for_project(name);
            self.layers
                .indexes
                .indexes
                .iter()
                .enumerate()
                .filter(|(_, ix)| allowed.iter().any(|a| a == ix))
                .map(|(i, _)| i)
                .collect()
        };
        // Working offline, the base snapshot stands in for the index it was
        // built from (or for the primary index when none is that one), in
        // that index's place in the order.
        let stand_in = self
            .layers
            .base
            .as_ref()
            .filter(|_| self.layers.options.offline)
            .map(|_| {
                self.layers
                    .index_keys
                    .iter()
                    .position(|k| Some(&**k) == self.layers.base_index.as_deref())
                    .unwrap_or(0)
            });
        let mut not_found = Vec::new();
        let mut base_said = None;
        for i in indexes {
            match self.page_on(i, name)? {
                Some((PageAnswer::Found(record, _), origin)) => {
                    return Ok((Lookup::Found(self.with_advisories(record)?), origin));
                }
                Some((PageAnswer::NotFound, _)) => {
                    self.layers
                        .counters
                        .pages_not_found
                        .fetch_add(1, Ordering::Relaxed);
                    not_found.push(self.layers.index_keys[i].to_string());
                }
                None if stand_in == Some(i) => {
                    let base = self.layers.base.as_ref().expect("a stand-in has a base");
                    match base.project(name)? {
                        found @ Lookup::Found(_) => return Ok((found, base_origin())),
                        // The snapshot's "unavailable" is about what it was
                        // built to hold; offline, the project is missing.
                        Lookup::Unavailable(reason) => base_said = Some(reason),
                        Lookup::Missing => {}
                    }
                }
                None => {}
            }
        }
        if !not_found.is_empty() {
            return Ok((
                Lookup::Unavailable(format!("not found on {}", not_found.join(", "))),
                Origin::Nowhere,
            ));
        }
        self.missing_projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string());
        Ok((
            Lookup::Unavailable(match base_said {
                Some(reason) => format!(
                    "not in the knowledge base (the snapshot: {reason}), and --offline forbids fetching it"
                ),
                None => "not in the knowledge base, and --offline forbids fetching it".to_string(),
            }),
            Origin::Nowhere,
        ))
    }

    /// The project from fresh stored pages alone, following the
    /// first-index rule; `None` when some index must be asked.
    fn stored_project(&self, name: &str) -> Result<Option<(Lookup, Origin)>, KbError> {
        if self.layers.base_primary {
            return Ok(None);
        }
        let allowed = self.layers.indexes.for_project(name);
        for (i, ix) in self.layers.indexes.indexes.iter().enumerate() {
            if !allowed.contains(&ix) {
                continue;
            }
            let target = self.layers.wheel_target();
            let Some(page) =
                self.store
                    .page_for(&self.layers.index_keys[i], name, target.as_ref())?
            else {
                return Ok(None);
            };
            if !self.layers.usable(&page, name) {
                return Ok(None);
            }
            let age_seconds = page.age(super::store::now());
            if let Some(record) = page.record {
                let origin = Origin::UserKb {
                    index: self.layers.index_keys[i].to_string(),
                    age_seconds,
                };
                return Ok(Some((
                    Lookup::Found(self.with_advisories(Arc::new(record))?),
                    origin,
                )));
            }
        }
        Ok(None)
    }

    /// Map the base snapshot's advisories onto a record read from an index.
    fn with_advisories(&self, record: Arc<ProjectRecord>) -> Result<Arc<ProjectRecord>, KbError> {
        let Some(base) = &self.layers.base else {
            return Ok(record);
        };
        let rules = {
            let mut cache = self
                .advisory_rules
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match cache.get(&record.name) {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(base.advisory_rules(&record.name)?);
                    cache.insert(record.name.clone(), r.clone());
                    r
                }
            }
        };
        if rules.is_empty() {
            return Ok(record);
        }
        let mut owned = (*record).clone();
        for release in &mut owned.releases {
            release.advisories = rules
                .iter()
                .filter(|rule| rule.affects(&release.version))
                .map(|rule| rule.id.clone())
                .collect();
        }
        Ok(Arc::new(owned))
    }

    /// Where the data about `name` came from (after it was looked up).
    pub fn origin(&self, name: &str) -> Option<Origin> {
        self.memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .map(|(_, o)| o.clone())
    }

    /// Every project looked up so far, with what was found and where.
    pub fn looked_up(&self) -> Vec<(String, Lookup, Origin)> {
        let memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(String, Lookup, Origin)> = memo
            .iter()
            .map(|(n, (l, o))| (n.clone(), l.clone(), o.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The index position a record's metadata is asked for on.
    pub fn index_key(&self, record: &ProjectRecord) -> Option<Arc<str>> {
        self.layers
            .index_of(record)
            .map(|i| self.layers.index_keys[i].clone())
    }

    /// Projects no layer could supply (working offline).
    pub fn missing_projects(&self) -> Vec<String> {
        self.missing_projects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Releases (`name version`) whose metadata no layer could supply.
    pub fn missing_metadata(&self) -> Vec<String> {
        self.missing_metadata
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect()
    }

    /// Stop the background work: pending prefetches are dropped, what has
    /// arrived is written to the user knowledge base. Idempotent.
    pub fn finish(&self) {
        if let Some(Ok(remote)) = self.remote.get() {
            remote.finish();
        }
    }

    /// What the layers below the network know of release `release` of
    /// `record`, fetching nothing: the record's own answer, the user
    /// knowledge base (only lasting answers are stored there), or the base
    /// snapshot (same index, or a file with the same digest).
    pub fn known_metadata(
        &self,
        record: &ProjectRecord,
        release: usize,
    ) -> Result<Option<MetadataAnswer>, KbError> {
        let r = &record.releases[release];
        if !matches!(r.dependencies, Requires::NotFetched) {
            return Ok(Some(super::metadata_of(record, release)));
        }
        let Some(i) = self.layers.index_of(record) else {
            return Ok(None);
        };
        self.layers
            .stored_metadata(&self.store, i, &record.name, &r.version, &r.distributions)
    }
}

impl KnowledgeBase for LayeredKb {
    fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    fn project(&self, name: &str) -> Result<Lookup, KbError> {
        if let Some((hit, _)) = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(hit.clone());
        }
        let (lookup, origin) = self.load_project(name)?;
        self.memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), (lookup.clone(), origin));
        Ok(lookup)
    }

    fn metadata(&self, record: &ProjectRecord, release: usize) -> Result<MetadataAnswer, KbError> {
        let r = &record.releases[release];
        if !matches!(r.dependencies, Requires::NotFetched) {
            // A snapshot's record carries its own answer.
            return Ok(super::metadata_of(record, release));
        }
        // A record from a snapshot names no index: it came from the one the
        // snapshot was built from.
        let index = self.layers.index_of(record).or_else(|| {
            self.layers
                .index_keys
                .iter()
                .position(|k| Some(&**k) == self.layers.base_index.as_deref())
        });
        let Some(i) = index else {
            return Ok(MetadataAnswer::Unavailable(Arc::from(
                "metadata not in the snapshot, and the index it was built from is not configured",
            )));
        };
        let key = Key::Meta(i, record.name.clone(), r.version.clone());
        if let Some(Delivery::Meta(answer)) = self.layers.delivered(&key) {
            return Ok(answer);
        }
        if let Some(answer) = self.layers.stored_metadata(
            &self.store,
            i,
            &record.name,
            &r.version,
            &r.distributions,
        )? {
            return Ok(answer);
        }
        if self.layers.options.offline {
            self.missing_metadata
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert((record.name.clone(), r.version.to_string()));
            return Ok(MetadataAnswer::Unavailable(Arc::from(
                "metadata not in the knowledge base, and --offline forbids fetching it \
                 (run online once, or build a snapshot with `thoth-rs snapshot sync --project`)",
            )));
        }
        let remote = self.remote()?;
        remote.ask_metadata(
            key.clone(),
            &r.distributions,
            crate::index::http::Priority::URGENT,
        );
        match self.wait(&key) {
            Delivery::Meta(answer) => Ok(answer),
            Delivery::Failed(message) => Err(KbError::Network {
                what: format!("the metadata of {} {}", record.name, r.version),
                message,
            }),
            Delivery::Page(_) => unreachable!("a metadata key is answered with metadata"),
        }
    }

    fn prefetch(&self, target: &Arc<PrefetchTarget>, wanted: &[Wanted]) {
        self.hint_wanted(target, wanted);
    }

    fn prefetch_projects(&self, names: &[String]) {
        self.hint_projects(names);
    }

    fn prefetch_metadata(&self, record: &Arc<ProjectRecord>, releases: &[usize]) {
        self.hint_metadata(record, releases);
    }

    fn files(&self, name: &str, version: &Version) -> Result<Vec<Distribution>, KbError> {
        if matches!(self.origin(name), Some(Origin::Snapshot { .. }))
            && let Some(base) = &self.layers.base
        {
            return base.files(name, version);
        }
        let Some((record, i)) = self.release(name, version)? else {
            return Ok(Vec::new());
        };
        // Every file of the release, from the stored page (the record in
        // memory keeps only those for the target). Pages fetched in this
        // run may still be on their way to the store.
        if let Some(index) = self.layers.index_of(&record) {
            for attempt in 0..2 {
                if attempt == 1 {
                    match self.remote.get() {
                        Some(Ok(remote)) => remote.flush(),
                        _ => break,
                    }
                }
                if let Some(files) =
                    self.store
                        .release_files(&self.layers.index_keys[index], name, version)?
                    && !files.is_empty()
                {
                    return Ok(files);
                }
            }
        }
        Ok(record.releases[i].distributions.clone())
    }

    fn advisory(&self, id: &str) -> Result<Option<Advisory>, KbError> {
        match &self.layers.base {
            Some(base) => base.advisory(id),
            None => Ok(None),
        }
    }
}
