//! Bindings on disk: `{data}/bindings.db` (SQLite, WAL), one row per contact, rewritten per
//! address-of-record whenever a REGISTER changes it, read back at start-up so a restart
//! does not forget registered phones. Lapsed rows are dropped on load.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callmux_sip::registrar::{Binding, Source};
use callmux_sip::{TransportKind, Uri};
use rusqlite::{params, Connection};

/// File name under the data directory.
pub(crate) const FILE_NAME: &str = "bindings.db";

/// The open database.
pub(crate) struct BindingStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for BindingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingStore")
            .field("path", &self.path)
            .finish()
    }
}

fn secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn transport_name(t: TransportKind) -> &'static str {
    t.via_name()
}

fn parse_transport(s: &str) -> Option<TransportKind> {
    match s {
        "UDP" => Some(TransportKind::Udp),
        "TCP" => Some(TransportKind::Tcp),
        "TLS" => Some(TransportKind::Tls),
        _ => None,
    }
}

impl BindingStore {
    /// Opens or creates `{dir}/bindings.db`.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(FILE_NAME);
        let wrap = |e: rusqlite::Error| anyhow::Error::new(e).context(path.display().to_string());
        let conn = Connection::open(&path).map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        let _: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS bindings (
                aor TEXT NOT NULL,
                contact TEXT NOT NULL,
                q INTEGER,
                expires_at INTEGER NOT NULL,
                call_id TEXT NOT NULL,
                cseq INTEGER NOT NULL,
                transport TEXT NOT NULL,
                source TEXT NOT NULL,
                PRIMARY KEY (aor, contact)
            );",
        )
        .map_err(wrap)?;
        Ok(Self { conn, path })
    }

    fn err(&self, e: rusqlite::Error) -> anyhow::Error {
        anyhow::Error::new(e).context(self.path.display().to_string())
    }

    /// Every stored binding still live at `now`; lapsed and unreadable rows are deleted.
    pub(crate) fn load(&self, now: SystemTime) -> anyhow::Result<Vec<(String, Binding)>> {
        self.conn
            .execute(
                "DELETE FROM bindings WHERE expires_at <= ?1",
                params![secs(now)],
            )
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT aor, contact, q, expires_at, call_id, cseq, transport, source
                 FROM bindings ORDER BY aor, rowid",
            )
            .map_err(|e| self.err(e))?;
        type Row = (
            String,
            String,
            Option<i64>,
            i64,
            String,
            i64,
            String,
            String,
        );
        let rows: Vec<Row> = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (aor, contact, q, expires, call_id, cseq, transport, source) in rows {
            let parsed = (|| {
                Some(Binding {
                    contact: contact.parse::<Uri>().ok()?,
                    q: q.and_then(|q| u16::try_from(q).ok()),
                    expires_at: UNIX_EPOCH + Duration::from_secs(u64::try_from(expires).ok()?),
                    call_id,
                    cseq: u32::try_from(cseq).ok()?,
                    source: Source {
                        transport: parse_transport(&transport)?,
                        addr: source.parse::<SocketAddr>().ok()?,
                    },
                })
            })();
            match parsed {
                Some(b) => out.push((aor, b)),
                None => {
                    self.conn
                        .execute(
                            "DELETE FROM bindings WHERE aor = ?1 AND contact = ?2",
                            params![aor, contact],
                        )
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        Ok(out)
    }

    /// Replaces the stored bindings of `aor` with `bindings` (none: forgets the AOR).
    pub(crate) fn save(&mut self, aor: &str, bindings: &[Binding]) -> anyhow::Result<()> {
        let path = self.path.display().to_string();
        let wrap = |e: rusqlite::Error| anyhow::Error::new(e).context(path.clone());
        let tx = self.conn.transaction().map_err(wrap)?;
        tx.execute("DELETE FROM bindings WHERE aor = ?1", params![aor])
            .map_err(wrap)?;
        for b in bindings {
            tx.execute(
                "INSERT OR REPLACE INTO bindings
                 (aor, contact, q, expires_at, call_id, cseq, transport, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    aor,
                    b.contact.to_string(),
                    b.q.map(i64::from),
                    secs(b.expires_at),
                    b.call_id,
                    i64::from(b.cseq),
                    transport_name(b.source.transport),
                    b.source.addr.to_string(),
                ],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(host: &str, expires: u64) -> Binding {
        Binding {
            contact: format!("sip:alice@{host}:5062;transport=udp")
                .parse()
                .unwrap(),
            q: Some(500),
            expires_at: UNIX_EPOCH + Duration::from_secs(expires),
            call_id: "c1".into(),
            cseq: 3,
            source: Source {
                transport: TransportKind::Udp,
                addr: "203.0.113.7:40000".parse().unwrap(),
            },
        }
    }

    #[test]
    fn save_load_replace_and_lapse() {
        let dir = tempfile::tempdir().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        {
            let mut s = BindingStore::open(dir.path()).unwrap();
            s.save(
                "alice",
                &[binding("10.0.0.1", 2_000), binding("10.0.0.2", 1_500)],
            )
            .unwrap();
            s.save("bob", &[binding("10.0.0.3", 2_000)]).unwrap();
            s.save("bob", &[]).unwrap();
            s.save("carol", &[binding("10.0.0.4", 900)]).unwrap();
        }
        let s = BindingStore::open(dir.path()).unwrap();
        let loaded = s.load(now).unwrap();
        assert_eq!(
            loaded,
            vec![
                ("alice".to_string(), binding("10.0.0.1", 2_000)),
                ("alice".to_string(), binding("10.0.0.2", 1_500)),
            ]
        );
        // Later, the second one has lapsed and is deleted for good.
        let later = UNIX_EPOCH + Duration::from_secs(1_600);
        assert_eq!(s.load(later).unwrap().len(), 1);
        assert_eq!(s.load(now).unwrap().len(), 1);
        // A row that no longer parses is dropped, not fatal.
        s.conn
            .execute(
                "INSERT INTO bindings VALUES ('dave', '<junk', NULL, 5000, 'c', 1, 'UDP', 'x')",
                [],
            )
            .unwrap();
        assert_eq!(s.load(now).unwrap().len(), 1);
    }
}
