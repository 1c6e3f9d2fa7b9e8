//! Opening what a resolving command works with, once per process: the
//! knowledge base (bundled or given snapshot, the user's knowledge base,
//! the index) and our prescriptions compiled with any directories given.
//! `advise`, `dependency-monkey`, `tree`/`why` and `snapshot sync
//! --project` open it the same way and report a failed resolution the
//! same way.

use std::path::Path;

use super::{CliError, Printer};
use crate::advise::{Advice, AdviseError};
use crate::kb::layered::{LayeredKb, LiveReport};
use crate::prescription::Prescriptions;
use crate::settings::AdviseSettings;

/// The knowledge base and prescriptions of one process. Both live to its
/// end: the knowledge base's workers hold it, and a large corpus is tens
/// of thousands of units better dropped with the process than one by one.
pub struct Session {
    /// The layered knowledge base.
    pub kb: &'static LayeredKb,
    /// Compiled prescriptions, ours and the settings' directories.
    pub prescriptions: &'static Prescriptions,
}

impl Session {
    /// Open the knowledge base `s` describes and compile its
    /// prescriptions; a prescription error stops the run.
    pub fn open(s: &AdviseSettings, printer: &Printer) -> Result<Self, CliError> {
        let kb = super::knowledge::open(&s.knowledge, printer.quiet)?;
        let prescriptions = compile(&s.prescriptions)?;
        Ok(Self { kb, prescriptions })
    }

    /// Resolve `s`'s project.
    pub fn advise(&self, s: &AdviseSettings) -> Result<Advice, AdviseError> {
        crate::advise::advise(s, self.kb, self.prescriptions)
    }

    /// Let background fetches and writes end; what the knowledge base
    /// did.
    pub fn finish(&self) -> LiveReport {
        self.kb.finish();
        self.kb.report()
    }

    /// The message of a failed resolution of `project`: the error, and
    /// what the knowledge base lacked when it worked offline.
    pub fn failure_message(&self, e: &AdviseError, project: &Path) -> String {
        match super::knowledge::missing_hint(self.kb, project) {
            Some(hint) => format!("{e}\n{hint}"),
            None => e.to_string(),
        }
    }

    /// A failed resolution of `project` as the command's error.
    pub fn failure(&self, e: &AdviseError, project: &Path) -> CliError {
        CliError::from_advise(e, self.failure_message(e, project))
    }
}

/// Our prescriptions and `dirs`, compiled; the first errors listed when
/// there are any.
fn compile(dirs: &[std::path::PathBuf]) -> Result<&'static Prescriptions, CliError> {
    let prescriptions: &Prescriptions =
        Box::leak(Box::new(crate::prescription::load_bundled_and(dirs)));
    if !prescriptions.errors.is_empty() {
        let lines: Vec<String> = prescriptions
            .errors
            .iter()
            .take(20)
            .map(|d| format!("{}: {}: {}: {}", d.file, d.unit, d.path, d.message))
            .collect();
        return Err(CliError::Usage(format!(
            "{} prescription error(s):\n{}",
            prescriptions.errors.len(),
            lines.join("\n")
        )));
    }
    Ok(prescriptions)
}
