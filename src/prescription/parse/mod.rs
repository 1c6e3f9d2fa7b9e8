//! Parsing the sections of a unit (`should_include`, `match`, `run`) and
//! whole units from YAML values.

use std::collections::BTreeMap;

use serde_yaml::{Mapping, Value};

mod runtime;

use crate::policy::{DecisionType, RecommendationType};
use crate::prescription::reader::{Reader, describe, join};
use crate::prescription::schema::*;
use runtime::runtime;

/// Parse `should_include`.
pub fn should_include(r: &mut Reader, v: &Value) -> ShouldInclude {
    let mut out = ShouldInclude {
        times: 1,
        ..ShouldInclude::default()
    };
    let Some(m) = r.map(
        v,
        "should_include",
        &[
            "times",
            "adviser_pipeline",
            "dependency_monkey_pipeline",
            "recommendation_types",
            "decision_types",
            "authenticated",
            "labels",
            "library_usage",
            "dependencies",
            "runtime_environments",
        ],
    ) else {
        return out;
    };
    if let Some(v) = m.get("times") {
        match v.as_u64() {
            Some(t @ (0 | 1)) => out.times = t as u8,
            _ => r.error("should_include.times", "expected 0 or 1"),
        }
    }
    for (key, slot) in [
        ("adviser_pipeline", &mut out.adviser_pipeline),
        (
            "dependency_monkey_pipeline",
            &mut out.dependency_monkey_pipeline,
        ),
    ] {
        if let Some(v) = m.get(key) {
            *slot = r
                .boolean(v, &format!("should_include.{key}"))
                .unwrap_or(false);
        }
    }
    if let Some(v) = m.get("recommendation_types") {
        out.recommendation_types =
            r.selector(v, "should_include.recommendation_types", |r, v, p| {
                let text = r.string(v, p)?;
                text.parse::<RecommendationType>()
                    .map_err(|e| r.error(p, e.to_string()))
                    .ok()
            });
    }
    if let Some(v) = m.get("decision_types") {
        out.decision_types = r.selector(v, "should_include.decision_types", |r, v, p| {
            let text = r.string(v, p)?;
            text.parse::<DecisionType>()
                .map_err(|e| r.error(p, e.to_string()))
                .ok()
        });
    }
    if let Some(v) = m.get("authenticated") {
        out.authenticated = r.boolean(v, "should_include.authenticated");
    }
    if let Some(v) = m.get("labels") {
        out.labels = labels(r, v);
    }
    if let Some(v) = m.get("library_usage") {
        out.library_usage = library_usage(r, v);
    }
    if let Some(v) = m.get("dependencies") {
        out.dependencies = dependencies(r, v);
    }
    if let Some(v) = m.get("runtime_environments") {
        out.runtime_environments = runtime(r, v).map(Box::new);
    }
    out
}

/// `should_include.labels`: label = value.
fn labels(r: &mut Reader, v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, val) in entries(r, v, "should_include.labels", "a map of label = value") {
        if let Some(val) = r.string(val, &format!("should_include.labels.{key}")) {
            out.insert(key, val);
        }
    }
    out
}

/// `should_include.library_usage`: library = symbols.
fn library_usage(r: &mut Reader, v: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for (key, syms) in entries(r, v, "should_include.library_usage", "a map") {
        let path = format!("should_include.library_usage.{key}");
        match syms {
            Value::Sequence(items) if !items.is_empty() => {
                out.insert(key, strings(r, items, &path));
            }
            _ => r.error(&path, "expected a non-empty list of symbols"),
        }
    }
    out
}

/// The entries of the map `v` at `path` (`what` it should be, for the
/// error when it is not a map).
fn entries<'v>(r: &mut Reader, v: &'v Value, path: &str, what: &str) -> Vec<(String, &'v Value)> {
    match v {
        Value::Mapping(map) => map
            .iter()
            .map(|(k, val)| (k.as_str().unwrap_or("?").to_string(), val))
            .collect(),
        other => {
            r.error(path, format!("expected {what}, found {}", describe(other)));
            Vec::new()
        }
    }
}

