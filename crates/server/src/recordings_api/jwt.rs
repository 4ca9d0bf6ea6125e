//! The application's bearer tokens: RS256 JWTs signed with the application's private key
//! and checked here with its public key, as the hosted API does for recording downloads.
//! Each check that can fail has its own error code, so a client is told which one.
//!
//! Claims: `application_id` (must be ours), `iat`, `exp` (required), `nbf` (optional),
//! `jti` (required; a token is accepted once: its `jti` is remembered until it expires).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Smallest RSA modulus accepted for an application key.
const MIN_KEY_BITS: usize = 2048;
/// Longest `jti` accepted (they are kept in memory).
const MAX_JTI_LEN: usize = 256;
/// Most `jti`s remembered at once; past this, new tokens are refused with 503 until older
/// ones expire (replay protection is never silently dropped).
const MAX_JTIS: usize = 100_000;

/// The application's public key (n, e), from a public or a private PEM.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ApplicationKey {
    n: Vec<u8>,
    e: Vec<u8>,
    /// Modulus size, for the start-up log.
    pub(crate) bits: usize,
    /// Whether the file held the private key (only its public half is kept).
    pub(crate) from_private: bool,
}

impl std::fmt::Debug for ApplicationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationKey")
            .field("bits", &self.bits)
            .field("from_private", &self.from_private)
            .finish_non_exhaustive()
    }
}

/// Reads an RSA key in PEM: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), `PRIVATE KEY`
/// (PKCS#8, as the hosted API's dashboard downloads it) or `RSA PRIVATE KEY` (PKCS#1). Of a
/// private key only the public half is kept.
pub(crate) fn load_application_key(pem: &str) -> Result<ApplicationKey, String> {
    let label = pem
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("-----BEGIN ")
                .and_then(|r| r.strip_suffix("-----"))
        })
        .ok_or("not a PEM file (no -----BEGIN line)")?;
    let (public, from_private) = match label {
        "PUBLIC KEY" => (
            RsaPublicKey::from_public_key_pem(pem.trim())
                .map_err(|e| format!("bad PUBLIC KEY: {e}"))?,
            false,
        ),
        "RSA PUBLIC KEY" => (
            RsaPublicKey::from_pkcs1_pem(pem.trim())
                .map_err(|e| format!("bad RSA PUBLIC KEY: {e}"))?,
            false,
        ),
        "PRIVATE KEY" => (
            RsaPrivateKey::from_pkcs8_pem(pem.trim())
                .map_err(|e| format!("bad PRIVATE KEY (RSA expected): {e}"))?
                .to_public_key(),
            true,
        ),
        "RSA PRIVATE KEY" => (
            RsaPrivateKey::from_pkcs1_pem(pem.trim())
                .map_err(|e| format!("bad RSA PRIVATE KEY: {e}"))?
                .to_public_key(),
            true,
        ),
        "ENCRYPTED PRIVATE KEY" => {
            return Err("the private key is encrypted; give the public key \
                        (openssl pkey -in KEY -pubout) or an unencrypted private key"
                .into())
        }
        "CERTIFICATE" => {
            return Err("a certificate, not a key; extract its public key with \
                        openssl x509 -in CERT -pubkey -noout"
                .into())
        }
        other => {
            return Err(format!(
                "unsupported PEM block {other:?}: an RSA key is needed"
            ))
        }
    };
    let bits = public.size() * 8;
    if bits < MIN_KEY_BITS {
        return Err(format!(
            "RSA key of {bits} bits; at least {MIN_KEY_BITS} are required"
        ));
    }
    Ok(ApplicationKey {
        n: public.n().to_bytes_be(),
        e: public.e().to_bytes_be(),
        bits,
        from_private,
    })
}

/// Why a request's token was refused: the HTTP status, a stable code, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

fn unauthorized(code: &'static str, detail: impl Into<String>) -> TokenError {
    TokenError {
        status: StatusCode::UNAUTHORIZED,
        code,
        detail: detail.into(),
    }
}

/// The claims callmux uses, once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VerifiedToken {
    pub(crate) jti: String,
    pub(crate) exp: i64,
}

