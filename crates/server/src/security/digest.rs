//! Digest authentication of INVITEs (RFC 3261 §22, RFC 7616, RFC 8760) for the configured
//! users, on top of `callmux_sip::auth`: challenges with self-validating nonces (no table),
//! one `WWW-Authenticate` per offered algorithm (strongest first), verification, a guard
//! against replayed credentials, and a throttle on failed attempts per source so that a
//! password cannot be guessed at line rate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use callmux_sip::auth::{Algorithm, Credentials, NonceIssuer, VerifyError};
use callmux_sip::{Request, Response, Uri};

use super::rate::Buckets;

/// Most credentials remembered for replay detection (each for a nonce lifetime).
const MAX_SEEN: usize = 200_000;

/// Settings of [`DigestAuth`].
#[derive(Debug, Clone)]
pub(crate) struct DigestSettings {
    /// Protection space shown to users (`realm=`).
    pub(crate) realm: String,
    /// Offered algorithms, most preferred first.
    pub(crate) algorithms: Vec<Algorithm>,
    /// User name → password.
    pub(crate) users: HashMap<String, String>,
    /// How long a nonce stays usable (then `stale=true`).
    pub(crate) nonce_ttl: Duration,
    /// Failed attempts a source may make in a burst …
    pub(crate) fail_burst: u32,
    /// … and per minute after that.
    pub(crate) fail_per_minute: f64,
}

/// What digest authentication says about an INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthOutcome {
    /// Good credentials of this user.
    Authenticated(String),
    /// No (usable) credentials yet: answer 401 with fresh challenges.
    Challenge {
        /// The nonce was ours and the password right, only too old.
        stale: bool,
        /// For the log.
        why: &'static str,
    },
    /// Credentials that are wrong, replayed, or from a source that failed too often: 403.
    Forbidden(&'static str),
}

/// The server side of digest authentication.
#[derive(Debug)]
pub(crate) struct DigestAuth {
    issuer: NonceIssuer,
    settings: DigestSettings,
    /// `response` values already accepted, until their nonce could no longer be used.
    seen: HashMap<String, Instant>,
    failures: Buckets,
}

impl DigestAuth {
    /// A verifier keyed with `secret` (random per process: nonces of an earlier process
    /// are refused and re-challenged).
    pub(crate) fn new(settings: DigestSettings, secret: &[u8]) -> Self {
        let first = settings
            .algorithms
            .first()
            .copied()
            .unwrap_or(Algorithm::Md5);
        Self {
            issuer: NonceIssuer::new(&settings.realm, secret, settings.nonce_ttl, first),
            failures: Buckets::new(settings.fail_per_minute / 60.0, settings.fail_burst.max(1)),
            settings,
            seen: HashMap::new(),
        }
    }

