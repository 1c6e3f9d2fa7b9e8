//! What stays fixed during a search: the run's rules (pre-releases,
//! constraints, index) and the policy ordering candidate versions.

use std::collections::HashMap;
use std::rc::Rc;

use super::solver::Node;

/// Move `release` to the front of `candidates` when it is one of them.
pub fn prefer(candidates: &mut Vec<usize>, release: usize) {
    if let Some(pos) = candidates.iter().position(|&r| r == release)
        && pos > 0
    {
        let r = candidates.remove(pos);
        candidates.insert(0, r);
    }
}

/// A stack to stay close to, and one package to change in the next episode.
#[derive(Debug, Clone, Default)]
pub struct Anchor {
    /// Release per package of the stack followed.
    pub stack: super::hash::FxHashMap<Rc<str>, usize>,
    /// The package to change, and the release to try for it first.
    pub change: Option<(Rc<str>, usize)>,
}

impl Anchor {
    /// Follow the stack of `episode`.
    pub fn follow(&mut self, episode: &Episode) {
        self.stack = super::polish::releases(episode);
    }

    /// Order `candidates` of `name`: the change first, else the followed
    /// release first, else newest first.
    pub fn order(&self, name: &str, candidates: &mut Vec<usize>) {
        if let Some((n, r)) = &self.change
            && **n == *name
        {
            prefer(candidates, *r);
            return;
        }
        if let Some(&r) = self.stack.get(name) {
            prefer(candidates, r);
        }
    }
}

/// How candidate versions are ordered within one package.
pub trait Policy {
    /// Reorder `candidates` (release indexes, newest first on entry).
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>);
}

/// An anchor is a policy of its own: the polish pass follows the best stack
/// with one package changed.
impl Policy for Anchor {
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>) {
        Anchor::order(self, &node.name, candidates);
    }
}

/// Newest first: the order pip and uv try versions in.
pub struct NewestFirst;

impl Policy for NewestFirst {
    fn order(&mut self, _node: &Node, _candidates: &mut Vec<usize>) {}
}

impl Predictor for NewestFirst {
    fn name(&self) -> &'static str {
        "newest-first"
    }
}

/// One decision of a finished episode.
#[derive(Debug, Clone)]
pub struct Action {
    /// Package name.
    pub name: std::rc::Rc<str>,
    /// Release index chosen (into the project's releases, newest first).
    pub release: usize,
    /// Score the steps gave the action.
    pub reward: f64,
    /// The package's candidates when it was decided (newest first, the
    /// chosen one included); later requirements may exclude some of them.
    pub options: std::rc::Rc<[usize]>,
}

/// A complete stack one episode found, as predictors learn from it.
#[derive(Debug, Clone, Default)]
pub struct Episode {
    /// Decisions in the order they were taken.
    pub actions: Vec<Action>,
    /// Total score of the stack.
    pub score: f64,
}

/// Share of the budget after which the final exploitation phase starts.
pub const EXPLOITATION_FROM: f64 = 0.8;

/// Where the exploration stands when an episode begins.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Episode number, from 0.
    pub episode: u64,
    /// Accepted stacks so far.
    pub accepted: u64,
    /// The budget in accepted stacks (`--limit`).
    pub limit: u64,
    /// The final exploitation phase: use what was learned, explore no more.
    pub exploit: bool,
}

/// Steers a series of complete search episodes: orders candidate versions
/// within each episode ([`Policy`]) and learns from the stacks found.
pub trait Predictor: Policy {
    /// Name shown in reports.
    fn name(&self) -> &'static str;
    /// Called before each episode.
    fn begin(&mut self, _phase: Phase) {}
    /// Called with the stack each episode found.
    fn learn(&mut self, _episode: &Episode) {}
    /// Nothing is left to try (further episodes would repeat themselves).
    fn finished(&self) -> bool {
        false
    }
}

/// Settings that do not change during a search.
#[derive(Debug, Clone, Default)]
pub struct SearchRules {
    /// Allow pre-releases everywhere.
    pub allow_prereleases: bool,
    /// Per-package pre-release switch.
    pub prereleases_for: HashMap<String, bool>,
    /// Constraints per name (already filtered by marker).
    pub constraints: HashMap<String, Vec<(crate::python::VersionSpecifiers, String)>>,
    /// Index URL of the snapshot (units match on it).
    pub index_url: String,
    /// Treatment of releases with known advisories.
    pub security: super::security::Security,
}
