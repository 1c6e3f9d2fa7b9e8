//! `advise --json`: the report as types. A run that found a stack and one
//! that failed have the same sections (inputs, snapshot, knowledge base,
//! products, `stack_info`, pipeline, statistics, output); a failure adds
//! the error and, when no stack exists, the explanation. The report is
//! printed with its keys sorted, as it always was.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CliError;
use crate::advise::{Advice, AdviseError};
use crate::input::DeclaredRequirement;
use crate::kb::KnowledgeBase;
use crate::kb::layered::{LayeredKb, LiveReport};
use crate::prescription::schema::{Message, MessageType, UnitKind};
use crate::resolve::{Explanation, Resolution, ResolveError};
use crate::settings::AdviseSettings;

/// Advisory data older than this many days is said to be stale.
pub const STALE_ADVISORY_DAYS: i64 = 30;

/// The whole report.
#[derive(Serialize)]
pub struct Report<'a> {
    inputs: Inputs<'a>,
    snapshot: Option<Snapshot<'a>>,
    knowledge_base: &'a LiveReport,
    products: Vec<Product<'a>>,
    stack_info: Vec<Message>,
    pipeline: Option<BTreeMap<&'a str, PipelineUnit>>,
    statistics: Statistics<'a>,
    output: Option<String>,
    error: bool,
    #[serde(flatten)]
    failure: Option<Failure<'a>>,
}

/// What a failed run adds.
#[derive(Serialize)]
struct Failure<'a> {
    error_msg: &'a str,
    /// Why no stack exists (`null` for other failures).
    explanation: Option<&'a Explanation>,
}

/// Statistics: the search's, and the run's time.
#[derive(Serialize)]
struct Statistics<'a> {
    #[serde(flatten)]
    search: Option<SearchStatistics<'a>>,
    seconds: f64,
}

/// The search's counters, as a run that found a stack reports them.
#[derive(Serialize)]
struct SearchStatistics<'a> {
    predictor: &'a str,
    episodes: u64,
    accepted: u64,
    distinct_stacks: u64,
    found_in_episode: u64,
    polish_episodes: u64,
    search_seconds: f64,
    search: &'a crate::resolve::Counters,
    projects_loaded: usize,
    units_included: usize,
}

/// A unit that acted, and how often.
#[derive(Serialize)]
struct PipelineUnit {
    kind: UnitKind,
    runs: usize,
}

/// One stack reported.
#[derive(Serialize)]
struct Product<'a> {
    lock: &'a serde_json::Value,
    score: f64,
    justification: &'a [Message],
    packages: BTreeMap<&'a str, Package<'a>>,
    skipped: &'a BTreeMap<String, String>,
    existing_lock_kept: bool,
}

/// One package of a stack: what was chosen, who wanted it, and what newer
/// releases were passed over.
#[derive(Serialize)]
struct Package<'a> {
    version: String,
    default: bool,
    develop: bool,
    via: &'a [crate::resolve::Via],
    newer_rejected: Vec<NotTaken<'a>>,
    held_back: Option<NotTaken<'a>>,
    score: f64,
}

/// A release not taken, and why.
#[derive(Serialize)]
struct NotTaken<'a> {
    version: &'a str,
    reason: &'a str,
}

/// The base snapshot and its advisories.
#[derive(Serialize)]
pub struct Snapshot<'a> {
    path: String,
    cutoff: &'a Option<String>,
    created_at: &'a Option<String>,
    index_url: &'a Option<String>,
    advisories: Advisories<'a>,
}

/// Where the snapshot's advisories come from and how old the newest is.
#[derive(Serialize)]
struct Advisories<'a> {
    source: &'a Option<String>,
    newest: Option<String>,
    age_days: Option<i64>,
    stale: bool,
}

/// What the run was asked and read.
#[derive(Serialize)]
pub struct Inputs<'a> {
    project: ProjectInputs<'a>,
    environment: &'a crate::environment::TargetEnvironment,
    base_image: Option<BaseImage<'a>>,
    thoth_yaml: Option<String>,
    recommendation_type: crate::policy::RecommendationType,
    recommendation_type_from: crate::settings::Provenance,
    constraints: Vec<String>,
    labels: &'a BTreeMap<String, String>,
    library_usage: Option<LibraryUsage<'a>>,
    prescriptions: Vec<String>,
    snapshot: Option<String>,
    offline: bool,
    dev: bool,
    seed: u64,
    limit: u64,
    count: u64,
    beam_width: Option<u64>,
    time_budget: Option<f64>,
    predictor: crate::policy::PredictorKind,
    exclude_newer: Option<crate::time::Timestamp>,
    format: crate::policy::OutputFormat,
    output: String,
}

