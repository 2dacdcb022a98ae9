//! The incident database: SQLite in WAL mode, so the CLI reads while the
//! agent writes.
//!
//! Incidents are stored whole as JSON, with the few columns that queries need
//! beside them; the JSON is the truth. The schema version lives in SQLite's
//! `user_version` and every migration step runs in one transaction.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::{Incident, StoreError, Trust};

/// The database file inside the state directory.
pub const DB_FILE: &str = "mamori.db";

/// Schema steps, in order; step N brings the database to version N + 1.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE incidents (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        detected_at TEXT NOT NULL,
        action TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX incidents_detected_at ON incidents(detected_at);
    CREATE TABLE trusts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        exe TEXT NOT NULL,
        dir TEXT NOT NULL,
        added_at TEXT NOT NULL,
        incident TEXT
    );
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (name, value) VALUES ('incident', 0);
",
    "
    ALTER TABLE trusts ADD COLUMN exe_hash TEXT;
",
];

/// How long a statement waits for the other process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent's persistent state in a state directory.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed, mode 0700) the state directory and its
    /// database, bringing the schema up to date.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        DirBuilder::new().recursive(true).mode(0o700).create(state_dir).map_err(|e| StoreError::io(state_dir, e))?;
        let path = state_dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|e| StoreError::db(&path, e))?;
        let store = Store { conn, path };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    fn configure(&self) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        // The first real read of the file, so a damaged file fails here. If WAL
        // cannot be had (no shared memory on this filesystem), SQLite keeps its
        // rollback journal: still correct, only readers and writer wait more.
        let _mode: String =
            self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(|e| self.err(e))?;
        // In WAL mode NORMAL loses at most the last transactions on power loss, never consistency.
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| self.err(e))?;
        Ok(())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let supported = MIGRATIONS.len() as i64;
        let version = |conn: &Connection| conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
        if version(&self.conn).map_err(|e| self.err(e))? == supported {
            return Ok(());
        }
        let tx = Self::immediate(&self.conn).map_err(|e| self.err(e))?;
        // Read under the write lock: another process may have migrated meanwhile.
        let found = version(&tx).map_err(|e| self.err(e))?;
        if found > supported {
            return Err(StoreError::TooNew { path: self.path.clone(), found, supported });
        }
        for step in &MIGRATIONS[found.max(0) as usize..] {
            tx.execute_batch(step).map_err(|e| self.err(e))?;
        }
        tx.pragma_update(None, "user_version", supported).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn add_incident(&self, inc: &Incident) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO incidents (id, detected_at, action, body) VALUES (?1, ?2, ?3, ?4)",
                params![inc.id, inc.detected_at, inc.action.as_str(), body(inc)],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Replaces the stored incident with the same id; an unknown id is an error.
    pub fn update_incident(&self, inc: &Incident) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE incidents SET detected_at = ?2, action = ?3, body = ?4 WHERE id = ?1",
                params![inc.id, inc.detected_at, inc.action.as_str(), body(inc)],
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(self.err(rusqlite::Error::QueryReturnedNoRows));
        }
        Ok(())
    }

    pub fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM incidents WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))?;
        body.map(|b| self.parse(id, &b)).transpose()
    }

    /// All incidents, oldest (first recorded) first.
    pub fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, body FROM incidents ORDER BY seq").map_err(|e| self.err(e))?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(|e| self.err(e))?;
        rows.map(|row| {
            let (id, b) = row.map_err(|e| self.err(e))?;
            self.parse(&id, &b)
        })
        .collect()
    }

    pub fn add_trust(&self, t: &Trust) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO trusts (exe, dir, added_at, incident, exe_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.exe, t.dir, t.added_at, t.incident, t.exe_hash],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// All trusts, oldest first.
    pub fn trusts(&self) -> Result<Vec<Trust>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT exe, dir, added_at, incident, exe_hash FROM trusts ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Trust {
                    exe: r.get(0)?,
                    dir: r.get(1)?,
                    added_at: r.get(2)?,
                    incident: r.get(3)?,
                    exe_hash: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// A fresh id like `INC-0001`, never handed out before by this database
    /// (even if the incident was never added) and not used by any stored incident.
    pub fn next_incident_id(&self) -> Result<String, StoreError> {
        let tx = Self::immediate(&self.conn).map_err(|e| self.err(e))?;
        loop {
            let n: i64 = tx
                .query_row("UPDATE counters SET value = value + 1 WHERE name = 'incident' RETURNING value", [], |r| {
                    r.get(0)
                })
                .map_err(|e| self.err(e))?;
            let id = format!("INC-{n:04}");
            let taken: bool = tx
                .query_row("SELECT EXISTS (SELECT 1 FROM incidents WHERE id = ?1)", [&id], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            if !taken {
                tx.commit().map_err(|e| self.err(e))?;
                return Ok(id);
            }
        }
    }

    /// A write transaction taken up front, so two processes handing out ids
    /// wait for each other instead of failing on lock upgrade.
    fn immediate(conn: &Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
    }

    fn parse(&self, id: &str, body: &str) -> Result<Incident, StoreError> {
        serde_json::from_str(body).map_err(|source| StoreError::Record {
            path: self.path.clone(),
            id: id.to_owned(),
            source,
        })
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::db(&self.path, e)
    }
}

fn body(inc: &Incident) -> String {
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_string(inc).expect("incident serialises")
}
