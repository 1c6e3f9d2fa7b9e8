//! `snapshot sync --roots/--package`: the dependency closure of a set of
//! root requirements, read through the live knowledge base.
//!
//! Breadth-first, in waves. Each wave asks for the pages of every project
//! met so far (in parallel, through the same index client as `advise`),
//! chooses releases for every version range that points at a project (the
//! newest K releases inside the range; a root's range is the one written in
//! the roots file, a dependency's the one its parent declares, and for a
//! dependency also its newest releases whatever the ranges), asks for the
//! metadata of the new choices (in parallel again) and follows their
//! Requires-Dist: all of them except those gated by an extra nobody asked
//! for. Markers are not evaluated, so the snapshot serves every platform and
//! interpreter. The walk ends when a wave adds nothing.
//!
//! Everything read is stored in the user knowledge base as it arrives, so
//! a sync that is interrupted (or fails on some pages) resumes where it
//! stopped. The snapshot itself is written by
//! [`super::project::write_project_snapshot`]: every release of each project
//! met, with metadata for those that were chosen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kb::layered::LayeredKb;
use crate::kb::{KnowledgeBase, Lookup, MetadataAnswer, ProjectRecord};
use crate::python::{Operator, Version, VersionSpecifiers};

/// A requirement the walk starts from.
#[derive(Debug, Clone)]
pub struct Root {
    /// Normalised name.
    pub name: String,
    /// Version range (empty: any).
    pub specifiers: VersionSpecifiers,
    /// Extras written with it.
    pub extras: Vec<String>,
}

/// Which extras of the roots are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootExtras {
    /// Every extra a root provides.
    All,
    /// Only the extras written in the roots (`name[a,b]`).
    #[default]
    Listed,
}

/// How far the walk goes.
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// Newest K releases per version range (`None`: every release in it).
    pub max_versions: Option<usize>,
    /// Which root extras to follow.
    pub root_extras: RootExtras,
    /// Stop adding projects beyond this many.
    pub max_projects: usize,
    /// Releases first uploaded before this time (Unix seconds) are not chosen.
    pub since: Option<i64>,
    /// Releases first uploaded after this time are not chosen.
    pub exclude_newer: Option<i64>,
    /// Constraints (`-c` files): a release is chosen only inside them.
    pub constraints: BTreeMap<String, Vec<VersionSpecifiers>>,
}

/// Counts of the walk as it goes (for progress and the summary).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CrawlProgress {
    /// Projects whose page was read.
    pub projects_done: usize,
    /// Projects met.
    pub projects_met: usize,
    /// Releases whose metadata was answered.
    pub metadata_done: usize,
    /// Releases chosen.
    pub metadata_wanted: usize,
}

/// What the walk did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CrawlReport {
    /// Final counts.
    pub progress: CrawlProgress,
    /// Waves run.
    pub waves: usize,
    /// Projects not added because of `max_projects`.
    pub over_limit: Vec<String>,
    /// Projects whose page could not be read, with why.
    pub failed_pages: BTreeMap<String, String>,
    /// Releases (`name version`) whose metadata could not be read, with why.
    pub failed_metadata: BTreeMap<String, String>,
    /// Roots no index has.
    pub roots_not_found: Vec<String>,
    /// Chosen releases answered "unavailable", with the reason (some of
    /// these are facts about the release, others passing trouble with the
    /// server: see [`super::sync_roots`]).
    #[serde(skip)]
    pub unavailable: Vec<(Arc<ProjectRecord>, usize, String)>,
}

/// What the walk knows of one project.
#[derive(Default)]
struct State {
    /// Distinct version ranges pointing at it (by their text).
    ranges: BTreeMap<String, VersionSpecifiers>,
    /// Extras asked of it.
    extras: BTreeSet<String>,
    /// Every extra (a root under `RootExtras::All`).
    all_extras: bool,
    /// Its record, once read.
    record: Option<Arc<ProjectRecord>>,
    /// The page was asked for (answered or failed).
    asked: bool,
    /// Releases chosen, by index in the record.
    chosen: BTreeSet<usize>,
    /// Releases whose dependencies were followed, with the extras then.
    followed: BTreeMap<usize, (bool, BTreeSet<String>)>,
    /// Dependency metadata read, by release index.
    metadata: BTreeMap<usize, MetadataAnswer>,
}

