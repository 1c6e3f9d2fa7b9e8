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
pub mod parse;
pub mod reader;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

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

    fn index(&mut self) {
        self.by_package.clear();
        self.generic.clear();
        for (i, u) in self.units.iter().enumerate() {
            let names = routing_names(u);
            if names.is_empty() {
                self.generic.push(i);
            }
            for n in names {
                match self.by_package.get_mut(n) {
                    Some(list) => list.push(i),
                    None => {
                        self.by_package.insert(n.to_string(), vec![i]);
                    }
                }
            }
        }
    }
}

/// Package names a unit is about (sorted, each once); empty = generic.
fn routing_names(u: &Unit) -> Vec<&str> {
    let mut out = Vec::new();
    for m in &u.matches {
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

/// Walk `dir` in sorted order for prescription files, each with its
/// namespace; with `stamp`, record every file taken (relative to `root`).
fn collect(
    root: &Path,
    dir: &Path,
    namespace: &(String, String),
    out: &mut Vec<(PathBuf, (String, String))>,
    errors: &mut Vec<Diagnostic>,
    mut stamp: Option<&mut cache::Stamp>,
) {
    let mut ns = namespace.clone();
    let meta = dir.join("_prescription_metadata.yaml");
    let meta_stat = std::fs::metadata(&meta).ok().filter(|m| m.is_file());
    if let (Some(stamp), Some(m)) = (stamp.as_deref_mut(), &meta_stat) {
        stamp.file(meta.strip_prefix(root).unwrap_or(&meta), m);
    }
    if meta_stat.is_some() {
        match std::fs::read_to_string(&meta)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_yaml::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => {
                let p = &v["prescription"];
                ns = (
                    p["name"].as_str().unwrap_or("UNKNOWN").to_string(),
                    match &p["release"] {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => "UNKNOWN".into(),
                    },
                );
            }
            Err(message) => errors.push(Diagnostic {
                file: meta.display().to_string(),
                unit: String::new(),
                path: String::new(),
                message,
            }),
        }
    }
    // The entry's file type comes with the directory listing: no stat per file.
    let mut entries: Vec<(PathBuf, bool, Option<std::fs::DirEntry>)> = match std::fs::read_dir(dir)
    {
        Ok(rd) => rd
            .filter_map(|e| {
                e.ok().map(|e| {
                    let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                    (e.path(), is_dir, Some(e))
                })
            })
            .collect(),
        Err(e) => {
            errors.push(Diagnostic {
                file: dir.display().to_string(),
                unit: String::new(),
                path: String::new(),
                message: e.to_string(),
            });
            return;
        }
    };
    // Entries share their parent, so comparing the paths' bytes orders them
    // as comparing names does, without splitting paths into components.
    entries.sort_by(|a, b| {
        a.0.as_os_str()
            .as_encoded_bytes()
            .cmp(b.0.as_os_str().as_encoded_bytes())
    });
    entries.retain(|(path, _, _)| {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        !name.starts_with('.') && name != "_prescription_metadata.yaml"
    });
    // The top level of a directory argument is walked by several threads
    // (the walk is system calls, which overlap). Subdirectories differ in
    // size by hundreds of files, so each thread takes the next entry as it
    // becomes free; results are joined in entry order.
    if dir == root && entries.len() > 1 {
        type Part = (
            Vec<(PathBuf, (String, String))>,
            Vec<Diagnostic>,
            Option<cache::Stamp>,
        );
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = WALK_THREADS.min(entries.len());
        let mut parts: Vec<(usize, Part)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (ns, next, entries) = (&ns, &next, &entries);
                    let stamped = stamp.is_some();
                    scope.spawn(move || {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some((path, is_dir, entry)) = entries.get(i) else {
                                break;
                            };
                            let mut out = Vec::new();
                            let mut errors = Vec::new();
                            let mut stamp = stamped.then(cache::Stamp::empty);
                            visit(
                                root,
                                path,
                                *is_dir,
                                entry.as_ref(),
                                ns,
                                &mut out,
                                &mut errors,
                                stamp.as_mut(),
                            );
                            done.push((i, (out, errors, stamp)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        parts.sort_unstable_by_key(|p| p.0);
        for (_, (found, errs, part_stamp)) in parts {
            out.extend(found);
            errors.extend(errs);
            if let (Some(stamp), Some(part)) = (stamp.as_deref_mut(), part_stamp) {
                stamp.mix(&part);
            }
        }
        return;
    }
    for (path, is_dir, entry) in &entries {
        visit(
            root,
            path,
            *is_dir,
            entry.as_ref(),
            &ns,
            out,
            errors,
            stamp.as_deref_mut(),
        );
    }
}

/// Threads walking the top level of a prescription directory.
const WALK_THREADS: usize = 8;

/// One directory entry of the walk: descend, or take a YAML file.
#[allow(clippy::too_many_arguments)]
fn visit(
    root: &Path,
    path: &Path,
    is_dir: bool,
    entry: Option<&std::fs::DirEntry>,
    ns: &(String, String),
    out: &mut Vec<(PathBuf, (String, String))>,
    errors: &mut Vec<Diagnostic>,
    stamp: Option<&mut cache::Stamp>,
) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if is_dir {
        collect(root, path, ns, out, errors, stamp);
    } else if name.ends_with(".yaml") || name.ends_with(".yml") {
        if let Some(stamp) = stamp
            && let Some(m) = entry.and_then(|e| e.metadata().ok())
        {
            stamp.file(path.strip_prefix(root).unwrap_or(path), &m);
        }
        out.push((path.to_path_buf(), ns.clone()));
    }
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

/// Read a file of at most [`MAX_FILE_BYTES`] with as few system calls as
/// possible (open, read until end, close).
fn read_limited(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(16 * 1024);
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "file is larger than the {MAX_FILE_BYTES}-byte limit"
        ));
    }
    String::from_utf8(buf).map_err(|e| format!("not UTF-8: {e}"))
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
    let mut stamp = cache_file.as_ref().map(|_| cache::Stamp::default());
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let unknown = ("UNKNOWN".to_string(), "UNKNOWN".to_string());
    let started = std::time::Instant::now();
    // The cache file is decoded while the directory is walked: the walk is
    // mostly waiting on the file system, the decoding mostly computing and
    // allocating. The decoding stays on this thread, whose allocator arena
    // grows in large steps; a spawned thread's arena grows page by page,
    // each step a system call.
    let cached = std::thread::scope(|scope| {
        let walking = scope.spawn(|| {
            collect(dir, dir, &unknown, &mut found, &mut errors, stamp.as_mut());
            tracing::debug!(
                "{}: {} prescription files found in {:?}",
                dir.display(),
                found.len(),
                started.elapsed()
            );
        });
        let cached = cache_file.as_deref().and_then(cache::read_any);
        if let Err(panic) = walking.join() {
            std::panic::resume_unwind(panic);
        }
        cached
    });
    if let (Some(stamp), Some((written, compiled))) = (&stamp, cached)
        && written == stamp.value()
    {
        tracing::debug!(
            "{}: {} units from the compiled cache after {:?}",
            dir.display(),
            compiled.units.len(),
            started.elapsed()
        );
        if let Some(file) = &cache_file {
            cache::mark_used(file);
        }
        return compiled;
    }
    let files: Sources = found.into_iter().map(|(p, ns)| (p, ns, None)).collect();
    let compiled = compile(&files, errors);
    if let (Some(file), Some(stamp)) = (&cache_file, &stamp) {
        cache::write(file, stamp, &compiled);
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
                                None => read_limited(path),
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
    for part in parts {
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
    if !repeated.is_empty() {
        let mut index = 0;
        let mut next = repeated.iter().map(|r| r.0).peekable();
        out.units.retain(|_| {
            let keep = next.peek() != Some(&index);
            if !keep {
                next.next();
            }
            index += 1;
            keep
        });
    }
    out.index();
    out
}
