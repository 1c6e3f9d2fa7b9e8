//! What stays fixed during a search: the run's rules (pre-releases,
//! constraints, index) and the policy ordering candidate versions.

use std::collections::HashMap;

use super::solver::Node;

/// How candidate versions are ordered within one package.
pub trait Policy {
    /// Reorder `candidates` (release indexes, newest first on entry).
    fn order(&mut self, node: &Node, candidates: &mut Vec<usize>);
}

/// Newest first: the order pip and uv try versions in.
pub struct NewestFirst;

impl Policy for NewestFirst {
    fn order(&mut self, _node: &Node, _candidates: &mut Vec<usize>) {}
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
}
