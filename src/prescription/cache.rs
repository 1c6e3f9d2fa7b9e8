//! Compiled prescription directories, cached.
//!
//! Compiling a large corpus means opening tens of thousands of small YAML
//! files and parsing them; both cost seconds. The compiled result of a
//! directory is kept under the user cache directory
//! (`prescriptions/<hash of the path>.bin`) with a stamp of everything it
//! was compiled from: the relative path, size and modification time of
//! every file and `_prescription_metadata.yaml` taken, the cache format and
//! the running program itself (its size and modification time, so a
//! rebuilt parser never reads an old cache). Any difference — a file added,
//! removed, renamed, rewritten or touched — compiles the directory again.
//! The walk and one `stat` per file are all an unchanged corpus costs.
//!
//! `THOTH_PRESCRIPTIONS_CACHE=off` disables the cache. Writes go through a
//! temporary file and a rename; an unreadable or foreign cache file is
//! ignored. A cache file is marked used (its modification time) whenever it
//! serves a load; files unused for 30 days are removed when another is
//! written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};

use super::{Diagnostic, Unit};

/// Bump when the compiled model changes shape.
const FORMAT: u64 = 1;
const MAGIC: &[u8] = b"THRXPC03";

/// What compiling one source gives, before sources are merged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Compiled {
    /// Prescription files read.
    pub files: usize,
    /// Namespaces seen (`name` → `release`).
    pub namespaces: BTreeMap<String, String>,
    /// Units in file order.
    pub units: Vec<Unit>,
    /// Errors (file-level and per unit).
    pub errors: Vec<Diagnostic>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

/// FNV-1a, 64-bit: a stable hash of the stamp (not for security).
#[derive(Debug, Clone)]
pub struct Stamp(u64);

impl Default for Stamp {
    fn default() -> Self {
        let mut s = Self::empty();
        s.add(&FORMAT.to_le_bytes());
        s.add(env!("CARGO_PKG_VERSION").as_bytes());
        if let Some(meta) = std::env::current_exe()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
        {
            s.file(Path::new(""), &meta);
        }
        s
    }
}

impl Stamp {
    /// A stamp of nothing yet (for parts combined with [`Stamp::mix`]).
    pub fn empty() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Fold in a part's stamp.
    pub fn mix(&mut self, part: &Stamp) {
        self.add(&part.0.to_le_bytes());
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Field separator, so ("ab", "c") and ("a", "bc") differ.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }

    /// Record a file: its path, size and modification time.
    pub fn file(&mut self, path: &Path, meta: &std::fs::Metadata) {
        self.add(path.as_os_str().as_encoded_bytes());
        self.add(&meta.len().to_le_bytes());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        self.add(&mtime.to_le_bytes());
    }

    /// The hash.
    pub fn value(&self) -> u64 {
        self.0
    }
}

fn enabled() -> bool {
    !std::env::var("THOTH_PRESCRIPTIONS_CACHE").is_ok_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "off" | "0" | "false" | "no"
        )
    })
}

/// Where the compiled form of `dir` is kept.
pub fn cache_file(dir: &Path) -> Option<PathBuf> {
    if !enabled() {
        return None;
    }
    let canonical = std::fs::canonicalize(dir).ok()?;
    let mut key = Stamp::empty();
    key.add(canonical.as_os_str().as_encoded_bytes());
    Some(
        crate::settings::cache_root()
            .join("prescriptions")
            .join(format!("{:016x}.bin", key.value())),
    )
}

/// Sections the units are split into, (de)serialised in parallel.
const SECTIONS: usize = 4;

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

fn take_u64(data: &mut &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(take(data, 8)?.try_into().ok()?))
}

/// The cached compilation at `path` with the stamp it was written with,
/// whatever that is: a caller may decode while it is still computing the
/// current stamp, then compare.
///
/// Layout: magic, stamp, total unit count, section count, then per section
/// its raw length, compressed length and zstd-compressed JSON. Section 0 is
/// everything but the units; the others are consecutive runs of units,
/// decoded one after the other into a single vector sized up front (no
/// regrowth, no copy of the units).
pub fn read_any(path: &Path) -> Option<(u64, Compiled)> {
    let bytes = std::fs::read(path).ok()?;
    let mut data = bytes.as_slice();
    if take(&mut data, 8)? != MAGIC {
        return None;
    }
    let found = take_u64(&mut data)?;
    let total = usize::try_from(take_u64(&mut data)?).ok()?;
    let count = usize::try_from(take_u64(&mut data)?).ok()?;
    if count == 0 || count > 64 || total > MAX_UNITS {
        return None;
    }
    let mut sections = Vec::with_capacity(count);
    for _ in 0..count {
        let raw = usize::try_from(take_u64(&mut data)?).ok()?;
        let len = usize::try_from(take_u64(&mut data)?).ok()?;
        if raw > MAX_SECTION_BYTES {
            return None;
        }
        sections.push((raw, take(&mut data, len)?));
    }
    let mut decompressor = zstd::bulk::Decompressor::new().ok()?;
    let mut buffer = Vec::new();
    let mut decode = |(raw, packed): (usize, &[u8]), buffer: &mut Vec<u8>| -> Option<()> {
        buffer.clear();
        buffer.reserve(raw);
        let n = decompressor.decompress_to_buffer(packed, buffer).ok()?;
        (n == raw).then_some(())
    };
    decode(sections[0], &mut buffer)?;
    let mut head: Compiled = serde_json::from_slice(&buffer).ok()?;
    head.units = Vec::with_capacity(total);
    for &section in &sections[1..] {
        decode(section, &mut buffer)?;
        let mut de = serde_json::Deserializer::from_slice(&buffer);
        AppendUnits(&mut head.units).deserialize(&mut de).ok()?;
        de.end().ok()?;
    }
    if head.units.len() != total {
        tracing::debug!("ignoring unreadable prescription cache {}", path.display());
        return None;
    }
    Some((found, head))
}

