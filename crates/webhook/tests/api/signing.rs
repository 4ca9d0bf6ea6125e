//! Webhook signing: round trips and tampering, and verification never panics.

use std::time::{Duration, UNIX_EPOCH};

use callmux_webhook::{sign_webhook, verify_webhook, SigningError};
use proptest::prelude::*;

proptest! {
    #[test]
    fn any_body_round_trips(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        body in prop::collection::vec(any::<u8>(), 0..512),
        iat in 0_u64..4_000_000_000,
        jti in "[a-zA-Z0-9-]{0,40}",
    ) {
        let now = UNIX_EPOCH + Duration::from_secs(iat);
        let token = sign_webhook(&secret, &body, now, &jti).unwrap();
        let claims = verify_webhook(&secret, &token, &body, now, Duration::from_secs(5)).unwrap();
        prop_assert_eq!(claims.iat, iat);
        prop_assert_eq!(claims.jti, jti);
    }

    #[test]
    fn tampered_tokens_are_refused(
        body in prop::collection::vec(any::<u8>(), 0..64),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = sign_webhook(b"k", &body, now, "j").unwrap();
        let mut bytes = token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let tampered = String::from_utf8_lossy(&bytes).into_owned();
        // Changing a base64 character can leave the decoded bytes unchanged (padding
        // bits of the last character); anything else must be refused.
        if let Ok(claims) = verify_webhook(b"k", &tampered, &body, now, Duration::from_secs(5)) {
            let original = verify_webhook(b"k", &token, &body, now, Duration::from_secs(5)).unwrap();
            prop_assert_eq!(claims, original);
        }
    }

    #[test]
    fn verify_never_panics(data in prop::collection::vec(any::<u8>(), 0..600)) {
        callmux_webhook::fuzzing::verify_token(&data);
    }

    #[test]
    fn verify_never_panics_on_jwt_shaped_text(s in "[A-Za-z0-9_=.-]{0,300}") {
        callmux_webhook::fuzzing::verify_token(s.as_bytes());
    }
}

#[test]
fn changed_body_is_named() {
    let now = UNIX_EPOCH + Duration::from_secs(10);
    let token = sign_webhook(b"k", br#"{"a":1}"#, now, "j").unwrap();
    let err = verify_webhook(b"k", &token, br#"{"a":2}"#, now, Duration::ZERO).unwrap_err();
    assert!(matches!(err, SigningError::PayloadHashMismatch { .. }));
    assert!(err.to_string().contains("payload_hash"), "{err}");
}
