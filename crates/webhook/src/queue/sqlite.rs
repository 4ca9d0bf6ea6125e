//! The default queue: one SQLite file, `{data_dir}/events.db`, in WAL mode, shared by the
//! server (enqueue) and one or more `callmux dispatch` processes (claim/ack).
//!
//! Layout: one `events` table. `seq` is the AUTOINCREMENT rowid (monotonic, never reused),
//! `head = 1` marks the live event with the lowest `seq` of its call (the only one `claim`
//! may return), and `due_ms` is when the row may next be claimed: its creation time when
//! new, the `not_before` of a retry, or the lease end while it is leased (so an expired
//! lease needs no sweep). A partial index over `due_ms` for live heads makes `claim` a
//! range scan whatever the backlog. Dead letters keep their row (`dead = 1`) and are
//! listed in the order they died (`dead_rank`). Transactions are short and `BEGIN IMMEDIATE`, and every
//! connection waits up to [`BUSY_TIMEOUT`] for the write lock, so processes take turns.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::{
    from_unix_ms, lease_ms, to_unix_ms, EventId, EventQueue, HttpMethod, NewEvent, QueueDepth,
    QueueError, QueuedEvent,
};

/// How long a connection waits for another process's write lock before `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// File name inside the data directory.
pub const FILE_NAME: &str = "events.db";

/// SQLite's `synchronous` setting for enqueue commits, i.e. what an enqueued event
/// survives. (Dispatcher-side writes always use `Normal`: see `dispatch_tx`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// Every enqueue commit is fsynced before `enqueue` returns: survives a process crash
    /// and a power loss. Costs one fsync per commit (batch to amortise it).
    #[default]
    Full,
    /// Commits reach the OS but the WAL is fsynced only at checkpoints: survives a process
    /// crash (SIGKILL, panic, OOM kill) but the last commits can be lost on power loss or
    /// kernel crash. Much cheaper per commit.
    Normal,
}

const SCHEMA_V1: &str = "
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT    NOT NULL UNIQUE,
    call_uuid      TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    method         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    created_ms     INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    head           INTEGER NOT NULL,
    due_ms         INTEGER NOT NULL,
    claimed_by     TEXT,
    lease_until_ms INTEGER,
    dead           INTEGER NOT NULL DEFAULT 0,
    dead_rank      INTEGER
);
CREATE INDEX events_call ON events (call_uuid, seq) WHERE dead = 0;
CREATE INDEX events_due ON events (due_ms, seq) WHERE head = 1 AND dead = 0;
CREATE INDEX events_dead ON events (dead_rank) WHERE dead = 1;
";

const INSERT: &str = "
INSERT INTO events (id, call_uuid, url, method, kind, body, created_ms, attempts, last_error,
                    head, due_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
        NOT EXISTS (SELECT 1 FROM events WHERE call_uuid = ?2 AND dead = 0), ?7)";

const COLUMNS: &str =
    "seq, id, call_uuid, url, method, kind, body, created_ms, attempts, last_error";

/// The SQLite backend. One connection; `Send`, not shared between threads.
#[derive(Debug)]
pub struct SqliteQueue {
    conn: Connection,
    path: PathBuf,
    /// What `enqueue` commits with.
    enqueue_sync: SqliteSync,
    /// What the connection is set to now.
    current_sync: SqliteSync,
}

