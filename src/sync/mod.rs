//! `thoth-rs snapshot sync`: build a closed snapshot from a package index.
//!
//! Breadth-first from the roots: fetch each project's simple-index page
//! (PEP 691 JSON, or PEP 503 HTML), keep the newest K releases that have a
//! wheel, read each kept release's core metadata (PEP 658 `.metadata`, or the
//! wheel's zip central directory through HTTP range requests), and follow
//! Requires-Dist — every extra of a root, and of other projects the extras
//! that some dependency edge requests. Markers are not evaluated, so the
//! snapshot serves every platform and Python. Names that are referenced but
//! not stored (extras nobody requests, projects missing from the index) are
//! recorded as unavailable with the reason, so the result is closed.

pub mod fetch;
pub mod project;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::index::page::{self as index, IndexFile};
use crate::index::zipmeta;
use fetch::{CachePolicy, Fetched, Fetcher};

use crate::kb::metadata::parse_metadata;
use crate::kb::tags::parse_wheel_filename;
use crate::kb::writer::SnapshotWriter;
use crate::kb::{Distribution, ProjectRecord, Release, Requires, SnapshotMeta};
use crate::python::{Version, parse_version};

/// A root of the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Normalised name.
    pub name: String,
    /// Versions to keep in addition to the newest K (`name==X` roots).
    pub pins: Vec<Version>,
    /// Extras written in the roots file (`name[a,b]`).
    pub extras: Vec<String>,
}

/// Which extras of the roots are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootExtras {
    /// Every extra a root provides.
    #[default]
    All,
    /// Only the extras written in the roots (`name[a,b]`).
    Listed,
}

/// Everything a sync needs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Simple index root URL (ends with `/`).
    pub index_url: String,
    /// Roots.
    pub roots: Vec<Root>,
    /// Newest K releases per project (`None` = all).
    pub max_versions: Option<usize>,
    /// Ignore releases first uploaded before this time.
    pub since: Option<String>,
    /// Ignore files uploaded after this time (the snapshot's cutoff).
    pub exclude_newer: Option<String>,
    /// Requests in flight.
    pub jobs: usize,
    /// Output snapshot.
    pub output: PathBuf,
    /// Response cache directory.
    pub cache_dir: PathBuf,
    /// Re-fetch project pages even when cached.
    pub refresh: bool,
    /// Stop adding projects beyond this many.
    pub max_projects: usize,
    /// First retry delay.
    pub backoff: Duration,
    /// Show a progress bar (else log lines).
    pub progress: bool,
    /// Which root extras to follow.
    pub root_extras: RootExtras,
    /// Try the project JSON API (`…/pypi/<name>/json`) before the simple API.
    pub use_json_api: bool,
}

/// What a sync did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncReport {
    /// Projects stored with releases.
    pub projects: usize,
    /// Releases stored.
    pub releases: usize,
    /// Releases whose metadata came from PEP 658 files.
    pub metadata_pep658: usize,
    /// … from range requests into the wheel.
    pub metadata_range: usize,
    /// … that could not be read.
    pub metadata_missing: usize,
    /// Names recorded as unavailable.
    pub unavailable: usize,
    /// Network requests.
    pub requests: u64,
    /// Answers from the cache.
    pub cache_hits: u64,
    /// Retries.
    pub retries: u64,
    /// Output file.
    pub output: String,
}

/// A selected release before its metadata is read.
struct Pending {
    version: Version,
    files: Vec<IndexFile>,
}

enum MetaSource {
    Pep658,
    Range,
}

