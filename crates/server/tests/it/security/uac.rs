//! A raw SIP UAC over UDP for the security tests: INVITE (with digest credentials when
//! asked), ACK, BYE, and RTP from any socket, written out byte by byte so that each test
//! controls exactly what goes on the wire (Call-IDs, sources, a second RTP sender).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use callmux_sip::auth::{authorize, Algorithm, Challenge};

/// A response as received.
#[derive(Debug, Clone)]
pub(crate) struct SipAnswer {
    pub(crate) status: u16,
    pub(crate) text: String,
}

impl SipAnswer {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(bytes).to_string();
        let status = text
            .strip_prefix("SIP/2.0 ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(Self { status, text })
    }

    /// Values of every header `name` (case-insensitive).
    pub(crate) fn headers(&self, name: &str) -> Vec<String> {
        let head = self.text.split("\r\n\r\n").next().unwrap_or_default();
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// The To header as sent back (with the server's tag).
    pub(crate) fn to(&self) -> String {
        self.header("To").expect("To")
    }

    /// The RTP address of the SDP answer.
    pub(crate) fn sdp_audio(&self) -> SocketAddr {
        let body = self.text.split("\r\n\r\n").nth(1).expect("SDP body");
        let ip: IpAddr = body
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .expect("c= line")
            .trim()
            .parse()
            .unwrap();
        let port: u16 = body
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|r| r.split_whitespace().next())
            .expect("m= line")
            .parse()
            .unwrap();
        SocketAddr::new(ip, port)
    }

    /// The digest challenge for `alg`.
    pub(crate) fn challenge(&self, alg: Algorithm) -> Challenge {
        self.headers("WWW-Authenticate")
            .iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .find(|c| c.algorithm == alg)
            .unwrap_or_else(|| panic!("no {alg} challenge in:\n{}", self.text))
    }
}

/// One dialog's worth of UAC state.
pub(crate) struct Uac {
    pub(crate) sip: UdpSocket,
    pub(crate) rtp: UdpSocket,
    pub(crate) server: SocketAddr,
    pub(crate) user: String,
    pub(crate) call_id: String,
    tag: String,
    cseq: u32,
    branch: String,
}

impl Uac {
    /// A UAC on `ip` (ephemeral SIP and RTP ports) calling `user` at `server`.
    pub(crate) fn new(ip: IpAddr, server: SocketAddr, user: &str) -> Self {
        let sip = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        sip.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        Self {
            sip,
            rtp,
            server,
            user: user.to_string(),
            call_id: format!("{}@test", uuid::Uuid::new_v4()),
            tag: uuid::Uuid::new_v4().simple().to_string(),
            cseq: 0,
            branch: String::new(),
        }
    }

    fn local(&self) -> SocketAddr {
        self.sip.local_addr().unwrap()
    }

