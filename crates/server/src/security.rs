//! The gate every new INVITE passes before a call exists, run inside the SIP task:
//! source ACL (403), per-source rate limit (503 + Retry-After, then a ban whose datagrams
//! are dropped unread), digest authentication (401 challenge, 403 for bad credentials).
//! The concurrent call limit comes after it, in `serve`.
//!
//! Trunks listed with an `acl` are trusted by address: their INVITEs pass the ACL, are not
//! rate limited and are not challenged (carriers do not answer challenges).

pub(crate) mod acl;
pub(crate) mod digest;
pub(crate) mod rate;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use callmux_sip::{Request, Response};
use serde::Serialize;
use tracing::{debug, info, warn};

use self::acl::Acl;
use self::digest::{AuthOutcome, DigestAuth, DigestSettings};
use self::rate::{InviteRateLimiter, RateVerdict};

/// The INVITE rate limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RateSettings {
    /// INVITEs per second per source, sustained.
    pub(crate) per_second: f64,
    /// INVITEs a source may send at once.
    pub(crate) burst: u32,
    /// How long an abusive source is dropped (zero: never, only 503s).
    pub(crate) ban: Duration,
}

/// Everything the gate enforces, resolved from the configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecuritySettings {
    /// `[sip] acl`: sources allowed to send INVITEs (besides trusted trunks).
    pub(crate) acl: Acl,
    /// `[[trunk]] acl`: trunk name and the addresses it calls from.
    pub(crate) trunks: Vec<(String, Acl)>,
    /// Digest authentication, when `[sip] auth = "required"`.
    pub(crate) auth: Option<DigestSettings>,
    /// `[sip] invite_rate` (None: unlimited).
    pub(crate) rate: Option<RateSettings>,
}

impl SecuritySettings {
    /// Whether sources outside `[sip] acl` and the trunks' ACLs are refused (403). With
    /// `[sip] acl` set, always. Without it, only when nothing else could admit them: trunk
    /// ACLs are configured and digest authentication is off (with authentication on,
    /// other sources may still call with credentials).
    fn restricts_sources(&self) -> bool {
        !self.acl.is_empty()
            || (self.auth.is_none() && self.trunks.iter().any(|(_, a)| !a.is_empty()))
    }
}

/// What the gate did, since start-up (shown by `/healthz`).
#[derive(Debug, Default)]
pub(crate) struct GateCounters {
    acl_rejected: AtomicU64,
    rate_limited: AtomicU64,
    bans: AtomicU64,
    dropped: AtomicU64,
    challenged: AtomicU64,
    auth_failed: AtomicU64,
    authenticated: AtomicU64,
}

/// A snapshot of [`GateCounters`].
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct GateStats {
    acl_rejected: u64,
    rate_limited: u64,
    bans: u64,
    dropped_datagrams: u64,
    auth_challenged: u64,
    auth_failed: u64,
    authenticated: u64,
}

impl GateCounters {
    /// The counters now.
    pub(crate) fn snapshot(&self) -> GateStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GateStats {
            acl_rejected: g(&self.acl_rejected),
            rate_limited: g(&self.rate_limited),
            bans: g(&self.bans),
            dropped_datagrams: g(&self.dropped),
            auth_challenged: g(&self.challenged),
            auth_failed: g(&self.auth_failed),
            authenticated: g(&self.authenticated),
        }
    }
}

fn bump(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Who an admitted INVITE is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// The trusted trunk it came from.
    pub(crate) trunk: Option<String>,
    /// The authenticated user.
    pub(crate) user: Option<String>,
}

/// The gate's decision on one INVITE.
#[derive(Debug)]
pub(crate) enum GateVerdict {
    /// Go on (call limit, then the call).
    Pass(Admitted),
    /// Answer with this response.
    Reject(Response),
}

/// The gate. Owned by the SIP task; not shared.
#[derive(Debug)]
pub(crate) struct InviteGate {
    settings: SecuritySettings,
    rate: Option<InviteRateLimiter>,
    auth: Option<DigestAuth>,
    counters: Arc<GateCounters>,
    last_prune: Instant,
}

impl InviteGate {
    /// A gate enforcing `settings`; digest nonces are keyed with `secret`.
    pub(crate) fn new(
        settings: SecuritySettings,
        secret: &[u8],
        counters: Arc<GateCounters>,
    ) -> Self {
        Self {
            rate: settings
                .rate
                .map(|r| InviteRateLimiter::new(r.per_second, r.burst, r.ban)),
            auth: settings.auth.clone().map(|a| DigestAuth::new(a, secret)),
            settings,
            counters,
            last_prune: Instant::now(),
        }
    }

