//! Which releases of a package the search may try now, and why the others
//! are excluded: the target, units' sieves, advisories, constraints and the
//! requirements on it; and the earlier decisions to blame when none is
//! left.

use std::rc::Rc;

use super::{Bits, Exclusion, Req, Ruled, Solver};
use crate::kb::KbError;
use crate::python::Version;
use crate::resolve::universe::ProjectView;

/// Why a release is excluded, borrowed (see [`Exclusion`] for the text).
pub(super) enum Why<'a> {
    Target(&'a crate::kb::Rejection),
    Ruled(&'a Ruled),
    Requirement(&'a Req),
}

impl Why<'_> {
    /// Whether two releases are excluded for the same reason.
    pub(super) fn same(&self, other: &Why<'_>) -> bool {
        match (self, other) {
            (Why::Target(a), Why::Target(b)) => a == b,
            (Why::Ruled(a), Why::Ruled(b)) => a == b,
            (Why::Requirement(a), Why::Requirement(b)) => std::ptr::eq(*a, *b),
            _ => false,
        }
    }
}

impl Solver<'_, '_, '_> {
    /// Why release `r` of node `i` is excluded now, if it is, without
    /// building any text (the search loop asks this for every release).
    pub(super) fn why_excluded(&self, i: usize, r: usize) -> Option<Why<'_>> {
        let node = &self.nodes[i];
        let view = node.view.as_ref()?;
        let info = &view.releases[r];
        let version = view.version(r);
        if let Some(rej) = view.unusable(r) {
            return Some(Why::Target(rej));
        }
        match &info.rejection {
            None => {}
            Some(crate::kb::Rejection::Yanked(_))
                if node
                    .reqs
                    .iter()
                    .any(|q| q.edge().exact && q.edge().spec.contains(version)) => {}
            Some(rej) => return Some(Why::Target(rej)),
        }
        if let Some(ruled) = node.ruled.as_ref().and_then(|s| s[r].as_ref()) {
            return Some(Why::Ruled(ruled));
        }
        node.reqs
            .iter()
            .find(|q| !q.edge().admits(view, r))
            .map(Why::Requirement)
    }

    /// Why release `r` of node `i` is excluded now, if it is. Pre-release
    /// policy is applied by [`Self::candidates`].
    pub fn exclusion(&self, i: usize, r: usize) -> Option<Exclusion> {
        Some(self.exclusion_of(self.why_excluded(i, r)?))
    }

    /// The exclusion `why` describes, in owned form.
    pub(super) fn exclusion_of(&self, why: Why<'_>) -> Exclusion {
        match why {
            Why::Target(rej) => Exclusion::Target(rej.to_string()),
            Why::Ruled(Ruled::Sieve(unit)) => Exclusion::Sieve(unit.clone()),
            Why::Ruled(Ruled::Advisory(ids)) => Exclusion::Advisory(ids.clone()),
            Why::Ruled(Ruled::Constraint(text)) => Exclusion::Constraint(text.clone()),
            Why::Requirement(q) => {
                Exclusion::Requirement(q.edge().requirement_text(), self.requirer(q))
            }
        }
    }

    /// What rules each release of `view` out for the whole search: units'
    /// sieves, then the security sieve, then constraints.
    fn rule_out(&mut self, view: &ProjectView) -> Result<Rc<[Option<Ruled>]>, KbError> {
        let versions: Vec<&Version> = (0..view.releases.len()).map(|r| view.version(r)).collect();
        let sieved = self
            .pipeline
            .sieve(&view.name, &versions, &self.rules.index_url);
        let constraints = self.rules.constraints.get(&view.name);
        let mut ruled = Vec::with_capacity(versions.len());
        for (r, (unit, version)) in sieved.into_iter().zip(&versions).enumerate() {
            if let Some(unit) = unit {
                ruled.push(Some(Ruled::Sieve(unit)));
                continue;
            }
            if self.rules.security.sieve {
                let advisories = self.universe.advisories(view, r)?;
                if let Some(ids) = self.rules.security.sieve_verdict(&advisories) {
                    ruled.push(Some(Ruled::Advisory(ids)));
                    continue;
                }
            }
            let constraint = constraints
                .and_then(|cs| cs.iter().find(|(spec, _)| !spec.contains(version)))
                .map(|(_, text)| Ruled::Constraint(text.clone()));
            ruled.push(constraint);
        }
        Ok(Rc::from(ruled))
    }

    pub(super) fn prereleases_allowed(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        self.rules.allow_prereleases
            || self
                .rules
                .prereleases_for
                .get(&node.name)
                .copied()
                .unwrap_or(false)
            || node.reqs.iter().any(|q| q.edge().mentions_prerelease)
    }

    /// Releases of node `i` usable now, newest first. Pre-releases only when
    /// allowed or when nothing else fits (as pip does).
    pub fn candidates(&mut self, i: usize) -> Result<Vec<usize>, KbError> {
        let view = self.view(i)?;
        if self.nodes[i].ruled.is_none() {
            let ruled = self.rule_out(&view)?;
            self.nodes[i].ruled = Some(ruled);
        }
        let usable: Vec<usize> = (0..view.releases.len())
            .filter(|&r| self.why_excluded(i, r).is_none())
            .collect();
        if self.prereleases_allowed(i) {
            return Ok(usable);
        }
        let finals: Vec<usize> = usable
            .iter()
            .copied()
            .filter(|&r| !view.releases[r].prerelease)
            .collect();
        Ok(if finals.is_empty() { usable } else { finals })
    }

    /// The decisions that make node `i` fail before any of its versions
    /// is tried: one requirer that makes it needed (none when the project
    /// itself requires it), and the requirers of a small set of
    /// requirements that together exclude every release not usable now for
    /// a reason of theirs (found greedily, earlier decisions preferred).
    /// Blaming every requirer instead makes the search retry all of them
    /// when two requirements simply disagree.
    pub(super) fn base_conflict(&self, i: usize, usable: &[usize]) -> Bits {
        let node = &self.nodes[i];
        let mut b = Bits::default();
        let level_of = |q: &Req| q.level;
        if !node.reqs.iter().any(|q| q.from.is_none())
            && let Some(q) = node.reqs.iter().min_by_key(|q| level_of(q))
            && let Some(f) = q.from
        {
            b.insert(f);
        }
        let Some(view) = node.view.as_ref() else {
            return b;
        };
        // Releases excluded by requirements (not by the target, a unit, a
        // constraint or the pre-release rule, which no decision changes).
        let mut is_usable = vec![false; view.releases.len()];
        for &r in usable {
            is_usable[r] = true;
        }
        let mut uncovered: Vec<usize> = (0..view.releases.len())
            .filter(|&r| !is_usable[r])
            .filter(|&r| matches!(self.why_excluded(i, r), Some(Why::Requirement(_))))
            .collect();
        while !uncovered.is_empty() {
            let best = node
                .reqs
                .iter()
                .map(|q| {
                    let n = uncovered
                        .iter()
                        .filter(|&&r| !q.edge().admits(view, r))
                        .count();
                    (n, std::cmp::Reverse(q.level), q)
                })
                .filter(|(n, _, _)| *n > 0)
                .max_by_key(|(n, level, _)| (*n, *level));
            let Some((_, _, q)) = best else {
                break;
            };
            if let Some(f) = q.from {
                b.insert(f);
            }
            uncovered.retain(|&r| q.edge().admits(view, r));
        }
        b
    }
}
