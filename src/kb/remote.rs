//! The network side of the layered knowledge base: a background thread
//! with its own async runtime that fetches project pages and release
//! metadata, writes what arrives to the user knowledge base (on a writer
//! thread, in short transactions), and hands answers to the resolver.
//!
//! Three kinds of work, by priority: what the search is blocked on, what it
//! said it may try next, and guesses made ahead of it. A guess (a *crawl*)
//! follows a requirement the search has met: fetch the project's page, take
//! the newest release the requirement and the target admit (the one a
//! newest-first search tries first), fetch its metadata, and crawl the
//! dependencies that apply. The search never waits for a guess; when it
//! asks for something a guess is already fetching, that fetch is raised to
//! the top of the queue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod writer;

use super::layered::{Delivery, Key, Layers, PageAnswer};
use super::metadata::CoreMetadata;
use super::store::{Store, StoredMetadata, StoredPage};
use super::{
    Distribution, KbError, MetadataAnswer, PrefetchTarget, ProjectRecord, ReleaseMetadata, Wanted,
};
use crate::index::http::{CacheHeaders, Client, ClientOptions, Get, PAGE_CAP, Priority, Reply};
use crate::index::metadata::{MetadataError, MetadataSource};
use crate::index::{Credentials, page, redact};
use crate::python::{ExtraName, Version};
use writer::{Write, write_loop};

enum Job {
    Fetch {
        key: Key,
        files: Vec<Distribution>,
        priority: Priority,
    },
    Crawl {
        target: Arc<PrefetchTarget>,
        wanted: Vec<Wanted>,
    },
}

/// The running network side.
pub(crate) struct Remote {
    tx: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Job>>>,
    jobs: Arc<Mutex<HashMap<Key, Priority>>>,
    client: Client,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    writer: Mutex<Option<(std::sync::mpsc::Sender<Write>, std::thread::JoinHandle<()>)>>,
    stopped: Arc<AtomicBool>,
    bar: Option<indicatif::ProgressBar>,
}