/// The strings of the list `items` at `path` (`path[i]` for each).
fn strings(r: &mut Reader, items: &[Value], path: &str) -> Vec<String> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, s)| r.string(s, &format!("{path}[{i}]")))
        .collect()
}

/// `should_include.dependencies`: unit kind = unit names.
fn dependencies(r: &mut Reader, v: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(map) = r.map(
        v,
        "should_include.dependencies",
        &["boots", "pseudonyms", "sieves", "steps", "strides", "wraps"],
    ) else {
        return out;
    };
    for (k, names) in map {
        let key = k.as_str().unwrap_or("?").to_string();
        let path = format!("should_include.dependencies.{key}");
        match names {
            Value::Sequence(items) => {
                out.insert(key, strings(r, items, &path));
            }
            other => r.error(
                &path,
                format!("expected a list of unit names, found {}", describe(other)),
            ),
        }
    }
    out
}

/// Parse `match` for a unit kind.
pub fn matches(r: &mut Reader, kind: UnitKind, v: Option<&Value>) -> Vec<MatchEntry> {
    let required = !matches!(kind, UnitKind::Boot | UnitKind::Wrap);
    let Some(v) = v else {
        if required {
            r.error(
                "match",
                format!("`{}` units need a match section", kind.as_str()),
            );
        }
        return Vec::new();
    };
    let entries: Vec<(String, &Value)> = match v {
        Value::Sequence(items) => {
            if kind == UnitKind::StepSkipPackage {
                r.error("match", "step.SkipPackage takes a single map, not a list");
                return Vec::new();
            }
            if items.is_empty() {
                r.error("match", "expected a map or a non-empty list of maps");
            }
            items
                .iter()
                .enumerate()
                .map(|(i, it)| (format!("match[{i}]"), it))
                .collect()
        }
        other => vec![("match".to_string(), other)],
    };
    entries
        .into_iter()
        .filter_map(|(path, entry)| match_entry(r, kind, &path, entry))
        .collect()
}

/// One entry of `match` at `path`.
fn match_entry(r: &mut Reader, kind: UnitKind, path: &str, entry: &Value) -> Option<MatchEntry> {
    let allowed: &[&str] = match kind {
        UnitKind::Boot | UnitKind::SieveSkipPackage => &["package_name"],
        UnitKind::Pseudonym | UnitKind::Sieve => &["package_version"],
        UnitKind::Step | UnitKind::StepSkipPackage | UnitKind::StepAddPackage => {
            &["package_version", "state"]
        }
        UnitKind::StepGroup => &["group"],
        UnitKind::Stride | UnitKind::Wrap | UnitKind::WrapGhReleaseNotes => &["state"],
    };
    let m = r.map(entry, path, allowed)?;
    let mut e = MatchEntry::default();
    if let Some(v) = m.get("package_name") {
        e.package_name = r.name(v, &join(path, "package_name"));
    } else if kind == UnitKind::SieveSkipPackage {
        r.error(&join(path, "package_name"), "missing package_name");
    }
    if let Some(v) = m.get("package_version") {
        e.package_version = r.matcher(
            v,
            &join(path, "package_version"),
            kind == UnitKind::Pseudonym,
        );
    } else if matches!(
        kind,
        UnitKind::Pseudonym
            | UnitKind::Sieve
            | UnitKind::Step
            | UnitKind::StepSkipPackage
            | UnitKind::StepAddPackage
    ) {
        r.error(&join(path, "package_version"), "missing package_version");
    }
    if let Some(v) = m.get("state") {
        let sp = join(path, "state");
        e.state = state_match(r, v, &sp);
    } else if matches!(kind, UnitKind::Stride | UnitKind::WrapGhReleaseNotes) {
        r.error(&join(path, "state"), "missing state.resolved_dependencies");
    }
    if kind == UnitKind::WrapGhReleaseNotes
        && let Some(st) = &e.state
        && st.resolved_dependencies.len() != 1
    {
        r.error(
            &join(path, "state.resolved_dependencies"),
            "wrap.GHReleaseNotes matches exactly one package",
        );
    }
    if let Some(v) = m.get("group") {
        let gp = join(path, "group");
        match v {
            Value::Sequence(items) if items.len() >= 2 => {
                for (i, it) in items.iter().enumerate() {
                    let ip = format!("{gp}[{i}]");
                    if let Some(g) = r.map(it, &ip, &["package_version"]) {
                        match g.get("package_version") {
                            Some(pv) => {
                                e.group
                                    .extend(r.matcher(pv, &join(&ip, "package_version"), true))
                            }
                            None => {
                                r.error(&join(&ip, "package_version"), "missing package_version")
                            }
                        }
                    }
                }
            }
            _ => r.error(&gp, "expected a list of at least two packages"),
        }
    } else if kind == UnitKind::StepGroup {
        r.error(&join(path, "group"), "missing group");
    }
    Some(e)
}

