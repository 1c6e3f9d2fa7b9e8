//! `thoth-rs snapshot {sync,info,import-advisories}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::args::SnapshotCommand;
use super::{CliError, Printer};
use crate::kb::KnowledgeBase;
use crate::kb::sqlite::SqliteKb;
use crate::sync::crawl::{CrawlOptions, CrawlProgress, Root, RootExtras};
use crate::sync::want_progress;

pub use crate::settings::cache_root;

use super::settings::resolve_path as resolve;

/// What `snapshot sync --project` was asked.
struct ProjectSync {
    index_aliases: Vec<String>,
    project: PathBuf,
    environments: Vec<String>,
    types: Vec<crate::policy::RecommendationType>,
    exclude_newer: Option<String>,
    index_url: Option<String>,
    jobs: u64,
    output: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    refresh: bool,
    json: bool,
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
) -> (super::args::ResolveArgs, super::args::LockArgs) {
    let resolve = super::args::ResolveArgs {
        project: super::args::ProjectArgs {
            project: Some(p.project.clone()),
            runtime_environment: env.cloned(),
            knowledge: super::args::KnowledgeArgs {
                index_url: p.index_url.clone(),
                refresh: p.refresh,
                cache_dir: p.cache_dir.clone(),
                concurrency: usize::try_from(p.jobs).unwrap_or(16).max(1),
                ..super::args::KnowledgeArgs::default()
            },
            dev: true,
            no_library_usage: true,
            ..super::args::ProjectArgs::default()
        },
        recommendation_type: t,
        exclude_newer: p.exclude_newer.clone(),
        ..super::args::ResolveArgs::default()
    };
    let lock = super::args::LockArgs {
        output: Some(
            std::env::temp_dir().join(format!("thoth-rs-sync-{}.lock", std::process::id())),
        ),
        ..super::args::LockArgs::default()
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
fn sync_project(dir: &Path, p: &ProjectSync, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = std::time::Instant::now();
    let settings = |env: Option<&String>, t| {
        let (resolve, lock) = sync_args(p, env, t);
        super::settings::advise_settings(dir, &resolve, &lock)
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
    let session = super::session::Session::open(&first, printer)?;
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
    printer.info(super::advise::describe_knowledge(&knowledge));
    printer.info(written(&output, &report, started));
    if p.json {
        let text = serde_json::to_string_pretty(&json!({
            "output": output.display().to_string(),
            "snapshot": report,
            "runs": runs,
            "knowledge_base": knowledge,
            "seconds": started.elapsed().as_secs_f64(),
        }))
        .map_err(|e| CliError::Failure(e.to_string()))?;
        printer.stdout(&text)?;
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What `snapshot sync --roots/--package` was asked.
struct RootsSync {
    index_aliases: Vec<String>,
    packages: Vec<String>,
    roots: Option<PathBuf>,
    max_versions: u64,
    since: Option<String>,
    exclude_newer: Option<String>,
    index_url: Option<String>,
    jobs: u64,
    output: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    refresh: bool,
    max_projects: u64,
    all_extras: bool,
    lean: bool,
    json: bool,
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
fn sync_roots(dir: &Path, r: &RootsSync, printer: &Printer) -> Result<ExitCode, CliError> {
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
    let args = super::args::KnowledgeArgs {
        index_url: r.index_url.clone(),
        refresh: r.refresh,
        concurrency: usize::try_from(r.jobs).unwrap_or(16),
        cache_dir: r.cache_dir.clone(),
        ..super::args::KnowledgeArgs::default()
    };
    let mut k = super::knowledge::settings(dir, &args, project.as_ref())?;
    if k.live.offline {
        return Err(CliError::Usage(
            "snapshot sync fetches from the index; it cannot run with --no-index".into(),
        ));
    }
    // The walk shows its own progress.
    k.live.progress = false;
    let kb = super::knowledge::open(&k, printer.quiet)?;
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
    printer.info(super::advise::describe_knowledge(&knowledge));
    if let Some(s) = &outcome.snapshot {
        printer.info(written(&output, s, started));
    }
    if r.json {
        let text = serde_json::to_string_pretty(&json!({
            "output": output.display().to_string(),
            "outcome": outcome,
            "knowledge_base": knowledge,
            "seconds": started.elapsed().as_secs_f64(),
        }))
        .map_err(|e| CliError::Failure(e.to_string()))?;
        printer.stdout(&text)?;
    }
    match outcome.refused {
        Some(why) => Err(CliError::Failure(why)),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Open `--snapshot PATH` or the bundled snapshot.
pub fn open_snapshot(dir: &Path, snapshot: Option<&Path>) -> Result<SqliteKb, CliError> {
    let path = match snapshot {
        Some(p) => resolve(dir, p),
        None => return super::knowledge::open_bundled(),
    };
    Ok(SqliteKb::open(&path)?)
}

/// Counts describing a snapshot (the keys of `snapshot info --json`).
///
/// The file's structure is checked first (`quick_check`): a damaged
/// snapshot is an error (exit 2), not a list of counts.
pub fn info(kb: &SqliteKb) -> Result<serde_json::Value, CliError> {
    kb.check()?;
    let count = |sql: &str| {
        kb.with_connection(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
            .map_err(CliError::from)
    };
    let meta = kb.meta();
    let size = std::fs::metadata(kb.path()).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "path": kb.path().display().to_string(),
        "schema_version": meta.schema_version,
        "created_at": meta.created_at,
        "index_url": meta.index_url,
        "index_aliases": meta.index_aliases,
        "cutoff": meta.cutoff,
        "max_versions": meta.max_versions,
        "roots": meta.roots,
        "projects": count("SELECT count(*) FROM projects WHERE status = 'ok'")?,
        "unavailable_projects": count("SELECT count(*) FROM projects WHERE status != 'ok'")?,
        "releases": count("SELECT count(*) FROM releases")?,
        "releases_without_metadata": count("SELECT count(*) FROM releases WHERE dependency_set_id IS NULL")?,
        "distributions": count("SELECT count(*) FROM distributions")?,
        "dependency_sets": count("SELECT count(*) FROM dependency_sets")?,
        "dependencies": count("SELECT count(*) FROM dependencies")?,
        "dangling_dependencies": count("SELECT count(DISTINCT d.name) FROM dependencies d LEFT JOIN projects p ON p.name = d.name WHERE p.id IS NULL")?,
        "advisories": count("SELECT count(*) FROM advisories")?,
        "affected_releases": count("SELECT count(DISTINCT release_id) FROM affected")?,
        "advisories_source": meta.advisories_source,
        "advisories_newest": kb
            .with_connection(|c| c.query_row("SELECT max(modified) FROM advisories", [], |r| r.get::<_, Option<String>>(0)))?,
        "releases_with_metadata": count("SELECT count(*) FROM releases WHERE dependency_set_id IS NOT NULL")?,
        "size_bytes": size,
    }))
}

/// `snapshot info`: what a snapshot holds, as JSON or one line per key.
fn show_info(
    dir: &Path,
    snapshot: Option<&Path>,
    as_json: bool,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let kb = open_snapshot(dir, snapshot)?;
    let info = info(&kb)?;
    if as_json {
        printer.stdout(
            &serde_json::to_string_pretty(&info).map_err(|e| CliError::Failure(e.to_string()))?,
        )?;
    } else {
        let mut lines = Vec::new();
        for key in [
            "path",
            "created_at",
            "index_url",
            "index_aliases",
            "cutoff",
            "max_versions",
            "projects",
            "unavailable_projects",
            "releases",
            "releases_with_metadata",
            "releases_without_metadata",
            "distributions",
            "dependency_sets",
            "dependencies",
            "dangling_dependencies",
            "advisories",
            "affected_releases",
            "advisories_source",
            "advisories_newest",
            "size_bytes",
        ] {
            let value = match &info[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            lines.push(format!("{key:<26} {value}"));
        }
        let roots = info["roots"].as_array().map(|r| r.len()).unwrap_or(0);
        lines.push(format!("{:<26} {roots}", "roots"));
        printer.stdout(&lines.join("\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `snapshot import-advisories`: OSV records into a snapshot file.
fn import_advisories(
    dir: &Path,
    advisories: &[PathBuf],
    snapshot: Option<PathBuf>,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let path = match snapshot {
        Some(p) => resolve(dir, &p),
        None => {
            return Err(CliError::Usage(
                "import-advisories needs --snapshot PATH (the bundled snapshot is read-only)"
                    .into(),
            ));
        }
    };
    SqliteKb::open(&path).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut sources = Vec::new();
    for a in advisories {
        let source = resolve(dir, a);
        if !source.is_dir() && !source.is_file() {
            return Err(CliError::Usage(format!(
                "{}: no such directory or OSV archive",
                source.display()
            )));
        }
        sources.push(source);
    }
    let imported = crate::kb::osv::import_into_snapshot(&path, &sources)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    printer.info(format!(
        "imported {} advisories into {}; {} release/advisory pairs; {} duplicates folded, {} withdrawn left out",
        imported.advisories,
        path.display(),
        imported.mapped,
        imported.duplicates,
        imported.withdrawn
    ));
    for s in &imported.sources {
        printer.info(format!(
            "  {}: {} records, newest {}",
            s.source,
            s.records,
            s.newest.as_deref().unwrap_or("undated")
        ));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(dir: &Path, command: SnapshotCommand, printer: &Printer) -> Result<ExitCode, CliError> {
    match command {
        SnapshotCommand::Info {
            snapshot,
            json: as_json,
        } => show_info(dir, snapshot.as_deref(), as_json, printer),
        SnapshotCommand::ImportAdvisories {
            dir: advisories,
            snapshot,
        } => import_advisories(dir, &advisories, snapshot, printer),
        SnapshotCommand::Upgrade { snapshot } => {
            let path = resolve(dir, &snapshot);
            let packed =
                crate::kb::writer::upgrade(&path).map_err(|e| CliError::Usage(e.to_string()))?;
            printer.info(format!(
                "upgraded {}: {packed} packed project records",
                path.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        SnapshotCommand::Sync {
            project: Some(project),
            runtime_environments,
            recommendation_types,
            exclude_newer,
            index_url,
            index_aliases,
            jobs,
            output,
            cache_dir,
            refresh,
            json: as_json,
            ..
        } => sync_project(
            dir,
            &ProjectSync {
                index_aliases,
                project,
                environments: runtime_environments,
                types: recommendation_types,
                exclude_newer,
                index_url,
                jobs,
                output,
                cache_dir,
                refresh,
                json: as_json,
            },
            printer,
        ),
        SnapshotCommand::Sync {
            packages,
            roots,
            max_versions,
            since,
            exclude_newer,
            index_url,
            index_aliases,
            jobs,
            output,
            cache_dir,
            refresh,
            max_projects,
            root_extras,
            lean,
            json: as_json,
            ..
        } => sync_roots(
            dir,
            &RootsSync {
                index_aliases,
                packages,
                roots,
                max_versions,
                since,
                exclude_newer,
                index_url,
                jobs,
                output,
                cache_dir,
                refresh,
                max_projects,
                all_extras: root_extras == "all",
                lean,
                json: as_json,
            },
            printer,
        ),
    }
}