    /// Whether a datagram or stream message from `src` may reach the SIP stack at all
    /// (false while the source is banned). Counts what it drops.
    pub(crate) fn admit(&self, src: IpAddr, now: Instant) -> bool {
        let banned = self.rate.as_ref().is_some_and(|r| r.is_banned(src, now));
        if banned {
            bump(&self.counters.dropped);
        }
        !banned
    }

    /// Decides on a new (out-of-dialog) INVITE from `src`.
    pub(crate) fn check_invite(
        &mut self,
        request: &Request,
        src: IpAddr,
        now: Instant,
        wall: SystemTime,
    ) -> GateVerdict {
        if now.saturating_duration_since(self.last_prune) > Duration::from_secs(60) {
            self.last_prune = now;
            if let Some(a) = &mut self.auth {
                a.prune(now);
            }
        }
        let trunk = self
            .settings
            .trunks
            .iter()
            .find(|(_, acl)| acl.contains(src))
            .map(|(name, _)| name.clone());
        if trunk.is_none() && self.settings.restricts_sources() && !self.settings.acl.contains(src)
        {
            bump(&self.counters.acl_rejected);
            info!(%src, "INVITE refused: source address not in the ACL");
            return GateVerdict::Reject(reject(
                request,
                403,
                "Forbidden",
                "source address not allowed",
            ));
        }
        if trunk.is_some() {
            return GateVerdict::Pass(Admitted { trunk, user: None });
        }
        if let Some(rate) = &mut self.rate {
            match rate.check(src, now) {
                RateVerdict::Allow => {}
                RateVerdict::Limited { retry_after_s } => {
                    bump(&self.counters.rate_limited);
                    debug!(%src, retry_after_s, "INVITE refused: rate limit");
                    return GateVerdict::Reject(busy(request, retry_after_s));
                }
                RateVerdict::Ban { retry_after_s, ban } => {
                    bump(&self.counters.rate_limited);
                    bump(&self.counters.bans);
                    warn!(
                        %src,
                        ban_s = ban.as_secs(),
                        sources = rate.sources(),
                        "source keeps sending INVITEs over the rate limit: dropping everything it sends for a while"
                    );
                    return GateVerdict::Reject(busy(request, retry_after_s));
                }
            }
        }
        let Some(auth) = &mut self.auth else {
            return GateVerdict::Pass(Admitted::default());
        };
        match auth.check(request, src, now, wall) {
            AuthOutcome::Authenticated(user) => {
                bump(&self.counters.authenticated);
                GateVerdict::Pass(Admitted {
                    trunk: None,
                    user: Some(user),
                })
            }
            AuthOutcome::Challenge { stale, why } => {
                bump(&self.counters.challenged);
                debug!(%src, stale, why, "INVITE challenged");
                GateVerdict::Reject(auth.challenge_response(request, stale, wall))
            }
            AuthOutcome::Forbidden(why) => {
                bump(&self.counters.auth_failed);
                info!(%src, why, "INVITE refused: authentication failed");
                GateVerdict::Reject(reject(request, 403, "Forbidden", why))
            }
        }
    }
}

fn reject(request: &Request, status: u16, reason: &str, warning: &str) -> Response {
    let mut r = request.make_response(status, reason);
    r.headers
        .push("Warning", format!("399 callmux \"{warning}\""));
    r
}

