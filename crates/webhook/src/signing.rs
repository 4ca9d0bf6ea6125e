//! Signed webhooks, as Vonage signs them: `Authorization: Bearer <JWT>`, HS256 with the
//! shared signature secret, and a `payload_hash` claim binding the token to the exact body
//! bytes, so a receiver can tell the request came from its callmux and was not altered.
//!
//! Claims: `iat` (seconds since the epoch, when the attempt was signed), `jti` (unique per
//! attempt), `payload_hash` (lower-case hex SHA-256 of the body), `iss` = `"callmux"`.
//! There is no `exp`: the receiver decides how old a token may be (`leeway`).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use callmux_webhook::{sign_webhook, verify_webhook};
//!
//! let body = br#"{"status":"answered"}"#;
//! let now = SystemTime::now();
//! // Dispatcher: one token per attempt.
//! let token = sign_webhook(b"secret", body, now, "attempt-1").unwrap();
//! // Receiver: the Authorization header value and the raw body bytes.
//! let claims = verify_webhook(
//!     b"secret",
//!     &format!("Bearer {token}"),
//!     body,
//!     now,
//!     Duration::from_secs(300),
//! )
//! .unwrap();
//! assert_eq!(claims.iss, "callmux");
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `iss` claim callmux puts in every token.
pub const ISSUER: &str = "callmux";

/// Longest token `verify_webhook` looks at; anything longer is rejected unparsed.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The claims of a webhook token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookClaims {
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Unique id of this signature (one per attempt; not the event id).
    pub jti: String,
    /// Hex SHA-256 of the body.
    pub payload_hash: String,
    /// Always [`ISSUER`].
    pub iss: String,
}

/// The claims as they arrive, every one optional, so a missing claim can be named.
#[derive(Deserialize)]
struct RawClaims {
    iat: Option<u64>,
    jti: Option<String>,
    payload_hash: Option<String>,
    iss: Option<String>,
}

/// Why a token could not be made or was refused. Each refusal names what failed, so a
/// receiver can answer 401 with a useful body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// The signature secret is empty.
    #[error("webhook signature secret is empty")]
    EmptySecret,
    /// The JWT library could not sign.
    #[error("cannot sign webhook: {0}")]
    Encode(String),
    /// Not a JWT (shape, base64, JSON, or too long).
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header names another algorithm than HS256.
    #[error("token algorithm is not HS256")]
    WrongAlgorithm,
    /// The signature does not match the secret.
    #[error("token signature does not match the secret")]
    BadSignature,
    /// A claim is absent.
    #[error("token claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// `iss` is not `callmux`.
    #[error("token claim `iss` is {0:?}, expected \"callmux\"")]
    WrongIssuer(String),
    /// `iat` is older than the leeway allows.
    #[error("token claim `iat` = {iat} is more than {leeway_secs}s before now ({now})")]
    TooOld {
        /// The claim.
        iat: u64,
        /// The receiver's clock.
        now: u64,
        /// The allowed age.
        leeway_secs: u64,
    },
    /// `iat` is later than now plus the leeway.
    #[error("token claim `iat` = {iat} is more than {leeway_secs}s after now ({now})")]
    FromTheFuture {
        /// The claim.
        iat: u64,
        /// The receiver's clock.
        now: u64,
        /// The allowed skew.
        leeway_secs: u64,
    },
    /// The body is not the one that was signed.
    #[error("token claim `payload_hash` {claimed} does not match the body's SHA-256 {actual}")]
    PayloadHashMismatch {
        /// Hash in the token.
        claimed: String,
        /// Hash of the body received.
        actual: String,
    },
}

