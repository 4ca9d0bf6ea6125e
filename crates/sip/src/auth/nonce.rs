//! Server-side verification with stateless nonces: `<issue time hex>-<counter hex>.<keyed
//! hash>`. The server keeps no nonce table; a nonce proves itself by its hash and ages out
//! by its time. The counter makes every challenge's nonce unique, so two clients (or one
//! client twice) answering challenges issued in the same second with the same cnonce do
//! not produce identical credentials that a replay guard would refuse.
//! Replay within the lifetime is not detected (no nc tracking); keep `max_age` short.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::digest::{compute_response, hash_hex, session_ha1};
use super::{Algorithm, Challenge, Credentials};

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The nonce is ours but too old: challenge again with `stale=true`.
    #[error("nonce is stale")]
    Stale,
    /// The nonce was not issued by us (or is from the future).
    #[error("nonce was not issued by this server")]
    BadNonce,
    /// Credentials are for another realm.
    #[error("wrong realm")]
    WrongRealm,
    /// qop=auth without nc/cnonce, or an unsupported qop.
    #[error("incomplete or unsupported qop parameters")]
    BadQop,
    /// The digest does not match (wrong password or tampering).
    #[error("digest response does not match")]
    BadResponse,
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Issues challenges and verifies the credentials that answer them.
#[derive(Debug, Clone)]
pub struct NonceIssuer {
    realm: String,
    secret: Vec<u8>,
    max_age: Duration,
    algorithm: Algorithm,
    /// Nonces issued so far (shared by clones), part of each nonce.
    issued: Arc<AtomicU64>,
}

/// Nonces claiming to be issued this far in the future are refused (clock steps).
const FUTURE_SLACK: Duration = Duration::from_secs(5);

impl NonceIssuer {
    /// An issuer for `realm` keyed with `secret` whose nonces go stale after `max_age`.
    pub fn new(realm: &str, secret: &[u8], max_age: Duration, algorithm: Algorithm) -> Self {
        Self {
            realm: realm.to_owned(),
            secret: secret.to_vec(),
            max_age,
            algorithm,
            issued: Arc::new(AtomicU64::new(0)),
        }
    }

    fn mac(&self, stamp: &str) -> String {
        let mut data = hex::encode(&self.secret);
        data.push(':');
        data.push_str(stamp);
        data.push(':');
        data.push_str(&self.realm);
        let full = hash_hex(Algorithm::Sha256, &data);
        full.get(..32).unwrap_or(&full).to_owned()
    }

    /// A fresh nonce embedding `now`.
    pub fn nonce(&self, now: SystemTime) -> String {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let stamp = format!("{secs:x}-{n:x}");
        let mac = self.mac(&stamp);
        format!("{stamp}.{mac}")
    }

    /// A challenge for a 401/407 (qop=auth).
    pub fn challenge(&self, now: SystemTime, stale: bool) -> Challenge {
        Challenge {
            realm: self.realm.clone(),
            nonce: self.nonce(now),
            algorithm: self.algorithm,
            qop: vec!["auth".to_owned()],
            opaque: None,
            stale,
            domain: None,
        }
    }

