//! The checks, in the order a client fixes them: the header is there and is `Bearer`, the
//! token is a JWT, RS256, the signature verifies with the application's key, then each
//! claim. The library (jsonwebtoken) checks only the algorithm and the signature; every
//! claim is checked here so each failure gets its own [`TokenError`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::TokenError;
use crate::key::ApplicationKey;
use crate::replay::{ReplayTable, MAX_JTI_LEN};

/// What a [`Verifier`] accepts.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `application_id` tokens must carry.
    pub application_id: String,
    /// The application's key.
    pub key: ApplicationKey,
    /// Clock skew allowed on `exp`, `nbf` and `iat` (whole seconds count).
    pub leeway: Duration,
    /// Longest `exp - iat` accepted.
    pub max_lifetime: Duration,
}

/// A token whose signature and claims passed; spend it with [`Verified::spend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The token's `jti`.
    pub jti: String,
    /// The token's `exp`, seconds since 1970.
    pub exp: i64,
    /// Until when its `jti` must be remembered: `exp` plus the clock skew, after which the
    /// token fails the expiry check by itself.
    pub remember_until: i64,
    /// The time it was checked at, seconds since 1970.
    pub checked_at: i64,
}

impl Verified {
    /// Records the `jti` as used; refused if it was used before (a replay).
    pub fn spend(&self, table: &mut ReplayTable) -> Result<(), TokenError> {
        table.spend(&self.jti, self.remember_until, self.checked_at)
    }
}

/// Checks bearer tokens against one application's settings. Stateless and `Sync`: the
/// signature check (the expensive part) needs no lock; only [`Verified::spend`] touches
/// the caller's [`ReplayTable`].
pub struct Verifier {
    settings: Settings,
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Seconds since 1970 (0 before it, saturating far after it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Verifier {
    /// A verifier for the application's key.
    pub fn new(settings: Settings) -> Self {
        let key =
            DecodingKey::from_rsa_raw_components(settings.key.modulus(), settings.key.exponent());
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
        }
    }

    /// The settings it checks against.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Checks an `Authorization` header value (or its absence) at `now`, and on success
    /// spends the token's `jti` in `table`.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
        table: &mut ReplayTable,
    ) -> Result<Verified, TokenError> {
        let v = self.check(authorization, now)?;
        v.spend(table)?;
        Ok(v)
    }

    /// Checks an `Authorization` header value (or its absence) at `now`, without spending
    /// it: everything but the replay check.
    pub fn check(
        &self,
        authorization: Option<&str>,
        now: SystemTime,
    ) -> Result<Verified, TokenError> {
        let value = authorization.ok_or(TokenError::MissingToken)?;
        let token = value
            .trim()
            .strip_prefix("Bearer ")
            .or_else(|| value.trim().strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(TokenError::NotBearer)?;
        if token.split('.').count() != 3 {
            return Err(TokenError::NotJwt);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::BadHeader(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::WrongAlgorithm(format!("{:?}", header.alg)));
        }
        let data = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Unreadable(e.to_string()),
            },
        )?;
        self.check_claims(&data.claims, now)
    }

    /// The claim checks alone, on a payload whose signature has been verified (public to
    /// the crate so the fuzz entry can reach them without forging RSA signatures).
    pub(crate) fn check_claims(
        &self,
        claims: &Value,
        now: SystemTime,
    ) -> Result<Verified, TokenError> {
        let s = &self.settings;
        let app = claims
            .get("application_id")
            .ok_or(TokenError::MissingClaim("application_id"))?
            .as_str()
            .ok_or(invalid("application_id", "a string"))?;
        let iat = numeric(claims, "iat")?.ok_or(TokenError::MissingClaim("iat"))?;
        let exp = numeric(claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
        let nbf = numeric(claims, "nbf")?;
        let jti = claims
            .get("jti")
            .ok_or(TokenError::MissingClaim("jti"))?
            .as_str()
            .ok_or(invalid("jti", "a string"))?;
        if jti.is_empty() || jti.len() > MAX_JTI_LEN {
            return Err(invalid("jti", "1 to 256 characters"));
        }
        if app != s.application_id {
            return Err(TokenError::WrongApplication {
                token: app.to_string(),
                ours: s.application_id.clone(),
            });
        }
        let now = unix_seconds(now);
        let leeway = secs(s.leeway);
        if now > exp.saturating_add(leeway) {
            return Err(TokenError::Expired { exp, now, leeway });
        }
        if let Some(nbf) = nbf {
            if nbf > now.saturating_add(leeway) {
                return Err(TokenError::NotYetValid { nbf, now, leeway });
            }
        }
        if iat > now.saturating_add(leeway) {
            return Err(TokenError::IssuedInFuture { iat, now, leeway });
        }
        let max = secs(s.max_lifetime);
        let lifetime = exp.saturating_sub(iat);
        if lifetime > max {
            return Err(TokenError::LifetimeTooLong { lifetime, max });
        }
        Ok(Verified {
            jti: jti.to_string(),
            exp,
            remember_until: exp.saturating_add(leeway),
            checked_at: now,
        })
    }
}

fn invalid(claim: &'static str, expected: &'static str) -> TokenError {
    TokenError::InvalidClaim { claim, expected }
}

/// A NumericDate claim (seconds since the epoch; fractions are truncated, out-of-range
/// floats saturate).
fn numeric(claims: &Value, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(invalid(
                name,
                "a number of seconds since 1970 (NumericDate)",
            )),
    }
}