/// Settings of [`JwtVerifier`].
#[derive(Debug, Clone)]
pub(crate) struct JwtSettings {
    pub(crate) application_id: String,
    pub(crate) key: ApplicationKey,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub(crate) leeway: Duration,
    /// Longest `exp - iat` accepted.
    pub(crate) max_lifetime: Duration,
}

/// Checks bearer tokens; remembers the `jti`s it accepted.
pub(crate) struct JwtVerifier {
    settings: JwtSettings,
    key: DecodingKey,
    validation: Validation,
    jtis: Mutex<JtiCache>,
}

impl JwtVerifier {
    /// A verifier for the application's key.
    pub(crate) fn new(settings: JwtSettings) -> Self {
        let key = DecodingKey::from_rsa_raw_components(&settings.key.n, &settings.key.e);
        // The library checks the signature and the algorithm only; every claim is checked
        // below so that each failure gets its own answer.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        Self {
            settings,
            key,
            validation,
            jtis: Mutex::new(JtiCache::default()),
        }
    }

    /// Checks an `Authorization` header value (or its absence) at `now`. A token that
    /// passes is spent: the same `jti` is refused until the token expires.
    pub(crate) fn verify(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<VerifiedToken, TokenError> {
        let Some(value) = authorization else {
            return Err(unauthorized(
                "missing_token",
                "no Authorization header: send `Authorization: Bearer <JWT>` signed with the application's private key (RS256)",
            ));
        };
        let token = value
            .trim()
            .strip_prefix("Bearer ")
            .or_else(|| value.trim().strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                unauthorized(
                    "malformed_token",
                    "the Authorization header is not `Bearer <JWT>`",
                )
            })?;
        if token.split('.').count() != 3 {
            return Err(unauthorized(
                "malformed_token",
                "the token is not a JWT (three base64url parts separated by dots)",
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            unauthorized(
                "malformed_token",
                format!("the JWT header cannot be read: {e}"),
            )
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(unauthorized(
                "wrong_algorithm",
                format!(
                    "the token is signed with {:?}; only RS256 is accepted",
                    header.alg
                ),
            ));
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => unauthorized(
                    "bad_signature",
                    "the signature does not verify with the application's public key (signed with another key, or altered)",
                ),
                _ => unauthorized("malformed_token", format!("the token cannot be read: {e}")),
            })?;
        self.check_claims(&data.claims, now)
    }

    fn check_claims(
        &self,
        claims: &serde_json::Value,
        now: SystemTime,
    ) -> Result<VerifiedToken, TokenError> {
        let s = &self.settings;
        let app = claims
            .get("application_id")
            .ok_or_else(|| missing("application_id"))?
            .as_str()
            .ok_or_else(|| invalid("application_id", "a string"))?;
        let iat = numeric(claims, "iat")?.ok_or_else(|| missing("iat"))?;
        let exp = numeric(claims, "exp")?.ok_or_else(|| missing("exp"))?;
        let nbf = numeric(claims, "nbf")?;
        let jti = claims
            .get("jti")
            .ok_or_else(|| missing("jti"))?
            .as_str()
            .ok_or_else(|| invalid("jti", "a string"))?;
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(invalid("jti", "1 to 256 characters"));
        }
        if app != s.application_id {
            return Err(TokenError {
                status: StatusCode::FORBIDDEN,
                code: "wrong_application",
                detail: format!(
                    "the token is for application {app:?}, this server serves {:?}",
                    s.application_id
                ),
            });
        }
        let now_s = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let leeway = s.leeway.as_secs() as i64;
        if now_s > exp.saturating_add(leeway) {
            return Err(unauthorized(
                "token_expired",
                format!(
                    "the token expired at {exp} (exp); it is now {now_s} (allowed clock skew {leeway} s)"
                ),
            ));
        }
        if let Some(nbf) = nbf {
            if nbf > now_s.saturating_add(leeway) {
                return Err(unauthorized(
                    "token_not_yet_valid",
                    format!(
                        "the token is not valid before {nbf} (nbf); it is now {now_s} (allowed clock skew {leeway} s)"
                    ),
                ));
            }
        }
        if iat > now_s.saturating_add(leeway) {
            return Err(unauthorized(
                "token_not_yet_valid",
                format!(
                    "the token was issued in the future: iat {iat}, now {now_s} (allowed clock skew {leeway} s)"
                ),
            ));
        }
        let max = s.max_lifetime.as_secs() as i64;
        if exp.saturating_sub(iat) > max {
            return Err(unauthorized(
                "token_lifetime_too_long",
                format!(
                    "exp - iat is {} s; at most {max} s is accepted",
                    exp.saturating_sub(iat)
                ),
            ));
        }
        let mut jtis = self
            .jtis
            .lock()
            .map_err(|_| unauthorized("internal", "token cache unavailable"))?;
        jtis.spend(jti, exp.saturating_add(leeway), now_s)?;
        Ok(VerifiedToken {
            jti: jti.to_string(),
            exp,
        })
    }
}

