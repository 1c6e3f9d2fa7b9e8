//! An independent lock checker: re-validates every pin of a lock against a
//! knowledge base, without any of the resolver's code. It re-reads the
//! releases, re-parses markers and specifiers from the stored text, and
//! walks the requirement graph from the project's requirements.

use std::collections::{BTreeMap, BTreeSet};

use thoth_rs::kb::{self, CandidateQuery, KnowledgeBase, Rejection};
use thoth_rs::python::{
    ExtraName, MarkerEnvironment, parse_extra, parse_specifiers, parse_version,
};

/// The target a lock is checked for.
pub struct Target {
    pub query: CandidateQuery,
    pub markers: MarkerEnvironment,
}

/// A project requirement: `(name, extras, specifier, marker)`.
pub type Root = (String, Vec<String>, String, Option<String>);

/// Check `lock` (name → version) for `roots` on `target`. Returns every
/// problem found; empty means the lock is a valid, complete stack.
pub fn check(
    kb: &dyn KnowledgeBase,
    target: &Target,
    roots: &[Root],
    lock: &BTreeMap<String, String>,
) -> Vec<String> {
    walk(kb, target, roots, lock).0
}

/// The requirement edges of `lock` as the checker derives them on its own:
/// (requiring package, or `None` for the project; required package), for
/// every requirement that applies on `target` and points into the lock.
pub fn edges(
    kb: &dyn KnowledgeBase,
    target: &Target,
    roots: &[Root],
    lock: &BTreeMap<String, String>,
) -> BTreeSet<(Option<String>, String)> {
    walk(kb, target, roots, lock).1
}

/// The problems of `lock` and the edges of its graph.
fn walk(
    kb: &dyn KnowledgeBase,
    target: &Target,
    roots: &[Root],
    lock: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeSet<(Option<String>, String)>) {
    let mut edges: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    let mut problems = Vec::new();
    // Extras requested of each package, and which packages are reachable.
    let mut extras: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut reachable: BTreeSet<String> = BTreeSet::new();
    let mut exact_pins: BTreeSet<(String, String)> = BTreeSet::new();
    let need = |name: &str,
                want_extras: &[String],
                spec: &str,
                by: &str,
                problems: &mut Vec<String>,
                reachable: &mut BTreeSet<String>,
                extras: &mut BTreeMap<String, BTreeSet<String>>,
                exact: &mut BTreeSet<(String, String)>| {
        let Some(version) = lock.get(name) else {
            problems.push(format!("{by} requires {name}{spec}, which the lock lacks"));
            return;
        };
        let spec_parsed = parse_specifiers(spec).unwrap_or_default();
        let v = parse_version(version).unwrap();
        if !spec_parsed.contains(&v) {
            problems.push(format!(
                "{by} requires {name}{spec}, the lock has {version}"
            ));
        }
        if spec.trim().starts_with("==") && !spec.contains('*') && !spec.contains(',') {
            exact.insert((name.to_string(), version.clone()));
        }
        reachable.insert(name.to_string());
        extras
            .entry(name.to_string())
            .or_default()
            .extend(want_extras.iter().cloned());
    };
    for (name, want_extras, spec, marker) in roots {
        if let Some(m) = marker {
            let tree = thoth_rs::python::parse_marker(m).unwrap().tree;
            if !tree.evaluate(&target.markers, &[]) {
                continue;
            }
        }
        if lock.contains_key(name) {
            edges.insert((None, name.clone()));
        }
        need(
            name,
            want_extras,
            spec,
            "the project",
            &mut problems,
            &mut reachable,
            &mut extras,
            &mut exact_pins,
        );
    }
    // Walk to a fixed point: new packages or new extras reveal more edges.
    let mut done: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        let todo: Vec<(String, BTreeSet<String>)> = reachable
            .iter()
            .filter(|n| done.get(*n) != extras.get(*n))
            .map(|n| (n.clone(), extras.get(n).cloned().unwrap_or_default()))
            .collect();
        if todo.is_empty() {
            break;
        }
        for (name, ex) in todo {
            done.insert(name.clone(), ex.clone());
            let version = parse_version(&lock[&name]).unwrap();
            let Some((record, i)) = kb.release(&name, &version).unwrap() else {
                problems.push(format!("{name} {version} is not in the knowledge base"));
                continue;
            };
            let release = &record.releases[i];
            let ex_names: Vec<ExtraName> = ex.iter().filter_map(|e| parse_extra(e).ok()).collect();
            for d in kb::active_dependencies(release, &ex_names, &target.markers) {
                if lock.contains_key(&d.name) {
                    edges.insert((Some(name.clone()), d.name.clone()));
                }
                let d_extras: Vec<String> = d.extras.clone();
                need(
                    &d.name,
                    &d_extras,
                    &d.specifier,
                    &format!("{name} {version}"),
                    &mut problems,
                    &mut reachable,
                    &mut extras,
                    &mut exact_pins,
                );
            }
        }
    }
    for (name, version) in lock {
        if !reachable.contains(name) {
            problems.push(format!(
                "{name} {version} is in the lock but nothing requires it"
            ));
            continue;
        }
        let v = parse_version(version).unwrap();
        let Ok(kb::Lookup::Found(record)) = kb.project(name) else {
            continue;
        };
        let checked = kb::candidates(&record, &target.query);
        let Some(c) = checked.iter().find(|c| c.release.version == v) else {
            continue;
        };
        match &c.rejection {
            None => {}
            Some(Rejection::Yanked(_)) if exact_pins.contains(&(name.clone(), version.clone())) => {
            }
            Some(r) => problems.push(format!(
                "{name} {version} cannot be installed on the target: {r}"
            )),
        }
    }
    (problems, edges)
}

/// Names and versions of a Pipfile.lock section pair.
pub fn lock_versions(lock: &serde_json::Value, sections: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in sections {
        for (name, entry) in lock[*s].as_object().into_iter().flatten() {
            let v = entry["version"].as_str().unwrap().trim_start_matches("==");
            out.insert(name.clone(), v.to_string());
        }
    }
    out
}
