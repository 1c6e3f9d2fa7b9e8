//! Steps: what the units say about one release as the search is about to
//! decide it (a score, justification, packages to add, or a refusal).

use super::info::InfoOrigin;
use super::{Pinned, Pipeline, STEPS, StepOutcome, clamp, referenced_names};
use crate::prescription::eval::{Introducers, PackageRef, match_fires, step_matches};
use crate::prescription::schema::{Unit, UnitKind};

impl<'p> Pipeline<'p> {
    /// Could any step act when `name` is added? (Lets the search skip
    /// building the resolved list for the common case.)
    pub fn has_steps_for(&self, name: &str) -> bool {
        self.units_for(name, STEPS).next().is_some() || self.by_state_name.contains_key(name)
    }

    /// Do the steps for `name` look at the rest of the stack (a `state`
    /// or `group` condition)? When not, [`Self::step`] needs no resolved
    /// list.
    pub fn steps_need_stack(&self, name: &str) -> bool {
        self.by_state_name.contains_key(name)
            || self.units_for(name, STEPS).any(|(_, u)| {
                u.matches()
                    .iter()
                    .any(|m| m.state.is_some() || !m.group.is_empty())
            })
    }

    /// Units about an already resolved package (in `refs`) whose state
    /// condition `pkg` completes, each with that package's name: they fire
    /// now, whatever the order of resolution.
    fn completed_by(
        &self,
        pkg: &PackageRef<'_>,
        refs: &[PackageRef<'_>],
    ) -> Vec<(&'p Unit, Option<String>)> {
        let mut fired = Vec::new();
        let Some(list) = self.by_state_name.get(pkg.name) else {
            return fired;
        };
        let mut with_new = refs.to_vec();
        with_new.push(pkg.clone());
        for &i in list {
            let unit = &self.prescriptions.units[i];
            for other in refs {
                if other.name == pkg.name {
                    continue;
                }
                if match_fires(unit, Some(other), &with_new)
                    && !match_fires(unit, Some(other), refs)
                {
                    fired.push((unit, Some(other.name.to_string())));
                    break;
                }
            }
        }
        fired
    }

    /// Run the steps for adding `package` to a stack holding `resolved`;
    /// `introduced_by` are the resolved releases that require it and
    /// `direct` says whether the project does (`state.package_version_from`).
    pub fn step(
        &mut self,
        package: &Pinned,
        resolved: &[Pinned],
        introduced_by: &[Pinned],
        direct: bool,
    ) -> StepOutcome {
        let refs: Vec<PackageRef> = resolved.iter().map(Pinned::as_ref).collect();
        let by: Vec<PackageRef> = introduced_by.iter().map(Pinned::as_ref).collect();
        let introducers = Introducers { by: &by, direct };
        let pkg = package.as_ref();
        let mut fired: Vec<(&'p Unit, Option<String>)> = self
            .units_for(&package.name, STEPS)
            .map(|(_, u)| u)
            .filter(|u| {
                if u.kind == UnitKind::StepGroup {
                    match_fires(u, Some(&pkg), &refs)
                } else {
                    u.usable() && step_matches(u, Some(&pkg), &refs, Some(&introducers))
                }
            })
            .map(|u| (u, None))
            .collect();
        fired.extend(self.completed_by(&pkg, &refs));
        let mut score = 0.0;
        let mut justification = Vec::new();
        let mut add = Vec::new();
        for (unit, about) in fired {
            let subject = about.clone().unwrap_or_else(|| package.name.clone());
            let other = about
                .as_deref()
                .and_then(|a| refs.iter().find(|r| r.name == a))
                .map(|r| (r.name.to_string(), r.version.clone()));
            let this = (package.name.clone(), package.version.clone());
            let origin = if unit.run().not_acceptable.is_some() {
                // A refusal concerns stacks that hold an older release of
                // the package it is about.
                InfoOrigin {
                    refused: Some(other.unwrap_or(this)),
                    ..InfoOrigin::default()
                }
            } else {
                InfoOrigin {
                    pins: std::iter::once(this).chain(other).collect(),
                    ..InfoOrigin::default()
                }
            };
            self.acted(unit, Some(&subject), origin);
            if let Some(msg) = &unit.run().not_acceptable {
                let mut culprits = referenced_names(unit);
                culprits.retain(|n| n != &package.name && resolved.iter().any(|r| &r.name == n));
                if let Some(a) = about {
                    culprits.push(a);
                }
                return StepOutcome::NotAcceptable {
                    unit: unit.name.clone(),
                    message: msg.clone(),
                    culprits,
                };
            }
            if unit.kind == UnitKind::StepSkipPackage && about.is_none() {
                return StepOutcome::Skip {
                    unit: unit.name.clone(),
                };
            }
            if let Some(s) = unit.run().score {
                score += clamp(s);
            }
            for m in &unit.run().justification {
                let mut m = m.clone();
                if m.package_name.is_none() {
                    m.package_name = Some(subject.clone());
                }
                justification.push(m);
            }
            if let Some(a) = &unit.run().add_package {
                add.push(a.as_ref().clone());
            }
        }
        StepOutcome::Accept {
            score,
            justification,
            add,
        }
    }
}
