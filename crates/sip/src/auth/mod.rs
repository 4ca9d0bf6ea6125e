//! HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 3261 §22): parse challenges
//! and credentials, compute responses (MD5, SHA-256 and their `-sess` forms; qop `auth` or
//! none), build an Authorization for a UAC retry, and verify credentials on the server with
//! self-validating, time-stamped nonces.

mod digest;
mod header;
mod nonce;

pub use digest::{authorize, compute_response, ha1, hash_hex};
pub use header::{Challenge, Credentials};
pub use nonce::{constant_time_eq, NonceIssuer, VerifyError};

use std::fmt;

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (the default when absent).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 7616).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// Parses the `algorithm` parameter value (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, AuthError> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Ok(Self::Md5),
            "MD5-SESS" => Ok(Self::Md5Sess),
            "SHA-256" => Ok(Self::Sha256),
            "SHA-256-SESS" => Ok(Self::Sha256Sess),
            _ => Err(AuthError::UnsupportedAlgorithm(
                s.chars().take(40).collect(),
            )),
        }
    }

    /// The wire token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    /// True for the `-sess` variants (HA1 also covers nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A challenge or credentials header that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not the Digest scheme.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// Parameter list does not parse.
    #[error("malformed authentication header: {0}")]
    Syntax(&'static str),
    /// A required parameter is absent.
    #[error("missing {0} parameter")]
    Missing(&'static str),
    /// An algorithm we do not implement.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The challenge offers only qop values we do not implement (e.g. auth-int).
    #[error("no supported qop offered")]
    UnsupportedQop,
}
