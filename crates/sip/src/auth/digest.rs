//! The digest computations themselves (RFC 2617 §3.2.2, RFC 7616 §3.4).

use md5::Md5;
use sha2::{Digest, Sha256};

use super::{Algorithm, AuthError, Challenge, Credentials};

/// Lowercase hex of the algorithm's hash of `data`.
pub fn hash_hex(algorithm: Algorithm, data: &str) -> String {
    match algorithm {
        Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
        Algorithm::Sha256 | Algorithm::Sha256Sess => hex::encode(Sha256::digest(data.as_bytes())),
    }
}

/// HA1 = H(username:realm:password), and for `-sess` H(that:nonce:cnonce).
pub fn ha1(
    algorithm: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
) -> String {
    let base = hash_hex(algorithm, &format!("{username}:{realm}:{password}"));
    session_ha1(algorithm, base, nonce, cnonce)
}

/// Applies the `-sess` step to a stored H(username:realm:password).
pub(super) fn session_ha1(algorithm: Algorithm, base: String, nonce: &str, cnonce: &str) -> String {
    if algorithm.is_session() {
        hash_hex(algorithm, &format!("{base}:{nonce}:{cnonce}"))
    } else {
        base
    }
}

/// The `response` value. `qop` is `(qop, nc as 8 hex digits, cnonce)` when the challenge
/// offered qop, `None` for the RFC 2069 form.
pub fn compute_response(
    algorithm: Algorithm,
    ha1: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = hash_hex(algorithm, &format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => hash_hex(
            algorithm,
            &format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"),
        ),
        None => hash_hex(algorithm, &format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Credentials answering `challenge` for a request with `method` to `uri` (a UAC retry
/// after 401/407). `cnonce` should come from a random source (`Endpoint::new_tag`); `nc`
/// counts uses of this nonce, starting at 1.
pub fn authorize(
    challenge: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<Credentials, AuthError> {
    let qop = if challenge.qop.is_empty() {
        None
    } else if challenge.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        Some("auth")
    } else {
        return Err(AuthError::UnsupportedQop);
    };
    let alg = challenge.algorithm;
    let nc_text = format!("{nc:08x}");
    let h1 = ha1(
        alg,
        username,
        &challenge.realm,
        password,
        &challenge.nonce,
        cnonce,
    );
    let response = compute_response(
        alg,
        &h1,
        &challenge.nonce,
        method,
        uri,
        qop.map(|q| (q, nc_text.as_str(), cnonce)),
    );
    Ok(Credentials {
        username: username.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: uri.to_owned(),
        response,
        algorithm: alg,
        cnonce: qop.map(|_| cnonce.to_owned()),
        nc: qop.map(|_| nc),
        qop: qop.map(str::to_owned),
        opaque: challenge.opaque.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_section_3_5() {
        let h1 = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "",
            "",
        );
        assert_eq!(h1, "939e7578ed9e3c518a452acee763bce9");
        let r = compute_response(
            Algorithm::Md5,
            &h1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "GET",
            "/dir/index.html",
            Some(("auth", "00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn rfc7616_section_3_9_1() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let challenge = Challenge {
                realm: "http-auth@example.org".into(),
                nonce: nonce.into(),
                algorithm: alg,
                qop: vec!["auth".into(), "auth-int".into()],
                opaque: Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS".into()),
                stale: false,
                domain: None,
            };
            let c = authorize(
                &challenge,
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                cnonce,
                1,
            )
            .unwrap();
            assert_eq!(c.response, expected, "{alg}");
            assert_eq!(c.nc, Some(1));
            assert_eq!(c.opaque, challenge.opaque);
        }
    }

    #[test]
    fn no_qop_and_unsupported_qop() {
        let mut ch = Challenge {
            realm: "r".into(),
            nonce: "n".into(),
            algorithm: Algorithm::Md5,
            qop: vec![],
            opaque: None,
            stale: false,
            domain: None,
        };
        let c = authorize(&ch, "u", "p", "INVITE", "sip:x", "c", 1).unwrap();
        let h1 = hash_hex(Algorithm::Md5, "u:r:p");
        let ha2 = hash_hex(Algorithm::Md5, "INVITE:sip:x");
        assert_eq!(
            c.response,
            hash_hex(Algorithm::Md5, &format!("{h1}:n:{ha2}"))
        );
        assert_eq!(c.qop, None);
        ch.qop = vec!["auth-int".into()];
        assert_eq!(
            authorize(&ch, "u", "p", "INVITE", "sip:x", "c", 1),
            Err(AuthError::UnsupportedQop)
        );
    }
}
