//! `thoth-rs advise`: report the inputs, resolve, write the lock atomically,
//! explain the choice on stderr and, with `--json`, print the report.

use std::process::ExitCode;

use super::report::{Report, requirement_list};
use super::{CliError, Printer};
use crate::kb::KnowledgeBase;
use crate::kb::layered::LayeredKb;
use crate::settings::AdviseSettings;

/// The report's line on advisories, and a warning when they are stale.
fn describe_advisories(base: &crate::kb::sqlite::SqliteKb, printer: &Printer) {
    let (newest, age) = super::report::advisory_age(base);
    let source = base
        .meta()
        .advisories_source
        .as_deref()
        .unwrap_or("none recorded");
    match (newest.as_deref(), age) {
        (Some(newest), Some(age)) => {
            printer.info(format!(
                "advisories   {source}; newest {} ({age} days old)",
                newest.get(..10).unwrap_or(newest)
            ));
            if age > super::report::STALE_ADVISORY_DAYS {
                printer.warn(format!(
                    "the newest advisory in the snapshot is {age} days old, so releases affected by newer advisories are not flagged; import current ones with `thoth-rs snapshot import-advisories SOURCE... --snapshot FILE` (an OSV archive or directory) and pass --snapshot FILE"
                ));
            }
        }
        _ => printer.info(format!("advisories   {source}; none dated")),
    }
}

