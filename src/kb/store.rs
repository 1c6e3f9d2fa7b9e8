//! The user knowledge base: what thoth-rs has fetched from indexes, kept in
//! one SQLite file under the cache directory (`kb.sqlite`) and written as
//! data arrives.
//!
//! Two kinds of facts, keyed by index URL (never with credentials):
//! project pages (every release and file, with when they were fetched and
//! the server's caching headers, so age can be judged and revalidated), and
//! release metadata (immutable once a release is published, kept forever;
//! including "unavailable, because …" when that is a fact about the
//! release). The file is in WAL mode with a busy timeout, so several
//! thoth-rs processes can read and fill it at once; every write is a short
//! transaction of whole records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::packed;
use super::sqlite::sql_err;
use super::{Dependency, KbError, ProjectRecord};
use crate::python::Version;

/// Recorded with every "unavailable" answer: the metadata readers of this
/// build. Raise it when they learn to read more, so such answers are
/// asked again.
pub const UNAVAILABLE_READER: &str = "readers-2";

/// Schema version of the user knowledge base.
pub const STORE_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    index_url     TEXT NOT NULL,                 -- without credentials, ends in /
    name          TEXT NOT NULL,                 -- normalised project name
    found         INTEGER NOT NULL,              -- 0: the index answered 404
    fetched_at    INTEGER NOT NULL,              -- unix seconds, fetched or revalidated
    max_age       INTEGER,                       -- Cache-Control max-age; NULL: not given
    etag          TEXT,
    last_modified TEXT,
    files         INTEGER NOT NULL DEFAULT 0,    -- files on the page
    data          BLOB,                          -- zstd of the packed page (kb/packed.rs)
    PRIMARY KEY (index_url, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metadata (
    index_url       TEXT NOT NULL,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,               -- PEP 440 normal form
    status          TEXT NOT NULL,               -- 'ok' | 'unavailable'
    source          TEXT,                        -- pep658, wheel-range, sdist-pkg-info, …
    file            TEXT,                        -- the file it was read from
    reason          TEXT,                        -- why unavailable
    requires_python TEXT,
    data            BLOB,                        -- packed dependencies and extras
    fetched_at      INTEGER NOT NULL,
    PRIMARY KEY (index_url, name, version)
) WITHOUT ROWID;
";

/// A stored project page.
#[derive(Debug, Clone)]
pub struct StoredPage {
    /// The index had the project (else it answered 404).
    pub found: bool,
    /// When it was fetched or last revalidated (unix seconds).
    pub fetched_at: i64,
    /// The server's max-age, if it gave one.
    pub max_age: Option<i64>,
    /// Validators for a conditional request.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
    /// Files on the page.
    pub files: i64,
    /// The page (found pages only).
    pub record: Option<ProjectRecord>,
}

impl StoredPage {
    /// Seconds since it was fetched.
    pub fn age(&self, now: i64) -> i64 {
        (now - self.fetched_at).max(0)
    }
}

/// Stored metadata of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMetadata {
    /// Read: dependencies, Requires-Python, Provides-Extra, and how.
    Known {
        /// Requires-Dist.
        dependencies: Vec<Dependency>,
        /// Requires-Python.
        requires_python: Option<String>,
        /// Provides-Extra.
        provides_extras: Vec<String>,
        /// How it was read.
        source: String,
    },
    /// A lasting fact: it cannot be had, and why.
    Unavailable(String),
}

/// The user knowledge base.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Current time in unix seconds.
pub fn now() -> i64 {
    crate::time::Timestamp::now().unix()
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn connect(path: &Path, create: bool) -> Result<Connection, KbError> {
    let e = sql_err(path);
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(&e)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(&e)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&e)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&e)?;
    Ok(conn)
}

