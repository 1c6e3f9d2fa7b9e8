//! Turning `advise` arguments into [`AdviseSettings`].
//!
//! Priority for every value: command line (or its `THOTH_*` variable), then
//! the chosen runtime environment in `.thoth.yaml`, then the top level of
//! `.thoth.yaml`, then the built-in default.

use crate::input::ProjectKind;
use std::path::{Path, PathBuf};

use super::CliError;
use super::args::{LockArgs, ResolveArgs};
use crate::environment::{Target, TargetEnvironment};
use crate::input::constraints::read_constraints;
use crate::input::labels::parse_labels;
use crate::input::thoth_yaml::ThothConfig;
use crate::input::{InputError, Project};
use crate::policy::{OutputFormat, RecommendationType};
use crate::settings::{AdviseSettings, DEFAULT_COUNT, DEFAULT_LIMIT, Provenance};

/// Name of the environment file in a project directory.
pub const THOTH_YAML: &str = ".thoth.yaml";

/// `path` relative to `dir` unless absolute.
pub fn resolve_path(dir: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    }
}

/// The longest `--time-budget` accepted, in seconds (a year).
const MAX_TIME_BUDGET: f64 = 31_536_000.0;

/// Build the settings of a resolution rooted at `dir`: what every
/// resolving command takes (`args`) and what only `advise` takes (`lock`;
/// the defaults for the others).
pub fn advise_settings(
    dir: &Path,
    args: &ResolveArgs,
    lock: &LockArgs,
) -> Result<AdviseSettings, CliError> {
    let mut project = load_project(dir, &args.project)?;

    let yaml_path = dir.join(THOTH_YAML);
    let thoth_config = if yaml_path.is_file() {
        Some(ThothConfig::from_path(&yaml_path)?)
    } else {
        None
    };
    let runtime = match (&thoth_config, &args.project.runtime_environment) {
        (Some(config), name) => config.environment(name.as_deref())?.cloned(),
        (None, Some(name)) => {
            return Err(CliError::Usage(format!(
                "--runtime-environment {name}: there is no {} in {} (run `thoth-rs config` to create one)",
                THOTH_YAML,
                dir.display()
            )));
        }
        (None, None) => None,
    };
    let mut environment =
        TargetEnvironment::from_runtime(runtime.as_ref(), project.python_version.as_deref());
    if let Some(mode) = args.project.base_image_mode.as_deref() {
        environment.base_image_mode = crate::image::ImageMode::parse(mode);
    }
    let (environment, image) = base_image(dir, args.project.base_image.as_deref(), environment)?;
    // Every input that describes the target has been read: parse it once.
    let from_yaml = runtime
        .as_ref()
        .is_some_and(|r| r.python_version.value().is_some());
    let python_from = if from_yaml {
        Some(yaml_path.as_path())
    } else {
        project
            .python_version
            .as_ref()
            .map(|_| project.path.as_path())
    };
    let target = parse_target(environment, python_from)?;
    if let Some(warning) = end_of_life(&target, crate::kb::store::now()) {
        project.warnings.push(warning);
    }

    let recommendation_type = recommendation_type(
        args.recommendation_type,
        runtime.as_ref(),
        thoth_config.as_ref(),
    );

    let constraints = constraints(dir, &project, args.constraints.as_deref())?;

    let labels = labels(runtime.as_ref(), args.labels.as_deref())?;

    let (limit, count) = search_numbers(lock, args.time_budget)?;
    let exclude_newer = args
        .exclude_newer
        .as_deref()
        .map(crate::time::Timestamp::parse_cutoff)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--exclude-newer: {e}")))?;

    let prescriptions = prescription_dirs(dir, &args.project.prescriptions)?;
    let knowledge = super::knowledge::settings(dir, &args.project.knowledge, Some(&project))?;

    let (format, output) = default_output(dir, &project, lock.format, lock.output.as_deref());
    let project_dir = project
        .path
        .parent()
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);

    let library_usage = library_usage(dir, &project_dir, args)?;
    Ok(AdviseSettings {
        library_usage,
        project_dir,
        project,
        thoth_config,
        target,
        recommendation_type,
        prescriptions,
        knowledge,
        constraints,
        labels,
        dev: args.project.dev,
        seed: args.seed.unwrap_or(0),
        limit,
        count,
        beam_width: lock.beam_width,
        time_budget: args.time_budget,
        predictor: args.predictor.unwrap_or_default(),
        exclude_newer,
        format,
        json: lock.json,
        keep_lock: lock.keep_lock,
        output,
        image,
    })
}

