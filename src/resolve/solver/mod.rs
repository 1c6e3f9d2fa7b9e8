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

mod bound;
mod candidates;
mod decide;
mod record;
mod search;

pub use super::conflict::{Bits, Cause, Demand, Exclusion, Exhausted};
use super::pipeline::{Pinned, Pipeline, StepOutcome};
pub use super::rules::{Action, Episode, NewestFirst, Phase, Policy, Predictor, SearchRules};
use super::universe::{Edge, ProjectView, ReleaseDeps, Universe};
use crate::kb::KbError;
use crate::prescription::schema::Message;
use crate::python::{ExtraName, Version};

/// Conflicts with earlier decisions after which a package is decided
/// before them (uv uses the same number).
pub const CONFLICT_THRESHOLD: usize = 5;

/// Why the search does not go on from where it is: a conflict blamed on
/// earlier decisions (undo and try something else), or a knowledge base
/// that failed (stop). One type for both, so `?` carries either upwards.
#[derive(Debug)]
pub enum Backtrack {
    /// The earlier decisions the failure is blamed on.
    Conflict(Bits),
    /// The knowledge base could not answer.
    Kb(KbError),
}

impl From<KbError> for Backtrack {
    fn from(e: KbError) -> Self {
        Self::Kb(e)
    }
}

/// A conflict, caught where it is handled (`Some` of the decisions
/// blamed); a knowledge-base failure still goes up.
fn caught(r: Result<(), Backtrack>) -> Result<Option<Bits>, KbError> {
    match r {
        Ok(()) => Ok(None),
        Err(Backtrack::Conflict(c)) => Ok(Some(c)),
        Err(Backtrack::Kb(e)) => Err(e),
    }
}

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

/// What the search decided for a package.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// A release: index into the project's releases, newest first.
    Release(usize),
    /// Left out by a unit (`sieve.SkipPackage`, or a step's skip).
    Skipped {
        /// The unit.
        unit: String,
    },
    /// Replaced by an alternative a pseudonym unit offered.
    Replaced {
        /// The unit.
        unit: String,
        /// The requirement put in the package's place.
        requirement: String,
        /// The candidate the predictor saw: the project's release count
        /// plus the alternative's position (see [`Node::alternatives`]).
        candidate: usize,
    },
}

/// A decided node.
#[derive(Debug, Clone)]
pub struct Decision {
    /// What was decided.
    pub choice: Choice,
    /// Level of the decision.
    pub level: usize,
    /// Extras whose dependencies were added.
    pub extras: Vec<ExtraName>,
    /// Score of the action.
    pub score: f64,
    /// Justification from the steps.
    pub justification: Vec<Message>,
    /// The candidates the package had when decided, in the order the
    /// predictor saw them before ordering: releases newest first, then
    /// alternatives.
    pub options: Rc<[usize]>,
    /// Releases tried before this decision at this level, with why each
    /// failed (true of the final stack: the decisions before this one
    /// stay as they were when it was taken). A candidate newer than the
    /// release decided and not listed here was ordered after it.
    pub passed_over: Vec<(usize, Cause)>,
}

impl Choice {
    /// The release, unless the package was left out or replaced.
    pub fn release(&self) -> Option<usize> {
        match self {
            Self::Release(r) => Some(*r),
            Self::Skipped { .. } | Self::Replaced { .. } => None,
        }
    }
}

impl Decision {
    /// The release decided, unless the package was left out or replaced.
    pub fn release(&self) -> Option<usize> {
        self.choice.release()
    }

    /// The candidate predictors learn: the release, or the alternative's
    /// candidate; `None` when a unit left the package out.
    pub fn candidate(&self) -> Option<usize> {
        match self.choice {
            Choice::Release(r) | Choice::Replaced { candidate: r, .. } => Some(r),
            Choice::Skipped { .. } => None,
        }
    }
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
    /// What rules each release out for the whole search, computed once
    /// when the package's candidates are first asked for.
    pub ruled: Option<Rc<[Option<Ruled>]>>,
    /// Whether a unit leaves it out (`sieve.SkipPackage`), asked once.
    pub skip: Skip,
    /// Times the search ran out of versions for it.
    pub failures: usize,
    /// Times one of its versions conflicted with a package decided before
    /// it.
    pub conflicts: usize,
    /// Decided before the packages it kept conflicting with (see
    /// [`CONFLICT_THRESHOLD`]).
    pub boosted: bool,
    /// Why it last ran out of versions (kept for its first few failures).
    pub last_failure: Option<Rc<Exhausted>>,
    /// Alternatives pseudonym units offer for its releases, computed once
    /// (see [`Alternative`]).
    pub alternatives: Option<Rc<[Alternative]>>,
}

/// Whether units leave a package out of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Not asked yet (the units are asked when the package is picked).
    Unasked,
    /// Kept.
    Kept,
    /// Left out by this unit.
    By(String),
}

/// What rules a release out whatever the search decides: the first of a
/// unit's sieve, the security sieve and a constraint that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruled {
    /// Removed by this sieve unit.
    Sieve(String),
    /// Removed by the security sieve for these advisories.
    Advisory(String),
    /// Excluded by this constraint.
    Constraint(String),
}

/// An alternative a pseudonym unit offers in place of a package: a
/// candidate like its releases, available while one of the releases it
/// was offered for is.
#[derive(Debug, Clone)]
pub struct Alternative {
    /// The pseudonym unit.
    pub unit: String,
    /// The requirement put in the package's place.
    pub edge: Edge,
    /// Releases of the package the unit offered it for.
    pub sources: Vec<usize>,
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
    /// The failure below the decision being tried (the reason a release
    /// that led to it was passed over); after an episode with no stack,
    /// the root of the derivation.
    below: Option<Cause>,
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
            below: None,
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
            ruled: None,
            skip: Skip::Unasked,
            failures: 0,
            conflicts: 0,
            boosted: false,
            last_failure: None,
            alternatives: None,
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
            let _ = caught(self.add_req(t, req))?;
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
        let r = d.release()?;
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
        match caught(self.search(1, policy))? {
            None => Ok(Outcome::Found),
            Some(_) if self.stopped => Ok(Outcome::Stopped),
            Some(_) => Ok(Outcome::NoSolution),
        }
    }

    /// Why the last episode found no stack: the record of the package
    /// whose failure ended it, each failed release pointing at the failure
    /// below it.
    pub fn derivation(&self) -> Option<Rc<Exhausted>> {
        match &self.below {
            Some(Cause::Below(root)) => Some(root.clone()),
            _ => None,
        }
    }

    fn finish(&mut self) -> Result<(), Bits> {
        let resolved = self.pinned();
        if let Some(refusal) = self.pipeline.stride(&resolved) {
            self.counters.discarded += 1;
            tracing::debug!(unit = %refusal.unit, "stack discarded: {}", refusal.message);
            if self.below.is_none() {
                self.below = Some(Cause::Refused {
                    unit: refusal.unit.clone(),
                    message: refusal.message.clone(),
                });
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
