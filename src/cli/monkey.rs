//! `thoth-rs dependency-monkey` and `thoth-rs provenance-check`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::args::{DependencyMonkeyArgs, LockArgs, ProvenanceArgs};
use super::{CliError, Printer};
use crate::input::InputError;
use crate::input::pipfile_lock::PipfileLock;
use crate::prescription::schema::{Message, MessageType};

/// `dependency-monkey`: N distinct valid stacks written as `DIR/<n>/Pipfile.lock`
/// plus `DIR/summary.json`.
pub fn dependency_monkey(
    dir: &Path,
    args: &DependencyMonkeyArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let s = super::settings::advise_settings(dir, &args.resolve, &LockArgs::default())?;
    let session = super::session::Session::open(&s, printer)?;
    let outcome = crate::monkey::dependency_monkey(
        &s,
        session.kb,
        session.prescriptions,
        args.decision_type,
        args.count,
    );
    printer.info(super::advise::describe_knowledge(&session.finish()));
    let monkey = outcome.map_err(|e| session.failure(&e, &s.project.path))?;
    let out_dir = args
        .output
        .as_ref()
        .map(|o| super::settings::resolve_path(dir, o));
    let mut stacks = Vec::new();
    for (i, (r, lock)) in monkey.stacks.iter().enumerate() {
        stacks.push(write_stack(
            i + 1,
            r,
            lock,
            out_dir.as_deref(),
            args.dry_run,
            printer,
        )?);
    }
    let found = monkey.stacks.len() as u64;
    if found < args.count {
        printer.warn(format!(
            "only {found} distinct stack(s) found in {} episodes; fewer than the {} asked for exist or were reached",
            monkey.episodes, args.count
        ));
    }
    let summary = Summary {
        decision_type: args.decision_type,
        predictor: &monkey.predictor,
        requested: args.count,
        found,
        episodes: monkey.episodes,
        seed: s.seed,
        stacks,
        stack_info: monkey
            .stacks
            .first()
            .map(|(r, _)| r.stack_info.as_slice())
            .unwrap_or_default(),
    };
    let text = super::json_text(&summary)?;
    if let (Some(d), false) = (&out_dir, args.dry_run) {
        let path = d.join("summary.json");
        crate::write::write_atomic(&path, format!("{text}\n").as_bytes())
            .map_err(|e| CliError::Write(format!("cannot write {}: {e}", path.display())))?;
        printer.info(format!("wrote {found} stack(s) and {}", path.display()));
    }
    if args.json {
        printer.stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Stack `n`: its Pipfile.lock written under `out_dir` (unless a dry
/// run), its line on stderr, and its entry of the summary.
fn write_stack<'a>(
    n: usize,
    r: &'a crate::resolve::Resolution,
    lock: &serde_json::Value,
    out_dir: Option<&Path>,
    dry_run: bool,
    printer: &Printer,
) -> Result<StackEntry<'a>, CliError> {
    let packages = r
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.to_string()))
        .collect();
    let path = out_dir.map(|d| d.join(n.to_string()).join("Pipfile.lock"));
    if let (Some(path), false) = (&path, dry_run) {
        let text = crate::lock::render_pipfile_lock(lock);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| CliError::Write(format!("cannot create {}: {e}", parent.display())))?;
        }
        crate::write::write_atomic(path, text.as_bytes())
            .map_err(|e| CliError::Write(format!("cannot write {}: {e}", path.display())))?;
    }
    let warnings = r
        .justification
        .iter()
        .filter(|m| m.kind == crate::prescription::schema::MessageType::Warning)
        .count();
    printer.info(format!(
        "stack {n} (score {:.2}{}): {}",
        r.score,
        match warnings {
            0 => String::new(),
            1 => ", 1 warning".to_string(),
            w => format!(", {w} warnings"),
        },
        r.packages
            .iter()
            .map(|p| format!("{}=={}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Ok(StackEntry {
        stack: n,
        lock: path.map(|p| p.display().to_string()),
        score: r.score,
        packages,
        requirements: crate::graph::StackGraph::from_resolution(r, "the project").steps(),
        justification: &r.justification,
    })
}

/// `summary.json` (and `--json`): what was asked, what was found.
#[derive(serde::Serialize)]
struct Summary<'a> {
    decision_type: crate::policy::DecisionType,
    predictor: &'a str,
    requested: u64,
    found: u64,
    episodes: u64,
    seed: u64,
    stacks: Vec<StackEntry<'a>>,
    /// The run's messages (the first stack's; every stack shares them).
    stack_info: &'a [Message],
}

/// One stack of the summary.
#[derive(serde::Serialize)]
struct StackEntry<'a> {
    /// Its number, from 1.
    stack: usize,
    /// Where its Pipfile.lock was written (`None` on a dry run).
    lock: Option<String>,
    score: f64,
    /// Name → version.
    packages: std::collections::BTreeMap<&'a str, String>,
    /// Who requires what.
    requirements: Vec<crate::graph::Step>,
    justification: &'a [Message],
}

/// `provenance-check`: the lock's packages, hashes and indexes against the
/// snapshot. Exit 1 when any finding is an error.
pub fn provenance_check(
    dir: &Path,
    args: &ProvenanceArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let lock_path = match &args.lock {
        Some(p) => super::settings::resolve_path(dir, p),
        None => dir.join("Pipfile.lock"),
    };
    if !lock_path.is_file() {
        return Err(InputError::file(&lock_path, "lock file not found").into());
    }
    let lock = PipfileLock::from_path(&lock_path)?;
    let pipfile = lock_path.with_file_name("Pipfile");
    let project = if pipfile.is_file() {
        Some(crate::input::Project::load(&pipfile)?)
    } else {
        None
    };
    let knowledge = super::knowledge::settings(dir, &args.knowledge, project.as_ref())?;
    let kb = super::knowledge::open(&knowledge, printer.quiet)?;
    let expected = project.as_ref().map(|project| {
        let default = crate::lock::default_source(
            crate::kb::KnowledgeBase::meta(kb)
                .index_url
                .as_deref()
                .unwrap_or(""),
        );
        crate::lock::project_hash(project, &default)
    });
    let findings = crate::provenance::check(&lock, kb, expected.as_deref());
    kb.finish();
    let findings = findings?;
    let errors = findings
        .iter()
        .filter(|f| f.kind == MessageType::Error)
        .count();
    for f in &findings {
        let line = format!("{}: {}", f.id, f.justification);
        if f.kind == MessageType::Error {
            printer.info(format!("error: {line}"));
        } else {
            printer.warn(line);
        }
    }
    let packages = lock.default.len() + lock.develop.len();
    printer.info(format!(
        "{}: {packages} package(s) checked, {errors} error(s), {} warning(s)",
        lock_path.display(),
        findings.len() - errors
    ));
    if args.json {
        let report = json!({
            "lock": lock_path.display().to_string(),
            "packages": packages,
            "findings": findings,
            "stack_info": findings.iter().map(crate::provenance::Finding::to_message).collect::<Vec<_>>(),
            "error": errors > 0,
        });
        let text = super::json_text(&report)?;
        printer.stdout(&text)?;
    }
    Ok(if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
