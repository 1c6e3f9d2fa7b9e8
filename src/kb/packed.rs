//! Packed project records: everything [`SqliteKb`](super::sqlite::SqliteKb)
//! loads for one project, stored as one blob in the `project_records` table.
//!
//! The normalised tables stay the source of truth; the blob is derived from
//! them when a snapshot is finished (or advisories are imported) and lets a
//! project load read one row instead of decoding hundreds of file rows
//! column by column. A snapshot without the table, or a blob this build
//! cannot read, is loaded from the tables as before.
//!
//! Layout (integers are LEB128 varints, strings a length then UTF-8 bytes,
//! optional strings a 0 for absent or length + 1):
//!
//! ```text
//! format (1 byte)
//! set count, then per set: dependency count, then per dependency:
//!     name, extra count + extras, specifier, marker?, extra?
//! release count, then per release (newest first):
//!     row id, version, upload_time?, yanked (1 byte), yanked_reason?,
//!     requires_python?, set (0 = metadata unavailable, else index + 1),
//!     extra count + extras, advisory count + advisory ids,
//!     file count, then per file: filename, upload_time?, requires_python?,
//!     yanked (1 byte)
//! ```
//!
//! Files carry only what resolution needs, like the table load; digests,
//! sizes and URLs still come from [`KnowledgeBase::files`](super::KnowledgeBase::files).

use std::sync::Arc;

use super::{Dependency, Distribution, ProjectRecord, Release, Requires};
use crate::python::parse_version;

/// The blob format this build writes: format 1 plus, for a release
/// without metadata, whether it was not fetched or why it is unavailable,
/// and a trailing FNV-1a 64-bit checksum of everything before it (an edited
/// or damaged record is not believed: the tables answer instead).
pub const FORMAT: u8 = 2;
/// The older format, still read.
pub const FORMAT_1: u8 = 1;

/// FNV-1a, 64 bits.
fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Encode a loaded project (release row ids in `releases` order).
pub fn encode(ids: &[i64], record: &ProjectRecord) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(256 + record.releases.len() * 160));
    out.0.push(FORMAT);
    // Dependency sets are shared between releases by `Arc`.
    let mut sets: Vec<&Arc<Vec<Dependency>>> = Vec::new();
    let set_of: Vec<u64> = record
        .releases
        .iter()
        .map(|r| match &r.dependencies {
            Requires::Unavailable(_) => 0,
            Requires::NotFetched => 1,
            Requires::Known(deps) => {
                let at = match sets.iter().position(|s| Arc::ptr_eq(s, deps)) {
                    Some(i) => i,
                    None => {
                        sets.push(deps);
                        sets.len() - 1
                    }
                };
                at as u64 + 2
            }
        })
        .collect();
    out.uint(sets.len() as u64);
    for set in &sets {
        out.uint(set.len() as u64);
        for d in set.iter() {
            out.str(&d.name);
            out.strs(&d.extras);
            out.str(&d.specifier);
            out.opt(d.marker.as_deref());
            out.opt(d.extra.as_deref());
        }
    }
    out.uint(record.releases.len() as u64);
    for ((release, id), set) in record.releases.iter().zip(ids).zip(set_of) {
        out.uint(*id as u64);
        out.str(&release.version.to_string());
        out.opt(release.upload_time.as_deref());
        out.0.push(u8::from(release.yanked));
        out.opt(release.yanked_reason.as_deref());
        out.opt(release.requires_python.as_deref());
        out.uint(set);
        if let Requires::Unavailable(why) = &release.dependencies {
            out.str(why);
        }
        out.strs(&release.provides_extras);
        out.strs(&release.advisories);
        out.uint(release.distributions.len() as u64);
        for f in &release.distributions {
            out.str(&f.filename);
            out.opt(f.upload_time.as_deref());
            out.opt(f.requires_python.as_deref());
            out.0.push(u8::from(f.yanked));
        }
    }
    let sum = checksum(&out.0);
    out.0.extend_from_slice(&sum.to_le_bytes());
    out.0
}

