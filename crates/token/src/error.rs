//! Why a token was refused: one variant per check, each with a stable code (what a client
//! programs against) and a sentence that says what to fix (what a human reads).

/// A refused token. [`TokenError::code`] is stable; the `Display` text may change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No `Authorization` header.
    #[error(
        "no Authorization header: send `Authorization: Bearer <JWT>` signed with the \
         application's private key (RS256)"
    )]
    MissingToken,
    /// The header is not `Bearer <token>`.
    #[error("the Authorization header is not `Bearer <JWT>`")]
    NotBearer,
    /// The token is not three dot-separated parts.
    #[error("the token is not a JWT (three base64url parts separated by dots)")]
    NotJwt,
    /// The JOSE header does not decode.
    #[error("the JWT header cannot be read: {0}")]
    BadHeader(String),
    /// The header names another algorithm (HS256, RS512, …). `none` is no algorithm the
    /// JWT library knows: such a header is [`TokenError::BadHeader`].
    #[error("the token is signed with {0}; only RS256 is accepted")]
    WrongAlgorithm(String),
    /// The RS256 signature does not verify with the application's key.
    #[error(
        "the signature does not verify with the application's public key (signed with \
         another key, or altered)"
    )]
    BadSignature,
    /// The signature or payload cannot be decoded.
    #[error("the token cannot be read: {0}")]
    Unreadable(String),
    /// A required claim is absent.
    #[error("the token has no `{0}` claim (required: application_id, iat, exp, jti)")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or range.
    #[error("the `{claim}` claim must be {expected}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// Signed correctly, but for another application (the one failure that is 403, not 401).
    #[error("the token is for application {token:?}, this server serves {ours:?}")]
    WrongApplication {
        /// `application_id` of the token.
        token: String,
        /// The configured application id.
        ours: String,
    },
    /// `exp` (plus the clock skew) has passed.
    #[error("the token expired at {exp} (exp); it is now {now} (allowed clock skew {leeway} s)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// Now, in seconds since 1970.
        now: i64,
        /// The allowed clock skew, seconds.
        leeway: i64,
    },
    /// `nbf` (minus the clock skew) is still ahead.
    #[error(
        "the token is not valid before {nbf} (nbf); it is now {now} (allowed clock skew {leeway} s)"
    )]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// Now, in seconds since 1970.
        now: i64,
        /// The allowed clock skew, seconds.
        leeway: i64,
    },
    /// `iat` (minus the clock skew) is in the future.
    #[error(
        "the token was issued in the future: iat {iat}, now {now} (allowed clock skew {leeway} s)"
    )]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// Now, in seconds since 1970.
        now: i64,
        /// The allowed clock skew, seconds.
        leeway: i64,
    },
    /// `exp - iat` is longer than the configured maximum.
    #[error("exp - iat is {lifetime} s; at most {max} s is accepted")]
    LifetimeTooLong {
        /// `exp - iat`, seconds.
        lifetime: i64,
        /// The configured maximum, seconds.
        max: i64,
    },
    /// The `jti` was spent by an earlier request and its token has not expired yet.
    #[error(
        "a token with jti {0:?} was already used; make a new token (new jti) for every request"
    )]
    Replayed(String),
    /// The replay table is full of unexpired `jti`s: refusing beats forgetting one.
    #[error("{0} unexpired tokens are remembered already; use shorter-lived tokens")]
    TooManyTokens(usize),
}

impl TokenError {
    /// The stable code sent to clients: `missing_token`, `malformed_token`,
    /// `wrong_algorithm`, `bad_signature`, `missing_claim`, `invalid_claim`,
    /// `wrong_application`, `token_expired`, `token_not_yet_valid`,
    /// `token_lifetime_too_long`, `token_replayed` or `too_many_tokens`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::NotBearer | Self::NotJwt | Self::BadHeader(_) | Self::Unreadable(_) => {
                "malformed_token"
            }
            Self::WrongAlgorithm(_) => "wrong_algorithm",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::WrongApplication { .. } => "wrong_application",
            Self::Expired { .. } => "token_expired",
            Self::NotYetValid { .. } | Self::IssuedInFuture { .. } => "token_not_yet_valid",
            Self::LifetimeTooLong { .. } => "token_lifetime_too_long",
            Self::Replayed(_) => "token_replayed",
            Self::TooManyTokens(_) => "too_many_tokens",
        }
    }
}
