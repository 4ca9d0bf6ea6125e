//! callmux-token through its public API: key loading in every PEM form, one error code per
//! failed check (tokens signed here with `rsa`, not with the verifier's library), the clock
//! skew at its edges, replay, and the fuzz entry on hostile inputs.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use callmux_token::{
    ApplicationKey, KeyError, ReplayTable, Settings, TokenError, Verifier, MIN_KEY_BITS,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::Sha256;

/// The committed test keys (generating RSA keys in a debug build takes far too long).
fn keys() -> &'static [RsaPrivateKey; 2] {
    static KEYS: OnceLock<[RsaPrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            RsaPrivateKey::from_pkcs8_pem(include_str!("data/application.key")).unwrap(),
            RsaPrivateKey::from_pkcs8_pem(include_str!("data/other.key")).unwrap(),
        ]
    })
}

fn sign_raw(key: &RsaPrivateKey, header: &str, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn sign(key: &RsaPrivateKey, alg: &str, claims: &serde_json::Value) -> String {
    sign_raw(key, &format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#), claims)
}

fn verifier() -> Verifier {
    let pem = keys()[0].to_pkcs8_pem(LineEnding::LF).unwrap();
    Verifier::new(Settings {
        application_id: "app-1".into(),
        key: ApplicationKey::from_pem(&pem).unwrap(),
        leeway: Duration::from_secs(30),
        max_lifetime: Duration::from_secs(86_400),
    })
}

const NOW: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn claims(jti: &str) -> serde_json::Value {
    serde_json::json!({"application_id": "app-1", "iat": NOW, "exp": NOW + 900, "jti": jti})
}

/// The code of `verify` at NOW, spending in `table`; "ok" when accepted.
fn code(v: &Verifier, table: &mut ReplayTable, token: &str) -> &'static str {
    match v.verify(Some(&format!("Bearer {token}")), at(NOW), table) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn every_pem_form_gives_the_same_key() {
    let k = &keys()[0];
    let private = ApplicationKey::from_pem(&k.to_pkcs8_pem(LineEnding::LF).unwrap()).unwrap();
    let public =
        ApplicationKey::from_pem(&k.to_public_key().to_public_key_pem(LineEnding::LF).unwrap())
            .unwrap();
    assert!(private.from_private() && !public.from_private());
    assert_eq!(private.bits(), 2048);
    assert_eq!(
        (private.modulus(), private.exponent()),
        (public.modulus(), public.exponent())
    );
    let committed = ApplicationKey::from_pem(include_str!("data/application.pub")).unwrap();
    assert_eq!(committed.modulus(), private.modulus());
    let pkcs1 = ApplicationKey::from_pem(&k.to_pkcs1_pem(LineEnding::LF).unwrap()).unwrap();
    assert_eq!(pkcs1.modulus(), private.modulus());
    assert!(pkcs1.from_private());
    let pkcs1_pub =
        ApplicationKey::from_pem(&k.to_public_key().to_pkcs1_pem(LineEnding::LF).unwrap()).unwrap();
    assert_eq!(pkcs1_pub.modulus(), private.modulus());
    // CRLF line ends and surrounding blank lines, as files edited on Windows have.
    let crlf = format!(
        "\r\n{}\r\n",
        include_str!("data/application.pub").replace('\n', "\r\n")
    );
    assert_eq!(
        ApplicationKey::from_pem(&crlf).unwrap().modulus(),
        private.modulus()
    );
    // Debug shows no key material.
    assert!(!format!("{private:?}").contains("n:"));
}

#[test]
fn unusable_pem_files_say_what_to_give_instead() {
    type Expect = fn(&KeyError) -> bool;
    let cases: [(&str, Expect); 6] = [
        ("hello", |e| *e == KeyError::NotPem),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            |e| *e == KeyError::Certificate,
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            |e| *e == KeyError::Encrypted,
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nMIIB\n-----END EC PRIVATE KEY-----\n",
            |e| matches!(e, KeyError::Unsupported(l) if l == "EC PRIVATE KEY"),
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            |e| {
                matches!(
                    e,
                    KeyError::Undecodable {
                        label: "PUBLIC KEY",
                        ..
                    }
                )
            },
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            |e| matches!(e, KeyError::Undecodable { label, .. } if label.contains("RSA expected")),
        ),
    ];
    for (pem, expected) in cases {
        let e = ApplicationKey::from_pem(pem).unwrap_err();
        assert!(expected(&e), "{pem}: {e:?}");
        assert!(e.to_string().len() > 10);
    }
    assert!(KeyError::Certificate.to_string().contains("openssl x509"));
    // A 1024-bit key (tests/data/README.md) is too small.
    let small = include_str!("data/small.pub");
    match ApplicationKey::from_pem(small) {
        Err(KeyError::TooSmall { bits }) => assert!(bits < MIN_KEY_BITS),
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_failed_check_has_its_code() {
    let v = verifier();
    let t = &mut ReplayTable::default();
    let k = &keys()[0];
    assert_eq!(code(&v, t, &sign(k, "RS256", &claims("a"))), "ok");
    assert_eq!(
        code(&v, t, &sign(k, "RS256", &claims("a"))),
        "token_replayed"
    );
    assert_eq!(
        code(&v, t, &sign(&keys()[1], "RS256", &claims("b"))),
        "bad_signature"
    );
    let mut c = claims("c");
    c["application_id"] = "app-2".into();
    let e = v
        .verify(
            Some(&format!("Bearer {}", sign(k, "RS256", &c))),
            at(NOW),
            t,
        )
        .unwrap_err();
    assert_eq!(
        e,
        TokenError::WrongApplication {
            token: "app-2".into(),
            ours: "app-1".into()
        }
    );
    assert_eq!(e.code(), "wrong_application");
    let mut c = claims("d");
    c["exp"] = (NOW - 31).into();
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "token_expired");
    c["exp"] = (NOW - 30).into();
    assert_eq!(
        code(&v, t, &sign(k, "RS256", &c)),
        "ok",
        "at the edge of the skew"
    );
    let mut c = claims("e");
    c["nbf"] = (NOW + 31).into();
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "token_not_yet_valid");
    c["nbf"] = (NOW + 30).into();
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "ok");
    let mut c = claims("f");
    c["iat"] = (NOW + 31).into();
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "token_not_yet_valid");
    let mut c = claims("g");
    c["exp"] = (NOW + 86_401).into();
    assert_eq!(
        code(&v, t, &sign(k, "RS256", &c)),
        "token_lifetime_too_long"
    );
    c["exp"] = (NOW + 86_400).into();
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "ok");
    for claim in ["application_id", "iat", "exp", "jti"] {
        let mut c = claims("h");
        c.as_object_mut().unwrap().remove(claim);
        let e = v
            .verify(
                Some(&format!("Bearer {}", sign(k, "RS256", &c))),
                at(NOW),
                t,
            )
            .unwrap_err();
        assert_eq!(
            e,
            TokenError::MissingClaim(match claim {
                "application_id" => "application_id",
                "iat" => "iat",
                "exp" => "exp",
                _ => "jti",
            })
        );
    }
    for (claim, value) in [
        ("exp", serde_json::json!("tomorrow")),
        ("iat", serde_json::json!(null)),
        ("nbf", serde_json::json!("soon")),
        ("application_id", serde_json::json!(7)),
        ("jti", serde_json::json!(7)),
        ("jti", serde_json::json!("")),
        ("jti", serde_json::json!("x".repeat(257))),
    ] {
        let mut c = claims("i");
        c[claim] = value;
        assert_eq!(
            code(&v, t, &sign(k, "RS256", &c)),
            "invalid_claim",
            "{claim}"
        );
    }
    // An `exp`/`nbf` of a type the library cannot even hold (an array) fails in its decoder.
    let mut c = claims("i2");
    c["nbf"] = serde_json::json!([1]);
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "malformed_token");
    // Fractional NumericDates are truncated; huge ones saturate (and fail the lifetime).
    let mut c = claims("l");
    c["exp"] = serde_json::json!(NOW as f64 + 900.7);
    assert_eq!(code(&v, t, &sign(k, "RS256", &c)), "ok");
    c["jti"] = "m".into();
    c["exp"] = serde_json::json!(1e300);
    assert_eq!(
        code(&v, t, &sign(k, "RS256", &c)),
        "token_lifetime_too_long"
    );
    assert_eq!(
        code(&v, t, &sign(k, "RS512", &claims("j"))),
        "wrong_algorithm"
    );
    assert_eq!(
        code(&v, t, &sign(k, "HS256", &claims("j"))),
        "wrong_algorithm"
    );
    assert_eq!(code(&v, t, "abc"), "malformed_token");
    assert_eq!(code(&v, t, "a.b.c"), "malformed_token");
    assert_eq!(code(&v, t, "a.b.c.d"), "malformed_token");
    // A good header and signature over a payload that is not JSON.
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
        URL_SAFE_NO_PAD.encode("not json")
    );
    let sig = SigningKey::<Sha256>::new(k.clone()).sign(input.as_bytes());
    let not_json = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    assert_eq!(code(&v, t, &not_json), "malformed_token");
    // alg "none", unsigned.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims("k").to_string())
    );
    assert_eq!(code(&v, t, &none), "malformed_token");
    assert_eq!(
        v.verify(None, at(NOW), t).unwrap_err(),
        TokenError::MissingToken
    );
    assert_eq!(
        v.verify(Some("Basic dXNlcjpwdw=="), at(NOW), t)
            .unwrap_err(),
        TokenError::NotBearer
    );
    // Lower-case scheme and surrounding blanks are accepted.
    let ok = sign(k, "RS256", &claims("n"));
    assert!(v
        .verify(Some(&format!("  bearer  {ok} ")), at(NOW), t)
        .is_ok());
}

