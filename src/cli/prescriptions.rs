//! `thoth-rs prescriptions check DIR...`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::{CliError, Printer};
use crate::prescription::{self, Diagnostic};

fn line(d: &Diagnostic) -> String {
    let mut out = d.file.clone();
    if !d.unit.is_empty() {
        out.push_str(&format!(": unit {}", d.unit));
    }
    if !d.path.is_empty() {
        out.push_str(&format!(": {}", d.path));
    }
    format!("{out}: {}", d.message)
}

pub fn check(
    dir: &Path,
    dirs: &[PathBuf],
    as_json: bool,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let paths: Vec<PathBuf> = dirs
        .iter()
        .map(|d| {
            if d.is_absolute() {
                d.clone()
            } else {
                dir.join(d)
            }
        })
        .collect();
    let started = std::time::Instant::now();
    // Kept to the end of the process rather than freed unit by unit.
    let compiled: &prescription::Prescriptions = Box::leak(Box::new(prescription::check(&paths)));
    let elapsed = started.elapsed();
    if as_json {
        let report = json!({
            "files": compiled.files,
            "units": compiled.units.len(),
            "by_kind": compiled.by_kind(),
            "namespaces": compiled.namespaces,
            "errors": compiled.errors,
            "warnings": compiled.warnings,
        });
        printer.stdout(&super::json_text(&report)?)?;
    } else {
        let mut out = vec![format!(
            "{} files, {} units in {:.2} s",
            compiled.files,
            compiled.units.len(),
            elapsed.as_secs_f64()
        )];
        for (kind, n) in compiled.by_kind() {
            out.push(format!("  {kind:<20} {n}"));
        }
        for (name, release) in &compiled.namespaces {
            out.push(format!("  prescription {name} release {release}"));
        }
        out.push(format!(
            "{} errors, {} warnings",
            compiled.errors.len(),
            compiled.warnings.len()
        ));
        printer.stdout(&out.join("\n"))?;
        for e in &compiled.errors {
            printer.info(format!("error: {}", line(e)));
        }
        for w in &compiled.warnings {
            printer.warn(line(w));
        }
    }
    if compiled.errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(CliError::Failure(format!(
            "{} errors in the prescriptions",
            compiled.errors.len()
        )))
    }
}