impl SqliteQueue {
    /// Open or create `{data_dir}/events.db` (and the directory), set WAL, the busy
    /// timeout and `synchronous`, and create or check the schema.
    pub fn open(data_dir: &Path, synchronous: SqliteSync) -> Result<Self, QueueError> {
        std::fs::create_dir_all(data_dir).map_err(|source| QueueError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(FILE_NAME);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Corrupt(format!(
                "{}: journal_mode stayed {mode}, WAL required",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        let mut q = Self {
            conn,
            path,
            enqueue_sync: synchronous,
            current_sync: SqliteSync::Full,
        };
        q.set_sync(synchronous)?;
        Ok(q)
    }

    /// Switch the connection's `synchronous` level (a no-op when already there).
    fn set_sync(&mut self, want: SqliteSync) -> Result<(), QueueError> {
        if self.current_sync != want {
            let value = match want {
                SqliteSync::Full => "FULL",
                SqliteSync::Normal => "NORMAL",
            };
            self.conn.pragma_update(None, "synchronous", value)?;
            self.current_sync = want;
        }
        Ok(())
    }

    /// Start a write transaction for the dispatcher side (claim, ack, retry, dead
    /// letters). These commit with `synchronous=NORMAL` whatever the enqueue setting:
    /// losing one of them to a power cut can only cause a repeated delivery or an
    /// earlier retry, never a lost event, and it saves one fsync per event delivered.
    fn dispatch_tx(&mut self) -> Result<Transaction<'_>, QueueError> {
        self.set_sync(SqliteSync::Normal)?;
        self.write_tx()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn insert(tx: &Transaction<'_>, ev: &NewEvent, now_ms: i64) -> Result<EventId, QueueError> {
        let id = EventId::random();
        tx.prepare_cached(INSERT)?.execute(params![
            id.as_str(),
            ev.call_uuid,
            ev.url,
            ev.method.as_str(),
            ev.kind,
            ev.body,
            now_ms,
            0_i64,
            Option::<String>::None,
        ])?;
        Ok(id)
    }

    fn write_tx(&mut self) -> Result<Transaction<'_>, QueueError> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), QueueError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )?;
    let found: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .optional()?
        .flatten();
    match found {
        None => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [SCHEMA_VERSION],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION => {}
        Some(v) if v > SCHEMA_VERSION => {
            return Err(QueueError::SchemaTooNew {
                found: v,
                supported: SCHEMA_VERSION,
            })
        }
        Some(v) => {
            return Err(QueueError::Corrupt(format!(
                "unknown events.db schema version {v}"
            )))
        }
    }
    tx.commit()?;
    Ok(())
}

/// Map a row selected with [`COLUMNS`].
fn read_event(row: &Row<'_>) -> rusqlite::Result<Result<QueuedEvent, QueueError>> {
    let seq: i64 = row.get(0)?;
    let method: String = row.get(4)?;
    let attempts: i64 = row.get(8)?;
    let created_ms: i64 = row.get(7)?;
    let ev = (|| {
        Ok(QueuedEvent {
            id: EventId::from_string(row.get::<_, String>(1)?),
            seq: u64::try_from(seq)
                .map_err(|_| QueueError::Corrupt(format!("negative seq {seq}")))?,
            call_uuid: row.get(2)?,
            url: row.get(3)?,
            method: method.parse::<HttpMethod>()?,
            kind: row.get(5)?,
            body: row.get(6)?,
            created_at: from_unix_ms(created_ms),
            attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
            last_error: row.get(9)?,
        })
    })();
    Ok(ev)
}

fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<QueuedEvent>, QueueError> {
    let rows = stmt.query_map(params, read_event)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row??);
    }
    Ok(out)
}

/// Make the earliest live event of `call_uuid` its head (after the head left).
fn promote_head(tx: &Transaction<'_>, call_uuid: &str) -> Result<(), QueueError> {
    tx.prepare_cached(
        "UPDATE events SET head = 1 WHERE seq =
           (SELECT MIN(seq) FROM events WHERE call_uuid = ?1 AND dead = 0)",
    )?
    .execute([call_uuid])?;
    Ok(())
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl EventQueue for SqliteQueue {
    fn enqueue(&mut self, ev: NewEvent, now: SystemTime) -> Result<EventId, QueueError> {
        let now_ms = to_unix_ms(now);
        self.set_sync(self.enqueue_sync)?;
        let tx = self.write_tx()?;
        let id = Self::insert(&tx, &ev, now_ms)?;
        tx.commit()?;
        Ok(id)
    }

    fn enqueue_batch(
        &mut self,
        evs: Vec<NewEvent>,
        now: SystemTime,
    ) -> Result<Vec<EventId>, QueueError> {
        if evs.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = to_unix_ms(now);
        self.set_sync(self.enqueue_sync)?;
        let tx = self.write_tx()?;
        let ids = evs
            .iter()
            .map(|ev| Self::insert(&tx, ev, now_ms))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(ids)
    }

    fn claim(
        &mut self,
        consumer: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<QueuedEvent>, QueueError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now_ms = to_unix_ms(now);
        let until = now_ms.saturating_add(lease_ms(lease));
        let tx = self.dispatch_tx()?;
        let events = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events
                 WHERE head = 1 AND dead = 0 AND due_ms <= ?1
                 ORDER BY due_ms, seq LIMIT ?2"
            ))?;
            collect(&mut stmt, params![now_ms, to_i64(limit)])?
        };
        {
            let mut lease_stmt = tx.prepare_cached(
                "UPDATE events SET claimed_by = ?1, lease_until_ms = ?2, due_ms = ?2
                 WHERE seq = ?3",
            )?;
            for ev in &events {
                lease_stmt.execute(params![consumer, until, to_i64_u64(ev.seq)])?;
            }
        }
        tx.commit()?;
        Ok(events)
    }

    fn ack(&mut self, id: &EventId) -> Result<(), QueueError> {
        let tx = self.dispatch_tx()?;
        let gone: Option<(String, bool)> = tx
            .prepare_cached(
                "DELETE FROM events WHERE id = ?1 AND dead = 0 RETURNING call_uuid, head",
            )?
            .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((call_uuid, true)) = gone {
            promote_head(&tx, &call_uuid)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn retry_later(
        &mut self,
        id: &EventId,
        not_before: SystemTime,
        error: &str,
    ) -> Result<(), QueueError> {
        self.set_sync(SqliteSync::Normal)?;
        let n = self
            .conn
            .prepare_cached(
                "UPDATE events SET due_ms = ?2, claimed_by = NULL, lease_until_ms = NULL,
                                   attempts = attempts + 1, last_error = ?3
                 WHERE id = ?1 AND dead = 0",
            )?
            .execute(params![id.as_str(), to_unix_ms(not_before), error])?;
        if n == 0 {
            return Err(QueueError::NotFound(id.clone()));
        }
        Ok(())
    }

    fn dead_letter(&mut self, id: &EventId, reason: &str) -> Result<(), QueueError> {
        let tx = self.dispatch_tx()?;
        let found: Option<(String, bool)> = tx
            .prepare_cached("SELECT call_uuid, head FROM events WHERE id = ?1 AND dead = 0")?
            .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((call_uuid, was_head)) = found else {
            return Err(QueueError::NotFound(id.clone()));
        };
        tx.prepare_cached(
            "UPDATE events SET dead = 1, head = 0, claimed_by = NULL, lease_until_ms = NULL,
                               attempts = attempts + 1, last_error = ?2,
                               dead_rank = (SELECT COALESCE(MAX(dead_rank), 0) + 1
                                            FROM events WHERE dead = 1)
             WHERE id = ?1",
        )?
        .execute(params![id.as_str(), reason])?;
        if was_head {
            promote_head(&tx, &call_uuid)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn list_dead(&mut self, limit: usize) -> Result<Vec<QueuedEvent>, QueueError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM events WHERE dead = 1 ORDER BY dead_rank LIMIT ?1"
        ))?;
        collect(&mut stmt, [to_i64(limit)])
    }

    fn requeue_dead_at(
        &mut self,
        id: Option<&EventId>,
        now: SystemTime,
    ) -> Result<usize, QueueError> {
        const CHUNK: i64 = 500;
        let now_ms = to_unix_ms(now);
        let tx = self.dispatch_tx()?;
        let mut count = 0;
        loop {
            let chunk = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM events
                     WHERE dead = 1 AND (?1 IS NULL OR id = ?1) ORDER BY dead_rank LIMIT ?2"
                ))?;
                collect(&mut stmt, params![id.map(EventId::as_str), CHUNK])?
            };
            if chunk.is_empty() {
                break;
            }
            for ev in &chunk {
                tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?
                    .execute([to_i64_u64(ev.seq)])?;
                tx.prepare_cached(INSERT)?.execute(params![
                    ev.id.as_str(),
                    ev.call_uuid,
                    ev.url,
                    ev.method.as_str(),
                    ev.kind,
                    ev.body,
                    now_ms,
                    0_i64,
                    ev.last_error,
                ])?;
            }
            count += chunk.len();
        }
        tx.commit()?;
        Ok(count)
    }

    fn depth(&mut self) -> Result<QueueDepth, QueueError> {
        let (pending, in_flight, dead): (i64, i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(dead = 0 AND claimed_by IS NULL), 0),
                    COALESCE(SUM(dead = 0 AND claimed_by IS NOT NULL), 0),
                    COALESCE(SUM(dead = 1), 0)
             FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let u = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(QueueDepth {
            pending: u(pending),
            in_flight: u(in_flight),
            dead: u(dead),
        })
    }
}