/// Lower-case hex SHA-256 of the exact body bytes.
pub fn payload_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Sign one delivery attempt of `body`; the result goes into `Authorization: Bearer …`.
pub fn sign_webhook(
    secret: &[u8],
    body: &[u8],
    now: SystemTime,
    jti: &str,
) -> Result<String, SigningError> {
    if secret.is_empty() {
        return Err(SigningError::EmptySecret);
    }
    let claims = WebhookClaims {
        iat: unix_secs(now),
        jti: jti.to_owned(),
        payload_hash: payload_hash(body),
        iss: ISSUER.to_owned(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| SigningError::Encode(e.to_string()))
}

/// Check a token against the secret and the received body: HS256 signature, `iss`,
/// `iat` within `leeway` of `now` either way, and `payload_hash`. `token` may carry the
/// `Bearer ` prefix.
pub fn verify_webhook(
    secret: &[u8],
    token: &str,
    body: &[u8],
    now: SystemTime,
    leeway: Duration,
) -> Result<WebhookClaims, SigningError> {
    if secret.is_empty() {
        return Err(SigningError::EmptySecret);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(SigningError::Malformed(format!(
            "token longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let token = token.trim();
    let token = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
        .unwrap_or(token)
        .trim();
    let header = jsonwebtoken::decode_header(token).map_err(map_jwt_error)?;
    if header.alg != Algorithm::HS256 {
        return Err(SigningError::WrongAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data =
        jsonwebtoken::decode::<RawClaims>(token, &DecodingKey::from_secret(secret), &validation)
            .map_err(map_jwt_error)?;
    let raw = data.claims;
    let iss = raw.iss.ok_or(SigningError::MissingClaim("iss"))?;
    if iss != ISSUER {
        return Err(SigningError::WrongIssuer(iss));
    }
    let iat = raw.iat.ok_or(SigningError::MissingClaim("iat"))?;
    let jti = raw.jti.ok_or(SigningError::MissingClaim("jti"))?;
    let claimed = raw
        .payload_hash
        .ok_or(SigningError::MissingClaim("payload_hash"))?;
    let now_s = unix_secs(now);
    let leeway_secs = leeway.as_secs();
    if iat.saturating_add(leeway_secs) < now_s {
        return Err(SigningError::TooOld {
            iat,
            now: now_s,
            leeway_secs,
        });
    }
    if iat > now_s.saturating_add(leeway_secs) {
        return Err(SigningError::FromTheFuture {
            iat,
            now: now_s,
            leeway_secs,
        });
    }
    let actual = payload_hash(body);
    if !claimed.eq_ignore_ascii_case(&actual) {
        return Err(SigningError::PayloadHashMismatch { claimed, actual });
    }
    Ok(WebhookClaims {
        iat,
        jti,
        payload_hash: actual,
        iss,
    })
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> SigningError {
    match e.kind() {
        ErrorKind::InvalidSignature => SigningError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            SigningError::WrongAlgorithm
        }
        ErrorKind::InvalidClaimFormat(c) => SigningError::Malformed(format!("claim {c}")),
        _ => SigningError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn payload_hash_is_hex_sha256() {
        assert_eq!(
            payload_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sign_then_verify() {
        let body = br#"{"status":"answered"}"#;
        let token = sign_webhook(SECRET, body, at(1_700_000_000), "j1").unwrap();
        let claims = verify_webhook(
            SECRET,
            &format!("Bearer {token}"),
            body,
            at(1_700_000_030),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(claims.iat, 1_700_000_000);
        assert_eq!(claims.jti, "j1");
        assert_eq!(claims.iss, "callmux");
        assert_eq!(claims.payload_hash, payload_hash(body));
    }

    #[test]
    fn refusals_name_the_failure() {
        let body = b"{}";
        let t = sign_webhook(SECRET, body, at(1000), "j").unwrap();
        let v = |secret: &[u8], token: &str, body: &[u8], now: u64| {
            verify_webhook(secret, token, body, at(now), Duration::from_secs(60))
        };
        assert_eq!(v(b"other", &t, body, 1000), Err(SigningError::BadSignature));
        assert!(matches!(
            v(SECRET, &t, b"{ }", 1000),
            Err(SigningError::PayloadHashMismatch { .. })
        ));
        assert!(matches!(
            v(SECRET, &t, body, 1061),
            Err(SigningError::TooOld { iat: 1000, .. })
        ));
        assert!(matches!(
            v(SECRET, &t, body, 939),
            Err(SigningError::FromTheFuture { iat: 1000, .. })
        ));
        assert!(v(SECRET, &t, body, 1060).is_ok());
        assert!(v(SECRET, &t, body, 940).is_ok());
        assert_eq!(v(b"", &t, body, 1000), Err(SigningError::EmptySecret));
        assert_eq!(
            sign_webhook(b"", body, at(0), "j"),
            Err(SigningError::EmptySecret)
        );
    }

    fn forge(header: &str, claims: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!(
            "{}.{}",
            b64.encode(header.as_bytes()),
            b64.encode(claims.as_bytes())
        );
        let key = EncodingKey::from_secret(SECRET);
        let sig =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256).unwrap();
        format!("{signing_input}.{sig}")
    }

    #[test]
    fn missing_and_wrong_claims_are_named() {
        let hdr = r#"{"alg":"HS256","typ":"JWT"}"#;
        let hash = payload_hash(b"x");
        let v = |claims: &str| {
            verify_webhook(
                SECRET,
                &forge(hdr, claims),
                b"x",
                at(5),
                Duration::from_secs(60),
            )
        };
        assert_eq!(
            v(&format!(r#"{{"iat":5,"jti":"j","payload_hash":"{hash}"}}"#)),
            Err(SigningError::MissingClaim("iss"))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"callmux","jti":"j","payload_hash":"{hash}"}}"#
            )),
            Err(SigningError::MissingClaim("iat"))
        );
        assert_eq!(
            v(r#"{"iss":"callmux","iat":5,"jti":"j"}"#),
            Err(SigningError::MissingClaim("payload_hash"))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"callmux","iat":5,"payload_hash":"{hash}"}}"#
            )),
            Err(SigningError::MissingClaim("jti"))
        );
        assert_eq!(
            v(&format!(
                r#"{{"iss":"vonage","iat":5,"jti":"j","payload_hash":"{hash}"}}"#
            )),
            Err(SigningError::WrongIssuer("vonage".into()))
        );
        assert!(matches!(
            v(&format!(
                r#"{{"iss":"callmux","iat":"soon","jti":"j","payload_hash":"{hash}"}}"#
            )),
            Err(SigningError::Malformed(_))
        ));
        assert!(v(&format!(
            r#"{{"iss":"callmux","iat":5,"jti":"j","payload_hash":"{}"}}"#,
            hash.to_uppercase()
        ))
        .is_ok());
    }

    #[test]
    fn other_algorithms_are_refused() {
        for alg in ["none", "HS512", "RS256", "ES256", "EdDSA", "PS256", "XX"] {
            let hdr = format!(r#"{{"alg":"{alg}"}}"#);
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let token = format!("{}.{}.", b64.encode(hdr), b64.encode("{}"));
            let r = verify_webhook(SECRET, &token, b"", at(0), Duration::from_secs(1));
            assert!(
                matches!(
                    r,
                    Err(SigningError::WrongAlgorithm | SigningError::Malformed(_))
                ),
                "{alg}: {r:?}"
            );
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for t in [
            "",
            "Bearer",
            "a.b",
            "a.b.c",
            "....",
            "\u{0}.\u{0}.\u{0}",
            "eyJhbGciOiJIUzI1NiJ9.%%%.sig",
            "eyJhbGciOiJIUzI1NiJ9.e30.",
        ] {
            let r = verify_webhook(SECRET, t, b"", at(0), Duration::from_secs(1));
            assert!(
                matches!(
                    r,
                    Err(SigningError::Malformed(_) | SigningError::BadSignature)
                ),
                "{t:?}: {r:?}"
            );
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            verify_webhook(SECRET, &long, b"", at(0), Duration::from_secs(1)),
            Err(SigningError::Malformed(_))
        ));
    }
}
