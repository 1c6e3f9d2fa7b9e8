//! The SQLite snapshot, read: a read-only [`KnowledgeBase`]. Snapshots are
//! written by [`super::writer`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::packed;

mod tables;
use super::{
    Advisory, Distribution, KbError, KnowledgeBase, Lookup, OLDEST_SCHEMA_VERSION, ProjectRecord,
    Requires, SCHEMA_VERSION, SnapshotMeta,
};
use crate::python::{Version, parse_version};
pub(crate) use tables::load_tables;

/// Why a stored release without dependency metadata has none.
pub const UNREADABLE: &str = "its metadata could not be read when the snapshot was built";

pub(super) fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> KbError + '_ {
    move |source| {
        // Only a step budget interrupts a query ([`super::untrusted`]).
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return KbError::Schema {
                path: path.display().to_string(),
                message: super::untrusted::exhausted_message(),
            };
        }
        KbError::Sqlite {
            path: path.display().to_string(),
            source,
        }
    }
}

/// An advisory as a rule over versions ([`SqliteKb::advisory_rules`]).
#[derive(Debug, Clone)]
pub struct AdvisoryRule {
    /// Advisory id.
    pub id: String,
    /// Affected intervals from its ranges.
    pub intervals: Vec<super::osv::Interval>,
    /// Versions the snapshot mapped it onto.
    pub versions: Vec<Version>,
}

impl AdvisoryRule {
    /// Does it affect `v`?
    pub fn affects(&self, v: &Version) -> bool {
        self.versions.contains(v) || self.intervals.iter().any(|i| i.contains(v))
    }
}

/// A snapshot opened for reading.
pub struct SqliteKb {
    path: PathBuf,
    conn: Mutex<Connection>,
    meta: SnapshotMeta,
    cache: Mutex<HashMap<String, Lookup>>,
    /// Row ids of each loaded project's releases, in `releases` order.
    release_ids: Mutex<HashMap<String, Vec<i64>>>,
    /// Full file rows by release row id ([`KnowledgeBase::files`]).
    files: Mutex<HashMap<i64, Vec<Distribution>>>,
    advisories: Mutex<Option<HashMap<String, Advisory>>>,
    /// The snapshot has packed project records ([`packed`]).
    packed: bool,
    /// Steps the current operation may still take ([`super::untrusted`]).
    budget: super::untrusted::StepBudget,
}

impl std::fmt::Debug for SqliteKb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Read the `meta` table.
pub fn read_meta(conn: &Connection, path: &Path) -> Result<SnapshotMeta, KbError> {
    let mut stmt = conn
        .prepare("SELECT key, value FROM meta")
        .map_err(sql_err(path))?;
    let rows: HashMap<String, String> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err(path))?
        .collect::<Result<_, _>>()
        .map_err(sql_err(path))?;
    let schema_version = rows
        .get("schema_version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(SnapshotMeta {
        schema_version,
        created_at: rows.get("created_at").cloned(),
        index_url: rows.get("index_url").cloned(),
        roots: rows
            .get("roots")
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
        cutoff: rows.get("cutoff").cloned(),
        max_versions: rows.get("max_versions").and_then(|v| v.parse().ok()),
        advisories_source: rows.get("advisories_source").cloned(),
        index_aliases: rows
            .get("index_aliases")
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default(),
    })
}

/// An SQLite URI opening `path` as immutable (`%`, `?` and `#` escaped).
fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    uri
}

