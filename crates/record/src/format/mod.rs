//! Byte-level container formats: parsing, repair planning and page/frame writing. Every
//! parser here takes untrusted bytes and returns an error instead of panicking.

pub mod mp3;
pub mod ogg;
pub mod opus;
pub mod wav;

/// Why bytes are not a valid (or repairable) file of the expected format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub &'static str);