/// The target, parsed once every input that describes it has been read; a
/// bad Python version names the file it came from (`python_from`).
fn parse_target(
    environment: TargetEnvironment,
    python_from: Option<&Path>,
) -> Result<Target, CliError> {
    Target::new(environment).map_err(|e| match python_from {
        Some(file) => InputError::file(file, e.to_string())
            .key("python_version")
            .into(),
        None => CliError::Usage(e.to_string()),
    })
}

/// The `--prescriptions` directories, relative to `dir`; each must be one.
fn prescription_dirs(dir: &Path, given: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    given
        .iter()
        .map(|p| {
            let p = resolve_path(dir, p);
            if p.is_dir() {
                Ok(p)
            } else {
                Err(CliError::Usage(format!(
                    "--prescriptions {}: not a directory",
                    p.display()
                )))
            }
        })
        .collect()
}

/// `--limit`, `--count`, `--beam-width` and `--time-budget`, checked.
fn search_numbers(args: &LockArgs, time_budget: Option<f64>) -> Result<(u64, u64), CliError> {
    let limit = args.limit.unwrap_or(DEFAULT_LIMIT);
    let count = args.count.unwrap_or(DEFAULT_COUNT);
    if limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    if count == 0 {
        return Err(CliError::Usage("--count must be at least 1".into()));
    }
    if count > limit {
        return Err(CliError::Usage(format!(
            "--count {count} is larger than --limit {limit}"
        )));
    }
    if args.beam_width == Some(0) {
        return Err(CliError::Usage("--beam-width must be at least 1".into()));
    }
    if let Some(budget) = time_budget
        && !(budget.is_finite() && budget > 0.0 && budget <= MAX_TIME_BUDGET)
    {
        return Err(CliError::Usage(format!(
            "--time-budget {budget}: expected a positive number of seconds, at most {MAX_TIME_BUDGET} (a year)"
        )));
    }
    Ok((limit, count))
}

/// The project file given, else the one found in `dir`; an error in a
/// section this run does not use only warns.
fn load_project(dir: &Path, args: &super::args::ProjectArgs) -> Result<Project, CliError> {
    let mut project = match &args.project {
        Some(file) => {
            let file = resolve_path(dir, file);
            if !file.is_file() {
                return Err(InputError::file(&file, "project file not found").into());
            }
            Project::load(&file)?
        }
        None => Project::discover(dir)?,
    };
    // A section this run does not use is still checked, but its errors
    // only warn.
    if let Some(e) = project.dev_error.take() {
        if args.dev {
            return Err(e.into());
        }
        project.warnings.push(format!(
            "{e} (ignored: development packages are not part of this run; with --dev this is an error)"
        ));
    }

    Ok(project)
}

/// The recommendation type and where it came from: the command line, the
/// runtime environment, `.thoth.yaml`, else the default.
fn recommendation_type(
    given: Option<RecommendationType>,
    runtime: Option<&crate::input::thoth_yaml::RuntimeEnvironment>,
    thoth_config: Option<&ThothConfig>,
) -> (RecommendationType, Provenance) {
    if let Some(t) = given {
        (t, Provenance::CommandLine)
    } else if let Some(t) = runtime.and_then(|e| e.recommendation_type.value()) {
        (*t, Provenance::Environment)
    } else if let Some(t) = thoth_config.and_then(|c| c.config.recommendation_type.value()) {
        (*t, Provenance::ThothYaml)
    } else {
        (RecommendationType::default(), Provenance::Default)
    }
}

