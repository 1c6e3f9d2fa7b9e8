//! Stage 5: the resolved stack as a graph — locked packages as nodes, the
//! requirements that brought them in as edges (specifier, marker, the
//! extra that gates them) — built from a fresh resolution or from an
//! existing lock read back with the knowledge base. The report, `tree` and
//! `why` all walk this one graph.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::kb::{self, CandidateQuery, KbError, KnowledgeBase, Lookup, MetadataAnswer, Requires};
use crate::python::{ExtraName, MarkerEnvironment, Version, parse_extra, parse_version};
use crate::resolve::Resolution;

mod lock;
mod render;

pub use lock::{Locked, read_lock};
pub use render::render_tree;

/// A node: a locked package, or the project itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    /// Normalised name (the project's label for the root).
    pub name: String,
    /// Locked version (`None` for the project).
    pub version: Option<String>,
    /// Extras whose dependencies are included.
    pub extras: Vec<String>,
}

impl Package {
    /// `name version`, or the project's label.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }
}

/// An edge: one requirement of the parent on the child.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    /// As written (`name[extras]specifier`).
    pub requirement: String,
    /// Its marker, `extra ==` clauses left out.
    pub marker: Option<String>,
    /// The parent's extra that gates it.
    pub extra: Option<String>,
}

/// The stack.
#[derive(Debug, Clone)]
pub struct StackGraph {
    graph: DiGraph<Package, Requirement>,
    root: NodeIndex,
    nodes: BTreeMap<String, NodeIndex>,
    /// Newer releases not taken, with why, by package (from the resolution,
    /// or worked out from the knowledge base for a lock).
    pub newer_rejected: BTreeMap<String, Vec<(String, String)>>,
}

/// How a tree is drawn.
#[derive(Debug, Clone, Default)]
pub struct TreeOptions {
    /// Who needs each package, instead of what it needs.
    pub invert: bool,
    /// Levels below the start (`None`: all).
    pub depth: Option<usize>,
    /// Start from this package instead of the project (required with
    /// `invert`: the package whose dependents are shown).
    pub package: Option<String>,
}

/// One node of a drawn tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TreeNode {
    /// Package name (the project's label at the top).
    pub name: String,
    /// Version (`None` for the project).
    pub version: Option<String>,
    /// The requirement on the edge to its parent in the drawing (for an
    /// inverted tree, the requirement this package places on its child).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// Marker of that requirement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// `cycle` (an ancestor in this branch: not expanded) or `shown above`
    /// (expanded elsewhere in the tree: not repeated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
    /// Children.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

/// One step of a path from the project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// The requiring package (`name version`, or the project's label).
    pub from: String,
    /// The requirement.
    pub requirement: String,
    /// Its marker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    /// The required package (`name version`).
    pub to: String,
}

/// A project requirement the lock must satisfy: name, extras, specifier,
/// marker.
#[derive(Debug, Clone)]
pub struct ProjectRequirement {
    /// Normalised name.
    pub name: String,
    /// Extras.
    pub extras: Vec<String>,
    /// Specifier text.
    pub specifier: String,
    /// Marker text.
    pub marker: Option<String>,
}

fn requirement_text(name: &str, extras: &[String], specifier: &str) -> String {
    if extras.is_empty() {
        format!("{name}{specifier}")
    } else {
        format!("{name}[{}]{specifier}", extras.join(","))
    }
}

impl StackGraph {
    fn empty(project: &str) -> Self {
        let mut graph = DiGraph::new();
        let root = graph.add_node(Package {
            name: project.to_string(),
            version: None,
            extras: Vec::new(),
        });
        Self {
            graph,
            root,
            nodes: BTreeMap::new(),
            newer_rejected: BTreeMap::new(),
        }
    }

    fn node(&mut self, name: &str, version: &str) -> NodeIndex {
        if let Some(&n) = self.nodes.get(name) {
            return n;
        }
        let n = self.graph.add_node(Package {
            name: name.to_string(),
            version: Some(version.to_string()),
            extras: Vec::new(),
        });
        self.nodes.insert(name.to_string(), n);
        n
    }

    /// The graph of a fresh resolution (`project` labels the root).
    pub fn from_resolution(resolution: &Resolution, project: &str) -> Self {
        let mut g = Self::empty(project);
        for p in &resolution.packages {
            let n = g.node(&p.name, &p.version.to_string());
            g.graph[n].extras.clone_from(&p.extras);
            g.newer_rejected
                .insert(p.name.clone(), p.newer_rejected.clone());
        }
        for p in &resolution.packages {
            let child = g.nodes[&p.name];
            for via in &p.via {
                let parent = match &via.from {
                    None => g.root,
                    Some((name, version)) => g.node(name, version),
                };
                g.graph.add_edge(
                    parent,
                    child,
                    Requirement {
                        requirement: via.requirement.clone(),
                        marker: via.marker.clone(),
                        extra: None,
                    },
                );
            }
        }
        g
    }

