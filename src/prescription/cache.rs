//! Compiled prescription directories, cached.
//!
//! Compiling a large corpus means opening tens of thousands of small YAML
//! files and parsing them; both cost seconds. The compiled result of a
//! directory is kept under the user cache directory
//! (`prescriptions/<hash of the path>.bin`) with a stamp of the cache
//! format and the running program (its size and modification time, so a
//! rebuilt parser never reads an old cache) and the [`Manifest`] of what it
//! was compiled from. Any difference — a file added, removed, renamed,
//! rewritten or touched — compiles the directory again. One `stat` per
//! directory and per file, checked while the cache is decoded, is all an
//! unchanged corpus costs: no directory is listed. Units' bodies (`match`
//! and `run`) stay compressed until a run consults them.
//!
//! `THOTH_PRESCRIPTIONS_CACHE=off` disables the cache. Writes go through a
//! temporary file and a rename; an unreadable or foreign cache file is
//! ignored. A cache file is marked used (its modification time) whenever it
//! serves a load; files unused for 30 days are removed when another is
//! written.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};

use super::manifest::Manifest;
use super::schema::{BodySource, ShouldInclude};
use super::{Diagnostic, Routing, Unit, UnitKind};

/// Bump when the compiled model changes shape.
const FORMAT: u64 = 1;
const MAGIC: &[u8] = b"THRXPC05";

/// What compiling one source gives, before sources are merged.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Compiled {
    /// Prescription files read.
    pub files: usize,
    /// Namespaces seen (`name` → `release`).
    pub namespaces: BTreeMap<String, String>,
    /// Units in file order.
    #[serde(skip)]
    pub units: Vec<Unit>,
    /// Errors (file-level and per unit).
    pub errors: Vec<Diagnostic>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
    /// The units' routing, once computed (stored with the cache).
    #[serde(default)]
    pub routing: Option<Routing>,
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
    /// A stamp of nothing yet.
    pub fn empty() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
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

/// Units per block. A block's bodies (`match` and `run`) are compressed
/// together and decompressed when the first of them is used.
const BLOCK_UNITS: usize = 512;

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

/// FNV-1a of `bytes` (a guard against damage, not for security).
fn checksum(bytes: &[u8]) -> u64 {
    let mut s = Stamp::empty();
    s.add(bytes);
    s.value()
}

/// One block's bodies as stored: a range of the cache file's bytes.
struct Block {
    file: Arc<Vec<u8>>,
    packed: Range<usize>,
    raw: usize,
    text: OnceLock<Option<Vec<u8>>>,
}

impl BodySource for Block {
    fn text(&self) -> Option<&[u8]> {
        self.text
            .get_or_init(|| {
                let packed = self.file.get(self.packed.clone())?;
                let text = zstd::bulk::decompress(packed, self.raw).ok()?;
                (text.len() == self.raw).then_some(text)
            })
            .as_deref()
    }
}