fn busy(request: &Request, retry_after_s: u64) -> Response {
    let mut r = reject(
        request,
        503,
        "Service Unavailable",
        "INVITE rate limit exceeded",
    );
    r.headers.push("Retry-After", retry_after_s.to_string());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmux_sip::auth::Algorithm;
    use callmux_sip::Method;
    use std::collections::HashMap;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, "sip:100@192.0.2.1".parse().unwrap());
        r.headers
            .push("Via", "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-1");
        r.headers.push("From", "<sip:a@192.0.2.9>;tag=a");
        r.headers.push("To", "<sip:100@192.0.2.1>");
        r.headers.push("Call-ID", "c");
        r.headers.push("CSeq", "1 INVITE");
        r
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn status(v: &GateVerdict) -> u16 {
        match v {
            GateVerdict::Pass(_) => 0,
            GateVerdict::Reject(r) => r.status,
        }
    }

    #[test]
    fn acl_trunks_rate_and_auth_in_order() {
        let mut users = HashMap::new();
        users.insert("u".to_string(), "p".to_string());
        let settings = SecuritySettings {
            acl: Acl::parse(&["192.0.2.0/24".into()]).unwrap(),
            trunks: vec![(
                "carrier".into(),
                Acl::parse(&["198.51.100.0/28".into()]).unwrap(),
            )],
            auth: Some(DigestSettings {
                realm: "r".into(),
                algorithms: vec![Algorithm::Md5],
                users,
                nonce_ttl: Duration::from_secs(60),
                fail_burst: 5,
                fail_per_minute: 5.0,
            }),
            rate: Some(RateSettings {
                per_second: 1.0,
                burst: 2,
                ban: Duration::from_secs(10),
            }),
        };
        let counters = Arc::new(GateCounters::default());
        let mut gate = InviteGate::new(settings, b"k", Arc::clone(&counters));
        let now = Instant::now();
        let wall = SystemTime::now();
        // Outside every list: 403.
        let v = gate.check_invite(&invite(), ip("203.0.113.5"), now, wall);
        assert_eq!(status(&v), 403);
        // A trusted trunk: passes, never challenged nor limited.
        for _ in 0..10 {
            match gate.check_invite(&invite(), ip("198.51.100.3"), now, wall) {
                GateVerdict::Pass(a) => assert_eq!(a.trunk.as_deref(), Some("carrier")),
                GateVerdict::Reject(r) => panic!("trunk refused: {}", r.status),
            }
        }
        // Allowed source without credentials: 401 with a challenge, twice, then 503.
        let src = ip("192.0.2.50");
        for _ in 0..2 {
            let v = gate.check_invite(&invite(), src, now, wall);
            assert_eq!(status(&v), 401);
        }
        let GateVerdict::Reject(r) = gate.check_invite(&invite(), src, now, wall) else {
            panic!()
        };
        assert_eq!(r.status, 503);
        assert_eq!(r.headers.get("Retry-After"), Some("1"));
        let _ = gate.check_invite(&invite(), src, now, wall);
        assert!(gate.admit(src, now));
        // Still sending: banned, and its datagrams are dropped.
        let v = gate.check_invite(&invite(), src, now, wall);
        assert_eq!(status(&v), 503);
        assert!(!gate.admit(src, now));
        assert!(gate.admit(ip("192.0.2.51"), now));
        let s = counters.snapshot();
        assert_eq!(s.acl_rejected, 1);
        assert_eq!(s.auth_challenged, 2);
        assert_eq!(s.rate_limited, 3);
        assert_eq!(s.bans, 1);
        assert_eq!(s.dropped_datagrams, 1);
    }

    #[test]
    fn trunk_acls_restrict_sources_only_without_authentication() {
        let trunks = vec![(
            "carrier".to_string(),
            Acl::parse(&["198.51.100.1".into()]).unwrap(),
        )];
        let mut users = HashMap::new();
        users.insert("u".to_string(), "p".to_string());
        let auth = DigestSettings {
            realm: "r".into(),
            algorithms: vec![Algorithm::Md5],
            users,
            nonce_ttl: Duration::from_secs(60),
            fail_burst: 5,
            fail_per_minute: 5.0,
        };
        let stranger = ip("203.0.113.9");
        let (now, wall) = (Instant::now(), SystemTime::now());
        let open_gate = |auth: Option<DigestSettings>| {
            InviteGate::new(
                SecuritySettings {
                    trunks: trunks.clone(),
                    auth,
                    ..SecuritySettings::default()
                },
                b"k",
                Arc::new(GateCounters::default()),
            )
        };
        // Only the trunk may call without authentication …
        let mut g = open_gate(None);
        assert_eq!(status(&g.check_invite(&invite(), stranger, now, wall)), 403);
        assert_eq!(
            status(&g.check_invite(&invite(), ip("198.51.100.1"), now, wall)),
            0
        );
        // … with authentication, others are challenged instead.
        let mut g = open_gate(Some(auth));
        assert_eq!(status(&g.check_invite(&invite(), stranger, now, wall)), 401);
        assert_eq!(
            status(&g.check_invite(&invite(), ip("198.51.100.1"), now, wall)),
            0
        );
    }

    #[test]
    fn no_settings_lets_everything_through() {
        let mut gate = InviteGate::new(
            SecuritySettings::default(),
            b"k",
            Arc::new(GateCounters::default()),
        );
        for i in 0..100u8 {
            let v = gate.check_invite(
                &invite(),
                IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, i)),
                Instant::now(),
                SystemTime::now(),
            );
            assert_eq!(status(&v), 0);
        }
    }
}
