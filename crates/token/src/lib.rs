//! callmux application tokens: the bearer JWTs that protect the recordings API. An
//! application signs each request's token (RS256) with its private key; callmux checks it
//! with the application's public key, as the hosted API does for recording downloads.
//!
//! Claims: `application_id` (must be the configured one), `iat`, `exp` (required), `nbf`
//! (optional), `jti` (required, 1–256 characters; a token is accepted once: its `jti` is
//! remembered until the token expires). `exp`, `nbf` and `iat` are checked with a small
//! clock skew ([`Settings::leeway`]); `exp - iat` is capped ([`Settings::max_lifetime`]).
//! Each check that can fail has its own [`TokenError`] with a stable [`TokenError::code`].
//!
//! # Use
//! ```text
//! let key = ApplicationKey::from_pem(&pem)?;                 // at start-up
//! let verifier = Verifier::new(Settings { application_id, key, leeway, max_lifetime });
//! let verified = verifier.check(authorization_header, SystemTime::now())?;   // per request
//! verified.spend(&mut replay_table)?;                        // under the caller's lock
//! ```
//! [`Verifier::check`] is `&self` and needs no lock, so RSA verification runs in parallel;
//! only [`Verified::spend`] touches the [`ReplayTable`], which the server keeps behind a
//! mutex.
//!
//! # Panic policy
//! A panic is a bug; nothing from the network panics. Every token, header value and claim
//! value is untrusted input and ends in `Ok` or a [`TokenError`]; [`fuzzing::verify_token`]
//! is the cargo-fuzz entry that holds the crate to it.
//!
//! # What this crate never does
//! It never reads the clock (time is an argument), locks, spawns, logs or does I/O; the
//! key arrives as PEM text, not a path. HTTP status codes are the server's business.

mod error;
mod key;
mod replay;
mod verify;

pub use error::TokenError;
pub use key::{ApplicationKey, KeyError, MIN_KEY_BITS};
pub use replay::{ReplayTable, DEFAULT_MAX_JTIS, MAX_JTI_LEN};
pub use verify::{unix_seconds, Settings, Verified, Verifier};

/// Fuzz entry points (wired into cargo-fuzz in fuzz/); each must never panic.
pub mod fuzzing {
    use std::sync::OnceLock;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::{ApplicationKey, ReplayTable, Settings, Verifier};

    /// The committed test key's public half: a real key, so the signature path runs.
    const TEST_KEY: &str = include_str!("../tests/data/application.pub");

    /// The application id the fuzz verifier serves (seeds use it).
    pub const FUZZ_APPLICATION_ID: &str = "fuzz-app";

    fn verifier() -> &'static Verifier {
        static V: OnceLock<Verifier> = OnceLock::new();
        V.get_or_init(|| {
            let key = ApplicationKey::from_pem(TEST_KEY)
                .unwrap_or_else(|e| unreachable!("the committed test key loads: {e}"));
            Verifier::new(Settings {
                application_id: FUZZ_APPLICATION_ID.into(),
                key,
                leeway: Duration::from_secs(30),
                max_lifetime: Duration::from_secs(86_400),
            })
        })
    }

    /// Checks arbitrary bytes as an `Authorization` value, as a bare token, as a claims
    /// payload past the signature (which fuzzing cannot forge) with the replay table, and
    /// as a PEM key. Asserts that an accepted `jti` is refused the second time.
    pub fn verify_token(data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        let v = verifier();
        let times = [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            UNIX_EPOCH + Duration::from_secs(i64::MAX as u64),
        ];
        for now in times {
            let _ = v.check(Some(&text), now);
            let _ = v.check(Some(&format!("Bearer {text}")), now);
        }
        if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) {
            let mut table = ReplayTable::with_capacity_limit(2);
            for now in times {
                if let Ok(ok) = v.check_claims(&claims, now) {
                    if ok.spend(&mut table).is_ok() {
                        assert_eq!(
                            ok.spend(&mut table).map_err(|e| e.code()),
                            Err("token_replayed"),
                            "a spent jti must be refused while remembered"
                        );
                    }
                }
            }
        }
        let _ = ApplicationKey::from_pem(&text);
    }
}