/// The wheel whose METADATA is read, by preference.
fn preferred_wheel(files: &[IndexFile]) -> Option<&IndexFile> {
    let score = |f: &IndexFile| -> Option<u8> {
        let tags = parse_wheel_filename(&f.filename)?;
        let plat = |p: &str| tags.platform.iter().any(|t| t == p);
        let linux = tags
            .platform
            .iter()
            .any(|t| t.contains("manylinux") && t.ends_with("x86_64"));
        Some(if tags.python.iter().any(|p| p == "py3") && plat("any") {
            0
        } else if tags.python.iter().any(|p| p == "cp311") && linux {
            1
        } else if tags.abi.iter().any(|a| a == "abi3") && linux {
            2
        } else if plat("any") {
            3
        } else if linux {
            4
        } else {
            5
        })
    };
    files
        .iter()
        .filter_map(|f| score(f).map(|s| (s, f)))
        .min_by_key(|(s, _)| *s)
        .map(|(_, f)| f)
}

async fn read_metadata(
    fetcher: &Fetcher,
    file: &IndexFile,
) -> Result<(String, MetaSource), String> {
    match fetcher
        .get(
            &format!("{}.metadata", file.url),
            None,
            None,
            CachePolicy::Use,
        )
        .await?
    {
        Fetched::Body { body, .. } => {
            return Ok((
                String::from_utf8_lossy(&body).into_owned(),
                MetaSource::Pep658,
            ));
        }
        Fetched::NotFound => {}
    }
    // Range fallback over the zip central directory.
    let tail = match fetcher
        .get(&file.url, Some("bytes=-65536"), None, CachePolicy::Use)
        .await?
    {
        Fetched::Body {
            body,
            total,
            partial,
        } => {
            if !partial {
                return zipmeta::metadata_from_bytes(&body).map(|m| (m, MetaSource::Range));
            }
            zipmeta::Window {
                offset: total.saturating_sub(body.len() as u64),
                bytes: body,
                total,
            }
        }
        Fetched::NotFound => return Err(format!("{}: wheel not found", file.url)),
    };
    let fetch_range = |start: u64, len: u64| {
        let fetcher = fetcher.clone();
        let url = file.url.clone();
        async move {
            let end = start + len.max(1) - 1;
            match fetcher
                .get(
                    &url,
                    Some(&format!("bytes={start}-{end}")),
                    None,
                    CachePolicy::Use,
                )
                .await?
            {
                Fetched::Body {
                    body,
                    partial: true,
                    ..
                } => Ok(body),
                Fetched::Body { body, .. } => Ok(body
                    .get(start as usize..=end as usize)
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()),
                Fetched::NotFound => Err(format!("{url}: range not found")),
            }
        }
    };
    let (cd_offset, cd_size) = zipmeta::find_central_directory(&tail)?;
    let directory = if cd_offset >= tail.offset {
        tail.bytes[(cd_offset - tail.offset) as usize..]
            .get(..cd_size as usize)
            .map(<[u8]>::to_vec)
            .ok_or("central directory truncated")?
    } else {
        fetch_range(cd_offset, cd_size).await?
    };
    let (local, compressed, method) = zipmeta::find_metadata_entry(&directory)?;
    let guess = 30 + 1024 + compressed;
    let chunk = if local >= tail.offset && local + guess <= tail.offset + tail.bytes.len() as u64 {
        tail.bytes[(local - tail.offset) as usize..(local - tail.offset + guess) as usize].to_vec()
    } else {
        fetch_range(local, guess.min(tail.total - local)).await?
    };
    let (start, len) = zipmeta::local_data_range(&chunk, local, compressed)?;
    let data = if start + len <= local + chunk.len() as u64 {
        chunk[(start - local) as usize..(start - local + len) as usize].to_vec()
    } else {
        fetch_range(start, len).await?
    };
    zipmeta::decompress(&data, method).map(|m| (m, MetaSource::Range))
}

fn is_prerelease(v: &Version) -> bool {
    v.any_prerelease()
}

