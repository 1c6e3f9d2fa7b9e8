//! Stage 2: prescriptions — Thoth's declarative v1 YAML — compiled into
//! pipeline units the resolver consults.
//!
//! Loading walks directories in sorted order (deterministic), takes the
//! namespace from the nearest `_prescription_metadata.yaml`, resolves YAML
//! 1.1 merge keys (`<<`, including merges of a list of maps, earlier wins)
//! before validation, and reports every problem with file, unit and key
//! path. Units are indexed by the package they are about, so the resolver
//! only looks at units that can apply to a package, plus the generic ones.

pub mod cache;
pub mod eval;
pub mod manifest;
pub mod parse;
pub mod reader;
pub mod schema;
mod walk;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use manifest::Manifest;
use reader::Reader;
pub use schema::{Diagnostic, Unit, UnitKind};

/// Largest prescription file accepted.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// A compiled set of prescriptions.
#[derive(Debug, Clone, Default)]
pub struct Prescriptions {
    /// Every unit, in load order.
    pub units: Vec<Unit>,
    /// Unit indexes per package name they are about.
    pub by_package: HashMap<String, Vec<usize>>,
    /// Units about no particular package.
    pub generic: Vec<usize>,
    /// Namespaces and releases seen (`name` → `release`).
    pub namespaces: BTreeMap<String, String>,
    /// Files read.
    pub files: usize,
    /// Problems that make the set invalid.
    pub errors: Vec<Diagnostic>,
    /// Problems worth a look (dead units and the like).
    pub warnings: Vec<Diagnostic>,
}

impl Prescriptions {
    /// Count of units per kind.
    pub fn by_kind(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for u in &self.units {
            *out.entry(u.kind.as_str()).or_default() += 1;
        }
        out
    }

    /// Units that may apply to `package`: specific ones first, then generic.
    pub fn for_package<'a>(&'a self, package: &str) -> impl Iterator<Item = &'a Unit> + 'a {
        self.by_package
            .get(package)
            .into_iter()
            .flatten()
            .chain(self.generic.iter())
            .map(move |&i| &self.units[i])
    }
}

/// Which units may apply to which package: indexes into a list of units.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Routing {
    /// Units about each package, in order.
    pub by_package: BTreeMap<String, Vec<usize>>,
    /// Units about no particular package, in order.
    pub generic: Vec<usize>,
}

impl Routing {
    /// The routing of `units`.
    pub fn of(units: &[Unit]) -> Self {
        let mut out = Self::default();
        for (i, u) in units.iter().enumerate() {
            let names = routing_names(u);
            if names.is_empty() {
                out.generic.push(i);
            }
            for n in names {
                match out.by_package.get_mut(n) {
                    Some(list) => list.push(i),
                    None => {
                        out.by_package.insert(n.to_string(), vec![i]);
                    }
                }
            }
        }
        out
    }
}