/// `match.state`: what the resolved stack and the package's introducers
/// must hold.
fn state_match(r: &mut Reader, v: &Value, sp: &str) -> Option<StateMatch> {
    let s = r.map(
        v,
        sp,
        &[
            "resolved_dependencies",
            "package_version_from",
            "package_version_from_allow_other",
        ],
    )?;
    let mut st = StateMatch::default();
    if let Some(v) = s.get("resolved_dependencies") {
        st.resolved_dependencies = r.matchers(v, &join(sp, "resolved_dependencies"));
    }
    if let Some(v) = s.get("package_version_from") {
        st.package_version_from = r.matchers(v, &join(sp, "package_version_from"));
    }
    if let Some(v) = s.get("package_version_from_allow_other") {
        st.package_version_from_allow_other = r
            .boolean(v, &join(sp, "package_version_from_allow_other"))
            .unwrap_or(false);
    }
    Some(st)
}

/// Parse `run` for a unit kind.
pub fn run(r: &mut Reader, kind: UnitKind, v: Option<&Value>) -> Run {
    let mut out = Run::default();
    let allowed = run_keys(kind);
    let Some(v) = v else {
        if matches!(
            kind,
            UnitKind::Pseudonym
                | UnitKind::Wrap
                | UnitKind::WrapGhReleaseNotes
                | UnitKind::StepAddPackage
        ) {
            r.error(
                "run",
                format!("`{}` units need a run section", kind.as_str()),
            );
        }
        return out;
    };
    let empty = Mapping::new();
    let m = r.map(v, "run", allowed).unwrap_or(&empty);
    if let Some(v) = m.get("log") {
        out.log = r.message(v, "run.log").map(Box::new);
    }
    if let Some(v) = m.get("stack_info") {
        out.stack_info = r.messages(v, "run.stack_info");
    }
    if let Some(v) = m.get("justification") {
        out.justification = r.messages(v, "run.justification");
    }
    for (key, slot) in [
        ("not_acceptable", &mut out.not_acceptable),
        ("eager_stop_pipeline", &mut out.eager_stop_pipeline),
    ] {
        if let Some(v) = m.get(key) {
            *slot = r.string(v, &format!("run.{key}"));
        }
    }
    if let Some(v) = m.get("score") {
        out.score = score(r, v);
    }
    if let Some(v) = m.get("multi_package_resolution") {
        out.multi_package_resolution = r
            .boolean(v, "run.multi_package_resolution")
            .unwrap_or(false);
    }
    if kind == UnitKind::StepGroup {
        out.multi_package_resolution = true;
    }
    if let Some(v) = m.get("advised_manifest_changes") {
        out.advised_manifest_changes = Some(Box::new(v.clone()));
    }
    if out.not_acceptable.is_some() && out.eager_stop_pipeline.is_some() {
        r.error(
            "run",
            "not_acceptable and eager_stop_pipeline exclude each other",
        );
    }
    if (out.not_acceptable.is_some() || out.eager_stop_pipeline.is_some())
        && (out.score.is_some() || !out.justification.is_empty())
    {
        r.error(
            "run",
            "not_acceptable / eager_stop_pipeline exclude score and justification",
        );
    }
    if kind == UnitKind::Pseudonym {
        out.pseudonym = pseudonym_yield(r, m);
    }
    if kind == UnitKind::StepAddPackage {
        out.add_package = add_package(r, m);
    }
    if kind == UnitKind::WrapGhReleaseNotes {
        out.release_notes = release_notes(r, m);
    }
    out
}

