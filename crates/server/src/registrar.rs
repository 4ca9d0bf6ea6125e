//! The registrar (RFC 3261 §10.3) run inside the SIP task: REGISTERs are authenticated with
//! digest (the `[[user]]` passwords; 401 with SHA-256 and MD5 challenges, `stale=true` on an
//! old nonce, 403 for a wrong password or an unknown user alike), applied to the sans-IO
//! [`BindingTable`], persisted in `{data}/bindings.db`, and answered with the user's
//! current bindings. Call tasks read the table through [`Registry`] to `connect` to
//! `{"type":"app","user":…}`.
//!
//! NAT: each binding keeps the address and port its REGISTER came from, and calls to the
//! user go there, whatever private address its Contact names. Phones whose Contact differs
//! from that source get an OPTIONS every `[registrar] keepalive_s`, so the NAT mapping stays
//! open for incoming calls.

mod config;
mod store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use callmux_sip::registrar::{Binding, BindingTable, RegisterError, RegisterRequest, Source};
use callmux_sip::{Method, Peer, Request, Response, TransportKind, Uri};
use tracing::{debug, info, warn};

pub(crate) use self::config::{RegistrarSection, RegistrarSettings};
use self::store::BindingStore;
use crate::security::acl::Acl;
use crate::security::digest::{AuthOutcome, DigestAuth, DigestSettings};

/// The bindings, shared between the SIP task (writes) and call tasks (reads).
#[derive(Debug, Clone)]
pub(crate) struct Registry(Arc<Mutex<BindingTable>>);

impl Registry {
    /// The live bindings of `user`, most preferred first.
    pub(crate) fn contacts(&self, user: &str) -> Vec<Binding> {
        self.0
            .lock()
            .map(|t| t.lookup(user, SystemTime::now()))
            .unwrap_or_default()
    }
}

/// The registry of this process, set once when `serve` starts the registrar (the server
/// runs one; `callmux call`/`answer` none, and then `connect` to an app user fails with a
/// reason).
static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// The process's registry, if a registrar runs.
pub(crate) fn registry() -> Option<&'static Registry> {
    REGISTRY.get()
}

