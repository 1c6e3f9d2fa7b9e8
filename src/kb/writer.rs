//! Writing snapshots: [`SnapshotWriter`] builds a new one atomically, and
//! the packed project records ([`packed`](super::packed)) are derived from
//! the tables whenever a snapshot is written, its advisories are imported,
//! or an older one is upgraded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::packed;
use super::sqlite::{SqliteKb, load_tables, sql_err};
use super::tags::parse_wheel_filename;
use super::{Dependency, KbError, ProjectRecord, Release, Requires, SCHEMA_VERSION, SnapshotMeta};

const SCHEMA: &str = include_str!("schema.sql");

/// (Re)build the packed record of every available project from the tables
/// (see [`packed`]); run inside the writer's transaction before it commits.
pub fn pack_projects(conn: &Connection, path: &Path) -> Result<usize, KbError> {
    let e = sql_err(path);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS project_records (project_id INTEGER PRIMARY KEY REFERENCES projects(id), data BLOB NOT NULL); \
         DELETE FROM project_records;",
    )
    .map_err(&e)?;
    let projects: Vec<(i64, String, String)> = {
        let mut stmt = conn
            .prepare("SELECT id, name, display_name FROM projects WHERE status = 'ok' ORDER BY id")
            .map_err(&e)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(&e)?;
        rows.collect::<Result<_, _>>().map_err(&e)?
    };
    let mut insert = conn
        .prepare("INSERT INTO project_records (project_id, data) VALUES (?1, ?2)")
        .map_err(&e)?;
    for (id, name, display_name) in &projects {
        let (ids, record) = load_tables(conn, path, *id, name, display_name.clone())?;
        insert
            .execute(params![id, packed::encode(&ids, &record)])
            .map_err(&e)?;
    }
    Ok(projects.len())
}

/// `releases.metadata_note` of a release whose metadata was not fetched.
pub const NOT_FETCHED: &str = "not-fetched";

/// Does the snapshot's `releases` table have the `metadata_note` column
/// (schema 3)?
pub fn has_metadata_note(conn: &Connection) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT count(*) FROM pragma_table_info('releases') WHERE name = 'metadata_note'",
    )?
    .query_row([], |r| r.get::<_, i64>(0))
    .map(|n| n > 0)
}

/// Rewrite the snapshot at `path` with this build's schema, indexes and
/// packed records (a copy is updated and renamed over it). Returns the
/// number of packed projects.
pub fn upgrade(path: &Path) -> Result<usize, KbError> {
    // Refuses files that are not snapshots of a readable schema.
    drop(SqliteKb::open(path)?);
    let ((), packed) = rewrite(path, "upgrade", |conn| {
        let e = sql_err(path);
        conn.execute_batch(
            "DROP INDEX IF EXISTS distributions_files; \
             CREATE INDEX IF NOT EXISTS distributions_release ON distributions(release_id);",
        )
        .map_err(&e)?;
        if !has_metadata_note(conn).map_err(&e)? {
            conn.execute_batch("ALTER TABLE releases ADD COLUMN metadata_note TEXT;")
                .map_err(&e)?;
        }
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )
        .map_err(&e)?;
        Ok(())
    })?;
    Ok(packed)
}

/// Change the snapshot at `path` atomically: `edit` runs on a copy inside
/// one transaction, the packed records are rebuilt from the edited tables,
/// the copy is compacted and renamed over the original. On any failure the
/// copy is removed and the original is left as it was. Returns what `edit`
/// returned and the number of packed projects.
pub fn rewrite<T>(
    path: &Path,
    label: &str,
    edit: impl FnOnce(&Connection) -> Result<T, KbError>,
) -> Result<(T, usize), KbError> {
    if let Some(stem) = path.file_stem() {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        crate::write::sweep_stale(
            dir.unwrap_or(Path::new(".")),
            Some(&format!("{}.", stem.to_string_lossy())),
        );
    }
    let tmp = path.with_extension(format!("{label}-{}.partial", std::process::id()));
    let io = |source: std::io::Error| KbError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::copy(path, &tmp).map_err(io)?;
    let result = (|| {
        let e = sql_err(path);
        let conn = Connection::open(&tmp).map_err(&e)?;
        conn.execute_batch("BEGIN").map_err(&e)?;
        let out = edit(&conn)?;
        let packed = pack_projects(&conn, path)?;
        conn.execute_batch("COMMIT; VACUUM;").map_err(&e)?;
        conn.close().map_err(|(_, err)| e(err))?;
        Ok((out, packed))
    })();
    match result {
        Ok(out) => {
            std::fs::rename(&tmp, path).map_err(io)?;
            Ok(out)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&tmp);
            Err(err)
        }
    }
}

/// Builds a snapshot in a temporary file next to the target and renames it
/// into place on [`SnapshotWriter::finish`]; dropping it unfinished removes
/// the temporary file and leaves any existing snapshot untouched.
pub struct SnapshotWriter {
    conn: Option<Connection>,
    tmp: PathBuf,
    target: PathBuf,
    sets: HashMap<Vec<u8>, i64>,
}

