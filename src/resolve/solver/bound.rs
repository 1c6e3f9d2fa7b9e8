//! Whether the stack just found can be beaten at all, so that exploring
//! further would only cost time (and, online, fetches).
//!
//! Without a unit that can raise a score, a stack's score is the sum of
//! what steps and advisories take away, package by package. A package the
//! project requires directly is in every stack; when no unit leaves it
//! out, replaces it or scores it, its share is its release's advisory
//! penalty, and no stack can do better for it than the mildest penalty
//! among the releases the project admits. Every other package can do no
//! better than 0. A stack that reaches each of these bounds scores the
//! most any stack can; being the newest-first stack, it also wins ties.

use super::{Choice, Skip, Solver};
use crate::kb::KbError;

impl Solver<'_, '_, '_> {
    /// The decided stack scores the most any stack can (see the module
    /// documentation). Only advisories are looked at; no metadata is
    /// fetched.
    pub fn cannot_be_beaten(&mut self) -> Result<bool, KbError> {
        if self.pipeline.rewards {
            return Ok(false);
        }
        for i in 0..self.nodes.len() {
            let Some(d) = &self.nodes[i].decision else {
                continue;
            };
            if d.score >= 0.0 {
                continue;
            }
            let Choice::Release(chosen) = d.choice else {
                return Ok(false);
            };
            if !self.penalty_is_unavoidable(i, chosen, d.score)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Package `i`, decided as release `chosen` with score `score`, is in
    /// every stack and scored only by advisories, and no release the
    /// project admits carries a milder penalty.
    fn penalty_is_unavoidable(
        &mut self,
        i: usize,
        chosen: usize,
        score: f64,
    ) -> Result<bool, KbError> {
        let name = self.nodes[i].key.clone();
        let env = self.universe.markers().clone();
        let node = &self.nodes[i];
        let required = node
            .reqs
            .iter()
            .any(|q| q.from.is_none() && q.edge().applies(&env, &[]));
        if !required
            || node.skip != Skip::Kept
            || self.pipeline.has_pseudonyms_for(&name)
            || self.pipeline.has_steps_for(&name)
        {
            return Ok(false);
        }
        let Some(view) = node.view.clone() else {
            return Ok(false);
        };
        let roots: Vec<_> = node
            .reqs
            .iter()
            .filter(|q| q.from.is_none())
            .cloned()
            .collect();
        let penalty = |solver: &mut Self, r: usize| -> Result<f64, KbError> {
            let advisories = solver.universe.advisories(&view, r)?;
            Ok(solver.rules.security.penalty_for(&advisories))
        };
        if penalty(self, chosen)? != score {
            return Ok(false);
        }
        for r in 0..view.releases.len() {
            if roots.iter().all(|q| q.edge().admits(&view, r)) && penalty(self, r)? > score {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
