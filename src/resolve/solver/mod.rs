//! One complete search episode: depth-first backtracking over packages and
//! their candidate versions with conflict-directed backjumping.
//!
//! Every failure returns the set of earlier decisions that caused it (the
//! packages that require the failed one, whose requirements excluded
//! versions, whose pinned versions clashed, or whose presence made a unit
//! refuse). A level whose decision is not in that set cannot help, so the
//! search jumps over it; a level whose decision is in it tries its next
//! version. Nothing is pruned without such a reason, so an episode either
//! finds a stack or proves that none exists.

use std::rc::Rc;

mod candidates;
mod decide;
mod record;

pub use super::conflict::{Bits, Exclusion, Failure};
use super::pipeline::{Pinned, Pipeline, StepOutcome};
pub use super::rules::{Action, Episode, NewestFirst, Phase, Policy, Predictor, SearchRules};
use super::universe::{Edge, ProjectView, ReleaseDeps, Universe};
use crate::kb::KbError;
use crate::prescription::schema::Message;
use crate::python::{ExtraName, Version};

/// Conflicts with earlier decisions after which a package is decided
/// before them (uv uses the same number).
pub const CONFLICT_THRESHOLD: usize = 5;

/// Releases of one package asked for ahead when the search walks down its
/// versions.
const PREFETCH_AHEAD: usize = 8;

/// An edge as a prefetch hint.
fn wanted(edge: &Edge) -> crate::kb::Wanted {
    crate::kb::Wanted {
        name: edge.name.clone(),
        spec: edge.spec.clone(),
        extras: edge.extras.clone(),
    }
}

/// One requirement on a node: edge `index` of `edges`, from a decided node
/// (or the project when `from` is `None`).
#[derive(Debug, Clone)]
pub struct Req {
    /// Requiring node.
    pub from: Option<usize>,
    /// Edges of the requiring release.
    pub edges: Rc<[Edge]>,
    /// Which edge.
    pub index: usize,
    /// Search level that added it.
    pub level: usize,
}

impl Req {
    /// The edge.
    pub fn edge(&self) -> &Edge {
        &self.edges[self.index]
    }
}

/// A decided node.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Release index, or `None` when a unit left the package out.
    pub release: Option<usize>,
    /// Level of the decision.
    pub level: usize,
    /// Extras whose dependencies were added.
    pub extras: Vec<ExtraName>,
    /// Score of the action.
    pub score: f64,
    /// Justification from the steps.
    pub justification: Vec<Message>,
    /// Unit that left the package out, when skipped.
    pub skipped_by: Option<String>,
    /// Pseudonym that replaced the package: (unit, alternative requirement).
    pub replaced_by: Option<(String, String)>,
    /// The candidates the package had when decided, newest first.
    pub options: Rc<[usize]>,
    /// Releases tried before this decision at this level, with why each
    /// failed (true of the final stack: the decisions before this one
    /// stay as they were when it was taken). A candidate newer than the
    /// release decided and not listed here was ordered after it.
    pub passed_over: Vec<(usize, String)>,
}

/// One package name in the search.
#[derive(Debug, Clone)]
pub struct Node {
    /// Normalised name.
    pub name: String,
    /// The same name, shared cheaply with predictors.
    pub key: Rc<str>,
    /// 0: pinned exactly by the project, 1: required by the project,
    /// 2: only by other packages (the order [`Solver::pick`] decides in).
    pub priority: u8,
    /// The project, loaded when first needed.
    pub view: Option<Rc<ProjectView>>,
    /// Requirements on it.
    pub reqs: Vec<Req>,
    /// Discovery stamp (order in which names became required).
    pub seq: usize,
    /// The decision, when decided.
    pub decision: Option<Decision>,
    /// Sieve verdict per release (`Some(unit)` = removed).
    pub sieved: Option<Rc<Vec<Option<String>>>>,
    /// Constraint excluding each release (empty: no constraint on the name).
    pub constrained: Vec<Option<String>>,
    /// Security sieve verdict per release (`Some(ids)` = removed).
    pub vulnerable: Option<Rc<Vec<Option<String>>>>,
    /// `sieve.SkipPackage` verdict.
    pub skip: Option<Option<String>>,
    /// Times the search ran out of versions for it.
    pub failures: usize,
    /// Times one of its versions conflicted with a package decided before
    /// it.
    pub conflicts: usize,
    /// Decided before the packages it kept conflicting with (see
    /// [`CONFLICT_THRESHOLD`]).
    pub boosted: bool,
    /// Why it last ran out of versions.
    pub last_failure: Option<Failure>,
}

