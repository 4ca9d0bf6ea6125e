//! SIP request methods.

use std::fmt;

/// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1), so `invite` is
/// `Other("invite")`, which the endpoint answers with 501.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// Starts a session (RFC 3261).
    Invite,
    /// Acknowledges a final response to INVITE (RFC 3261).
    Ack,
    /// Ends a session (RFC 3261).
    Bye,
    /// Cancels a pending INVITE (RFC 3261).
    Cancel,
    /// Capability query (RFC 3261).
    Options,
    /// Registration (RFC 3261).
    Register,
    /// Mid-dialog information, e.g. DTMF (RFC 6086).
    Info,
    /// Session update before the final answer (RFC 3311).
    Update,
    /// Reliable provisional acknowledgement (RFC 3262).
    Prack,
    /// Event subscription (RFC 6665).
    Subscribe,
    /// Event notification (RFC 6665).
    Notify,
    /// Call transfer (RFC 3515).
    Refer,
    /// Instant message (RFC 3428).
    Message,
    /// Event publication (RFC 3903).
    Publish,
    /// Any other token, kept verbatim.
    Other(String),
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Publish => "PUBLISH",
            Self::Other(other) => other,
        }
    }

    /// Parses a method token; `None` when `s` is not a valid RFC 3261 token.
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || !s.bytes().all(crate::lex::is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "OPTIONS" => Self::Options,
            "REGISTER" => Self::Register,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "PRACK" => Self::Prack,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "REFER" => Self::Refer,
            "MESSAGE" => Self::Message,
            "PUBLISH" => Self::Publish,
            other => Self::Other(other.to_owned()),
        })
    }

    /// The methods this crate knows by name (everything except `Other`).
    pub fn known() -> [Self; 14] {
        [
            Self::Invite,
            Self::Ack,
            Self::Bye,
            Self::Cancel,
            Self::Options,
            Self::Register,
            Self::Info,
            Self::Update,
            Self::Prack,
            Self::Subscribe,
            Self::Notify,
            Self::Refer,
            Self::Message,
            Self::Publish,
        ]
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_non_tokens() {
        for m in Method::known() {
            assert_eq!(Method::parse(m.as_str()), Some(m.clone()));
        }
        assert_eq!(Method::parse("FOO"), Some(Method::Other("FOO".into())));
        assert_eq!(
            Method::parse("invite"),
            Some(Method::Other("invite".into()))
        );
        assert_eq!(Method::parse(""), None);
        assert_eq!(Method::parse("IN VITE"), None);
        assert_eq!(Method::parse("INV@TE"), None);
    }
}