    /// Verifies credentials with the user's password. The caller checks that `creds.uri`
    /// names the request's URI and that `creds.username` is the user it looked up.
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &str,
        password: &str,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        let base = hash_hex(
            creds.algorithm,
            &format!("{}:{}:{}", creds.username, self.realm, password),
        );
        self.verify_ha1(creds, method, &base, now)
    }

    /// Verifies with a stored H(username:realm:password) for the credentials' algorithm.
    pub fn verify_ha1(
        &self,
        creds: &Credentials,
        method: &str,
        stored_ha1: &str,
        now: SystemTime,
    ) -> Result<(), VerifyError> {
        if creds.realm != self.realm {
            return Err(VerifyError::WrongRealm);
        }
        let (stamp, mac) = creds.nonce.split_once('.').ok_or(VerifyError::BadNonce)?;
        if !constant_time_eq(mac.as_bytes(), self.mac(stamp).as_bytes()) {
            return Err(VerifyError::BadNonce);
        }
        let time = stamp.split('-').next().unwrap_or_default();
        let issued = u64::from_str_radix(time, 16).map_err(|_| VerifyError::BadNonce)?;
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if issued > now_secs.saturating_add(FUTURE_SLACK.as_secs()) {
            return Err(VerifyError::BadNonce);
        }
        let qop = match creds.qop.as_deref() {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (creds.nc, creds.cnonce.as_deref()) else {
                    return Err(VerifyError::BadQop);
                };
                Some((format!("{nc:08x}"), cnonce))
            }
            Some(_) => return Err(VerifyError::BadQop),
        };
        let cnonce = qop.as_ref().map_or("", |(_, c)| c);
        let h1 = session_ha1(creds.algorithm, stored_ha1.to_owned(), &creds.nonce, cnonce);
        let expected = compute_response(
            creds.algorithm,
            &h1,
            &creds.nonce,
            method,
            &creds.uri,
            qop.as_ref().map(|(nc, c)| ("auth", nc.as_str(), *c)),
        );
        if !constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(VerifyError::BadResponse);
        }
        // Checked last so that a stale nonce with the right password tells the client
        // to retry silently (stale=true) rather than to ask the user again.
        if now_secs.saturating_sub(issued) > self.max_age.as_secs() {
            return Err(VerifyError::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authorize;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn issue_verify_stale_and_tamper() {
        for alg in [
            Algorithm::Md5,
            Algorithm::Sha256,
            Algorithm::Md5Sess,
            Algorithm::Sha256Sess,
        ] {
            let issuer = NonceIssuer::new("callmux", b"k3y", Duration::from_secs(300), alg);
            let ch = issuer.challenge(at(1_000_000), false);
            let creds = authorize(&ch, "alice", "pw", "INVITE", "sip:x@y", "cn", 1).unwrap();
            assert_eq!(
                issuer.verify(&creds, "INVITE", "pw", at(1_000_010)),
                Ok(()),
                "{alg}"
            );
            assert_eq!(
                issuer.verify(&creds, "INVITE", "bad", at(1_000_010)),
                Err(VerifyError::BadResponse)
            );
            assert_eq!(
                issuer.verify(&creds, "BYE", "pw", at(1_000_010)),
                Err(VerifyError::BadResponse)
            );
            assert_eq!(
                issuer.verify(&creds, "INVITE", "pw", at(1_000_301)),
                Err(VerifyError::Stale)
            );
            assert_eq!(
                issuer.verify(&creds, "INVITE", "pw", at(999_000)),
                Err(VerifyError::BadNonce)
            );
            let mut forged = creds.clone();
            forged.nonce = format!("{:x}.{}", 1_000_200, creds.nonce.split_once('.').unwrap().1);
            assert_eq!(
                issuer.verify(&forged, "INVITE", "pw", at(1_000_210)),
                Err(VerifyError::BadNonce)
            );
            let other = NonceIssuer::new("callmux", b"other", Duration::from_secs(300), alg);
            assert_eq!(
                other.verify(&creds, "INVITE", "pw", at(1_000_010)),
                Err(VerifyError::BadNonce)
            );
            let mut wrong_realm = creds.clone();
            wrong_realm.realm = "x".into();
            assert_eq!(
                issuer.verify(&wrong_realm, "INVITE", "pw", at(1_000_010)),
                Err(VerifyError::WrongRealm)
            );
            let mut no_nc = creds.clone();
            no_nc.nc = None;
            assert_eq!(
                issuer.verify(&no_nc, "INVITE", "pw", at(1_000_010)),
                Err(VerifyError::BadQop)
            );
        }
    }

    #[test]
    fn nonces_are_unique_within_a_second() {
        let issuer = NonceIssuer::new("r", b"s", Duration::from_secs(60), Algorithm::Md5);
        let a = issuer.challenge(at(7000), false);
        let b = issuer.challenge(at(7000), false);
        assert_ne!(a.nonce, b.nonce);
        for ch in [a, b] {
            let creds = authorize(&ch, "u", "p", "REGISTER", "sip:r", "same", 1).unwrap();
            assert_eq!(issuer.verify(&creds, "REGISTER", "p", at(7001)), Ok(()));
        }
    }

    #[test]
    fn legacy_no_qop_and_stale_flag() {
        let issuer = NonceIssuer::new("r", b"s", Duration::from_secs(60), Algorithm::Md5);
        let mut ch = issuer.challenge(at(5000), true);
        assert!(ch.to_string().contains("stale=true"));
        ch.qop.clear();
        let creds = authorize(&ch, "u", "p", "REGISTER", "sip:r", "", 1).unwrap();
        assert_eq!(issuer.verify(&creds, "REGISTER", "p", at(5001)), Ok(()));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
