//! INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2).
//!
//! ```text
//!  Calling --1xx--> Proceeding          (Timer A retransmits on UDP: T1, 2T1, 4T1 ...;
//!  Calling/Proceeding --2xx--> Accepted  Timer B = 64·T1 gives up while Calling)
//!  Calling/Proceeding --3xx-6xx--> Completed (ACK sent here, same branch; Timer D)
//! ```
//! Every 2xx, including retransmissions and forked answers, is passed up in Accepted (until
//! Timer M = 64·T1) so that the UAC core can ACK each one. Proceeding has no RFC timer; a
//! configurable guard (like a proxy's Timer C) ends calls that ring forever.

use std::time::{Duration, Instant};

use super::non_invite_client::ClientOutput;
use super::{due, earliest, TimerConfig};
use crate::headers::same_name;
use crate::message::{Request, Response};
use crate::method::Method;

/// States of the INVITE client transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteClientState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// Non-2xx final received and ACKed; absorbing retransmissions until Timer D.
    Completed,
    /// 2xx received; passing further 2xx up until Timer M.
    Accepted,
    /// Done; the owner removes it.
    Terminated,
}

/// What to do with a response that matched this transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseAction {
    /// Report the response to the application.
    pub pass_up: bool,
    /// Bytes to send to the same destination (the ACK for a non-2xx).
    pub transmit: Option<Vec<u8>>,
}

/// INVITE client transaction.
#[derive(Debug, Clone)]
pub struct InviteClientTx {
    state: InviteClientState,
    timers: TimerConfig,
    reliable: bool,
    invite: Request,
    bytes: Vec<u8>,
    ack: Option<Vec<u8>>,
    retransmit_at: Option<Instant>,
    interval: Duration,
    timeout_at: Option<Instant>,
    end_at: Option<Instant>,
    proceeding_timeout: Option<Duration>,
}

impl InviteClientTx {
    /// A transaction for `invite` (already carrying its Via) sent at `now` as `bytes`.
    pub fn new(
        now: Instant,
        timers: TimerConfig,
        reliable: bool,
        invite: Request,
        bytes: Vec<u8>,
        proceeding_timeout: Option<Duration>,
    ) -> Self {
        Self {
            state: InviteClientState::Calling,
            timers,
            reliable,
            invite,
            bytes,
            ack: None,
            retransmit_at: (!reliable).then(|| now + timers.t1),
            interval: timers.t1,
            timeout_at: Some(now + timers.timeout()),
            end_at: None,
            proceeding_timeout,
        }
    }

    /// Current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// The INVITE this transaction sent.
    pub fn request(&self) -> &Request {
        &self.invite
    }

    /// True once the transaction can be dropped.
    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    /// Gives up at `at` unless a final response arrives first (RFC 3261 §9.1: 64·T1 after
    /// a CANCEL). Only shortens an existing deadline.
    pub fn expire_at(&mut self, at: Instant) {
        if matches!(
            self.state,
            InviteClientState::Calling | InviteClientState::Proceeding
        ) {
            self.timeout_at = Some(self.timeout_at.map_or(at, |t| t.min(at)));
        }
    }

    /// A response matching this transaction arrived.
    pub fn on_response(&mut self, now: Instant, response: &Response) -> ResponseAction {
        let none = ResponseAction {
            pass_up: false,
            transmit: None,
        };
        match self.state {
            InviteClientState::Calling | InviteClientState::Proceeding => match response.status {
                100..=199 => {
                    self.state = InviteClientState::Proceeding;
                    self.retransmit_at = None;
                    self.timeout_at = self.proceeding_timeout.map(|d| now + d);
                    ResponseAction {
                        pass_up: true,
                        transmit: None,
                    }
                }
                200..=299 => {
                    self.state = InviteClientState::Accepted;
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    self.end_at = Some(now + self.timers.timeout());
                    ResponseAction {
                        pass_up: true,
                        transmit: None,
                    }
                }
                _ => {
                    let ack = build_ack(&self.invite, response).to_bytes();
                    self.ack = Some(ack.clone());
                    self.retransmit_at = None;
                    self.timeout_at = None;
                    if self.reliable {
                        self.state = InviteClientState::Terminated;
                    } else {
                        self.state = InviteClientState::Completed;
                        self.end_at = Some(now + self.timers.timeout());
                    }
                    ResponseAction {
                        pass_up: true,
                        transmit: Some(ack),
                    }
                }
            },
            InviteClientState::Completed if response.status >= 300 => ResponseAction {
                pass_up: false,
                transmit: self.ack.clone(),
            },
            InviteClientState::Accepted if response.is_success() => ResponseAction {
                pass_up: true,
                transmit: None,
            },
            _ => none,
        }
    }