impl SqliteKb {
    /// Open a snapshot read-only and check its schema version.
    ///
    /// The file must not be modified in place while open (thoth-rs never
    /// does: writers rename a complete new file over the old one).
    pub fn open(path: &Path) -> Result<Self, KbError> {
        if !path.is_file() {
            return Err(KbError::Schema {
                path: path.display().to_string(),
                message: "no such file".into(),
            });
        }
        // Snapshots are only ever replaced by renaming a new file over them,
        // so the file an open connection reads never changes: `immutable`
        // spares SQLite its per-query locking and journal checks, and reads
        // go through SQLite's page cache.
        let mut conn = Connection::open_with_flags(
            immutable_uri(path),
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(sql_err(path))?;
        // No memory map: with a large bundle, mapped pages count towards the
        // process's resident memory (tens of MiB for a big project) and
        // bought no measurable speed (flask-app and data-science examples,
        // open-webui live: same times either way).
        conn.pragma_update(None, "mmap_size", 0i64)
            .map_err(sql_err(path))?;
        // A snapshot may come from anywhere (`--snapshot`): tables and
        // indexes only, and a step budget on every operation.
        let budget =
            super::untrusted::guard(&mut conn, "the file").map_err(|message| KbError::Schema {
                path: path.display().to_string(),
                message: format!("not a thoth-rs snapshot: {message}"),
            })?;
        let has_meta: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| KbError::Schema {
                path: path.display().to_string(),
                message: format!("not a thoth-rs snapshot ({e})"),
            })?;
        if !has_meta {
            return Err(KbError::Schema {
                path: path.display().to_string(),
                message: "not a thoth-rs snapshot (no meta table)".into(),
            });
        }
        let meta = read_meta(&conn, path)?;
        let packed = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'project_records'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sql_err(path))?
            > 0;
        if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&meta.schema_version) {
            return Err(KbError::Schema {
                path: path.display().to_string(),
                message: format!(
                    "schema version {} is not supported (this build reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})",
                    meta.schema_version
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            meta,
            cache: Mutex::new(HashMap::new()),
            release_ids: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            advisories: Mutex::new(None),
            packed,
            budget,
        })
    }

    /// The connection, for one operation: its step budget starts full.
    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.budget.reset();
        conn
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A cheap check that the file is readable throughout its structure
    /// (SQLite's `quick_check` on the tables a resolution reads).
    pub fn check(&self) -> Result<(), KbError> {
        let conn = self.connection();
        let verdict: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(sql_err(&self.path))?;
        if verdict == "ok" {
            Ok(())
        } else {
            Err(KbError::Schema {
                path: self.path.display().to_string(),
                message: format!("damaged: {verdict}"),
            })
        }
    }

    /// The newest `modified` time of the snapshot's advisories: how fresh
    /// its advisory data is.
    pub fn advisories_newest(&self) -> Option<String> {
        self.connection()
            .query_row("SELECT max(modified) FROM advisories", [], |r| {
                r.get::<_, Option<String>>(0)
            })
            .ok()
            .flatten()
    }

    /// Run a closure with the connection (for `snapshot info`).
    pub fn with_connection<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, KbError> {
        let conn = self.connection();
        f(&conn).map_err(sql_err(&self.path))
    }

    /// The advisories on `project` as rules that apply to any version, so
    /// releases the snapshot does not hold (read from an index) are mapped
    /// too: each advisory's range intervals, plus the versions the snapshot
    /// itself mapped it onto. Withdrawn advisories are left out.
    pub fn advisory_rules(&self, project: &str) -> Result<Vec<AdvisoryRule>, KbError> {
        let conn = self.connection();
        let e = sql_err(&self.path);
        let mut events: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<i64, Vec<super::osv::Event>>,
        > = std::collections::BTreeMap::new();
        let mut stmt = conn
            .prepare_cached(
                "SELECT e.advisory_id, e.range_no, e.kind, e.version FROM advisory_events e \
                 JOIN advisories a ON a.id = e.advisory_id \
                 WHERE a.project = ?1 AND a.withdrawn IS NULL",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([project], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, range, kind, version) = row.map_err(&e)?;
            let parsed = parse_version(&version).ok();
            let event = match (kind.as_str(), parsed) {
                ("introduced", _) if version.trim() == "0" => super::osv::Event::Introduced(None),
                ("introduced", Some(v)) => super::osv::Event::Introduced(Some(v)),
                ("fixed", Some(v)) => super::osv::Event::Fixed(v),
                ("last_affected", Some(v)) => super::osv::Event::LastAffected(v),
                ("limit", Some(v)) => super::osv::Event::Limit(v),
                _ => continue,
            };
            events
                .entry(id)
                .or_default()
                .entry(range)
                .or_default()
                .push(event);
        }
        let mut mapped: HashMap<String, Vec<Version>> = HashMap::new();
        let mut stmt = conn
            .prepare_cached(
                "SELECT f.advisory_id, r.version FROM affected f \
                 JOIN releases r ON r.id = f.release_id \
                 JOIN projects p ON p.id = r.project_id \
                 JOIN advisories a ON a.id = f.advisory_id \
                 WHERE p.name = ?1 AND a.withdrawn IS NULL",
            )
            .map_err(&e)?;
        let rows = stmt
            .query_map([project], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, version) = row.map_err(&e)?;
            if let Ok(v) = parse_version(&version) {
                mapped.entry(id).or_default().push(v);
            }
        }
        let mut ids: Vec<String> = events.keys().chain(mapped.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        Ok(ids
            .into_iter()
            .map(|id| AdvisoryRule {
                intervals: events
                    .get(&id)
                    .map(|ranges| {
                        ranges
                            .values()
                            .flat_map(|evs| super::osv::intervals(evs))
                            .collect()
                    })
                    .unwrap_or_default(),
                versions: mapped.remove(&id).unwrap_or_default(),
                id,
            })
            .collect())
    }

    fn load(&self, name: &str) -> Result<Lookup, KbError> {
        let conn = self.connection();
        let e = sql_err(&self.path);
        type Row = (
            i64,
            String,
            String,
            Option<String>,
            Option<(Vec<i64>, ProjectRecord)>,
        );
        // With packed records the project row and its blob come in one
        // query and the blob is decoded in place, without a copy.
        let sql = if self.packed {
            "SELECT p.id, p.display_name, p.status, p.status_reason, r.data FROM projects p \
             LEFT JOIN project_records r ON r.project_id = p.id WHERE p.name = ?1"
        } else {
            "SELECT id, display_name, status, status_reason, NULL FROM projects WHERE name = ?1"
        };
        let row: Option<Row> = conn
            .prepare_cached(sql)
            .map_err(&e)?
            .query_row([name], |r| {
                let display_name: String = r.get(1)?;
                let packed = match r.get_ref(4)? {
                    rusqlite::types::ValueRef::Blob(data) => {
                        let found = packed::decode(data, name, display_name.clone());
                        if found.is_none() {
                            tracing::warn!(
                                "snapshot {}: packed record of {name} unreadable; reading the tables",
                                self.path.display()
                            );
                        }
                        found
                    }
                    _ => None,
                };
                Ok((r.get(0)?, display_name, r.get(2)?, r.get(3)?, packed))
            })
            .optional()
            .map_err(&e)?;
        let Some((project_id, display_name, status, reason, packed)) = row else {
            return Ok(Lookup::Missing);
        };
        if status != "ok" {
            return Ok(Lookup::Unavailable(reason.unwrap_or(status)));
        }
        let (ids, record) = match packed {
            Some(found) => found,
            None => load_tables(&conn, &self.path, project_id, name, display_name)?,
        };
        self.release_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), ids);
        Ok(Lookup::Found(Arc::new(record)))
    }

    fn load_advisories(&self) -> Result<HashMap<String, Advisory>, KbError> {
        let conn = self.connection();
        let e = sql_err(&self.path);
        let mut fixed: HashMap<String, Vec<Version>> = HashMap::new();
        let mut stmt = conn
            .prepare("SELECT advisory_id, version FROM advisory_events WHERE kind = 'fixed'")
            .map_err(&e)?;
        for row in stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(&e)?
        {
            let (id, v) = row.map_err(&e)?;
            if let Ok(v) = parse_version(&v) {
                fixed.entry(id).or_default().push(v);
            }
        }
        let mut stmt = conn
            .prepare(
                "SELECT id, project, aliases, summary, published, withdrawn, link FROM advisories",
            )
            .map_err(&e)?;
        let mut out = HashMap::new();
        for row in stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(&e)?
        {
            let (id, project, aliases, summary, published, withdrawn, link) = row.map_err(&e)?;
            let mut fixes = fixed.remove(&id).unwrap_or_default();
            fixes.sort();
            out.insert(
                id.clone(),
                Advisory {
                    id,
                    project,
                    aliases: aliases
                        .split(',')
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect(),
                    summary,
                    published,
                    withdrawn,
                    link,
                    fixed_in: fixes.iter().map(ToString::to_string).collect(),
                },
            );
        }
        Ok(out)
    }
}