/// The project file and what it declares.
#[derive(Serialize)]
struct ProjectInputs<'a> {
    file: String,
    kind: &'static str,
    requirements: Vec<String>,
    dev_requirements: Vec<String>,
    sources: &'a [crate::input::Source],
    requires_python: Option<String>,
    allow_prereleases: bool,
    existing_lock: Option<ExistingLock>,
}

/// The lock found beside the project.
#[derive(Serialize)]
struct ExistingLock {
    file: String,
    default: usize,
    develop: usize,
}

/// The base image resolved for, in brief.
#[derive(Serialize)]
struct BaseImage<'a> {
    reference: &'a Option<String>,
    source: &'a str,
    kind: &'a str,
    os: &'a Option<crate::image::OsRelease>,
    glibc: &'a Option<String>,
    python_interpreters: &'a [crate::image::Interpreter],
    python_packages: usize,
    interpreter: Option<String>,
    mode: Option<&'static str>,
    installed: usize,
    rpm_packages: usize,
    deb_packages: usize,
}

/// The library usage read, and from where.
#[derive(Serialize)]
struct LibraryUsage<'a> {
    from: &'a str,
    report: &'a crate::usage::LibraryUsage,
}

/// Requirements as the report lists them, with their index when named.
pub fn requirement_list(reqs: &[DeclaredRequirement]) -> Vec<String> {
    reqs.iter()
        .map(|r| match &r.index {
            Some(index) => format!("{} (index {index})", r.requirement),
            None => r.requirement.to_string(),
        })
        .collect()
}

impl<'a> Inputs<'a> {
    /// The inputs of the run `s` describes.
    pub fn of(s: &'a AdviseSettings) -> Self {
        let p = &s.project;
        Self {
            project: ProjectInputs {
                file: p.path.display().to_string(),
                kind: p.kind.as_str(),
                requirements: requirement_list(&p.requirements),
                dev_requirements: requirement_list(&p.dev_requirements),
                sources: &p.sources,
                requires_python: p.requires_python.as_ref().map(ToString::to_string),
                allow_prereleases: p.allow_prereleases,
                existing_lock: p.lock.as_ref().map(|l| ExistingLock {
                    file: l.path.display().to_string(),
                    default: l.default.len(),
                    develop: l.develop.len(),
                }),
            },
            environment: &s.target.environment,
            base_image: s.image.as_ref().map(|a| BaseImage {
                reference: &a.reference,
                source: &a.source,
                kind: &a.kind,
                os: &a.os,
                glibc: &a.glibc,
                python_interpreters: &a.python_interpreters,
                python_packages: a.python_packages.len(),
                interpreter: s.image_target().map(|(i, _)| i.path.clone()),
                mode: s.image_target().map(|(_, m)| m.name()),
                installed: s.image_installed().len(),
                rpm_packages: a.rpm.packages.len(),
                deb_packages: a.deb_packages.len(),
            }),
            thoth_yaml: s
                .thoth_config
                .as_ref()
                .map(|c| c.path.display().to_string()),
            recommendation_type: s.recommendation_type.0,
            recommendation_type_from: s.recommendation_type.1,
            constraints: requirement_list(&s.constraints),
            labels: &s.labels,
            library_usage: s.library_usage.as_ref().map(|u| LibraryUsage {
                from: &u.origin,
                report: &u.usage,
            }),
            prescriptions: s
                .prescriptions
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            snapshot: s
                .knowledge
                .snapshot
                .as_ref()
                .map(|p| p.display().to_string()),
            offline: s.knowledge.live.offline,
            dev: s.dev,
            seed: s.seed,
            limit: s.limit,
            count: s.count,
            beam_width: s.beam_width,
            time_budget: s.time_budget,
            predictor: s.predictor,
            exclude_newer: s.exclude_newer,
            format: s.format,
            output: s.output.display().to_string(),
        }
    }
}

/// The base snapshot `kb` answers from, if any, for the report.
pub fn snapshot_of(kb: &LayeredKb) -> Option<Snapshot<'_>> {
    let base = kb.base()?;
    let meta = base.meta();
    let (newest, age) = advisory_age(base);
    Some(Snapshot {
        path: base.path().display().to_string(),
        cutoff: &meta.cutoff,
        created_at: &meta.created_at,
        index_url: &meta.index_url,
        advisories: Advisories {
            source: &meta.advisories_source,
            newest,
            age_days: age,
            stale: age.is_some_and(|d| d > STALE_ADVISORY_DAYS),
        },
    })
}

