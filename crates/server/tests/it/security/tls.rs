//! SIP over TLS: a SIPp call reaches the server's TLS listener and is recorded.
//!
//! Debian's SIPp (sip-tester 3.6) is built without TLS (`-t l1` answers "you must compile
//! SIPp with OpenSSL"), so SIPp talks TCP to a relay in this test, which carries the
//! connection over TLS to the server, checking the server's certificate (a self-signed one
//! made here with openssl) as a client would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// A self-signed certificate for `localhost` and `ip` (EC P-256), made with openssl.
fn make_cert(dir: &Path, ip: std::net::IpAddr) -> (PathBuf, PathBuf) {
    require_tool("openssl");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:localhost,IP:{ip}"))
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// A TLS client config trusting exactly `cert`.
fn client_config(cert: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Listens on `ip` (TCP) and relays each connection over TLS to `server`; returns the
/// listening address. The relay thread lives as long as the test process.
fn tls_relay(ip: std::net::IpAddr, server: SocketAddr, cert: &Path) -> SocketAddr {
    let config = client_config(cert);
    let listener = std::net::TcpListener::bind(SocketAddr::new(ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let connector = tokio_rustls::TlsConnector::from(config);
            loop {
                let Ok((mut plain, _)) = listener.accept().await else {
                    return;
                };
                let connector = connector.clone();
                tokio::spawn(async move {
                    let tcp = tokio::net::TcpStream::connect(server).await.unwrap();
                    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                    let mut tls = connector
                        .connect(name, tcp)
                        .await
                        .expect("TLS handshake with callmux (certificate verified)");
                    let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
                });
            }
        });
    });
    addr
}

#[test]
fn a_sipp_call_over_tls_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let ip = unique_ip();
    let (cert, key) = make_cert(dir.path(), ip);
    let tls_addr = SocketAddr::new(ip, 5061);
    let server = Server::start_in(
        Arc::new(tempfile::tempdir().unwrap()),
        ServerOptions {
            extra_args: vec![
                "--sip-tls".into(),
                tls_addr.to_string(),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ],
            ..Default::default()
        },
        Some(ip),
    );
    let relay = tls_relay(ip, tls_addr, &cert);
    // SIPp speaks TCP to the relay, which speaks TLS to the server.
    Sipp::tone_caller(1000, 3.0, 3000).run_ok_from(
        &server,
        ip,
        relay,
        &["-t", "t1", "-m", "1", "-s", "100"],
        Duration::from_secs(30),
    );
    super::sip::assert_tone_recorded(&server, 1);

    // Plain text on the TLS port is not SIP to the server: no SIP answer comes back.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(tls_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        !buf.starts_with(b"SIP/2.0"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
}

#[test]
fn tls_configuration_mistakes_exit_with_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let ip = unique_ip();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let (cert, _key) = make_cert(dir.path(), ip);
    for (args, key) in [
        (
            vec!["--sip-tls".to_string(), format!("{ip}:5061")],
            "sip.tls_listen",
        ),
        (
            vec![
                "--sip-tls".to_string(),
                format!("{ip}:5061"),
                "--tls-cert".into(),
                bogus.display().to_string(),
                "--tls-key".into(),
                bogus.display().to_string(),
            ],
            "sip.tls_cert",
        ),
        (
            vec![
                "--sip-tls".to_string(),
                format!("{ip}:5061"),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                bogus.display().to_string(),
            ],
            "sip.tls_key",
        ),
    ] {
        assert_exits_2_naming(
            super::serve_at(ip, dir.path(), &args),
            key,
            &format!("{args:?}"),
        );
    }
}