    /// The graph of an existing lock: each locked release's dependencies,
    /// read with `kb` and evaluated for `markers` with the extras asked of
    /// it, walked from the project's `roots`. Locked packages nothing
    /// requires hang from the project with a note as their requirement.
    pub fn from_lock(
        kb: &dyn KnowledgeBase,
        project: &str,
        roots: &[ProjectRequirement],
        locked: &[Locked],
        markers: &MarkerEnvironment,
        query: &CandidateQuery,
    ) -> Result<Self, KbError> {
        let mut g = Self::empty(project);
        let versions: BTreeMap<&str, &str> = locked
            .iter()
            .map(|l| (l.name.as_str(), l.version.as_str()))
            .collect();
        for l in locked {
            g.node(&l.name, &l.version);
        }
        let applies = |marker: &Option<String>, extras: &[ExtraName]| match marker {
            None => true,
            Some(m) => crate::python::parse_marker(m)
                .map(|m| m.tree.evaluate(markers, extras))
                .unwrap_or(false),
        };
        let mut extras: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut todo: Vec<String> = Vec::new();
        for r in roots {
            if !applies(&r.marker, &[]) || !versions.contains_key(r.name.as_str()) {
                continue;
            }
            let child = g.nodes[&r.name];
            g.graph.add_edge(
                g.root,
                child,
                Requirement {
                    requirement: requirement_text(&r.name, &r.extras, &r.specifier),
                    marker: r.marker.clone(),
                    extra: None,
                },
            );
            extras
                .entry(r.name.clone())
                .or_default()
                .extend(r.extras.iter().cloned());
            todo.push(r.name.clone());
        }
        // Walk to a fixed point: new extras reveal more edges.
        let mut done: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut edges: BTreeSet<(String, String, String)> = BTreeSet::new();
        while let Some(name) = todo.pop() {
            let wanted = extras.get(&name).cloned().unwrap_or_default();
            if done.get(&name) == Some(&wanted) {
                continue;
            }
            done.insert(name.clone(), wanted.clone());
            let Some(deps) = locked_dependencies(kb, &name, versions[name.as_str()])? else {
                continue;
            };
            let extra_names: Vec<ExtraName> =
                wanted.iter().filter_map(|e| parse_extra(e).ok()).collect();
            let parent = g.nodes[&name];
            g.graph[parent].extras = wanted.iter().cloned().collect();
            for d in deps.iter() {
                if !applies(&d.marker, &extra_names) || !versions.contains_key(d.name.as_str()) {
                    continue;
                }
                let text = requirement_text(&d.name, &d.extras, &d.specifier);
                if edges.insert((name.clone(), d.name.clone(), text.clone())) {
                    let child = g.nodes[&d.name];
                    g.graph.add_edge(
                        parent,
                        child,
                        Requirement {
                            requirement: text,
                            marker: d.marker.as_deref().and_then(without_extra),
                            extra: d.extra.clone(),
                        },
                    );
                }
                let known = extras.entry(d.name.clone()).or_default();
                let before = known.len();
                known.extend(d.extras.iter().cloned());
                if known.len() != before || !done.contains_key(&d.name) {
                    todo.push(d.name.clone());
                }
            }
        }
        g.hang_unrequired(locked);
        for l in locked {
            let reasons = g.newer_reasons(kb, &l.name, &l.version, query)?;
            g.newer_rejected.insert(l.name.clone(), reasons);
        }
        Ok(g)
    }

    /// Locked packages nothing requires hang from the project, with a
    /// note as their requirement.
    fn hang_unrequired(&mut self, locked: &[Locked]) {
        for l in locked {
            let n = self.nodes[&l.name];
            if self
                .graph
                .edges_directed(n, Direction::Incoming)
                .next()
                .is_none()
            {
                self.graph.add_edge(
                    self.root,
                    n,
                    Requirement {
                        requirement: "(in the lock; nothing requires it)".into(),
                        marker: None,
                        extra: None,
                    },
                );
            }
        }
    }

