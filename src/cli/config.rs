//! `thoth-rs config`: detect this machine and write `.thoth.yaml`.

use std::path::Path;
use std::process::ExitCode;

use super::args::ConfigArgs;
use super::settings::THOTH_YAML;
use super::{CliError, Printer};
use crate::environment::detect::Probe;
use crate::input::thoth_yaml::{Field, ThothYaml};
use crate::policy::{RecommendationType, RequirementsFormat};

/// Render the detected configuration as `.thoth.yaml` text.
pub fn render(probe: &Probe) -> Result<String, CliError> {
    let mut env = probe.detect();
    env.recommendation_type = Field::Value(RecommendationType::Stable);
    let config = ThothYaml {
        requirements_format: Field::Value(RequirementsFormat::Pipenv),
        runtime_environments: vec![env],
        ..ThothYaml::default()
    };
    let body = serde_yaml::to_string(&config)
        .map_err(|e| CliError::Failure(format!("cannot render YAML: {e}")))?;
    Ok(format!(
        "# Runtime environment for thoth-rs, detected by `thoth-rs config`.\n\
         # null means \"unknown\"; edit freely, add more entries under runtime_environments.\n{body}"
    ))
}

pub fn run(dir: &Path, args: &ConfigArgs, printer: &Printer) -> Result<ExitCode, CliError> {
    let probe = Probe {
        python: args.python.clone(),
        ..Probe::default()
    };
    let text = render(&probe)?;
    if args.print {
        printer.stdout(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    let path = dir.join(THOTH_YAML);
    if path.exists() && !args.force {
        return Err(CliError::Usage(format!(
            "{} already exists: use --force to overwrite it, or --print to see what would be written",
            path.display()
        )));
    }
    crate::write::write_atomic(&path, text.as_bytes())
        .map_err(|e| CliError::Write(format!("cannot write {}: {e}", path.display())))?;
    printer.info(format!("wrote {}", path.display()));
    Ok(ExitCode::SUCCESS)
}
