//! The snapshot shipped inside the binary (zstd-compressed), materialised
//! into the user's cache directory on first use, under a name derived from
//! the bundle's content at build time.

use std::path::{Path, PathBuf};

use super::KbError;

/// The compressed bundled snapshot (empty when the build had none).
pub static BUNDLED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bundled-snapshot.zst"));

/// Content id of the compressed bundle (FNV-1a and length, computed by the
/// build script); names the cache file.
pub const BUNDLE_ID: &str = env!("THOTH_BUNDLE_ID");

/// Path of the bundled snapshot under `cache_root`, decompressing it first
/// if needed (atomically, so concurrent first runs are safe).
pub fn materialise(cache_root: &Path) -> Result<PathBuf, KbError> {
    if BUNDLED.is_empty() {
        return Err(KbError::Schema {
            path: "data/snapshot.sqlite.zst".into(),
            message: "this build has no bundled snapshot; pass --snapshot PATH (build one with `thoth-rs snapshot sync`)".into(),
        });
    }
    let path = cache_root.join(format!("snapshot-{BUNDLE_ID}.sqlite"));
    crate::write::sweep_stale(cache_root, None);
    // A copy of the wrong size (truncated, or overwritten) is unpacked again.
    let expected = zstd::zstd_safe::get_frame_content_size(BUNDLED)
        .ok()
        .flatten();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && expected.is_none_or(|n| n == m.len()) => return Ok(path),
        Ok(_) => {
            tracing::warn!(
                "{} is damaged (not the size of the bundled snapshot); unpacking it again",
                path.display()
            );
        }
        Err(_) => {}
    }
    unpack(cache_root, &path)?;
    Ok(path)
}

/// Unpack the bundle at `path` again (a damaged copy is replaced).
pub fn repair(cache_root: &Path) -> Result<PathBuf, KbError> {
    let path = cache_root.join(format!("snapshot-{BUNDLE_ID}.sqlite"));
    unpack(cache_root, &path)?;
    Ok(path)
}

/// The marker of a checked unpacked copy: its size and modification time.
fn marker(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".checked");
    PathBuf::from(name)
}

fn stamp(m: &std::fs::Metadata) -> String {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {mtime}\n", m.len())
}

/// Is the copy at `path` the one that was checked after unpacking (same
/// size and time)? One `stat` and one small read per run.
pub fn verified(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|m| std::fs::read_to_string(marker(path)).is_ok_and(|s| s == stamp(&m)))
}

/// Record that the copy at `path` passed its check.
pub fn mark_checked(path: &Path) {
    if let Ok(m) = std::fs::metadata(path) {
        let _ = crate::write::write_atomic(&marker(path), stamp(&m).as_bytes());
    }
}

fn unpack(cache_root: &Path, path: &Path) -> Result<(), KbError> {
    let io = |source: std::io::Error| KbError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(cache_root).map_err(io)?;
    let _ = std::fs::remove_file(marker(path));
    let bytes = zstd::stream::decode_all(BUNDLED).map_err(io)?;
    crate::write::write_atomic(path, &bytes).map_err(io)?;
    Ok(())
}
