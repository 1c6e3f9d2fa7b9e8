//! `thoth-rs snapshot sync`: freeze what a project's resolutions used
//! (`--project`), or crawl from roots (`--roots`/`--package`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::super::{CliError, Printer};
use crate::sync::crawl::{CrawlOptions, CrawlProgress, Root, RootExtras};
use crate::sync::want_progress;

use super::super::settings::resolve_path as resolve;

/// What `snapshot sync --project` was asked.
pub(super) struct ProjectSync {
    pub(super) index_aliases: Vec<String>,
    pub(super) project: PathBuf,
    pub(super) environments: Vec<String>,
    pub(super) types: Vec<crate::policy::RecommendationType>,
    pub(super) exclude_newer: Option<String>,
    pub(super) index_url: Option<String>,
    pub(super) jobs: u64,
    pub(super) output: Option<PathBuf>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) refresh: bool,
    pub(super) json: bool,
}

/// The summary line of a written snapshot.
fn written(
    output: &Path,
    s: &crate::sync::project::ProjectSnapshot,
    started: std::time::Instant,
) -> String {
    format!(
        "wrote {}: {} projects ({} unavailable), {} releases ({} with metadata, {} unavailable, {} not fetched), {} advisories, cutoff {}, in {:.1} s",
        output.display(),
        s.projects,
        s.unavailable,
        s.releases,
        s.with_metadata,
        s.metadata_unavailable,
        s.not_fetched,
        s.advisories,
        s.cutoff,
        started.elapsed().as_secs_f64()
    )
}

/// The `advise` arguments of one resolution `snapshot sync --project`
/// runs (environment `env`, recommendation type `t`).
fn sync_args(
    p: &ProjectSync,
    env: Option<&String>,
    t: Option<crate::policy::RecommendationType>,
) -> (
    super::super::args::ResolveArgs,
    super::super::args::LockArgs,
) {
    let resolve = super::super::args::ResolveArgs {
        project: super::super::args::ProjectArgs {
            project: Some(p.project.clone()),
            runtime_environment: env.cloned(),
            knowledge: super::super::args::KnowledgeArgs {
                index_url: p.index_url.clone(),
                refresh: p.refresh,
                cache_dir: p.cache_dir.clone(),
                concurrency: usize::try_from(p.jobs).unwrap_or(16).max(1),
                ..super::super::args::KnowledgeArgs::default()
            },
            dev: true,
            no_library_usage: true,
            ..super::super::args::ProjectArgs::default()
        },
        recommendation_type: t,
        exclude_newer: p.exclude_newer.clone(),
        ..super::super::args::ResolveArgs::default()
    };
    let lock = super::super::args::LockArgs {
        output: Some(
            std::env::temp_dir().join(format!("thoth-rs-sync-{}.lock", std::process::id())),
        ),
        ..super::super::args::LockArgs::default()
    };
    (resolve, lock)
}

/// The environments to resolve for: those named, else every one of
/// `.thoth.yaml`, else the default.
fn environments_of(
    p: &ProjectSync,
    first: &crate::settings::AdviseSettings,
) -> Vec<Option<String>> {
    if !p.environments.is_empty() {
        p.environments.iter().cloned().map(Some).collect()
    } else {
        let names: Vec<Option<String>> = first
            .thoth_config
            .iter()
            .flat_map(|c| c.config.runtime_environments.iter())
            .filter_map(|e| e.name.value().map(|n| Some(n.to_string())))
            .collect();
        if names.is_empty() { vec![None] } else { names }
    }
}