impl Store {
    /// Open (creating it if needed) the user knowledge base at `path`.
    pub fn open(path: &Path) -> Result<Self, KbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| KbError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // Several processes may create the file at once; switching it to WAL
        // and creating the tables take locks that SQLite does not always
        // wait for, so the set-up is retried for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut attempt = 0u32;
        let (conn, version) = loop {
            match Self::set_up(path) {
                Ok(done) => break done,
                Err(KbError::Sqlite { source, .. })
                    if is_busy(&source) && std::time::Instant::now() < deadline =>
                {
                    attempt += 1;
                    // A little jitter keeps racing processes apart.
                    let jitter = u64::from(std::process::id() % 7) + u64::from(attempt % 5);
                    std::thread::sleep(std::time::Duration::from_millis(5 + jitter * 3));
                }
                Err(e) => return Err(e),
            }
        };
        match version.as_deref().map(str::parse::<i64>) {
            None | Some(Ok(STORE_VERSION)) => {}
            Some(_) => {
                return Err(KbError::Schema {
                    path: path.display().to_string(),
                    message: format!(
                        "a user knowledge base of another version (this build reads version {STORE_VERSION}); remove it or pass --cache-dir"
                    ),
                });
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn set_up(path: &Path) -> Result<(Connection, Option<String>), KbError> {
        let conn = connect(path, true)?;
        let e = sql_err(path);
        conn.execute_batch(SCHEMA).map_err(&e)?;
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_version', ?1)",
            [STORE_VERSION.to_string()],
        )
        .map_err(&e)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'store_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(&e)?;
        Ok((conn, version))
    }

    /// Another handle on the same file (each thread that writes has its own).
    pub fn reopen(&self) -> Result<Self, KbError> {
        Ok(Self {
            path: self.path.clone(),
            conn: Mutex::new(connect(&self.path, false)?),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stored page of `name` on `index`, every file whole.
    pub fn page(&self, index: &Arc<str>, name: &str) -> Result<Option<StoredPage>, KbError> {
        self.load_page(index, name, None)
    }

    /// The stored page with, when `target` is given, only the files it can
    /// install and no digests or sizes (what a resolution keeps in memory).
    pub fn page_for(
        &self,
        index: &Arc<str>,
        name: &str,
        target: Option<&super::tags::WheelTarget>,
    ) -> Result<Option<StoredPage>, KbError> {
        self.load_page(index, name, target)
    }

    /// Every file of one release of a stored page, whole (`None` when the
    /// page is not stored).
    pub fn release_files(
        &self,
        index: &Arc<str>,
        name: &str,
        version: &Version,
    ) -> Result<Option<Vec<super::Distribution>>, KbError> {
        let conn = self.conn();
        let e = sql_err(&self.path);
        let blob: Option<Option<Vec<u8>>> = conn
            .prepare_cached("SELECT data FROM pages WHERE index_url = ?1 AND name = ?2")
            .map_err(&e)?
            .query_row(params![index.as_ref(), name], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        Ok(blob.flatten().and_then(|b| {
            let raw = zstd::stream::decode_all(b.as_slice()).ok()?;
            packed::decode_release_files(&raw, version)
        }))
    }

    fn load_page(
        &self,
        index: &Arc<str>,
        name: &str,
        target: Option<&super::tags::WheelTarget>,
    ) -> Result<Option<StoredPage>, KbError> {
        let conn = self.conn();
        let e = sql_err(&self.path);
        let mut stmt = conn
            .prepare_cached(
                "SELECT found, fetched_at, max_age, etag, last_modified, files, data \
                 FROM pages WHERE index_url = ?1 AND name = ?2",
            )
            .map_err(&e)?;
        let row = stmt
            .query_row(params![index.as_ref(), name], |r| {
                Ok((
                    r.get::<_, i64>(0)? != 0,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<Vec<u8>>>(6)?,
                ))
            })
            .optional()
            .map_err(&e)?;
        let Some((found, fetched_at, max_age, etag, last_modified, files, data)) = row else {
            return Ok(None);
        };
        let record = match (found, data) {
            (true, Some(blob)) => {
                let decoded = zstd::stream::decode_all(blob.as_slice())
                    .ok()
                    .and_then(|raw| match target {
                        None => packed::decode_page(&raw, name, Some(index.clone())),
                        Some(t) => packed::decode_page_with(
                            &raw,
                            name,
                            Some(index.clone()),
                            &|f: &str| super::tags::is_sdist(f) || t.accepts_filename(f),
                            false,
                        ),
                    });
                match decoded {
                    Some(r) => Some(r),
                    // A damaged row is as good as none: it is fetched again.
                    None => return Ok(None),
                }
            }
            (true, None) => return Ok(None),
            (false, _) => None,
        };
        Ok(Some(StoredPage {
            found,
            fetched_at,
            max_age,
            etag,
            last_modified,
            files,
            record,
        }))
    }

    /// A page as stored: the zstd-compressed packed record and its number
    /// of files.
    pub fn page_blob(record: &ProjectRecord) -> (Vec<u8>, i64) {
        let data =
            zstd::stream::encode_all(packed::encode_page(record).as_slice(), 3).unwrap_or_default();
        let files = record
            .releases
            .iter()
            .map(|x| x.distributions.len() as i64)
            .sum();
        (data, files)
    }

    /// Store a page fetched now (`record` `None`: the index said 404).
    pub fn put_page(
        &self,
        index: &str,
        name: &str,
        record: Option<&ProjectRecord>,
        cache: &crate::index::http::CacheHeaders,
    ) -> Result<(), KbError> {
        let blob = record.map(Self::page_blob);
        self.put_page_blob(
            index,
            name,
            blob.as_ref().map(|(d, f)| (d.as_slice(), *f)),
            cache,
        )
    }

    /// Store a page already made into a blob ([`Self::page_blob`]; `None`:
    /// the index said 404).
    pub fn put_page_blob(
        &self,
        index: &str,
        name: &str,
        blob: Option<(&[u8], i64)>,
        cache: &crate::index::http::CacheHeaders,
    ) -> Result<(), KbError> {
        let found = blob.is_some();
        let (data, files) = match blob {
            Some((d, f)) => (Some(d), f),
            None => (None, 0),
        };
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO pages (index_url, name, found, fetched_at, max_age, etag, last_modified, files, data) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut s| {
            s.execute(params![
                index,
                name,
                i64::from(found),
                now(),
                cache.max_age.map(|a| a.min(i64::MAX as u64) as i64),
                cache.etag,
                cache.last_modified,
                files,
                data
            ])
        })
        .map_err(sql_err(&self.path))?;
        Ok(())
    }

    /// A stored page was revalidated (304): it is fresh again.
    pub fn touch_page(
        &self,
        index: &str,
        name: &str,
        cache: &crate::index::http::CacheHeaders,
    ) -> Result<(), KbError> {
        let conn = self.conn();
        conn.prepare_cached(
            "UPDATE pages SET fetched_at = ?3, max_age = coalesce(?4, max_age), \
             etag = coalesce(?5, etag), last_modified = coalesce(?6, last_modified) \
             WHERE index_url = ?1 AND name = ?2",
        )
        .and_then(|mut s| {
            s.execute(params![
                index,
                name,
                now(),
                cache.max_age.map(|a| a.min(i64::MAX as u64) as i64),
                cache.etag,
                cache.last_modified
            ])
        })
        .map_err(sql_err(&self.path))?;
        Ok(())
    }

    /// The stored metadata of a release.
    pub fn metadata(
        &self,
        index: &str,
        name: &str,
        version: &Version,
    ) -> Result<Option<StoredMetadata>, KbError> {
        let conn = self.conn();
        let e = sql_err(&self.path);
        let mut stmt = conn
            .prepare_cached(
                "SELECT status, source, reason, requires_python, data FROM metadata \
                 WHERE index_url = ?1 AND name = ?2 AND version = ?3",
            )
            .map_err(&e)?;
        let row = stmt
            .query_row(params![index, name, version.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .optional()
            .map_err(&e)?;
        let Some((status, source, reason, requires_python, data)) = row else {
            return Ok(None);
        };
        Ok(match status.as_str() {
            "ok" => data.as_deref().and_then(packed::decode_metadata).map(
                |(dependencies, provides_extras)| StoredMetadata::Known {
                    dependencies,
                    requires_python,
                    provides_extras,
                    source: source.unwrap_or_default(),
                },
            ),
            // An older reader's "unavailable" is asked again: later readers
            // understand more archives.
            _ if source.as_deref() != Some(UNAVAILABLE_READER) => None,
            _ => Some(StoredMetadata::Unavailable(reason.unwrap_or_default())),
        })
    }

    /// Store a release's metadata (or a lasting reason it has none).
    pub fn put_metadata(
        &self,
        index: &str,
        name: &str,
        version: &Version,
        file: Option<&str>,
        metadata: &StoredMetadata,
    ) -> Result<(), KbError> {
        let (status, source, reason, requires_python, data) = match metadata {
            StoredMetadata::Known {
                dependencies,
                requires_python,
                provides_extras,
                source,
            } => (
                "ok",
                Some(source.as_str()),
                None,
                requires_python.as_deref(),
                Some(packed::encode_metadata(dependencies, provides_extras)),
            ),
            StoredMetadata::Unavailable(reason) => (
                "unavailable",
                Some(UNAVAILABLE_READER),
                Some(reason.as_str()),
                None,
                None,
            ),
        };
        let conn = self.conn();
        conn.prepare_cached(
            "INSERT OR REPLACE INTO metadata (index_url, name, version, status, source, file, reason, requires_python, data, fetched_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut s| {
            s.execute(params![
                index,
                name,
                version.to_string(),
                status,
                source,
                file,
                reason,
                requires_python,
                data,
                now()
            ])
        })
        .map_err(sql_err(&self.path))?;
        Ok(())
    }

    /// Run `f` in one transaction (a batch of writes).
    pub fn batch<T>(&self, f: impl FnOnce(&Self) -> Result<T, KbError>) -> Result<T, KbError> {
        let e = sql_err(&self.path);
        self.conn().execute_batch("BEGIN IMMEDIATE").map_err(&e)?;
        match f(self) {
            Ok(v) => {
                self.conn().execute_batch("COMMIT").map_err(&e)?;
                Ok(v)
            }
            Err(err) => {
                let _ = self.conn().execute_batch("ROLLBACK");
                Err(err)
            }
        }
    }

    /// Counts for `snapshot info`-like reports: (pages, metadata records).
    pub fn counts(&self) -> Result<(i64, i64), KbError> {
        let conn = self.conn();
        let e = sql_err(&self.path);
        let pages = conn
            .query_row("SELECT count(*) FROM pages", [], |r| r.get(0))
            .map_err(&e)?;
        let metadata = conn
            .query_row("SELECT count(*) FROM metadata", [], |r| r.get(0))
            .map_err(&e)?;
        Ok((pages, metadata))
    }
}
