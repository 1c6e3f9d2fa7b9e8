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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use super::remote::Remote;
use super::sqlite::{AdvisoryRule, SqliteKb};
use super::store::{Store, StoredMetadata, StoredPage};
use super::{
    Advisory, Distribution, KbError, KnowledgeBase, Lookup, MetadataAnswer, ProjectRecord,
    ReleaseMetadata, Requires, SnapshotMeta, Target, Wanted,
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
    pub target: Mutex<Option<Arc<Target>>>,
    /// What the base snapshot knows of each project's release metadata
    /// (asked once per project; the whole record is not kept).
    pub base_known: Mutex<HashMap<String, Arc<super::sqlite::KnownMetadata>>>,
}

fn with_slash(url: &str) -> String {
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
        page.age(super::store::now()) < max_age
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
    pub fn wheel_target(&self) -> Option<super::tags::WheelTarget> {
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
pub fn only_for(record: &ProjectRecord, target: &super::tags::WheelTarget) -> ProjectRecord {
    ProjectRecord {
        name: record.name.clone(),
        display_name: record.display_name.clone(),
        index: record.index.clone(),
        releases: record
            .releases
            .iter()
            .map(|r| super::Release {
                version: r.version.clone(),
                upload_time: r.upload_time.clone(),
                yanked: r.yanked,
                yanked_reason: r.yanked_reason.clone(),
                requires_python: r.requires_python.clone(),
                distributions: {
                    let keep = |d: &&Distribution| {
                        super::tags::is_sdist(&d.filename) || target.accepts_filename(&d.filename)
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

/// The layered knowledge base of one run.
pub struct LayeredKb {
    layers: Arc<Layers>,
    store: Store,
    remote: OnceLock<Result<Remote, String>>,
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

/// What a run's knowledge base did, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    /// `online` or `offline`.
    pub mode: &'static str,
    /// Indexes in order (without credentials), and where they came from.
    pub indexes: Vec<String>,
    /// Where the index list came from.
    pub indexes_from: String,
    /// The user knowledge base file.
    pub user_kb: String,
    /// The base snapshot file, its cutoff and index.
    pub base_snapshot: Option<serde_json::Value>,
    /// Project pages: fetched, revalidated (304), from the user knowledge
    /// base, from the base snapshot, not found.
    pub pages: BTreeMap<&'static str, u64>,
    /// Release metadata by where it came from.
    pub metadata: BTreeMap<&'static str, u64>,
    /// Age in seconds of the oldest project data the run used (`None` when
    /// all of it was fetched now).
    pub oldest_data_seconds: Option<i64>,
    /// Where each project the run looked at came from.
    pub projects: BTreeMap<String, Origin>,
    /// Network use.
    pub network: BTreeMap<&'static str, f64>,
    /// Projects no layer could supply (offline).
    pub missing_projects: Vec<String>,
    /// Releases whose metadata no layer could supply (offline).
    pub missing_metadata: Vec<String>,
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
            .map_err(|message| KbError::Network {
                what: "starting the network client".into(),
                message: message.clone(),
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

    /// Requests sent and bytes received so far.
    pub fn network_counts(&self) -> (u64, u64) {
        match self.remote.get() {
            Some(Ok(remote)) => {
                let s = &remote.client().stats;
                (
                    s.requests.load(Ordering::Relaxed),
                    s.bytes.load(Ordering::Relaxed),
                )
            }
            _ => (0, 0),
        }
    }

    /// What this run's knowledge base did.
    pub fn report(&self) -> LiveReport {
        let c = &self.layers.counters;
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let memo = self
            .memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let projects: BTreeMap<String, Origin> = memo
            .iter()
            .map(|(name, (_, origin))| (name.clone(), origin.clone()))
            .collect();
        drop(memo);
        let from_base = projects
            .values()
            .filter(|o| matches!(o, Origin::Snapshot { .. }))
            .count() as u64;
        let from_store = projects
            .values()
            .filter(|o| matches!(o, Origin::UserKb { .. }))
            .count() as u64;
        let oldest = projects
            .values()
            .filter_map(|o| match o {
                Origin::UserKb { age_seconds, .. } => Some(*age_seconds),
                _ => None,
            })
            .max();
        let mut network = BTreeMap::new();
        if let Some(Ok(remote)) = self.remote.get() {
            let s = &remote.client().stats;
            network.insert("requests", n(&s.requests) as f64);
            network.insert("bytes", n(&s.bytes) as f64);
            network.insert("retries", n(&s.retries) as f64);
            network.insert("not_modified", n(&s.not_modified) as f64);
        } else {
            network.insert("requests", 0.0);
            network.insert("bytes", 0.0);
        }
        network.insert("seconds_waiting", self.waited.seconds());
        LiveReport {
            mode: if self.layers.options.offline {
                "offline"
            } else {
                "online"
            },
            indexes: self
                .layers
                .index_keys
                .iter()
                .map(|k| k.to_string())
                .collect(),
            indexes_from: self.layers.indexes.origin.clone(),
            user_kb: self.store.path().display().to_string(),
            base_snapshot: self.layers.base.as_ref().map(|b| {
                serde_json::json!({
                    "path": b.path().display().to_string(),
                    "created_at": b.meta().created_at,
                    "cutoff": b.meta().cutoff,
                    "index_url": b.meta().index_url,
                    "role": if self.layers.base_primary { "primary" } else { "fallback" },
                })
            }),
            pages: BTreeMap::from([
                ("fetched", n(&c.pages_fetched)),
                ("revalidated", n(&c.pages_revalidated)),
                ("from_user_kb", from_store),
                ("from_base_snapshot", from_base),
                ("not_found", n(&c.pages_not_found)),
            ]),
            metadata: BTreeMap::from([
                ("from_base_snapshot", n(&c.meta_base)),
                ("from_user_kb", n(&c.meta_stored)),
                ("fetched_pep658", n(&c.meta_pep658)),
                ("fetched_wheel_range", n(&c.meta_range)),
                ("fetched_sdist", n(&c.meta_sdist)),
                ("unavailable", n(&c.meta_unavailable)),
            ]),
            oldest_data_seconds: oldest,
            projects,
            network,
            missing_projects: self.missing_projects(),
            missing_metadata: self.missing_metadata(),
        }
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

    fn prefetch(&self, target: &Arc<Target>, wanted: &[Wanted]) {
        {
            let mut t = self
                .layers
                .target
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if t.is_none() {
                *t = Some(target.clone());
            }
        }
        if self.layers.options.offline {
            return;
        }
        let new: Vec<Wanted> = {
            let memo = self
                .memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            wanted
                .iter()
                .filter(|w| !memo.contains_key(&w.name))
                .cloned()
                .collect()
        };
        // A project whose page is fresh in the user knowledge base is
        // loaded now; only the others are fetched (and crawled from). One
        // already fetched in this run needs neither.
        let mut fetch = Vec::new();
        for w in new {
            if (0..self.layers.index_keys.len()).any(|i| {
                self.layers
                    .delivered(&Key::Page(i, w.name.clone()))
                    .is_some()
            }) {
                continue;
            }
            match self.stored_project(&w.name) {
                Ok(Some(done)) => {
                    self.memo
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .entry(w.name.clone())
                        .or_insert(done);
                }
                _ => fetch.push(w),
            }
        }
        let new = fetch;
        if new.is_empty() {
            return;
        }
        if let Ok(remote) = self.remote() {
            remote.crawl(target.clone(), new);
        }
    }

    fn prefetch_projects(&self, names: &[String]) {
        if self.layers.options.offline {
            return;
        }
        let Ok(remote) = self.remote() else {
            return;
        };
        for name in names {
            let known = self
                .memo
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(name);
            if known {
                continue;
            }
            let first = self
                .layers
                .indexes
                .indexes
                .iter()
                .position(|ix| self.layers.indexes.for_project(name).contains(&ix));
            if let Ok(Some(done)) = self.stored_project(name) {
                self.memo
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(name.clone())
                    .or_insert(done);
                continue;
            }
            if let Some(i) = first {
                remote.ask(
                    Key::Page(i, name.clone()),
                    crate::index::http::Priority::HINT,
                );
            }
        }
    }

    fn prefetch_metadata(&self, record: &Arc<ProjectRecord>, releases: &[usize]) {
        if self.layers.options.offline {
            return;
        }
        let Some(i) = self.layers.index_of(record) else {
            return;
        };
        let Ok(remote) = self.remote() else {
            return;
        };
        for &r in releases {
            let release = &record.releases[r];
            if !matches!(release.dependencies, Requires::NotFetched) {
                continue;
            }
            let key = Key::Meta(i, record.name.clone(), release.version.clone());
            if self.layers.delivered(&key).is_some() {
                continue;
            }
            remote.ask_metadata(
                key,
                &release.distributions,
                crate::index::http::Priority::HINT,
            );
        }
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
