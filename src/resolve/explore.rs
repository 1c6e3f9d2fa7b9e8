//! A series of complete search episodes steered by a predictor. The first
//! episode is newest-first; each later one starts again from the project's
//! requirements with the predictor's ordering, and the predictor learns from
//! every stack found. The best `count` distinct stacks are kept (ties go to
//! the earlier one) and get the wraps.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::polish::{self, Kept, Reference};
use super::solver::{Outcome, Solver};
use super::universe::Availability;
use super::{
    Edge, NewestFirst, Phase, Predictor, Refusal, Request, Resolution, ResolveError, Statistics,
    Universe, explain,
};
use crate::prescription::schema::{Message, MessageType};

/// How much exploring a run may do.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Stacks to accept (episodes that found one) before stopping.
    pub limit: u64,
    /// Distinct stacks to report, best first.
    pub count: usize,
    /// Wall-clock budget.
    pub time: Option<Duration>,
    /// Stop once this many distinct stacks were found.
    pub distinct: Option<u64>,
    /// End with the polish pass (`polish`): the best stack moved back
    /// towards the newest-first one while the score allows. Off for
    /// Dependency Monkey, which reports the stacks as found.
    pub polish: bool,
}

impl Budget {
    /// One episode, one stack.
    pub fn single() -> Self {
        Self {
            limit: 1,
            count: 1,
            time: None,
            distinct: None,
            polish: false,
        }
    }
}

/// What an exploration found.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// Up to `count` distinct stacks, best first.
    pub products: Vec<Resolution>,
}

fn stack_key(episode: &super::Episode) -> u64 {
    let mut pairs: Vec<(&str, usize)> = episode
        .actions
        .iter()
        .map(|a| (&*a.name, a.release))
        .collect();
    pairs.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    pairs.hash(&mut h);
    h.finish()
}

/// What the episodes of an exploration left.
struct Episodes {
    /// Up to `count` distinct stacks, best first.
    kept: Vec<Kept>,
    /// Release per package of the first (newest-first) stack.
    reference: Reference,
    /// Episodes run, stacks accepted, distinct stacks.
    episodes: u64,
    accepted: u64,
    distinct: u64,
}

/// Explore `request` against `universe` with `predictor` within `budget`.
pub fn explore(
    universe: &mut Universe<'_>,
    mut request: Request<'_>,
    predictor: &mut dyn Predictor,
    budget: &Budget,
) -> Result<Exploration, ResolveError> {
    let started = Instant::now();
    let env = universe.markers().clone();
    let roots: Vec<&super::RootRequirement> = request
        .roots
        .iter()
        .filter(|r| r.marker.as_ref().is_none_or(|(m, _)| m.evaluate(&env, &[])))
        .collect();
    let mut direct: Vec<String> = roots.iter().map(|r| r.name.clone()).collect();
    direct.sort();
    direct.dedup();
    request
        .pipeline
        .boots(&direct)
        .map_err(ResolveError::Refused)?;
    supply(universe, &roots, &direct)?;
    let develop_of_root: Vec<bool> = roots.iter().map(|r| r.develop).collect();
    let root_edges: Rc<[Edge]> = roots
        .iter()
        .map(|r| Edge::new(&r.name, r.extras.clone(), r.spec.clone(), r.marker.clone()))
        .collect();
    let units_included = request.pipeline.included_count();
    let rules = request.rules;
    let mut pipeline = request.pipeline;
    let mut solver = Solver::new(universe, &mut pipeline, &rules);
    solver.add_roots(root_edges)?;
    let start = solver.mark();
    let mut found = episodes(
        &mut solver,
        start,
        &develop_of_root,
        predictor,
        budget,
        started,
    )?;
    let mut notes = std::collections::BTreeMap::new();
    let mut polish_episodes = 0;
    if budget.polish && !found.kept.is_empty() {
        let best = found.kept.remove(0);
        let done = polish::polish(&mut solver, start, &develop_of_root, &found.reference, best)?;
        polish_episodes = done.episodes;
        notes = done.notes;
        let key = stack_key(&done.best.episode);
        found.kept.retain(|k| stack_key(&k.episode) != key);
        found.kept.insert(0, done.best);
        found.kept.truncate(budget.count.max(1));
    }
    let counters = solver.counters.clone();
    drop(solver);
    let statistics = Statistics {
        predictor: predictor.name().to_string(),
        episodes: found.episodes,
        accepted: found.accepted,
        distinct: found.distinct,
        found_in_episode: 0,
        polish_episodes,
        seconds: started.elapsed().as_secs_f64(),
        search: counters,
        projects_loaded: universe.lookups,
        units_included,
    };
    let products = found
        .kept
        .into_iter()
        .map(|k| product(k, &mut pipeline, &notes, &statistics))
        .collect();
    Ok(Exploration { products })
}

