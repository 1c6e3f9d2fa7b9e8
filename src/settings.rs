//! Immutable settings of one `advise` run, resolved once from the command
//! line, environment variables, `.thoth.yaml` and the project itself.
//! Nothing below the CLI sees clap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::environment::Target;
use crate::input::thoth_yaml::ThothConfig;
use crate::input::{DeclaredRequirement, Project};
use crate::policy::{OutputFormat, PredictorKind, RecommendationType};

/// Default number of accepted stacks explored.
pub const DEFAULT_LIMIT: u64 = 1_000;
/// Default number of stacks reported.
pub const DEFAULT_COUNT: u64 = 1;

/// Where a setting's value came from (shown in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    /// A command-line flag or THOTH_* variable.
    CommandLine,
    /// The runtime environment entry in .thoth.yaml.
    Environment,
    /// The top level of .thoth.yaml.
    ThothYaml,
    /// Built-in default.
    Default,
}

impl Provenance {
    /// Where the value came from, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CommandLine => "the command line",
            Self::Environment => "the runtime environment in .thoth.yaml",
            Self::ThothYaml => ".thoth.yaml",
            Self::Default => "the default",
        }
    }
}

/// Everything `advise` needs, validated.
#[derive(Debug, Clone)]
pub struct AdviseSettings {
    /// The project directory.
    pub project_dir: PathBuf,
    /// The loaded project.
    pub project: Project,
    /// `.thoth.yaml`, when present.
    pub thoth_config: Option<ThothConfig>,
    /// The environment resolved for.
    pub target: Target,
    /// Recommendation type and where it came from.
    pub recommendation_type: (RecommendationType, Provenance),
    /// Extra prescription directories.
    pub prescriptions: Vec<PathBuf>,
    /// Where knowledge comes from: base snapshot, user knowledge base,
    /// indexes, network policy.
    pub knowledge: KnowledgeSettings,
    /// Constraints (user file plus the project's own `-c` includes).
    pub constraints: Vec<DeclaredRequirement>,
    /// Labels (environment labels overridden by `--labels`).
    pub labels: BTreeMap<String, String>,
    /// Include development requirements.
    pub dev: bool,
    /// Seed of the search.
    pub seed: u64,
    /// Accepted stacks to explore.
    pub limit: u64,
    /// Stacks to report.
    pub count: u64,
    /// Beam width; `None` is unbounded.
    pub beam_width: Option<u64>,
    /// Wall-clock budget in seconds; `None` is no budget beyond `limit`.
    pub time_budget: Option<f64>,
    /// Predictor.
    pub predictor: PredictorKind,
    /// Upload-time cutoff, RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`).
    pub exclude_newer: Option<crate::time::Timestamp>,
    /// Lock format.
    pub format: OutputFormat,
    /// JSON report on stdout.
    pub json: bool,
    /// Score the project's existing Pipfile.lock first and keep it unless
    /// a stack scores strictly higher.
    pub keep_lock: bool,
    /// Lock output path.
    pub output: PathBuf,
    /// Analysis of the base image (`--base-image` or `base_image`), whose
    /// facts have completed [`Self::environment`].
    pub image: Option<crate::image::ImageAnalysis>,
    /// What the project's code uses (scanned or read from a file), for
    /// units that select on library usage; `None` with
    /// `--no-library-usage`.
    pub library_usage: Option<LibraryUsageInput>,
}

/// Library usage of a run and where it came from.
#[derive(Debug, Clone)]
pub struct LibraryUsageInput {
    /// Library → symbols.
    pub usage: crate::usage::LibraryUsage,
    /// "12 Python files under DIR" or the file given.
    pub origin: String,
}

impl AdviseSettings {
    /// The base image's interpreter the stack goes to, and how (the
    /// environment's `base_image_mode`, else the default for that
    /// interpreter). `None` without an analysed image or a matching
    /// interpreter.
    pub fn image_target(&self) -> Option<(&crate::image::Interpreter, crate::image::ImageMode)> {
        let image = self.image.as_ref()?;
        let interpreter = image.interpreter_for(&self.target.environment.python_version)?;
        let mode = self
            .target
            .environment
            .base_image_mode
            .unwrap_or_else(|| crate::image::default_mode(interpreter));
        Some((interpreter, mode))
    }

    /// The base image's Python packages already where the stack goes.
    pub fn image_installed(&self) -> Vec<&crate::image::PythonPackage> {
        match (self.image.as_ref(), self.image_target()) {
            (Some(image), Some((_, mode))) => {
                image.installed(&self.target.environment.python_version, mode)
            }
            _ => Vec::new(),
        }
    }
}

/// Where a run's knowledge comes from.
#[derive(Debug, Clone)]
pub struct KnowledgeSettings {
    /// An explicit base snapshot (`--snapshot`); `None` means the bundled one.
    pub snapshot: Option<PathBuf>,
    /// The user knowledge base file.
    pub user_kb: PathBuf,
    /// Index configuration (command line and project).
    pub index: crate::index::IndexSettings,
    /// Network policy.
    pub live: crate::kb::layered::LiveOptions,
}

/// The user cache directory of thoth-rs: `$THOTH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/thoth-rs`, else `~/.cache/thoth-rs`.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("THOTH_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("thoth-rs");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache").join("thoth-rs");
    }
    std::env::temp_dir().join("thoth-rs")
}

/// The user knowledge base file: `$THOTH_KB`, else `kb.sqlite` under
/// `cache_root`.
pub fn user_kb_path(cache_root: &std::path::Path) -> PathBuf {
    match std::env::var_os("THOTH_KB").filter(|d| !d.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => cache_root.join("kb.sqlite"),
    }
}
