//! What a compiled prescription directory was compiled from, and a quick
//! check that none of it changed.
//!
//! The manifest lists every directory the walk entered, with its
//! modification time, and every file it took there (prescriptions and
//! `_prescription_metadata.yaml`), with size and modification time.
//! Checking it costs one `stat` per directory and per file and no
//! directory listing: adding, removing or renaming an entry changes the
//! modification time of the directory holding it, and rewriting a file
//! changes its own. File system timestamps are coarse (a clock tick, up
//! to seconds on some file systems), so a change made within the same
//! tick as the walk could keep a timestamp; a manifest recording anything
//! modified shortly before its walk is not settled and never passes the
//! check — the next load compiles again and records settled times.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How recent a recorded modification may be, before the walk started,
/// for the manifest to be trusted.
const SETTLE: Duration = Duration::from_secs(2);

/// Threads checking a manifest (the checks are system calls, which
/// overlap with the decoding of the cache on the calling thread).
const CHECK_THREADS: usize = 4;

/// Directories and files a compilation read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Directories in walk order, the root first.
    pub dirs: Vec<DirRecord>,
    /// False when something recorded was modified too shortly before the
    /// walk (or a path is not UTF-8): the manifest then never checks out.
    pub settled: bool,
    /// While recording: whether everything walked could be recorded.
    #[serde(skip)]
    pub complete: bool,
}

/// One directory of the walk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirRecord {
    /// Relative to the root, `/`-separated; empty for the root.
    pub path: String,
    /// Modification time (nanoseconds since the epoch).
    pub mtime: u64,
    /// Files taken here: name, size, modification time.
    pub files: Vec<(String, u64, u64)>,
}

/// Nanoseconds since the epoch of a modification time (0 before it).
pub fn nanos(time: std::io::Result<SystemTime>) -> u64 {
    time.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl DirRecord {
    /// A record of `dir` (relative path `rel`), taken before it is listed
    /// so that a change during the listing shows as a newer time.
    pub fn new(rel: &Path, dir: &Path) -> Option<Self> {
        let meta = std::fs::metadata(dir).ok()?;
        Some(Self {
            path: rel.to_str()?.replace(std::path::MAIN_SEPARATOR, "/"),
            mtime: nanos(meta.modified()),
            files: Vec::new(),
        })
    }

    /// Record a file of this directory (following a symbolic link, as
    /// reading it does).
    pub fn file(&mut self, name: &str, meta: &std::fs::Metadata) {
        self.files
            .push((name.to_string(), meta.len(), nanos(meta.modified())));
    }
}

impl Manifest {
    /// Decide whether the manifest is settled: nothing in it was modified
    /// within [`SETTLE`] of `walk_started`.
    pub fn settle(&mut self, walk_started: SystemTime) {
        let limit = nanos(Ok(walk_started)).saturating_sub(SETTLE.as_nanos() as u64);
        self.settled = self.complete
            && self
                .dirs
                .iter()
                .all(|d| d.mtime < limit && d.files.iter().all(|f| f.2 < limit));
    }

    /// Whether every directory and file recorded is still as recorded
    /// under `root` (see the module documentation).
    pub fn unchanged(&self, root: &Path) -> bool {
        if !self.settled {
            return false;
        }
        let next = AtomicUsize::new(0);
        let stale = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..CHECK_THREADS.min(self.dirs.len()) {
                scope.spawn(|| {
                    while !stale.load(Ordering::Relaxed) {
                        let Some(dir) = self.dirs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        if !dir_unchanged(root, dir) {
                            stale.store(true, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        !stale.load(Ordering::Relaxed)
    }
}

/// One directory: its own time, then each file relative to it.
#[cfg(unix)]
fn dir_unchanged(root: &Path, dir: &DirRecord) -> bool {
    use rustix::fs::{AtFlags, Mode, OFlags};
    #[allow(clippy::unnecessary_cast)]
    fn time(st: &rustix::fs::Stat) -> u64 {
        let secs = st.st_mtime as i64;
        if secs < 0 {
            return 0;
        }
        (secs as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(st.st_mtime_nsec as u64)
    }
    let path = root.join(&dir.path);
    let Ok(fd) = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    if !rustix::fs::fstat(&fd).is_ok_and(|st| time(&st) == dir.mtime) {
        return false;
    }
    dir.files.iter().all(|(name, size, mtime)| {
        #[allow(clippy::unnecessary_cast)]
        rustix::fs::statat(&fd, name.as_str(), AtFlags::empty())
            .is_ok_and(|st| st.st_size as u64 == *size && time(&st) == *mtime)
    })
}

/// One directory, through the standard library (full paths).
#[cfg(not(unix))]
fn dir_unchanged(root: &Path, dir: &DirRecord) -> bool {
    let path = root.join(&dir.path);
    let same = |p: &Path, size: Option<u64>, mtime: u64| {
        std::fs::metadata(p)
            .is_ok_and(|m| size.is_none_or(|s| m.len() == s) && nanos(m.modified()) == mtime)
    };
    same(&path, None, dir.mtime)
        && dir
            .files
            .iter()
            .all(|(name, size, mtime)| same(&path.join(name), Some(*size), *mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set a path's modification time (files and directories alike).
    fn age(path: &Path, when: SystemTime) {
        std::fs::File::open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn record(root: &Path) -> Manifest {
        let mut out = Manifest {
            complete: true,
            ..Manifest::default()
        };
        for rel in ["", "a"] {
            let mut d = DirRecord::new(Path::new(rel), &root.join(rel)).unwrap();
            let mut names: Vec<_> = std::fs::read_dir(root.join(rel))
                .unwrap()
                .flatten()
                .filter(|e| e.file_type().unwrap().is_file())
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            names.sort();
            for n in names {
                d.file(&n, &std::fs::metadata(root.join(rel).join(&n)).unwrap());
            }
            out.dirs.push(d);
        }
        out.settle(SystemTime::now());
        out
    }

    #[test]
    fn changes_in_place_and_new_entries_are_noticed_recent_ones_distrusted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir(root.join("a")).unwrap();
        std::fs::write(root.join("top.yaml"), "x: 1\n").unwrap();
        std::fs::write(root.join("a/one.yaml"), "y: 2\n").unwrap();
        assert!(!record(root).unchanged(root), "just written: not settled");

        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for p in ["top.yaml", "a/one.yaml", "a", ""] {
            age(&root.join(p), hour_ago);
        }
        let settled = record(root);
        assert!(settled.settled);
        assert_eq!(settled.dirs[1].files.len(), 1);
        assert!(settled.unchanged(root), "nothing changed");

        // Same size, rewritten in place: only the file's time moves.
        std::fs::write(root.join("a/one.yaml"), "y: 3\n").unwrap();
        assert!(!settled.unchanged(root), "rewritten in place");
        age(&root.join("a/one.yaml"), hour_ago);
        assert!(settled.unchanged(root), "back as recorded");

        // A new entry changes its directory's time.
        std::fs::write(root.join("a/two.yaml"), "z: 4\n").unwrap();
        assert!(!settled.unchanged(root), "file added");
        std::fs::remove_file(root.join("a/two.yaml")).unwrap();
        age(&root.join("a"), hour_ago);
        assert!(settled.unchanged(root));
        std::fs::remove_file(root.join("top.yaml")).unwrap();
        assert!(!settled.unchanged(root), "file removed");
        assert!(!settled.unchanged(&root.join("elsewhere")), "no root");
    }
}