/// Every direct requirement is asked for at once (a knowledge base that
/// fetches starts them all), then checked; all that cannot be had are
/// named together.
fn supply(
    universe: &mut Universe<'_>,
    roots: &[&super::RootRequirement],
    direct: &[String],
) -> Result<(), ResolveError> {
    let hints: Vec<crate::kb::Wanted> = roots
        .iter()
        .map(|r| crate::kb::Wanted {
            name: r.name.clone(),
            spec: r.spec.clone(),
            extras: r.extras.clone(),
        })
        .collect();
    universe.prefetch(&hints);
    let mut lacking = Vec::new();
    for name in direct {
        let view = universe.project(name)?;
        match &view.availability {
            Availability::Found(_) => {}
            Availability::Unavailable(reason) => lacking.push(format!("{name}: {reason}")),
            Availability::Missing => lacking.push(format!("{name}: not in the knowledge base")),
        }
    }
    if lacking.is_empty() {
        return Ok(());
    }
    Err(ResolveError::Unknown(format!(
        "the project requires {} the knowledge base cannot supply:\n  {}",
        if lacking.len() == 1 {
            "a project".to_string()
        } else {
            format!("{} projects", lacking.len())
        },
        lacking.join("\n  ")
    )))
}

/// Run episodes until the budget is spent or the predictor is done,
/// keeping the best `count` distinct stacks that pass the final check.
fn episodes(
    solver: &mut Solver,
    start: (usize, usize),
    develop_of_root: &[bool],
    predictor: &mut dyn Predictor,
    budget: &Budget,
    started: Instant,
) -> Result<Episodes, ResolveError> {
    let limit = budget.limit.max(1);
    let count = budget.count.max(1);
    let exploit_after = budget
        .time
        .map(|t| t.mul_f64(super::rules::EXPLOITATION_FROM));
    let mut best = Best {
        count,
        kept: Vec::new(),
        invalid: None,
    };
    let mut reference = Reference::default();
    let mut seen: HashSet<u64> = HashSet::new();
    let mut accepted: u64 = 0;
    let mut episodes: u64 = 0;
    while accepted < limit {
        if let Some(t) = budget.time
            && episodes > 0
            && started.elapsed() >= t
        {
            break;
        }
        let exploit = (accepted as f64) >= (limit as f64) * super::rules::EXPLOITATION_FROM
            || exploit_after.is_some_and(|t| started.elapsed() >= t);
        predictor.begin(Phase {
            episode: episodes,
            accepted,
            limit,
            exploit,
        });
        // The first episode is newest-first whatever the predictor.
        let outcome = if episodes == 0 {
            solver.run(&mut NewestFirst)?
        } else {
            solver.run(predictor)?
        };
        episodes += 1;
        match outcome {
            Outcome::Found => {}
            Outcome::Stopped if best.kept.is_empty() => {
                let stop = solver.pipeline.eager_stop.clone().unwrap_or(Refusal {
                    unit: String::new(),
                    message: String::new(),
                    culprits: Vec::new(),
                });
                return Err(ResolveError::Stopped(stop));
            }
            Outcome::NoSolution if best.kept.is_empty() => {
                return Err(ResolveError::NoSolution(explain(solver)));
            }
            Outcome::Stopped | Outcome::NoSolution => break,
        }
        accepted += 1;
        let episode = solver.episode();
        if reference.is_empty() {
            reference = polish::releases(&episode);
        }
        if seen.insert(stack_key(&episode)) {
            best.offer(solver, &episode, develop_of_root, &reference, episodes);
        }
        predictor.learn(&episode);
        // Only a stack that was kept (it passed the final check) ends the
        // search this way.
        let unbeatable = episodes == 1
            && one_stack(budget)
            && !best.kept.is_empty()
            && solver.cannot_be_beaten()?;
        solver.restart(start);
        if unbeatable
            || predictor.finished()
            || budget.distinct.is_some_and(|d| seen.len() as u64 >= d)
        {
            break;
        }
    }
    if best.kept.is_empty()
        && let Some(problems) = best.invalid
    {
        return Err(ResolveError::Invalid(problems));
    }
    Ok(Episodes {
        kept: best.kept,
        reference,
        episodes,
        accepted,
        distinct: seen.len() as u64,
    })
}

