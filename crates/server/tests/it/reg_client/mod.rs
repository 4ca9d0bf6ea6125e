//! A raw REGISTER client over UDP for the registrar and NAT tests: each REGISTER is sent,
//! its 401 answered with digest credentials of the chosen algorithm, and the final
//! response returned as parsed by callmux-sip (so tests see exact Contact lists, statuses
//! and headers).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use callmux_sip::auth::{authorize, Algorithm, Challenge};
use callmux_sip::{Message, Response};

/// A phone's registration socket and dialog state (Call-ID, CSeq).
pub struct RegClient {
    pub socket: UdpSocket,
    pub server: SocketAddr,
    pub user: String,
    pub password: String,
    pub call_id: String,
    pub cseq: u32,
}

impl RegClient {
    /// A client bound to `local` registering `user` at `server`.
    pub fn new(local: SocketAddr, server: SocketAddr, user: &str, password: &str) -> Self {
        let socket = UdpSocket::bind(local).expect("bind REGISTER client");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            socket,
            server,
            user: user.into(),
            password: password.into(),
            call_id: format!("reg-{}", uuid_like()),
            cseq: 0,
        }
    }

    /// This client's address.
    pub fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn request(
        &mut self,
        contact: Option<&str>,
        expires: Option<u32>,
        auth: Option<&str>,
    ) -> String {
        self.cseq += 1;
        let local = self.local();
        let mut s = format!(
            "REGISTER sip:{srv} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{cid}-{cseq};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{srv_ip}>;tag=t{cseq}\r\n\
             To: <sip:{user}@{srv_ip}>\r\n\
             Call-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\n",
            srv = self.server,
            srv_ip = self.server.ip(),
            user = self.user,
            cid = self.call_id,
            cseq = self.cseq,
        );
        if let Some(c) = contact {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        if let Some(a) = auth {
            s.push_str(&format!("Authorization: {a}\r\n"));
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }

    /// Sends one request and waits (≤ 5 s) for its final response.
    fn exchange(&self, text: &str) -> Response {
        self.socket.send_to(text.as_bytes(), self.server).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 8192];
        let mut last_send = Instant::now();
        while Instant::now() < deadline {
            if let Ok((n, _)) = self.socket.recv_from(&mut buf) {
                if let Ok(Message::Response(r)) = Message::parse(&buf[..n]) {
                    if r.status >= 200 {
                        return r;
                    }
                }
            } else if last_send.elapsed() > Duration::from_millis(500) {
                self.socket.send_to(text.as_bytes(), self.server).unwrap();
                last_send = Instant::now();
            }
        }
        panic!("no final response to\n{text}");
    }

    /// REGISTER; answers one 401 with credentials for `alg` (and `password`, which may be
    /// wrong on purpose). Returns the final response.
    pub fn register_as(
        &mut self,
        contact: Option<&str>,
        expires: Option<u32>,
        alg: Algorithm,
        password: &str,
    ) -> Response {
        let first = self.request(contact, expires, None);
        let r = self.exchange(&first);
        if r.status != 401 {
            return r;
        }
        let challenge = r
            .headers
            .get_all("WWW-Authenticate")
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm == alg)
            .unwrap_or_else(|| panic!("no {alg} challenge in {r:?}"));
        let uri = format!("sip:{}", self.server);
        let creds = authorize(
            &challenge, &self.user, password, "REGISTER", &uri, "0a4f113b", 1,
        )
        .unwrap();
        let second = self.request(contact, expires, Some(&creds.to_string()));
        self.exchange(&second)
    }

    /// [`Self::register_as`] with MD5 and the right password.
    pub fn register(&mut self, contact: Option<&str>, expires: Option<u32>) -> Response {
        let pw = self.password.clone();
        self.register_as(contact, expires, Algorithm::Md5, &pw)
    }

    /// The bindings the registrar reports (a REGISTER without Contact): Contact values.
    pub fn query(&mut self) -> Vec<String> {
        let r = self.register(None, None);
        assert_eq!(r.status, 200, "query: {r:?}");
        contacts(&r)
    }
}

/// The Contact values of a response, one per binding.
pub fn contacts(r: &Response) -> Vec<String> {
    r.headers
        .contacts()
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn uuid_like() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{n:x}-{}", std::process::id())
}
