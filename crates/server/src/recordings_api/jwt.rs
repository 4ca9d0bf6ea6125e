//! The application's bearer tokens, checked by `callmux-token` (RS256, one error code per
//! failed check, the `jti` replay table). This file is the server's side of it: the wall
//! clock, the lock around the replay table, and the HTTP status of each refusal.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use callmux_token::{ReplayTable, Settings, Verified, Verifier};

/// The application's public key, as loaded at start-up, with what the start-up log shows.
#[derive(Debug, Clone)]
pub(crate) struct ApplicationKey {
    /// Modulus size, for the start-up log.
    pub(crate) bits: usize,
    /// Whether the file held the private key (only its public half is kept).
    pub(crate) from_private: bool,
    key: callmux_token::ApplicationKey,
}

/// Reads the application's RSA key from PEM (public or private, PKCS#1 or PKCS#8); the
/// error is a sentence for the configuration error that names the file and key.
pub(crate) fn load_application_key(pem: &str) -> Result<ApplicationKey, String> {
    let key = callmux_token::ApplicationKey::from_pem(pem).map_err(|e| e.to_string())?;
    Ok(ApplicationKey {
        bits: key.bits(),
        from_private: key.from_private(),
        key,
    })
}

/// Settings of [`JwtVerifier`], from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct JwtSettings {
    pub(crate) application_id: String,
    pub(crate) key: ApplicationKey,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub(crate) leeway: Duration,
    /// Longest `exp - iat` accepted.
    pub(crate) max_lifetime: Duration,
}

/// Why a request's token was refused: the HTTP status, a stable code, and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) detail: String,
}

impl From<callmux_token::TokenError> for TokenError {
    /// 403 when a correctly signed token is for another application (authenticated, not
    /// allowed), 503 when the replay table is full (the server's limit, not the client's
    /// fault), 401 for everything else (RFC 6750 `invalid_token`).
    fn from(e: callmux_token::TokenError) -> Self {
        use callmux_token::TokenError as E;
        let status = match e {
            E::WrongApplication { .. } => StatusCode::FORBIDDEN,
            E::TooManyTokens(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        Self {
            status,
            code: e.code(),
            detail: e.to_string(),
        }
    }
}

/// Checks bearer tokens; remembers the `jti`s it accepted.
pub(crate) struct JwtVerifier {
    verifier: Verifier,
    /// Held only to spend a `jti` (a hash-map insert), never during the RSA check.
    jtis: Mutex<ReplayTable>,
}

impl JwtVerifier {
    /// A verifier for the application's key.
    pub(crate) fn new(settings: JwtSettings) -> Self {
        Self {
            verifier: Verifier::new(Settings {
                application_id: settings.application_id,
                key: settings.key.key,
                leeway: settings.leeway,
                max_lifetime: settings.max_lifetime,
            }),
            jtis: Mutex::new(ReplayTable::default()),
        }
    }

    /// Checks an `Authorization` header value (or its absence) at `now`. A token that
    /// passes is spent: the same `jti` is refused until the token expires.
    pub(crate) fn verify(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<Verified, TokenError> {
        let verified = self.verifier.check(authorization, now)?;
        let mut jtis = self.jtis.lock().map_err(|_| TokenError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            detail: "token cache unavailable".into(),
        })?;
        verified.spend(&mut jtis)?;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(JwtSettings {
            application_id: "app-1".into(),
            key: load_application_key(include_str!("../../tests/data/jwt/application.pub"))
                .unwrap(),
            leeway: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(86_400),
        })
    }

    #[test]
    fn statuses_of_refusals() {
        use callmux_token::TokenError as E;
        let cases = [
            (
                E::WrongApplication {
                    token: "a".into(),
                    ours: "b".into(),
                },
                StatusCode::FORBIDDEN,
            ),
            (E::TooManyTokens(1), StatusCode::SERVICE_UNAVAILABLE),
            (E::MissingToken, StatusCode::UNAUTHORIZED),
            (E::BadSignature, StatusCode::UNAUTHORIZED),
            (E::Replayed("j".into()), StatusCode::UNAUTHORIZED),
        ];
        for (e, status) in cases {
            let code = e.code();
            let mapped = TokenError::from(e);
            assert_eq!((mapped.status, mapped.code), (status, code));
            assert!(mapped.detail.len() > 10);
        }
        let v = verifier();
        let e = v.verify(None, SystemTime::now()).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNAUTHORIZED, "missing_token")
        );
    }

    #[test]
    fn key_errors_are_sentences_and_both_halves_load() {
        let e = load_application_key("hello").unwrap_err();
        assert!(e.contains("not a PEM file"), "{e}");
        let private =
            load_application_key(include_str!("../../tests/data/jwt/application.key")).unwrap();
        let public =
            load_application_key(include_str!("../../tests/data/jwt/application.pub")).unwrap();
        assert_eq!((private.bits, public.bits), (2048, 2048));
        assert!(private.from_private && !public.from_private);
        assert_eq!(private.key.modulus(), public.key.modulus());
    }
}
