//! What the search records about conflicts: sets of decisions that caused
//! a failure, why a release is excluded, and why a package ran out of
//! versions (the material of the explanation shown when no stack exists).

use std::rc::Rc;

use super::universe::ProjectView;

/// A growable bit set of node ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn insert(&mut self, i: usize) {
        let (w, b) = (i / 64, i % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }
    pub(crate) fn remove(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    pub(crate) fn union(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// A requirement on a package as it stood when the package ran out of
/// candidates.
#[derive(Debug, Clone)]
pub struct Demand {
    /// The requirement, e.g. `werkzeug>=3.1.0`.
    pub requirement: String,
    /// The requiring package's name; `None` for the project.
    pub from: Option<String>,
    /// The requirer with its version (`flask 3.1.3`, `the project`).
    pub requirer: String,
    /// The requirement with its chain back to the project
    /// (`werkzeug>=3.1.0 ← flask==3.1.3 ← the project`).
    pub chain: String,
}

/// Why one candidate the search tried could not be used.
#[derive(Debug, Clone)]
pub enum Cause {
    /// Its dependency metadata turned out unusable on the target.
    Unusable(crate::kb::Rejection),
    /// A unit's step refused it.
    NotAcceptable {
        /// The unit.
        unit: String,
        /// What it said.
        message: String,
    },
    /// It clashed with packages decided before it (their labels).
    Conflicts(Vec<String>),
    /// A package it brought in ran out of candidates.
    Below(Rc<Exhausted>),
    /// A unit refused every complete stack with it.
    Refused {
        /// The unit.
        unit: String,
        /// What it said.
        message: String,
    },
    /// The search below it failed without a recorded reason.
    DependenciesFailed,
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unusable(why) => write!(f, "{why}"),
            Self::NotAcceptable { unit, message } => {
                write!(f, "not acceptable to unit {unit}: {message}")
            }
            Self::Conflicts(with) => write!(f, "conflicts with {}", with.join(", ")),
            Self::Below(below) => write!(f, "{below}"),
            Self::Refused { unit, message } => {
                write!(f, "unit {unit} refused the complete stack: {message}")
            }
            Self::DependenciesFailed => f.write_str("every choice for its dependencies failed"),
        }
    }
}

/// A package that ran out of candidates, captured when it happened: who
/// required it, why each release it could not take was excluded, and why
/// each one it tried failed. A release that failed because a package it
/// brought in ran out points at that package's record ([`Cause::Below`]),
/// so the record of the last failure is the root of a derivation tree.
#[derive(Debug, Clone)]
pub struct Exhausted {
    /// The package's name.
    pub package: String,
    /// Its releases (newest first).
    pub view: Rc<ProjectView>,
    /// The requirements on it.
    pub demands: Vec<Demand>,
    /// Releases excluded before any was tried, grouped by why (release
    /// indices newest first).
    pub excluded: Vec<(Exclusion, Vec<usize>)>,
    /// Releases tried, in the order tried, with why each failed (an
    /// alternative that failed is not recorded: it is no release).
    pub tried: Vec<(usize, Cause)>,
}

impl std::fmt::Display for Exhausted {
    /// One line: the requirements, and the first candidate's failure.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no release of {} could be used with ", self.package)?;
        for (i, d) in self.demands.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            write!(f, "{} ({})", d.requirement, d.requirer)?;
        }
        if let Some((r, why)) = self.tried.first() {
            let version = self.view.releases.get(*r).map_or_else(
                || "an alternative".to_string(),
                |_| self.view.version(*r).to_string(),
            );
            write!(f, "; {version} {why}")?;
        }
        Ok(())
    }
}

/// Why a release of a node cannot be taken in the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// Static: the target cannot install it (yanked, Requires-Python, …).
    Target(String),
    /// A unit removed it.
    Sieve(String),
    /// A constraint excludes it.
    Constraint(String),
    /// A requirement excludes it (requirement text, requirer).
    Requirement(String, String),
    /// Pre-release not allowed.
    Prerelease,
    /// Known advisories (ids) under the security recommendation type.
    Advisory(String),
}

impl std::fmt::Display for Exclusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Target(r) => f.write_str(r),
            Self::Sieve(u) => write!(f, "removed by unit {u}"),
            Self::Constraint(c) => write!(f, "excluded by constraint {c}"),
            Self::Requirement(r, by) => write!(f, "excluded by {r} (required by {by})"),
            Self::Advisory(ids) => write!(
                f,
                "has known advisories {ids} (removed under the security recommendation type; accept them with the label allow-cve=ID)"
            ),
            Self::Prerelease => {
                f.write_str("pre-release (not allowed; use --pre or allow_prereleases)")
            }
        }
    }
}
