//! The resolver's view of the knowledge base for one target environment:
//! each project's releases checked once against the target (Requires-Python,
//! wheel tags, cutoff, yanked), and each release's dependencies asked for
//! when the search is about to try it and parsed once with their markers, so
//! the search loop never re-parses text. The view does not know whether an
//! answer is stored or fetched; it passes the search's hints on (names just
//! required, releases it may try next) so a knowledge base that fetches can
//! start early.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::kb::{
    Advisory, CandidateQuery, KbError, KnowledgeBase, Lookup, MetadataAnswer, PrefetchTarget,
    ProjectRecord, Rejection, Wanted,
};
use crate::python::{ExtraName, MarkerEnvironment, MarkerTree, Version, VersionSpecifiers};

/// A release already installed where the stack goes: name, version and
/// its requirements as installed.
pub type InstalledRelease = (String, Version, Vec<crate::kb::Dependency>);

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
    /// Per release, filled when the search first tries it: the parsed
    /// dependency edges, or why its metadata makes it unusable.
    edges: Vec<std::cell::OnceCell<ReleaseDeps>>,
    /// Advisories per release, filled on first use.
    advisories: Vec<std::cell::OnceCell<Rc<[Rc<Advisory>]>>>,
}

impl ProjectView {
    fn empty(name: &str, availability: Availability) -> Self {
        Self {
            name: name.to_string(),
            availability,
            releases: Vec::new(),
            edges: Vec::new(),
            advisories: Vec::new(),
        }
    }

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

/// What the search learns when it asks for a release's dependencies.
#[derive(Debug, Clone)]
pub enum ReleaseDeps {
    /// Its dependency edges (markers not yet evaluated).
    Edges(Rc<[Edge]>),
    /// The release cannot be used: its metadata is unavailable, or its
    /// metadata's Requires-Python excludes the target.
    Unusable(Rejection),
}

impl ProjectView {
    /// Why release `index` turned out unusable when its dependencies were
    /// asked for (`None` while not asked, or usable).
    pub fn unusable(&self, index: usize) -> Option<&Rejection> {
        match self.edges.get(index)?.get()? {
            ReleaseDeps::Unusable(why) => Some(why),
            ReleaseDeps::Edges(_) => None,
        }
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
    /// Which releases of the target project the specifier admits, computed
    /// on first use (specifier checks are the search's hottest operation).
    admits: std::cell::OnceCell<Box<[bool]>>,
    /// Whether the marker holds without extras, computed on first use.
    plain: std::cell::OnceCell<bool>,
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
            admits: std::cell::OnceCell::new(),
            plain: std::cell::OnceCell::new(),
        }
    }

    /// Does the specifier admit release `r` of `view`, the project the
    /// edge points to?
    pub fn admits(&self, view: &ProjectView, r: usize) -> bool {
        self.admits.get_or_init(|| {
            (0..view.releases.len())
                .map(|i| self.spec.contains(view.version(i)))
                .collect()
        })[r]
    }