/// A prerelease or development release.
fn is_pre(v: &Version) -> bool {
    v.any_prerelease()
}

/// Releases of `record` for one range: the newest `k` inside it, honouring
/// the constraints and the time window. Prereleases only when the range
/// names one or nothing else matches; yanked releases only when the range
/// pins them exactly.
fn choose(
    record: &ProjectRecord,
    range: &VersionSpecifiers,
    constraints: &[VersionSpecifiers],
    opts: &CrawlOptions,
) -> Vec<usize> {
    let pinned = range.iter().any(|s| {
        matches!(s.operator(), Operator::Equal | Operator::ExactEqual)
            && !s.to_string().contains('*')
    });
    let pre_named = range.iter().any(|s| s.version().any_prerelease());
    let inside = |i: &usize| {
        let r = &record.releases[*i];
        if !range.contains(&r.version) || !constraints.iter().all(|c| c.contains(&r.version)) {
            return false;
        }
        if r.yanked && !pinned {
            return false;
        }
        let uploaded = r
            .upload_time
            .as_deref()
            .and_then(|t| crate::time::Timestamp::parse_time(t).map(crate::time::Timestamp::unix));
        if let (Some(since), Some(at)) = (opts.since, uploaded)
            && at < since
            && !pinned
        {
            return false;
        }
        if let (Some(cutoff), Some(at)) = (opts.exclude_newer, uploaded)
            && at > cutoff
        {
            return false;
        }
        true
    };
    let all: Vec<usize> = (0..record.releases.len()).filter(inside).collect();
    let finals: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| !is_pre(&record.releases[i].version))
        .collect();
    let mut picked = if pre_named || finals.is_empty() {
        all
    } else {
        finals
    };
    // Releases are newest first.
    if let Some(k) = opts.max_versions {
        picked.truncate(k.max(1));
    }
    picked
}

/// The walk over the live knowledge base.
pub struct Crawl<'a> {
    kb: &'a LayeredKb,
    opts: &'a CrawlOptions,
    states: BTreeMap<String, State>,
    report: CrawlReport,
    roots: BTreeSet<String>,
}

impl<'a> Crawl<'a> {
    /// A walk from `roots`.
    pub fn new(kb: &'a LayeredKb, roots: &[Root], opts: &'a CrawlOptions) -> Self {
        let mut crawl = Self {
            kb,
            opts,
            states: BTreeMap::new(),
            report: CrawlReport::default(),
            roots: roots.iter().map(|r| r.name.clone()).collect(),
        };
        for root in roots {
            let state = crawl.states.entry(root.name.clone()).or_default();
            state
                .ranges
                .insert(root.specifiers.to_string(), root.specifiers.clone());
            state.extras.extend(root.extras.iter().cloned());
            state.all_extras |= opts.root_extras == RootExtras::All;
        }
        crawl
    }

    /// Counts so far.
    pub fn progress(&self) -> CrawlProgress {
        CrawlProgress {
            projects_done: self.states.values().filter(|s| s.asked).count(),
            projects_met: self.states.len(),
            metadata_done: self.states.values().map(|s| s.metadata.len()).sum(),
            metadata_wanted: self.states.values().map(|s| s.chosen.len()).sum(),
        }
    }

    /// Walk to the end; `tick` is called between steps with the counts.
    pub fn run(mut self, tick: &mut dyn FnMut(&CrawlProgress)) -> CrawlReport {
        loop {
            self.report.waves += 1;
            self.read_pages(tick);
            let wanted = self.choose_releases();
            self.read_metadata(&wanted, tick);
            if !self.follow() {
                break;
            }
        }
        self.report.progress = self.progress();
        self.report
    }

    /// Ask for every page not asked yet, all at once, then take them in
    /// name order.
    fn read_pages(&mut self, tick: &mut dyn FnMut(&CrawlProgress)) {
        let names: Vec<String> = self
            .states
            .iter()
            .filter(|(_, s)| !s.asked)
            .map(|(n, _)| n.clone())
            .collect();
        self.kb.prefetch_projects(&names);
        let mut last = Instant::now();
        for name in names {
            let answer = self.kb.project(&name);
            let state = self.states.get_mut(&name).expect("a state for every name");
            state.asked = true;
            match answer {
                Ok(Lookup::Found(record)) => state.record = Some(record),
                Ok(Lookup::Unavailable(_) | Lookup::Missing) => {
                    if self.roots.contains(&name) {
                        self.report.roots_not_found.push(name.clone());
                    }
                }
                Err(e) => {
                    self.report.failed_pages.insert(name.clone(), e.to_string());
                }
            }
            if last.elapsed() > Duration::from_millis(100) {
                tick(&self.progress());
                last = Instant::now();
            }
        }
        tick(&self.progress());
    }