/// The cached compilation at `path`, if it was written by this program
/// (`program`, the value of [`Stamp::default`]) and `check` accepts its
/// manifest. `check` runs on another thread while the units are decoded.
///
/// Layout: magic, program stamp, checksum of the rest, total unit count,
/// section count, per section its raw and compressed length, then the
/// zstd-compressed sections. Section 0 is the JSON of everything but the
/// units, section 1 the manifest; then two sections per block of units:
/// the JSON list of their heads (name, kind, file, should_include, length
/// of the body) and their bodies' JSON texts one after the other. Heads are
/// decoded now, bodies when used ([`Unit::body`]).
pub fn read_checked(
    path: &Path,
    program: u64,
    check: impl FnOnce(&Manifest) -> bool + Send,
) -> Option<Compiled> {
    let file = Arc::new(std::fs::read(path).ok()?);
    let mut data = file.as_slice();
    if take(&mut data, 8)? != MAGIC || take_u64(&mut data)? != program {
        return None;
    }
    let sum = take_u64(&mut data)?;
    if checksum(data) != sum {
        return None;
    }
    let total = usize::try_from(take_u64(&mut data)?).ok()?;
    let count = usize::try_from(take_u64(&mut data)?).ok()?;
    if count < 2 || count % 2 != 0 || count > MAX_SECTIONS || total > MAX_UNITS {
        return None;
    }
    let mut lengths = Vec::with_capacity(count);
    for _ in 0..count {
        let raw = usize::try_from(take_u64(&mut data)?).ok()?;
        let len = usize::try_from(take_u64(&mut data)?).ok()?;
        if raw > MAX_SECTION_BYTES {
            return None;
        }
        lengths.push((raw, len));
    }
    let mut at = file.len() - data.len();
    let mut sections = Vec::with_capacity(count);
    for (raw, len) in lengths {
        let end = at.checked_add(len).filter(|&e| e <= file.len())?;
        sections.push((raw, at..end));
        at = end;
    }
    if at != file.len() {
        return None;
    }
    let mut decompressor = zstd::bulk::Decompressor::new().ok()?;
    let mut buffer = Vec::new();
    let mut decode = |(raw, packed): &(usize, Range<usize>), buffer: &mut Vec<u8>| -> Option<()> {
        buffer.clear();
        buffer.reserve(*raw);
        let n = decompressor
            .decompress_to_buffer(&file[packed.clone()], buffer)
            .ok()?;
        (n == *raw).then_some(())
    };
    decode(&sections[0], &mut buffer)?;
    let mut head: Compiled = serde_json::from_slice(&buffer).ok()?;
    decode(&sections[1], &mut buffer)?;
    let manifest: Manifest = serde_json::from_slice(&buffer).ok()?;
    let (unchanged, units) = std::thread::scope(|scope| {
        let checking = scope.spawn(|| check(&manifest));
        let mut units = Vec::with_capacity(total);
        let decoded = sections[2..].chunks(2).try_for_each(|pair| {
            let (heads, (raw, packed)) = (&pair[0], &pair[1]);
            decode(heads, &mut buffer)?;
            let block: Arc<dyn BodySource> = Arc::new(Block {
                file: Arc::clone(&file),
                packed: packed.clone(),
                raw: *raw,
                text: OnceLock::new(),
            });
            let mut heads = AppendHeads {
                units: &mut units,
                block,
                offset: 0,
            };
            let mut de = serde_json::Deserializer::from_slice(&buffer);
            (&mut heads).deserialize(&mut de).ok()?;
            de.end().ok()?;
            (heads.offset == *raw).then_some(())
        });
        let unchanged = checking.join().unwrap_or(false);
        (unchanged, decoded.map(|()| units))
    });
    if !unchanged {
        return None;
    }
    head.units = units.filter(|u| u.len() == total).or_else(|| {
        tracing::debug!("ignoring unreadable prescription cache {}", path.display());
        None
    })?;
    Some(head)
}

/// Largest decompressed section a cache file may announce.
const MAX_SECTION_BYTES: usize = 1 << 30;

/// Most sections a cache file may announce.
const MAX_SECTIONS: usize = 1 << 16;

/// Most units a cache file may announce (a guard against a damaged count).
const MAX_UNITS: usize = 1 << 24;

/// A unit's head as stored: name, kind, file, should_include, body length.
type Head = (String, UnitKind, String, ShouldInclude, usize);

/// Deserialises a JSON list of unit heads onto the end of a vector, each
/// unit's body the next `length` bytes of `block`.
struct AppendHeads<'a> {
    units: &'a mut Vec<Unit>,
    block: Arc<dyn BodySource>,
    offset: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for &mut AppendHeads<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for &mut AppendHeads<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of unit heads")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((name, kind, file, should_include, length)) = seq.next_element::<Head>()? {
            let end = self
                .offset
                .checked_add(length)
                .ok_or_else(|| serde::de::Error::custom("body length"))?;
            self.units.push(Unit::encoded(
                name,
                kind,
                file,
                should_include,
                Arc::clone(&self.block),
                self.offset..end,
            ));
            self.offset = end;
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