/// REGISTER handling, owned by the SIP task.
pub(crate) struct Registrar {
    table: Registry,
    store: BindingStore,
    auth: DigestAuth,
    settings: RegistrarSettings,
    /// Users restricted to some source addresses (`[[user]] allow`).
    user_acls: HashMap<String, Acl>,
    /// The nonce key, kept so that users replaced on SIGHUP keep outstanding nonces valid.
    secret: Vec<u8>,
    next_keepalive: Option<Instant>,
    keepalive_seq: u64,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Registrar {
    /// Opens the binding store under `data_dir`, reloads the live bindings, and publishes
    /// the registry. `digest` holds the users and realm, `user_acls` the sources some users
    /// are restricted to; nonces are keyed with `secret`.
    pub(crate) fn open(
        settings: RegistrarSettings,
        digest: DigestSettings,
        user_acls: HashMap<String, Acl>,
        secret: &[u8],
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let store = BindingStore::open(data_dir)?;
        let wall = SystemTime::now();
        let mut table = BindingTable::new(settings.limits);
        let loaded = store.load(wall)?;
        let n = loaded.len();
        for (aor, b) in loaded {
            table.restore(&aor, b, wall);
        }
        if n > 0 {
            info!(bindings = n, "registrations reloaded");
        }
        let registry = Registry(Arc::new(Mutex::new(table)));
        let _ = REGISTRY.set(registry.clone());
        Ok(Self {
            table: registry,
            store,
            auth: DigestAuth::new(digest, secret),
            next_keepalive: settings.keepalive.map(|k| Instant::now() + k),
            settings,
            user_acls,
            secret: secret.to_vec(),
            keepalive_seq: 0,
        })
    }

    /// Replaces the users, their passwords and source restrictions (SIGHUP). Bindings stay:
    /// a removed user's phones are simply never found again, and their bindings lapse.
    pub(crate) fn set_users(&mut self, digest: DigestSettings, user_acls: HashMap<String, Acl>) {
        self.auth = DigestAuth::new(digest, &self.secret);
        self.user_acls = user_acls;
    }

    /// Drops every user (SIGHUP removed `[sip] auth` or the last `[[user]]`): REGISTERs are
    /// refused from now on and the existing bindings lapse.
    pub(crate) fn forget_users(&mut self) {
        self.auth.forget_users();
        self.user_acls.clear();
    }

    /// Answers one REGISTER received from `peer`.
    pub(crate) fn handle(
        &mut self,
        request: &Request,
        peer: &Peer,
        now: Instant,
        wall: SystemTime,
    ) -> Response {
        self.expire(wall);
        let user = match self.auth.check(request, peer.remote.ip(), now, wall) {
            AuthOutcome::Authenticated(user) => user,
            AuthOutcome::Challenge { stale, why } => {
                debug!(src = %peer.remote, stale, why, "REGISTER challenged");
                return self.auth.challenge_response(request, stale, wall);
            }
            AuthOutcome::Forbidden(why) => {
                info!(src = %peer.remote, why, "REGISTER refused: authentication failed");
                return reject(request, 403, "Forbidden", why);
            }
        };
        if !self.source_allowed(&user, peer.remote.ip()) {
            info!(src = %peer.remote, %user, "REGISTER refused: source not allowed for this user");
            return reject(
                request,
                403,
                "Forbidden",
                "source address not allowed for this user",
            );
        }
        let register = match RegisterRequest::parse(request) {
            Ok(r) => r,
            Err(e) => return error_response(request, &e),
        };
        if register.aor_user != user {
            info!(src = %peer.remote, %user, aor = %register.aor_user, "REGISTER refused: user may not register another address-of-record");
            return reject(
                request,
                403,
                "Forbidden",
                "credentials are not those of the To user",
            );
        }
        let source = Source {
            transport: peer.transport,
            addr: peer.remote,
        };
        let (applied, bindings) = {
            let Ok(mut table) = self.table.0.lock() else {
                return reject(
                    request,
                    500,
                    "Server Internal Error",
                    "registrar unavailable",
                );
            };
            match table.apply(&user, &register, source, wall) {
                Ok(a) => (a, table.lookup(&user, wall)),
                Err(e) => {
                    info!(src = %peer.remote, %user, error = %e, "REGISTER refused");
                    return error_response(request, &e);
                }
            }
        };
        if applied.changed() {
            if let Err(e) = crate::blocking(|| self.store.save(&user, &bindings)) {
                warn!(error = %format!("{e:#}"), "cannot persist registrations");
            }
            info!(
                %user,
                src = %peer.remote,
                added = applied.added,
                refreshed = applied.refreshed,
                removed = applied.removed,
                bindings = bindings.len(),
                "registration"
            );
        }
        let mut r = request.make_response(200, "OK");
        for b in &bindings {
            r.headers.push(
                "Contact",
                format!("<{}>;expires={}", b.contact, b.remaining(wall)),
            );
        }
        r.headers.push("Date", httpdate(wall));
        r
    }

    /// Whether `user` may register or call from `ip` (`[[user]] allow`; no list = anywhere).
    pub(crate) fn source_allowed(&self, user: &str, ip: IpAddr) -> bool {
        self.user_acls.get(user).is_none_or(|acl| acl.contains(ip))
    }

    /// Drops lapsed bindings (in memory and on disk).
    fn expire(&mut self, wall: SystemTime) {
        let touched: Vec<(String, Vec<Binding>)> = match self.table.0.lock() {
            Ok(mut t) => t
                .expire(wall)
                .into_iter()
                .map(|aor| {
                    let left = t.lookup(&aor, wall);
                    (aor, left)
                })
                .collect(),
            Err(_) => return,
        };
        for (aor, left) in touched {
            info!(user = %aor, left = left.len(), "registration expired");
            if let Err(e) = crate::blocking(|| self.store.save(&aor, &left)) {
                warn!(error = %format!("{e:#}"), "cannot persist registrations");
            }
        }
    }

    /// When [`Self::tick`] wants to run next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let expiry = self
            .table
            .0
            .lock()
            .ok()
            .and_then(|t| t.next_expiry())
            .map(|at| {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                Instant::now() + wait + Duration::from_millis(10)
            });
        [expiry, self.next_keepalive].into_iter().flatten().min()
    }