/// The project's constraints and those of `--constraints FILE`; two for
/// the same name are an error naming both places.
fn constraints(
    dir: &Path,
    project: &Project,
    file: Option<&Path>,
) -> Result<Vec<crate::input::DeclaredRequirement>, CliError> {
    let mut constraints = project.constraints.clone();
    if let Some(file) = file {
        let file = resolve_path(dir, file);
        let mut by_name: std::collections::HashMap<_, usize> = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| (c.requirement.name.clone(), i))
            .collect();
        for c in read_constraints(&file)? {
            if let Some(prev) = by_name.get(&c.requirement.name).map(|&i| &constraints[i]) {
                return Err(InputError::file(
                    &file,
                    format!(
                        "constraint for `{}` conflicts with the one at {}:{}",
                        c.requirement.name,
                        prev.origin.file.display(),
                        prev.origin.line
                    ),
                )
                .at_line(c.origin.line)
                .into());
            }
            by_name.insert(c.requirement.name.clone(), constraints.len());
            constraints.push(c);
        }
    }

    Ok(constraints)
}

/// Labels of the runtime environment, then `--labels` over them.
fn labels(
    runtime: Option<&crate::input::thoth_yaml::RuntimeEnvironment>,
    given: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    let mut labels = std::collections::BTreeMap::new();
    if let Some(env_labels) = runtime.and_then(|e| e.labels.value()) {
        for (k, v) in env_labels {
            labels.insert(k.clone(), v.0.clone());
        }
    }
    if let Some(text) = given {
        let cli = parse_labels(text).map_err(|e| CliError::Usage(format!("--labels: {e}")))?;
        labels.extend(cli);
    }

    Ok(labels)
}

/// The run's library usage: the file given, else a scan of the project's
/// directory, else none (`--no-library-usage`).
fn library_usage(
    dir: &Path,
    project_dir: &Path,
    args: &ResolveArgs,
) -> Result<Option<crate::settings::LibraryUsageInput>, CliError> {
    if args.project.no_library_usage {
        return Ok(None);
    }
    if let Some(file) = &args.project.library_usage {
        let path = resolve_path(dir, file);
        let usage = crate::usage::read(&path)
            .map_err(|e| CliError::Usage(format!("--library-usage {e}")))?;
        return Ok(Some(crate::settings::LibraryUsageInput {
            usage,
            origin: path.display().to_string(),
        }));
    }
    let scan = crate::usage::scan(project_dir);
    let mut origin = format!(
        "{} Python file{} under {}",
        scan.files,
        if scan.files == 1 { "" } else { "s" },
        project_dir.display()
    );
    if scan.skipped > 0 {
        origin.push_str(&format!(
            ", {} skipped (too large or unreadable)",
            scan.skipped
        ));
    }
    if scan.with_errors > 0 {
        origin.push_str(&format!(", {} with syntax errors", scan.with_errors));
    }
    Ok(Some(crate::settings::LibraryUsageInput {
        usage: scan.usage,
        origin,
    }))
}

/// The base image of a run (`--base-image`, else `.thoth.yaml`'s
/// `base_image`), analysed or loaded from the saved analyses, and
/// `environment` completed with its facts. A name from `.thoth.yaml`
/// without a saved analysis still selects prescriptions by name (with a
/// warning); one given on the command line must be found.
fn base_image(
    dir: &Path,
    flag: Option<&str>,
    environment: TargetEnvironment,
) -> Result<(TargetEnvironment, Option<crate::image::ImageAnalysis>), CliError> {
    let mut environment = environment;
    let (spec, explicit) = match (flag, &environment.base_image) {
        (Some(f), _) => (f.to_string(), true),
        (None, Some(b)) => (b.clone(), false),
        (None, None) => return Ok((environment, None)),
    };
    if explicit && spec.len() > crate::image::MAX_REFERENCE_LEN {
        return Err(CliError::Usage(format!(
            "--base-image is {} characters long; an image name or path is at most {}",
            spec.len(),
            crate::image::MAX_REFERENCE_LEN
        )));
    }
    let analysis = crate::image::open_base_image(&spec, dir).map_err(super::image::image_error)?;
    let Some(analysis) = analysis else {
        if explicit {
            return Err(CliError::Usage(format!(
                "--base-image {spec}: no image at that path and no saved analysis of that name \
                 (save one with `thoth-rs image inspect PATH --save {spec}`)"
            )));
        }
        tracing::warn!(
            "base_image {spec}: no saved analysis of that image; prescriptions select on its name \
             only (save one with `thoth-rs image inspect PATH --save {spec}`)"
        );
        return Ok((environment, None));
    };
    if explicit {
        environment.base_image = Some(analysis.reference.clone().unwrap_or_else(|| spec.clone()));
    }
    let (environment, warnings) = analysis.complete(environment);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok((environment, Some(analysis)))
}