/// Decode a blob into release row ids and the project record; `None` when
/// the blob is damaged, fails its checksum or is of another format (the
/// caller then reads the tables).
pub fn decode(data: &[u8], name: &str, display_name: String) -> Option<(Vec<i64>, ProjectRecord)> {
    let format = *data.first()?;
    let data = match format {
        FORMAT => {
            let (body, sum) = data.split_at_checked(data.len().checked_sub(8)?)?;
            if checksum(body).to_le_bytes() != sum {
                return None;
            }
            body
        }
        FORMAT_1 => data,
        _ => return None,
    };
    let mut r = Reader { data, at: 1 };
    let set_count = r.count()?;
    let mut sets = Vec::with_capacity(set_count);
    for _ in 0..set_count {
        let n = r.count()?;
        let mut deps = Vec::with_capacity(n);
        for _ in 0..n {
            deps.push(Dependency {
                name: r.string()?,
                extras: r.strings()?,
                specifier: r.string()?,
                marker: r.opt()?,
                extra: r.opt()?,
            });
        }
        sets.push(Arc::new(deps));
    }
    let release_count = r.count()?;
    let mut ids = Vec::with_capacity(release_count);
    let mut releases = Vec::with_capacity(release_count);
    for _ in 0..release_count {
        ids.push(i64::try_from(r.uint()?).ok()?);
        let version = parse_version(r.str()?).ok()?;
        let upload_time = r.opt()?;
        let yanked = r.flag()?;
        let yanked_reason = r.opt()?;
        let requires_python = r.opt()?;
        let dependencies = match (format, r.uint()?) {
            (FORMAT_1, 0) => Requires::Unavailable(Arc::from(super::sqlite::UNREADABLE)),
            (FORMAT_1, k) => Requires::Known(sets.get(usize::try_from(k - 1).ok()?)?.clone()),
            (_, 0) => Requires::Unavailable(Arc::from(r.str()?)),
            (_, 1) => Requires::NotFetched,
            (_, k) => Requires::Known(sets.get(usize::try_from(k - 2).ok()?)?.clone()),
        };
        let provides_extras = r.strings()?;
        let advisories = r.strings()?;
        let n = r.count()?;
        let mut distributions = Vec::with_capacity(n);
        for _ in 0..n {
            distributions.push(Distribution {
                filename: r.string()?,
                sha256: None,
                size: None,
                upload_time: r.opt()?,
                requires_python: r.opt()?,
                yanked: r.flag()?,
                url: None,
            });
        }
        releases.push(Release {
            version,
            upload_time,
            yanked,
            yanked_reason,
            requires_python,
            distributions,
            dependencies,
            provides_extras,
            advisories,
        });
    }
    if r.at != data.len() {
        return None;
    }
    Some((
        ids,
        ProjectRecord {
            name: name.to_string(),
            display_name,
            releases,
            index: None,
        },
    ))
}

/// Format byte of a packed project page (the user knowledge base).
pub const PAGE_FORMAT: u8 = 0x81;
/// Format byte of a packed release metadata record.
pub const METADATA_FORMAT: u8 = 0x82;

/// Encode a project page as the user knowledge base stores it: every
/// release with every file, including digests, sizes and URLs; no
/// dependency metadata (stored per release, see [`encode_metadata`]).
///
/// ```text
/// format, display_name, release count, then per release (newest first):
///     version, yanked_reason?, file count, then per file:
///         filename, sha256 (0 or 32 bytes), size + 1 (0 = unknown),
///         upload_time?, requires_python?, yanked (1 byte), url?
/// ```
pub fn encode_page(record: &ProjectRecord) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(64 + record.releases.len() * 256));
    out.0.push(PAGE_FORMAT);
    out.str(&record.display_name);
    out.uint(record.releases.len() as u64);
    for release in &record.releases {
        out.str(&release.version.to_string());
        out.opt(release.yanked_reason.as_deref());
        out.uint(release.distributions.len() as u64);
        for f in &release.distributions {
            out.str(&f.filename);
            let digest = f
                .sha256
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .filter(|d| d.len() == 32)
                .unwrap_or_default();
            out.uint(digest.len() as u64);
            out.0.extend_from_slice(&digest);
            out.uint(f.size.map_or(0, |s| s.max(0) as u64 + 1));
            out.opt(f.upload_time.as_deref());
            out.opt(f.requires_python.as_deref());
            out.0.push(u8::from(f.yanked));
            out.opt(f.url.as_deref());
        }
    }
    out.0
}

