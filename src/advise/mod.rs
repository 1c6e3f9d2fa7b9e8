//! One `advise` run from validated settings: the target environment becomes
//! a candidate query and marker environment, the project's requirements
//! become root requirements, the prescriptions become the run's pipeline,
//! and the resolution becomes a lock in the requested format.

pub mod image;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::environment::{Target, TargetEnvironment};
use crate::kb::{CandidateQuery, KnowledgeBase};
use crate::lock::{self, LockContext};
use crate::policy::{DecisionType, OutputFormat, PredictorKind, RecommendationType};
use crate::predict;
use crate::prescription::Prescriptions;
use crate::prescription::eval::{Context, ImageFacts, Workflow};
use crate::prescription::schema::{Message, MessageType};
use crate::resolve::{
    self, Budget, Exploration, NewestFirst, Pipeline, Predictor, Request, Resolution, ResolveError,
    RootRequirement, SearchRules, Universe,
};
use crate::settings::AdviseSettings;

/// What an `advise` run produced.
pub struct Advice {
    /// The resolved stack.
    pub resolution: Resolution,
    /// The Pipfile.lock object (reported in every format).
    pub pipfile_lock: serde_json::Value,
    /// The lock in the requested format, as written to disk.
    pub rendered: String,
    /// The existing lock was scored and kept.
    pub kept_lock: bool,
    /// Further stacks (with `--count` > 1), best first, each with its
    /// Pipfile.lock object.
    pub others: Vec<(Resolution, serde_json::Value)>,
}

/// Score the project's existing lock: resolve with every locked package
/// pinned to its locked version. `None` when there is no lock, its hash is
/// stale, or its pins do not form a valid stack any more.
fn score_existing_lock(
    s: &AdviseSettings,
    kb: &dyn KnowledgeBase,
    prescriptions: &Prescriptions,
    run: &Run,
    rules: &SearchRules,
) -> Option<Resolution> {
    let lock = s.project.lock.as_ref()?;
    let default = lock::default_source(kb.meta().index_url.as_deref().unwrap_or(""));
    if lock.hash.as_deref() != Some(lock::project_hash(&s.project, &default).as_str()) {
        tracing::warn!("the existing lock is out of date with the project; it is not scored");
        return None;
    }
    let mut pinned = rules.clone();
    let sections = if s.dev {
        vec![&lock.default, &lock.develop]
    } else {
        vec![&lock.default]
    };
    for section in sections {
        for (name, p) in section {
            let spec = crate::python::parse_specifiers(&format!("=={}", p.version)).ok()?;
            pinned
                .constraints
                .entry(name.clone())
                .or_default()
                .push((spec, format!("{name}=={} (existing lock)", p.version)));
        }
    }
    match resolve_roots(kb, run, roots(s), pinned, prescriptions) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!("the existing lock is not a valid stack any more: {e}");
            None
        }
    }
}

/// Why `advise` produced no lock.
#[derive(Debug, thiserror::Error)]
pub enum AdviseError {
    /// The settings cannot describe a target (bad Python version …).
    #[error("{0}")]
    Target(String),
    /// Resolution failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// The wheel target and Requires-Python query for `env` (parsed here;
/// a run parses its target once, into [`Target`]).
pub fn candidate_query(
    env: &TargetEnvironment,
    exclude_newer: Option<crate::time::Timestamp>,
) -> Result<CandidateQuery, AdviseError> {
    let target = Target::new(env.clone()).map_err(|e| AdviseError::Target(e.to_string()))?;
    Ok(target.query(exclude_newer))
}

/// The project's requirements (and dev requirements with `--dev`).
pub fn roots(s: &AdviseSettings) -> Vec<RootRequirement> {
    let p = &s.project;
    let dev: &[crate::input::DeclaredRequirement] = if s.dev { &p.dev_requirements } else { &[] };
    p.requirements
        .iter()
        .map(|r| (r, false))
        .chain(dev.iter().map(|r| (r, true)))
        .map(|(r, develop)| RootRequirement::from_requirement(&r.requirement, develop))
        .collect()
}

/// Search rules from the settings: pre-releases, constraints (those whose
/// marker holds on the target, plus the base image's packages), and the
/// snapshot's index.
pub fn rules(
    s: &AdviseSettings,
    kb: &dyn KnowledgeBase,
    markers: &crate::python::MarkerEnvironment,
) -> SearchRules {
    let index_url = kb.meta().index_url.as_deref().unwrap_or_default();
    let mut constraints: HashMap<String, Vec<_>> = HashMap::new();
    for c in s.constraints.iter().chain(&s.project.constraints) {
        let r = &c.requirement;
        if r.marker
            .as_ref()
            .is_some_and(|m| !m.tree.evaluate(markers, &[]))
        {
            continue;
        }
        constraints
            .entry(r.name.to_string())
            .or_default()
            .push((r.specifiers.clone(), r.to_string()));
    }
    let mut rules = SearchRules {
        allow_prereleases: s.project.allow_prereleases,
        prereleases_for: s
            .project
            .pipfile
            .as_ref()
            .map(|p| p.thoth.allow_prereleases.clone().into_iter().collect())
            .unwrap_or_default(),
        constraints,
        index_url: index_url.trim_end_matches('/').to_string(),
        security: resolve::security::Security::for_run(s.recommendation_type.0, &s.labels),
    };
    image::pin_image_packages(s, kb, &mut rules);
    rules
}

/// What a run is resolved for, beyond the requirements.
pub struct Run<'a> {
    /// The target, parsed.
    pub target: &'a Target,
    /// Upload-time cutoff.
    pub exclude_newer: Option<crate::time::Timestamp>,
    /// Recommendation type (selects prescriptions).
    pub recommendation_type: RecommendationType,
    /// Labels (select prescriptions).
    pub labels: &'a BTreeMap<String, String>,
    /// Adviser or Dependency Monkey (selects prescriptions).
    pub workflow: Workflow,
    /// Decision type (Dependency Monkey; selects prescriptions).
    pub decision_type: DecisionType,
    /// What the base image holds (selects prescriptions).
    pub image: Option<&'a ImageFacts>,
    /// Releases already installed where the stack goes, with their
    /// requirements as installed (see [`image::run_inputs`]).
    pub installed: &'a [crate::resolve::universe::InstalledRelease],
    /// What the project's code uses (selects prescriptions).
    pub library_usage: Option<&'a crate::usage::LibraryUsage>,
}