enum Undo {
    Req(usize),
    Decision(usize),
    Extras(usize, usize),
}

/// Counters of one search.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    /// Decisions taken.
    pub decisions: usize,
    /// Times a version was abandoned.
    pub backtracks: usize,
    /// Levels jumped over by backjumping.
    pub backjumps: usize,
    /// Actions refused by units.
    pub refused: usize,
    /// Complete stacks discarded by strides.
    pub discarded: usize,
}

/// The search state of one episode.
pub struct Solver<'u, 'k, 'p> {
    pub(crate) universe: &'u mut Universe<'k>,
    pub(crate) pipeline: &'u mut Pipeline<'p>,
    rules: &'u SearchRules,
    /// Nodes by id.
    pub nodes: Vec<Node>,
    ids: super::hash::FxHashMap<String, usize>,
    trail: Vec<Undo>,
    next_seq: usize,
    /// Counters.
    pub counters: Counters,
    /// Set when a unit stopped the pipeline.
    pub stopped: bool,
    /// Candidates of the package being decided (recorded in its decision).
    options: Rc<[usize]>,
    /// A level to decide again, a boosted package first (set while the
    /// search unwinds to it).
    reorder: Option<usize>,
    /// The first failure below the decision being tried, in words (the
    /// reason a release that led to it was passed over).
    exhausted: Option<String>,
}

/// How an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All required packages decided.
    Found,
    /// No stack exists.
    NoSolution,
    /// A unit stopped the pipeline.
    Stopped,
}

impl<'u, 'k, 'p> Solver<'u, 'k, 'p> {
    /// A solver over `universe`, with the run's units and rules.
    pub fn new(
        universe: &'u mut Universe<'k>,
        pipeline: &'u mut Pipeline<'p>,
        rules: &'u SearchRules,
    ) -> Self {
        Self {
            universe,
            pipeline,
            rules,
            nodes: Vec::new(),
            ids: super::hash::FxHashMap::default(),
            trail: Vec::new(),
            next_seq: 0,
            counters: Counters::default(),
            stopped: false,
            options: Rc::from(Vec::new()),
            reorder: None,
            exhausted: None,
        }
    }