/// The newest advisory's time and its age in whole days (today by the
/// system clock).
pub fn advisory_age(base: &crate::kb::sqlite::SqliteKb) -> (Option<String>, Option<i64>) {
    let newest = base.advisories_newest();
    let age = newest
        .as_deref()
        .and_then(crate::time::Timestamp::parse_time)
        .map(|t| t.days_until(crate::time::Timestamp::now()));
    (newest, age)
}

/// The units that acted in a run.
fn pipeline(ran: &BTreeMap<String, (UnitKind, usize)>) -> BTreeMap<&str, PipelineUnit> {
    ran.iter()
        .map(|(name, (kind, runs))| {
            (
                name.as_str(),
                PipelineUnit {
                    kind: *kind,
                    runs: *runs,
                },
            )
        })
        .collect()
}

/// A stack as a product of the report.
fn product<'a>(r: &'a Resolution, lock: &'a serde_json::Value, kept: bool) -> Product<'a> {
    let not_taken = |(version, reason): &'a (String, String)| NotTaken { version, reason };
    Product {
        lock,
        score: r.score,
        justification: &r.justification,
        packages: r
            .packages
            .iter()
            .map(|p| {
                let package = Package {
                    version: p.version.to_string(),
                    default: p.default,
                    develop: p.develop,
                    via: &p.via,
                    newer_rejected: p.newer_rejected.iter().map(not_taken).collect(),
                    held_back: p.held_back.as_ref().map(not_taken),
                    score: p.score,
                };
                (p.name.as_str(), package)
            })
            .collect(),
        skipped: &r.skipped,
        existing_lock_kept: kept,
    }
}

impl<'a> Report<'a> {
    /// The report of a run that found a stack.
    pub fn success(
        s: &'a AdviseSettings,
        advice: &'a Advice,
        snapshot: Option<Snapshot<'a>>,
        knowledge: &'a LiveReport,
        seconds: f64,
    ) -> Self {
        let r = &advice.resolution;
        let statistics = &r.statistics;
        Self {
            inputs: Inputs::of(s),
            snapshot,
            knowledge_base: knowledge,
            products: std::iter::once(product(r, &advice.pipfile_lock, advice.kept_lock))
                .chain(advice.others.iter().map(|(o, l)| product(o, l, false)))
                .collect(),
            stack_info: r.stack_info.clone(),
            pipeline: Some(pipeline(&r.pipeline)),
            statistics: Statistics {
                search: Some(SearchStatistics {
                    predictor: &statistics.predictor,
                    episodes: statistics.episodes,
                    accepted: statistics.accepted,
                    distinct_stacks: statistics.distinct,
                    found_in_episode: statistics.found_in_episode,
                    polish_episodes: statistics.polish_episodes,
                    search_seconds: statistics.seconds,
                    search: &statistics.search,
                    projects_loaded: statistics.projects_loaded,
                    units_included: statistics.units_included,
                }),
                seconds,
            },
            output: Some(s.output.display().to_string()),
            error: false,
            failure: None,
        }
    }

    /// The report of a run that failed with `e` (`message` with its hint):
    /// the error is the stack's one piece of information, followed by the
    /// explanation's when no stack exists.
    pub fn failure(
        s: &'a AdviseSettings,
        e: &'a AdviseError,
        message: &'a str,
        snapshot: Option<Snapshot<'a>>,
        knowledge: &'a LiveReport,
        seconds: f64,
    ) -> Self {
        let explanation = match e {
            AdviseError::Resolve(ResolveError::NoSolution(x)) => Some(x),
            _ => None,
        };
        let error = Message {
            kind: MessageType::Error,
            message: message.to_string(),
            link: Vec::new(),
            package_name: None,
            extra: BTreeMap::new(),
        };
        Self {
            inputs: Inputs::of(s),
            snapshot,
            knowledge_base: knowledge,
            products: Vec::new(),
            stack_info: std::iter::once(error)
                .chain(
                    explanation
                        .iter()
                        .flat_map(|x| x.stack_info.iter().cloned()),
                )
                .collect(),
            pipeline: explanation.map(|x| pipeline(&x.pipeline)),
            statistics: Statistics {
                search: None,
                seconds,
            },
            output: None,
            error: true,
            failure: Some(Failure {
                error_msg: message,
                explanation,
            }),
        }
    }

    /// The report as printed: pretty JSON with sorted keys.
    pub fn render(&self) -> Result<String, CliError> {
        super::json_text(self)
    }
}
