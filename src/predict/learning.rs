//! Predictors that learn values per package version: temporal-difference
//! learning and Monte Carlo tree search.

use super::{Anchor, Prng, Temperature, neighbour, pick_index, prefer, uniform};
use crate::resolve::solver::Node;
use crate::resolve::{Episode, Phase, Policy, Predictor};

/// Running averages of returns per (package, release).
#[derive(Debug, Clone, Default)]
pub struct Values {
    table: crate::resolve::hash::FxHashMap<String, Vec<(f64, u32)>>,
}

impl Values {
    /// Add return `g` to the average of `name` release `release`.
    pub fn add(&mut self, name: &str, release: usize, g: f64) {
        let row = match self.table.get_mut(name) {
            Some(r) => r,
            None => self.table.entry(name.to_string()).or_default(),
        };
        if row.len() <= release {
            row.resize(release + 1, (0.0, 0));
        }
        row[release].0 += g;
        row[release].1 += 1;
    }

    /// Average return and visits of `name` release `release`.
    pub fn get(&self, name: &str, release: usize) -> Option<(f64, u32)> {
        let &(sum, visits) = self.table.get(name)?.get(release)?;
        (visits > 0).then(|| (sum / f64::from(visits), visits))
    }

    /// Visits of all releases of `name`.
    pub fn visits(&self, name: &str) -> u32 {
        self.table
            .get(name)
            .map_or(0, |row| row.iter().map(|(_, v)| v).sum())
    }

    /// The candidate with the highest average (ties: the earlier, i.e.
    /// newer); `None` when no candidate has been tried.
    pub fn best(&self, name: &str, candidates: &[usize]) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for &c in candidates {
            if let Some((mean, _)) = self.get(name, c)
                && best.is_none_or(|(_, b)| mean > b)
            {
                best = Some((c, mean));
            }
        }
        best.map(|(c, _)| c)
    }
}

/// Temporal-difference learning over package versions.
///
/// After each episode every action's value moves towards its `step`-step
/// return: the rewards of the next `step` actions plus the current value of
/// the action after them (or, with `trace`, the stack's whole score for
/// every action). Each episode explores with the annealing acceptance
/// probability `exp((s_last − s_best) / T)` — following the last stack with
/// one package moved, newer releases preferred — and otherwise exploits:
/// every package takes its best-valued release.
pub struct TemporalDifference {
    rng: Prng,
    temperature: Temperature,
    step: usize,
    trace: bool,
    /// Learned values.
    pub values: Values,
    last: Option<Episode>,
    best: Option<f64>,
    explore: bool,
    anchor: Anchor,
}

impl TemporalDifference {
    /// With coefficient `c`, `step` ≥ 1 and `trace`.
    pub fn new(rng: Prng, c: f64, step: usize, trace: bool) -> Self {
        Self {
            rng,
            temperature: Temperature::new(c),
            step: step.max(1),
            trace,
            values: Values::default(),
            last: None,
            best: None,
            explore: false,
            anchor: Anchor::default(),
        }
    }

    fn exploit(&mut self, name: &str, candidates: &mut Vec<usize>) {
        match self.values.best(name, candidates) {
            Some(r) => prefer(candidates, r),
            None => {
                let i = pick_index(&mut self.rng, candidates.len(), true);
                if i > 0 {
                    let r = candidates.remove(i);
                    candidates.insert(0, r);
                }
            }
        }
    }
}

impl Policy for TemporalDifference {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        if self.explore {
            self.anchor.order(&node.name, candidates);
        } else {
            self.exploit(&node.name, candidates);
        }
    }
}

impl Predictor for TemporalDifference {
    fn name(&self) -> &'static str {
        "temporal-difference"
    }

    fn begin(&mut self, phase: Phase) {
        self.temperature.advance(phase);
        let p = match (&self.last, self.best) {
            (Some(last), Some(best)) => self.temperature.acceptance(last.score, best),
            _ => 1.0,
        };
        self.explore = p > 0.0 && p >= uniform(&mut self.rng);
        if self.explore
            && let Some(last) = &self.last
        {
            self.anchor.follow(last);
            self.anchor.change = neighbour(&mut self.rng, last, true, &[]);
        }
    }

    fn learn(&mut self, episode: &Episode) {
        let n = episode.actions.len();
        for (t, a) in episode.actions.iter().enumerate() {
            let g = if self.trace {
                episode.score
            } else {
                let end = (t + self.step).min(n);
                let mut g: f64 = episode.actions[t..end].iter().map(|a| a.reward).sum();
                if end < n {
                    let next = &episode.actions[end];
                    g += self
                        .values
                        .get(&next.name, next.release)
                        .map_or(0.0, |v| v.0);
                }
                g
            };
            self.values.add(&a.name, a.release, g);
        }
        self.best = Some(self.best.map_or(episode.score, |b| b.max(episode.score)));
        self.last = Some(episode.clone());
    }
}

/// Episodes of heat-up (a tenth of the limit) before tree search proper.
pub const HEAT_UP: u64 = 10;

/// Monte Carlo tree search over package versions: after a TD heat-up, each
/// decision takes the release with the highest upper confidence bound
/// `mean + C·√(ln N / n)` on the scores of the stacks it was part of
/// (untried releases first), every stack's score being propagated back to
/// all of its versions. `C` shrinks with the temperature, which cools by
/// `T ← T · c^(accepted / limit)`; in the exploitation phase `C` is 0.
pub struct Mcts {
    td: TemporalDifference,
    temperature: Temperature,
    searching: bool,
    exploit: bool,
}

impl Mcts {
    /// With coefficient `c`.
    pub fn new(rng: Prng, c: f64) -> Self {
        Self {
            td: TemporalDifference::new(rng, c, 1, true),
            temperature: Temperature::new(c),
            searching: false,
            exploit: false,
        }
    }

    fn bound(&self, name: &str, release: usize, total: u32, weight: f64) -> f64 {
        match self.td.values.get(name, release) {
            None if self.exploit => f64::NEG_INFINITY,
            None => f64::INFINITY,
            Some((mean, n)) => mean + weight * (f64::from(total.max(1)).ln() / f64::from(n)).sqrt(),
        }
    }
}

impl Policy for Mcts {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        if !self.searching {
            self.td.order(node, candidates);
            return;
        }
        let total = self.td.values.visits(&node.name);
        let limit = self.temperature.value.max(0.0);
        let weight = if self.exploit || limit == 0.0 {
            0.0
        } else {
            std::f64::consts::SQRT_2
        };
        let mut best: Option<(usize, f64)> = None;
        for &c in candidates.iter() {
            let b = self.bound(&node.name, c, total, weight);
            if best.is_none_or(|(_, x)| b > x) {
                best = Some((c, b));
            }
        }
        if let Some((c, b)) = best
            && b > f64::NEG_INFINITY
        {
            prefer(candidates, c);
        }
    }
}

impl Predictor for Mcts {
    fn name(&self) -> &'static str {
        "mcts"
    }

    fn begin(&mut self, phase: Phase) {
        let heat_up = (phase.limit / HEAT_UP).max(1);
        self.searching = phase.episode >= heat_up;
        self.exploit = phase.exploit;
        if phase.episode == 0 {
            self.temperature.value = phase.limit.max(1) as f64;
        } else {
            let k = phase.accepted as f64 / phase.limit.max(1) as f64;
            self.temperature.value *= self.temperature.coefficient.powf(k);
        }
        if phase.exploit {
            self.temperature.value = 0.0;
        }
        if !self.searching {
            self.td.begin(phase);
        }
    }

    fn learn(&mut self, episode: &Episode) {
        self.td.learn(episode);
    }
}