/// Only the best stack is asked for (so exploring stops once the first
/// cannot be beaten; see `solver/bound.rs`).
fn one_stack(budget: &Budget) -> bool {
    budget.count <= 1 && budget.distinct.is_none()
}

/// The best stacks an exploration keeps.
struct Best {
    /// How many to keep.
    count: usize,
    /// Up to `count` distinct stacks, best first.
    kept: Vec<Kept>,
    /// Problems of the first stack that failed the final check.
    invalid: Option<Vec<String>>,
}

impl Best {
    /// Keep the stack the solver just found (`episode`, episode `seq`) if
    /// it is among the best `count`: a higher score, or an equal one closer
    /// to the newest-first stack, then the earlier. A stack about to be
    /// kept is checked against its own releases' requirements: one that
    /// fails is a bug, never a lock.
    fn offer(
        &mut self,
        solver: &Solver,
        episode: &super::Episode,
        develop_of_root: &[bool],
        reference: &Reference,
        seq: u64,
    ) {
        let distance = polish::distance(episode, reference);
        let better = |k: &Kept| polish::better(episode.score, distance, k.score, k.distance);
        if self.kept.len() >= self.count && !self.kept.last().is_some_and(better) {
            return;
        }
        let problems = solver.verify();
        if !problems.is_empty() {
            tracing::error!(
                "a stack failed the final check and is not reported (a bug in thoth-rs): {}",
                problems.join("; ")
            );
            self.invalid.get_or_insert(problems);
            return;
        }
        let at = self.kept.iter().position(better).unwrap_or(self.kept.len());
        let kept = Kept::take(solver, develop_of_root, reference, seq, episode.clone());
        self.kept.insert(at, kept);
        self.kept.truncate(self.count);
    }
}

/// A kept stack as reported: the polish pass's reasons, the wraps'
/// justification (sorted, once each), the stack_info that concerns it and
/// the run's statistics.
fn product(
    k: Kept,
    pipeline: &mut super::Pipeline<'_>,
    notes: &std::collections::BTreeMap<(String, String), String>,
    statistics: &Statistics,
) -> Resolution {
    let mut r = k.resolution;
    polish::annotate(&mut r, notes);
    r.justification.extend(pipeline.wraps(&k.pinned));
    r.justification.sort_by(|a, b| {
        (
            a.package_name.as_deref().unwrap_or(""),
            a.kind as u8,
            &a.message,
        )
            .cmp(&(
                b.package_name.as_deref().unwrap_or(""),
                b.kind as u8,
                &b.message,
            ))
    });
    r.justification.dedup();
    r.stack_info = pipeline.stack_info_for(
        r.packages.iter().map(|p| (p.name.as_str(), &p.version)),
        r.skipped.keys().map(String::as_str),
    );
    r.stack_info.extend(held_back_warnings(&r.packages));
    r.pipeline = pipeline.ran.clone();
    r.statistics = Statistics {
        found_in_episode: k.seq,
        ..statistics.clone()
    };
    r
}

/// A warning for each direct dependency locked below the newest final
/// release its requirement admits, with the reason that release was not
/// taken.
fn held_back_warnings(packages: &[super::ResolvedPackage]) -> Vec<Message> {
    packages
        .iter()
        .filter_map(|p| {
            let (newer, why) = p.held_back.as_ref()?;
            Some(Message {
                kind: MessageType::Warning,
                message: format!(
                    "{} is locked at {}, not at {newer}, the newest release its requirement admits; {newer}: {why}",
                    p.name, p.version
                ),
                link: Vec::new(),
                package_name: Some(p.name.clone()),
                extra: std::collections::BTreeMap::new(),
            })
        })
        .collect()
}
