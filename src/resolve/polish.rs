//! The pass that ends an exploration: the best stack found is moved back
//! towards the newest-first stack one package at a time, and a move is kept
//! whenever the score allows it (higher, or equal with fewer and smaller
//! downgrades). Predictors that sample stacks leave packages older than
//! they need to be; this pass keeps only the downgrades the score asks for,
//! and records why each newer release it tried was not kept.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::hash::FxHashMap;
use super::rules::Anchor;
use super::solver::{Outcome, Solver};
use super::{Episode, Resolution, collect};
use crate::kb::KbError;
use crate::prescription::schema::MessageType;
use crate::resolve::pipeline::Pinned;

/// Scores closer than this are equal.
pub const SCORE_EPSILON: f64 = 1e-9;
/// Newer releases tried per package and pass.
const TRIES_PER_PACKAGE: usize = 4;
/// Polish episodes per exploration.
const MAX_EPISODES: u64 = 400;

/// Release per package of the newest-first stack.
pub type Reference = FxHashMap<Rc<str>, usize>;

/// The release per package of `episode`.
pub fn releases(episode: &Episode) -> Reference {
    episode
        .actions
        .iter()
        .map(|a| (a.name.clone(), a.release))
        .collect()
}

/// How far a stack is from the newest-first one: packages at another
/// release (or only in one of the two), then release steps down summed.
/// Smaller is closer.
pub fn distance(episode: &Episode, reference: &Reference) -> (usize, usize) {
    let mut changed = 0;
    let mut steps = 0;
    for a in &episode.actions {
        match reference.get(&a.name) {
            Some(&r) if r == a.release => {}
            Some(&r) => {
                changed += 1;
                steps += a.release.saturating_sub(r);
            }
            None => changed += 1,
        }
    }
    let missing = reference
        .keys()
        .filter(|n| !episode.actions.iter().any(|a| a.name == **n))
        .count();
    (changed + missing, steps)
}

/// Is a stack scoring `score` at `distance` better than one scoring
/// `other` at `other_distance`: a higher score, or an equal one closer to
/// the newest-first stack?
pub fn better(
    score: f64,
    distance: (usize, usize),
    other: f64,
    other_distance: (usize, usize),
) -> bool {
    score > other + SCORE_EPSILON || (score >= other - SCORE_EPSILON && distance < other_distance)
}

/// A stack kept by an exploration.
pub struct Kept {
    /// Total score.
    pub score: f64,
    /// Distance from the newest-first stack.
    pub distance: (usize, usize),
    /// Episode (from 1) that found it.
    pub seq: u64,
    /// The stack as predictors see it.
    pub episode: Episode,
    /// The stack as reported.
    pub resolution: Resolution,
    /// The stack as wraps see it.
    pub pinned: Vec<Pinned>,
}

impl Kept {
    /// The stack the solver just found (episode `seq`), whose
    /// [`Solver::episode`] is `episode`.
    pub fn take(
        solver: &Solver,
        develop_of_root: &[bool],
        reference: &Reference,
        seq: u64,
        episode: Episode,
    ) -> Self {
        Self {
            score: episode.score,
            distance: distance(&episode, reference),
            seq,
            resolution: collect(solver, develop_of_root),
            pinned: solver.pinned(),
            episode,
        }
    }
}

/// What the pass did.
pub struct Polished {
    /// The best stack after the pass.
    pub best: Kept,
    /// Episodes run.
    pub episodes: u64,
    /// Why each newer release tried in the last pass was not kept, by
    /// (package, version).
    pub notes: BTreeMap<(String, String), String>,
}