/// Decode [`encode_page`]; `None` when damaged. Release upload times and
/// yanks are derived from their files, as when the page was read.
pub fn decode_page(data: &[u8], name: &str, index: Option<Arc<str>>) -> Option<ProjectRecord> {
    decode_page_with(data, name, index, &|_| true, true)
}

/// [`decode_page`] keeping only the files `keep` accepts (by file name),
/// with digests and sizes only when `digests`; files left out cost no
/// allocation.
pub fn decode_page_with(
    data: &[u8],
    name: &str,
    index: Option<Arc<str>>,
    keep: &dyn Fn(&str) -> bool,
    digests: bool,
) -> Option<ProjectRecord> {
    let mut r = Reader { data, at: 0 };
    if r.byte()? != PAGE_FORMAT {
        return None;
    }
    let display_name = r.string()?;
    let n = r.count()?;
    let mut releases = Vec::with_capacity(n);
    for _ in 0..n {
        let version = parse_version(r.str()?).ok()?;
        let yanked_reason = r.opt()?;
        let files = r.count()?;
        let mut distributions = Vec::new();
        let mut upload_time: Option<String> = None;
        let mut all_yanked = files > 0;
        for _ in 0..files {
            let filename = r.str()?;
            let wanted = keep(filename);
            let digest = match r.count()? {
                0 => None,
                32 => Some(r.bytes(32)?),
                _ => return None,
            };
            let size = r.uint()?;
            let time = r.opt_str()?;
            let requires_python = r.opt_str()?;
            let yanked = r.flag()?;
            let url = r.opt_str()?;
            // Upload time and yank of a release are those of all its files.
            if let Some(t) = time
                && upload_time.as_deref().is_none_or(|u| t < u)
            {
                upload_time = Some(t.to_string());
            }
            all_yanked &= yanked;
            if !wanted {
                continue;
            }
            distributions.push(Distribution {
                filename: filename.to_string(),
                sha256: digest.filter(|_| digests).map(hex::encode),
                size: match size {
                    0 => None,
                    k if digests => Some(i64::try_from(k - 1).ok()?),
                    _ => None,
                },
                upload_time: time.map(str::to_string),
                requires_python: requires_python.map(str::to_string),
                yanked,
                url: url.map(str::to_string),
            });
        }
        releases.push(Release {
            version,
            upload_time,
            yanked: all_yanked,
            yanked_reason,
            requires_python: None,
            distributions,
            dependencies: Requires::NotFetched,
            provides_extras: Vec::new(),
            advisories: Vec::new(),
        });
    }
    if r.at != data.len() {
        return None;
    }
    Some(ProjectRecord {
        name: name.to_string(),
        display_name,
        releases,
        index,
    })
}

