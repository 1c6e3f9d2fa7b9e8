//! Command-line arguments: the only module that knows clap.
//!
//! These are the "low" arguments; [`super::settings`] turns them, together
//! with `.thoth.yaml`, into the immutable settings the commands run with.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::policy::{DecisionType, OutputFormat, PredictorKind, RecommendationType};

fn recommendation_parser() -> impl TypedValueParser<Value = RecommendationType> {
    PossibleValuesParser::new(RecommendationType::NAMES)
        .map(|s| s.parse::<RecommendationType>().unwrap_or_default())
}

fn predictor_parser() -> impl TypedValueParser<Value = PredictorKind> {
    clap::builder::NonEmptyStringValueParser::new().try_map(|s| s.parse::<PredictorKind>())
}

fn format_parser() -> impl TypedValueParser<Value = OutputFormat> {
    PossibleValuesParser::new(["pipfile-lock", "requirements", "pylock"])
        .map(|s| s.parse::<OutputFormat>().unwrap_or_default())
}

fn decision_parser() -> impl TypedValueParser<Value = DecisionType> {
    PossibleValuesParser::new(DecisionType::NAMES)
        .map(|s| s.parse::<DecisionType>().unwrap_or_default())
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// Colour when stderr is a terminal.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// thoth-rs: an offline Python dependency resolver that picks stacks by quality.
#[derive(Debug, Parser)]
#[command(
    name = "thoth-rs",
    version,
    about = "An offline Python dependency resolver that picks stacks by quality, guided by prescriptions",
    after_help = "Exit codes: 0 success, 1 no resolution, a failed check or an unreachable index, \
2 bad input or usage (a damaged snapshot included), 3 a file could not be written or read by the \
system (disk full, permissions).\n\n\
Examples:\n  thoth-rs config --print\n  thoth-rs advise -C examples/flask-app\n  thoth-rs advise --recommendation-type security --json > report.json"
)]
pub struct Cli {
    /// More log output on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, env = "THOTH_COLOR")]
    pub color: ColorChoice,
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "directory", value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Resolve the project into a lock, choosing the best stack for the environment.
    #[command(
        after_help = "Examples:\n  thoth-rs advise\n  thoth-rs advise -C examples/flask-app --recommendation-type latest\n  thoth-rs advise --runtime-environment gpu --labels requester=ci --json\n  thoth-rs advise --format requirements -o requirements.txt"
    )]
    Advise(Box<AdviseArgs>),
    /// Produce many distinct valid stacks for testing an application.
    #[command(
        name = "dependency-monkey",
        after_help = "Examples:\n  thoth-rs dependency-monkey --count 20 --output stacks/\n  thoth-rs dependency-monkey --decision-type random --seed 7 --output stacks/"
    )]
    DependencyMonkey(DependencyMonkeyArgs),
    /// Check that a Pipfile.lock's hashes and indexes agree with the snapshot.
    #[command(
        name = "provenance-check",
        after_help = "Examples:\n  thoth-rs provenance-check\n  thoth-rs provenance-check --lock path/to/Pipfile.lock --json"
    )]
    ProvenanceCheck(ProvenanceArgs),
    /// Work with prescriptions.
    #[command(subcommand)]
    Prescriptions(PrescriptionsCommand),
    /// Build and inspect knowledge-base snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Analyse container images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show the stack as a tree: what each package requires, or with
    /// --invert who requires it.
    #[command(
        after_help = "Examples:\n  thoth-rs tree --offline\n  thoth-rs tree --invert --package urllib3\n  thoth-rs tree --lock Pipfile.lock --depth 1 --json"
    )]
    Tree(TreeArgs),
    /// Explain one package: every path from the project to it, and why no
    /// newer release was taken.
    #[command(
        after_help = "Examples:\n  thoth-rs why urllib3\n  thoth-rs why werkzeug==3.1.3 --lock Pipfile.lock --json"
    )]
    Why(WhyArgs),
    /// Detect this machine and write .thoth.yaml.
    #[command(
        after_help = "Examples:\n  thoth-rs config --print\n  thoth-rs config --python /usr/bin/python3.11 --force"
    )]
    Config(ConfigArgs),
}