#[test]
fn check_does_not_spend_and_the_jti_is_remembered_until_expiry_plus_skew() {
    let v = verifier();
    let k = &keys()[0];
    let token = format!("Bearer {}", sign(k, "RS256", &claims("p")));
    // check alone is repeatable.
    let first = v.check(Some(&token), at(NOW)).unwrap();
    assert_eq!(v.check(Some(&token), at(NOW)).unwrap(), first);
    assert_eq!(first.jti, "p");
    assert_eq!(first.exp, (NOW + 900) as i64);
    assert_eq!(first.remember_until, (NOW + 930) as i64);
    let mut t = ReplayTable::default();
    first.spend(&mut t).unwrap();
    // Replayed up to the last second the token itself passes, and the same jti in a
    // token that has expired is refused as expired, never accepted.
    let last = v.check(Some(&token), at(NOW + 930)).unwrap();
    assert_eq!(last.spend(&mut t).unwrap_err().code(), "token_replayed");
    assert_eq!(
        v.verify(Some(&token), at(NOW + 931), &mut t)
            .unwrap_err()
            .code(),
        "token_expired"
    );
}

#[test]
fn error_texts_name_what_to_fix() {
    let cases = [
        (TokenError::MissingToken, "Authorization: Bearer"),
        (TokenError::MissingClaim("jti"), "`jti`"),
        (
            TokenError::Expired {
                exp: 10,
                now: 50,
                leeway: 30,
            },
            "expired at 10",
        ),
        (TokenError::Replayed("j\"1".into()), r#""j\"1""#),
        (TokenError::TooManyTokens(5), "5 unexpired"),
    ];
    for (e, needle) in cases {
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn fuzz_entry_survives_hostile_inputs() {
    let k = &keys()[0];
    let mut c = claims("z");
    c["application_id"] = callmux_token::fuzzing::FUZZ_APPLICATION_ID.into();
    let inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"Bearer".to_vec(),
        b"Bearer ...".to_vec(),
        vec![0xff, 0xfe, b'.', b'.'],
        sign(k, "RS256", &c).into_bytes(),
        c.to_string().into_bytes(),
        br#"{"application_id":"fuzz-app","iat":-9223372036854775808,"exp":9223372036854775807,"jti":"x"}"#.to_vec(),
        br#"{"application_id":"fuzz-app","iat":1e308,"exp":-1e308,"nbf":1e999,"jti":"x"}"#.to_vec(),
        include_bytes!("data/application.pub").to_vec(),
        b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----".to_vec(),
    ];
    for i in inputs {
        callmux_token::fuzzing::verify_token(&i);
    }
}