/// Move `best` towards `reference` package by package while the score
/// allows it. The solver is restarted from `start` for every try.
pub fn polish(
    solver: &mut Solver,
    start: (usize, usize),
    develop_of_root: &[bool],
    reference: &Reference,
    best: Kept,
) -> Result<Polished, KbError> {
    let mut best = best;
    let mut episodes = 0;
    loop {
        let mut notes = BTreeMap::new();
        let mut improved = false;
        let mut names: Vec<Rc<str>> = best
            .episode
            .actions
            .iter()
            .filter(|a| reference.get(&a.name).is_some_and(|&r| a.release > r))
            .map(|a| a.name.clone())
            .collect();
        names.sort();
        for name in names {
            let Some(action) = best.episode.actions.iter().find(|a| a.name == name) else {
                continue;
            };
            let mut anchor = Anchor {
                stack: releases(&best.episode),
                change: None,
            };
            let newer: Vec<usize> = action
                .options
                .iter()
                .copied()
                .filter(|&o| o < action.release)
                .take(TRIES_PER_PACKAGE)
                .collect();
            for target in newer {
                if episodes >= MAX_EPISODES {
                    return Ok(Polished {
                        best,
                        episodes,
                        notes,
                    });
                }
                episodes += 1;
                solver.restart(start);
                anchor.change = Some((name.clone(), target));
                let outcome = solver.run(&mut anchor)?;
                let node = solver.node_index(&name);
                let version = node
                    .and_then(|i| solver.nodes[i].view.as_ref())
                    .map(|v| v.version(target).to_string())
                    .unwrap_or_default();
                if outcome != Outcome::Found {
                    notes.insert(
                        (name.to_string(), version),
                        "no stack with it was found".into(),
                    );
                    continue;
                }
                let trial = solver.episode();
                let got = trial
                    .actions
                    .iter()
                    .find(|a| a.name == name)
                    .map(|a| a.release);
                if got != Some(target) {
                    let why = node
                        .and_then(|i| solver.nodes[i].decision.as_ref())
                        .and_then(|d| d.passed_over.iter().find(|(r, _)| *r == target))
                        .map_or_else(
                            || "no stack with it was found".to_string(),
                            |(_, why)| format!("tried: {why}"),
                        );
                    notes.insert((name.to_string(), version), why);
                    continue;
                }
                let d = distance(&trial, reference);
                if better(trial.score, d, best.score, best.distance) && solver.verify().is_empty() {
                    best = Kept::take(solver, develop_of_root, reference, best.seq, trial);
                    improved = true;
                    break;
                }
                notes.insert(
                    (name.to_string(), version),
                    why_lower(solver, &best, &trial),
                );
            }
        }
        if !improved {
            return Ok(Polished {
                best,
                episodes,
                notes,
            });
        }
    }
}

/// Why the stack just found (`trial`) does not replace `best`: its lower
/// score with the warnings of the packages that lost it, or its distance.
fn why_lower(solver: &Solver, best: &Kept, trial: &Episode) -> String {
    let loss = best.score - trial.score;
    if loss <= SCORE_EPSILON {
        return "a stack with it scores the same but changes more packages".to_string();
    }
    let before: FxHashMap<&str, (usize, f64)> = best
        .episode
        .actions
        .iter()
        .map(|a| (&*a.name, (a.release, a.reward)))
        .collect();
    let mut causes = Vec::new();
    for node in &solver.nodes {
        let Some(d) = &node.decision else { continue };
        let (Some(rel), Some(view)) = (d.release(), node.view.as_ref()) else {
            continue;
        };
        let lost = match before.get(node.name.as_str()) {
            Some(&(r, reward)) => r != rel && d.score < reward - SCORE_EPSILON,
            None => d.score < -SCORE_EPSILON,
        };
        if !lost {
            continue;
        }
        let version = view.version(rel);
        let said: Vec<String> = d
            .justification
            .iter()
            .filter(|m| matches!(m.kind, MessageType::Warning | MessageType::Error))
            .map(|m| match m.extra.get("advisory") {
                Some(id) => format!("{} {version} has the advisory {id}", node.name),
                None => m.message.clone(),
            })
            .collect();
        if said.is_empty() {
            causes.push(format!("{} {version} scores {:+.2}", node.name, d.score));
        } else {
            causes.extend(said);
        }
    }
    // Packages whose score the stack with it does without.
    for p in &best.resolution.packages {
        let gone = solver
            .node_index(&p.name)
            .and_then(|i| solver.nodes[i].decision.as_ref())
            .and_then(super::solver::Decision::release)
            .is_none();
        if gone && p.score > SCORE_EPSILON {
            let why = p
                .justification
                .first()
                .map(|m| format!(": {}", m.message))
                .unwrap_or_default();
            causes.push(format!(
                "without {} {} ({:+.2}{why})",
                p.name, p.version, p.score
            ));
        }
    }
    if causes.is_empty() {
        format!("a stack with it scores {loss:.2} lower")
    } else {
        format!(
            "a stack with it scores {loss:.2} lower: {}",
            causes.join("; ")
        )
    }
}

/// Replace "not tried" reasons of `resolution` with what the pass found.
pub fn annotate(resolution: &mut Resolution, notes: &BTreeMap<(String, String), String>) {
    let untried = |why: &str| why.starts_with(super::NOT_TRIED);
    for p in &mut resolution.packages {
        for (version, why) in p.newer_rejected.iter_mut().chain(p.held_back.iter_mut()) {
            if untried(why)
                && let Some(note) = notes.get(&(p.name.clone(), version.clone()))
            {
                why.clone_from(note);
            }
        }
    }
}
