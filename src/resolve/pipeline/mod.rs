//! The units of one run: prescriptions filtered once by `should_include`
//! (to a fixed point, so `dependencies` between units work), then asked at
//! their phases — boots before resolution, sieves and pseudonyms on candidate
//! versions, steps on each action, strides on complete stacks, wraps on the
//! accepted stack.

mod info;
mod step;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use info::InfoOrigin;

use crate::prescription::Prescriptions;
use crate::prescription::eval::{Context, PackageRef, match_fires, matcher_admits, should_include};
use crate::prescription::schema::{AddPackage, Message, MessageType, Unit, UnitKind};
use crate::python::{Version, VersionSpecifiers};

/// A unit refused the request or stopped the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Unit name.
    pub unit: String,
    /// Its message.
    pub message: String,
    /// The packages of the stack the unit matched on (empty when it
    /// matched on no package).
    pub culprits: Vec<String>,
}

/// What the steps said about one action.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// Take the action with this score (sum of clamped unit scores).
    Accept {
        /// Score added to the stack.
        score: f64,
        /// Justifications of the units that fired.
        justification: Vec<Message>,
        /// Packages units add to the stack (`step.AddPackage`).
        add: Vec<AddPackage>,
    },
    /// A unit rejects the action.
    NotAcceptable {
        /// The unit.
        unit: String,
        /// Why.
        message: String,
        /// Other packages whose presence made the unit fire.
        culprits: Vec<String>,
    },
    /// Leave the package (and what it would pull in) out of the stack.
    Skip {
        /// The unit.
        unit: String,
    },
}

/// A resolved package as units see it.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// Normalised name.
    pub name: String,
    /// Version.
    pub version: Version,
    /// Index URL.
    pub index_url: String,
    /// Only needed for development?
    pub develop: bool,
}

impl Pinned {
    fn as_ref(&self) -> PackageRef<'_> {
        PackageRef {
            name: &self.name,
            version: &self.version,
            index_url: &self.index_url,
            develop: self.develop,
        }
    }
}

/// An alternative package a pseudonym offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Unit that offered it.
    pub unit: String,
    /// Name of the alternative.
    pub name: String,
    /// Required version: the matched version, or a specifier.
    pub version: OfferedVersion,
}

/// Which versions of an alternative are offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferedVersion {
    /// The same version as the package it replaces.
    Same(Version),
    /// Versions in this specifier.
    Spec(VersionSpecifiers),
}

/// Units included in one run, with what they reported.
pub struct Pipeline<'p> {
    prescriptions: &'p Prescriptions,
    included_count: usize,
    /// Step units whose `state` names a package: name → unit indexes.
    by_state_name: HashMap<String, Vec<usize>>,
    /// Included units routed to each package, per unit list (a package may
    /// have hundreds of wraps; a lookup of its steps skips them).
    routes: HashMap<String, [Vec<usize>; LISTS]>,
    /// Included units about no particular package, per unit list.
    generic: [Vec<usize>; LISTS],
    /// stack_info entries, each once per origin, in the order raised
    /// (every stack tried contributes; see [`Self::stack_info_for`]).
    pub stack_info: Vec<Message>,
    info_origin: Vec<InfoOrigin>,
    seen_info: BTreeSet<String>,
    /// How often each unit acted (report `pipeline`).
    pub ran: BTreeMap<String, (UnitKind, usize)>,
    /// Set when a unit asked to stop the pipeline.
    pub eager_stop: Option<Refusal>,
    /// Some included step can raise a stack's score. Without one no score
    /// exceeds 0: steps and advisories only lower it.
    pub rewards: bool,
}