/// What a snapshot knows of one project's release metadata: for each
/// release with metadata, the metadata and the sha256 digests of its files.
pub type KnownMetadata = std::collections::HashMap<
    Version,
    (
        Arc<super::ReleaseMetadata>,
        std::collections::BTreeSet<String>,
    ),
>;

impl SqliteKb {
    /// The metadata this snapshot holds for `name`'s releases, with their
    /// files' digests — read without keeping the whole project record in
    /// memory (a layered knowledge base asks this of a large bundle for
    /// every project it fetches).
    pub fn known_metadata(&self, name: &str) -> Result<KnownMetadata, KbError> {
        let Lookup::Found(record) = self.load(name)? else {
            return Ok(KnownMetadata::new());
        };
        let ids = self
            .release_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .unwrap_or_default();
        let mut digests: HashMap<i64, std::collections::BTreeSet<String>> = HashMap::new();
        {
            let conn = self.connection();
            let e = sql_err(&self.path);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT d.release_id, d.sha256 FROM distributions d \
                     JOIN releases r ON r.id = d.release_id JOIN projects p ON p.id = r.project_id \
                     WHERE p.name = ?1 AND r.dependency_set_id IS NOT NULL AND d.sha256 IS NOT NULL",
                )
                .map_err(&e)?;
            let rows = stmt
                .query_map([name], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(&e)?;
            for row in rows {
                let (release, sha) = row.map_err(&e)?;
                digests.entry(release).or_default().insert(hex::encode(sha));
            }
        }
        let mut out = KnownMetadata::new();
        for (i, release) in record.releases.iter().enumerate() {
            let Requires::Known(deps) = &release.dependencies else {
                continue;
            };
            let files = ids
                .get(i)
                .and_then(|id| digests.remove(id))
                .unwrap_or_default();
            out.insert(
                release.version.clone(),
                (
                    Arc::new(super::ReleaseMetadata {
                        dependencies: deps.clone(),
                        requires_python: release.requires_python.clone(),
                        provides_extras: release.provides_extras.clone(),
                    }),
                    files,
                ),
            );
        }
        Ok(out)
    }
}