    /// Does the edge apply in `env` when the parent has `extras` active?
    /// (An edge belongs to one target, so `env` is always the same; the
    /// answer without extras, the common case, is computed once.)
    pub fn applies(&self, env: &MarkerEnvironment, extras: &[ExtraName]) -> bool {
        let Some(m) = &self.marker else {
            return true;
        };
        if extras.is_empty() {
            *self.plain.get_or_init(|| m.evaluate(env, &[]))
        } else {
            m.evaluate(env, extras)
        }
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

/// Parse a release's Requires-Dist into edges.
fn parse_edges(deps: &[crate::kb::Dependency]) -> Rc<[Edge]> {
    deps.iter()
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
        .collect()
}

/// Cached per-target view of a knowledge base.
pub struct Universe<'k> {
    kb: &'k dyn KnowledgeBase,
    target: std::sync::Arc<PrefetchTarget>,
    views: HashMap<String, Rc<ProjectView>>,
    advisories: HashMap<String, Option<Rc<Advisory>>>,
    /// Releases already installed where the stack goes (a base image's),
    /// with their requirements as installed: name → (version, edges).
    installed: HashMap<String, (Version, Rc<[Edge]>)>,
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
            target: std::sync::Arc::new(PrefetchTarget { query, markers }),
            views: HashMap::new(),
            advisories: HashMap::new(),
            installed: HashMap::new(),
            lookups: 0,
        }
    }

    /// Releases already installed where the stack goes: for each, the
    /// requirements recorded in the installed copy replace the index's
    /// (distributions patch them; the installed copy is what runs).
    pub fn set_installed(&mut self, installed: &[InstalledRelease]) {
        self.installed = installed
            .iter()
            .map(|(name, version, deps)| (name.clone(), (version.clone(), parse_edges(deps))))
            .collect();
    }

    /// The knowledge base behind the view.
    pub fn kb(&self) -> &'k dyn KnowledgeBase {
        self.kb
    }

    /// The marker environment of the target.
    pub fn markers(&self) -> &MarkerEnvironment {
        &self.target.markers
    }

    /// The candidate query of the target.
    pub fn query(&self) -> &CandidateQuery {
        &self.target.query
    }

    /// Hint: the search has just met these requirements.
    pub fn prefetch(&self, wanted: &[Wanted]) {
        if !wanted.is_empty() {
            self.kb.prefetch(&self.target, wanted);
        }
    }

    /// Hint: the search may try these releases of `view` soon (those
    /// whose dependencies it has not asked for yet are passed on).
    pub fn prefetch_releases(&self, view: &ProjectView, releases: &[usize]) {
        let Some(record) = view.record() else {
            return;
        };
        let pending: Vec<usize> = releases
            .iter()
            .copied()
            .filter(|&r| view.edges.get(r).is_some_and(|c| c.get().is_none()))
            .collect();
        if !pending.is_empty() {
            self.kb.prefetch_metadata(record, &pending);
        }
    }

    /// The project `name`, checked against the target.
    pub fn project(&mut self, name: &str) -> Result<Rc<ProjectView>, KbError> {
        if let Some(v) = self.views.get(name) {
            return Ok(v.clone());
        }
        self.lookups += 1;
        let view = match self.kb.project(name)? {
            Lookup::Found(record) => {
                let releases: Vec<ReleaseInfo> = crate::kb::candidates(&record, &self.target.query)
                    .into_iter()
                    .enumerate()
                    .map(|(index, c)| ReleaseInfo {
                        index,
                        rejection: c.rejection,
                        prerelease: c.release.version.any_prerelease(),
                    })
                    .collect();
                let n = releases.len();
                ProjectView {
                    name: name.to_string(),
                    availability: Availability::Found(record),
                    releases,
                    edges: vec![std::cell::OnceCell::new(); n],
                    advisories: vec![std::cell::OnceCell::new(); n],
                }
            }
            Lookup::Unavailable(reason) => {
                ProjectView::empty(name, Availability::Unavailable(reason))
            }
            Lookup::Missing => ProjectView::empty(name, Availability::Missing),
        };
        let view = Rc::new(view);
        self.views.insert(name.to_string(), view.clone());
        Ok(view)
    }

    /// Ask for the dependencies of release `index` of `view` (the search
    /// is about to try it): the parsed edges, or why the release cannot be
    /// used. Asked once per release; later calls answer from the view.
    pub fn requirements(
        &mut self,
        view: &ProjectView,
        index: usize,
    ) -> Result<ReleaseDeps, KbError> {
        if let Some(known) = view.edges[index].get() {
            return Ok(known.clone());
        }
        let Some(record) = view.record() else {
            return Ok(ReleaseDeps::Edges(Rc::from(Vec::new())));
        };
        if let Some((version, edges)) = self.installed.get(&view.name)
            && version == view.version(index)
        {
            let answer = ReleaseDeps::Edges(edges.clone());
            let _ = view.edges[index].set(answer.clone());
            return Ok(answer);
        }
        let answer = match self.kb.metadata(record, index)? {
            MetadataAnswer::Unavailable(why) => ReleaseDeps::Unusable(Rejection::NoMetadata(why)),
            MetadataAnswer::Known(meta) => {
                let python = &self.target.query.python_full_version;
                let excluded = meta
                    .requires_python
                    .as_deref()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .and_then(|t| crate::python::parse_specifiers(t).ok())
                    .is_some_and(|spec| !spec.contains(python));
                if excluded {
                    ReleaseDeps::Unusable(Rejection::RequiresPython(
                        meta.requires_python.clone().unwrap_or_default(),
                    ))
                } else {
                    ReleaseDeps::Edges(parse_edges(&meta.dependencies))
                }
            }
        };
        let _ = view.edges[index].set(answer.clone());
        Ok(answer)
    }

    /// The dependency edges of release `index` of `view`, which the search
    /// has already asked for with [`Self::requirements`] (empty if not).
    pub fn edges(&self, view: &ProjectView, index: usize) -> Rc<[Edge]> {
        match view.edges[index].get() {
            Some(ReleaseDeps::Edges(edges)) => edges.clone(),
            _ => Rc::from(Vec::new()),
        }
    }

    /// Advisories (not withdrawn) affecting release `index` of `view`.
    pub fn advisories(
        &mut self,
        view: &ProjectView,
        index: usize,
    ) -> Result<Rc<[Rc<Advisory>]>, KbError> {
        if let Some(known) = view.advisories[index].get() {
            return Ok(known.clone());
        }
        let Some(record) = view.record() else {
            return Ok(Rc::from(Vec::new()));
        };
        let mut out = Vec::new();
        for id in &record.releases[index].advisories {
            let known = match self.advisories.get(id) {
                Some(a) => a.clone(),
                None => {
                    let a = self
                        .kb
                        .advisory(id)?
                        .filter(|a| a.withdrawn.is_none())
                        .map(Rc::new);
                    self.advisories.insert(id.clone(), a.clone());
                    a
                }
            };
            out.extend(known);
        }
        let out: Rc<[Rc<Advisory>]> = Rc::from(out);
        let _ = view.advisories[index].set(out.clone());
        Ok(out)
    }
}