/// One line on where the run's data came from and how old it is.
pub fn describe_knowledge(report: &crate::kb::layered::LiveReport) -> String {
    let pages = |k: &str| report.pages.get(k).copied().unwrap_or(0);
    let meta = |k: &str| report.metadata.get(k).copied().unwrap_or(0);
    let net = |k: &str| report.network.get(k).copied().unwrap_or(0.0);
    let age = match report.oldest_data_seconds {
        Some(s) if s >= 86_400 => format!(", oldest stored page {} days old", s / 86_400),
        Some(s) if s >= 3_600 => format!(", oldest stored page {} h old", s / 3_600),
        Some(s) if s >= 60 => format!(", oldest stored page {} min old", s / 60),
        Some(s) => format!(", oldest stored page {s} s old"),
        None => String::new(),
    };
    format!(
        "data         {} ({}): pages {} fetched, {} revalidated, {} stored, {} from the snapshot{age}; metadata {} from the snapshot, {} stored, {} fetched; {} requests, {:.1} MiB, {:.2} s waiting",
        report.mode,
        report.indexes.join(", "),
        pages("fetched"),
        pages("revalidated"),
        pages("from_user_kb"),
        pages("from_base_snapshot"),
        meta("from_base_snapshot"),
        meta("from_user_kb"),
        meta("fetched_pep658") + meta("fetched_wheel_range") + meta("fetched_sdist"),
        net("requests") as u64,
        net("bytes") / f64::from(1u32 << 20),
        net("seconds_waiting"),
    )
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
    describe_project(s, printer);
    describe_environment(s, printer);
    let session = super::session::Session::open(s, printer)?;
    let snapshot = describe_sources(s, session.kb, printer);
    let started = std::time::Instant::now();
    let outcome = session.advise(s);
    let knowledge = session.finish();
    printer.info(describe_knowledge(&knowledge));
    let advice = match outcome {
        Ok(a) => a,
        Err(e) => {
            let message = session.failure_message(&e, &s.project.path);
            if s.json {
                let seconds = started.elapsed().as_secs_f64();
                let report = Report::failure(s, &e, &message, snapshot, &knowledge, seconds);
                printer.stdout(&report.render()?)?;
            }
            return Err(CliError::from_advise(&e, message));
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    report_human(s, &advice, elapsed, printer);
    crate::write::write_atomic(&s.output, advice.rendered.as_bytes()).map_err(|e| {
        let message = format!("cannot write {}: {e}", s.output.display());
        // A path that cannot hold a lock (a device, a directory) is a usage
        // error; anything else a failure of this run.
        if e.kind() == std::io::ErrorKind::InvalidInput {
            CliError::Usage(message)
        } else {
            CliError::Write(message)
        }
    })?;
    printer.info(format!("wrote {}", s.output.display()));
    if s.json {
        let report = Report::success(s, &advice, snapshot, &knowledge, elapsed);
        printer.stdout(&report.render()?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The project's lines of the header.
fn describe_project(s: &AdviseSettings, printer: &Printer) {
    let p = &s.project;
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
}

/// The environment's lines of the header: target, image, type, constraints,
/// labels, library usage.
fn describe_environment(s: &AdviseSettings, printer: &Printer) {
    let env = &s.target.environment;
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
    if let Some(a) = &s.image {
        printer.info(format!(
            "base image   {} ({}): {}, glibc {}, {} Python packages",
            a.reference.as_deref().unwrap_or("(no name)"),
            a.source,
            a.os.as_ref()
                .and_then(|o| o.pretty_name.clone().or_else(|| o.id.clone()))
                .unwrap_or_else(|| "unknown OS".into()),
            a.glibc.as_deref().unwrap_or("unknown"),
            a.python_packages.len()
        ));
        if let Some((i, mode)) = s.image_target() {
            printer.info(format!(
                "             Python {} at {} ({}): mode {}, {} installed package(s) kept in view",
                i.version,
                i.path,
                i.describe(),
                mode.name(),
                s.image_installed().len()
            ));
        }
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
    match &s.library_usage {
        Some(u) => printer.info(format!(
            "usage        {} librar{} from {}",
            u.usage.len(),
            if u.usage.len() == 1 { "y" } else { "ies" },
            u.origin
        )),
        None => printer.info("usage        not read (--no-library-usage)"),
    }
}

/// The snapshot's and the indexes' lines of the header; the snapshot as
/// the JSON report has it.
fn describe_sources<'a>(
    s: &AdviseSettings,
    kb: &'a LayeredKb,
    printer: &Printer,
) -> Option<super::report::Snapshot<'a>> {
    let snapshot = super::report::snapshot_of(kb);
    if let Some(base) = kb.base() {
        printer.info(format!(
            "snapshot     {} (cutoff {}{})",
            base.path().display(),
            base.meta().cutoff.as_deref().unwrap_or("-"),
            if s.knowledge.snapshot.is_some() {
                ", answers first"
            } else {
                ""
            }
        ));
        describe_advisories(base, printer);
    }
    printer.info(format!(
        "indexes      {} (from {}){}",
        kb.indexes()
            .indexes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        kb.indexes().origin,
        if kb.offline() { ", offline" } else { "" }
    ));
    for note in &kb.indexes().notes {
        printer.warn(note);
    }
    snapshot
}

/// The chosen stack and why, for people (stderr).
fn report_human(
    s: &AdviseSettings,
    advice: &crate::advise::Advice,
    seconds: f64,
    printer: &Printer,
) {
    let r = &advice.resolution;
    printer.info(format!(
        "resolved {} packages for Python {} on {} ({}, score {:.2}; {} of {} episodes by {}{}, {} decisions, {} backtracks, {:.2} s)",
        r.packages.len(),
        s.target.environment.python_version,
        s.target.environment.platform,
        s.recommendation_type.0,
        r.score,
        r.statistics.found_in_episode,
        r.statistics.episodes,
        r.statistics.predictor,
        match r.statistics.polish_episodes {
            0 => String::new(),
            n => format!(", polished in {n}"),
        },
        r.statistics.search.decisions,
        r.statistics.search.backtracks,
        seconds
    ));
    let graph = crate::graph::StackGraph::from_resolution(r, "the project");
    for p in &r.packages {
        let via: Vec<String> = graph
            .requirements_on(&p.name)
            .into_iter()
            .map(|(by, req)| {
                if by == "the project" {
                    format!("{} (project)", req.requirement)
                } else {
                    format!("{} (via {by})", req.requirement)
                }
            })
            .collect();
        let scope = match (p.default, p.develop) {
            (false, true) => " [dev]",
            _ => "",
        };
        printer.info(format!(
            "  {} {}{scope}  ← {}",
            p.name,
            p.version,
            via.join(", ")
        ));
        for (version, why) in p.newer_rejected.iter().take(3) {
            printer.info(format!("      newer {version} not taken: {why}"));
        }
        if p.newer_rejected.len() > 3 {
            printer.info(format!(
                "      … and {} more newer releases not taken",
                p.newer_rejected.len() - 3
            ));
        }
        for j in &p.justification {
            printer.info(format!("      {:?}: {}", j.kind, j.message));
        }
    }
    for (name, unit) in &r.skipped {
        printer.info(format!("  {name}: {unit}"));
    }
    for m in r
        .stack_info
        .iter()
        .chain(r.justification.iter().filter(|j| {
            !r.packages
                .iter()
                .any(|p| p.justification.iter().any(|pj| pj == *j))
        }))
    {
        let about = m
            .package_name
            .as_deref()
            .map(|p| format!("{p}: "))
            .unwrap_or_default();
        let line = format!(
            "{about}{}{}",
            m.message,
            m.link
                .first()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        );
        match m.kind {
            crate::prescription::schema::MessageType::Info => printer.info(format!("info: {line}")),
            _ => printer.warn(line),
        }
    }
}
