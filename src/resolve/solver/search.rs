//! The search itself: pick the next package, order its candidates (its
//! releases, then the alternatives pseudonym units offer) with the
//! predictor's policy, and try each in turn. A candidate is evaluated by the
//! units' steps and the advisory step, decided, and searched below; a
//! failure below either names this package (try the next candidate) or not
//! (jump back over it).

use std::rc::Rc;

use super::{
    Alternative, Backtrack, Bits, Cause, Choice, Edge, Pinned, Policy, ProjectView, ReleaseDeps,
    Req, Skip, Solver, StepOutcome, caught,
};
use crate::kb::KbError;

/// What trying one candidate led to when it did not backtrack past this
/// level.
enum Tried {
    /// A stack below: the search is done.
    Found,
    /// The candidate failed for a reason this package is part of: try the
    /// next one.
    Next,
}

/// Releases of one package asked for ahead when the search walks down its
/// versions.
const PREFETCH_AHEAD: usize = 8;

/// The state of one package's attempts at one level.
struct Attempts {
    /// The package.
    p: usize,
    /// Its project.
    view: Rc<ProjectView>,
    /// Every candidate, before the policy ordered them (kept in the
    /// decision for predictors).
    options: Rc<[usize]>,
    /// Earlier decisions blamed so far.
    conflict: Bits,
    /// Candidates that failed, with why.
    rejected: Vec<(usize, Cause)>,
    /// The search level.
    level: usize,
}