    /// Expires bindings and returns the OPTIONS keep-alives due: one to each UDP binding
    /// whose Contact is not where its REGISTER came from (a NAT in between).
    pub(crate) fn tick(&mut self, now: Instant, local: SocketAddr) -> Vec<(Request, Peer)> {
        let wall = SystemTime::now();
        self.expire(wall);
        let (Some(due), Some(every)) = (self.next_keepalive, self.settings.keepalive) else {
            return Vec::new();
        };
        if now < due {
            return Vec::new();
        }
        self.next_keepalive = Some(now + every);
        let targets: Vec<Binding> = match self.table.0.lock() {
            Ok(t) => t
                .iter()
                .flat_map(|(_, l)| l.iter())
                .filter(|b| b.source.transport == TransportKind::Udp && is_natted(b))
                .cloned()
                .collect(),
            Err(_) => return Vec::new(),
        };
        targets
            .into_iter()
            .map(|b| {
                self.keepalive_seq += 1;
                let req = keepalive_options(&b.contact, local, self.keepalive_seq);
                let peer = Peer {
                    transport: TransportKind::Udp,
                    local,
                    remote: b.source.addr,
                    connection: None,
                };
                (req, peer)
            })
            .collect()
    }
}

/// Whether a binding's Contact names another address than the REGISTER's source.
pub(crate) fn is_natted(b: &Binding) -> bool {
    let host = b.contact.host.trim_matches(['[', ']']);
    let port = b.contact.port.unwrap_or(5060);
    host.parse::<IpAddr>().ok() != Some(b.source.addr.ip()) || port != b.source.addr.port()
}

/// An out-of-dialog OPTIONS to `contact` (RFC 3261 §11), used only to keep a NAT binding
/// open; its answer is not needed.
fn keepalive_options(contact: &Uri, local: SocketAddr, seq: u64) -> Request {
    let mut r = Request::new(Method::Options, contact.clone());
    r.headers
        .push("From", format!("<sip:callmux@{local}>;tag=ka{seq:x}"));
    r.headers.push("To", format!("<{contact}>"));
    r.headers.push(
        "Call-ID",
        format!("keepalive-{seq:x}-{}@callmux", local.port()),
    );
    r.headers.push("CSeq", "1 OPTIONS");
    r.headers.push("Max-Forwards", "70");
    r
}

fn reject(request: &Request, status: u16, reason: &str, warning: &str) -> Response {
    let mut r = request.make_response(status, reason);
    r.headers.push(
        "Warning",
        format!("399 callmux \"{}\"", warning.replace('"', "'")),
    );
    r
}

fn error_response(request: &Request, e: &RegisterError) -> Response {
    let status = e.status();
    let mut r = reject(
        request,
        status,
        callmux_sip::default_reason(status),
        &e.to_string(),
    );
    if let RegisterError::IntervalTooBrief { min_expires } = e {
        r.headers.push("Min-Expires", min_expires.to_string());
    }
    r
}

/// RFC 1123 date for the Date header of 200 (RFC 3261 §20.17; phones set their clocks by it).
fn httpdate(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        .get((days % 7) as usize)
        .copied()
        .unwrap_or("Thu");
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .get((month - 1) as usize)
    .copied()
    .unwrap_or("Jan");
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests;