/// Store `compiled` at `path` with the `program` stamp and the `manifest`
/// of what it was compiled from; failures are only logged (the cache is an
/// optimisation). Cache files unused for 30 days are removed.
pub fn write(path: &Path, program: u64, manifest: &Manifest, compiled: &Compiled) {
    let result = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let computed;
        let routing = match &compiled.routing {
            Some(r) => r,
            None => {
                computed = super::Routing::of(&compiled.units);
                &computed
            }
        };
        let mut sections = vec![
            serde_json::to_vec(&serde_json::json!({
                "files": compiled.files,
                "namespaces": compiled.namespaces,
                "errors": compiled.errors,
                "warnings": compiled.warnings,
                "routing": routing,
            }))?,
            serde_json::to_vec(manifest)?,
        ];
        for block in compiled.units.chunks(BLOCK_UNITS) {
            let mut bodies = Vec::new();
            let mut heads = Vec::with_capacity(block.len());
            for u in block {
                let start = bodies.len();
                serde_json::to_writer(&mut bodies, u.body())?;
                heads.push((
                    &u.name,
                    u.kind,
                    &u.file,
                    &u.should_include,
                    bodies.len() - start,
                ));
            }
            sections.push(serde_json::to_vec(&heads)?);
            sections.push(bodies);
        }
        let mut table = Vec::new();
        let mut payload = Vec::with_capacity(1 << 20);
        table.extend_from_slice(&(compiled.units.len() as u64).to_le_bytes());
        table.extend_from_slice(&(sections.len() as u64).to_le_bytes());
        for json in sections {
            let packed = zstd::bulk::compress(&json, 3)?;
            table.extend_from_slice(&(json.len() as u64).to_le_bytes());
            table.extend_from_slice(&(packed.len() as u64).to_le_bytes());
            payload.extend(packed);
        }
        table.extend(payload);
        let mut out = Vec::with_capacity(table.len() + 24);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&program.to_le_bytes());
        out.extend_from_slice(&checksum(&table).to_le_bytes());
        out.extend(table);
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
            routing: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.bin");
        let program = Stamp::default().value();
        let manifest = Manifest {
            dirs: vec![super::super::manifest::DirRecord {
                path: "web".into(),
                mtime: 7,
                files: vec![("flask.yaml".into(), 10, 11)],
            }],
            settled: true,
            complete: false,
        };
        write(&path, program, &manifest, &compiled);
        let seen = std::sync::Mutex::new(None);
        let read = |check: bool| {
            read_checked(&path, program, |m| {
                *seen.lock().unwrap() = Some(m.clone());
                check
            })
        };
        let back = read(true).unwrap();
        assert_eq!(seen.lock().unwrap().take(), Some(manifest.clone()));
        // Bodies are decoded on first use, each equal to the compiled one.
        assert_eq!(back.units, fresh.units);
        assert_eq!(
            back.routing,
            Some(Routing::of(&fresh.units)),
            "the routing is stored with the units"
        );
        assert_eq!(back.warnings, fresh.warnings);
        assert_eq!(back.files, fresh.files);
        assert!(read(false).is_none(), "the manifest's check decides");
        let mut other = Stamp::default();
        other.add(b"changed");
        assert!(
            read_checked(&path, other.value(), |_| true).is_none(),
            "another program"
        );
        let bytes = std::fs::read(&path).unwrap();
        for cut in (0..bytes.len()).step_by(97) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(read(true).is_none(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        assert!(read(true).is_none(), "corrupted");
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
        let program = Stamp::default().value();
        let fresh = dir.path().join("c.bin");
        write(&fresh, program, &Manifest::default(), &Compiled::default());
        assert!(!stale.exists(), "unused for long: removed");
        assert!(used.exists() && recent.exists(), "used lately: kept");
        assert!(other.exists(), "not a cache file: kept");
        assert!(read_checked(&fresh, program, |_| true).is_some());
    }
}