/// What the walk did, and what it could not do.
fn report_walk(
    c: &crate::sync::crawl::CrawlReport,
    max_projects: u64,
    progress: &Progress<'_>,
    printer: &Printer,
) {
    printer.info(format!(
        "walked {} projects in {} waves: {} releases chosen, {} with metadata read; {}",
        c.progress.projects_met,
        c.waves,
        c.progress.metadata_wanted,
        c.progress.metadata_done,
        progress.line(&c.progress)
    ));
    for name in &c.roots_not_found {
        printer.warn(format!("root {name}: not found on the index"));
    }
    if !c.over_limit.is_empty() {
        printer.warn(format!(
            "{} projects left out by --max-projects {} (e.g. {})",
            c.over_limit.len(),
            max_projects,
            c.over_limit
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for (what, why) in c.failed_pages.iter().chain(&c.failed_metadata).take(20) {
        printer.warn(format!("{what}: {why}"));
    }
}

/// `snapshot sync --project`: resolve the project online for every
/// environment and type asked for, then freeze what the searches used.
pub(super) fn sync_project(
    dir: &Path,
    p: &ProjectSync,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let started = std::time::Instant::now();
    let settings = |env: Option<&String>, t| {
        let (resolve, lock) = sync_args(p, env, t);
        super::super::settings::advise_settings(dir, &resolve, &lock)
    };
    let first = settings(p.environments.first(), p.types.first().copied())?;
    if first.knowledge.live.offline {
        return Err(CliError::Usage(
            "snapshot sync --project fetches from the index; it cannot run offline".into(),
        ));
    }
    let environments = environments_of(p, &first);
    let types: Vec<Option<crate::policy::RecommendationType>> = if p.types.is_empty() {
        vec![None]
    } else {
        p.types.iter().copied().map(Some).collect()
    };
    let session = super::super::session::Session::open(&first, printer)?;
    let kb = session.kb;
    let mut runs = Vec::new();
    let mut failed = 0;
    for env in &environments {
        for t in &types {
            let s = settings(env.as_ref(), *t)?;
            let label = format!(
                "{} / {}",
                env.as_deref().unwrap_or("default environment"),
                s.recommendation_type.0
            );
            match session.advise(&s) {
                Ok(advice) => {
                    printer.info(format!(
                        "resolved {label}: {} packages",
                        advice.resolution.packages.len()
                    ));
                    runs.push(json!({"run": label, "packages": advice.resolution.packages.len()}));
                }
                Err(e) => {
                    failed += 1;
                    printer.warn(format!("{label}: {e}"));
                    runs.push(json!({"run": label, "error": e.to_string()}));
                }
            }
        }
    }
    kb.finish();
    if failed == runs.len() {
        return Err(CliError::Failure(
            "no resolution succeeded; no snapshot was written".into(),
        ));
    }
    let output = p
        .output
        .as_ref()
        .map_or_else(|| dir.join("snapshot.sqlite"), |o| resolve(dir, o));
    let roots: Vec<String> = first
        .project
        .requirements
        .iter()
        .chain(&first.project.dev_requirements)
        .map(|r| r.requirement.to_string())
        .collect();
    let facts = crate::sync::project::SnapshotFacts {
        roots,
        exclude_newer: None,
        max_versions: None,
        lean: false,
        index_aliases: p.index_aliases.clone(),
    };
    let report = crate::sync::project::write_project_snapshot(kb, facts, &output)?;
    let knowledge = kb.report();
    printer.info(super::super::advise::describe_knowledge(&knowledge));
    printer.info(written(&output, &report, started));
    if p.json {
        let text = super::super::json_text(&json!({
            "output": output.display().to_string(),
            "snapshot": report,
            "runs": runs,
            "knowledge_base": knowledge,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
        printer.stdout(&text)?;
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `snapshot sync --roots/--package` was asked.
pub(super) struct RootsSync {
    pub(super) index_aliases: Vec<String>,
    pub(super) packages: Vec<String>,
    pub(super) roots: Option<PathBuf>,
    pub(super) max_versions: u64,
    pub(super) since: Option<String>,
    pub(super) exclude_newer: Option<String>,
    pub(super) index_url: Option<String>,
    pub(super) jobs: u64,
    pub(super) output: Option<PathBuf>,
    pub(super) cache_dir: Option<PathBuf>,
    pub(super) refresh: bool,
    pub(super) max_projects: u64,
    pub(super) all_extras: bool,
    pub(super) lean: bool,
    pub(super) json: bool,
}

/// A date option as Unix seconds.
fn date_option(flag: &str, text: Option<&str>) -> Result<Option<i64>, CliError> {
    let Some(text) = text else { return Ok(None) };
    crate::time::Timestamp::parse_cutoff(text)
        .map(|t| Some(t.unix()))
        .map_err(|e| CliError::Usage(format!("{flag}: {e}")))
}

/// Shows the walk: a bar on a terminal, a line every ten seconds otherwise.
struct Progress<'a> {
    bar: Option<indicatif::ProgressBar>,
    printer: &'a Printer,
    started: std::time::Instant,
    last_line: std::time::Instant,
    kb: &'a crate::kb::layered::LayeredKb,
}

impl Progress<'_> {
    fn line(&self, p: &CrawlProgress) -> String {
        let (requests, bytes) = self.kb.network_counts();
        let done = p.projects_done + p.metadata_done;
        let total = p.projects_met + p.metadata_wanted;
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if done > 0 && total > done {
            format!(
                ", about {:.0} s left",
                elapsed / done as f64 * (total - done) as f64
            )
        } else {
            String::new()
        };
        format!(
            "projects {}/{}, metadata {}/{}, {requests} requests, {:.1} MiB{eta}",
            p.projects_done,
            p.projects_met,
            p.metadata_done,
            p.metadata_wanted,
            bytes as f64 / f64::from(1u32 << 20),
        )
    }

    fn tick(&mut self, p: &CrawlProgress) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.line(p));
        } else if self.last_line.elapsed() >= Duration::from_secs(10) {
            self.printer.info(format!("sync: {}", self.line(p)));
            self.last_line = std::time::Instant::now();
        }
    }
}

/// What `snapshot sync` walks from: the roots, the constraints on them,
/// the roots as text (recorded in the snapshot) and the project read.
struct Roots {
    roots: Vec<Root>,
    constraints: std::collections::BTreeMap<String, Vec<crate::python::VersionSpecifiers>>,
    texts: Vec<String>,
    project: Option<crate::input::Project>,
}

/// The roots of `--roots FILE` and `--package`.
fn gather_roots(dir: &Path, r: &RootsSync) -> Result<Roots, CliError> {
    let mut roots: Vec<Root> = Vec::new();
    let mut constraints: std::collections::BTreeMap<String, Vec<crate::python::VersionSpecifiers>> =
        std::collections::BTreeMap::new();
    let mut texts: Vec<String> = Vec::new();
    let mut project = None;
    let to_root = |req: &crate::python::Requirement| Root {
        name: req.name.to_string(),
        specifiers: req.specifiers.clone(),
        extras: req.extras.iter().map(ToString::to_string).collect(),
    };
    if let Some(file) = &r.roots {
        let file = resolve(dir, file);
        let p = crate::input::Project::load(&file)?;
        for d in p.requirements.iter().chain(&p.dev_requirements) {
            roots.push(to_root(&d.requirement));
            texts.push(d.requirement.to_string());
        }
        for c in &p.constraints {
            constraints
                .entry(c.requirement.name.to_string())
                .or_default()
                .push(c.requirement.specifiers.clone());
        }
        project = Some(p);
    }
    for text in &r.packages {
        let req = crate::python::parse_requirement(text)
            .map_err(|e| CliError::Usage(format!("--package {text}: {}", e.message)))?;
        roots.push(to_root(&req));
        texts.push(req.to_string());
    }
    if roots.is_empty() {
        return Err(CliError::Usage(
            "nothing to sync: give --project FILE, --roots FILE or --package REQUIREMENT".into(),
        ));
    }
    Ok(Roots {
        roots,
        constraints,
        texts,
        project,
    })
}

/// The walk's spinner (elapsed time and a message).
fn spinner() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `snapshot sync --roots/--package`: the dependency closure of the roots,
/// through the live knowledge base.
pub(super) fn sync_roots(
    dir: &Path,
    r: &RootsSync,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let started = std::time::Instant::now();
    let Roots {
        roots,
        constraints,
        texts,
        project,
    } = gather_roots(dir, r)?;
    let opts = CrawlOptions {
        max_versions: (r.max_versions > 0).then_some(r.max_versions as usize),
        root_extras: if r.all_extras {
            RootExtras::All
        } else {
            RootExtras::Listed
        },
        max_projects: r.max_projects as usize,
        since: date_option("--since", r.since.as_deref())?,
        exclude_newer: date_option("--exclude-newer", r.exclude_newer.as_deref())?,
        constraints,
    };
    let args = super::super::args::KnowledgeArgs {
        index_url: r.index_url.clone(),
        refresh: r.refresh,
        concurrency: usize::try_from(r.jobs).unwrap_or(16),
        cache_dir: r.cache_dir.clone(),
        ..super::super::args::KnowledgeArgs::default()
    };
    let mut k = super::super::knowledge::settings(dir, &args, project.as_ref())?;
    if k.live.offline {
        return Err(CliError::Usage(
            "snapshot sync fetches from the index; it cannot run with --no-index".into(),
        ));
    }
    // The walk shows its own progress.
    k.live.progress = false;
    let kb = super::super::knowledge::open(&k, printer.quiet)?;
    let output = r
        .output
        .as_ref()
        .map_or_else(|| dir.join("snapshot.sqlite"), |o| resolve(dir, o));
    let mut progress = Progress {
        bar: (want_progress() && !printer.quiet).then(spinner),
        printer,
        started,
        last_line: started,
        kb,
    };
    let facts = crate::sync::project::SnapshotFacts {
        roots: texts,
        exclude_newer: opts.exclude_newer,
        max_versions: (r.max_versions > 0).then_some(r.max_versions as i64),
        lean: r.lean,
        index_aliases: r.index_aliases.clone(),
    };
    let outcome = crate::sync::sync_roots(kb, &roots, &opts, facts, &output, &mut |p| {
        progress.tick(p);
    })
    .map_err(|e| CliError::Failure(e.to_string()));
    if let Some(bar) = &progress.bar {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    report_walk(&outcome.crawl, r.max_projects, &progress, printer);
    let knowledge = kb.report();
    printer.info(super::super::advise::describe_knowledge(&knowledge));
    if let Some(s) = &outcome.snapshot {
        printer.info(written(&output, s, started));
    }
    if r.json {
        let text = super::super::json_text(&json!({
            "output": output.display().to_string(),
            "outcome": outcome,
            "knowledge_base": knowledge,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
        printer.stdout(&text)?;
    }
    match outcome.refused {
        Some(why) => Err(CliError::Failure(why)),
        None => Ok(ExitCode::SUCCESS),
    }
}