impl KnowledgeBase for SqliteKb {
    fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    fn project(&self, name: &str) -> Result<Lookup, KbError> {
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
        {
            return Ok(hit.clone());
        }
        let loaded = self.load(name)?;
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_string(), loaded.clone());
        Ok(loaded)
    }

    fn files(&self, name: &str, version: &Version) -> Result<Vec<Distribution>, KbError> {
        let Some((_, i)) = self.release(name, version)? else {
            return Ok(Vec::new());
        };
        let Some(release) = self
            .release_ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .and_then(|ids| ids.get(i).copied())
        else {
            return Ok(Vec::new());
        };
        if let Some(hit) = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&release)
        {
            return Ok(hit.clone());
        }
        let conn = self.connection();
        let e = sql_err(&self.path);
        // Version 1 snapshots have no url column.
        let sql = if self.meta.schema_version >= 2 {
            "SELECT filename, sha256, size, upload_time, requires_python, yanked, url, id \
             FROM distributions WHERE release_id = ?1"
        } else {
            "SELECT filename, sha256, size, upload_time, requires_python, yanked, NULL, id \
             FROM distributions WHERE release_id = ?1"
        };
        let mut stmt = conn.prepare_cached(sql).map_err(&e)?;
        let rows = stmt
            .query_map([release], |r| {
                let sha: Option<Vec<u8>> = r.get(1)?;
                Ok((
                    r.get::<_, i64>(7)?,
                    Distribution {
                        filename: r.get(0)?,
                        sha256: sha.map(hex::encode),
                        size: r.get(2)?,
                        upload_time: r.get(3)?,
                        requires_python: r.get(4)?,
                        yanked: r.get::<_, i64>(5)? != 0,
                        url: r.get(6)?,
                    },
                ))
            })
            .map_err(&e)?;
        // Row order, sorted here: with `ORDER BY` in the statement SQLite
        // prepares it again at every run.
        let mut rows: Vec<(i64, Distribution)> = rows.collect::<Result<_, _>>().map_err(e)?;
        rows.sort_by_key(|r| r.0);
        let files: Vec<Distribution> = rows.into_iter().map(|r| r.1).collect();
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(release, files.clone());
        Ok(files)
    }

    fn advisory(&self, id: &str) -> Result<Option<Advisory>, KbError> {
        let mut guard = self
            .advisories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(self.load_advisories()?);
        }
        Ok(guard.as_ref().and_then(|m| m.get(id).cloned()))
    }
}
