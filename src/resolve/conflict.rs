//! What the search records about conflicts: sets of decisions that caused
//! a failure, why a release is excluded, and why a package ran out of
//! versions (the material of the explanation shown when no stack exists).

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

/// Why a package ran out of versions, captured when it happened.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The requirements on it then, each with its chain back to the project.
    pub required_by: Vec<String>,
    /// Releases and why each was not usable (grouped by reason).
    pub rejected: Vec<(String, Vec<String>)>,
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