/// The lock format and file when the user did not say: what the project's
/// own tool writes. A Pipfile gets `Pipfile.lock`; `NAME.in` gets `NAME.txt`
/// with hashes (as pip-compile writes it); `pyproject.toml` and any other
/// requirements file get `pylock.toml`, the standard lock file. `--format`
/// and `-o` win; with `--format` alone the file is named after the format,
/// beside the project file.
pub fn default_output(
    dir: &Path,
    project: &Project,
    format: Option<OutputFormat>,
    output: Option<&Path>,
) -> (OutputFormat, PathBuf) {
    let project_dir = project
        .path
        .parent()
        .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
    let file_name = project
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let in_file = project.kind == ProjectKind::Requirements && file_name.ends_with(".in");
    let format = format.unwrap_or(match project.kind {
        ProjectKind::Pipfile => OutputFormat::PipfileLock,
        ProjectKind::Requirements if in_file => OutputFormat::Requirements,
        ProjectKind::Requirements | ProjectKind::PyProject => OutputFormat::Pylock,
    });
    let path = match output {
        Some(p) => resolve_path(dir, p),
        None => project_dir.join(match format {
            OutputFormat::PipfileLock => "Pipfile.lock".to_string(),
            OutputFormat::Requirements if in_file => {
                format!("{}.txt", file_name.trim_end_matches(".in"))
            }
            OutputFormat::Requirements => "requirements.txt".to_string(),
            OutputFormat::Pylock => "pylock.toml".to_string(),
        }),
    };
    (format, path)
}

/// When each CPython minor release stopped getting security fixes (end of
/// October of its fifth year after release, as the release team schedules
/// it), as (minor, year, month).
const PYTHON_END_OF_LIFE: &[(u16, i64, u32)] = &[
    (6, 2021, 12),
    (7, 2023, 6),
    (8, 2024, 10),
    (9, 2025, 10),
    (10, 2026, 10),
    (11, 2027, 10),
    (12, 2028, 10),
    (13, 2029, 10),
    (14, 2030, 10),
];

/// A warning when the target interpreter no longer gets security fixes at
/// `now` (Unix seconds), saying where the version came from and how to
/// pick another.
pub fn end_of_life(target: &Target, now: i64) -> Option<String> {
    let env = &target.environment;
    let (major, minor) = target.wheels.python;
    let (year, month) = if major < 3 || (major == 3 && minor < 6) {
        (2020, 1)
    } else if major == 3 {
        let &(_, y, m) = PYTHON_END_OF_LIFE.iter().find(|(v, _, _)| *v == minor)?;
        (y, m)
    } else {
        return None;
    };
    let ended =
        crate::time::Timestamp::parse_time(&format!("{year:04}-{month:02}-28T00:00:00Z"))?.unix();
    if now < ended {
        return None;
    }
    let from = env
        .defaulted
        .iter()
        .find(|d| d.starts_with("python_version"))
        .map_or_else(
            || "from .thoth.yaml".to_string(),
            |d| {
                d.split_once('(')
                    .map_or(d.clone(), |(_, w)| w.trim_end_matches(')').to_string())
            },
        );
    Some(format!(
        "the target is Python {}.{minor} ({from}), which reached its end of life in {year}-{month:02} and gets no security fixes; pick a supported one with `python_version` in .thoth.yaml (`thoth-rs config` writes the local interpreter's) or in the project's own Python requirement",
        major
    ))
}