    pub(crate) fn request_uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.server)
    }

    /// Sends an INVITE (a new transaction) and returns the final response, or None if
    /// nothing final arrives within `wait`.
    pub(crate) fn invite(
        &mut self,
        authorization: Option<&str>,
        wait: Duration,
    ) -> Option<SipAnswer> {
        self.cseq += 1;
        self.branch = format!("z9hG4bK{}", uuid::Uuid::new_v4().simple());
        let local = self.local();
        let rtp = self.rtp.local_addr().unwrap();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            ip = rtp.ip(),
            port = rtp.port()
        );
        let mut msg = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:tester@{lip}>;tag={tag}\r\nTo: <{uri}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} INVITE\r\nContact: <sip:tester@{local}>\r\n",
            uri = self.request_uri(),
            branch = self.branch,
            lip = local.ip(),
            tag = self.tag,
            cid = self.call_id,
            cseq = self.cseq,
        );
        if let Some(a) = authorization {
            msg.push_str(&format!("Authorization: {a}\r\n"));
        }
        msg.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            let Some(a) = SipAnswer::parse(&buf[..n]) else {
                continue;
            };
            let ours = a.header("Call-ID").as_deref() == Some(self.call_id.as_str())
                && a.header("CSeq")
                    .is_some_and(|c| c.starts_with(&format!("{} ", self.cseq)));
            if ours && a.status >= 200 {
                if a.status >= 300 {
                    self.ack(&a, false);
                }
                return Some(a);
            }
        }
        None
    }

    /// Sends the ACK for `response` (a 2xx gets its own transaction).
    pub(crate) fn ack(&self, response: &SipAnswer, success: bool) {
        let branch = if success {
            format!("z9hG4bK{}", uuid::Uuid::new_v4().simple())
        } else {
            self.branch.clone()
        };
        let local = self.local();
        let msg = format!(
            "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:tester@{lip}>;tag={tag}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = self.request_uri(),
            lip = local.ip(),
            tag = self.tag,
            to = response.to(),
            cid = self.call_id,
            cseq = self.cseq,
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
    }

    /// INVITE, then on 401 the same INVITE with credentials for `alg`; returns the final
    /// answer to the second INVITE (or the first, when it was not a 401).
    pub(crate) fn invite_with_auth(
        &mut self,
        alg: Algorithm,
        username: &str,
        password: &str,
    ) -> SipAnswer {
        let first = self
            .invite(None, Duration::from_secs(5))
            .expect("answer to the INVITE");
        if first.status != 401 {
            return first;
        }
        let ch = first.challenge(alg);
        let creds = authorize(
            &ch,
            username,
            password,
            "INVITE",
            &self.request_uri(),
            &uuid::Uuid::new_v4().simple().to_string(),
            1,
        )
        .unwrap();
        self.invite(Some(&creds.to_string()), Duration::from_secs(5))
            .expect("answer to the authenticated INVITE")
    }

    /// BYE in the dialog `ok` established; returns the BYE's final status.
    pub(crate) fn bye(&mut self, ok: &SipAnswer) -> Option<u16> {
        self.cseq += 1;
        let local = self.local();
        let msg = format!(
            "BYE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{b};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:tester@{lip}>;tag={tag}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n",
            uri = ok
                .header("Contact")
                .map(|c| c.trim_matches(|ch| ch == '<' || ch == '>').to_string())
                .unwrap_or_else(|| self.request_uri()),
            b = uuid::Uuid::new_v4().simple(),
            lip = local.ip(),
            tag = self.tag,
            to = ok.to(),
            cid = self.call_id,
            cseq = self.cseq,
        );
        self.sip.send_to(msg.as_bytes(), self.server).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.sip.recv_from(&mut buf) else {
                continue;
            };
            if let Some(a) = SipAnswer::parse(&buf[..n]) {
                if a.header("CSeq").is_some_and(|c| c.ends_with("BYE")) && a.status >= 200 {
                    return Some(a.status);
                }
            }
        }
        None
    }
}

/// An RTP sender of raw µ-law audio (PT 0, 20 ms packets).
pub(crate) struct RtpSender {
    pub(crate) ssrc: u32,
    seq: u16,
    ts: u32,
}

impl RtpSender {
    pub(crate) fn new(ssrc: u32) -> Self {
        Self {
            ssrc,
            seq: (ssrc & 0xffff) as u16,
            ts: ssrc.rotate_left(7),
        }
    }

    /// The next packet carrying `payload` (160 bytes = 20 ms).
    pub(crate) fn packet(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(12 + payload.len());
        p.push(0x80);
        p.push(0);
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        p
    }
}

/// Streams `ulaw` (8 kHz µ-law) from `sock` to `to` in real time, 20 ms per packet.
pub(crate) fn stream_ulaw(sock: &UdpSocket, to: SocketAddr, ulaw: &[u8], ssrc: u32) {
    let mut s = RtpSender::new(ssrc);
    let start = Instant::now();
    for (i, frame) in ulaw.chunks(160).enumerate() {
        let due = start + Duration::from_millis(20 * i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let _ = sock.send_to(&s.packet(frame), to);
    }
}
