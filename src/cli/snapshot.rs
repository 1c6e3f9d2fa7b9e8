//! `thoth-rs snapshot {sync,info,import-advisories}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;

use super::args::SnapshotCommand;
use super::{CliError, Printer};
use crate::kb::KnowledgeBase;
use crate::kb::sqlite::SqliteKb;
use crate::settings::parse_cutoff;
use crate::sync::{SyncOptions, default_index_url, parse_roots, run_sync, want_progress};

pub use crate::settings::cache_root;

use super::settings::resolve_path as resolve;

/// What `snapshot sync --project` was asked.
struct ProjectSync {
    project: PathBuf,
    environments: Vec<String>,
    types: Vec<crate::policy::RecommendationType>,
    exclude_newer: Option<String>,
    index_url: Option<String>,
    jobs: u64,
    output: Option<PathBuf>,
    refresh: bool,
    json: bool,
}

/// `snapshot sync --project`: resolve the project online for every
/// environment and type asked for, then freeze what the searches used.
fn sync_project(dir: &Path, p: &ProjectSync, printer: &Printer) -> Result<ExitCode, CliError> {
    let started = std::time::Instant::now();
    let args = |env: Option<&String>, t: Option<crate::policy::RecommendationType>| {
        super::args::AdviseArgs {
            project: Some(p.project.clone()),
            recommendation_type: t,
            runtime_environment: env.cloned(),
            prescriptions: Vec::new(),
            knowledge: super::args::KnowledgeArgs {
                index_url: p.index_url.clone(),
                refresh: p.refresh,
                concurrency: usize::try_from(p.jobs).unwrap_or(16).max(1),
                ..super::args::KnowledgeArgs::default()
            },
            constraints: None,
            labels: None,
            dev: true,
            seed: None,
            limit: None,
            count: None,
            beam_width: None,
            time_budget: None,
            predictor: None,
            exclude_newer: p.exclude_newer.clone(),
            format: None,
            json: false,
            keep_lock: false,
            output: Some(
                std::env::temp_dir().join(format!("thoth-rs-sync-{}.lock", std::process::id())),
            ),
            base_image: None,
        }
    };
    let first = super::settings::advise_settings(
        dir,
        &args(p.environments.first(), p.types.first().copied()),
    )?;
    if first.knowledge.live.offline {
        return Err(CliError::Usage(
            "snapshot sync --project fetches from the index; it cannot run offline".into(),
        ));
    }
    // Every environment of .thoth.yaml unless some are named.
    let environments: Vec<Option<String>> = if !p.environments.is_empty() {
        p.environments.iter().cloned().map(Some).collect()
    } else {
        let names: Vec<Option<String>> = first
            .thoth_config
            .iter()
            .flat_map(|c| c.config.runtime_environments.iter())
            .filter_map(|e| e.name.value().map(|n| Some(n.to_string())))
            .collect();
        if names.is_empty() { vec![None] } else { names }
    };
    let types: Vec<Option<crate::policy::RecommendationType>> = if p.types.is_empty() {
        vec![None]
    } else {
        p.types.iter().copied().map(Some).collect()
    };
    let kb = super::knowledge::open(&first.knowledge, printer.quiet)?;
    let prescriptions: &crate::prescription::Prescriptions =
        Box::leak(Box::new(crate::prescription::load_bundled_and(&[])));
    let mut runs = Vec::new();
    let mut failed = 0;
    for env in &environments {
        for t in &types {
            let s = super::settings::advise_settings(dir, &args(env.as_ref(), *t))?;
            let label = format!(
                "{} / {}",
                env.as_deref().unwrap_or("default environment"),
                s.recommendation_type.0
            );
            match crate::advise::advise(&s, kb, prescriptions) {
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
    let report = crate::sync::project::write_project_snapshot(kb, roots, &output)
        .map_err(|e| CliError::Failure(e.to_string()))?;
    let knowledge = kb.report();
    printer.info(super::advise::describe_knowledge(&knowledge));
    printer.info(format!(
        "wrote {}: {} projects ({} unavailable), {} releases ({} with metadata, {} unavailable, {} not fetched), {} advisories, cutoff {}, in {:.1} s",
        output.display(),
        report.projects,
        report.unavailable,
        report.releases,
        report.with_metadata,
        report.metadata_unavailable,
        report.not_fetched,
        report.advisories,
        report.cutoff,
        started.elapsed().as_secs_f64()
    ));
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

/// Open `--snapshot PATH` or the bundled snapshot.
pub fn open_snapshot(dir: &Path, snapshot: Option<&Path>) -> Result<SqliteKb, CliError> {
    let path = match snapshot {
        Some(p) => resolve(dir, p),
        None => return super::knowledge::open_bundled(),
    };
    SqliteKb::open(&path).map_err(|e| CliError::Usage(e.to_string()))
}

/// Counts describing a snapshot (the keys of `snapshot info --json`).
pub fn info(kb: &SqliteKb) -> Result<serde_json::Value, CliError> {
    let count = |sql: &str| {
        kb.with_connection(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0)))
            .map_err(|e| CliError::Failure(e.to_string()))
    };
    let meta = kb.meta();
    let size = std::fs::metadata(kb.path()).map(|m| m.len()).unwrap_or(0);
    Ok(json!({
        "path": kb.path().display().to_string(),
        "schema_version": meta.schema_version,
        "created_at": meta.created_at,
        "index_url": meta.index_url,
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
        "size_bytes": size,
    }))
}

pub fn run(dir: &Path, command: SnapshotCommand, printer: &Printer) -> Result<ExitCode, CliError> {
    match command {
        SnapshotCommand::Info {
            snapshot,
            json: as_json,
        } => {
            let kb = open_snapshot(dir, snapshot.as_deref())?;
            let info = info(&kb)?;
            if as_json {
                printer.stdout(
                    &serde_json::to_string_pretty(&info)
                        .map_err(|e| CliError::Failure(e.to_string()))?,
                )?;
            } else {
                let mut lines = Vec::new();
                for key in [
                    "path",
                    "created_at",
                    "index_url",
                    "cutoff",
                    "max_versions",
                    "projects",
                    "unavailable_projects",
                    "releases",
                    "releases_without_metadata",
                    "distributions",
                    "dependency_sets",
                    "dependencies",
                    "dangling_dependencies",
                    "advisories",
                    "affected_releases",
                    "advisories_source",
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
        SnapshotCommand::ImportAdvisories {
            dir: advisories,
            snapshot,
        } => {
            let path = match snapshot {
                Some(p) => resolve(dir, &p),
                None => return Err(CliError::Usage(
                    "import-advisories needs --snapshot PATH (the bundled snapshot is read-only)"
                        .into(),
                )),
            };
            SqliteKb::open(&path).map_err(|e| CliError::Usage(e.to_string()))?;
            let source = resolve(dir, &advisories);
            if !source.is_dir() {
                return Err(CliError::Usage(format!(
                    "{}: not a directory",
                    source.display()
                )));
            }
            let (stored, mapped) = crate::kb::osv::import_into_snapshot(&path, &source)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            printer.info(format!(
                "imported {stored} advisories into {}; {mapped} release/advisory pairs",
                path.display()
            ));
            Ok(ExitCode::SUCCESS)
        }
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
            jobs,
            output,
            refresh,
            json: as_json,
            ..
        } => sync_project(
            dir,
            &ProjectSync {
                project,
                environments: runtime_environments,
                types: recommendation_types,
                exclude_newer,
                index_url,
                jobs,
                output,
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
            jobs,
            output,
            cache_dir,
            refresh,
            max_projects,
            root_extras,
            simple_only,
            json: as_json,
            ..
        } => {
            let mut root_list = Vec::new();
            if let Some(file) = roots {
                let file = resolve(dir, &file);
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
                root_list = parse_roots(&text)
                    .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
            }
            if !packages.is_empty() {
                let extra = parse_roots(&packages.join("\n"))
                    .map_err(|e| CliError::Usage(format!("--package: {e}")))?;
                for root in extra {
                    match root_list
                        .iter_mut()
                        .find(|r: &&mut crate::sync::Root| r.name == root.name)
                    {
                        Some(r) => r.pins.extend(root.pins),
                        None => root_list.push(root),
                    }
                }
            }
            if root_list.is_empty() {
                return Err(CliError::Usage(
                    "nothing to sync: give --package NAME or --roots FILE".into(),
                ));
            }
            if jobs == 0 {
                return Err(CliError::Usage("--jobs must be at least 1".into()));
            }
            let index_url = match index_url {
                Some(url) => url,
                None => default_index_url().map_err(CliError::Usage)?,
            };
            let opts = SyncOptions {
                index_url,
                roots: root_list,
                max_versions: max_versions.map(|k| k as usize),
                since: since
                    .as_deref()
                    .map(parse_cutoff)
                    .transpose()
                    .map_err(|e| CliError::Usage(format!("--since: {e}")))?,
                exclude_newer: exclude_newer
                    .as_deref()
                    .map(parse_cutoff)
                    .transpose()
                    .map_err(|e| CliError::Usage(format!("--exclude-newer: {e}")))?,
                jobs: jobs as usize,
                output: resolve(
                    dir,
                    &output.unwrap_or_else(|| PathBuf::from("snapshot.sqlite")),
                ),
                cache_dir: cache_dir
                    .map_or_else(|| cache_root().join("http"), |d| resolve(dir, &d)),
                refresh,
                max_projects: max_projects as usize,
                backoff: Duration::from_millis(
                    std::env::var("THOTH_SYNC_BACKOFF_MS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(500),
                ),
                progress: want_progress() && !printer.quiet,
                use_json_api: !simple_only,
                root_extras: if root_extras == "listed" {
                    crate::sync::RootExtras::Listed
                } else {
                    crate::sync::RootExtras::All
                },
            };
            let report = run_sync(&opts).map_err(CliError::Failure)?;
            if as_json {
                printer.stdout(
                    &serde_json::to_string_pretty(&report)
                        .map_err(|e| CliError::Failure(e.to_string()))?,
                )?;
            }
            printer.info(format!(
                "wrote {}: {} projects, {} releases ({} metadata via PEP 658, {} via range requests, {} unreadable), {} unavailable names; {} requests, {} from cache, {} retries",
                report.output, report.projects, report.releases, report.metadata_pep658, report.metadata_range, report.metadata_missing,
                report.unavailable, report.requests, report.cache_hits, report.retries
            ));
            Ok(ExitCode::SUCCESS)
        }
    }
}
