//! Reading a project from the normalised tables (snapshots without packed
//! records, or a packed record that fails its checksum).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;

use super::{UNREADABLE, sql_err};
use crate::kb::{Dependency, Distribution, KbError, ProjectRecord, Release, Requires};
use crate::python::parse_version;

/// Load one project from the normalised tables: release row ids (in
/// `releases` order) and the record. Used for snapshots without packed
/// records and to build them.
pub(crate) fn load_tables(
    conn: &Connection,
    path: &Path,
    project_id: i64,
    name: &str,
    display_name: String,
) -> Result<(Vec<i64>, ProjectRecord), KbError> {
    let e = sql_err(path);
    let sets = dependency_sets(conn, path, project_id)?;

    let mut dists = distributions(conn, path, project_id)?;
    let mut files_of = |release: i64| -> Vec<Distribution> {
        let mut files = dists.remove(&release).unwrap_or_default();
        files.sort_unstable_by_key(|f| f.0);
        files.into_iter().map(|f| f.1).collect()
    };

    let mut extras = per_release(
        conn,
        path,
        project_id,
        "SELECT release_id, name FROM provides_extras WHERE release_id IN (SELECT id FROM releases WHERE project_id = ?1) ORDER BY release_id, name",
    )?;
    let mut affected = per_release(
        conn,
        path,
        project_id,
        "SELECT release_id, advisory_id FROM affected WHERE release_id IN (SELECT id FROM releases WHERE project_id = ?1) ORDER BY release_id, advisory_id",
    )?;

    let mut releases = Vec::new();
    {
        // Schema 3 says why a release has no metadata; older ones do not.
        let sql = if crate::kb::writer::has_metadata_note(conn).map_err(&e)? {
            "SELECT id, version, upload_time, yanked, yanked_reason, requires_python, dependency_set_id, metadata_note \
             FROM releases WHERE project_id = ?1"
        } else {
            "SELECT id, version, upload_time, yanked, yanked_reason, requires_python, dependency_set_id, NULL \
             FROM releases WHERE project_id = ?1"
        };
        let mut stmt = conn.prepare_cached(sql).map_err(&e)?;
        let rows = stmt
            .query_map([project_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (id, version, upload_time, yanked, yanked_reason, requires_python, set, note) =
                row.map_err(&e)?;
            let version = parse_version(&version).map_err(|err| KbError::Schema {
                path: path.display().to_string(),
                message: format!("project {name}: {}", err.message),
            })?;
            releases.push((
                id,
                Release {
                    version,
                    upload_time,
                    yanked: yanked != 0,
                    yanked_reason,
                    requires_python,
                    distributions: files_of(id),
                    dependencies: match (set, note.as_deref()) {
                        (Some(s), _) => Requires::Known(sets.get(&s).cloned().unwrap_or_default()),
                        (None, Some(crate::kb::writer::NOT_FETCHED)) => Requires::NotFetched,
                        (None, Some(why)) => Requires::Unavailable(Arc::from(why)),
                        (None, None) => Requires::Unavailable(Arc::from(UNREADABLE)),
                    },
                    provides_extras: extras.remove(&id).unwrap_or_default(),
                    advisories: affected.remove(&id).unwrap_or_default(),
                },
            ));
        }
    }
    releases.sort_by(|a, b| b.1.version.cmp(&a.1.version));
    let (ids, releases): (Vec<i64>, Vec<Release>) = releases.into_iter().unzip();
    Ok((
        ids,
        ProjectRecord {
            name: name.to_string(),
            display_name,
            releases,
            index: None,
        },
    ))
}

/// The project's dependency sets by id.
fn dependency_sets(
    conn: &Connection,
    path: &Path,
    project_id: i64,
) -> Result<HashMap<i64, Arc<Vec<Dependency>>>, KbError> {
    let e = sql_err(path);
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.set_id, d.name, d.extras, d.specifier, d.marker, d.extra FROM dependencies d \
         WHERE d.set_id IN (SELECT dependency_set_id FROM releases WHERE project_id = ?1) \
         ORDER BY d.set_id, d.position",
        )
        .map_err(&e)?;
    let mut grouped: HashMap<i64, Vec<Dependency>> = HashMap::new();
    let rows = stmt
        .query_map([project_id], |r| {
            let extras: String = r.get(2)?;
            Ok((
                r.get::<_, i64>(0)?,
                Dependency {
                    name: r.get(1)?,
                    extras: if extras.is_empty() {
                        Vec::new()
                    } else {
                        extras.split(',').map(str::to_string).collect()
                    },
                    specifier: r.get(3)?,
                    marker: r.get(4)?,
                    extra: r.get(5)?,
                },
            ))
        })
        .map_err(&e)?;
    for row in rows {
        let (set, dep) = row.map_err(&e)?;
        grouped.entry(set).or_default().push(dep);
    }
    Ok(grouped
        .into_iter()
        .map(|(set, deps)| (set, Arc::new(deps)))
        .collect())
}

/// The project's distributions by release id, each with its row id.
/// Only what resolution needs; digests, sizes and URLs come with
/// [`SqliteKb::files`](super::SqliteKb::files).
fn distributions(
    conn: &Connection,
    path: &Path,
    project_id: i64,
) -> Result<HashMap<i64, Vec<(i64, Distribution)>>, KbError> {
    let e = sql_err(path);
    let mut dists: HashMap<i64, Vec<(i64, Distribution)>> = HashMap::new();
    // Sorted by row id here rather than with `ORDER BY`, which would
    // make SQLite sort through a temporary b-tree.
    let mut stmt = conn
        .prepare_cached(
            "SELECT release_id, filename, upload_time, requires_python, yanked, id FROM distributions \
             WHERE release_id IN (SELECT id FROM releases WHERE project_id = ?1)",
        )
        .map_err(&e)?;
    let rows = stmt
        .query_map([project_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(5)?,
                Distribution {
                    filename: r.get(1)?,
                    sha256: None,
                    size: None,
                    upload_time: r.get(2)?,
                    requires_python: r.get(3)?,
                    yanked: r.get::<_, i64>(4)? != 0,
                    url: None,
                },
            ))
        })
        .map_err(&e)?;
    for row in rows {
        let (release, id, dist) = row.map_err(&e)?;
        dists.entry(release).or_default().push((id, dist));
    }
    Ok(dists)
}

/// The values `sql` lists per release of the project (`?1` is its id;
/// rows are `(release_id, value)`).
fn per_release(
    conn: &Connection,
    path: &Path,
    project_id: i64,
    sql: &str,
) -> Result<HashMap<i64, Vec<String>>, KbError> {
    let e = sql_err(path);
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    let mut stmt = conn.prepare_cached(sql).map_err(&e)?;
    let rows = stmt
        .query_map([project_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(&e)?;
    for row in rows {
        let (release, value) = row.map_err(&e)?;
        out.entry(release).or_default().push(value);
    }
    Ok(out)
}