impl<'a> Run<'a> {
    /// An adviser run.
    pub fn adviser(
        target: &'a Target,
        exclude_newer: Option<crate::time::Timestamp>,
        recommendation_type: RecommendationType,
        labels: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            target,
            exclude_newer,
            recommendation_type,
            labels,
            workflow: Workflow::Adviser,
            decision_type: DecisionType::default(),
            image: None,
            installed: &[],
            library_usage: None,
        }
    }
}

/// Resolve `roots` for `run` against `kb`, with the units of `prescriptions`
/// that apply to the run, in one newest-first episode.
pub fn resolve_roots(
    kb: &dyn KnowledgeBase,
    run: &Run,
    roots: Vec<RootRequirement>,
    rules: SearchRules,
    prescriptions: &Prescriptions,
) -> Result<Resolution, AdviseError> {
    let mut found = explore_roots(
        kb,
        run,
        roots,
        rules,
        prescriptions,
        &mut NewestFirst,
        &Budget::single(),
    )?;
    Ok(found.products.remove(0))
}

/// Explore stacks for `roots` with `predictor` within `budget`.
pub fn explore_roots(
    kb: &dyn KnowledgeBase,
    run: &Run,
    roots: Vec<RootRequirement>,
    rules: SearchRules,
    prescriptions: &Prescriptions,
    predictor: &mut dyn Predictor,
    budget: &Budget,
) -> Result<Exploration, AdviseError> {
    let query = run.target.query(run.exclude_newer);
    let mut universe = Universe::new(kb, query, run.target.markers.clone());
    universe.set_installed(run.installed);
    explore_in(
        &mut universe,
        run,
        roots,
        rules,
        prescriptions,
        predictor,
        budget,
    )
}

/// [`explore_roots`] over an existing view of the knowledge base (whose
/// target must be `run`'s), reusing the projects it has loaded.
pub fn explore_in(
    universe: &mut Universe<'_>,
    run: &Run,
    roots: Vec<RootRequirement>,
    rules: SearchRules,
    prescriptions: &Prescriptions,
    predictor: &mut dyn Predictor,
    budget: &Budget,
) -> Result<Exploration, AdviseError> {
    let included = BTreeSet::new();
    let ctx = Context {
        workflow: run.workflow,
        recommendation_type: run.recommendation_type,
        decision_type: run.decision_type,
        labels: run.labels,
        target: run.target,
        authenticated: false,
        library_usage: run.library_usage,
        image: run.image,
        included: &included,
    };
    let pipeline = Pipeline::new(prescriptions, &ctx);
    let request = Request {
        roots,
        rules,
        pipeline,
    };
    Ok(resolve::explore(universe, request, predictor, budget)?)
}