/// Largest decompressed section a cache file may announce.
const MAX_SECTION_BYTES: usize = 1 << 30;

/// Most units a cache file may announce (a guard against a damaged count).
const MAX_UNITS: usize = 1 << 24;

/// Deserialises a JSON list of units onto the end of a vector.
struct AppendUnits<'a>(&'a mut Vec<Unit>);

impl<'de> serde::de::DeserializeSeed<'de> for AppendUnits<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for AppendUnits<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of units")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(unit) = seq.next_element::<Unit>()? {
            self.0.push(unit);
        }
        Ok(())
    }
}

/// Cache files not used for this long are removed when another is written
/// (each directory ever compiled leaves one, temporary ones included).
const UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Record that the cache file at `path` was just used (its modification
/// time), so pruning keeps it.
pub fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Remove the cache files in `dir` unused for [`UNUSED_FOR`], except `keep`.
fn prune(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > UNUSED_FOR);
        if stale && path != keep && path.extension().is_some_and(|e| e == "bin") {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Store `compiled` at `path` with `stamp`; failures are only logged (the
/// cache is an optimisation). Cache files unused for 30 days are removed.
pub fn write(path: &Path, stamp: &Stamp, compiled: &Compiled) {
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let head = serde_json::to_vec(&serde_json::json!({
            "files": compiled.files,
            "namespaces": compiled.namespaces,
            "units": [],
            "errors": compiled.errors,
            "warnings": compiled.warnings,
        }))
        .map_err(std::io::Error::other)?;
        let chunk = compiled.units.len().div_ceil(SECTIONS).max(1);
        let mut sections = vec![head];
        for part in compiled.units.chunks(chunk) {
            sections.push(serde_json::to_vec(part).map_err(std::io::Error::other)?);
        }
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&stamp.value().to_le_bytes());
        out.extend_from_slice(&(compiled.units.len() as u64).to_le_bytes());
        out.extend_from_slice(&(sections.len() as u64).to_le_bytes());
        for json in sections {
            let packed = zstd::bulk::compress(&json, 3)?;
            out.extend_from_slice(&(json.len() as u64).to_le_bytes());
            out.extend_from_slice(&(packed.len() as u64).to_le_bytes());
            out.extend(packed);
        }
        crate::write::write_atomic(path, &out)?;
        if let Some(dir) = path.parent() {
            prune(dir, path);
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::debug!("cannot write prescription cache {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_files_are_ignored() {
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("prescriptions");
        let fresh = crate::prescription::load_fresh(std::slice::from_ref(&ours));
        let compiled = Compiled {
            files: fresh.files,
            namespaces: fresh.namespaces.clone(),
            units: fresh.units.clone(),
            errors: fresh.errors.clone(),
            warnings: fresh.warnings.clone(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let stamp = Stamp::empty();
        write(&path, &stamp, &compiled);
        let (found, back) = read_any(&path).unwrap();
        assert_eq!(found, stamp.value());
        assert_eq!(back.units, fresh.units);
        assert_eq!(back.warnings, fresh.warnings);
        assert_eq!(back.files, fresh.files);
        let mut other = Stamp::empty();
        other.add(b"changed");
        assert_ne!(found, other.value(), "another stamp");
        let bytes = std::fs::read(&path).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read_any(&path).is_none(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert!(read_any(&path).is_none(), "corrupted");
    }

    #[test]
    fn unused_cache_files_are_pruned_when_another_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let long_ago = std::time::SystemTime::now() - UNUSED_FOR - UNUSED_FOR;
        let age = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"old").unwrap();
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
            path
        };
        let stale = age("stale.bin");
        let used = age("used.bin");
        let other = age("notes.txt");
        let recent = dir.path().join("recent.bin");
        std::fs::write(&recent, b"new").unwrap();
        mark_used(&used);
        write(
            &dir.path().join("c.bin"),
            &Stamp::empty(),
            &Compiled::default(),
        );
        assert!(!stale.exists(), "unused for long: removed");
        assert!(used.exists() && recent.exists(), "used lately: kept");
        assert!(other.exists(), "not a cache file: kept");
        assert!(read_any(&dir.path().join("c.bin")).is_some());
    }
}
