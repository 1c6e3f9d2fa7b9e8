//! Dependency Monkey: many distinct valid stacks of one project, for testing
//! an application against combinations of its dependencies. `all` starts
//! from the newest stack and hops one package at a time (ApproximatingLatest);
//! `random` samples random rays (RandomWalk). Prescriptions are selected for
//! the Dependency Monkey pipeline and the decision type.

use crate::advise::{AdviseError, Run, explore_roots, roots, rules};
use crate::kb::KnowledgeBase;
use crate::lock::{self, LockContext};
use crate::policy::DecisionType;
use crate::predict;
use crate::prescription::Prescriptions;
use crate::prescription::eval::Workflow;
use crate::resolve::{Budget, Resolution, ResolveError};
use crate::settings::AdviseSettings;

/// Episodes tried per stack asked for before giving up on finding more.
pub const ATTEMPTS_PER_STACK: u64 = 20;

/// Stacks Dependency Monkey produced.
pub struct Monkey {
    /// Distinct stacks in the order found, each with its Pipfile.lock object.
    pub stacks: Vec<(Resolution, serde_json::Value)>,
    /// Predictor used.
    pub predictor: String,
    /// Episodes run.
    pub episodes: u64,
}

/// Up to `count` distinct valid stacks for the settings' project.
pub fn dependency_monkey(
    s: &AdviseSettings,
    kb: &dyn KnowledgeBase,
    prescriptions: &Prescriptions,
    decision: DecisionType,
    count: u64,
) -> Result<Monkey, AdviseError> {
    let markers = &s.target.markers;
    let index_url = kb.meta().index_url.clone().unwrap_or_default();
    let mut search_rules = rules(s, kb, markers);
    // Scores do not pick stacks here, but every stack carries its own:
    // advisories count as under `stable` (a penalty and a warning each,
    // accepted ones warned about), and never remove a release.
    search_rules.security = crate::resolve::security::Security {
        penalty: Some(crate::resolve::security::PENALTY_PER_ADVISORY),
        sieve: false,
        allowed: search_rules.security.allowed.clone(),
    };
    let (facts, installed) = crate::advise::image::run_inputs(s);
    let run = Run {
        installed: &installed,
        workflow: Workflow::DependencyMonkey,
        decision_type: decision,
        image: facts.as_ref(),
        library_usage: s.library_usage.as_ref().map(|u| &u.usage),
        ..Run::adviser(
            &s.target,
            s.exclude_newer,
            s.recommendation_type.0,
            &s.labels,
        )
    };
    let kind = predict::auto(s.predictor, None, Some(decision));
    let mut predictor = predict::build(kind, s.seed, &predict::PredictorOptions::default());
    let count = count.max(1);
    let budget = Budget {
        limit: count.saturating_mul(ATTEMPTS_PER_STACK),
        count: usize::try_from(count).unwrap_or(usize::MAX),
        time: s.time_budget.map(std::time::Duration::from_secs_f64),
        distinct: Some(count),
        polish: false,
    };
    let found = explore_roots(
        kb,
        &run,
        roots(s),
        search_rules,
        prescriptions,
        predictor.as_mut(),
        &budget,
    )?;
    let lock_ctx = LockContext {
        project: &s.project,
        kb,
        index_url,
        dev: s.dev,
    };
    let episodes = found.products.first().map_or(0, |r| r.statistics.episodes);
    let mut stacks: Vec<(Resolution, serde_json::Value)> = Vec::new();
    for r in found.products {
        let lock = lock::pipfile_lock(&r, &lock_ctx)
            .map_err(|e| AdviseError::Resolve(ResolveError::Kb(e)))?;
        stacks.push((r, lock));
    }
    // Every stack scores the same here, so they come in discovery order.
    stacks.sort_by_key(|(r, _)| r.statistics.found_in_episode);
    Ok(Monkey {
        stacks,
        predictor: kind.to_string(),
        episodes,
    })
}
