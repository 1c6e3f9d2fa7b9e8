//! `thoth-rs tree` and `thoth-rs why`: the stack's requirement graph, from
//! a fresh resolution or an existing lock.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::args::{LockArgs, StackArgs, TreeArgs, WhyArgs};
use super::{CliError, Printer};
use crate::graph::{ProjectRequirement, StackGraph, TreeOptions, read_lock, render_tree};
use crate::settings::AdviseSettings;

/// The graph `args` asks for, with the settings it was built under and
/// where it came from.
fn build(
    dir: &Path,
    args: &StackArgs,
    printer: &Printer,
) -> Result<(StackGraph, AdviseSettings, String), CliError> {
    let s = super::settings::advise_settings(dir, &args.resolve, &LockArgs::default())?;
    for w in &s.project.warnings {
        printer.warn(w);
    }
    let label = s.project.path.file_name().map_or_else(
        || "the project".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if let Some(lock) = &args.lock {
        let path = super::settings::resolve_path(dir, lock);
        let kb = super::knowledge::open(&s.knowledge, printer.quiet)?;
        let locked = read_lock(&path, s.dev)?;
        let roots: Vec<ProjectRequirement> = s
            .project
            .requirements
            .iter()
            .chain(if s.dev {
                s.project.dev_requirements.as_slice()
            } else {
                &[]
            })
            .map(|d| ProjectRequirement {
                name: d.requirement.name.to_string(),
                extras: d
                    .requirement
                    .extras
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                specifier: d.requirement.specifiers.to_string(),
                marker: d.requirement.marker.as_ref().map(|m| m.text.clone()),
            })
            .collect();
        let query = s.target.query(s.exclude_newer);
        let graph = StackGraph::from_lock(kb, &label, &roots, &locked, &s.target.markers, &query)
            .map_err(CliError::from);
        kb.finish();
        return Ok((graph?, s, path.display().to_string()));
    }
    let session = super::session::Session::open(&s, printer)?;
    let outcome = session.advise(&s);
    session.finish();
    let advice = outcome.map_err(|e| session.failure(&e, &s.project.path))?;
    let graph = StackGraph::from_resolution(&advice.resolution, &label);
    Ok((graph, s, "a fresh resolution (nothing written)".to_string()))
}

/// `thoth-rs tree`.
pub fn tree(dir: &Path, args: &TreeArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let package = match &args.package {
        Some(p) => Some(
            crate::python::parse_name(p)
                .map_err(|e| CliError::Usage(format!("--package {p}: {}", e.message)))?
                .to_string(),
        ),
        None if args.invert => {
            return Err(CliError::Usage(
                "--invert shows who needs a package: name it with --package NAME".into(),
            ));
        }
        None => None,
    };
    let (graph, _, from) = build(dir, &args.stack, printer)?;
    let options = TreeOptions {
        invert: args.invert,
        depth: args.depth,
        package: package.clone(),
    };
    let Some(tree) = graph.tree(&options) else {
        return Err(CliError::Failure(format!(
            "{} is not in the stack ({from})",
            package.unwrap_or_default()
        )));
    };
    if args.stack.json {
        let text = super::json_text(&json!({
            "from": from,
            "invert": args.invert,
            "tree": tree,
        }))?;
        printer.stdout(&text)?;
    } else {
        printer.info(format!("stack from {from}"));
        printer.stdout(render_tree(&tree, args.invert).trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Paths listed at most.
const MAX_PATHS: usize = 100;

/// `thoth-rs why NAME[==VERSION]`.
pub fn why(dir: &Path, args: &WhyArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let (name_text, expected) = match args.package.split_once("==") {
        Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
        None => (args.package.trim(), None),
    };
    let name = crate::python::parse_name(name_text)
        .map_err(|e| CliError::Usage(format!("{}: {}", args.package, e.message)))?
        .to_string();
    let (graph, _, from) = build(dir, &args.stack, printer)?;
    let Some(package) = graph.package(&name).cloned() else {
        return Err(CliError::Failure(format!(
            "{name} is not in the stack ({from})"
        )));
    };
    let version = package.version.clone().unwrap_or_default();
    if let Some(want) = &expected
        && want != &version
    {
        return Err(CliError::Failure(format!(
            "the stack ({from}) has {name} {version}, not {want}"
        )));
    }
    let paths = graph.paths_to(&name, MAX_PATHS);
    let newer = graph.newer_rejected.get(&name).cloned().unwrap_or_default();
    if args.stack.json {
        let text = super::json_text(&json!({
            "from": from,
            "package": name,
            "version": version,
            "extras": package.extras,
            "required_by": graph
                .requirements_on(&name)
                .into_iter()
                .map(|(by, r)| json!({"by": by, "requirement": r.requirement, "marker": r.marker}))
                .collect::<Vec<_>>(),
            "paths": paths,
            "newer_not_taken": newer
                .iter()
                .map(|(v, why)| json!({"version": v, "why": why}))
                .collect::<Vec<_>>(),
        }))?;
        printer.stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = vec![format!("{name} {version} (in {from})")];
    out.push(format!("{} path(s) from {}:", paths.len(), graph.project()));
    for path in &paths {
        let mut line = String::from("  ");
        for (i, step) in path.iter().enumerate() {
            if i == 0 {
                line.push_str(&step.from);
            }
            line.push_str(&format!(" → {}", step.requirement));
            if let Some(m) = &step.marker {
                line.push_str(&format!(" [{m}]"));
            }
            line.push_str(&format!(" → {}", step.to));
        }
        out.push(line);
    }
    if paths.len() == MAX_PATHS {
        out.push(format!("  (the first {MAX_PATHS} paths)"));
    }
    if newer.is_empty() {
        out.push("no newer release: this is the newest the target can use".to_string());
    } else {
        out.push("newer releases not taken:".to_string());
        for (v, why) in &newer {
            out.push(format!("  {v}: {why}"));
        }
    }
    printer.stdout(&out.join("\n"))?;
    Ok(ExitCode::SUCCESS)
}