    /// Earliest pending deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_terminated() {
            return None;
        }
        earliest([self.retransmit_at, self.timeout_at, self.end_at])
    }

    /// Fires every timer that is due.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<ClientOutput> {
        let mut out = Vec::new();
        match self.state {
            InviteClientState::Calling | InviteClientState::Proceeding => {
                if due(self.timeout_at, now) {
                    self.terminate();
                    out.push(ClientOutput::Timeout);
                    out.push(ClientOutput::Terminated);
                } else if due(self.retransmit_at, now) {
                    out.push(ClientOutput::Retransmit(self.bytes.clone()));
                    self.interval = self.interval.saturating_mul(2);
                    self.retransmit_at = Some(now + self.interval);
                }
            }
            InviteClientState::Completed | InviteClientState::Accepted => {
                if due(self.end_at, now) {
                    self.terminate();
                    out.push(ClientOutput::Terminated);
                }
            }
            InviteClientState::Terminated => {}
        }
        out
    }

    fn terminate(&mut self) {
        self.state = InviteClientState::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.end_at = None;
    }
}

/// The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, top Via
/// (so the same branch), From, Call-ID and Route as the INVITE, To from the response, CSeq
/// number of the INVITE with method ACK.
pub fn build_ack(invite: &Request, response: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get("Via") {
        let top = crate::lex::split_list(via)
            .into_iter()
            .next()
            .unwrap_or(via);
        ack.headers.push("Via", top);
    }
    ack.headers.push("Max-Forwards", "70");
    for h in &invite.headers {
        if same_name(&h.name, "From") || same_name(&h.name, "Call-ID") {
            ack.headers.push(h.name.clone(), h.value.clone());
        }
    }
    if let Some(to) = response
        .headers
        .get("To")
        .or_else(|| invite.headers.get("To"))
    {
        ack.headers.push("To", to);
    }
    let seq = invite.cseq().map(|c| c.seq).unwrap_or(0);
    ack.headers.push("CSeq", format!("{seq} ACK"));
    for route in invite.headers.get_all("Route") {
        ack.headers.push("Route", route);
    }
    ack
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn invite() -> Request {
        let raw = b"INVITE sip:bob@b SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKx\r\nRoute: <sip:p;lr>\r\nFrom: <sip:a@a>;tag=f\r\nTo: <sip:bob@b>\r\nCall-ID: c\r\nCSeq: 5 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match Message::parse(raw).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn response(status: u16) -> Response {
        invite().make_response(status, "x").with_to_tag("tt")
    }

    #[test]
    fn timer_a_doubles_without_cap_and_timer_b_fires() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(
            t0,
            TimerConfig::default(),
            false,
            invite(),
            b"INV".to_vec(),
            None,
        );
        let mut times = Vec::new();
        let mut timeout = None;
        while let Some(t) = tx.poll_timeout() {
            for o in tx.handle_timeout(t) {
                match o {
                    ClientOutput::Retransmit(_) => times.push((t - t0).as_millis()),
                    ClientOutput::Timeout => timeout = Some((t - t0).as_millis()),
                    ClientOutput::Terminated => {}
                }
            }
        }
        assert_eq!(times, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timeout, Some(32000));
    }

    #[test]
    fn reliable_never_retransmits() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(
            t0,
            TimerConfig::default(),
            true,
            invite(),
            b"INV".to_vec(),
            None,
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(32)),
            vec![ClientOutput::Timeout, ClientOutput::Terminated]
        );
    }

    #[test]
    fn non_2xx_is_acked_with_same_branch_and_absorbed_after() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(
            t0,
            TimerConfig::default(),
            false,
            invite(),
            b"INV".to_vec(),
            None,
        );
        let a = tx.on_response(t0, &response(180));
        assert!(a.pass_up && a.transmit.is_none());
        let a = tx.on_response(t0, &response(486));
        assert!(a.pass_up);
        let ack = Message::parse(&a.transmit.clone().unwrap()).unwrap();
        let Message::Request(ack) = ack else { panic!() };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.top_via().unwrap().branch.as_deref(), Some("z9hG4bKx"));
        assert_eq!(ack.to().unwrap().tag(), Some("tt"));
        assert_eq!(ack.cseq().unwrap().seq, 5);
        assert_eq!(ack.routes().unwrap().len(), 1);
        let again = tx.on_response(t0, &response(486));
        assert!(!again.pass_up);
        assert_eq!(again.transmit, a.transmit);
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(32)),
            vec![ClientOutput::Terminated]
        );
    }

    #[test]
    fn every_2xx_is_passed_up_and_proceeding_guard() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(
            t0,
            TimerConfig::default(),
            false,
            invite(),
            b"INV".to_vec(),
            Some(Duration::from_secs(180)),
        );
        tx.on_response(t0, &response(183));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(180)));
        tx.expire_at(t0 + Duration::from_secs(10));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(10)));
        assert!(tx.on_response(t0, &response(200)).pass_up);
        assert!(tx.on_response(t0, &response(200)).pass_up);
        assert!(!tx.on_response(t0, &response(180)).pass_up);
        assert_eq!(tx.state(), InviteClientState::Accepted);
        assert_eq!(
            tx.handle_timeout(t0 + Duration::from_secs(32)),
            vec![ClientOutput::Terminated]
        );
    }
}
