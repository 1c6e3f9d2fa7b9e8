//! Stage 4: the resolver. Boots run first; then complete backtracking
//! episodes ([`solver`]) decide one package at a time, with sieves and
//! pseudonyms shaping candidate versions and steps scoring (or refusing)
//! each action; strides check complete stacks and wraps annotate the one
//! returned. The result is a [`Resolution`] the writers turn into locks and
//! reports, or an [`Explanation`] of why no stack exists.

pub mod conflict;
pub mod derivation;
pub mod explore;
pub mod hash;
pub mod pipeline;
pub mod polish;
pub mod rules;
pub mod security;
pub mod solver;
pub mod universe;

use std::collections::BTreeMap;

pub use derivation::Derivation;
pub use explore::{Budget, Exploration, explore};
pub use pipeline::{Pipeline, Refusal};
pub use solver::{Action, Counters, Episode, NewestFirst, Phase, Policy, Predictor, SearchRules};
pub use universe::{Edge, Universe};

use crate::kb::KbError;
use crate::prescription::schema::{Message, UnitKind};
use crate::python::{ExtraName, MarkerTree, Version, VersionSpecifiers};
use solver::Solver;

/// A requirement of the project itself.
#[derive(Debug, Clone)]
pub struct RootRequirement {
    /// Normalised name.
    pub name: String,
    /// Extras requested.
    pub extras: Vec<ExtraName>,
    /// Version specifiers.
    pub spec: VersionSpecifiers,
    /// Marker with its text.
    pub marker: Option<(MarkerTree, String)>,
    /// From dev-packages / the dev group.
    pub develop: bool,
}

impl RootRequirement {
    /// From a parsed requirement of the project.
    pub fn from_requirement(r: &crate::python::Requirement, develop: bool) -> Self {
        Self {
            name: r.name.to_string(),
            extras: r.extras.clone(),
            spec: r.specifiers.clone(),
            marker: r.marker.as_ref().map(|m| (m.tree.clone(), m.text.clone())),
            develop,
        }
    }
}

/// Why a package is in the stack.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Via {
    /// Requiring package and version; `None` = the project.
    pub from: Option<(String, String)>,
    /// Requirement as written (`name[extras]spec`).
    pub requirement: String,
    /// Marker of the requirement (extra clauses dropped).
    pub marker: Option<String>,
}

/// One package of a resolved stack.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResolvedPackage {
    /// Normalised name.
    pub name: String,
    /// Version.
    #[serde(serialize_with = "ser_display")]
    pub version: Version,
    /// Extras whose dependencies are included.
    pub extras: Vec<String>,
    /// Needed by the runtime requirements.
    pub default: bool,
    /// Needed by the development requirements.
    pub develop: bool,
    /// Requirement edges that bring it in.
    pub via: Vec<Via>,
    /// Marker for the lock (none when some edge is unconditional).
    pub markers: Option<String>,
    /// Newer releases and why each was not taken.
    pub newer_rejected: Vec<(String, String)>,
    /// For a direct dependency not locked at the newest final release its
    /// project requirement admits: that release and why it was not taken.
    pub held_back: Option<(String, String)>,
    /// Score of choosing it.
    pub score: f64,
    /// Unit justifications about it.
    pub justification: Vec<Message>,
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Counters of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Statistics {
    /// Predictor that steered the episodes.
    pub predictor: String,
    /// Complete search episodes run.
    pub episodes: u64,
    /// Episodes that found a stack.
    pub accepted: u64,
    /// Distinct stacks found.
    pub distinct: u64,
    /// Episode (from 1) that found this stack.
    pub found_in_episode: u64,
    /// Episodes of the polish pass that ended the exploration.
    pub polish_episodes: u64,
    /// Wall-clock time of the exploration, in seconds.
    pub seconds: f64,
    /// Search counters summed over episodes.
    pub search: Counters,
    /// Projects looked up in the knowledge base.
    pub projects_loaded: usize,
    /// Units included in the run.
    pub units_included: usize,
}

/// A resolved stack.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolution {
    /// Packages sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// Packages left out or replaced by units (name → what happened).
    pub skipped: BTreeMap<String, String>,
    /// Sum of step scores.
    pub score: f64,
    /// Justification of the stack (steps and wraps).
    pub justification: Vec<Message>,
    /// Run-level messages from units.
    pub stack_info: Vec<Message>,
    /// Units that acted: name → (kind, times).
    pub pipeline: BTreeMap<String, (UnitKind, usize)>,
    /// Counters.
    pub statistics: Statistics,
}

/// A package the search ran out of versions for.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Culprit {
    /// Name.
    pub name: String,
    /// Requirements on it, each with its chain to the project.
    pub required_by: Vec<String>,
    /// Reasons with the versions they excluded.
    pub rejected: Vec<(String, Vec<String>)>,
}