/// Group a page's files into releases and keep the ones the options select.
fn select_releases(
    name: &str,
    files: Vec<IndexFile>,
    opts: &SyncOptions,
    pins: &[Version],
) -> (Vec<Pending>, String) {
    let mut by_version: BTreeMap<Version, Vec<IndexFile>> = BTreeMap::new();
    for file in files {
        let Some(v) = index::file_version(name, &file.filename) else {
            continue;
        };
        let Ok(v) = parse_version(&v) else { continue };
        if let (Some(cutoff), Some(t)) = (&opts.exclude_newer, &file.upload_time)
            && t > cutoff
        {
            continue;
        }
        by_version.entry(v).or_default().push(file);
    }
    let newest_final = by_version.keys().rev().find(|v| !is_prerelease(v)).cloned();
    let mut kept = Vec::new();
    let mut skipped_sdist_only = 0;
    for (version, files) in by_version.into_iter().rev() {
        let pinned = pins.contains(&version);
        let first_upload = files.iter().filter_map(|f| f.upload_time.clone()).min();
        let window_full = opts.max_versions.is_some_and(|k| {
            kept.iter()
                .filter(|p: &&Pending| !pins.contains(&p.version))
                .count()
                >= k
        });
        if !pinned {
            if window_full {
                continue;
            }
            if is_prerelease(&version) && newest_final.as_ref().is_some_and(|f| &version < f) {
                continue;
            }
            if files.iter().all(|f| f.yanked.is_some()) {
                continue;
            }
            if let (Some(since), Some(t)) = (&opts.since, &first_upload)
                && t < since
            {
                continue;
            }
        }
        if preferred_wheel(&files).is_none() {
            skipped_sdist_only += 1;
            continue;
        }
        kept.push(Pending { version, files });
    }
    let reason = if kept.is_empty() {
        if skipped_sdist_only > 0 {
            "no release with a wheel (source distributions only)".to_string()
        } else {
            "no release matches the sync window".to_string()
        }
    } else {
        String::new()
    };
    (kept, reason)
}

fn release_from(
    pending: &Pending,
    metadata: Option<&crate::kb::metadata::CoreMetadata>,
) -> Release {
    let mut files = pending.files.clone();
    files.sort_by(|a, b| a.filename.cmp(&b.filename));
    let yanked_reason = files
        .iter()
        .find_map(|f| f.yanked.clone())
        .filter(|r| !r.is_empty());
    Release {
        version: pending.version.clone(),
        upload_time: files.iter().filter_map(|f| f.upload_time.clone()).min(),
        yanked: files.iter().all(|f| f.yanked.is_some()),
        yanked_reason,
        requires_python: metadata
            .and_then(|m| m.requires_python.clone())
            .or_else(|| preferred_wheel(&files).and_then(|f| f.requires_python.clone())),
        distributions: files
            .iter()
            .map(|f| Distribution {
                filename: f.filename.clone(),
                sha256: f.sha256.clone(),
                size: f.size,
                upload_time: f.upload_time.clone(),
                requires_python: f.requires_python.clone(),
                yanked: f.yanked.is_some(),
                url: Some(f.url.clone()),
            })
            .collect(),
        dependencies: match metadata {
            Some(m) => Requires::Known(Arc::new(m.dependencies.clone())),
            None => Requires::Unavailable(Arc::from(crate::kb::sqlite::UNREADABLE)),
        },
        provides_extras: metadata
            .map(|m| m.provides_extras.clone())
            .unwrap_or_default(),
        advisories: Vec::new(),
    }
}

/// The cutoff a snapshot may claim: the one asked for, but no later than
/// the oldest project page it was built from (a page read from the cache
/// cannot list what was uploaded after it was fetched).
fn true_cutoff(wanted: String, oldest_page: u64) -> String {
    if oldest_page == u64::MAX {
        return wanted;
    }
    let page = rfc3339(oldest_page);
    if page < wanted {
        tracing::warn!(
            "the snapshot's cutoff is {page}, not {wanted}: its oldest project page was read from the cache then (pass --refresh to fetch pages again)"
        );
        page
    } else {
        wanted
    }
}

/// Current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// State of the closure walk.
#[derive(Default)]
struct Walk {
    /// Stored projects.
    records: BTreeMap<String, ProjectRecord>,
    /// Names recorded unavailable, with reasons.
    unavailable: BTreeMap<String, String>,
    /// Extras requested of each project.
    requested: HashMap<String, BTreeSet<String>>,
    /// Extras already followed for each stored project (`*` = all).
    followed: HashMap<String, BTreeSet<String>>,
    /// Names seen (queued or done).
    seen: BTreeSet<String>,
}

