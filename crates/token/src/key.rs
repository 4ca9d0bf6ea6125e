//! The application's RSA key, read from whichever PEM form the operator has: the public key
//! (SPKI or PKCS#1) or the private key the hosted API's dashboard hands out (PKCS#8 or
//! PKCS#1), of which only the public half is kept.

use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// Smallest RSA modulus accepted for an application key.
pub const MIN_KEY_BITS: usize = 2048;

/// Why a PEM file is not a usable application key. Each message tells the operator what
/// to give instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No `-----BEGIN …-----` line at all.
    #[error("not a PEM file (no -----BEGIN line)")]
    NotPem,
    /// A PEM block of a supported kind whose contents do not decode.
    #[error("bad {label}: {reason}")]
    Undecodable {
        /// The PEM label, with a hint where one helps (`PRIVATE KEY (RSA expected)`).
        label: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// `ENCRYPTED PRIVATE KEY`: callmux takes no passphrase.
    #[error(
        "the private key is encrypted; give the public key \
         (openssl pkey -in KEY -pubout) or an unencrypted private key"
    )]
    Encrypted,
    /// A certificate instead of a key.
    #[error(
        "a certificate, not a key; extract its public key with \
         openssl x509 -in CERT -pubkey -noout"
    )]
    Certificate,
    /// Any other PEM label (EC keys, parameters, …).
    #[error("unsupported PEM block {0:?}: an RSA key is needed")]
    Unsupported(String),
    /// A modulus below [`MIN_KEY_BITS`].
    #[error("RSA key of {bits} bits; at least {MIN_KEY_BITS} are required")]
    TooSmall {
        /// The key's modulus size.
        bits: usize,
    },
}

/// The application's public key (n, e), from a public or a private PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct ApplicationKey {
    n: Vec<u8>,
    e: Vec<u8>,
    bits: usize,
    from_private: bool,
}

impl std::fmt::Debug for ApplicationKey {
    /// Only the size and origin: the modulus says nothing useful in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationKey")
            .field("bits", &self.bits)
            .field("from_private", &self.from_private)
            .finish_non_exhaustive()
    }
}

impl ApplicationKey {
    /// Reads an RSA key in PEM: `PUBLIC KEY` (SPKI), `RSA PUBLIC KEY` (PKCS#1), `PRIVATE KEY`
    /// (PKCS#8, as the hosted API's dashboard downloads it) or `RSA PRIVATE KEY` (PKCS#1).
    /// Of a private key only the public half is kept.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let label = pem
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("-----BEGIN ")
                    .and_then(|r| r.strip_suffix("-----"))
            })
            .ok_or(KeyError::NotPem)?;
        let bad = |label: &'static str| move |e: String| KeyError::Undecodable { label, reason: e };
        let pem = pem.trim();
        let (public, from_private) = match label {
            "PUBLIC KEY" => (
                RsaPublicKey::from_public_key_pem(pem)
                    .map_err(|e| bad("PUBLIC KEY")(e.to_string()))?,
                false,
            ),
            "RSA PUBLIC KEY" => (
                RsaPublicKey::from_pkcs1_pem(pem)
                    .map_err(|e| bad("RSA PUBLIC KEY")(e.to_string()))?,
                false,
            ),
            "PRIVATE KEY" => (
                RsaPrivateKey::from_pkcs8_pem(pem)
                    .map_err(|e| bad("PRIVATE KEY (RSA expected)")(e.to_string()))?
                    .to_public_key(),
                true,
            ),
            "RSA PRIVATE KEY" => (
                RsaPrivateKey::from_pkcs1_pem(pem)
                    .map_err(|e| bad("RSA PRIVATE KEY")(e.to_string()))?
                    .to_public_key(),
                true,
            ),
            "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
            "CERTIFICATE" => return Err(KeyError::Certificate),
            other => return Err(KeyError::Unsupported(other.to_string())),
        };
        let bits = public.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall { bits });
        }
        Ok(Self {
            n: public.n().to_bytes_be(),
            e: public.e().to_bytes_be(),
            bits,
            from_private,
        })
    }

    /// Modulus size in bits (for the start-up log).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Whether the PEM held the private key (only its public half is kept).
    pub fn from_private(&self) -> bool {
        self.from_private
    }

    /// The modulus, big-endian (what the signature check uses).
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian.
    pub fn exponent(&self) -> &[u8] {
        &self.e
    }
}