/// Every file of release `version` of a packed page, whole; the other
/// releases are skipped without decoding.
pub fn decode_release_files(
    data: &[u8],
    version: &crate::python::Version,
) -> Option<Vec<Distribution>> {
    let mut r = Reader { data, at: 0 };
    if r.byte()? != PAGE_FORMAT {
        return None;
    }
    let _display = r.str()?;
    let n = r.count()?;
    for _ in 0..n {
        let this = parse_version(r.str()?).ok()? == *version;
        let _reason = r.opt_str()?;
        let files = r.count()?;
        let mut out = Vec::new();
        for _ in 0..files {
            let filename = r.str()?;
            let digest = match r.count()? {
                0 => None,
                32 => Some(r.bytes(32)?),
                _ => return None,
            };
            let size = r.uint()?;
            let time = r.opt_str()?;
            let requires_python = r.opt_str()?;
            let yanked = r.flag()?;
            let url = r.opt_str()?;
            if this {
                out.push(Distribution {
                    filename: filename.to_string(),
                    sha256: digest.map(hex::encode),
                    size: match size {
                        0 => None,
                        k => Some(i64::try_from(k - 1).ok()?),
                    },
                    upload_time: time.map(str::to_string),
                    requires_python: requires_python.map(str::to_string),
                    yanked,
                    url: url.map(str::to_string),
                });
            }
        }
        if this {
            return Some(out);
        }
    }
    Some(Vec::new())
}

/// Encode one release's dependency metadata.
pub fn encode_metadata(dependencies: &[Dependency], provides_extras: &[String]) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(32 + dependencies.len() * 48));
    out.0.push(METADATA_FORMAT);
    out.uint(dependencies.len() as u64);
    for d in dependencies {
        out.str(&d.name);
        out.strs(&d.extras);
        out.str(&d.specifier);
        out.opt(d.marker.as_deref());
        out.opt(d.extra.as_deref());
    }
    out.strs(provides_extras);
    out.0
}