impl Walk {
    /// Names to visit that follow from extras requested since last time.
    fn follow(&mut self, roots: &BTreeSet<String>) -> BTreeSet<String> {
        let mut next = BTreeSet::new();
        let mut new_requests: Vec<(String, Vec<String>)> = Vec::new();
        for (name, record) in &self.records {
            let all = roots.contains(name);
            let wanted = self.requested.get(name).cloned().unwrap_or_default();
            let done = self.followed.entry(name.clone()).or_default();
            if !done.is_empty() && (done.contains("*") || wanted.is_subset(done)) {
                continue;
            }
            for release in &record.releases {
                for dep in release
                    .dependencies
                    .known()
                    .into_iter()
                    .flat_map(|d| d.iter())
                {
                    let applies = match &dep.extra {
                        None => done.is_empty(),
                        Some(extra) => {
                            (all && !done.contains("*"))
                                || (wanted.contains(extra) && !done.contains(extra))
                        }
                    };
                    if !applies {
                        continue;
                    }
                    if !dep.extras.is_empty() {
                        new_requests.push((dep.name.clone(), dep.extras.clone()));
                    }
                    if !self.seen.contains(&dep.name) {
                        next.insert(dep.name.clone());
                    }
                }
            }
            if all {
                done.insert("*".into());
            }
            done.insert(String::new());
            done.extend(wanted);
        }
        for (name, extras) in new_requests {
            self.requested.entry(name).or_default().extend(extras);
        }
        next
    }
}

/// Run a sync (builds its own single-threaded async runtime).
pub fn run_sync(opts: &SyncOptions) -> Result<SyncReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(sync(opts))
}

