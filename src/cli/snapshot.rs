//! `thoth-rs snapshot {sync,info,import-advisories}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::args::SnapshotCommand;
use super::{CliError, Printer};
use crate::kb::KnowledgeBase;
use crate::kb::sqlite::SqliteKb;

pub use crate::settings::cache_root;

mod sync;

use super::settings::resolve_path as resolve;

use sync::{ProjectSync, RootsSync, sync_project, sync_roots};

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
        printer.stdout(&super::json_text(&info)?)?;
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