    /// Checks the INVITE's credentials.
    pub(crate) fn check(
        &mut self,
        request: &Request,
        src: IpAddr,
        now: Instant,
        wall: SystemTime,
    ) -> AuthOutcome {
        let realm = &self.settings.realm;
        let mut malformed = false;
        let mut found = None;
        for value in request
            .headers
            .get_all("Authorization")
            .chain(request.headers.get_all("Proxy-Authorization"))
        {
            match Credentials::parse(value) {
                Ok(c) if &c.realm == realm => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        let Some(creds) = found else {
            if malformed {
                return self.fail(src, now, "malformed credentials");
            }
            return AuthOutcome::Challenge {
                stale: false,
                why: "no credentials",
            };
        };
        // A source that failed too often gets 403 whatever it sends, without the password
        // being checked: nothing to learn from the answer.
        if self.failures.is_empty(src, now) {
            return AuthOutcome::Forbidden("too many failed attempts from this address");
        }
        if !self.settings.algorithms.contains(&creds.algorithm) {
            return self.fail(src, now, "algorithm not offered");
        }
        if !uri_matches(&creds.uri, &request.uri) {
            return self.fail(src, now, "digest uri is not the Request-URI");
        }
        // Unknown users are checked against a password nobody has, so that they take the
        // same path (and time) as a wrong password and are answered the same way.
        let password = self.settings.users.get(&creds.username);
        let result = self.issuer.verify(
            &creds,
            request.method.as_str(),
            password.map_or("\u{0}no such user\u{0}", String::as_str),
            wall,
        );
        match result {
            Ok(()) if password.is_some() => {
                if self.replayed(&creds, now) {
                    return self.fail(src, now, "credentials replayed");
                }
                AuthOutcome::Authenticated(creds.username)
            }
            Ok(()) | Err(VerifyError::BadResponse) => self.fail(src, now, "bad credentials"),
            Err(VerifyError::Stale) => AuthOutcome::Challenge {
                stale: true,
                why: "stale nonce",
            },
            Err(VerifyError::BadNonce) => AuthOutcome::Challenge {
                stale: false,
                why: "nonce not issued by this server",
            },
            Err(_) => self.fail(src, now, "unsupported qop"),
        }
    }

    fn fail(&mut self, src: IpAddr, now: Instant, why: &'static str) -> AuthOutcome {
        let _ = self.failures.take(src, now);
        AuthOutcome::Forbidden(why)
    }

    /// Records accepted credentials; true if they were accepted before (a captured INVITE
    /// sent again: a new call needs a new nonce count or nonce).
    fn replayed(&mut self, creds: &Credentials, now: Instant) -> bool {
        let key = format!("{}:{}", creds.nonce, creds.response.to_ascii_lowercase());
        if self.seen.get(&key).is_some_and(|until| *until > now) {
            return true;
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.retain(|_, until| *until > now);
        }
        if self.seen.len() < MAX_SEEN {
            // A nonce is refused as stale after its lifetime (plus the issuer's slack).
            let keep = self.settings.nonce_ttl + Duration::from_secs(10);
            self.seen.insert(key, now + keep);
        }
        false
    }

    /// A 401 with one challenge per offered algorithm (RFC 8760 §2.4: preferred first).
    pub(crate) fn challenge_response(
        &self,
        request: &Request,
        stale: bool,
        wall: SystemTime,
    ) -> Response {
        let mut r = request.make_response(401, "Unauthorized");
        let base = self.issuer.challenge(wall, stale);
        for alg in &self.settings.algorithms {
            let mut c = base.clone();
            c.algorithm = *alg;
            r.headers.push("WWW-Authenticate", c.to_string());
        }
        r
    }

    /// Forgets remembered credentials whose nonce has expired.
    /// Drops every user (SIGHUP with no `[[user]]` left): all credentials fail from now on.
    pub(crate) fn forget_users(&mut self) {
        self.settings.users.clear();
    }

    pub(crate) fn prune(&mut self, now: Instant) {
        self.seen.retain(|_, until| *until > now);
    }
}

/// Whether the credentials' `uri` names this request. RFC 3261 §22.4 wants the
/// Request-URI itself; common UAs (SIPp among them) send only its host and port
/// (`sip:192.0.2.1:5060`), so a URI of the same scheme, host and port without a user part
/// is accepted too. Credentials stay bound to the nonce and are accepted once, so this
/// does not open a replay.
fn uri_matches(digest_uri: &str, request_uri: &Uri) -> bool {
    if digest_uri == request_uri.to_string() {
        return true;
    }
    let Ok(u) = digest_uri.parse::<Uri>() else {
        return false;
    };
    if &u == request_uri {
        return true;
    }
    let port = |x: &Uri| {
        x.port.unwrap_or(if x.scheme == callmux_sip::Scheme::Sips {
            5061
        } else {
            5060
        })
    };
    u.user.is_none()
        && u.scheme == request_uri.scheme
        && u.host.eq_ignore_ascii_case(&request_uri.host)
        && port(&u) == port(request_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmux_sip::auth::{authorize, Challenge};
    use callmux_sip::Method;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, "sip:100@192.0.2.1:5060".parse().unwrap());
        r.headers
            .push("Via", "SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bK-1");
        r.headers.push("From", "<sip:alice@192.0.2.9>;tag=a");
        r.headers.push("To", "<sip:100@192.0.2.1>");
        r.headers.push("Call-ID", "c1");
        r.headers.push("CSeq", "1 INVITE");
        r
    }

    /// The authenticator under test: alice/s3cret, SHA-256 offered before MD5.
    fn auth() -> DigestAuth {
        auth_with(vec![Algorithm::Sha256, Algorithm::Md5], b"secret")
    }

    /// alice/s3cret with these algorithms and nonce secret (another secret is another
    /// process, whose nonces this one did not issue).
    fn auth_with(algorithms: Vec<Algorithm>, secret: &[u8]) -> DigestAuth {
        let mut users = HashMap::new();
        users.insert("alice".to_string(), "s3cret".to_string());
        DigestAuth::new(
            DigestSettings {
                realm: "callmux".into(),
                algorithms,
                users,
                nonce_ttl: Duration::from_secs(300),
                fail_burst: 3,
                fail_per_minute: 6.0,
            },
            secret,
        )
    }

    /// alice's INVITE answering the first challenge `issuer` sends at wall-clock `wall`.
    fn answer_first_challenge(issuer: &DigestAuth, wall: SystemTime) -> Request {
        let r = issuer.challenge_response(&invite(), false, wall);
        let ch = Challenge::parse(r.headers.get("WWW-Authenticate").unwrap()).unwrap();
        let creds = authorize(
            &ch,
            "alice",
            "s3cret",
            "INVITE",
            "sip:100@192.0.2.1:5060",
            "c",
            1,
        )
        .unwrap();
        let mut req = invite();
        req.headers.push("Authorization", creds.to_string());
        req
    }

    fn answer(auth: &DigestAuth, alg: Algorithm, user: &str, pw: &str, nc: u32) -> Request {
        let wall = SystemTime::now();
        let r = auth.challenge_response(&invite(), false, wall);
        let challenges: Vec<Challenge> = r
            .headers
            .get_all("WWW-Authenticate")
            .map(|v| Challenge::parse(v).unwrap())
            .collect();
        assert_eq!(challenges.len(), 2);
        assert_eq!(challenges[0].algorithm, Algorithm::Sha256);
        let ch = challenges.iter().find(|c| c.algorithm == alg).unwrap();
        let creds = authorize(ch, user, pw, "INVITE", "sip:100@192.0.2.1:5060", "cn", nc).unwrap();
        let mut req = invite();
        req.headers.push("Authorization", creds.to_string());
        req
    }

    #[test]
    fn challenge_then_good_credentials_for_both_algorithms() {
        let mut a = auth();
        let src: IpAddr = "192.0.2.9".parse().unwrap();
        let now = Instant::now();
        assert!(matches!(
            a.check(&invite(), src, now, SystemTime::now()),
            AuthOutcome::Challenge { stale: false, .. }
        ));
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let req = answer(&a, alg, "alice", "s3cret", 1);
            assert_eq!(
                a.check(&req, src, now, SystemTime::now()),
                AuthOutcome::Authenticated("alice".into()),
                "{alg}"
            );
            // The same credentials again: a replay.
            assert_eq!(
                a.check(&req, src, now, SystemTime::now()),
                AuthOutcome::Forbidden("credentials replayed")
            );
        }
    }