impl Solver<'_, '_, '_> {
    /// Decide the next package and everything below it: `Ok` when a
    /// stack is complete, else why not.
    pub(super) fn search(
        &mut self,
        level: usize,
        policy: &mut dyn Policy,
    ) -> Result<(), Backtrack> {
        if self.pipeline.eager_stop.is_some() {
            self.stopped = true;
            return Err(Backtrack::Conflict(Bits::default()));
        }
        let Some(p) = self.pick() else {
            return self.finish().map_err(Backtrack::Conflict);
        };
        if let Some(unit) = self.skip_unit(p) {
            return self.search_skipped(p, unit, level, policy);
        }
        let releases = self.candidates(p)?;
        let view = self.view(p)?;
        let alternatives = self.offered(p, &view, &releases);
        let mut order: Vec<usize> = releases.clone();
        order.extend(alternatives.iter().map(|(c, _)| *c));
        let mut at = Attempts {
            p,
            options: Rc::from(order.as_slice()),
            conflict: self.base_conflict(p, &releases),
            rejected: Vec::new(),
            level,
            view,
        };
        policy.order(&self.nodes[p], &mut order);
        let n = at.view.releases.len();
        for tried in 0..order.len() {
            self.prefetch_ahead(&at, &order, tried);
            let candidate = order[tried];
            let tried = if candidate < n {
                self.try_release(&mut at, candidate, policy)?
            } else {
                let alternative = alternatives
                    .iter()
                    .find(|(c, _)| *c == candidate)
                    .map(|(_, a)| a.clone())
                    .expect("ordered candidates are the offered ones");
                self.try_alternative(&mut at, candidate, &alternative, policy)?
            };
            if let Tried::Found = tried {
                return Ok(());
            }
        }
        Err(Backtrack::Conflict(self.exhaust(at)))
    }

    /// The unit that leaves package `p` out, if one does (asked once).
    fn skip_unit(&mut self, p: usize) -> Option<String> {
        if self.nodes[p].skip == Skip::Unasked {
            self.nodes[p].skip = match self.pipeline.skip_package(&self.nodes[p].key.clone()) {
                Some(unit) => Skip::By(unit),
                None => Skip::Kept,
            };
        }
        match &self.nodes[p].skip {
            Skip::By(unit) => Some(unit.clone()),
            Skip::Kept | Skip::Unasked => None,
        }
    }

    fn search_skipped(
        &mut self,
        p: usize,
        unit: String,
        level: usize,
        policy: &mut dyn Policy,
    ) -> Result<(), Backtrack> {
        let mark = self.trail.len();
        // Nothing is required of a package left out, so it cannot conflict.
        let _ = caught(self.decide(p, Choice::Skipped { unit }, level, Default::default()))?;
        if let Some(mut cs) = caught(self.search(level + 1, policy))? {
            self.undo_to(mark);
            cs.remove(p);
            return Err(Backtrack::Conflict(cs));
        }
        Ok(())
    }

    /// Ask for the dependencies of the releases the search is about to
    /// walk through: several at once when the package ran out of versions
    /// before, and more the further down the walk goes.
    fn prefetch_ahead(&mut self, at: &Attempts, order: &[usize], tried: usize) {
        let n = at.view.releases.len();
        let ahead = match tried {
            0 if self.nodes[at.p].failures > 0 => PREFETCH_AHEAD,
            0 => return,
            t if t < PREFETCH_AHEAD => PREFETCH_AHEAD,
            _ => 4 * PREFETCH_AHEAD,
        };
        let window = &order[tried..order.len().min(tried + ahead)];
        if window.iter().all(|&c| c < n) {
            self.universe.prefetch_releases(&at.view, window);
        } else {
            // Alternatives are not releases of this package.
            let releases: Vec<usize> = window.iter().copied().filter(|&c| c < n).collect();
            self.universe.prefetch_releases(&at.view, &releases);
        }
    }

    /// Try release `rel`.
    fn try_release(
        &mut self,
        at: &mut Attempts,
        rel: usize,
        policy: &mut dyn Policy,
    ) -> Result<Tried, Backtrack> {
        let p = at.p;
        if let ReleaseDeps::Unusable(why) = self.universe.requirements(&at.view, rel)? {
            at.rejected.push((rel, Cause::Unusable(why.clone())));
            return Ok(Tried::Next);
        }
        let mark = self.trail.len();
        self.options = at.options.clone();
        let decided = match self.evaluate(p, &at.view, rel)? {
            StepOutcome::NotAcceptable {
                unit,
                message,
                culprits,
            } => {
                self.counters.refused += 1;
                for c in culprits {
                    if let Some(&id) = self.ids.get(&c) {
                        at.conflict.insert(id);
                    }
                }
                at.rejected
                    .push((rel, Cause::NotAcceptable { unit, message }));
                return Ok(Tried::Next);
            }
            StepOutcome::Skip { unit } => {
                self.decide(p, Choice::Skipped { unit }, at.level, Default::default())
            }
            StepOutcome::Accept {
                score,
                justification,
                add,
            } => {
                let decided = self.decide(
                    p,
                    Choice::Release(rel),
                    at.level,
                    (score, justification, add),
                );
                if !at.rejected.is_empty()
                    && let Some(d) = self.nodes[p].decision.as_mut()
                {
                    d.passed_over.clone_from(&at.rejected);
                }
                decided
            }
        };
        if let Some(c) = caught(decided)? {
            return self.conflicted(at, rel, mark, &c);
        }
        if let Tried::Found = self.descend(p, mark, at.level, policy, &mut at.conflict)? {
            return Ok(Tried::Found);
        }
        let why = self.below.take().unwrap_or(Cause::DependenciesFailed);
        at.rejected.push((rel, why));
        Ok(Tried::Next)
    }

    /// What the units' steps and the advisory step say about release
    /// `rel` of package `p`.
    fn evaluate(
        &mut self,
        p: usize,
        view: &ProjectView,
        rel: usize,
    ) -> Result<StepOutcome, KbError> {
        let name = self.nodes[p].key.clone();
        let mut step = if self.pipeline.has_steps_for(&name) {
            let pinned = Pinned {
                name: name.to_string(),
                version: view.version(rel).clone(),
                index_url: self.rules.index_url.clone(),
                develop: false,
            };
            // The stack and who brought the package in (a `state`'s
            // `resolved_dependencies` and `package_version_from`), only for
            // steps that look at them.
            let (resolved, introduced_by) = if self.pipeline.steps_need_stack(&name) {
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
            let advisories = self.universe.advisories(view, rel)?;
            if !advisories.is_empty() {
                let (s, messages) =
                    self.rules
                        .security
                        .step(&name, &view.version(rel).to_string(), &advisories);
                *score += s;
                justification.extend(messages);
            }
        }
        Ok(step)
    }

    /// Release `rel` clashed with earlier decisions `c` as soon as it was
    /// decided: undo it, and when the package keeps losing to one decided
    /// before it, go back to that level and decide this package first (as
    /// uv does).
    fn conflicted(
        &mut self,
        at: &mut Attempts,
        rel: usize,
        mark: usize,
        c: &Bits,
    ) -> Result<Tried, Backtrack> {
        let p = at.p;
        let culprits: Vec<String> = (0..self.nodes.len())
            .filter(|&i| c.contains(i))
            .map(|i| self.decided_label(i))
            .collect();
        // The latest package decided before `p` that this version
        // conflicts with.
        let culprit_level = (0..self.nodes.len())
            .filter(|&i| i != p && c.contains(i))
            .filter_map(|i| self.nodes[i].decision.as_ref().map(|d| d.level))
            .filter(|&l| l < at.level)
            .max();
        self.undo_to(mark);
        at.conflict.union(c);
        at.rejected.push((rel, Cause::Conflicts(culprits)));
        self.counters.backtracks += 1;
        let Some(target) = culprit_level else {
            return Ok(Tried::Next);
        };
        self.nodes[p].conflicts += 1;
        if !self.nodes[p].boosted && self.nodes[p].conflicts >= super::CONFLICT_THRESHOLD {
            self.nodes[p].boosted = true;
            self.reorder = Some(target);
            let mut cs = at.conflict.clone();
            cs.remove(p);
            return Err(Backtrack::Conflict(cs));
        }
        Ok(Tried::Next)
    }

    /// Try the alternative `alternative` (candidate `candidate`): the
    /// package is replaced and the alternative required in its place.
    fn try_alternative(
        &mut self,
        at: &mut Attempts,
        candidate: usize,
        alternative: &Alternative,
        policy: &mut dyn Policy,
    ) -> Result<Tried, Backtrack> {
        let p = at.p;
        let mark = self.trail.len();
        self.options = at.options.clone();
        let choice = Choice::Replaced {
            unit: alternative.unit.clone(),
            requirement: alternative.edge.requirement_text(),
            candidate,
        };
        // A replaced package requires nothing itself, so it cannot conflict.
        let _ = caught(self.decide(p, choice, at.level, Default::default()))?;
        let t = self.intern(&alternative.edge.name);
        let edges: Rc<[Edge]> = Rc::from(vec![alternative.edge.clone()]);
        let req = Req {
            from: Some(p),
            edges,
            index: 0,
            level: at.level,
        };
        if let Some(c) = caught(self.add_req(t, req))? {
            self.undo_to(mark);
            at.conflict.union(&c);
            return Ok(Tried::Next);
        }
        self.descend(p, mark, at.level, policy, &mut at.conflict)
    }

    /// Search below the decision of `p` (trail mark `mark`): a stack, or
    /// a conflict `p` is not part of (a backjump over it), or `Next`:
    /// undone, and the deeper conflict merged into `conflict`; `p` tries
    /// its next choice.
    fn descend(
        &mut self,
        p: usize,
        mark: usize,
        level: usize,
        policy: &mut dyn Policy,
        conflict: &mut Bits,
    ) -> Result<Tried, Backtrack> {
        self.below = None;
        let Some(mut cs) = caught(self.search(level + 1, policy))? else {
            return Ok(Tried::Found);
        };
        self.undo_to(mark);
        if self.stopped {
            return Err(Backtrack::Conflict(cs));
        }
        match self.reorder {
            // Unwinding to a level to decide again.
            Some(target) if level > target => return Err(Backtrack::Conflict(cs)),
            Some(_) => {
                self.reorder = None;
                self.counters.backjumps += 1;
                self.search(level, policy)?;
                return Ok(Tried::Found);
            }
            None => {}
        }
        self.counters.backtracks += 1;
        if !cs.contains(p) {
            self.counters.backjumps += 1;
            return Err(Backtrack::Conflict(cs));
        }
        cs.remove(p);
        conflict.union(&cs);
        Ok(Tried::Next)
    }

    /// Every candidate of the package failed: record why (the reason the
    /// release above that led here failed), and blame the earlier
    /// decisions.
    fn exhaust(&mut self, at: Attempts) -> Bits {
        let p = at.p;
        self.nodes[p].failures += 1;
        tracing::trace!(
            "{} ran out of versions ({} times); {} tried",
            self.nodes[p].name,
            self.nodes[p].failures,
            at.rejected.len(),
        );
        let record = Rc::new(self.exhausted(p, &at.view, at.rejected));
        if self.nodes[p].failures <= 3 {
            self.nodes[p].last_failure = Some(record.clone());
        }
        self.below = Some(Cause::Below(record));
        let mut conflict = at.conflict;
        conflict.remove(p);
        conflict
    }

    /// The alternatives offered for package `p` while `releases` are its
    /// candidates, each with its candidate number (the release count plus
    /// its position among every alternative offered for the package, so
    /// the number means the same alternative in every episode).
    fn offered(
        &mut self,
        p: usize,
        view: &ProjectView,
        releases: &[usize],
    ) -> Vec<(usize, Alternative)> {
        if !self.pipeline.has_pseudonyms_for(&view.name) {
            return Vec::new();
        }
        let all = match &self.nodes[p].alternatives {
            Some(all) => all.clone(),
            None => {
                let all: Rc<[Alternative]> = Rc::from(self.alternatives_of(view));
                self.nodes[p].alternatives = Some(all.clone());
                all
            }
        };
        let n = view.releases.len();
        let mut candidate = vec![false; n];
        for &r in releases {
            candidate[r] = true;
        }
        all.iter()
            .enumerate()
            .filter(|(_, a)| a.sources.iter().any(|&s| candidate[s]))
            .map(|(k, a)| (n + k, a.clone()))
            .collect()
    }

    /// Every alternative pseudonym units offer for any release of `view`,
    /// each once, with the releases it was offered for.
    fn alternatives_of(&mut self, view: &ProjectView) -> Vec<Alternative> {
        let mut out: Vec<Alternative> = Vec::new();
        for r in 0..view.releases.len() {
            for alt in self
                .pipeline
                .pseudonyms(&view.name, view.version(r), &self.rules.index_url)
            {
                let spec = match alt.version {
                    super::super::pipeline::OfferedVersion::Same(v) => {
                        crate::python::parse_specifiers(&format!("=={v}")).unwrap_or_default()
                    }
                    super::super::pipeline::OfferedVersion::Spec(s) => s,
                };
                let edge = Edge::new(&alt.name, Vec::new(), spec, None);
                match out
                    .iter_mut()
                    .find(|a| a.edge.name == edge.name && a.edge.spec == edge.spec)
                {
                    Some(known) => known.sources.push(r),
                    None => out.push(Alternative {
                        unit: alt.unit,
                        edge,
                        sources: vec![r],
                    }),
                }
            }
        }
        out
    }
}
