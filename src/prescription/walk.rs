//! Finding prescription files: a sorted, partly parallel walk of a
//! directory with each file's namespace (from the nearest
//! `_prescription_metadata.yaml`), recorded in the cache's manifest, and
//! bounded reads of the files found.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::manifest::{self, Manifest};
use super::{Diagnostic, MAX_FILE_BYTES};

/// A directory entry: its path, whether it is a directory, and the entry.
type Entry = (PathBuf, bool, Option<std::fs::DirEntry>);

/// Whether a file is a prescription file.
fn taken(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// Walk `dir` in sorted order for prescription files, each with its
/// namespace; with `manifest`, record every directory entered and every
/// file taken (relative to `root`).
pub(super) fn collect(
    root: &Path,
    dir: &Path,
    namespace: &(String, String),
    out: &mut Vec<(PathBuf, (String, String))>,
    errors: &mut Vec<Diagnostic>,
    mut manifest: Option<&mut Manifest>,
) {
    // The directory's time is taken before it is listed: a change during
    // the listing then shows as a newer time.
    let mut record = None;
    if let Some(m) = manifest.as_deref_mut() {
        record = manifest::DirRecord::new(dir.strip_prefix(root).unwrap_or(dir), dir);
        m.complete &= record.is_some();
    }
    let meta = dir.join("_prescription_metadata.yaml");
    let meta_stat = std::fs::metadata(&meta).ok().filter(|m| m.is_file());
    if let (Some(record), Some(m)) = (record.as_mut(), &meta_stat) {
        record.file("_prescription_metadata.yaml", m);
    }
    let ns = match meta_stat {
        Some(_) => namespace_of(&meta, errors).unwrap_or_else(|| namespace.clone()),
        None => namespace.clone(),
    };
    // The entry's file type comes with the directory listing.
    let mut entries: Vec<Entry> = match std::fs::read_dir(dir) {
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
    // This directory's files are recorded with it, before its subdirectories.
    if let (Some(m), Some(mut record)) = (manifest.as_deref_mut(), record) {
        m.complete &= record_files(&mut record, &entries);
        m.dirs.push(record);
    }
    // The top level of a directory argument is walked by several threads
    // (the walk is system calls, which overlap). Subdirectories differ in
    // size by hundreds of files, so each thread takes the next one as it
    // becomes free; results are joined in entry order.
    let subdirs: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].1).collect();
    if dir == root && subdirs.len() > 1 {
        walk_in_parallel(root, &ns, &entries, &subdirs, out, errors, manifest);
        return;
    }
    for (path, is_dir, _) in &entries {
        if *is_dir {
            collect(root, path, &ns, out, errors, manifest.as_deref_mut());
        } else if taken(path) {
            out.push((path.clone(), ns.clone()));
        }
    }
}

/// The namespace (name, release) `_prescription_metadata.yaml` at `meta`
/// gives; `None`, with the error recorded, when it cannot be read.
fn namespace_of(meta: &Path, errors: &mut Vec<Diagnostic>) -> Option<(String, String)> {
    match std::fs::read_to_string(meta)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            crate::input::yaml_budget::check(&t).map_err(|e| e.to_string())?;
            serde_yaml::from_str::<Value>(&t).map_err(|e| e.to_string())
        }) {
        Ok(v) => {
            let p = &v["prescription"];
            Some((
                p["name"].as_str().unwrap_or("UNKNOWN").to_string(),
                match &p["release"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => "UNKNOWN".into(),
                },
            ))
        }
        Err(message) => {
            errors.push(Diagnostic {
                file: meta.display().to_string(),
                unit: String::new(),
                path: String::new(),
                message,
            });
            None
        }
    }
}

/// Walk the subdirectories `subdirs` of `entries` (the top level of a
/// directory argument) on several threads, each taking the next one as it
/// becomes free, and join the results in entry order with the files of
/// the top level.
fn walk_in_parallel(
    root: &Path,
    ns: &(String, String),
    entries: &[Entry],
    subdirs: &[usize],
    out: &mut Vec<(PathBuf, (String, String))>,
    errors: &mut Vec<Diagnostic>,
    mut manifest: Option<&mut Manifest>,
) {
    type Part = (
        Vec<(PathBuf, (String, String))>,
        Vec<Diagnostic>,
        Option<Manifest>,
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = WALK_THREADS.min(subdirs.len());
    let recording = manifest.is_some();
    let mut parts: Vec<(usize, Part)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&at) = subdirs.get(i) else {
                            break;
                        };
                        let mut out = Vec::new();
                        let mut errors = Vec::new();
                        let mut part = recording.then(|| Manifest {
                            complete: true,
                            ..Manifest::default()
                        });
                        let path = &entries[at].0;
                        collect(root, path, ns, &mut out, &mut errors, part.as_mut());
                        done.push((at, (out, errors, part)));
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
    let mut parts = parts.into_iter().peekable();
    for (at, (path, is_dir, _)) in entries.iter().enumerate() {
        if !is_dir {
            if taken(path) {
                out.push((path.clone(), ns.clone()));
            }
            continue;
        }
        let Some((_, (found, errs, part))) = parts.next_if(|p| p.0 == at) else {
            continue;
        };
        out.extend(found);
        errors.extend(errs);
        if let (Some(m), Some(part)) = (manifest.as_deref_mut(), part) {
            m.dirs.extend(part.dirs);
            m.complete &= part.complete;
        }
    }
}

/// Record in `record` the prescription files of `entries` ([`taken`]),
/// with their size and time as the compiler reads them (through a symbolic
/// link); false if one cannot be recorded.
fn record_files(record: &mut manifest::DirRecord, entries: &[Entry]) -> bool {
    let mut complete = true;
    for (path, is_dir, entry) in entries {
        // A name the manifest cannot hold.
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            complete = false;
            continue;
        };
        if *is_dir || !taken(path) {
            continue;
        }
        let meta = match entry.as_ref().map(|e| e.metadata()) {
            Some(Ok(m)) if !m.file_type().is_symlink() => Ok(m),
            _ => std::fs::metadata(path),
        };
        match meta {
            Ok(m) => record.file(name, &m),
            Err(_) => complete = false,
        }
    }
    complete
}

/// Threads walking the top level of a prescription directory.
const WALK_THREADS: usize = 8;

/// Read a file of at most [`MAX_FILE_BYTES`] with as few system calls as
/// possible (open, read until end, close).
pub(super) fn read_limited(path: &Path) -> Result<String, Unreadable> {
    use std::io::Read;
    // Opening a FIFO would wait for a writer; a device never ends.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Unreadable::NotAFile);
    }
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(Unreadable::TooLarge);
    }
    Ok(String::from_utf8(buf)?)
}

/// Why a prescription file was not read.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unreadable {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not a regular file (a pipe, device or socket is not read)")]
    NotAFile,
    #[error("file is larger than the {MAX_FILE_BYTES}-byte limit")]
    TooLarge,
    #[error("not UTF-8: {0}")]
    NotUtf8(#[from] std::string::FromUtf8Error),
}