fn to_i64_u64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: &str) -> NewEvent {
        NewEvent {
            call_uuid: call.into(),
            url: "http://127.0.0.1:1/e".into(),
            method: HttpMethod::Post,
            body: b"{}".to_vec(),
            kind: "test".into(),
        }
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("\n")
    }

    #[test]
    fn hot_queries_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let q = SqliteQueue::open(dir.path(), SqliteSync::Normal).unwrap();
        let claim = plan(
            &q.conn,
            &format!(
                "SELECT {COLUMNS} FROM events
                 WHERE head = 1 AND dead = 0 AND due_ms <= 5 ORDER BY due_ms, seq LIMIT 10"
            ),
        );
        assert!(claim.contains("events_due"), "{claim}");
        assert!(!claim.contains("TEMP B-TREE"), "{claim}");
        let head = plan(
            &q.conn,
            "SELECT MIN(seq) FROM events WHERE call_uuid = 'x' AND dead = 0",
        );
        assert!(head.contains("events_call"), "{head}");
        let rank = plan(&q.conn, "SELECT MAX(dead_rank) FROM events WHERE dead = 1");
        assert!(rank.contains("events_dead"), "{rank}");
        let list = plan(
            &q.conn,
            &format!("SELECT {COLUMNS} FROM events WHERE dead = 1 ORDER BY dead_rank LIMIT 5"),
        );
        assert!(
            list.contains("events_dead") && !list.contains("TEMP B-TREE"),
            "{list}"
        );
    }

    #[test]
    fn enqueue_is_full_and_dispatch_side_is_normal() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = SqliteQueue::open(dir.path(), SqliteSync::Full).unwrap();
        let sync = |q: &SqliteQueue| -> i64 {
            q.conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        let now = SystemTime::now();
        let id = q.enqueue(ev("a"), now).unwrap();
        assert_eq!(sync(&q), 2);
        q.claim("c", now, 1, Duration::from_secs(1)).unwrap();
        assert_eq!(sync(&q), 1);
        q.ack(&id).unwrap();
        assert_eq!(sync(&q), 1);
        q.enqueue_batch(vec![ev("b")], now).unwrap();
        assert_eq!(sync(&q), 2);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteQueue::open(dir.path(), SqliteSync::Full).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        drop(conn);
        let err = SqliteQueue::open(dir.path(), SqliteSync::Full).unwrap_err();
        assert!(
            matches!(
                err,
                QueueError::SchemaTooNew {
                    found: 99,
                    supported: 1
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn corrupt_method_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = SqliteQueue::open(dir.path(), SqliteSync::Normal).unwrap();
        let now = SystemTime::now();
        q.enqueue(ev("a"), now).unwrap();
        q.conn
            .execute("UPDATE events SET method = 'BREW'", [])
            .unwrap();
        let err = q.claim("c", now, 10, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, QueueError::Corrupt(_)), "{err}");
    }

    #[test]
    fn wal_and_synchronous_are_set() {
        let dir = tempfile::tempdir().unwrap();
        for (sync, want) in [(SqliteSync::Full, 2), (SqliteSync::Normal, 1)] {
            let q = SqliteQueue::open(dir.path(), sync).unwrap();
            let mode: String = q
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let s: i64 = q
                .conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(s, want);
        }
    }
}