    /// Id of `name`, creating the node.
    pub fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            name: name.to_string(),
            key: Rc::from(name),
            priority: 2,
            view: None,
            reqs: Vec::new(),
            seq: 0,
            decision: None,
            sieved: None,
            constrained: Vec::new(),
            vulnerable: None,
            skip: None,
            failures: 0,
            conflicts: 0,
            boosted: false,
            last_failure: None,
        });
        self.ids.insert(name.to_string(), i);
        i
    }

    /// Add the project's own requirements (level 0).
    pub fn add_roots(&mut self, roots: Rc<[Edge]>) -> Result<(), KbError> {
        let wanted: Vec<crate::kb::Wanted> = roots.iter().map(wanted).collect();
        self.universe.prefetch(&wanted);
        for index in 0..roots.len() {
            let t = self.intern(&roots[index].name);
            let rank = if roots[index].exact { 0 } else { 1 };
            self.nodes[t].priority = self.nodes[t].priority.min(rank);
            let req = Req {
                from: None,
                edges: roots.clone(),
                index,
                level: 0,
            };
            // Nothing is decided yet, so adding cannot conflict.
            let _ = self.add_req(t, req)?;
        }
        Ok(())
    }

    fn view(&mut self, i: usize) -> Result<Rc<ProjectView>, KbError> {
        if let Some(v) = &self.nodes[i].view {
            return Ok(v.clone());
        }
        let v = self.universe.project(&self.nodes[i].name)?;
        self.nodes[i].view = Some(v.clone());
        Ok(v)
    }

    /// The node of package `name`, once the search has met it.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.ids.get(name).copied()
    }

    /// Version decided for node `i`, if any.
    pub fn decided_version(&self, i: usize) -> Option<&Version> {
        let d = self.nodes[i].decision.as_ref()?;
        let r = d.release?;
        Some(self.nodes[i].view.as_ref()?.version(r))
    }

    fn undo_to(&mut self, mark: usize) {
        while self.trail.len() > mark {
            match self.trail.pop().expect("length checked") {
                Undo::Req(t) => {
                    self.nodes[t].reqs.pop();
                }
                Undo::Decision(t) => self.nodes[t].decision = None,
                Undo::Extras(t, len) => {
                    if let Some(d) = self.nodes[t].decision.as_mut() {
                        d.extras.truncate(len);
                    }
                }
            }
        }
    }

    /// The next package to decide: project pins first, then the project's
    /// other requirements, then in the order names were discovered.
    fn pick(&self) -> Option<usize> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.decision.is_none() && !n.reqs.is_empty())
            .min_by_key(|(_, n)| {
                let tier = match (n.priority, n.boosted) {
                    (0, _) => 0,
                    (_, true) => 1,
                    (p, false) => 1 + p,
                };
                (tier, n.seq)
            })
            .map(|(i, _)| i)
    }

    /// Decided packages as units see them.
    pub fn pinned(&self) -> Vec<Pinned> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                self.decided_version(i).map(|v| Pinned {
                    name: n.name.clone(),
                    version: v.clone(),
                    index_url: self.rules.index_url.clone(),
                    develop: false,
                })
            })
            .collect()
    }

    /// Run one episode with `policy` ordering candidate versions.
    pub fn run(&mut self, policy: &mut dyn Policy) -> Result<Outcome, KbError> {
        match self.search(1, policy)? {
            Ok(()) => Ok(Outcome::Found),
            Err(_) if self.stopped => Ok(Outcome::Stopped),
            Err(_) => Ok(Outcome::NoSolution),
        }
    }

    fn search(
        &mut self,
        level: usize,
        policy: &mut dyn Policy,
    ) -> Result<Result<(), Bits>, KbError> {
        if self.pipeline.eager_stop.is_some() {
            self.stopped = true;
            return Ok(Err(Bits::default()));
        }
        let Some(p) = self.pick() else {
            return Ok(self.finish());
        };
        let name: Rc<str> = self.nodes[p].key.clone();
        if self.nodes[p].skip.is_none() {
            let skip = self.pipeline.skip_package(&name);
            self.nodes[p].skip = Some(skip);
        }
        if let Some(Some(unit)) = self.nodes[p].skip.clone() {
            let mark = self.trail.len();
            let _ = self.decide(p, None, level, (0.0, Vec::new(), Vec::new()), Some(unit))?;
            let r = self.search(level + 1, policy)?;
            if let Err(mut cs) = r {
                self.undo_to(mark);
                cs.remove(p);
                return Ok(Err(cs));
            }
            return Ok(Ok(()));
        }
        let mut cands = self.candidates(p)?;
        let options: Rc<[usize]> = Rc::from(cands.as_slice());
        policy.order(&self.nodes[p], &mut cands);
        let alternatives = self.alternatives(p, &cands);
        let mut conflict = self.base_conflict(p, &cands);
        let mut rejected: Vec<(usize, String)> = Vec::new();
        let view = self.view(p)?;
        let wants_steps = self.pipeline.has_steps_for(&name);
        let needs_stack = wants_steps && self.pipeline.steps_need_stack(&name);
        if self.nodes[p].failures > 0 {
            // The package has run out of versions before: the search is
            // likely to walk down its list, so ask for several at once.
            self.universe
                .prefetch_releases(&view, &cands[..cands.len().min(PREFETCH_AHEAD)]);
        }
        for (tried, &rel) in cands.iter().enumerate() {
            if tried >= 1 {
                // Walking down the versions: keep the next ones coming, more
                // of them the longer the walk.
                let ahead = if tried < PREFETCH_AHEAD {
                    PREFETCH_AHEAD
                } else {
                    4 * PREFETCH_AHEAD
                };
                let window = &cands[tried..cands.len().min(tried + ahead)];
                self.universe.prefetch_releases(&view, window);
            }
            // The search is about to try `rel`: ask for its dependencies.
            if let ReleaseDeps::Unusable(why) = self.universe.requirements(&view, rel)? {
                rejected.push((rel, why.to_string()));
                continue;
            }
            let mut step = if wants_steps {
                let pinned = Pinned {
                    name: name.to_string(),
                    version: view.version(rel).clone(),
                    index_url: self.rules.index_url.clone(),
                    develop: false,
                };
                // The stack and who brought the package in (a `state`'s
                // `resolved_dependencies` and `package_version_from`), only
                // for steps that look at them.
                let (resolved, introduced_by) = if needs_stack {
                    (self.pinned(), self.introducers(p))
                } else {
                    (Vec::new(), Vec::new())
                };
                let direct = self.nodes[p].reqs.iter().any(|q| q.from.is_none());
                self.pipeline
                    .step(&pinned, &resolved, &introduced_by, direct)
            } else {
                StepOutcome::Accept {
                    score: 0.0,
                    justification: Vec::new(),
                    add: Vec::new(),
                }
            };
            if self.rules.security.steps()
                && let StepOutcome::Accept {
                    score,
                    justification,
                    ..
                } = &mut step
            {
                let advisories = self.universe.advisories(&view, rel)?;
                if !advisories.is_empty() {
                    let (s, messages) = self.rules.security.step(
                        &name,
                        &view.version(rel).to_string(),
                        &advisories,
                    );
                    *score += s;
                    justification.extend(messages);
                }
            }
            let mark = self.trail.len();
            let decided = match step {
                StepOutcome::NotAcceptable {
                    unit,
                    message,
                    culprits,
                } => {
                    self.counters.refused += 1;
                    for c in culprits {
                        if let Some(&id) = self.ids.get(&c) {
                            conflict.insert(id);
                        }
                    }
                    rejected.push((rel, format!("not acceptable to unit {unit}: {message}")));
                    continue;
                }
                StepOutcome::Skip { unit } => {
                    self.options = options.clone();
                    self.decide(p, None, level, (0.0, Vec::new(), Vec::new()), Some(unit))?
                }
                StepOutcome::Accept {
                    score,
                    justification,
                    add,
                } => {
                    self.options = options.clone();
                    let decided =
                        self.decide(p, Some(rel), level, (score, justification, add), None)?;
                    if !rejected.is_empty()
                        && let Some(d) = self.nodes[p].decision.as_mut()
                    {
                        d.passed_over.clone_from(&rejected);
                    }
                    decided
                }
            };
            if let Err(c) = decided {
                let culprits: Vec<String> = (0..self.nodes.len())
                    .filter(|&i| c.contains(i))
                    .map(|i| self.decided_label(i))
                    .collect();
                // The latest package decided before `p` that this version
                // conflicts with.
                let culprit_level = (0..self.nodes.len())
                    .filter(|&i| i != p && c.contains(i))
                    .filter_map(|i| self.nodes[i].decision.as_ref().map(|d| d.level))
                    .filter(|&l| l < level)
                    .max();
                self.undo_to(mark);
                conflict.union(&c);
                rejected.push((rel, format!("conflicts with {}", culprits.join(", "))));
                self.counters.backtracks += 1;
                if let Some(target) = culprit_level {
                    self.nodes[p].conflicts += 1;
                    if !self.nodes[p].boosted && self.nodes[p].conflicts >= CONFLICT_THRESHOLD {
                        // `p` keeps losing to a package decided before it:
                        // decide that level again with `p` first, as uv does.
                        self.nodes[p].boosted = true;
                        self.reorder = Some(target);
                        let mut cs = conflict.clone();
                        cs.remove(p);
                        return Ok(Err(cs));
                    }
                }
                continue;
            }
            if let Some(done) = self.descend(p, mark, level, policy, &mut conflict)? {
                return Ok(done);
            }
            let why = self
                .exhausted
                .clone()
                .unwrap_or_else(|| "every choice for its dependencies failed".to_string());
            rejected.push((rel, why));
        }
        for (unit, edge) in alternatives {
            let mark = self.trail.len();
            let text = edge.requirement_text();
            let _ = self.decide(p, None, level, (0.0, Vec::new(), Vec::new()), None)?;
            if let Some(d) = self.nodes[p].decision.as_mut() {
                d.replaced_by = Some((unit.clone(), text.clone()));
            }
            let t = self.intern(&edge.name);
            let edges: Rc<[Edge]> = Rc::from(vec![edge]);
            let req = Req {
                from: Some(p),
                edges,
                index: 0,
                level,
            };
            if let Err(c) = self.add_req(t, req)? {
                self.undo_to(mark);
                conflict.union(&c);
                continue;
            }
            if let Some(done) = self.descend(p, mark, level, policy, &mut conflict)? {
                return Ok(done);
            }
        }
        if self.exhausted.is_none() {
            let on: Vec<String> = self.nodes[p]
                .reqs
                .iter()
                .map(|q| format!("{} ({})", q.edge().requirement_text(), self.requirer(q)))
                .collect();
            let mut text = format!(
                "no release of {} could be used with {}",
                self.nodes[p].name,
                on.join(" and ")
            );
            if let Some((r, why)) = rejected.first() {
                text.push_str(&format!("; {} {why}", view.version(*r)));
            }
            self.exhausted = Some(text);
        }
        self.record_failure(p, &rejected);
        conflict.remove(p);
        Ok(Err(conflict))
    }

    /// Search below the decision of `p` (trail mark `mark`). `Some` is the
    /// answer for `p`'s level: a stack, or a conflict `p` is not part of (a
    /// backjump over it). `None`: undone, and the deeper conflict merged into
    /// `conflict`; `p` tries its next choice.
    fn descend(
        &mut self,
        p: usize,
        mark: usize,
        level: usize,
        policy: &mut dyn Policy,
        conflict: &mut Bits,
    ) -> Result<Option<Result<(), Bits>>, KbError> {
        self.exhausted = None;
        let Err(mut cs) = self.search(level + 1, policy)? else {
            return Ok(Some(Ok(())));
        };
        self.undo_to(mark);
        if self.stopped {
            return Ok(Some(Err(cs)));
        }
        match self.reorder {
            // Unwinding to a level to decide again.
            Some(target) if level > target => return Ok(Some(Err(cs))),
            Some(_) => {
                self.reorder = None;
                self.counters.backjumps += 1;
                return Ok(Some(self.search(level, policy)?));
            }
            None => {}
        }
        self.counters.backtracks += 1;
        if !cs.contains(p) {
            self.counters.backjumps += 1;
            return Ok(Some(Err(cs)));
        }
        cs.remove(p);
        conflict.union(&cs);
        Ok(None)
    }

    /// Alternatives pseudonym units offer for the candidates of node `p`
    /// (tried after the package's own versions), each once.
    fn alternatives(&mut self, p: usize, cands: &[usize]) -> Vec<(String, Edge)> {
        let Some(view) = self.nodes[p].view.clone() else {
            return Vec::new();
        };
        let name = view.name.clone();
        let mut out: Vec<(String, Edge)> = Vec::new();
        if !self.pipeline.has_pseudonyms_for(&name) {
            return out;
        }
        for &r in cands {
            for alt in self
                .pipeline
                .pseudonyms(&name, view.version(r), &self.rules.index_url)
            {
                let spec = match alt.version {
                    super::pipeline::AlternativeVersion::Same(v) => {
                        crate::python::parse_specifiers(&format!("=={v}")).unwrap_or_default()
                    }
                    super::pipeline::AlternativeVersion::Spec(s) => s,
                };
                let edge = Edge::new(&alt.name, Vec::new(), spec, None);
                if !out
                    .iter()
                    .any(|(_, e)| e.name == edge.name && e.spec == edge.spec)
                {
                    out.push((alt.unit, edge));
                }
            }
        }
        out
    }

    fn finish(&mut self) -> Result<(), Bits> {
        let resolved = self.pinned();
        if let Some(refusal) = self.pipeline.stride(&resolved) {
            self.counters.discarded += 1;
            tracing::debug!(unit = %refusal.unit, "stack discarded: {}", refusal.message);
            if self.exhausted.is_none() {
                self.exhausted = Some(format!(
                    "unit {} refused the complete stack: {}",
                    refusal.unit, refusal.message
                ));
            }
            // The stack is refused for the packages the unit matched: only
            // their versions, or whatever brought them in, can change that.
            let culprits: Vec<usize> = refusal
                .culprits
                .iter()
                .filter_map(|n| self.ids.get(n.as_str()).copied())
                .collect();
            let mut conflict = Bits::default();
            if culprits.is_empty() {
                for (i, n) in self.nodes.iter().enumerate() {
                    if n.decision.is_some() {
                        conflict.insert(i);
                    }
                }
            } else {
                let mut stack = culprits;
                while let Some(i) = stack.pop() {
                    if conflict.contains(i) {
                        continue;
                    }
                    conflict.insert(i);
                    stack.extend(self.nodes[i].reqs.iter().filter_map(|q| q.from));
                }
            }
            return Err(conflict);
        }
        Ok(())
    }
}
