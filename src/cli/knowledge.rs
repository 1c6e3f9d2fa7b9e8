//! Opening the knowledge base a command resolves against: the base
//! snapshot (bundled, or `--snapshot`), the user knowledge base, and the
//! indexes the user configured, as one [`LayeredKb`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::Path;

use super::CliError;
use super::args::KnowledgeArgs;
use super::settings::resolve_path;
use crate::index::IndexSettings;
use crate::input::Project;
use crate::kb::bundled;
use crate::kb::layered::{DEFAULT_MAX_AGE, LayeredKb, LiveOptions, Refresh};
use crate::kb::sqlite::SqliteKb;
use crate::settings::{KnowledgeSettings, cache_root, user_kb_path};

/// Settings from the arguments and the project (its sources, per-package
/// indexes and `--no-index`).
pub fn settings(
    dir: &Path,
    args: &KnowledgeArgs,
    project: Option<&Project>,
) -> Result<KnowledgeSettings, CliError> {
    let snapshot = match &args.snapshot {
        Some(p) => {
            let p = resolve_path(dir, p);
            if !p.is_file() {
                return Err(CliError::Usage(format!(
                    "--snapshot {}: no such file",
                    p.display()
                )));
            }
            // Absolute, so nothing later joins it to a directory again.
            Some(std::path::absolute(&p).unwrap_or(p))
        }
        None => None,
    };
    let cache = args
        .cache_dir
        .as_ref()
        .map_or_else(cache_root, |d| resolve_path(dir, d));
    let mut pinned = BTreeMap::new();
    let mut project_sources = Vec::new();
    if let Some(p) = project {
        project_sources = p
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.url.clone(), s.verify_ssl))
            .collect();
        for r in p.requirements.iter().chain(&p.dev_requirements) {
            if let Some(index) = &r.index {
                pinned.insert(r.requirement.name.to_string(), index.clone());
            }
        }
    }
    let refresh = if args.refresh {
        Refresh::All
    } else if args.refresh_package.is_empty() {
        Refresh::None
    } else {
        let mut names = BTreeSet::new();
        for n in &args.refresh_package {
            let name = crate::python::parse_name(n)
                .map_err(|e| CliError::Usage(format!("--refresh-package {n}: {}", e.message)))?;
            names.insert(name.to_string());
        }
        Refresh::Packages(names)
    };
    let offline = args.offline || project.is_some_and(|p| p.no_index);
    Ok(KnowledgeSettings {
        snapshot,
        user_kb: user_kb_path(&cache),
        index: IndexSettings {
            index_url: args.index_url.clone(),
            extra_index_urls: args.extra_index_url.clone(),
            project_sources,
            pinned,
            snapshot_index: None,
            snapshot_aliases: Vec::new(),
        },
        live: LiveOptions {
            offline,
            refresh,
            max_age: args.max_age.unwrap_or(DEFAULT_MAX_AGE),
            jobs: args.concurrency.max(1),
            progress: std::io::stderr().is_terminal() && std::env::var_os("CI").is_none(),
        },
    })
}

/// Open the layered knowledge base. It lives until the process ends
/// (freeing every loaded record one by one at exit is work nobody needs);
/// call [`LayeredKb::finish`] before exiting so what was fetched is stored.
pub fn open(k: &KnowledgeSettings, quiet: bool) -> Result<&'static LayeredKb, CliError> {
    let base = match &k.snapshot {
        Some(p) => SqliteKb::open(p).map_err(|e| CliError::Usage(e.to_string()))?,
        None => open_bundled()?,
    };
    let mut index = k.index.clone();
    index.snapshot_index = crate::kb::KnowledgeBase::meta(&base).index_url.clone();
    index.snapshot_aliases = crate::kb::KnowledgeBase::meta(&base).index_aliases.clone();
    let indexes = crate::index::configure(&index).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut live = k.live.clone();
    live.progress &= !quiet;
    let kb = LayeredKb::open(Some(base), k.snapshot.is_some(), &k.user_kb, indexes, live)?;
    Ok(Box::leak(Box::new(kb)))
}

/// The bundled snapshot, unpacked and checked once (a damaged copy in the
/// cache is unpacked again).
pub fn open_bundled() -> Result<SqliteKb, CliError> {
    let failure = CliError::from;
    let path = bundled::materialise(&cache_root()).map_err(failure)?;
    if bundled::verified(&path)
        && let Ok(kb) = SqliteKb::open(&path)
    {
        return Ok(kb);
    }
    // Never checked, or changed since: check it, and unpack it again when
    // it is damaged.
    let checked = SqliteKb::open(&path).and_then(|kb| kb.check().map(|()| kb));
    let kb = match checked {
        Ok(kb) => kb,
        Err(e) => {
            tracing::warn!("{e}; unpacking the bundled snapshot again");
            let path = bundled::repair(&cache_root()).map_err(failure)?;
            let kb = SqliteKb::open(&path).map_err(failure)?;
            kb.check().map_err(failure)?;
            kb
        }
    };
    bundled::mark_checked(kb.path());
    Ok(kb)
}

/// The message for a failure caused by data missing offline, if any.
pub fn missing_hint(kb: &LayeredKb, project: &Path) -> Option<String> {
    let projects = kb.missing_projects();
    let metadata = kb.missing_metadata();
    if projects.is_empty() && metadata.is_empty() {
        return None;
    }
    let mut out = String::from("working offline, the knowledge base lacks ");
    let list = |items: &[String]| {
        if items.len() > 12 {
            format!("{} and {} more", items[..12].join(", "), items.len() - 12)
        } else {
            items.join(", ")
        }
    };
    if !projects.is_empty() {
        out.push_str(&format!(
            "{} project(s): {}",
            projects.len(),
            list(&projects)
        ));
    }
    if !metadata.is_empty() {
        if !projects.is_empty() {
            out.push_str("; and ");
        }
        out.push_str(&format!(
            "the metadata of {} release(s): {}",
            metadata.len(),
            list(&metadata)
        ));
    }
    let file = project.display();
    out.push_str(&format!(
        ".\nTo get them: run once without --offline (what is fetched is remembered in the user \
         knowledge base for later offline runs), or on a machine with network build a snapshot \
         that holds them and use it here:\n  \
         thoth-rs snapshot sync --project {file} -o snapshot.sqlite\n  \
         thoth-rs advise --offline --project {file} --snapshot snapshot.sqlite"
    ));
    Some(out)
}