/// Package names a unit is about (sorted, each once); empty = generic.
fn routing_names(u: &Unit) -> Vec<&str> {
    let mut out = Vec::new();
    for m in u.matches() {
        let name = match u.kind {
            UnitKind::Boot | UnitKind::SieveSkipPackage => m.package_name.as_deref(),
            UnitKind::StepGroup => {
                out.extend(m.group.iter().filter_map(|g| g.name.as_deref()));
                continue;
            }
            UnitKind::Stride | UnitKind::Wrap | UnitKind::WrapGhReleaseNotes => m
                .state
                .as_ref()
                .and_then(|s| s.resolved_dependencies.first())
                .and_then(|p| p.name.as_deref()),
            _ => m.package_version.as_ref().and_then(|p| p.name.as_deref()),
        };
        match name {
            Some(n) => out.push(n),
            // One alternative about any package makes the unit generic.
            None => return Vec::new(),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Parse one file into units (errors and warnings collected).
pub fn parse_file(
    path: &Path,
    text: &str,
    namespace: &str,
) -> (Vec<Unit>, Vec<Diagnostic>, Vec<Diagnostic>) {
    let file = path.display().to_string();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let file_error = |message: String| Diagnostic {
        file: file.clone(),
        unit: String::new(),
        path: String::new(),
        message,
    };
    if let Err(e) = crate::input::yaml_budget::check(text) {
        return (Vec::new(), vec![file_error(e.to_string())], Vec::new());
    }
    let mut value: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                Vec::new(),
                vec![file_error(format!("invalid YAML: {e}"))],
                warnings,
            );
        }
    };
    if let Err(e) = value.apply_merge() {
        return (
            Vec::new(),
            vec![file_error(format!("invalid merge key: {e}"))],
            warnings,
        );
    }
    let mut reader = Reader {
        file: &file,
        unit: String::new(),
        errors: &mut errors,
        warnings: &mut warnings,
    };
    let Some(top) = reader.map(&value, "", &["units", "metadata"]) else {
        return (Vec::new(), errors, warnings);
    };
    let Some(units) = top.get("units") else {
        reader.error("units", "missing `units`");
        return (Vec::new(), errors, warnings);
    };
    let Some(lists) = reader.map(
        units,
        "units",
        &["boots", "pseudonyms", "sieves", "steps", "strides", "wraps"],
    ) else {
        return (Vec::new(), errors, warnings);
    };
    let mut out: Vec<Unit> = Vec::new();
    for (list, items) in lists {
        let list = list.as_str().unwrap_or("?");
        let Value::Sequence(items) = items else {
            reader.error(&format!("units.{list}"), "expected a list of units");
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            reader.unit = format!("units.{list}[{i}]");
            if let Some(u) = parse::unit(&mut reader, list, item, namespace, &file) {
                if out
                    .iter()
                    .any(|o| o.name == u.name && o.kind.list() == u.kind.list())
                {
                    reader.error(
                        "name",
                        format!("unit name `{}` is used twice in this file", u.name),
                    );
                }
                if u.should_include.times == 0 {
                    reader.warning(
                        "should_include.times",
                        "times: 0 disables the unit: dead unit",
                    );
                } else if !u.should_include.adviser_pipeline
                    && !u.should_include.dependency_monkey_pipeline
                {
                    reader.warning(
                        "should_include",
                        "neither adviser_pipeline nor dependency_monkey_pipeline is true: the unit never runs",
                    );
                }
                out.push(u);
            }
        }
    }
    (out, errors, warnings)
}

/// thoth-rs's own prescriptions, compiled into the binary by `build.rs`
/// (relative path, contents).
const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_prescriptions.rs"));

/// Namespace of the bundled prescriptions (`name`, `release`).
fn bundled_namespace() -> (String, String) {
    BUNDLED
        .iter()
        .find(|(p, _)| *p == "_prescription_metadata.yaml")
        .and_then(|(_, text)| serde_yaml::from_str::<Value>(text).ok())
        .map(|v| {
            let p = &v["prescription"];
            (
                p["name"].as_str().unwrap_or("UNKNOWN").to_string(),
                match &p["release"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => "UNKNOWN".into(),
                },
            )
        })
        .unwrap_or_else(|| ("UNKNOWN".into(), "UNKNOWN".into()))
}

/// Load and compile prescription directories or files; unchanged
/// directories come from the compiled cache ([`cache`]).
pub fn load(paths: &[PathBuf]) -> Prescriptions {
    load_with(false, paths, true)
}