    /// Why each release newer than `version` of `name` is not in the lock:
    /// the target cannot use it, or a requirement in the graph excludes it
    /// (naming both), else it is allowed by every requirement here.
    fn newer_reasons(
        &self,
        kb: &dyn KnowledgeBase,
        name: &str,
        version: &str,
        query: &CandidateQuery,
    ) -> Result<Vec<(String, String)>, KbError> {
        let Ok(locked) = parse_version(version) else {
            return Ok(Vec::new());
        };
        let Lookup::Found(record) = kb.project(name)? else {
            return Ok(Vec::new());
        };
        let node = self.nodes[name];
        let requirements: Vec<(String, String, crate::python::VersionSpecifiers)> = self
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter_map(|e| {
                let text = &e.weight().requirement;
                // A note such as "(in the lock; nothing requires it)" is not
                // a requirement and excludes nothing.
                let parsed = crate::python::parse_requirement(text).ok()?;
                Some((
                    self.graph[e.source()].label(),
                    text.clone(),
                    parsed.specifiers,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for c in kb::candidates(&record, query) {
            let v: &Version = &c.release.version;
            if *v <= locked {
                continue;
            }
            let why = if let Some(r) = &c.rejection {
                r.to_string()
            } else if let Some((by, text, _)) =
                requirements.iter().find(|(_, _, spec)| !spec.contains(v))
            {
                format!("excluded by {text} (required by {by})")
            } else if v.any_prerelease() {
                "a pre-release (not taken unless asked for)".to_string()
            } else if !c.release.advisories.is_empty() {
                format!(
                    "allowed by every requirement on it here, but affected by {} (the security and stable recommendations avoid it)",
                    c.release.advisories.join(", ")
                )
            } else {
                "allowed by every requirement on it here; the lock was made without it (older data, a recommendation type or a unit chose otherwise)".to_string()
            };
            out.push((v.to_string(), why));
        }
        Ok(out)
    }

    /// The project node's label.
    pub fn project(&self) -> &str {
        &self.graph[self.root].name
    }

    /// A locked package.
    pub fn package(&self, name: &str) -> Option<&Package> {
        self.nodes.get(name).map(|&n| &self.graph[n])
    }

    /// Every locked package, by name.
    pub fn packages(&self) -> impl Iterator<Item = &Package> {
        self.nodes.values().map(|&n| &self.graph[n])
    }

    /// The requirements on `name`: (requiring package's label, requirement).
    pub fn requirements_on(&self, name: &str) -> Vec<(String, &Requirement)> {
        let Some(&n) = self.nodes.get(name) else {
            return Vec::new();
        };
        let mut out: Vec<(String, &Requirement)> = self
            .graph
            .edges_directed(n, Direction::Incoming)
            .map(|e| {
                let from = if e.source() == self.root {
                    "the project".to_string()
                } else {
                    self.graph[e.source()].label()
                };
                (from, e.weight())
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.requirement).cmp(&(&b.0, &b.1.requirement)));
        out
    }

    /// Every edge as (parent name or `None` for the project, child name).
    pub fn edges(&self) -> BTreeSet<(Option<String>, String)> {
        self.graph
            .edge_references()
            .map(|e| {
                let from = (e.source() != self.root).then(|| self.graph[e.source()].name.clone());
                (from, self.graph[e.target()].name.clone())
            })
            .collect()
    }

    /// Every edge as a step (requiring package, requirement, required
    /// package), in name order.
    pub fn steps(&self) -> Vec<Step> {
        let mut out: Vec<Step> = self
            .graph
            .edge_references()
            .map(|e| Step {
                from: if e.source() == self.root {
                    "the project".to_string()
                } else {
                    self.graph[e.source()].label()
                },
                requirement: e.weight().requirement.clone(),
                marker: e.weight().marker.clone(),
                to: self.graph[e.target()].label(),
            })
            .collect();
        out.sort_by(|a, b| (&a.to, &a.from, &a.requirement).cmp(&(&b.to, &b.from, &b.requirement)));
        out
    }

    /// Draw the tree. `None` when `options.package` is not in the stack.
    pub fn tree(&self, options: &TreeOptions) -> Option<TreeNode> {
        let start = match &options.package {
            Some(name) => *self.nodes.get(name)?,
            None => self.root,
        };
        let direction = if options.invert {
            Direction::Incoming
        } else {
            Direction::Outgoing
        };
        let mut expanded = BTreeSet::new();
        let mut path = Vec::new();
        Some(self.draw(
            start,
            None,
            direction,
            options.depth,
            &mut path,
            &mut expanded,
        ))
    }

    fn draw(
        &self,
        n: NodeIndex,
        via: Option<&Requirement>,
        direction: Direction,
        depth: Option<usize>,
        path: &mut Vec<NodeIndex>,
        expanded: &mut BTreeSet<NodeIndex>,
    ) -> TreeNode {
        let p = &self.graph[n];
        let mut node = TreeNode {
            name: p.name.clone(),
            version: p.version.clone(),
            requirement: via.map(|r| r.requirement.clone()),
            marker: via.and_then(|r| r.marker.clone()),
            note: None,
            children: Vec::new(),
        };
        if path.contains(&n) {
            node.note = Some("cycle");
            return node;
        }
        if !expanded.insert(n) {
            let has_children = self.graph.edges_directed(n, direction).next().is_some();
            if has_children {
                node.note = Some("shown above");
            }
            return node;
        }
        if depth == Some(path.len()) {
            return node;
        }
        let mut next: Vec<(NodeIndex, &Requirement)> = self
            .graph
            .edges_directed(n, direction)
            .map(|e| {
                let other = if direction == Direction::Outgoing {
                    e.target()
                } else {
                    e.source()
                };
                (other, e.weight())
            })
            .collect();
        next.sort_by(|a, b| {
            (&self.graph[a.0].name, &a.1.requirement)
                .cmp(&(&self.graph[b.0].name, &b.1.requirement))
        });
        path.push(n);
        for (other, requirement) in next {
            node.children.push(self.draw(
                other,
                Some(requirement),
                direction,
                depth,
                path,
                expanded,
            ));
        }
        path.pop();
        node
    }

    /// Every path from the project to `name` (at most `limit`), each a list
    /// of steps, shortest first.
    pub fn paths_to(&self, name: &str, limit: usize) -> Vec<Vec<Step>> {
        let Some(&target) = self.nodes.get(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut stack: Vec<Step> = Vec::new();
        let mut on_path = vec![self.root];
        self.walk_paths(self.root, target, &mut stack, &mut on_path, &mut out, limit);
        out.sort_by_key(Vec::len);
        out
    }

    fn walk_paths(
        &self,
        at: NodeIndex,
        target: NodeIndex,
        stack: &mut Vec<Step>,
        on_path: &mut Vec<NodeIndex>,
        out: &mut Vec<Vec<Step>>,
        limit: usize,
    ) {
        if out.len() >= limit {
            return;
        }
        let mut edges: Vec<_> = self.graph.edges_directed(at, Direction::Outgoing).collect();
        edges.sort_by(|a, b| {
            (&self.graph[a.target()].name, &a.weight().requirement)
                .cmp(&(&self.graph[b.target()].name, &b.weight().requirement))
        });
        for e in edges {
            let next = e.target();
            if on_path.contains(&next) {
                continue;
            }
            let from = if at == self.root {
                "the project".to_string()
            } else {
                self.graph[at].label()
            };
            stack.push(Step {
                from,
                requirement: e.weight().requirement.clone(),
                marker: e.weight().marker.clone(),
                to: self.graph[next].label(),
            });
            if next == target {
                out.push(stack.clone());
            } else {
                on_path.push(next);
                self.walk_paths(next, target, stack, on_path, out, limit);
                on_path.pop();
            }
            stack.pop();
            if out.len() >= limit {
                return;
            }
        }
    }
}

/// A marker without its `extra == "…"` clauses, for display (`None`
/// when nothing else remains; a marker with `or` is kept whole).
fn without_extra(marker: &str) -> Option<String> {
    if !marker.contains("extra") || marker.contains(" or ") {
        return Some(marker.to_string());
    }
    let kept: Vec<&str> = marker
        .split(" and ")
        .map(str::trim)
        .filter(|c| !c.trim_start_matches('(').starts_with("extra"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(" and "))
}

/// The dependencies of `name` at the locked `version`, as `kb` knows them
/// (none when its metadata is unavailable); `None` when `kb` does not
/// know the release.
fn locked_dependencies(
    kb: &dyn KnowledgeBase,
    name: &str,
    version: &str,
) -> Result<Option<Arc<Vec<crate::kb::Dependency>>>, KbError> {
    let Ok(v) = parse_version(version) else {
        return Ok(None);
    };
    let Some((record, i)) = kb.release(name, &v)? else {
        return Ok(None);
    };
    Ok(Some(match &record.releases[i].dependencies {
        Requires::Known(d) => d.clone(),
        _ => match kb.metadata(&record, i)? {
            MetadataAnswer::Known(m) => m.dependencies.clone(),
            MetadataAnswer::Unavailable(_) => Arc::new(Vec::new()),
        },
    }))
}