/// Why no stack exists.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    /// The packages at the heart of the conflict, most contested first.
    pub culprits: Vec<Culprit>,
    /// The failure that ended the search, down to the clash.
    pub derivation: Option<Box<Derivation>>,
    /// What the units said while the search looked (reported beside the
    /// explanation, as a success reports its stack's).
    #[serde(skip)]
    pub stack_info: Vec<Message>,
    /// Units that acted: name → (kind, times).
    #[serde(skip)]
    pub pipeline: BTreeMap<String, (UnitKind, usize)>,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(derivation) = &self.derivation {
            return write!(f, "{derivation}");
        }
        for (i, c) in self.culprits.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(
                f,
                "no version of {} satisfies every requirement on it:",
                c.name
            )?;
            for r in &c.required_by {
                writeln!(f, "  required: {r}")?;
            }
            for (reason, versions) in &c.rejected {
                let shown: Vec<&str> = versions.iter().take(6).map(String::as_str).collect();
                let more = if versions.len() > 6 {
                    format!(" and {} more", versions.len() - 6)
                } else {
                    String::new()
                };
                writeln!(f, "  {} {}{more}: {reason}", c.name, shown.join(", "))?;
            }
            if c.rejected.is_empty() {
                writeln!(f, "  the snapshot has no release of {}", c.name)?;
            }
        }
        Ok(())
    }
}

/// How a resolution failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The knowledge base could not be read.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// A boot refused the request.
    #[error("unit {} refused the request: {}", .0.unit, .0.message)]
    Refused(Refusal),
    /// A unit stopped the pipeline before any stack was found.
    #[error("unit {} stopped the pipeline before a stack was found: {}", .0.unit, .0.message)]
    Stopped(Refusal),
    /// A project requirement names a package the snapshot lacks.
    #[error("{0}")]
    Unknown(String),
    /// No stack satisfies the requirements.
    #[error("no stack satisfies the requirements\n{0}")]
    NoSolution(Explanation),
    /// Every stack found failed the final check: a bug, reported as such.
    #[error(
        "internal error: every stack found failed the final check against its own requirements; please report this bug:\n  {}",
        .0.join("\n  ")
    )]
    Invalid(Vec<String>),
}

/// Everything one resolution needs.
pub struct Request<'a> {
    /// The project's requirements (markers not yet evaluated).
    pub roots: Vec<RootRequirement>,
    /// Search rules.
    pub rules: SearchRules,
    /// Units of the run.
    pub pipeline: Pipeline<'a>,
}

/// Resolve `request` against `universe` in one newest-first episode: the
/// stack pip or uv would pick on the same data.
pub fn resolve(
    universe: &mut Universe<'_>,
    request: Request<'_>,
) -> Result<Resolution, ResolveError> {
    let mut found = explore(universe, request, &mut NewestFirst, &Budget::single())?;
    Ok(found.products.remove(0))
}

fn explain(solver: &Solver) -> Explanation {
    let mut failed: Vec<&solver::Node> = solver
        .nodes
        .iter()
        .filter(|n| n.last_failure.is_some())
        .collect();
    failed.sort_by_key(|n| (std::cmp::Reverse(n.failures), n.seq));
    Explanation {
        culprits: failed
            .into_iter()
            .take(3)
            .map(|n| {
                let record = n.last_failure.as_ref().expect("filtered");
                let d = Derivation::flat(record);
                Culprit {
                    name: n.name.clone(),
                    required_by: d.required_by,
                    rejected: d
                        .rejected
                        .into_iter()
                        .map(|step| (step.reason, step.versions))
                        .collect(),
                }
            })
            .collect(),
        derivation: solver
            .derivation()
            .map(|root| Box::new(Derivation::from_record(&root))),
        stack_info: solver.pipeline.stack_info.clone(),
        pipeline: solver.pipeline.ran.clone(),
    }
}

/// How the reason for a newer release the search never reached begins
/// (the polish pass replaces such reasons with what it found).
pub const NOT_TRIED: &str = "not tried: ";

/// Why release `r` of node `i`, newer than the one decided (`d`), is not
/// in the stack: an exclusion that holds in the final stack, else what
/// happened when the search tried it, else that the search's order never
/// reached it.
fn passed_over(solver: &Solver, i: usize, d: &solver::Decision, r: usize) -> String {
    if let Some(ex) = solver.exclusion(i, r) {
        return ex.to_string();
    }
    if let Some((_, why)) = d.passed_over.iter().find(|(x, _)| *x == r) {
        return format!("tried: {why}");
    }
    let view = solver.nodes[i]
        .view
        .as_ref()
        .expect("decided nodes have views");
    if view.releases[r].prerelease && !d.options.contains(&r) {
        return solver::Exclusion::Prerelease.to_string();
    }
    match d.release() {
        // A candidate not tried: the policy put the decided release first.
        Some(chosen) if d.options.contains(&r) => format!(
            "{NOT_TRIED}the predictor ordered {} before it and that led to a stack",
            view.version(chosen)
        ),
        _ => "not a candidate when the package was decided".to_string(),
    }
}

