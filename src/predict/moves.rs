//! Predictors that move between stacks: each episode follows a stack found
//! earlier with one package changed (hill climbing, annealing, sampling,
//! latest with hops), or walks a fresh random ray (random walk).

use rand::RngExt;

use super::{Anchor, Prng, Temperature, neighbour, pick_index, uniform};
use crate::resolve::solver::Node;
use crate::resolve::{Episode, Phase, Policy, Predictor};

/// Newest first; later episodes hop: one package (prioritised ones first)
/// moves to an older release, picked termial-randomly.
pub struct ApproximatingLatest {
    rng: Prng,
    prioritized: Vec<String>,
    first: Option<Episode>,
    anchor: Anchor,
}

impl ApproximatingLatest {
    /// With `prioritized` packages hopped first.
    pub fn new(rng: Prng, prioritized: Vec<String>) -> Self {
        Self {
            rng,
            prioritized,
            first: None,
            anchor: Anchor::default(),
        }
    }
}

impl Policy for ApproximatingLatest {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        // Only the hop is steered; everything else stays newest first.
        if let Some((n, r)) = &self.anchor.change
            && **n == *node.name
        {
            super::prefer(candidates, *r);
        }
    }
}

impl Predictor for ApproximatingLatest {
    fn name(&self) -> &'static str {
        "approximating-latest"
    }

    fn begin(&mut self, _phase: Phase) {
        self.anchor.change = self
            .first
            .as_ref()
            .and_then(|e| neighbour(&mut self.rng, e, true, &self.prioritized));
    }

    fn learn(&mut self, episode: &Episode) {
        if self.first.is_none() {
            self.first = Some(episode.clone());
        }
    }
}

/// Deterministic first-improvement hill climbing: from the newest stack,
/// try every one-package change in turn and move whenever the score rises;
/// finished at a local optimum.
#[derive(Default)]
pub struct HillClimbing {
    current: Option<Episode>,
    queue: std::collections::VecDeque<(std::rc::Rc<str>, usize)>,
    anchor: Anchor,
}

impl Policy for HillClimbing {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        self.anchor.order(&node.name, candidates);
    }
}

impl Predictor for HillClimbing {
    fn name(&self) -> &'static str {
        "hill-climbing"
    }

    fn begin(&mut self, _phase: Phase) {
        self.anchor.change = self.queue.pop_front();
    }

    fn learn(&mut self, episode: &Episode) {
        let better = self
            .current
            .as_ref()
            .is_none_or(|c| episode.score > c.score);
        if !better {
            return;
        }
        self.queue = episode
            .actions
            .iter()
            .flat_map(|a| {
                a.options
                    .iter()
                    .filter(move |&&o| o != a.release)
                    .map(move |&o| (a.name.clone(), o))
            })
            .collect();
        self.anchor.follow(episode);
        self.current = Some(episode.clone());
    }

    fn finished(&self) -> bool {
        self.current.is_some() && self.queue.is_empty() && self.anchor.change.is_none()
    }
}

/// Adaptive simulated annealing over stacks. Each episode follows the
/// current stack with one package moved (uniformly); the stack found becomes
/// current when it beats the best, or with probability
/// `exp((s − s_best) / T)` otherwise (else the best becomes current again).
/// `T` starts at the limit and cools by Thoth's schedule; in the final
/// exploitation phase it is 0, which leaves pure improvement moves.
pub struct AdaptiveSimulatedAnnealing {
    rng: Prng,
    temperature: Temperature,
    current: Option<Episode>,
    best: Option<Episode>,
    anchor: Anchor,
}

impl AdaptiveSimulatedAnnealing {
    /// With temperature coefficient `c`.
    pub fn new(rng: Prng, c: f64) -> Self {
        Self {
            rng,
            temperature: Temperature::new(c),
            current: None,
            best: None,
            anchor: Anchor::default(),
        }
    }

    /// The temperature now.
    pub fn temperature(&self) -> f64 {
        self.temperature.value
    }
}

impl Policy for AdaptiveSimulatedAnnealing {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        self.anchor.order(&node.name, candidates);
    }
}

impl Predictor for AdaptiveSimulatedAnnealing {
    fn name(&self) -> &'static str {
        "adaptive-simulated-annealing"
    }

    fn begin(&mut self, phase: Phase) {
        self.temperature.advance(phase);
        self.anchor.change = self
            .current
            .as_ref()
            .and_then(|e| neighbour(&mut self.rng, e, false, &[]));
    }

    fn learn(&mut self, episode: &Episode) {
        let top = self.best.as_ref().map(|b| b.score);
        let next = match top {
            None => {
                self.best = Some(episode.clone());
                episode
            }
            Some(top) if episode.score > top => {
                self.best = Some(episode.clone());
                episode
            }
            Some(top) => {
                let p = self.temperature.acceptance(episode.score, top);
                if p > 0.0 && p >= uniform(&mut self.rng) {
                    episode
                } else {
                    self.best.as_ref().expect("set above")
                }
            }
        };
        self.anchor.follow(next);
        self.current = Some(next.clone());
    }
}

/// Random rays: every decision takes a uniformly random candidate first
/// (or, with `prefer_recent`, Thoth's ε-termial pick); prioritised
/// packages are varied, others stay newest first, when any are given.
pub struct RandomWalk {
    rng: Prng,
    prioritized: Vec<String>,
    prefer_recent: bool,
}

impl RandomWalk {
    /// A walk varying `prioritized` packages (all when empty).
    pub fn new(rng: Prng, prioritized: Vec<String>, prefer_recent: bool) -> Self {
        Self {
            rng,
            prioritized,
            prefer_recent,
        }
    }
}

impl Policy for RandomWalk {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        if !self.prioritized.is_empty() && !self.prioritized.contains(&node.name) {
            return;
        }
        let i = pick_index(&mut self.rng, candidates.len(), self.prefer_recent);
        if i > 0 {
            let r = candidates.remove(i);
            candidates.insert(0, r);
        }
    }
}

impl Predictor for RandomWalk {
    fn name(&self) -> &'static str {
        "random-walk"
    }
}

/// Sampling around what is known: each episode starts from a uniformly
/// chosen stack found earlier and moves one package uniformly.
pub struct Sampling {
    rng: Prng,
    seen: Vec<Episode>,
    anchor: Anchor,
}

/// Stacks kept for sampling.
const SAMPLES_KEPT: usize = 256;

impl Sampling {
    /// A sampler.
    pub fn new(rng: Prng) -> Self {
        Self {
            rng,
            seen: Vec::new(),
            anchor: Anchor::default(),
        }
    }
}

impl Policy for Sampling {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        self.anchor.order(&node.name, candidates);
    }
}

impl Predictor for Sampling {
    fn name(&self) -> &'static str {
        "sampling"
    }

    fn begin(&mut self, _phase: Phase) {
        if self.seen.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.seen.len());
        let base = &self.seen[i];
        self.anchor.follow(base);
        self.anchor.change = neighbour(&mut self.rng, base, false, &[]);
    }

    fn learn(&mut self, episode: &Episode) {
        if self.seen.len() < SAMPLES_KEPT {
            self.seen.push(episode.clone());
        } else {
            let i = self.rng.random_range(0..SAMPLES_KEPT);
            self.seen[i] = episode.clone();
        }
    }
}
