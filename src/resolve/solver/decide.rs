//! Changing the search state: deciding a package (and adding what the
//! chosen release requires) and adding one requirement, each reporting the
//! earlier decisions a conflict comes from.

use std::rc::Rc;

use super::{Backtrack, Bits, Choice, Decision, Req, Solver, Undo, caught, wanted};
use crate::prescription::schema::Message;
use crate::python::ExtraName;
use crate::resolve::universe::Edge;

impl Solver<'_, '_, '_> {
    pub(super) fn add_req(&mut self, t: usize, req: Req) -> Result<(), Backtrack> {
        if self.nodes[t].reqs.is_empty() {
            self.nodes[t].seq = self.next_seq;
            self.next_seq += 1;
        }
        let edge_spec_ok;
        let new_extras;
        {
            let node = &self.nodes[t];
            let Some(d) = &node.decision else {
                self.nodes[t].reqs.push(req);
                self.trail.push(Undo::Req(t));
                return Ok(());
            };
            let Some(rel) = d.release() else {
                self.nodes[t].reqs.push(req);
                self.trail.push(Undo::Req(t));
                return Ok(());
            };
            let view = node.view.as_ref().expect("decided nodes have views");
            edge_spec_ok = req.edge().admits(view, rel);
            new_extras = req
                .edge()
                .extras
                .iter()
                .filter(|e| !d.extras.contains(e))
                .cloned()
                .collect::<Vec<_>>();
        }
        self.nodes[t].reqs.push(req);
        self.trail.push(Undo::Req(t));
        let mut conflict = Bits::default();
        conflict.insert(t);
        if !edge_spec_ok {
            return Err(Backtrack::Conflict(conflict));
        }
        if new_extras.is_empty() {
            return Ok(());
        }
        // The package is already decided; the new extras pull in more.
        let d = self.nodes[t].decision.as_ref().expect("checked above");
        let rel = d.release().expect("checked above");
        let old: Vec<ExtraName> = d.extras.clone();
        let mut all = old.clone();
        all.extend(new_extras);
        let old_len = old.len();
        self.nodes[t]
            .decision
            .as_mut()
            .expect("checked above")
            .extras = all.clone();
        self.trail.push(Undo::Extras(t, old_len));
        let level = self.nodes[t].decision.as_ref().map_or(0, |d| d.level);
        let view = self.view(t)?;
        let edges = self.universe.edges(&view, rel);
        let env = self.universe.markers().clone();
        let newly = |e: &Edge| e.applies(&env, &all) && !e.applies(&env, &old);
        if let Some(c) = caught(self.require(t, &edges, level, newly))? {
            conflict.union(&c);
            return Err(Backtrack::Conflict(conflict));
        }
        Ok(())
    }

    /// Decide node `i` as release `rel` (or skipped when `None`) and add
    /// what it requires.
    pub(super) fn decide(
        &mut self,
        i: usize,
        choice: Choice,
        level: usize,
        step: (
            f64,
            Vec<Message>,
            Vec<crate::prescription::schema::AddPackage>,
        ),
    ) -> Result<(), Backtrack> {
        let mut extras: Vec<ExtraName> = Vec::new();
        for q in &self.nodes[i].reqs {
            for e in &q.edge().extras {
                if !extras.contains(e) {
                    extras.push(e.clone());
                }
            }
        }
        let (score, justification, adds) = step;
        let rel = choice.release();
        self.nodes[i].decision = Some(Decision {
            choice,
            level,
            extras: extras.clone(),
            score,
            justification,
            options: self.options.clone(),
            passed_over: Vec::new(),
        });
        self.trail.push(Undo::Decision(i));
        self.counters.decisions += 1;
        let Some(rel) = rel else {
            return Ok(());
        };
        let view = self.view(i)?;
        let edges = self.universe.edges(&view, rel);
        let env = self.universe.markers().clone();
        self.require(i, &edges, level, |e| e.applies(&env, &extras))?;
        if !adds.is_empty() {
            let added: Rc<[Edge]> = adds
                .iter()
                .map(|a| {
                    let spec = crate::python::parse_specifiers(&format!("=={}", a.locked_version))
                        .unwrap_or_default();
                    Edge::new(&a.name, Vec::new(), spec, None)
                })
                .collect();
            self.require(i, &added, level, |_| true)?;
        }
        Ok(())
    }

    /// Add the requirements of node `from` (decided at `level`) for the
    /// edges `wanted` selects; the first conflict stops it.
    pub(super) fn require(
        &mut self,
        from: usize,
        edges: &Rc<[Edge]>,
        level: usize,
        wanted: impl Fn(&Edge) -> bool,
    ) -> Result<(), Backtrack> {
        // Names met for the first time are passed on as a prefetch hint
        // before any of them is looked at.
        let met: Vec<crate::kb::Wanted> = edges
            .iter()
            .filter(|e| wanted(e))
            .filter(|e| {
                self.ids
                    .get(e.name.as_str())
                    .is_none_or(|&i| self.nodes[i].view.is_none())
            })
            .map(self::wanted)
            .collect();
        self.universe.prefetch(&met);
        for index in 0..edges.len() {
            if !wanted(&edges[index]) {
                continue;
            }
            let t = self.intern(&edges[index].name);
            let req = Req {
                from: Some(from),
                edges: edges.clone(),
                index,
                level,
            };
            self.add_req(t, req)?;
        }
        Ok(())
    }
}