fn edge_marker(edge: &Edge) -> Option<String> {
    let tree = edge.marker.clone()?;
    let simplified = tree.simplify_extras_with(|_| true);
    if simplified.is_true() {
        return None;
    }
    simplified.try_to_string()
}

/// Which decided nodes the runtime (default) and the dev roots reach.
fn reach(nodes: &[solver::Node], develop_of_root: &[bool]) -> (Vec<bool>, Vec<bool>) {
    let n = nodes.len();
    let mut default = vec![false; n];
    let mut develop = vec![false; n];
    loop {
        let mut changed = false;
        for (i, node) in nodes.iter().enumerate() {
            if node.decision.is_none() {
                continue;
            }
            for q in &node.reqs {
                let (d, v) = match q.from {
                    None => (!develop_of_root[q.index], develop_of_root[q.index]),
                    Some(f) => (default[f], develop[f]),
                };
                if d && !default[i] {
                    default[i] = true;
                    changed = true;
                }
                if v && !develop[i] {
                    develop[i] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return (default, develop);
        }
    }
}

/// Who requires `node`, with what and under which markers.
fn via_of(solver: &Solver, node: &solver::Node) -> Vec<Via> {
    node.reqs
        .iter()
        .map(|q| Via {
            from: q.from.map(|f| {
                (
                    solver.nodes[f].name.clone(),
                    solver
                        .decided_version(f)
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            }),
            requirement: q.edge().requirement_text(),
            marker: if q.from.is_none() {
                q.edge().marker_text.clone()
            } else {
                edge_marker(q.edge())
            },
        })
        .collect()
}

/// The markers a package is needed under: `None` when one requirement on
/// it holds everywhere, else the requirements' markers or-ed.
fn markers_of(via: &[Via]) -> Option<String> {
    if via.iter().any(|v| v.marker.is_none()) {
        return None;
    }
    let mut ms: Vec<String> = via.iter().filter_map(|v| v.marker.clone()).collect();
    ms.sort();
    ms.dedup();
    if ms.len() == 1 {
        ms.pop()
    } else {
        Some(
            ms.iter()
                .map(|m| format!("({m})"))
                .collect::<Vec<_>>()
                .join(" or "),
        )
    }
}

/// The newest release above `rel` the project's own requirements admit
/// (not a pre-release, yanked or too new), when the project requires the
/// package directly: the release a user would expect instead.
fn held_back(node: &solver::Node, view: &universe::ProjectView, rel: usize) -> Option<usize> {
    let direct: Vec<&solver::Req> = node.reqs.iter().filter(|q| q.from.is_none()).collect();
    if direct.is_empty() {
        return None;
    }
    (0..rel).find(|&r| {
        let info = &view.releases[r];
        !info.prerelease
            && !matches!(
                info.rejection,
                Some(crate::kb::Rejection::Yanked(_) | crate::kb::Rejection::TooNew(_))
            )
            && direct.iter().all(|q| q.edge().admits(view, r))
    })
}

fn collect(solver: &Solver, develop_of_root: &[bool]) -> Resolution {
    let nodes = &solver.nodes;
    let (default, develop) = reach(nodes, develop_of_root);
    let mut packages = Vec::new();
    let mut skipped = BTreeMap::new();
    let mut score = 0.0;
    let mut justification = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let Some(d) = &node.decision else { continue };
        let rel = match &d.choice {
            solver::Choice::Release(rel) => *rel,
            solver::Choice::Skipped { unit } => {
                skipped.insert(node.name.clone(), format!("left out by unit {unit}"));
                continue;
            }
            solver::Choice::Replaced {
                unit, requirement, ..
            } => {
                skipped.insert(
                    node.name.clone(),
                    format!("replaced by {requirement} (unit {unit})"),
                );
                continue;
            }
        };
        let view = node.view.as_ref().expect("decided nodes have views");
        let version = view.version(rel).clone();
        let via = via_of(solver, node);
        let markers = markers_of(&via);
        let newer_rejected: Vec<(String, String)> = (0..rel)
            .map(|r| (view.version(r).to_string(), passed_over(solver, i, d, r)))
            .collect();
        let held_back = held_back(node, view, rel).map(|r| newer_rejected[r].clone());
        score += d.score;
        justification.extend(d.justification.iter().cloned());
        packages.push(ResolvedPackage {
            name: node.name.clone(),
            version,
            extras: d.extras.iter().map(ToString::to_string).collect(),
            default: default[i],
            develop: develop[i],
            via,
            markers,
            newer_rejected,
            held_back,
            score: d.score,
            justification: d.justification.clone(),
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Resolution {
        packages,
        skipped,
        score,
        justification,
        stack_info: Vec::new(),
        pipeline: BTreeMap::new(),
        statistics: Statistics::default(),
    }
}