impl SnapshotWriter {
    /// Start a new snapshot that will replace `target`.
    pub fn create(target: &Path) -> Result<Self, KbError> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "snapshot".into());
        crate::write::sweep_stale(dir, Some(&format!(".{name}.")));
        let tmp = dir.join(format!(".{name}.{}.partial", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let conn = Connection::open(&tmp).map_err(sql_err(&tmp))?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA page_size = 4096;",
        )
        .map_err(sql_err(&tmp))?;
        conn.execute_batch(SCHEMA).map_err(sql_err(&tmp))?;
        // Rows may arrive in any order; integrity is checked once at the end.
        conn.execute_batch("PRAGMA foreign_keys = OFF;")
            .map_err(sql_err(&tmp))?;
        conn.execute_batch("BEGIN").map_err(sql_err(&tmp))?;
        Ok(Self {
            conn: Some(conn),
            tmp,
            target: target.to_path_buf(),
            sets: HashMap::new(),
        })
    }

    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("writer used after finish")
    }

    /// Write the `meta` table.
    pub fn set_meta(&mut self, meta: &SnapshotMeta) -> Result<(), KbError> {
        let e = sql_err(&self.tmp);
        let mut rows: Vec<(&str, String)> = vec![
            ("schema_version", SCHEMA_VERSION.to_string()),
            (
                "roots",
                serde_json::to_string(&meta.roots).unwrap_or_else(|_| "[]".into()),
            ),
        ];
        if !meta.index_aliases.is_empty() {
            rows.push((
                "index_aliases",
                serde_json::to_string(&meta.index_aliases).unwrap_or_else(|_| "[]".into()),
            ));
        }
        for (key, value) in [
            ("created_at", &meta.created_at),
            ("index_url", &meta.index_url),
            ("cutoff", &meta.cutoff),
            ("advisories_source", &meta.advisories_source),
        ] {
            if let Some(v) = value {
                rows.push((key, v.clone()));
            }
        }
        if let Some(k) = meta.max_versions {
            rows.push(("max_versions", k.to_string()));
        }
        for (k, v) in rows {
            self.conn()
                .execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )
                .map_err(&e)?;
        }
        Ok(())
    }

    /// Copy the advisories (with their range events) on `projects` from the
    /// snapshot at `base`; returns how many were copied. The releases'
    /// `affected` rows come with the projects ([`Self::add_project`]).
    pub fn copy_advisories(&mut self, base: &Path, projects: &[String]) -> Result<usize, KbError> {
        let e = sql_err(&self.tmp);
        let conn = self.conn();
        // Databases are attached and detached outside a transaction.
        conn.execute_batch("COMMIT").map_err(&e)?;
        conn.execute("ATTACH DATABASE ?1 AS base", [base.to_string_lossy()])
            .map_err(&e)?;
        let copied = (|| -> rusqlite::Result<usize> {
            conn.execute_batch("CREATE TEMP TABLE wanted (name TEXT PRIMARY KEY)")?;
            for p in projects {
                conn.execute("INSERT OR IGNORE INTO temp.wanted (name) VALUES (?1)", [p])?;
            }
            let n = conn.execute(
                "INSERT OR REPLACE INTO main.advisories SELECT * FROM base.advisories \
                 WHERE project IN (SELECT name FROM temp.wanted)",
                [],
            )?;
            conn.execute(
                "INSERT OR REPLACE INTO main.advisory_events SELECT e.* FROM base.advisory_events e \
                 JOIN base.advisories a ON a.id = e.advisory_id \
                 WHERE a.project IN (SELECT name FROM temp.wanted)",
                [],
            )?;
            conn.execute_batch("DROP TABLE temp.wanted")?;
            Ok(n)
        })();
        conn.execute_batch("DETACH DATABASE base; BEGIN")
            .map_err(&e)?;
        copied.map_err(&e)
    }

    /// Record a project that has no usable releases.
    pub fn add_unavailable(&mut self, name: &str, reason: &str) -> Result<(), KbError> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO projects (name, display_name, status, status_reason) VALUES (?1, ?1, 'unavailable', ?2)",
                params![name, reason],
            )
            .map_err(sql_err(&self.tmp))?;
        Ok(())
    }

    fn dependency_set(&mut self, deps: &[Dependency]) -> Result<i64, KbError> {
        let mut hasher = Sha256::new();
        for d in deps {
            for field in [
                &d.name,
                &d.extras.join(","),
                &d.specifier,
                d.marker.as_deref().unwrap_or("\u{1}"),
                d.extra.as_deref().unwrap_or("\u{1}"),
            ] {
                hasher.update(field.as_bytes());
                hasher.update([0]);
            }
            hasher.update([1]);
        }
        let digest = hasher.finalize().to_vec();
        if let Some(id) = self.sets.get(&digest) {
            return Ok(*id);
        }
        let e = sql_err(&self.tmp);
        let conn = self.conn.as_ref().expect("writer used after finish");
        conn.execute(
            "INSERT INTO dependency_sets (digest) VALUES (?1)",
            params![digest],
        )
        .map_err(&e)?;
        let id = conn.last_insert_rowid();
        let mut stmt = conn
            .prepare_cached("INSERT INTO dependencies (set_id, position, name, extras, specifier, marker, extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .map_err(&e)?;
        for (i, d) in deps.iter().enumerate() {
            stmt.execute(params![
                id,
                i as i64,
                d.name,
                d.extras.join(","),
                d.specifier,
                d.marker,
                d.extra
            ])
            .map_err(&e)?;
        }
        self.sets.insert(digest, id);
        Ok(id)
    }

    /// Add a project with its releases (any order; ranks are computed).
    pub fn add_project(&mut self, record: &ProjectRecord) -> Result<(), KbError> {
        let tmp = self.tmp.clone();
        let e = sql_err(&tmp);
        self.conn()
            .execute(
                "INSERT INTO projects (name, display_name) VALUES (?1, ?2)",
                params![record.name, record.display_name],
            )
            .map_err(&e)?;
        let project_id = self.conn().last_insert_rowid();
        let mut order: Vec<&Release> = record.releases.iter().collect();
        order.sort_by(|a, b| b.version.cmp(&a.version));
        for (rank, release) in order.into_iter().enumerate() {
            let (set, note) = match &release.dependencies {
                Requires::Known(deps) => (Some(self.dependency_set(deps)?), None),
                Requires::Unavailable(why) => (None, Some(why.to_string())),
                Requires::NotFetched => (None, Some(NOT_FETCHED.to_string())),
            };
            let conn = self.conn.as_ref().expect("writer used after finish");
            conn.execute(
                "INSERT INTO releases (project_id, version, version_rank, upload_time, yanked, yanked_reason, requires_python, dependency_set_id, metadata_note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![project_id, release.version.to_string(), rank as i64, release.upload_time, release.yanked as i64, release.yanked_reason, release.requires_python, set, note],
            )
            .map_err(&e)?;
            let release_id = conn.last_insert_rowid();
            for extra in &release.provides_extras {
                conn.execute(
                    "INSERT OR IGNORE INTO provides_extras (release_id, name) VALUES (?1, ?2)",
                    params![release_id, extra],
                )
                .map_err(&e)?;
            }
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO distributions (release_id, filename, packagetype, python_tag, abi_tag, platform_tag, sha256, size, upload_time, requires_python, yanked, url) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(&e)?;
            for d in &release.distributions {
                let tags = parse_wheel_filename(&d.filename);
                let sha = d.sha256.as_deref().and_then(|h| hex::decode(h).ok());
                stmt.execute(params![
                    release_id,
                    d.filename,
                    if tags.is_some() { "wheel" } else { "sdist" },
                    tags.as_ref().map(|t| t.python.join(".")),
                    tags.as_ref().map(|t| t.abi.join(".")),
                    tags.as_ref().map(|t| t.platform.join(".")),
                    sha,
                    d.size,
                    d.upload_time,
                    d.requires_python,
                    d.yanked as i64,
                    d.url
                ])
                .map_err(&e)?;
            }
            for advisory in &release.advisories {
                conn.execute(
                    "INSERT OR IGNORE INTO affected (release_id, advisory_id) VALUES (?1, ?2)",
                    params![release_id, advisory],
                )
                .map_err(&e)?;
            }
        }
        Ok(())
    }

    /// Commit, compact, check and move the snapshot into place. On any
    /// failure the temporary file is removed and the target left as it was.
    pub fn finish(mut self) -> Result<PathBuf, KbError> {
        let conn = self.conn.take().expect("finish called twice");
        let out = self.complete(conn);
        if out.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        out
    }

    fn complete(&self, conn: Connection) -> Result<PathBuf, KbError> {
        let e = sql_err(&self.tmp);
        let violations: Vec<String> = {
            let mut stmt = conn.prepare("PRAGMA foreign_key_check").map_err(&e)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(format!(
                        "{} row {} -> {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })
                .map_err(&e)?;
            rows.collect::<Result<_, _>>().map_err(&e)?
        };
        if !violations.is_empty() {
            return Err(KbError::Schema {
                path: self.target.display().to_string(),
                message: format!("inconsistent snapshot: {}", violations.join("; ")),
            });
        }
        pack_projects(&conn, &self.tmp)?;
        conn.execute_batch("COMMIT; VACUUM;").map_err(&e)?;
        conn.close().map_err(|(_, err)| e(err))?;
        // Only a snapshot that opens and passes the integrity check replaces
        // what was there.
        super::sqlite::SqliteKb::open(&self.tmp).and_then(|kb| kb.check())?;
        std::fs::rename(&self.tmp, &self.target).map_err(|source| KbError::Io {
            path: self.target.display().to_string(),
            source,
        })?;
        Ok(self.target.clone())
    }

    /// The temporary path being written (for advisory import).
    pub fn connection(&self) -> &Connection {
        self.conn()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