struct Ctx {
    layers: Arc<Layers>,
    store: Store,
    client: Client,
    writes: Mutex<std::sync::mpsc::Sender<Write>>,
    jobs: Arc<Mutex<HashMap<Key, Priority>>>,
    crawled: Mutex<HashMap<String, Vec<ExtraName>>>,
    arrived: tokio::sync::Notify,
    bar: Option<indicatif::ProgressBar>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the network side of the knowledge base could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client (TLS set-up).
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The user knowledge base could not be opened again for the workers.
    #[error(transparent)]
    Store(#[from] KbError),
    /// A worker thread.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

impl Remote {
    /// Start the client, the writer thread and the worker thread.
    pub fn start(layers: Arc<Layers>, store: &Store) -> Result<Self, StartError> {
        let credentials = Credentials::new(&layers.indexes);
        let insecure: Vec<String> = layers
            .indexes
            .indexes
            .iter()
            .filter(|i| !i.verify_tls)
            .map(crate::index::IndexUrl::realm)
            .collect();
        let client = Client::new(
            credentials,
            insecure,
            ClientOptions::from_env(layers.options.jobs),
        )?;
        let writer_store = store.reopen()?;
        let worker_store = store.reopen()?;
        let (write_tx, write_rx) = std::sync::mpsc::channel::<Write>();
        let writer = std::thread::Builder::new()
            .name("thoth-kb-writer".into())
            .spawn(move || write_loop(&writer_store, &write_rx))
            .map_err(|e| StartError::Thread("writer", e))?;
        let bar = layers.options.progress.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let jobs: Arc<Mutex<HashMap<Key, Priority>>> = Arc::default();
        let ctx = Arc::new(Ctx {
            layers,
            store: worker_store,
            client: client.clone(),
            writes: Mutex::new(write_tx.clone()),
            jobs: jobs.clone(),
            crawled: Mutex::new(HashMap::new()),
            arrived: tokio::sync::Notify::new(),
            bar: bar.clone(),
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let stopped = Arc::new(AtomicBool::new(false));
        let done = stopped.clone();
        let thread = std::thread::Builder::new()
            .name("thoth-kb-network".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build();
                let Ok(runtime) = runtime else {
                    done.store(true, Ordering::SeqCst);
                    return;
                };
                runtime.block_on(async move {
                    while let Some(job) = rx.recv().await {
                        let ctx = ctx.clone();
                        tokio::spawn(async move { ctx.handle(job).await });
                    }
                });
                // Prefetches still running are abandoned.
                runtime.shutdown_background();
                done.store(true, Ordering::SeqCst);
            })
            .map_err(|e| StartError::Thread("network", e))?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            jobs,
            client,
            thread: Mutex::new(Some(thread)),
            writer: Mutex::new(Some((write_tx, writer))),
            stopped,
            bar,
        })
    }

    /// The client (for statistics).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The worker thread has ended.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn send(&self, job: Job) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(job);
        }
    }

    /// Ask for `key` at `level` (a page; metadata goes through
    /// [`Self::ask_metadata`]). Asking again only raises the priority.
    pub fn ask(&self, key: Key, level: u8) {
        self.ask_metadata(key, &[], level);
    }

    /// Ask for `key` with the files to read metadata from.
    pub fn ask_metadata(&self, key: Key, files: &[Distribution], level: u8) {
        let priority = {
            let mut jobs = lock(&self.jobs);
            if let Some(p) = jobs.get(&key) {
                p.raise(level);
                return;
            }
            let p = Priority::new(level);
            jobs.insert(key.clone(), p.clone());
            p
        };
        self.send(Job::Fetch {
            key,
            files: files.to_vec(),
            priority,
        });
    }

    /// Start guessing ahead from requirements the search has met.
    pub fn crawl(&self, target: Arc<PrefetchTarget>, wanted: Vec<Wanted>) {
        self.send(Job::Crawl { target, wanted });
    }

    /// Wait until everything that arrived so far is in the user knowledge
    /// base.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some((writer, _)) = lock(&self.writer).as_ref() {
            let _ = writer.send(Write::Barrier(tx));
        } else {
            return;
        }
        let _ = rx.recv_timeout(Duration::from_secs(60));
    }

    /// Stop: drop pending work, write what arrived, wait for both threads.
    pub fn finish(&self) {
        drop(lock(&self.tx).take());
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
        if let Some((tx, writer)) = lock(&self.writer).take() {
            let _ = tx.send(Write::Close);
            let _ = writer.join();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Ctx {
    fn write(&self, w: Write) {
        let _ = lock(&self.writes).send(w);
    }

    fn tick(&self) {
        let Some(bar) = &self.bar else {
            return;
        };
        let c = &self.layers.counters;
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.client.stats;
        bar.set_message(format!(
            "{} project pages, {} metadata files, {:.1} MiB, {} requests in flight",
            n(&c.pages_fetched) + n(&c.pages_revalidated),
            n(&c.meta_pep658) + n(&c.meta_range) + n(&c.meta_sdist),
            n(&s.bytes) as f64 / (1 << 20) as f64,
            n(&s.in_flight)
        ));
    }

    async fn handle(self: Arc<Self>, job: Job) {
        match job {
            Job::Fetch {
                key,
                files,
                priority,
            } => self.run(key, files, priority).await,
            Job::Crawl { target, wanted } => {
                for w in wanted {
                    let ctx = self.clone();
                    let target = target.clone();
                    tokio::spawn(async move { ctx.crawl_one(target, w).await });
                }
            }
        }
    }

    /// Fetch `key` (registered in `jobs` by whoever asked) and deliver it.
    async fn run(&self, key: Key, files: Vec<Distribution>, priority: Priority) {
        let delivery = match self.layers.delivered(&key) {
            Some(d) => d,
            None => match &key {
                Key::Page(i, name) => self.fetch_page(*i, name, &priority).await,
                Key::Meta(i, name, version) => {
                    self.fetch_meta(*i, name, version, &files, &priority).await
                }
            },
        };
        // Deliver before forgetting the job, so a new ask never misses both.
        self.layers.deliver(key.clone(), delivery);
        lock(&self.jobs).remove(&key);
        self.arrived.notify_waiters();
        self.tick();
    }

    /// Fetch `key` unless someone already is, and wait for its answer.
    async fn once(&self, key: Key, files: Vec<Distribution>, level: u8) -> Delivery {
        if let Some(d) = self.layers.delivered(&key) {
            return d;
        }
        let mine = {
            let mut jobs = lock(&self.jobs);
            match jobs.get(&key) {
                Some(p) => {
                    p.raise(level);
                    None
                }
                None => {
                    let p = Priority::new(level);
                    jobs.insert(key.clone(), p.clone());
                    Some(p)
                }
            }
        };
        if let Some(priority) = mine {
            self.run(key.clone(), files, priority).await;
        }
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(d) = self.layers.delivered(&key) {
                return d;
            }
            notified.await;
        }
    }

    /// A project page arrived from index `index` (fetched from `url`):
    /// parse it, keep the stored files when the index suddenly lists none,
    /// else queue it for the store and answer with what this run can use.
    fn page_arrived(
        &self,
        index: Arc<str>,
        name: &str,
        url: &str,
        parsed: Result<page::Page, page::PageError>,
        cache: CacheHeaders,
        stored: Option<&StoredPage>,
    ) -> Delivery {
        let counters = &self.layers.counters;
        let (display, files) = match parsed {
            Ok(p) => p,
            Err(e) => return Delivery::Failed(format!("{}: {e}", redact(url))),
        };
        let file_count = files.len();
        let record = page::to_record(
            name,
            display.filter(|d| d != name),
            files,
            Some(index.clone()),
        );
        if file_count == 0
            && let Some(previous) = stored.filter(|p| p.files > 0)
            && let Some(old) = &previous.record
        {
            tracing::warn!(
                "{}: the index now lists no files for {name}; keeping the {} stored files",
                redact(url),
                previous.files
            );
            return Delivery::Page(PageAnswer::Found(
                Arc::new(self.layers.for_run(old)),
                previous.age(super::store::now()),
            ));
        }
        counters.pages_fetched.fetch_add(1, Ordering::Relaxed);
        // The whole page goes to the store; this run keeps only what
        // its target can use.
        let kept = self.layers.for_run(&record);
        let blob = Store::page_blob(&record);
        drop(record);
        self.write(Write::Page {
            index,
            name: name.to_string(),
            blob: Some(blob),
            cache,
        });
        Delivery::Page(PageAnswer::Found(Arc::new(kept), 0))
    }

    async fn fetch_page(&self, i: usize, name: &str, priority: &Priority) -> Delivery {
        let counters = &self.layers.counters;
        let index = self.layers.index_keys[i].clone();
        let stored = self.store.page(&index, name).ok().flatten();
        if let Some(page) = &stored
            && self.layers.usable(page, name)
        {
            let age = page.age(super::store::now());
            return Delivery::Page(match &page.record {
                Some(r) => PageAnswer::Found(Arc::new(self.layers.for_run(r)), age),
                None => PageAnswer::NotFound,
            });
        }
        let url = self.layers.indexes.indexes[i].project_url(name);
        let (etag, last_modified) = stored
            .as_ref()
            .filter(|p| p.record.is_some())
            .map_or((None, None), |p| {
                (p.etag.as_deref(), p.last_modified.as_deref())
            });
        let reply = self
            .client
            .get(&Get {
                url: &url,
                accept: Some(page::ACCEPT),
                etag,
                last_modified,
                cap: PAGE_CAP,
                priority: priority.clone(),
                ..Get::default()
            })
            .await;
        match reply {
            Ok(Reply::Body {
                bytes,
                content_type,
                cache,
                ..
            }) => {
                let parsed = page::parse_page(&url, &bytes, content_type.as_deref());
                drop(bytes);
                self.page_arrived(index, name, &url, parsed, cache, stored.as_ref())
            }
            Ok(Reply::NotModified(cache)) => match stored.and_then(|p| p.record) {
                Some(record) => {
                    counters.pages_revalidated.fetch_add(1, Ordering::Relaxed);
                    self.write(Write::Touch {
                        index,
                        name: name.to_string(),
                        cache,
                    });
                    Delivery::Page(PageAnswer::Found(Arc::new(self.layers.for_run(&record)), 0))
                }
                None => Delivery::Failed(format!(
                    "{}: the index answered 304 to a request that had no validators",
                    redact(&url)
                )),
            },
            Ok(Reply::NotFound) => {
                self.write(Write::Page {
                    index,
                    name: name.to_string(),
                    blob: None,
                    cache: CacheHeaders::default(),
                });
                Delivery::Page(PageAnswer::NotFound)
            }
            Err(e) => Delivery::Failed(e.to_string()),
        }
    }

    async fn fetch_meta(
        &self,
        i: usize,
        name: &str,
        version: &Version,
        files: &[Distribution],
        priority: &Priority,
    ) -> Delivery {
        match self
            .layers
            .stored_metadata(&self.store, i, name, version, files)
        {
            Ok(Some(answer)) => return Delivery::Meta(answer),
            Ok(None) => {}
            Err(e) => tracing::debug!("reading the user knowledge base: {e}"),
        }
        let target = lock(&self.layers.target).clone();
        let counters = &self.layers.counters;
        let index = self.layers.index_keys[i].clone();
        let read = crate::index::metadata::read_release(
            &self.client,
            name,
            version,
            files,
            target.as_ref().map(|t| &t.query.target),
            priority,
        )
        .await;
        match read {
            Ok(read) => {
                let counter = match read.source {
                    MetadataSource::Pep658 => &counters.meta_pep658,
                    MetadataSource::WheelRange => &counters.meta_range,
                    _ => &counters.meta_sdist,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let CoreMetadata {
                    requires_python,
                    dependencies,
                    provides_extras,
                    ..
                } = read.metadata;
                let answer = MetadataAnswer::Known(Arc::new(ReleaseMetadata {
                    dependencies: Arc::new(dependencies.clone()),
                    requires_python: requires_python.clone(),
                    provides_extras: provides_extras.clone(),
                }));
                self.write(Write::Meta {
                    index,
                    name: name.to_string(),
                    version: version.clone(),
                    file: Some(read.file),
                    metadata: StoredMetadata::Known {
                        dependencies,
                        requires_python,
                        provides_extras,
                        source: read.source.as_str().to_string(),
                    },
                });
                Delivery::Meta(answer)
            }
            Err(MetadataError::Unavailable { reason, lasting }) => {
                counters.meta_unavailable.fetch_add(1, Ordering::Relaxed);
                if lasting {
                    self.write(Write::Meta {
                        index,
                        name: name.to_string(),
                        version: version.clone(),
                        file: None,
                        metadata: StoredMetadata::Unavailable(reason.clone()),
                    });
                }
                Delivery::Meta(MetadataAnswer::Unavailable(Arc::from(reason)))
            }
            Err(MetadataError::Http(e)) => Delivery::Failed(e.to_string()),
        }
    }

    /// The project on the first index that has it.
    async fn page_for(&self, name: &str) -> Option<Arc<ProjectRecord>> {
        let allowed = self.layers.indexes.for_project(name);
        let positions: Vec<usize> = self
            .layers
            .indexes
            .indexes
            .iter()
            .enumerate()
            .filter(|(_, ix)| allowed.iter().any(|a| a == ix))
            .map(|(i, _)| i)
            .collect();
        for i in positions {
            match self
                .once(Key::Page(i, name.to_string()), Vec::new(), Priority::GUESS)
                .await
            {
                Delivery::Page(PageAnswer::Found(record, _)) => return Some(record),
                Delivery::Page(PageAnswer::NotFound) => continue,
                _ => return None,
            }
        }
        None
    }

    fn crawl_one(
        self: Arc<Self>,
        target: Arc<PrefetchTarget>,
        wanted: Wanted,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.crawl(target, wanted).await })
    }

    async fn crawl(self: Arc<Self>, target: Arc<PrefetchTarget>, wanted: Wanted) {
        {
            let mut crawled = lock(&self.crawled);
            match crawled.get_mut(&wanted.name) {
                None => {
                    crawled.insert(wanted.name.clone(), wanted.extras.clone());
                }
                Some(done) => {
                    let new: Vec<ExtraName> = wanted
                        .extras
                        .iter()
                        .filter(|e| !done.contains(e))
                        .cloned()
                        .collect();
                    if new.is_empty() {
                        return;
                    }
                    done.extend(new);
                }
            }
        }
        let Some(record) = self.page_for(&wanted.name).await else {
            return;
        };
        let Some(r) = likely(&record, &target, &wanted) else {
            return;
        };
        let Some(i) = self.layers.index_of(&record) else {
            return;
        };
        let release = &record.releases[r];
        let key = Key::Meta(i, record.name.clone(), release.version.clone());
        let Delivery::Meta(MetadataAnswer::Known(meta)) = self
            .once(key, release.distributions.clone(), Priority::GUESS)
            .await
        else {
            return;
        };
        for dep in meta.dependencies.iter() {
            let applies = match dep.marker.as_deref() {
                None => true,
                Some(text) => crate::python::parse_marker(text)
                    .is_ok_and(|m| m.tree.evaluate(&target.markers, &wanted.extras)),
            };
            if !applies {
                continue;
            }
            let next = Wanted {
                name: dep.name.clone(),
                spec: crate::python::parse_specifiers(&dep.specifier).unwrap_or_default(),
                extras: dep
                    .extras
                    .iter()
                    .filter_map(|e| crate::python::parse_extra(e).ok())
                    .collect(),
            };
            let ctx = self.clone();
            let target = target.clone();
            tokio::spawn(async move { ctx.crawl_one(target, next).await });
        }
    }
}

/// The release a newest-first search would try first for `wanted`.
fn likely(record: &ProjectRecord, target: &PrefetchTarget, wanted: &Wanted) -> Option<usize> {
    let candidates = super::candidates(record, &target.query);
    let pre_ok = wanted.spec.iter().any(|s| s.version().any_prerelease());
    let fits = |pre: bool| {
        candidates.iter().position(|c| {
            c.rejection.is_none()
                && (pre || !c.release.version.any_prerelease())
                && wanted.spec.contains(&c.release.version)
        })
    };
    fits(pre_ok).or_else(|| fits(true))
}
