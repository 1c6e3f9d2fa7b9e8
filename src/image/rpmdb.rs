//! Installed RPM packages, read without rpm from the SQLite package
//! database (`rpmdb.sqlite`, RHEL 9 / Fedora 33 and later). Older Berkeley
//! DB and NDB databases are reported as not readable.

use serde::{Deserialize, Serialize};

/// One installed RPM.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RpmPackage {
    /// Name.
    pub name: String,
    /// Epoch, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Version.
    pub version: String,
    /// Release.
    pub release: String,
    /// Architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Source RPM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// The Python metadata directories it installed (`….dist-info`,
    /// `….egg-info`, absolute paths), from its file list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub python_metadata: Vec<String>,
}

impl RpmPackage {
    /// `name-version-release.arch`, as `rpm -qa` prints it.
    pub fn identifier(&self) -> String {
        let nvr = format!("{}-{}-{}", self.name, self.version, self.release);
        match &self.arch {
            Some(a) => format!("{nvr}.{a}"),
            None => nvr,
        }
    }
}

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TAG_SOURCERPM: u32 = 1044;
const TAG_DIRINDEXES: u32 = 1116;
const TAG_BASENAMES: u32 = 1117;
const TAG_DIRNAMES: u32 = 1118;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;

/// Is this file name a Python package's metadata?
fn is_python_metadata(name: &str) -> bool {
    name.ends_with(".dist-info") || name.ends_with(".egg-info")
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Decode one header blob as the database stores it: entry count, data
/// size, the index entries (tag, type, offset, count) and the data.
pub fn parse_header(blob: &[u8]) -> Option<RpmPackage> {
    let il = usize::try_from(be32(blob, 0)?).ok()?;
    let dl = usize::try_from(be32(blob, 4)?).ok()?;
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = blob.get(data_start..data_start.checked_add(dl)?)?;
    let mut name = None;
    let mut version = None;
    let mut release = None;
    let mut epoch = None;
    let mut arch = None;
    let mut src = None;
    let mut basenames: Vec<String> = Vec::new();
    let mut dirnames: Vec<String> = Vec::new();
    let mut dirindexes: Vec<u32> = Vec::new();
    for i in 0..il {
        let at = 8 + i * 16;
        let (tag, kind, offset) = (be32(blob, at)?, be32(blob, at + 4)?, be32(blob, at + 8)?);
        let count = usize::try_from(be32(blob, at + 12)?).ok()?;
        let offset = usize::try_from(offset).ok()?;
        // A string array: `count` NUL-terminated strings from `offset`
        // (never more than the data holds).
        let strings = || -> Vec<String> {
            data.get(offset..)
                .unwrap_or_default()
                .split(|&b| b == 0)
                .take(count.min(data.len()))
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        let string = || {
            let rest = data.get(offset..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            String::from_utf8(rest[..end].to_vec()).ok()
        };
        match (tag, kind) {
            (TAG_NAME, TYPE_STRING) => name = string(),
            (TAG_VERSION, TYPE_STRING) => version = string(),
            (TAG_RELEASE, TYPE_STRING) => release = string(),
            (TAG_ARCH, TYPE_STRING) => arch = string(),
            (TAG_SOURCERPM, TYPE_STRING) => src = string(),
            (TAG_EPOCH, TYPE_INT32) => epoch = be32(data, offset).map(|e| e.to_string()),
            (TAG_BASENAMES, TYPE_STRING_ARRAY) => basenames = strings(),
            (TAG_DIRNAMES, TYPE_STRING_ARRAY) => dirnames = strings(),
            (TAG_DIRINDEXES, TYPE_INT32) => {
                dirindexes = (0..count.min(data.len() / 4))
                    .map_while(|k| be32(data, offset.checked_add(k * 4)?))
                    .collect();
            }
            _ => {}
        }
    }
    let python_metadata = basenames
        .iter()
        .zip(&dirindexes)
        .filter(|(b, _)| is_python_metadata(b))
        .filter_map(|(b, &d)| {
            let dir = dirnames.get(usize::try_from(d).ok()?)?;
            Some(format!("{dir}{b}"))
        })
        .collect();
    Some(RpmPackage {
        name: name?,
        epoch,
        version: version?,
        release: release?,
        arch,
        src,
        python_metadata,
    })
}

/// Build a header blob (for tests).
pub fn build_header(p: &RpmPackage) -> Vec<u8> {
    let mut entries: Vec<(u32, u32, Vec<u8>)> = vec![
        (TAG_NAME, TYPE_STRING, p.name.as_bytes().to_vec()),
        (TAG_VERSION, TYPE_STRING, p.version.as_bytes().to_vec()),
        (TAG_RELEASE, TYPE_STRING, p.release.as_bytes().to_vec()),
    ];
    if let Some(a) = &p.arch {
        entries.push((TAG_ARCH, TYPE_STRING, a.as_bytes().to_vec()));
    }
    let mut index = Vec::new();
    let mut data = Vec::new();
    let mut arrays = 0;
    if !p.python_metadata.is_empty() {
        // File list: directory names (with trailing `/`), base names and
        // each base name's directory index.
        let mut dirs: Vec<String> = Vec::new();
        let mut bases: Vec<String> = Vec::new();
        let mut indexes: Vec<u32> = Vec::new();
        for path in &p.python_metadata {
            let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
            let dir = format!("{dir}/");
            let at = dirs.iter().position(|d| *d == dir).unwrap_or_else(|| {
                dirs.push(dir);
                dirs.len() - 1
            });
            bases.push(base.to_string());
            indexes.push(at as u32);
        }
        index.extend_from_slice(&TAG_DIRINDEXES.to_be_bytes());
        index.extend_from_slice(&TYPE_INT32.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&(indexes.len() as u32).to_be_bytes());
        for i in &indexes {
            data.extend_from_slice(&i.to_be_bytes());
        }
        for (tag, list) in [(TAG_BASENAMES, &bases), (TAG_DIRNAMES, &dirs)] {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&TYPE_STRING_ARRAY.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&(list.len() as u32).to_be_bytes());
            for s in list {
                data.extend_from_slice(s.as_bytes());
                data.push(0);
            }
        }
        arrays = 3;
    }
    if let Some(e) = p.epoch.as_ref().and_then(|e| e.parse::<u32>().ok()) {
        index.extend_from_slice(&TAG_EPOCH.to_be_bytes());
        index.extend_from_slice(&TYPE_INT32.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&e.to_be_bytes());
    }
    for (tag, kind, bytes) in &entries {
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&kind.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(bytes);
        data.push(0);
    }
    let count = entries.len() + usize::from(p.epoch.is_some()) + arrays;
    let mut out = Vec::new();
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend(index);
    out.extend(data);
    out
}

/// Why an `rpmdb.sqlite` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RpmdbError {
    /// SQLite refused it.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// Its schema holds code.
    #[error(transparent)]
    Guard(#[from] crate::kb::untrusted::GuardError),
    /// A query ran out of its step budget.
    #[error("{}", crate::kb::untrusted::exhausted_message())]
    Exhausted,
}

/// Read every package of an `rpmdb.sqlite` file's contents.
///
/// The database is opened in memory from the bytes (no temporary file to
/// leave behind), read-only, and under the step budget of
/// [`crate::kb::untrusted`]: an image is data of unknown origin.
pub fn read_sqlite(bytes: &[u8]) -> Result<Vec<RpmPackage>, RpmdbError> {
    let mut conn = rusqlite::Connection::open_in_memory()?;
    conn.deserialize_read_exact(rusqlite::MAIN_DB, bytes, bytes.len(), true)?;
    let budget = crate::kb::untrusted::guard(&mut conn, "rpmdb.sqlite")?;
    let stopped = |e: rusqlite::Error| {
        if budget.exhausted() {
            RpmdbError::Exhausted
        } else {
            RpmdbError::Sqlite(e)
        }
    };
    let mut stmt = conn
        .prepare("SELECT blob FROM Packages ORDER BY hnum")
        .map_err(stopped)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(stopped)?;
    let mut out = Vec::new();
    for blob in rows {
        if let Some(p) = parse_header(&blob.map_err(stopped)?) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let p = RpmPackage {
            name: "git-core".into(),
            epoch: Some("1".into()),
            version: "2.39.3".into(),
            release: "1.el9_2".into(),
            arch: Some("x86_64".into()),
            src: None,
            python_metadata: vec![
                "/usr/lib/python3.9/site-packages/GitPython-3.1.40.dist-info".into(),
                "/usr/lib/python3.9/site-packages/gitdb-4.0.11.egg-info".into(),
                "/usr/lib64/python3.9/site-packages/x-1.dist-info".into(),
            ],
        };
        assert_eq!(parse_header(&build_header(&p)), Some(p.clone()));
        assert_eq!(p.identifier(), "git-core-2.39.3-1.el9_2.x86_64");
        let blob = build_header(&p);
        for cut in 0..blob.len() {
            let _ = parse_header(&blob[..cut]);
        }
    }
}