    #[test]
    fn bad_password_unknown_user_and_wrong_uri_are_forbidden_alike() {
        let mut a = auth();
        let src: IpAddr = "192.0.2.10".parse().unwrap();
        let now = Instant::now();
        let wrong = answer(&a, Algorithm::Md5, "alice", "nope", 1);
        assert_eq!(
            a.check(&wrong, src, now, SystemTime::now()),
            AuthOutcome::Forbidden("bad credentials")
        );
        let nobody = answer(&a, Algorithm::Md5, "mallory", "s3cret", 1);
        assert_eq!(
            a.check(&nobody, src, now, SystemTime::now()),
            AuthOutcome::Forbidden("bad credentials")
        );
        let mut other_uri = answer(&a, Algorithm::Md5, "alice", "s3cret", 1);
        other_uri.uri = "sip:200@192.0.2.1:5060".parse().unwrap();
        assert_eq!(
            a.check(&other_uri, src, now, SystemTime::now()),
            AuthOutcome::Forbidden("digest uri is not the Request-URI")
        );
        // Three failures used the burst: now even the right password is refused …
        let good = answer(&a, Algorithm::Md5, "alice", "s3cret", 1);
        assert_eq!(
            a.check(&good, src, now, SystemTime::now()),
            AuthOutcome::Forbidden("too many failed attempts from this address")
        );
        // … from that address only, and only for a while (6 a minute: one every 10 s).
        let other: IpAddr = "192.0.2.11".parse().unwrap();
        assert_eq!(
            a.check(&good, other, now, SystemTime::now()),
            AuthOutcome::Authenticated("alice".into())
        );
        let good = answer(&a, Algorithm::Md5, "alice", "s3cret", 2);
        assert_eq!(
            a.check(&good, src, now + Duration::from_secs(11), SystemTime::now()),
            AuthOutcome::Authenticated("alice".into())
        );
    }

    #[test]
    fn digest_uri_forms() {
        let r: Uri = "sip:100@192.0.2.1:5060".parse().unwrap();
        assert!(uri_matches("sip:100@192.0.2.1:5060", &r));
        assert!(
            uri_matches("sip:192.0.2.1:5060", &r),
            "SIPp's host-only form"
        );
        assert!(uri_matches("sip:192.0.2.1", &r), "default port");
        assert!(!uri_matches("sip:200@192.0.2.1:5060", &r));
        assert!(!uri_matches("sip:192.0.2.2:5060", &r));
        assert!(!uri_matches("sip:192.0.2.1:5070", &r));
        assert!(!uri_matches("sips:192.0.2.1:5060", &r));
        assert!(!uri_matches("nonsense", &r));
    }

    #[test]
    fn foreign_and_stale_nonces_are_rechallenged() {
        let mut a = auth();
        let src: IpAddr = "192.0.2.12".parse().unwrap();
        let now = Instant::now();
        let other = auth_with(vec![Algorithm::Md5], b"another process");
        let req = answer_first_challenge(&other, SystemTime::now());
        assert!(matches!(
            a.check(&req, src, now, SystemTime::now()),
            AuthOutcome::Challenge { stale: false, .. }
        ));
        let old = SystemTime::now() - Duration::from_secs(600);
        let req = answer_first_challenge(&a, old);
        assert!(matches!(
            a.check(&req, src, now, SystemTime::now()),
            AuthOutcome::Challenge { stale: true, .. }
        ));
        let mut garbage = invite();
        garbage.headers.push("Authorization", "Digest username=");
        assert_eq!(
            a.check(&garbage, src, now, SystemTime::now()),
            AuthOutcome::Forbidden("malformed credentials")
        );
    }
}
