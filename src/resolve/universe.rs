//! The resolver's view of the knowledge base for one target environment:
//! each project's releases checked once against the target (Requires-Python,
//! wheel tags, cutoff, yanked), and each release's dependencies parsed once
//! with their markers, so the search loop never re-parses text.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::kb::{CandidateQuery, KbError, KnowledgeBase, Lookup, ProjectRecord, Rejection};
use crate::python::{ExtraName, MarkerEnvironment, MarkerTree, Version, VersionSpecifiers};

/// Whether the snapshot can supply a project.
#[derive(Debug, Clone)]
pub enum Availability {
    /// Stored, with its releases.
    Found(Arc<ProjectRecord>),
    /// Known but without releases (the reason recorded at sync time).
    Unavailable(String),
    /// Not in the snapshot.
    Missing,
}

/// One release of a project, checked against the target.
#[derive(Debug, Clone)]
pub struct ReleaseInfo {
    /// Index into `ProjectRecord::releases`.
    pub index: usize,
    /// Why the release cannot be installed on the target, if it cannot.
    pub rejection: Option<Rejection>,
    /// Pre-release or development release.
    pub prerelease: bool,
}

/// A project as the resolver sees it.
#[derive(Debug, Clone)]
pub struct ProjectView {
    /// Normalised name.
    pub name: String,
    /// Where the data came from.
    pub availability: Availability,
    /// Releases newest first (empty unless found).
    pub releases: Vec<ReleaseInfo>,
}

impl ProjectView {
    /// The stored record, when found.
    pub fn record(&self) -> Option<&Arc<ProjectRecord>> {
        match &self.availability {
            Availability::Found(r) => Some(r),
            _ => None,
        }
    }

    /// Version of release `index`.
    pub fn version(&self, index: usize) -> &Version {
        &self
            .record()
            .expect("releases exist only for found projects")
            .releases[index]
            .version
    }
}

/// One dependency edge of a release, parsed.
#[derive(Debug, Clone)]
pub struct Edge {
    /// Normalised name of the dependency.
    pub name: String,
    /// Extras requested of it.
    pub extras: Vec<ExtraName>,
    /// Version specifiers (empty = any).
    pub spec: VersionSpecifiers,
    /// The specifier names a pre-release, which opts in to pre-releases.
    pub mentions_prerelease: bool,
    /// Exactly one `==` specifier without a wildcard (allows yanked).
    pub exact: bool,
    /// The marker, parsed (`None` = unconditional).
    pub marker: Option<MarkerTree>,
    /// The marker as written.
    pub marker_text: Option<String>,
}

impl Edge {
    /// Build from parts; `spec_text` is parsed (an unparsable one is any).
    pub fn new(
        name: &str,
        extras: Vec<ExtraName>,
        spec: VersionSpecifiers,
        marker: Option<(MarkerTree, String)>,
    ) -> Self {
        let mentions_prerelease = spec.iter().any(|s| s.version().any_prerelease());
        let exact = spec.len() == 1
            && spec.iter().all(|s| {
                matches!(
                    s.operator(),
                    crate::python::Operator::Equal | crate::python::Operator::ExactEqual
                )
            });
        let (marker, marker_text) = match marker {
            Some((tree, text)) => (Some(tree), Some(text)),
            None => (None, None),
        };
        Self {
            name: name.to_string(),
            extras,
            spec,
            mentions_prerelease,
            exact,
            marker,
            marker_text,
        }
    }

    /// Does the edge apply in `env` when the parent has `extras` active?
    pub fn applies(&self, env: &MarkerEnvironment, extras: &[ExtraName]) -> bool {
        self.marker.as_ref().is_none_or(|m| m.evaluate(env, extras))
    }

    /// Requirement text (`name[extras]spec`), for messages.
    pub fn requirement_text(&self) -> String {
        let mut out = self.name.clone();
        if !self.extras.is_empty() {
            let e: Vec<String> = self.extras.iter().map(ToString::to_string).collect();
            out.push_str(&format!("[{}]", e.join(",")));
        }
        if !self.spec.is_empty() {
            out.push_str(&self.spec.to_string());
        }
        out
    }
}

/// Cached per-target view of a knowledge base.
pub struct Universe<'k> {
    kb: &'k dyn KnowledgeBase,
    query: CandidateQuery,
    markers: MarkerEnvironment,
    views: HashMap<String, Rc<ProjectView>>,
    edges: HashMap<(String, usize), Rc<[Edge]>>,
    /// Knowledge-base lookups made (statistics).
    pub lookups: usize,
}

impl<'k> Universe<'k> {
    /// A view of `kb` for the target described by `query` and `markers`.
    pub fn new(
        kb: &'k dyn KnowledgeBase,
        query: CandidateQuery,
        markers: MarkerEnvironment,
    ) -> Self {
        Self {
            kb,
            query,
            markers,
            views: HashMap::new(),
            edges: HashMap::new(),
            lookups: 0,
        }
    }

    /// The knowledge base behind the view.
    pub fn kb(&self) -> &'k dyn KnowledgeBase {
        self.kb
    }

    /// The marker environment of the target.
    pub fn markers(&self) -> &MarkerEnvironment {
        &self.markers
    }

    /// The candidate query of the target.
    pub fn query(&self) -> &CandidateQuery {
        &self.query
    }

    /// The project `name`, checked against the target.
    pub fn project(&mut self, name: &str) -> Result<Rc<ProjectView>, KbError> {
        if let Some(v) = self.views.get(name) {
            return Ok(v.clone());
        }
        self.lookups += 1;
        let view = match self.kb.project(name)? {
            Lookup::Found(record) => {
                let releases = crate::kb::candidates(&record, &self.query)
                    .into_iter()
                    .enumerate()
                    .map(|(index, c)| ReleaseInfo {
                        index,
                        rejection: c.rejection,
                        prerelease: c.release.version.any_prerelease(),
                    })
                    .collect();
                ProjectView {
                    name: name.to_string(),
                    availability: Availability::Found(record),
                    releases,
                }
            }
            Lookup::Unavailable(reason) => ProjectView {
                name: name.to_string(),
                availability: Availability::Unavailable(reason),
                releases: Vec::new(),
            },
            Lookup::Missing => ProjectView {
                name: name.to_string(),
                availability: Availability::Missing,
                releases: Vec::new(),
            },
        };
        let view = Rc::new(view);
        self.views.insert(name.to_string(), view.clone());
        Ok(view)
    }

    /// Every dependency edge of release `index` of `view` (markers not yet
    /// evaluated: which apply depends on the extras requested).
    pub fn edges(&mut self, view: &ProjectView, index: usize) -> Rc<[Edge]> {
        let key = (view.name.clone(), index);
        if let Some(e) = self.edges.get(&key) {
            return e.clone();
        }
        let deps = view
            .record()
            .and_then(|r| r.releases[index].dependencies.clone())
            .unwrap_or_default();
        let edges: Rc<[Edge]> = deps
            .iter()
            .map(|d| {
                let spec = crate::python::parse_specifiers(&d.specifier).unwrap_or_default();
                let extras = d
                    .extras
                    .iter()
                    .filter_map(|e| crate::python::parse_extra(e).ok())
                    .collect();
                // A marker that cannot be parsed never applies (as installers skip it).
                let marker = d.marker.as_deref().map(|m| {
                    let tree = crate::python::parse_marker(m).map_or(MarkerTree::FALSE, |p| p.tree);
                    (tree, m.to_string())
                });
                Edge::new(&d.name, extras, spec, marker)
            })
            .collect();
        self.edges.insert(key, edges.clone());
        edges
    }
}
