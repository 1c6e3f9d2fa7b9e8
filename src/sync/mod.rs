//! `thoth-rs snapshot sync`: frozen knowledge bases for CI and air-gapped
//! machines, built through the live knowledge base.
//!
//! Two ways to say what goes in: a project (`--project`, see [`project`]):
//! what resolving it needs; or root requirements (`--roots`, `--package`,
//! see [`crawl`]): their dependency closure, a chosen number of releases
//! per version range. Either way every request goes through the index
//! client `advise` uses (size caps, timeouts, retries, content checks) and
//! lands in the user knowledge base first, so an interrupted or failed sync
//! resumes; the snapshot is written to a temporary file, checked, and only
//! then renamed over the output.

pub mod crawl;
pub mod project;

use std::io::IsTerminal;
use std::path::Path;

use crate::kb::KbError;
use crate::kb::layered::LayeredKb;

/// What `sync_roots` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RootsOutcome {
    /// The walk.
    pub crawl: crawl::CrawlReport,
    /// The snapshot written (`None` when nothing was: see `refused`).
    pub snapshot: Option<project::ProjectSnapshot>,
    /// Why no snapshot was written.
    pub refused: Option<String>,
}

impl RootsOutcome {
    /// Some data could not be read.
    pub fn incomplete(&self) -> bool {
        !self.crawl.failed_pages.is_empty() || !self.crawl.failed_metadata.is_empty()
    }
}

/// Walk from `roots` and write the snapshot to `output` — unless some page
/// or metadata could not be read, or no root was found: then the output is
/// left as it was (what was read stays in the user knowledge base, so the
/// next attempt asks only for the rest).
pub fn sync_roots(
    kb: &LayeredKb,
    roots: &[crawl::Root],
    opts: &crawl::CrawlOptions,
    facts: project::SnapshotFacts,
    output: &Path,
    tick: &mut dyn FnMut(&crawl::CrawlProgress),
) -> Result<RootsOutcome, KbError> {
    let mut report = crawl::Crawl::new(kb, roots, opts).run(tick);
    kb.finish();
    // An answer "unavailable" that was not remembered came from trouble
    // with the server (a bad metadata file, a missing archive), not from
    // the release: that release could not be read.
    for (record, i, why) in std::mem::take(&mut report.unavailable) {
        if kb.known_metadata(&record, i)?.is_none() {
            report.failed_metadata.insert(
                format!("{} {}", record.name, record.releases[i].version),
                why,
            );
        }
    }
    let mut outcome = RootsOutcome {
        crawl: report,
        snapshot: None,
        refused: None,
    };
    if outcome.incomplete() {
        outcome.refused = Some(format!(
            "{} project pages and {} release metadata could not be read; {} left as it was (run again to retry only those)",
            outcome.crawl.failed_pages.len(),
            outcome.crawl.failed_metadata.len(),
            output.display()
        ));
        return Ok(outcome);
    }
    if outcome.crawl.roots_not_found.len() == roots.len() {
        outcome.refused = Some(format!(
            "no root was found on the index; {} left as it was",
            output.display()
        ));
        return Ok(outcome);
    }
    outcome.snapshot = Some(project::write_project_snapshot(kb, facts, output)?);
    Ok(outcome)
}

/// `SyncOptions::progress` default: a bar only on a terminal outside CI.
pub fn want_progress() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}