fn missing(claim: &str) -> TokenError {
    unauthorized(
        "missing_claim",
        format!("the token has no `{claim}` claim (required: application_id, iat, exp, jti)"),
    )
}

fn invalid(claim: &str, what: &str) -> TokenError {
    unauthorized(
        "invalid_claim",
        format!("the `{claim}` claim must be {what}"),
    )
}

/// A NumericDate claim (seconds since the epoch; fractions are truncated).
fn numeric(claims: &serde_json::Value, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| invalid(name, "a number of seconds since 1970 (NumericDate)")),
    }
}

/// `jti`s of accepted tokens, each kept until its token expires.
#[derive(Debug, Default)]
struct JtiCache {
    until: HashMap<String, i64>,
    /// Size after the last purge; the next purge runs when the cache has doubled.
    purge_at: usize,
}

impl JtiCache {
    fn spend(&mut self, jti: &str, until: i64, now: i64) -> Result<(), TokenError> {
        if self.until.get(jti).is_some_and(|u| *u >= now) {
            return Err(unauthorized(
                "token_replayed",
                format!("a token with jti {jti:?} was already used; make a new token (new jti) for every request"),
            ));
        }
        if self.until.len() >= self.purge_at.max(1024) {
            self.until.retain(|_, u| *u >= now);
            self.purge_at = self.until.len() * 2;
        }
        if self.until.len() >= MAX_JTIS {
            return Err(TokenError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "too_many_tokens",
                detail: format!(
                    "{MAX_JTIS} unexpired tokens are remembered already; use shorter-lived tokens"
                ),
            });
        }
        self.until.insert(jti.to_string(), until);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    use rsa::signature::{SignatureEncoding, Signer};
    use sha2::Sha256;
    use std::sync::OnceLock;

