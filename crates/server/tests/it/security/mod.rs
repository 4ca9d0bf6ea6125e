//! Issue 7 end to end, through the real binary: the recordings HTTP API (JWT downloads,
//! ranges, listing, deletion), retention, SIP source ACLs, digest authentication, the call
//! and INVITE rate limits, RTP latching against a second sender, SIP over TLS, and
//! sipvicious scans.

mod api;
mod retention;
mod sip;
mod sipvicious;
mod tls;
mod uac;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use sha2::Sha256;

/// A file under tests/data.
pub(crate) fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// The application id the test servers are configured with.
pub(crate) const APP_ID: &str = "aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab";

/// Seconds since the epoch, now.
pub(crate) fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An RS256 JWT over `claims`, signed with the PEM private key at `key` (made here, with
/// the `rsa` crate, not with the verifier's library).
pub(crate) fn jwt_with(key: &Path, claims: &serde_json::Value) -> String {
    let pem = std::fs::read_to_string(key).unwrap();
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let sig = SigningKey::<Sha256>::new(key).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// Claims the server accepts: this application, issued now, valid 15 minutes, a fresh jti.
pub(crate) fn good_claims() -> serde_json::Value {
    serde_json::json!({
        "application_id": APP_ID,
        "iat": now_s(),
        "exp": now_s() + 900,
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// A fresh valid token.
pub(crate) fn token() -> String {
    jwt_with(&data("jwt/application.key"), &good_claims())
}

/// `--application-id … --application-key …` (the private key: its public half is used).
pub(crate) fn api_args(key_file: &str) -> Vec<String> {
    vec![
        "--application-id".into(),
        APP_ID.into(),
        "--application-key".into(),
        data(key_file).display().to_string(),
    ]
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{}: body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` code of a JSON error body.
    pub(crate) fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One HTTP/1.1 request with `Connection: close`; handles chunked bodies.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpAnswer {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
}

/// `GET path` with a fresh valid token.
pub(crate) fn get_authed(addr: SocketAddr, path: &str) -> HttpAnswer {
    let auth = format!("Bearer {}", token());
    request(addr, "GET", path, &[("Authorization", &auth)])
}

/// A config file in `dir` with `text`, and the `--config` arguments naming it.
pub(crate) fn config_args(dir: &Path, text: &str) -> Vec<String> {
    let p = dir.join(format!("callmux-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&p, text).unwrap();
    vec!["--config".into(), p.display().to_string()]
}

/// `callmux serve ARGS…` on `ip` with its recordings and data under `dir`: the command for
/// tests of settings the server must refuse at start.
pub(crate) fn serve_at<S: AsRef<OsStr>>(ip: IpAddr, dir: &Path, args: &[S]) -> Command {
    let mut cmd = Command::new(crate::common::bin());
    cmd.arg("serve")
        .arg("--sip")
        .arg(format!("{ip}:5060"))
        .arg("--http")
        .arg(format!("{ip}:8080"))
        .arg("--recordings")
        .arg(dir.join("rec"))
        .arg("--data")
        .arg(dir.join("data"))
        .args(args);
    cmd
}