    /// Choose releases for every range; returns the new choices.
    fn choose_releases(&mut self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        for (name, state) in &mut self.states {
            let Some(record) = &state.record else {
                continue;
            };
            let constraints = self
                .opts
                .constraints
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut new = Vec::new();
            for range in state.ranges.values() {
                for i in choose(record, range, constraints, self.opts) {
                    if state.chosen.insert(i) {
                        new.push(i);
                    }
                }
            }
            if !new.is_empty() {
                new.sort_unstable();
                out.push((name.clone(), new));
            }
        }
        out
    }

    /// Ask for the metadata of every new choice at once, then read them.
    fn read_metadata(
        &mut self,
        wanted: &[(String, Vec<usize>)],
        tick: &mut dyn FnMut(&CrawlProgress),
    ) {
        for (name, releases) in wanted {
            if let Some(record) = &self.states[name].record {
                self.kb.prefetch_metadata(record, releases);
            }
        }
        let mut last = Instant::now();
        for (name, releases) in wanted {
            let Some(record) = self.states[name].record.clone() else {
                continue;
            };
            for &i in releases {
                match self.kb.metadata(&record, i) {
                    Ok(answer) => {
                        if let MetadataAnswer::Unavailable(why) = &answer {
                            self.report
                                .unavailable
                                .push((record.clone(), i, why.to_string()));
                        }
                        let state = self.states.get_mut(name).expect("a state for every name");
                        state.metadata.insert(i, answer);
                    }
                    Err(e) => {
                        self.report.failed_metadata.insert(
                            format!("{name} {}", record.releases[i].version),
                            e.to_string(),
                        );
                    }
                }
                if last.elapsed() > Duration::from_millis(100) {
                    tick(&self.progress());
                    last = Instant::now();
                }
            }
        }
        tick(&self.progress());
    }

    /// Follow the dependencies of every chosen release whose metadata is
    /// known, for the extras asked of its project. True when something new
    /// (a project, a range, an extra) was met.
    fn follow(&mut self) -> bool {
        let mut edges: Vec<(String, VersionSpecifiers, Vec<String>)> = Vec::new();
        for state in self.states.values_mut() {
            let all = state.all_extras;
            for (&i, answer) in &state.metadata {
                let MetadataAnswer::Known(meta) = answer else {
                    continue;
                };
                let seen = state.followed.get(&i);
                if seen.is_some_and(|(a, e)| *a == all && *e == state.extras) {
                    continue;
                }
                for dep in meta.dependencies.iter() {
                    let wanted = match &dep.extra {
                        None => true,
                        Some(extra) => all || state.extras.contains(extra),
                    };
                    if !wanted {
                        continue;
                    }
                    let Ok(spec) = crate::python::parse_specifiers(&dep.specifier) else {
                        continue;
                    };
                    edges.push((dep.name.clone(), spec, dep.extras.clone()));
                }
                state.followed.insert(i, (all, state.extras.clone()));
            }
        }
        let mut changed = false;
        for (name, spec, extras) in edges {
            if !self.states.contains_key(&name) {
                if self.states.len() >= self.opts.max_projects {
                    if !self.report.over_limit.contains(&name) {
                        self.report.over_limit.push(name);
                    }
                    continue;
                }
                changed = true;
            }
            let root = self.roots.contains(&name);
            let state = self.states.entry(name).or_insert_with(|| {
                // A dependency also gets its newest releases whatever the
                // ranges pointing at it (what resolvers reach for first);
                // a root only what its own range allows.
                let mut s = State::default();
                if !root {
                    s.ranges
                        .insert(String::new(), VersionSpecifiers::from_iter(Vec::new()));
                }
                s
            });
            let key = spec.to_string();
            if let std::collections::btree_map::Entry::Vacant(e) = state.ranges.entry(key) {
                e.insert(spec);
                changed = true;
            }
            for extra in extras {
                changed |= state.extras.insert(extra);
            }
        }
        changed
    }
}