/// Decode [`encode_metadata`]: (dependencies, provides_extras).
pub fn decode_metadata(data: &[u8]) -> Option<(Vec<Dependency>, Vec<String>)> {
    let mut r = Reader { data, at: 0 };
    if r.byte()? != METADATA_FORMAT {
        return None;
    }
    let n = r.count()?;
    let mut deps = Vec::with_capacity(n);
    for _ in 0..n {
        deps.push(Dependency {
            name: r.string()?,
            extras: r.strings()?,
            specifier: r.string()?,
            marker: r.opt()?,
            extra: r.opt()?,
        });
    }
    let extras = r.strings()?;
    (r.at == data.len()).then_some((deps, extras))
}

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn str(&mut self, s: &str) {
        self.uint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            None => self.uint(0),
            Some(s) => {
                self.uint(s.len() as u64 + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn strs(&mut self, list: &[String]) {
        self.uint(list.len() as u64);
        for s in list {
            self.str(s);
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn flag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn uint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A count of following items; never more than the bytes left, so a
    /// damaged count cannot make the decoder allocate without bound.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.uint()?).ok()?;
        (n <= self.data.len() - self.at).then_some(n)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.data.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.uint()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match usize::try_from(self.uint()?).ok()? {
            0 => Some(None),
            n => {
                let s = std::str::from_utf8(self.bytes(n - 1)?).ok()?;
                Some(Some(s.to_string()))
            }
        }
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match usize::try_from(self.uint()?).ok()? {
            0 => Some(None),
            n => Some(Some(std::str::from_utf8(self.bytes(n - 1)?).ok()?)),
        }
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.string()?);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> (Vec<i64>, ProjectRecord) {
        let deps = Arc::new(vec![Dependency {
            name: "idna".into(),
            extras: vec!["all".into()],
            specifier: ">=2.5".into(),
            marker: Some("extra == \"socks\"".into()),
            extra: Some("socks".into()),
        }]);
        let release = |v: &str, deps: Requires| Release {
            version: parse_version(v).unwrap(),
            upload_time: Some("2024-01-02T03:04:05Z".into()),
            yanked: v == "1.0",
            yanked_reason: (v == "1.0").then(|| "broken ünïcode".into()),
            requires_python: Some(">=3.8".into()),
            distributions: vec![Distribution {
                filename: format!("demo-{v}-py3-none-any.whl"),
                sha256: None,
                size: None,
                upload_time: None,
                requires_python: Some(String::new()),
                yanked: false,
                url: None,
            }],
            dependencies: deps,
            provides_extras: vec!["socks".into()],
            advisories: vec!["PYSEC-1".into()],
        };
        (
            vec![7, 300, 5],
            ProjectRecord {
                name: "demo".into(),
                display_name: "Demo".into(),
                releases: vec![
                    release("2.0", Requires::Known(deps.clone())),
                    release("1.1", Requires::Known(deps)),
                    release(
                        "1.0",
                        Requires::Unavailable(Arc::from(crate::kb::sqlite::UNREADABLE)),
                    ),
                ],
                index: None,
            },
        )
    }

    #[test]
    fn round_trip_keeps_every_field_and_shared_sets() {
        let (ids, rec) = record();
        let blob = encode(&ids, &rec);
        let (ids2, back) = decode(&blob, "demo", "Demo".into()).unwrap();
        assert_eq!(ids2, ids);
        assert_eq!(back.releases.len(), 3);
        for (a, b) in rec.releases.iter().zip(&back.releases) {
            assert_eq!(a.version, b.version);
            assert_eq!(a.upload_time, b.upload_time);
            assert_eq!(a.yanked, b.yanked);
            assert_eq!(a.yanked_reason, b.yanked_reason);
            assert_eq!(a.requires_python, b.requires_python);
            assert_eq!(a.distributions, b.distributions);
            assert_eq!(a.dependencies, b.dependencies);
            assert_eq!(a.provides_extras, b.provides_extras);
            assert_eq!(a.advisories, b.advisories);
        }
        let (a, b) = (&back.releases[0], &back.releases[1]);
        assert!(Arc::ptr_eq(
            a.dependencies.known().unwrap(),
            b.dependencies.known().unwrap()
        ));
        // Another format number, any truncation, trailing bytes and any
        // changed byte are refused.
        let mut other = blob.clone();
        other[0] = FORMAT + 1;
        assert!(decode(&other, "demo", String::new()).is_none());
        for at in 1..blob.len() {
            let mut edited = blob.clone();
            edited[at] ^= 0x20;
            assert!(
                decode(&edited, "demo", String::new()).is_none(),
                "byte {at}"
            );
        }
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut], "demo", String::new()).is_none());
        }
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode(&longer, "demo", String::new()).is_none());
    }

    #[test]
    fn pages_and_metadata_round_trip() {
        let (_, mut rec) = record();
        rec.releases[0].distributions[0].sha256 = Some("ab".repeat(32));
        rec.releases[0].distributions[0].size = Some(1234);
        rec.releases[0].distributions[0].url = Some("http://127.0.0.1/f/demo.whl".into());
        rec.releases[0].distributions[0].upload_time = Some("2024-01-02T03:04:05Z".into());
        let blob = encode_page(&rec);
        let back = decode_page(&blob, "demo", None).unwrap();
        assert_eq!(back.display_name, "Demo");
        assert_eq!(back.releases.len(), 3);
        for (a, b) in rec.releases.iter().zip(&back.releases) {
            assert_eq!(a.version, b.version);
            assert_eq!(a.distributions, b.distributions);
            assert_eq!(a.yanked_reason, b.yanked_reason);
            assert_eq!(b.dependencies, Requires::NotFetched);
        }
        for cut in 0..blob.len() {
            assert!(decode_page(&blob[..cut], "demo", None).is_none());
        }
        let deps = rec.releases[0].dependencies.known().unwrap();
        let blob = encode_metadata(deps, &["socks".to_string()]);
        let (d, e) = decode_metadata(&blob).unwrap();
        assert_eq!(&d, deps.as_ref());
        assert_eq!(e, ["socks"]);
        assert!(decode_metadata(&blob[..blob.len() - 1]).is_none());
    }

    #[test]
    fn huge_counts_are_refused_before_allocating() {
        let mut blob = vec![FORMAT_1];
        let mut w = Writer(Vec::new());
        w.uint(u64::MAX >> 1);
        blob.extend(w.0);
        assert!(decode(&blob, "demo", String::new()).is_none());
    }
}