    /// The test keys committed under tests/data/jwt (generating RSA keys in a debug build
    /// takes far too long).
    fn keys() -> &'static [RsaPrivateKey; 2] {
        static KEYS: OnceLock<[RsaPrivateKey; 2]> = OnceLock::new();
        KEYS.get_or_init(|| {
            [
                RsaPrivateKey::from_pkcs8_pem(include_str!("../../tests/data/jwt/application.key"))
                    .unwrap(),
                RsaPrivateKey::from_pkcs8_pem(include_str!("../../tests/data/jwt/other.key"))
                    .unwrap(),
            ]
        })
    }

    fn sign(key: &RsaPrivateKey, alg: &str, claims: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{payload}");
        let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn verifier() -> JwtVerifier {
        let pem = keys()[0].to_pkcs8_pem(LineEnding::LF).unwrap();
        JwtVerifier::new(JwtSettings {
            application_id: "app-1".into(),
            key: load_application_key(&pem).unwrap(),
            leeway: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(86_400),
        })
    }

    const NOW: u64 = 1_700_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn claims(jti: &str) -> serde_json::Value {
        serde_json::json!({"application_id": "app-1", "iat": NOW, "exp": NOW + 900, "jti": jti})
    }

    fn code(v: &JwtVerifier, token: &str) -> &'static str {
        match v.verify(Some(&format!("Bearer {token}")), at(NOW)) {
            Ok(_) => "ok",
            Err(e) => e.code,
        }
    }

    #[test]
    fn private_and_public_pem_give_the_same_key() {
        let k = &keys()[0];
        let private = load_application_key(&k.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
        let public =
            load_application_key(&k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap())
                .unwrap();
        assert!(private.from_private && !public.from_private);
        let committed =
            load_application_key(include_str!("../../tests/data/jwt/application.pub")).unwrap();
        assert_eq!(committed.n, private.n);
        assert_eq!((private.n.clone(), private.e.clone()), (public.n, public.e));
        assert_eq!(private.bits, 2048);
        use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
        let pkcs1 = load_application_key(&k.to_pkcs1_pem(LineEnding::LF).unwrap()).unwrap();
        assert_eq!(pkcs1.n, private.n);
        let pkcs1_pub =
            load_application_key(&k.to_public_key().to_pkcs1_pem(LineEnding::LF).unwrap()).unwrap();
        assert_eq!(pkcs1_pub.n, private.n);
        for bad in [
            "hello",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(load_application_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_failed_check_has_its_code() {
        let v = verifier();
        let k = &keys()[0];
        assert_eq!(code(&v, &sign(k, "RS256", &claims("a"))), "ok");
        assert_eq!(code(&v, &sign(k, "RS256", &claims("a"))), "token_replayed");
        assert_eq!(
            code(&v, &sign(&keys()[1], "RS256", &claims("b"))),
            "bad_signature"
        );
        let mut c = claims("c");
        c["application_id"] = "app-2".into();
        let e = v
            .verify(Some(&format!("Bearer {}", sign(k, "RS256", &c))), at(NOW))
            .unwrap_err();
        assert_eq!(
            (e.code, e.status),
            ("wrong_application", StatusCode::FORBIDDEN)
        );
        let mut c = claims("d");
        c["exp"] = (NOW - 31).into();
        assert_eq!(code(&v, &sign(k, "RS256", &c)), "token_expired");
        c["exp"] = (NOW - 29).into();
        assert_eq!(
            code(&v, &sign(k, "RS256", &c)),
            "ok",
            "within the clock skew"
        );
        let mut c = claims("e");
        c["nbf"] = (NOW + 60).into();
        assert_eq!(code(&v, &sign(k, "RS256", &c)), "token_not_yet_valid");
        let mut c = claims("f");
        c["iat"] = (NOW + 60).into();
        assert_eq!(code(&v, &sign(k, "RS256", &c)), "token_not_yet_valid");
        let mut c = claims("g");
        c["exp"] = (NOW + 90_000).into();
        assert_eq!(code(&v, &sign(k, "RS256", &c)), "token_lifetime_too_long");
        for claim in ["application_id", "iat", "exp", "jti"] {
            let mut c = claims("h");
            c.as_object_mut().unwrap().remove(claim);
            assert_eq!(code(&v, &sign(k, "RS256", &c)), "missing_claim", "{claim}");
        }
        let mut c = claims("i");
        c["exp"] = "tomorrow".into();
        assert_eq!(code(&v, &sign(k, "RS256", &c)), "invalid_claim");
        assert_eq!(code(&v, &sign(k, "RS512", &claims("j"))), "wrong_algorithm");
        assert_eq!(code(&v, "abc"), "malformed_token");
        assert_eq!(code(&v, "a.b.c"), "malformed_token");
        // alg "none" and an HS256 token made with the public key as the secret.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims("k").to_string())
        );
        assert_ne!(code(&v, &none), "ok");
        assert_eq!(v.verify(None, at(NOW)).unwrap_err().code, "missing_token");
        assert_eq!(
            v.verify(Some("Basic dXNlcjpwdw=="), at(NOW))
                .unwrap_err()
                .code,
            "malformed_token"
        );
    }

    #[test]
    fn spent_jtis_are_forgotten_after_expiry() {
        let mut cache = JtiCache::default();
        assert!(cache.spend("x", 100, 50).is_ok());
        assert_eq!(
            cache.spend("x", 100, 99).unwrap_err().code,
            "token_replayed"
        );
        // After the token's own expiry the jti could only come with an expired token.
        assert!(cache.spend("x", 200, 101).is_ok());
        for i in 0..5000 {
            cache.spend(&format!("j{i}"), 10, 5).unwrap();
        }
        // Purges (whenever the cache has doubled) keep it near the live count.
        for i in 0..4000 {
            cache.spend(&format!("late{i}"), 1000, 20).unwrap();
        }
        assert!(cache.until.len() <= 4001, "{}", cache.until.len());
    }
}