fn clamp(score: f64) -> f64 {
    if score.is_finite() {
        score.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

impl<'p> Pipeline<'p> {
    /// Include the units of `prescriptions` that apply in `ctx`, repeating
    /// rounds until no unit is added (units may depend on other units).
    pub fn new(prescriptions: &'p Prescriptions, ctx: &Context) -> Self {
        let mut included = vec![false; prescriptions.units.len()];
        let mut names: BTreeSet<String> = BTreeSet::new();
        loop {
            let mut added = false;
            let round_ctx = Context {
                included: &names,
                ..ctx.clone()
            };
            let mut new_names = Vec::new();
            for (i, unit) in prescriptions.units.iter().enumerate() {
                if !included[i] && should_include(unit, &round_ctx) {
                    included[i] = true;
                    new_names.push(unit.name.clone());
                    added = true;
                }
            }
            names.extend(new_names);
            if !added {
                break;
            }
        }
        let mut by_state_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, unit) in prescriptions.units.iter().enumerate() {
            if !included[i] || !is_step(unit.kind) || unit.kind == UnitKind::StepGroup {
                continue;
            }
            for m in unit.matches() {
                for r in m.state.iter().flat_map(|s| &s.resolved_dependencies) {
                    if let Some(n) = &r.name {
                        let list = by_state_name.entry(n.clone()).or_default();
                        if list.last() != Some(&i) {
                            list.push(i);
                        }
                    }
                }
            }
        }
        let mut routes: HashMap<String, [Vec<usize>; LISTS]> = HashMap::new();
        for (name, list) in &prescriptions.by_package {
            let mut lists: [Vec<usize>; LISTS] = Default::default();
            for &i in list.iter().filter(|&&i| included[i]) {
                lists[list_of(prescriptions.units[i].kind)].push(i);
            }
            if lists.iter().any(|l| !l.is_empty()) {
                routes.insert(name.clone(), lists);
            }
        }
        let mut generic: [Vec<usize>; LISTS] = Default::default();
        for &i in prescriptions.generic.iter().filter(|&&i| included[i]) {
            generic[list_of(prescriptions.units[i].kind)].push(i);
        }
        let rewards = prescriptions
            .units
            .iter()
            .zip(&included)
            .any(|(unit, &inc)| {
                inc && is_step(unit.kind) && unit.run().score.is_some_and(|s| clamp(s) > 0.0)
            });
        Self {
            rewards,
            prescriptions,
            included_count: included.iter().filter(|b| **b).count(),
            by_state_name,
            routes,
            generic,
            stack_info: Vec::new(),
            info_origin: Vec::new(),
            seen_info: BTreeSet::new(),
            ran: BTreeMap::new(),
            eager_stop: None,
        }
    }

    /// Number of units included.
    pub fn included_count(&self) -> usize {
        self.included_count
    }

    /// Included units of `kinds` routed to `name` (specific first, then generic).
    fn units_for<'a>(
        &'a self,
        name: &str,
        kinds: &'a [UnitKind],
    ) -> impl Iterator<Item = (usize, &'p Unit)> + 'a {
        let p = self.prescriptions;
        // Every caller asks for kinds of one unit list.
        let list = kinds.first().map_or(0, |k| list_of(*k));
        debug_assert!(kinds.iter().all(|k| list_of(*k) == list));
        self.routes
            .get(name)
            .map(|lists| &lists[list])
            .into_iter()
            .flatten()
            .chain(&self.generic[list])
            .copied()
            .filter(move |&i| kinds.contains(&p.units[i].kind) && p.units[i].usable())
            .map(move |i| (i, &p.units[i]))
    }

    fn generic_units<'a>(&'a self, kinds: &'a [UnitKind]) -> impl Iterator<Item = &'p Unit> + 'a {
        let p = self.prescriptions;
        let list = kinds.first().map_or(0, |k| list_of(*k));
        self.generic[list]
            .iter()
            .copied()
            .filter(move |&i| kinds.contains(&p.units[i].kind) && p.units[i].usable())
            .map(move |i| &p.units[i])
    }

    /// Run boots: generic ones once, package ones once per matching direct
    /// dependency. A `not_acceptable` refuses the request.
    pub fn boots(&mut self, direct: &[String]) -> Result<(), Refusal> {
        let p = self.prescriptions;
        // Only boots about a direct dependency or about no package can fire;
        // they run in load order.
        let boots = list_of(UnitKind::Boot);
        let mut candidates: Vec<usize> = direct
            .iter()
            .filter_map(|d| self.routes.get(d))
            .flat_map(|lists| &lists[boots])
            .chain(&self.generic[boots])
            .copied()
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        for i in candidates {
            let unit = &p.units[i];
            if unit.kind != UnitKind::Boot || !unit.usable() {
                continue;
            }
            let fires_for: Vec<Option<&str>> = if unit.matches().is_empty() {
                vec![None]
            } else {
                direct
                    .iter()
                    .filter(|d| {
                        unit.matches()
                            .iter()
                            .any(|m| m.package_name.as_deref() == Some(d.as_str()))
                    })
                    .map(|d| Some(d.as_str()))
                    .collect()
            };
            for pkg in fires_for {
                self.acted(unit, pkg, InfoOrigin::default());
                if let Some(msg) = &unit.run().not_acceptable {
                    return Err(Refusal {
                        unit: unit.name.clone(),
                        message: msg.clone(),
                        culprits: Vec::new(),
                    });
                }
            }
        }
        if let Some(stop) = self.eager_stop.clone() {
            return Err(stop);
        }
        Ok(())
    }

    /// Does a `sieve.SkipPackage` unit drop `name` from the stack?
    pub fn skip_package(&mut self, name: &str) -> Option<String> {
        let unit = self
            .units_for(name, &[UnitKind::SieveSkipPackage])
            .map(|(_, u)| u)
            .find(|u| {
                u.matches()
                    .iter()
                    .any(|m| m.package_name.as_deref() == Some(name))
            })?;
        self.acted(unit, Some(name), InfoOrigin::about_name(name));
        Some(unit.name.clone())
    }

    /// Which releases of `name` the sieves remove: for each version, the
    /// removing unit's name, or `None` when kept.
    pub fn sieve(
        &mut self,
        name: &str,
        versions: &[&Version],
        index_url: &str,
    ) -> Vec<Option<String>> {
        let units: Vec<&Unit> = self
            .units_for(name, &[UnitKind::Sieve])
            .map(|(_, u)| u)
            .collect();
        let mut out = vec![None; versions.len()];
        for unit in units {
            let mut removed_any = false;
            for (slot, v) in out.iter_mut().zip(versions) {
                if slot.is_some() {
                    continue;
                }
                let pr = PackageRef {
                    name,
                    version: v,
                    index_url,
                    develop: false,
                };
                if match_fires(unit, Some(&pr), &[]) {
                    *slot = Some(unit.name.clone());
                    removed_any = true;
                }
            }
            if removed_any {
                self.acted(unit, Some(name), InfoOrigin::about_name(name));
            }
        }
        out
    }

    /// Could a pseudonym offer alternatives for `name`?
    pub fn has_pseudonyms_for(&self, name: &str) -> bool {
        self.units_for(name, &[UnitKind::Pseudonym])
            .next()
            .is_some()
    }

    /// Alternatives pseudonyms offer for `name` at `version`.
    pub fn pseudonyms(&mut self, name: &str, version: &Version, index_url: &str) -> Vec<Offer> {
        let units: Vec<&Unit> = self
            .units_for(name, &[UnitKind::Pseudonym])
            .map(|(_, u)| u)
            .collect();
        let pr = PackageRef {
            name,
            version,
            index_url,
            develop: false,
        };
        let mut out = Vec::new();
        for unit in units {
            let Some(y) = &unit.run().pseudonym else {
                continue;
            };
            if !match_fires(unit, Some(&pr), &[]) || y.name == name {
                continue;
            }
            self.acted(unit, Some(name), InfoOrigin::about_name(name));
            out.push(Offer {
                unit: unit.name.clone(),
                name: y.name.clone(),
                version: match (&y.locked_version, y.yield_matched_version) {
                    (Some(spec), _) => OfferedVersion::Spec(spec.clone()),
                    (None, _) => OfferedVersion::Same(version.clone()),
                },
            });
        }
        out
    }

    /// Run strides on a complete stack: `Some` when one discards it.
    pub fn stride(&mut self, resolved: &[Pinned]) -> Option<Refusal> {
        let refs: Vec<PackageRef> = resolved.iter().map(Pinned::as_ref).collect();
        let units = self.candidate_units(resolved, UnitKind::Stride);
        for unit in units {
            if match_fires(unit, None, &refs) {
                let pins = unit
                    .matches()
                    .iter()
                    .filter_map(|m| m.state.as_ref())
                    .flat_map(|s| &s.resolved_dependencies)
                    .flat_map(|want| refs.iter().filter(|r| matcher_admits(want, r)))
                    .map(|r| (r.name.to_string(), r.version.clone()))
                    .collect();
                self.acted(
                    unit,
                    None,
                    InfoOrigin {
                        pins,
                        ..InfoOrigin::default()
                    },
                );
                if let Some(msg) = &unit.run().not_acceptable {
                    let mut culprits: Vec<String> = unit
                        .matches()
                        .iter()
                        .filter_map(|m| m.state.as_ref())
                        .flat_map(|s| &s.resolved_dependencies)
                        .flat_map(|want| refs.iter().filter(|r| matcher_admits(want, r)))
                        .map(|r| r.name.to_string())
                        .collect();
                    culprits.sort();
                    culprits.dedup();
                    return Some(Refusal {
                        unit: unit.name.clone(),
                        message: msg.clone(),
                        culprits,
                    });
                }
            }
        }
        None
    }

    /// Run wraps on the accepted stack; their justifications.
    pub fn wraps(&mut self, resolved: &[Pinned]) -> Vec<Message> {
        let refs: Vec<PackageRef> = resolved.iter().map(Pinned::as_ref).collect();
        let mut out = Vec::new();
        for kind in [UnitKind::Wrap, UnitKind::WrapGhReleaseNotes] {
            for unit in self.candidate_units(resolved, kind) {
                if !match_fires(unit, None, &refs) {
                    continue;
                }
                let about = unit
                    .matches()
                    .iter()
                    .filter_map(|m| m.state.as_ref())
                    .flat_map(|s| &s.resolved_dependencies)
                    .find_map(|want| refs.iter().find(|r| matcher_admits(want, r)))
                    .map(|r| r.name.to_string());
                let pins = about
                    .iter()
                    .filter_map(|a| refs.iter().find(|r| r.name == a))
                    .map(|r| (r.name.to_string(), r.version.clone()))
                    .collect();
                self.acted(
                    unit,
                    about.as_deref(),
                    InfoOrigin {
                        pins,
                        ..InfoOrigin::default()
                    },
                );
                for m in &unit.run().justification {
                    let mut m = m.clone();
                    if m.package_name.is_none() {
                        m.package_name = about.clone();
                    }
                    out.push(m);
                }
                if let (Some(notes), Some(name)) = (&unit.run().release_notes, &about)
                    && let Some(r) = refs.iter().find(|r| r.name == name)
                {
                    out.push(Message {
                        kind: MessageType::Info,
                        message: format!("Release notes for {} {}", r.name, r.version),
                        link: vec![format!(
                            "https://github.com/{}/{}/releases/tag/{}{}",
                            notes.organization,
                            notes.repository,
                            notes.tag_version_prefix.as_deref().unwrap_or(""),
                            r.version
                        )],
                        package_name: Some(name.clone()),
                        extra: BTreeMap::new(),
                    });
                }
            }
        }
        out
    }

    /// Included units of `kind` that may concern a stack: those routed to a
    /// resolved name, then generic ones, each once, in load order.
    fn candidate_units(&self, resolved: &[Pinned], kind: UnitKind) -> Vec<&'p Unit> {
        let p = self.prescriptions;
        let list = list_of(kind);
        let mut idx: BTreeSet<usize> = BTreeSet::new();
        for r in resolved {
            if let Some(lists) = self.routes.get(&r.name) {
                idx.extend(lists[list].iter().copied());
            }
        }
        let mut out: Vec<&Unit> = idx
            .into_iter()
            .filter(|&i| p.units[i].kind == kind && p.units[i].usable())
            .map(|i| &p.units[i])
            .collect();
        out.extend(self.generic_units(&[kind]));
        out
    }
}

/// Unit lists (boots, pseudonyms, sieves, steps, strides, wraps).
const LISTS: usize = 6;

/// The list a kind of unit belongs to, as an index below [`LISTS`].
fn list_of(kind: UnitKind) -> usize {
    match kind.list() {
        "boots" => 0,
        "pseudonyms" => 1,
        "sieves" => 2,
        "steps" => 3,
        "strides" => 4,
        _ => 5,
    }
}

const STEPS: &[UnitKind] = &[
    UnitKind::Step,
    UnitKind::StepSkipPackage,
    UnitKind::StepAddPackage,
    UnitKind::StepGroup,
];

fn is_step(kind: UnitKind) -> bool {
    matches!(
        kind,
        UnitKind::Step | UnitKind::StepSkipPackage | UnitKind::StepAddPackage | UnitKind::StepGroup
    )
}

/// Names a unit's `state` or `group` matchers refer to.
fn referenced_names(unit: &Unit) -> Vec<String> {
    let mut out = Vec::new();
    for m in unit.matches() {
        for r in m.state.iter().flat_map(|s| &s.resolved_dependencies) {
            out.extend(r.name.clone());
        }
        for g in &m.group {
            out.extend(g.name.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}