/// [`load`] for `prescriptions check`: the directories alone (their counts),
/// with an error for every unit whose name clashes with one of the bundled
/// units, which `advise` always loads beside them and would refuse.
pub fn check(paths: &[PathBuf]) -> Prescriptions {
    let mut out = load(paths);
    let ours = load_with(true, &[], true);
    let bundled: HashMap<(&str, &'static str), &str> = ours
        .units
        .iter()
        .map(|u| ((u.name.as_str(), u.kind.list()), u.file.as_str()))
        .collect();
    let clashes: Vec<Diagnostic> = out
        .units
        .iter()
        .filter_map(|u| {
            let file = bundled.get(&(u.name.as_str(), u.kind.list()))?;
            Some(Diagnostic {
                file: u.file.clone(),
                unit: u.name.clone(),
                path: "name".into(),
                message: format!(
                    "unit name already defined in {file} (bundled; advise would refuse this directory)"
                ),
            })
        })
        .collect();
    out.errors.extend(clashes);
    out
}

/// [`load`] without the cache: every file is read and compiled.
pub fn load_fresh(paths: &[PathBuf]) -> Prescriptions {
    load_with(false, paths, false)
}

/// Load thoth-rs's own prescriptions (embedded in the binary) followed by
/// `paths`.
pub fn load_bundled_and(paths: &[PathBuf]) -> Prescriptions {
    load_with(true, paths, true)
}

/// Files to compile: (path, namespace, contents when embedded).
type Sources = Vec<(PathBuf, (String, String), Option<&'static str>)>;

fn load_with(bundled: bool, paths: &[PathBuf], cached: bool) -> Prescriptions {
    let mut parts: Vec<cache::Compiled> = Vec::new();
    if bundled {
        let ns = bundled_namespace();
        let files: Sources = BUNDLED
            .iter()
            .filter(|(rel, _)| !rel.ends_with("_prescription_metadata.yaml"))
            .map(|(rel, text)| {
                (
                    PathBuf::from("<bundled>/prescriptions").join(rel),
                    ns.clone(),
                    Some(*text),
                )
            })
            .collect();
        parts.push(compile(&files, Vec::new()));
    }
    for p in paths {
        parts.push(if p.is_dir() {
            compile_dir(p, cached)
        } else {
            source(p)
        });
    }
    merge(parts)
}

/// Compile one file given by path (or report it missing).
fn source(p: &Path) -> cache::Compiled {
    if p.is_file() {
        let unknown = ("UNKNOWN".to_string(), "UNKNOWN".to_string());
        return compile(&vec![(p.to_path_buf(), unknown, None)], Vec::new());
    }
    cache::Compiled {
        errors: vec![Diagnostic {
            file: p.display().to_string(),
            unit: String::new(),
            path: String::new(),
            message: "no such file or directory".into(),
        }],
        ..Default::default()
    }
}

/// Compile a directory, from the cache (when `cached`) if nothing in it
/// changed.
fn compile_dir(dir: &Path, cached: bool) -> cache::Compiled {
    let cache_file = cache::cache_file(dir).filter(|_| cached);
    let program = cache::Stamp::default().value();
    let started = std::time::Instant::now();
    // The manifest is checked on other threads while the cache is decoded
    // on this one: checking is mostly waiting on the file system, decoding
    // mostly computing and allocating. Decoding stays on this thread, whose
    // allocator arena grows in large steps; a spawned thread's arena grows
    // page by page, each step a system call.
    if let Some(file) = &cache_file
        && let Some(compiled) = cache::read_checked(file, program, |m| m.unchanged(dir))
    {
        tracing::debug!(
            "{}: {} units from the compiled cache after {:?}",
            dir.display(),
            compiled.units.len(),
            started.elapsed()
        );
        cache::mark_used(file);
        return compiled;
    }
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let unknown = ("UNKNOWN".to_string(), "UNKNOWN".to_string());
    let walk_started = std::time::SystemTime::now();
    let mut manifest = cache_file.as_ref().map(|_| Manifest {
        complete: true,
        ..Manifest::default()
    });
    walk::collect(
        dir,
        dir,
        &unknown,
        &mut found,
        &mut errors,
        manifest.as_mut(),
    );
    tracing::debug!(
        "{}: {} prescription files found in {:?}",
        dir.display(),
        found.len(),
        started.elapsed()
    );
    let files: Sources = found.into_iter().map(|(p, ns)| (p, ns, None)).collect();
    let mut compiled = compile(&files, errors);
    // Computed once, for the cache and for the merge.
    compiled.routing = Some(Routing::of(&compiled.units));
    if let (Some(file), Some(mut manifest)) = (&cache_file, manifest) {
        manifest.settle(walk_started);
        cache::write(file, program, &manifest, &compiled);
    }
    compiled
}

/// Parse `files` in parallel, keeping file order; `errors` come first.
fn compile(files: &Sources, errors: Vec<Diagnostic>) -> cache::Compiled {
    let mut out = cache::Compiled {
        files: files.len(),
        errors,
        ..Default::default()
    };
    for (_, (name, release), _) in files {
        out.namespaces.insert(name.clone(), release.clone());
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = files.len().div_ceil(threads).max(1);
    let results: Vec<(Vec<Unit>, Vec<Diagnostic>, Vec<Diagnostic>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(path, (ns, _), inline)| {
                            let text = match inline {
                                Some(t) => Ok((*t).to_string()),
                                None => walk::read_limited(path).map_err(|e| e.to_string()),
                            };
                            match text {
                                Ok(text) => parse_file(path, &text, ns),
                                Err(message) => (
                                    Vec::new(),
                                    vec![Diagnostic {
                                        file: path.display().to_string(),
                                        unit: String::new(),
                                        path: String::new(),
                                        message,
                                    }],
                                    Vec::new(),
                                ),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (units, errors, warnings) in results {
        out.units.extend(units);
        out.errors.extend(errors);
        out.warnings.extend(warnings);
    }
    out
}

/// Merge compiled sources in order: a unit name defined twice (per unit
/// list) is an error at the second definition.
fn merge(parts: Vec<cache::Compiled>) -> Prescriptions {
    let mut out = Prescriptions::default();
    let total: usize = parts.iter().map(|p| p.units.len()).sum();
    // Each part's routing with where its units start.
    let mut routings = Vec::with_capacity(parts.len());
    for mut part in parts {
        let routing = part
            .routing
            .take()
            .unwrap_or_else(|| Routing::of(&part.units));
        routings.push((out.units.len(), part.units.len(), routing));
        out.files += part.files;
        out.namespaces.extend(part.namespaces);
        out.errors.extend(part.errors);
        out.warnings.extend(part.warnings);
        if out.units.is_empty() {
            // The largest part is usually the only one: keep its vector.
            out.units = part.units;
            out.units.reserve_exact(total - out.units.len());
        } else {
            out.units.extend(part.units);
        }
    }
    let mut first: HashMap<(&str, &'static str), usize> = HashMap::with_capacity(out.units.len());
    let mut repeated = Vec::new();
    for (i, u) in out.units.iter().enumerate() {
        match first.entry((u.name.as_str(), u.kind.list())) {
            std::collections::hash_map::Entry::Occupied(e) => repeated.push((i, *e.get())),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }
    drop(first);
    for &(i, earlier) in &repeated {
        let (u, first) = (&out.units[i], &out.units[earlier]);
        out.errors.push(Diagnostic {
            file: u.file.clone(),
            unit: u.name.clone(),
            path: "name".into(),
            message: format!("unit name already defined in {}", first.file),
        });
    }
    // Where each unit ends up once repeated definitions are dropped.
    let mut moved: Vec<Option<usize>> = Vec::new();
    if !repeated.is_empty() {
        let mut next = repeated.iter().map(|r| r.0).peekable();
        let mut kept = 0;
        moved = (0..out.units.len())
            .map(|i| {
                if next.peek() == Some(&i) {
                    next.next();
                    None
                } else {
                    kept += 1;
                    Some(kept - 1)
                }
            })
            .collect();
        let mut index = 0;
        out.units.retain(|_| {
            index += 1;
            moved[index - 1].is_some()
        });
    }
    for (start, len, routing) in routings {
        // Indexes outside the part (a damaged cache) are dropped.
        let place = |i: usize| -> Option<usize> {
            (i < len).then_some(start + i).and_then(|at| {
                if moved.is_empty() {
                    Some(at)
                } else {
                    moved[at]
                }
            })
        };
        for (name, list) in routing.by_package {
            let list: Vec<usize> = list.into_iter().filter_map(place).collect();
            if list.is_empty() {
                continue;
            }
            match out.by_package.get_mut(&name) {
                Some(all) => all.extend(list),
                None => {
                    out.by_package.insert(name, list);
                }
            }
        }
        out.generic
            .extend(routing.generic.into_iter().filter_map(place));
    }
    out
}
