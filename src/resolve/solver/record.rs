//! What a search leaves behind: the stack an episode found, as predictors
//! learn from it, restarting for the next episode, and the records of
//! failures that explanations are built from.

use std::rc::Rc;

use super::candidates::Why;
use super::{
    Action, Cause, Decision, Demand, Episode, Exclusion, Exhausted, ProjectView, Req, Solver,
};

impl Solver<'_, '_, '_> {
    /// Name of the requirer of `req`, with its version.
    pub fn requirer(&self, req: &Req) -> String {
        match req.from {
            None => "the project".to_string(),
            Some(f) => match self.decided_version(f) {
                Some(v) => format!("{} {v}", self.nodes[f].name),
                None => self.nodes[f].name.clone(),
            },
        }
    }

    /// The decided packages whose requirements name node `i`, as units
    /// see them.
    pub(super) fn introducers(&self, i: usize) -> Vec<super::Pinned> {
        self.nodes[i]
            .reqs
            .iter()
            .filter_map(|q| q.from)
            .filter_map(|f| {
                Some(super::Pinned {
                    name: self.nodes[f].name.clone(),
                    version: self.decided_version(f)?.clone(),
                    index_url: self.rules.index_url.clone(),
                    develop: false,
                })
            })
            .collect()
    }

    /// Where the search stands (trail length, discovery counter), to come
    /// back to with [`Self::restart`].
    pub fn mark(&self) -> (usize, usize) {
        (self.trail.len(), self.next_seq)
    }

    /// Undo everything after `mark` so another episode can start from it.
    /// Project views and sieve verdicts stay cached.
    pub fn restart(&mut self, mark: (usize, usize)) {
        self.undo_to(mark.0);
        self.next_seq = mark.1;
        self.stopped = false;
    }

    /// The stack just found, as predictors learn from it.
    pub fn episode(&self) -> Episode {
        let mut decided: Vec<(usize, usize, &Decision)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let d = n.decision.as_ref()?;
                d.candidate()?;
                Some((d.level, i, d))
            })
            .collect();
        decided.sort_unstable_by_key(|(level, i, _)| (*level, *i));
        let mut score = 0.0;
        let actions = decided
            .into_iter()
            .map(|(_, i, d)| {
                score += d.score;
                Action {
                    name: self.nodes[i].key.clone(),
                    release: d.candidate().unwrap_or_default(),
                    reward: d.score,
                    options: d.options.clone(),
                }
            })
            .collect();
        Episode { actions, score }
    }

    pub(super) fn decided_label(&self, i: usize) -> String {
        match self.decided_version(i) {
            Some(v) => format!("{}=={v}", self.nodes[i].name),
            None => self.nodes[i].name.clone(),
        }
    }

    /// A requirement with its chain back to the project.
    pub fn chain(&self, req: &Req) -> String {
        let mut out = req.edge().requirement_text();
        let mut from = req.from;
        let mut seen = 0;
        while let Some(f) = from {
            out.push_str(&format!(" ← {}", self.decided_label(f)));
            from = self.nodes[f].reqs.first().and_then(|q| q.from);
            seen += 1;
            if seen > 32 {
                break;
            }
        }
        out.push_str(" ← the project");
        out
    }

    /// The record of package `p` running out of candidates (the `tried`
    /// ones, with why each failed): the requirements on it with their
    /// chains, and why every other release was excluded, grouped.
    pub(super) fn exhausted(
        &self,
        p: usize,
        view: &Rc<ProjectView>,
        tried: Vec<(usize, Cause)>,
    ) -> Exhausted {
        let node = &self.nodes[p];
        let demands = node
            .reqs
            .iter()
            .map(|q| Demand {
                requirement: q.edge().requirement_text(),
                from: q.from.map(|f| self.nodes[f].name.clone()),
                requirer: self.requirer(q),
                chain: self.chain(q),
            })
            .collect();
        let mut was_tried = vec![false; view.releases.len()];
        for (r, _) in &tried {
            was_tried[*r] = true;
        }
        let mut groups: Vec<(Option<Why<'_>>, Vec<usize>)> = Vec::new();
        for r in (0..view.releases.len()).filter(|&r| !was_tried[r]) {
            let why = match self.why_excluded(p, r) {
                Some(why) => Some(why),
                None if view.releases[r].prerelease => None,
                None => continue,
            };
            match groups.iter_mut().find(|(w, _)| match (w, &why) {
                (Some(a), Some(b)) => a.same(b),
                (None, None) => true,
                _ => false,
            }) {
                Some((_, releases)) => releases.push(r),
                None => groups.push((why, vec![r])),
            }
        }
        let excluded = groups
            .into_iter()
            .map(|(why, releases)| {
                let exclusion = why.map_or(Exclusion::Prerelease, |w| self.exclusion_of(w));
                (exclusion, releases)
            })
            .collect();
        Exhausted {
            package: node.name.clone(),
            view: view.clone(),
            demands,
            excluded,
            tried,
        }
    }
}

impl Solver<'_, '_, '_> {
    /// Check the stack just found against what its own releases require
    /// (the edges that apply on the target, with the extras asked for):
    /// every required package decided at an admitted version, or left out
    /// by a unit. Problems found are a bug in the search, never a lock.
    pub fn verify(&self) -> Vec<String> {
        let env = self.universe.markers().clone();
        let mut problems = Vec::new();
        for node in &self.nodes {
            let Some(d) = &node.decision else {
                continue;
            };
            let (Some(rel), Some(view)) = (d.release(), node.view.as_ref()) else {
                continue;
            };
            let requirer = format!("{} {}", node.name, view.version(rel));
            for edge in self.universe.edges(view, rel).iter() {
                if !edge.applies(&env, &d.extras) {
                    continue;
                }
                let Some(&t) = self.ids.get(edge.name.as_str()) else {
                    problems.push(format!("missing {} (required by {requirer})", edge.name));
                    continue;
                };
                let target = &self.nodes[t];
                match (&target.decision, target.view.as_ref()) {
                    (Some(td), Some(tv)) => {
                        if let Some(tr) = td.release()
                            && !edge.admits(tv, tr)
                        {
                            problems.push(format!(
                                "{} {} does not meet {} (required by {requirer})",
                                target.name,
                                tv.version(tr),
                                edge.requirement_text()
                            ));
                        }
                    }
                    _ => problems.push(format!("missing {} (required by {requirer})", edge.name)),
                }
            }
        }
        problems
    }
}
