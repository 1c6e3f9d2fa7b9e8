//! Atomic file writes: nothing the user had is ever left half-written.

use std::io::Write;
use std::path::Path;

/// Write `contents` to `path` through a temporary file in the same directory
/// and a rename, so readers see either the old or the new file.
///
/// A symbolic link is written through: its final target is replaced the
/// same way and the link stays a link. A path that is something else than
/// a regular file (a device, a FIFO, a directory) is refused
/// (`InvalidInput`): renaming over it would replace the node itself.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let resolved;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            resolved = final_target(path)?;
            resolved.as_path()
        }
        _ => path,
    };
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} is not a regular file (a device, pipe or directory); give a file path",
                    path.display()
                ),
            ));
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name")
    })?;
    sweep_stale(dir, Some(&format!(".{}.", file_name.to_string_lossy())));
    // Unique per process and per call, so threads writing the same file
    // (e.g. two first uses of the bundled snapshot) never share a temp file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Remove the temporary files that runs of thoth-rs which no longer exist
/// (killed, or the machine lost power) left in `dir`: `.NAME.PID.N.tmp`
/// from [`write_atomic`] and `.NAME.PID.partial` or `NAME.LABEL-PID.partial`
/// from snapshot writers. Only names starting with `prefix` are looked at
/// when one is given. A file whose process is still running is left
/// alone; errors are ignored (this is tidying, never a reason to fail).
pub fn sweep_stale(dir: &Path, prefix: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if prefix.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        if let Some(pid) = writer_pid(name)
            && !process_alive(pid)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The process id in a temporary file name of ours, if it is one.
fn writer_pid(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_suffix(".tmp") {
        // .NAME.PID.N.tmp
        let mut parts = rest.rsplitn(3, '.');
        let n = parts.next()?;
        let pid = parts.next()?;
        let head = parts.next()?;
        if !head.starts_with('.') || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return pid.parse().ok();
    }
    let rest = name.strip_suffix(".partial")?;
    // .NAME.PID.partial or NAME.LABEL-PID.partial
    let tail = rest.rsplit(['.', '-']).next()?;
    tail.parse().ok()
}

/// Is process `pid` running? Where that cannot be known, assume it is.
fn process_alive(pid: u32) -> bool {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return true;
    }
    pid == std::process::id() || proc_root.join(pid.to_string()).exists()
}

/// Where a chain of symbolic links ends (the last link's target, which
/// may not exist yet), followed at most 40 times.
fn final_target(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{}: too many levels of symbolic links", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Pipfile.lock");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporary_files_of_dead_runs_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A process id that cannot be running: above the kernel's maximum.
        let dead = 4_194_305u32;
        let me = std::process::id();
        let stale = [
            format!(".Pipfile.lock.{dead}.0.tmp"),
            format!(".snapshot.sqlite.{dead}.partial"),
            format!("snapshot.import-{dead}.partial"),
        ];
        let kept = [
            format!(".Pipfile.lock.{me}.7.tmp"),
            "Pipfile.lock".to_string(),
            format!("notes.{dead}.txt"),
            ".hidden.tmp".to_string(),
        ];
        for name in stale.iter().chain(&kept) {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        sweep_stale(dir.path(), Some(".Pipfile.lock."));
        assert!(!dir.path().join(&stale[0]).exists());
        assert!(dir.path().join(&stale[1]).exists(), "outside the prefix");
        sweep_stale(dir.path(), None);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = kept.to_vec();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn threads_writing_one_file_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.sqlite");
        std::thread::scope(|scope| {
            let writers: Vec<_> = (0..8u8)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || write_atomic(path, &vec![i; 1 << 16]))
                })
                .collect();
            for w in writers {
                w.join().unwrap().unwrap();
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.len() == 1 << 16 && bytes.iter().all(|b| *b == bytes[0]));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_written_through_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.lock");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("Pipfile.lock");
        std::os::unix::fs::symlink("real.lock", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link gets its target created.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("made.lock", &dangling).unwrap();
        write_atomic(&dangling, b"x").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("made.lock")).unwrap(),
            "x"
        );
        // A loop is an error, not a hang.
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", &b).unwrap();
        assert!(write_atomic(&a, b"x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        // A directory, and a FIFO where the system can make one.
        let err = write_atomic(dir.path(), b"x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let err = write_atomic(&fifo, b"x").unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
            assert!(
                !std::fs::metadata(&fifo).unwrap().is_file(),
                "the FIFO must still be a FIFO"
            );
        }
    }

    #[test]
    fn failure_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("x");
        assert!(write_atomic(&missing, b"data").is_err());
    }
}