/// The `run` keys a unit kind may have.
fn run_keys(kind: UnitKind) -> &'static [&'static str] {
    match kind {
        UnitKind::Boot => &["log", "stack_info", "not_acceptable", "eager_stop_pipeline"],
        UnitKind::Pseudonym => &["log", "stack_info", "yield"],
        UnitKind::Sieve | UnitKind::SieveSkipPackage => &["log", "stack_info"],
        UnitKind::Step => &[
            "log",
            "stack_info",
            "score",
            "justification",
            "not_acceptable",
            "eager_stop_pipeline",
            "multi_package_resolution",
        ],
        UnitKind::StepSkipPackage => &["log", "stack_info", "multi_package_resolution"],
        UnitKind::StepAddPackage => &[
            "log",
            "stack_info",
            "package_version",
            "multi_package_resolution",
        ],
        UnitKind::StepGroup => &[
            "log",
            "stack_info",
            "score",
            "justification",
            "not_acceptable",
            "eager_stop_pipeline",
        ],
        UnitKind::Stride => &["log", "stack_info", "not_acceptable", "eager_stop_pipeline"],
        UnitKind::Wrap => &[
            "log",
            "stack_info",
            "justification",
            "advised_manifest_changes",
        ],
        UnitKind::WrapGhReleaseNotes => &["release_notes", "log", "stack_info"],
    }
}

/// `run.score`: a float in [-1, 1] (clamped, with an error, when outside).
fn score(r: &mut Reader, v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) if n.is_f64() => {
            let s = n.as_f64().unwrap_or(0.0);
            if !(-1.0..=1.0).contains(&s) {
                r.error("run.score", format!("score {s} is outside [-1, 1]"));
            }
            Some(s.clamp(-1.0, 1.0))
        }
        Value::Number(n) => {
            r.error("run.score", format!("score must be a float (write {n}.0)"));
            None
        }
        other => {
            r.error(
                "run.score",
                format!("expected a float, found {}", describe(other)),
            );
            None
        }
    }
}

/// `run.yield` of a pseudonym: the package offered in place of the
/// matched one.
fn pseudonym_yield(r: &mut Reader, m: &Mapping) -> Option<Box<PseudonymYield>> {
    match m.get("yield") {
        Some(v) => {
            if let Some(y) = r.map(
                v,
                "run.yield",
                &["yield_matched_version", "package_version"],
            ) {
                let matched = y
                    .get("yield_matched_version")
                    .and_then(|v| r.boolean(v, "run.yield.yield_matched_version"))
                    .unwrap_or(false);
                if let Some(pv) = y.get("package_version").and_then(|pv| {
                    r.map(
                        pv,
                        "run.yield.package_version",
                        &["name", "locked_version", "index_url"],
                    )
                }) {
                    let name = r.name(
                        pv.get("name").unwrap_or(&Value::Null),
                        "run.yield.package_version.name",
                    );
                    let locked = pv
                        .get("locked_version")
                        .and_then(|v| r.specifier(v, "run.yield.package_version.locked_version"));
                    if matched && locked.is_some() {
                        r.error(
                            "run.yield",
                            "yield_matched_version and locked_version exclude each other",
                        );
                    }
                    let index_url = pv
                        .get("index_url")
                        .and_then(|v| r.index_match(v, "run.yield.package_version.index_url"));
                    return name.map(|name| {
                        Box::new(PseudonymYield {
                            yield_matched_version: matched,
                            name,
                            locked_version: locked,
                            index_url,
                        })
                    });
                } else if y.get("package_version").is_none() {
                    r.error("run.yield.package_version", "missing package_version");
                }
            }
        }
        None => r.error("run.yield", "pseudonyms need run.yield"),
    }
    None
}