/// The predictor and budget of an `advise` run. `latest` with the AUTO
/// predictor is one newest-first episode, the stack pip or uv would pick.
pub fn search_plan(s: &AdviseSettings) -> (Box<dyn Predictor>, Budget) {
    let kind = predict::auto(s.predictor, Some(s.recommendation_type.0), None);
    let single =
        s.predictor == PredictorKind::Auto && s.recommendation_type.0 == RecommendationType::Latest;
    let budget = Budget {
        limit: if single { 1 } else { s.limit.max(1) },
        count: usize::try_from(s.count.max(1)).unwrap_or(usize::MAX),
        time: s.time_budget.map(std::time::Duration::from_secs_f64),
        distinct: None,
        polish: !single,
    };
    (
        predict::build(kind, s.seed, &predict::PredictorOptions::default()),
        budget,
    )
}

/// The lock in the format asked for (`pipfile_lock` is already built).
fn render(
    s: &AdviseSettings,
    resolution: &Resolution,
    lock_ctx: &LockContext<'_>,
    pipfile_lock: &serde_json::Value,
) -> Result<String, AdviseError> {
    let kb_err = |e: crate::kb::KbError| AdviseError::Resolve(ResolveError::Kb(e));
    match s.format {
        OutputFormat::PipfileLock => Ok(lock::render_pipfile_lock(pipfile_lock)),
        OutputFormat::Requirements => lock::requirements_txt(resolution, lock_ctx).map_err(kb_err),
        OutputFormat::Pylock => {
            let (sys_platform, _, machine, _) =
                crate::environment::target::marker_parts(&s.target.wheels.platform);
            let (python, requires_python) = s.target.environment.python_bounds();
            let marker = format!(
                "sys_platform == '{sys_platform}' and platform_machine == '{machine}' and {python}"
            );
            lock::pylock(resolution, lock_ctx, &marker, Some(&requires_python)).map_err(kb_err)
        }
    }
}

/// Resolve the settings' project against `kb` with `prescriptions`, and
/// render the lock in the requested format.
pub fn advise(
    s: &AdviseSettings,
    kb: &dyn KnowledgeBase,
    prescriptions: &Prescriptions,
) -> Result<Advice, AdviseError> {
    let markers = &s.target.markers;
    let index_url = kb.meta().index_url.clone().unwrap_or_default();
    let (facts, installed) = crate::advise::image::run_inputs(s);
    let run = Run {
        installed: &installed,
        image: facts.as_ref(),
        library_usage: s.library_usage.as_ref().map(|u| &u.usage),
        ..Run::adviser(
            &s.target,
            s.exclude_newer,
            s.recommendation_type.0,
            &s.labels,
        )
    };
    let rules = rules(s, kb, markers);
    let existing = if s.keep_lock {
        score_existing_lock(s, kb, prescriptions, &run, &rules)
    } else {
        None
    };
    let (mut predictor, budget) = search_plan(s);
    let fresh = explore_roots(
        kb,
        &run,
        roots(s),
        rules,
        prescriptions,
        predictor.as_mut(),
        &budget,
    )
    .map(|e| e.products);
    // The existing lock goes first and wins ties: another stack replaces it
    // only when it scores strictly higher.
    let (mut resolution, others, kept_lock) = match (existing, fresh) {
        (Some(old), Ok(new)) if new.first().is_none_or(|n| n.score <= old.score) => {
            (old, new, true)
        }
        (Some(old), Err(_)) => (old, Vec::new(), true),
        (_, fresh) => {
            let mut products = fresh?.into_iter();
            let first = products
                .next()
                .ok_or_else(|| AdviseError::Target("the exploration kept no stack".to_string()))?;
            (first, products.collect(), false)
        }
    };
    image::note_image_packages(s, kb, &mut resolution);
    if kept_lock {
        resolution.justification.insert(
            0,
            Message {
                kind: MessageType::Info,
                message:
                    "The existing lock was scored first and no stack scores higher; it is kept"
                        .into(),
                link: Vec::new(),
                package_name: None,
                extra: BTreeMap::new(),
            },
        );
    }
    let lock_ctx = LockContext {
        project: &s.project,
        kb,
        index_url: index_url.clone(),
        dev: s.dev,
    };
    let kb_err = |e: crate::kb::KbError| AdviseError::Resolve(ResolveError::Kb(e));
    let pipfile_lock = lock::pipfile_lock(&resolution, &lock_ctx).map_err(kb_err)?;
    let rendered = render(s, &resolution, &lock_ctx, &pipfile_lock)?;
    let others = others
        .into_iter()
        .map(|r| {
            let lock = lock::pipfile_lock(&r, &lock_ctx).map_err(kb_err)?;
            Ok((r, lock))
        })
        .collect::<Result<Vec<_>, AdviseError>>()?;
    Ok(Advice {
        resolution,
        pipfile_lock,
        rendered,
        kept_lock,
        others,
    })
}
