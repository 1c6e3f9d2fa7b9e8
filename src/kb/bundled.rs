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
    if path.is_file() {
        return Ok(path);
    }
    let io = |source: std::io::Error| KbError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(cache_root).map_err(io)?;
    let bytes = zstd::stream::decode_all(BUNDLED).map_err(io)?;
    crate::write::write_atomic(&path, &bytes).map_err(io)?;
    Ok(path)
}