/// `run.package_version` of a step that adds a package.
fn add_package(r: &mut Reader, m: &Mapping) -> Option<Box<AddPackage>> {
    match m.get("package_version").and_then(|pv| {
        r.map(
            pv,
            "run.package_version",
            &["name", "locked_version", "index_url", "develop"],
        )
    }) {
        Some(pv) => {
            let name = r.name(
                pv.get("name").unwrap_or(&Value::Null),
                "run.package_version.name",
            );
            let locked = pv
                .get("locked_version")
                .and_then(|v| r.string(v, "run.package_version.locked_version"));
            let index = pv
                .get("index_url")
                .and_then(|v| r.string(v, "run.package_version.index_url"));
            let develop = pv
                .get("develop")
                .and_then(|v| r.boolean(v, "run.package_version.develop"))
                .unwrap_or(false);
            match (name, locked) {
                (Some(name), Some(locked_version)) => {
                    return Some(Box::new(AddPackage {
                        name,
                        locked_version,
                        index_url: index,
                        develop,
                    }));
                }
                _ => r.error("run.package_version", "needs name and locked_version"),
            }
        }
        None => r.error(
            "run.package_version",
            "step.AddPackage needs run.package_version",
        ),
    }
    None
}

/// `run.release_notes` of `wrap.GHReleaseNotes`.
fn release_notes(r: &mut Reader, m: &Mapping) -> Option<Box<ReleaseNotes>> {
    match m.get("release_notes").and_then(|v| {
        r.map(
            v,
            "run.release_notes",
            &["organization", "repository", "tag_version_prefix"],
        )
    }) {
        Some(rn) => {
            let org = r.string(
                rn.get("organization").unwrap_or(&Value::Null),
                "run.release_notes.organization",
            );
            let repo = r.string(
                rn.get("repository").unwrap_or(&Value::Null),
                "run.release_notes.repository",
            );
            let prefix = rn
                .get("tag_version_prefix")
                .and_then(|v| r.string(v, "run.release_notes.tag_version_prefix"));
            if let (Some(organization), Some(repository)) = (org, repo) {
                return Some(Box::new(ReleaseNotes {
                    organization,
                    repository,
                    tag_version_prefix: prefix,
                }));
            }
        }
        None => r.error(
            "run.release_notes",
            "wrap.GHReleaseNotes needs run.release_notes",
        ),
    }
    None
}

/// Parse one unit (`name`, `type`, `should_include`, `metadata`, `match`, `run`).
pub fn unit(r: &mut Reader, list: &str, v: &Value, namespace: &str, file: &str) -> Option<Unit> {
    let m = r.map(
        v,
        "",
        &["name", "type", "should_include", "metadata", "match", "run"],
    )?;
    let name = r.string(m.get("name").unwrap_or(&Value::Null), "name")?;
    r.unit = format!("{namespace}.{name}");
    let type_text = r.string(m.get("type").unwrap_or(&Value::Null), "type")?;
    let Some(kind) = UnitKind::parse(list, &type_text) else {
        r.error(
            "type",
            format!("unit type `{type_text}` does not belong in `{list}`"),
        );
        return None;
    };
    let should_include = match m.get("should_include") {
        Some(v) => should_include(r, v),
        None => {
            r.error("should_include", "missing should_include (use {} for none)");
            ShouldInclude {
                times: 1,
                ..ShouldInclude::default()
            }
        }
    };
    let matches = matches(r, kind, m.get("match"));
    let run = run(r, kind, m.get("run"));
    Some(Unit::new(
        r.unit.clone(),
        kind,
        file.to_string(),
        should_include,
        matches,
        run,
    ))
}
