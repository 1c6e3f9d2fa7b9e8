//! SQLite files thoth-rs did not write itself: a snapshot given with
//! `--snapshot`, an image's `rpmdb.sqlite`. Such a file is opened read-only,
//! with a schema that may hold tables and indexes only (a view or trigger
//! could loop forever or do work on every read), and every operation runs
//! under a budget of SQLite virtual-machine steps, so no file can make a
//! query run for ever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

/// How many virtual-machine instructions pass between two budget checks.
const CHECK_EVERY: i32 = 10_000;

/// Budget checks one operation may pass: 10⁸ instructions (a few seconds),
/// hundreds of times what the heaviest real operation takes (`snapshot
/// info` on the bundled snapshot).
pub const MAX_CHECKS: u64 = 10_000;

/// The shared step counter of one guarded connection.
#[derive(Clone, Debug, Default)]
pub struct StepBudget(Arc<AtomicU64>);

impl StepBudget {
    /// Start a new operation: its budget is full again.
    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    /// Did the last operation run out of steps?
    pub fn exhausted(&self) -> bool {
        self.0.load(Ordering::Relaxed) > MAX_CHECKS
    }
}

/// Why a file of unknown origin is refused.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// SQLite refused a setting or the schema query.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// The schema holds code (views, triggers) that reading could run.
    #[error(
        "{what} holds {} ({}); only tables and indexes are read",
        if .objects.len() == 1 { "a view or trigger" } else { "views or triggers" },
        .objects.join(", ")
    )]
    Code {
        /// The file kind.
        what: String,
        /// The objects found (`view name`, `trigger name`).
        objects: Vec<String>,
    },
}

/// Harden `conn` for a file of unknown origin and install its step budget.
///
/// Refuses a schema with views or triggers (`what` names the file kind in
/// the message).
pub fn guard(conn: &mut Connection, what: &str) -> Result<StepBudget, GuardError> {
    use rusqlite::config::DbConfig;
    for (flag, on) in [
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false),
    ] {
        conn.set_db_config(flag, on)?;
    }
    let budget = StepBudget::default();
    let counter = budget.clone();
    conn.progress_handler(
        CHECK_EVERY,
        Some(move || counter.0.fetch_add(1, Ordering::Relaxed) >= MAX_CHECKS),
    )?;
    let odd: Vec<String> = conn
        .prepare("SELECT type || ' ' || name FROM sqlite_master WHERE type NOT IN ('table', 'index') ORDER BY name LIMIT 3")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())?;
    if !odd.is_empty() {
        return Err(GuardError::Code {
            what: what.to_string(),
            objects: odd,
        });
    }
    Ok(budget)
}

/// The message for an operation that ran out of steps.
pub fn exhausted_message() -> String {
    format!(
        "a query ran past {} SQLite steps and was stopped (a damaged or hostile file)",
        MAX_CHECKS * CHECK_EVERY as u64
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_and_triggers_are_refused_and_loops_are_stopped() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x); INSERT INTO t VALUES (1);
             CREATE VIEW v AS WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r;",
        )
        .unwrap();
        let err = guard(&mut conn, "the file").unwrap_err();
        assert!(err.to_string().contains("view v"), "{err}");

        let mut conn = Connection::open_in_memory().unwrap();
        let budget = guard(&mut conn, "the file").unwrap();
        let endless = conn.query_row(
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
            [],
            |r| r.get::<_, i64>(0),
        );
        assert!(endless.is_err());
        assert!(budget.exhausted());
        budget.reset();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        assert!(!budget.exhausted());
    }
}