async fn sync(opts: &SyncOptions) -> Result<SyncReport, String> {
    let fetcher = Fetcher::new(opts.cache_dir.clone(), opts.jobs, opts.backoff)?;
    let base = if opts.index_url.ends_with('/') {
        opts.index_url.clone()
    } else {
        format!("{}/", opts.index_url)
    };
    let api_root = if opts.use_json_api {
        index::json_api_root(&base)
    } else {
        None
    };
    let pins: HashMap<String, Vec<Version>> = opts
        .roots
        .iter()
        .map(|r| (r.name.clone(), r.pins.clone()))
        .collect();
    let root_names: BTreeSet<String> = opts.roots.iter().map(|r| r.name.clone()).collect();
    let mut walk = Walk::default();
    for root in &opts.roots {
        walk.requested
            .entry(root.name.clone())
            .or_default()
            .extend(root.extras.iter().cloned());
    }
    let all_extras: BTreeSet<String> = match opts.root_extras {
        RootExtras::All => root_names.clone(),
        RootExtras::Listed => BTreeSet::new(),
    };
    let mut report = SyncReport {
        output: opts.output.display().to_string(),
        ..SyncReport::default()
    };
    let mut frontier: BTreeSet<String> = root_names.clone();
    let bar = opts.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let mut wave = 0;
    while !frontier.is_empty() {
        wave += 1;
        let mut batch: Vec<String> = Vec::new();
        for name in std::mem::take(&mut frontier) {
            if walk.seen.contains(&name) {
                continue;
            }
            walk.seen.insert(name.clone());
            if walk.records.len() + batch.len() >= opts.max_projects {
                walk.unavailable.insert(
                    name,
                    format!(
                        "not synced: the --max-projects limit ({}) was reached",
                        opts.max_projects
                    ),
                );
                continue;
            }
            batch.push(name);
        }
        let message = format!(
            "wave {wave}: fetching {} project pages ({} stored so far)",
            batch.len(),
            walk.records.len()
        );
        match &bar {
            Some(bar) => bar.set_message(message),
            None => eprintln!("{message}"),
        }
        // Project pages: the JSON API when the index has one, else the simple API.
        let mut pages = tokio::task::JoinSet::new();
        for name in batch {
            let fetcher = fetcher.clone();
            let simple_url = format!("{base}{name}/");
            let api_url = api_root.as_ref().map(|root| format!("{root}{name}/json"));
            let policy = if opts.refresh {
                CachePolicy::Refresh
            } else {
                CachePolicy::Page
            };
            pages.spawn(async move {
                if let Some(api_url) = api_url
                    && let Ok(Fetched::Body { body, .. }) = fetcher
                        .get(&api_url, None, Some("application/json"), policy)
                        .await
                    && let Ok(parsed) = index::parse_json_api(&api_url, &body)
                {
                    return (name, Ok(Some(parsed)));
                }
                let res = fetcher
                    .get(
                        &simple_url,
                        None,
                        Some("application/vnd.pypi.simple.v1+json, text/html;q=0.1"),
                        policy,
                    )
                    .await;
                let parsed = match res {
                    Ok(Fetched::Body { body, .. }) => {
                        index::parse_project_page(&simple_url, &String::from_utf8_lossy(&body))
                            .map(Some)
                            .map_err(|e| format!("{simple_url}: {e}"))
                    }
                    Ok(Fetched::NotFound) => Ok(None),
                    Err(e) => Err(e),
                };
                (name, parsed)
            });
        }
        let mut selected: Vec<(String, String, Vec<Pending>)> = Vec::new();
        while let Some(joined) = pages.join_next().await {
            let (name, res) = joined.map_err(|e| e.to_string())?;
            match res? {
                Some((display, files)) => {
                    let (kept, reason) = select_releases(
                        &name,
                        files,
                        opts,
                        pins.get(&name).map_or(&[], Vec::as_slice),
                    );
                    if kept.is_empty() {
                        walk.unavailable.insert(name, reason);
                    } else {
                        selected.push((name.clone(), display.unwrap_or(name), kept));
                    }
                }
                None => {
                    walk.unavailable
                        .insert(name, "not found on the index (HTTP 404)".into());
                }
            }
        }
        // Metadata of every kept release.
        let mut metas = tokio::task::JoinSet::new();
        for (pi, (_, _, kept)) in selected.iter().enumerate() {
            for (ri, pending) in kept.iter().enumerate() {
                let Some(wheel) = preferred_wheel(&pending.files).cloned() else {
                    continue;
                };
                let fetcher = fetcher.clone();
                metas.spawn(async move { (pi, ri, read_metadata(&fetcher, &wheel).await) });
            }
        }
        let mut read: HashMap<(usize, usize), crate::kb::metadata::CoreMetadata> = HashMap::new();
        while let Some(joined) = metas.join_next().await {
            let (pi, ri, res) = joined.map_err(|e| e.to_string())?;
            match res {
                Ok((text, source)) => {
                    match source {
                        MetaSource::Pep658 => report.metadata_pep658 += 1,
                        MetaSource::Range => report.metadata_range += 1,
                    }
                    read.insert((pi, ri), parse_metadata(&text));
                }
                Err(e) => {
                    tracing::warn!("metadata unavailable: {e}");
                    report.metadata_missing += 1;
                }
            }
            if let Some(bar) = &bar {
                bar.set_message(format!(
                    "wave {wave}: {} metadata files read",
                    report.metadata_pep658 + report.metadata_range
                ));
            }
        }
        for (pi, (name, display, kept)) in selected.iter().enumerate() {
            let releases = kept
                .iter()
                .enumerate()
                .map(|(ri, p)| release_from(p, read.get(&(pi, ri))))
                .collect();
            walk.records.insert(
                name.clone(),
                ProjectRecord {
                    name: name.clone(),
                    display_name: display.clone(),
                    releases,
                    index: None,
                },
            );
        }
        frontier = walk.follow(&all_extras);
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }

    // Close the snapshot: every referenced name is stored or unavailable.
    let mut dangling: BTreeMap<String, String> = BTreeMap::new();
    for record in walk.records.values() {
        for release in &record.releases {
            for dep in release
                .dependencies
                .known()
                .into_iter()
                .flat_map(|d| d.iter())
            {
                if walk.records.contains_key(&dep.name) || walk.unavailable.contains_key(&dep.name)
                {
                    continue;
                }
                let reason = match &dep.extra {
                    Some(extra) => format!(
                        "not synced: only needed by extra `{extra}` of {}, which nothing requests",
                        record.name
                    ),
                    None => format!("not synced: needed by {} {}", record.name, release.version),
                };
                dangling.entry(dep.name.clone()).or_insert(reason);
            }
        }
    }
    walk.unavailable.extend(dangling);

    let mut writer = SnapshotWriter::create(&opts.output).map_err(|e| e.to_string())?;
    writer
        .set_meta(&SnapshotMeta {
            schema_version: crate::kb::SCHEMA_VERSION,
            created_at: Some(now_rfc3339()),
            index_url: Some(base.clone()),
            roots: opts
                .roots
                .iter()
                .map(|r| {
                    if r.pins.is_empty() {
                        r.name.clone()
                    } else {
                        format!(
                            "{} (+{})",
                            r.name,
                            r.pins
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                })
                .collect(),
            cutoff: Some(true_cutoff(
                opts.exclude_newer.clone().unwrap_or_else(now_rfc3339),
                fetcher.stats.oldest_cached_page.load(Ordering::Relaxed),
            )),
            max_versions: opts.max_versions.map(|k| k as i64),
            advisories_source: None,
        })
        .map_err(|e| e.to_string())?;
    for record in walk.records.values() {
        report.releases += record.releases.len();
        writer.add_project(record).map_err(|e| e.to_string())?;
    }
    for (name, reason) in &walk.unavailable {
        writer
            .add_unavailable(name, reason)
            .map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| e.to_string())?;
    report.projects = walk.records.len();
    report.unavailable = walk.unavailable.len();
    report.requests = fetcher.stats.requests.load(Ordering::Relaxed);
    report.cache_hits = fetcher.stats.cache_hits.load(Ordering::Relaxed);
    report.retries = fetcher.stats.retries.load(Ordering::Relaxed);
    Ok(report)
}

/// Parse a roots file: one requirement per line (`name`, `name[extra]`,
/// `name==X` pins a version in addition to the newest K); `#` comments.
pub fn parse_roots(text: &str) -> Result<Vec<Root>, String> {
    let mut out: Vec<Root> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let req = crate::python::parse_requirement(line)
            .map_err(|e| format!("line {}: {}", i + 1, e.message))?;
        let pins: Vec<Version> = req
            .specifiers
            .iter()
            .filter(|s| *s.operator() == crate::python::Operator::Equal)
            .map(|s| s.version().clone())
            .collect();
        let name = req.name.to_string();
        let extras: Vec<String> = req.extras.iter().map(ToString::to_string).collect();
        match out.iter_mut().find(|r| r.name == name) {
            Some(root) => {
                root.pins.extend(pins);
                root.extras.extend(extras);
            }
            None => out.push(Root { name, pins, extras }),
        }
    }
    Ok(out)
}

/// The index pip would use: `PIP_INDEX_URL`, pip's configuration files, or
/// pip's own default, asked of `python3 -m pip`.
pub fn default_index_url() -> Result<String, String> {
    if let Ok(url) = std::env::var("PIP_INDEX_URL")
        && !url.trim().is_empty()
    {
        return Ok(url.trim().to_string());
    }
    let run = |args: &[&str]| {
        std::process::Command::new("python3")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    if let Some(url) = run(&["-m", "pip", "config", "get", "global.index-url"]) {
        return Ok(url);
    }
    run(&[
        "-c",
        "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
    ])
    .ok_or_else(|| {
        "no index URL: pass --index-url, set PIP_INDEX_URL, or install pip for python3".to_string()
    })
}

/// `SyncOptions::progress` default: a bar only on a terminal outside CI.
pub fn want_progress() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}
