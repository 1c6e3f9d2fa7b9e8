//! `thoth-rs advise`.
//!
//! This build validates every input and reports what it read; the resolver
//! stage plugs in here. No lock is written until a stack has been resolved.

use std::process::ExitCode;

use serde_json::json;

use super::{CliError, Printer};
use crate::input::DeclaredRequirement;
use crate::kb::KnowledgeBase;
use crate::settings::AdviseSettings;

fn requirement_list(reqs: &[DeclaredRequirement]) -> Vec<String> {
    reqs.iter()
        .map(|r| match &r.index {
            Some(index) => format!("{} (index {index})", r.requirement),
            None => r.requirement.to_string(),
        })
        .collect()
}

/// The inputs as a JSON object (also the `inputs` part of the report).
pub fn inputs_json(s: &AdviseSettings) -> serde_json::Value {
    let p = &s.project;
    json!({
        "project": {
            "file": p.path.display().to_string(),
            "kind": p.kind.as_str(),
            "requirements": requirement_list(&p.requirements),
            "dev_requirements": requirement_list(&p.dev_requirements),
            "sources": p.sources,
            "requires_python": p.requires_python.as_ref().map(ToString::to_string),
            "allow_prereleases": p.allow_prereleases,
            "existing_lock": p.lock.as_ref().map(|l| json!({
                "file": l.path.display().to_string(),
                "default": l.default.len(),
                "develop": l.develop.len(),
            })),
        },
        "environment": s.environment,
        "thoth_yaml": s.thoth_config.as_ref().map(|c| c.path.display().to_string()),
        "recommendation_type": s.recommendation_type.0,
        "recommendation_type_from": s.recommendation_type.1,
        "constraints": requirement_list(&s.constraints),
        "labels": s.labels,
        "prescriptions": s.prescriptions.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "snapshot": s.snapshot.as_ref().map(|p| p.display().to_string()),
        "dev": s.dev,
        "seed": s.seed,
        "limit": s.limit,
        "count": s.count,
        "beam_width": s.beam_width,
        "time_budget": s.time_budget,
        "predictor": s.predictor,
        "exclude_newer": s.exclude_newer,
        "format": s.format,
        "output": s.output.display().to_string(),
    })
}

/// How the direct requirements stand in the snapshot.
fn snapshot_json(s: &AdviseSettings, printer: &Printer) -> Result<serde_json::Value, CliError> {
    let kb = super::snapshot::open_snapshot(&s.project_dir, s.snapshot.as_deref())?;
    let meta = kb.meta();
    printer.info(format!(
        "snapshot     {} (cutoff {}, index {})",
        kb.path().display(),
        meta.cutoff.as_deref().unwrap_or("-"),
        meta.index_url.as_deref().unwrap_or("-")
    ));
    let mut requirements = serde_json::Map::new();
    let direct = s.project.requirements.iter().chain(if s.dev {
        s.project.dev_requirements.iter()
    } else {
        [].iter()
    });
    for r in direct {
        let name = r.requirement.name.to_string();
        let status = match kb
            .project(&name)
            .map_err(|e| CliError::Failure(e.to_string()))?
        {
            crate::kb::Lookup::Found(record) => {
                let matching = record
                    .releases
                    .iter()
                    .filter(|rel| r.requirement.specifiers.contains(&rel.version))
                    .count();
                if matching == 0 {
                    printer.warn(format!(
                        "{name}: none of the {} stored releases matches `{}`",
                        record.releases.len(),
                        r.requirement.specifiers
                    ));
                }
                json!({"status": "found", "releases": record.releases.len(), "matching": matching})
            }
            crate::kb::Lookup::Unavailable(reason) => {
                printer.warn(format!("{name}: unavailable in the snapshot: {reason}"));
                json!({"status": "unavailable", "reason": reason})
            }
            crate::kb::Lookup::Missing => {
                printer.warn(format!("{name}: not in the snapshot (build one that includes it with `thoth-rs snapshot sync --package {name}`)"));
                json!({"status": "missing"})
            }
        };
        requirements.insert(name, status);
    }
    Ok(json!({
        "path": kb.path().display().to_string(),
        "cutoff": meta.cutoff,
        "index_url": meta.index_url,
        "requirements": requirements,
    }))
}

pub fn run(s: &AdviseSettings, printer: &Printer) -> Result<ExitCode, CliError> {
    for w in s
        .project
        .warnings
        .iter()
        .chain(s.thoth_config.iter().flat_map(|c| c.warnings.iter()))
    {
        printer.warn(w);
    }
    let p = &s.project;
    let env = &s.environment;
    printer.info(format!(
        "project      {} ({})",
        p.path.display(),
        p.kind.as_str()
    ));
    printer.info(format!(
        "requirements {} runtime, {} dev{}",
        p.requirements.len(),
        p.dev_requirements.len(),
        if s.dev {
            " (included)"
        } else {
            " (not included, use --dev)"
        }
    ));
    for r in &p.requirements {
        printer.info(format!("  {}", r.requirement));
    }
    if s.dev {
        for r in &p.dev_requirements {
            printer.info(format!("  {} (dev)", r.requirement));
        }
    }
    for src in &p.sources {
        printer.info(format!(
            "source       {} {}{}",
            src.name,
            src.url,
            if src.verify_ssl {
                ""
            } else {
                " (no TLS verification)"
            }
        ));
    }
    if let Some(lock) = &p.lock {
        printer.info(format!(
            "lock         {} ({} default, {} develop)",
            lock.path.display(),
            lock.default.len(),
            lock.develop.len()
        ));
    }
    printer.info(format!(
        "environment  {}python {} on {}{}",
        env.name
            .as_deref()
            .map(|n| format!("{n}: "))
            .unwrap_or_default(),
        env.python_version,
        env.platform,
        match (&env.os_name, &env.os_version) {
            (Some(n), Some(v)) => format!(", {n} {v}"),
            (Some(n), None) => format!(", {n}"),
            _ => String::new(),
        }
    ));
    if let Some(cuda) = &env.cuda_version {
        printer.info(format!(
            "             CUDA {cuda}{}",
            env.cudnn_version
                .as_deref()
                .map(|c| format!(", cuDNN {c}"))
                .unwrap_or_default()
        ));
    }
    if !env.cpu_flags.is_empty() {
        printer.info(format!(
            "             CPU flags {}",
            env.cpu_flags.join(" ")
        ));
    }
    for d in &env.defaulted {
        printer.info(format!("             defaulted {d}"));
    }
    printer.info(format!(
        "recommend    {} (from {})",
        s.recommendation_type.0,
        s.recommendation_type.1.describe()
    ));
    if !s.constraints.is_empty() {
        printer.info(format!(
            "constraints  {}",
            requirement_list(&s.constraints).join(", ")
        ));
    }
    if !s.labels.is_empty() {
        let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        printer.info(format!("labels       {}", labels.join(",")));
    }
    let snapshot = snapshot_json(s, printer)?;
    printer.info("inputs are valid; this build has no resolver yet, so no lock was written");
    if s.json {
        let report = json!({
            "inputs": inputs_json(s),
            "snapshot": snapshot,
            "products": [],
            "resolved": false,
            "message": "inputs are valid; this build has no resolver yet, so no lock was written",
        });
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Failure(e.to_string()))?;
        printer.stdout(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