/// What `tree` and `why` look at: a fresh resolution of the project (as
/// `advise` would make it, nothing written), or an existing lock.
#[derive(Debug, Args)]
pub struct StackArgs {
    /// Explain this lock (Pipfile.lock, requirements.txt or pylock.toml) instead of resolving afresh.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    #[command(flatten)]
    pub resolve: ResolveArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tree` options.
#[derive(Debug, Args)]
pub struct TreeArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// Show who requires each package instead of what it requires.
    #[arg(long)]
    pub invert: bool,
    /// Levels to show below the top.
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Start from this package (with --invert: show who needs it).
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
}

/// `why` options.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The package, optionally with the version expected (`NAME==VERSION`).
    #[arg(value_name = "NAME[==VERSION]")]
    pub package: String,
    #[command(flatten)]
    pub stack: StackArgs,
}

/// What every command that resolves a project reads: the project, the
/// environment it is resolved for, prescriptions and knowledge.
#[derive(Debug, Args, Clone, Default)]
pub struct ProjectArgs {
    /// Project file (default: Pipfile, pyproject.toml, requirements.in, requirements.txt, first found).
    #[arg(long, value_name = "FILE")]
    pub project: Option<PathBuf>,
    /// Runtime environment from .thoth.yaml (default: the first one).
    #[arg(
        short = 'e',
        long,
        value_name = "NAME",
        env = "THOTH_RUNTIME_ENVIRONMENT"
    )]
    pub runtime_environment: Option<String>,
    /// Extra prescription directory (repeatable).
    #[arg(long = "prescriptions", value_name = "DIR")]
    pub prescriptions: Vec<PathBuf>,
    #[command(flatten)]
    pub knowledge: KnowledgeArgs,
    /// Include development packages.
    #[arg(long)]
    pub dev: bool,
    /// Resolve for what this base image holds: an image path (OCI layout, docker save or OCI archive, root filesystem) or a name saved with `image inspect --save` (default: .thoth.yaml's base_image).
    #[arg(long, value_name = "NAME|PATH", env = "THOTH_BASE_IMAGE")]
    pub base_image: Option<String>,
    /// How the project goes onto the base image: new-venv (the image's Python packages are not installed; the default for an externally managed interpreter), system-site-packages (they are, and may be upgraded), into-image (they are pinned; the default otherwise). Default: .thoth.yaml's base_image_mode.
    #[arg(long, value_name = "MODE", value_parser = PossibleValuesParser::new(["new-venv", "system-site-packages", "into-image"]))]
    pub base_image_mode: Option<String>,
    /// Library usage as a JSON report ({"report": {lib: [symbols]}} or {lib: [symbols]}) instead of scanning the project's Python files.
    #[arg(long, value_name = "FILE", conflicts_with = "no_library_usage")]
    pub library_usage: Option<PathBuf>,
    /// Do not scan the project's Python files for the libraries and symbols they use.
    #[arg(long)]
    pub no_library_usage: bool,
}

/// What every command that resolves a project afresh takes (`advise`,
/// `dependency-monkey`, and `tree`/`why` without `--lock`): the project
/// and what the search aims for.
#[derive(Debug, Args, Clone, Default)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// What to optimise for.
    #[arg(short = 't', long, value_parser = recommendation_parser(), env = "THOTH_RECOMMENDATION_TYPE")]
    pub recommendation_type: Option<RecommendationType>,
    /// Constraints file (pip syntax or JSON).
    #[arg(long, value_name = "FILE")]
    pub constraints: Option<PathBuf>,
    /// Labels selecting prescriptions, KEY=VALUE,...
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub labels: Option<String>,
    /// Seed of the random number generator (same seed, same lock).
    #[arg(long, env = "THOTH_SEED")]
    pub seed: Option<u64>,
    /// Wall-clock budget for the search, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub time_budget: Option<f64>,
    /// Predictor steering the search (auto, asa, td, mcts, hill-climbing, random-walk, approximating-latest, sampling; auto picks by recommendation or decision type).
    #[arg(long, value_name = "NAME", value_parser = predictor_parser())]
    pub predictor: Option<PredictorKind>,
    /// Ignore releases uploaded after DATE (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub exclude_newer: Option<String>,
}

/// `advise` options.
#[derive(Debug, Args, Default)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub resolve: ResolveArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// What only `advise` takes: how many stacks it looks at and the lock it
/// writes.
#[derive(Debug, Args, Clone, Default)]
pub struct LockArgs {
    /// Number of accepted stacks to explore.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Number of stacks to report.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Width of the search beam.
    #[arg(long, value_name = "N")]
    pub beam_width: Option<u64>,
    /// Lock format to write.
    #[arg(long, value_parser = format_parser())]
    pub format: Option<OutputFormat>,
    /// Print the JSON report on stdout.
    #[arg(long)]
    pub json: bool,
    /// Score the existing Pipfile.lock first; keep it unless a stack scores strictly higher.
    #[arg(long)]
    pub keep_lock: bool,
    /// Where to write the lock (default: next to the project file).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `dependency-monkey` options.
#[derive(Debug, Args)]
pub struct DependencyMonkeyArgs {
    #[command(flatten)]
    pub resolve: ResolveArgs,
    /// Number of distinct stacks.
    #[arg(long, default_value_t = 3)]
    pub count: u64,
    /// How stacks are picked: all (newest first, then one package at a time) or random.
    #[arg(long, value_parser = decision_parser(), default_value = "all")]
    pub decision_type: DecisionType,
    /// Directory receiving <n>/Pipfile.lock per stack and summary.json (required unless --dry-run).
    #[arg(long, value_name = "DIR", required_unless_present = "dry_run")]
    pub output: Option<PathBuf>,
    /// Find the stacks but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where knowledge comes from (advise, dependency-monkey, provenance-check).
#[derive(Debug, Args, Clone, Default)]
pub struct KnowledgeArgs {
    /// Base snapshot instead of the bundled one; its release lists answer first.
    #[arg(long, value_name = "PATH", env = "THOTH_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,
    /// Never use the network: resolve from the base snapshot and the user knowledge base.
    #[arg(long, env = "THOTH_OFFLINE", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub offline: bool,
    /// Fetch every project page again, however fresh the stored copy.
    #[arg(long)]
    pub refresh: bool,
    /// Fetch this project's page again (repeatable).
    #[arg(long = "refresh-package", value_name = "NAME")]
    pub refresh_package: Vec<String>,
    /// The package index (a simple API root), before the project's own sources.
    #[arg(long, value_name = "URL")]
    pub index_url: Option<String>,
    /// A further index, searched after the others (repeatable).
    #[arg(long = "extra-index-url", value_name = "URL")]
    pub extra_index_url: Vec<String>,
    /// Seconds a stored project page stays fresh when the index sets no Cache-Control (default 600).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=315_360_000))]
    pub max_age: Option<u64>,
    /// Requests in flight at most (1 to 64).
    #[arg(long = "concurrency", value_name = "N", default_value_t = 16,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub concurrency: usize,
    /// Root of thoth-rs's caches, the user knowledge base included.
    #[arg(long, value_name = "DIR", env = "THOTH_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// `provenance-check` options.
#[derive(Debug, Args)]
pub struct ProvenanceArgs {
    /// Lock to check (default: Pipfile.lock in the directory).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    #[command(flatten)]
    pub knowledge: KnowledgeArgs,
    /// Print findings as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `prescriptions` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrescriptionsCommand {
    /// Compile prescription directories and report counts, errors and warnings.
    #[command(
        after_help = "Examples:\n  thoth-rs prescriptions check prescriptions/\n  thoth-rs prescriptions check ../corpus/prescriptions --json"
    )]
    Check {
        /// Directories to compile.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Report what an image holds: OS, RPM and deb packages, Python interpreters and packages, ABI symbols, CUDA.
    #[command(
        after_help = "The image is an OCI image layout directory, a `docker save` or OCI archive (tar, .tar.gz, .tar.zst),\nor an unpacked root filesystem. No container runtime is needed.\n\nExamples:\n  thoth-rs image inspect ubi9-python311.tar\n  thoth-rs image inspect ./oci-layout --json\n  thoth-rs image inspect image.tar --save registry.example/team/base:1.4\n  thoth-rs advise --base-image registry.example/team/base:1.4"
    )]
    Inspect {
        /// The image.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Print the analysis as JSON.
        #[arg(long)]
        json: bool,
        /// Save the analysis under NAME (`name[:tag]`) for `advise --base-image NAME` and `.thoth.yaml`'s base_image.
        #[arg(long, value_name = "NAME")]
        save: Option<String>,
    },
}

/// `snapshot` subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process; the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum SnapshotCommand {
    /// Build a snapshot from a package index.
    #[command(
        after_help = "Examples:\n  thoth-rs snapshot sync --project requirements.in -o ci-snapshot.sqlite\n  thoth-rs snapshot sync --project Pipfile -e gpu-node -e cpu-node -t stable -t security -o ci.sqlite\n  thoth-rs advise --offline --snapshot ci-snapshot.sqlite   # later, on a machine without network\n  thoth-rs snapshot sync --package flask --package numpy -o snapshot.sqlite\n  thoth-rs snapshot sync --roots data/roots.txt --max-versions 25 --jobs 8"
    )]
    Sync {
        /// Snapshot what resolving this project needs (any file `advise` reads), through the live knowledge base.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["packages", "roots", "since", "max_projects", "root_extras", "lean"])]
        project: Option<PathBuf>,
        /// With --project: runtime environment from .thoth.yaml to cover (repeatable; default: every one).
        #[arg(
            short = 'e',
            long = "runtime-environment",
            value_name = "NAME",
            requires = "project"
        )]
        runtime_environments: Vec<String>,
        /// With --project: recommendation type to cover (repeatable; default: the one advise would use).
        #[arg(short = 't', long = "recommendation-type", value_parser = recommendation_parser(), requires = "project")]
        recommendation_types: Vec<RecommendationType>,
        /// Root requirement, e.g. `flask>=2,<3` or `requests[socks]` (repeatable).
        #[arg(long = "package", value_name = "REQUIREMENT")]
        packages: Vec<String>,
        /// Roots from a file: requirements syntax (`-r`, `-c`, `-i`, markers, specifiers) or any project file `advise` reads.
        #[arg(long, value_name = "FILE")]
        roots: Option<PathBuf>,
        /// Keep the newest K releases inside each version range met (0: every release in it). Every release of a project is listed in the snapshot either way; only the chosen ones get dependency metadata.
        #[arg(long, value_name = "K", default_value_t = 10)]
        max_versions: u64,
        /// Do not choose releases first uploaded before DATE (exact pins excepted).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Leave out files uploaded after DATE (the snapshot's cutoff is no later than it).
        #[arg(long, value_name = "DATE")]
        exclude_newer: Option<String>,
        /// Where the user knowledge base lives (default: the user cache directory).
        #[arg(long, value_name = "DIR", env = "THOTH_CACHE_DIR")]
        cache_dir: Option<PathBuf>,
        /// Fetch project pages again even when the user knowledge base has fresh ones.
        #[arg(long)]
        refresh: bool,
        /// Stop adding projects beyond N.
        #[arg(long, value_name = "N", default_value_t = 5000)]
        max_projects: u64,
        /// Root extras to follow: all of them, or only those written as name[extra].
        #[arg(long, value_parser = ["all", "listed"], default_value = "listed")]
        root_extras: String,
        /// List the files of releases without metadata without digest and URL (a smaller snapshot; those releases cannot be locked from it offline anyway).
        #[arg(long)]
        lean: bool,
        /// Print the sync report as JSON.
        #[arg(long)]
        json: bool,
        /// Index to read (default: pip's configured index).
        #[arg(long, value_name = "URL")]
        index_url: Option<String>,
        /// Another URL of the same index that projects still name (a legacy host); recorded in the
        /// snapshot, so that a Pipfile source naming it is read as the index (repeatable).
        #[arg(long = "index-alias", value_name = "URL")]
        index_aliases: Vec<String>,
        /// Requests in flight at most (1 to 64).
        #[arg(long, alias = "concurrency", default_value_t = 16,
              value_parser = clap::value_parser!(u64).range(1..=64))]
        jobs: u64,
        /// Output file.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show what a snapshot holds.
    #[command(
        after_help = "Examples:\n  thoth-rs snapshot info\n  thoth-rs snapshot info --snapshot my.sqlite --json"
    )]
    Info {
        /// Snapshot (default: the bundled one).
        #[arg(long, value_name = "PATH")]
        snapshot: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Import OSV advisories into a snapshot.
    #[command(
        name = "import-advisories",
        after_help = "Examples:\n  thoth-rs snapshot import-advisories ../advisory-database PyPI-all.zip --snapshot snapshot.sqlite"
    )]
    ImportAdvisories {
        /// Advisory sources, merged in order: directories of OSV files (vulns/<project>/*.yaml or
        /// *.json) or OSV archives (*.zip of OSV JSON, as OSV publishes per ecosystem). An advisory
        /// sharing an id or alias with an earlier one is folded into it; withdrawn ones are left out.
        #[arg(value_name = "SOURCE", required = true)]
        dir: Vec<PathBuf>,
        /// Snapshot to update.
        #[arg(long, value_name = "PATH")]
        snapshot: Option<PathBuf>,
    },
    /// Bring a snapshot written by an older thoth-rs up to this build's
    /// layout (indexes, packed project records); the content is unchanged.
    #[command(after_help = "Examples:\n  thoth-rs snapshot upgrade my.sqlite")]
    Upgrade {
        /// Snapshot to rewrite (atomically).
        #[arg(value_name = "PATH")]
        snapshot: PathBuf,
    },
}

/// `config` options.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Python interpreter to ask for its version and platform.
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: String,
    /// Print the configuration instead of writing .thoth.yaml.
    #[arg(long)]
    pub print: bool,
    /// Overwrite an existing .thoth.yaml.
    #[arg(long)]
    pub force: bool,
}
