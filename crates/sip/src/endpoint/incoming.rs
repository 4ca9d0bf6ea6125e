//! Everything that arrives from the network: parse, stamp, match to a transaction, answer
//! automatically where the RFC allows, or raise an event.

use std::panic::catch_unwind;
use std::time::Instant;

use super::routing::{replace_top_via, response_destination, server_key, stamp_via};
use super::{ClientMachine, ClientTx, Endpoint, Event, Peer, ServerMachine, ServerTx, ServerTxKey};
use crate::headers::{NameAddr, Via};
use crate::lex;
use crate::message::{
    default_reason, Message, ParseError, ParseErrorKind, Request, Response, ResponseContext,
};
use crate::method::Method;
use crate::transaction::invite_server::{AckAction, InviteServerTx, RetransmissionAction};
use crate::transaction::non_invite_server::NonInviteServerTx;
use crate::uri::Scheme;

/// A final answer the endpoint gives by itself, with extra headers.
type AutoReply = (u16, Vec<(&'static str, String)>);

impl Endpoint {
    /// Feeds one datagram, or one complete message cut from a stream by
    /// [`crate::framing::StreamFramer`]. Never panics, whatever the bytes.
    pub fn handle_input(&mut self, now: Instant, peer: Peer, bytes: &[u8]) {
        if !bytes.is_empty() && bytes.iter().all(|&b| b == b'\r' || b == b'\n') {
            self.stats.keepalives += 1;
            return;
        }
        let limits = self.config.limits;
        let parsed =
            catch_unwind(|| Message::parse_with_limits(bytes, &limits)).unwrap_or_else(|_| {
                Err(ParseError::new(
                    ParseErrorKind::Internal,
                    bytes,
                    limits.max_header_line,
                ))
            });
        match parsed {
            Err(e) => self.on_malformed(peer, &e),
            Ok(Message::Request(r)) => self.on_request(now, peer, r),
            Ok(Message::Response(r)) => self.on_response(now, peer, r),
        }
    }

    fn on_malformed(&mut self, peer: Peer, error: &ParseError) {
        let answered = error
            .response_context()
            .is_some_and(|ctx| self.reply_malformed(&peer, error, ctx));
        if answered {
            self.stats.malformed_answered += 1;
        } else {
            self.stats.malformed_dropped += 1;
        }
        self.events.push_back(Event::Malformed {
            peer,
            reason: error.reason(),
            answered,
        });
    }

    /// Builds the 400/505/513 from the raw headers; false when it cannot be routed.
    fn reply_malformed(&mut self, peer: &Peer, error: &ParseError, ctx: &ResponseContext) -> bool {
        let Some(top) = ctx
            .vias
            .first()
            .and_then(|l| lex::split_list(l).into_iter().next())
        else {
            return false;
        };
        let Ok(mut via) = Via::parse(top) else {
            return false;
        };
        stamp_via(&mut via, peer);
        let dest = response_destination(&via, peer);
        let status = error.status_code();
        let mut resp = Response::new(status, default_reason(status));
        for v in &ctx.vias {
            resp.headers.push("Via", v.clone());
        }
        resp.headers.push("From", ctx.from.clone());
        let to_has_tag = NameAddr::parse(&ctx.to).is_ok_and(|t| t.tag().is_some());
        let to = if to_has_tag {
            ctx.to.clone()
        } else {
            format!("{};tag={}", ctx.to, self.new_tag())
        };
        resp.headers.push("To", to);
        resp.headers.push("Call-ID", ctx.call_id.clone());
        resp.headers.push("CSeq", ctx.cseq.clone());
        resp.headers
            .push("Warning", format!("399 callmux \"{}\"", error.reason()));
        if !self.config.user_agent.is_empty() {
            resp.headers.push("Server", self.config.user_agent.clone());
        }
        self.transmit(dest, resp.to_bytes());
        true
    }

    fn on_request(&mut self, now: Instant, peer: Peer, mut request: Request) {
        self.stats.requests += 1;
        let Ok(mut via) = request.top_via() else {
            // The parser guarantees a valid top Via; treat a surprise as malformed input.
            self.stats.malformed_dropped += 1;
            return;
        };
        let key = server_key(&request, &via);
        if stamp_via(&mut via, &peer) {
            replace_top_via(&mut request.headers, &via);
        }
        let reply_to = response_destination(&via, &peer);
        if request.method == Method::Ack {
            self.on_ack(now, peer, request, &key);
            return;
        }
        if let Some(&id) = self.server_keys.get(&key) {
            self.on_retransmitted_request(now, id);
            return;
        }
        let reject = self.precheck(&request);
        let is_invite = request.method == Method::Invite;
        let immediate_trying = is_invite && reject.is_none() && self.config.trying_delay.is_zero();
        let machine = if is_invite {
            let delay = (reject.is_none() && !immediate_trying).then_some(self.config.trying_delay);
            ServerMachine::Invite(InviteServerTx::new(
                now,
                self.config.timers,
                peer.transport.is_reliable(),
                delay,
            ))
        } else {
            ServerMachine::NonInvite(NonInviteServerTx::new(
                self.config.timers,
                peer.transport.is_reliable(),
            ))
        };
        let id = self.alloc_id();
        self.server_keys.insert(key.clone(), id);
        self.server.insert(
            id,
            ServerTx {
                key: key.clone(),
                request: request.clone(),
                reply_to,
                to_tag: None,
                accepted_tag: None,
                machine,
            },
        );
        if let Some((status, extra)) = reject {
            self.reply_auto(now, id, status, extra);
            return;
        }
        match request.method {
            Method::Cancel => self.on_cancel(now, id, &key, request),
            Method::Options if self.config.auto_options => {
                let extra = vec![
                    ("Allow", self.allow_value()),
                    ("Accept", "application/sdp".to_owned()),
                ];
                self.reply_auto(now, id, 200, extra);
            }
            _ => {
                if immediate_trying {
                    self.send_trying(now, id);
                }
                self.refresh_timer(id);
                self.events
                    .push_back(Event::IncomingRequest { key, request, peer });
            }
        }
    }

    pub(super) fn allow_value(&self) -> String {
        self.config
            .allowed_methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Checks that end a request before the application sees it (RFC 3261 §8.2.1–8.2.2,
    /// §16.3 step 3): 483, 405/501, 416, 420, in that order.
    fn precheck(&self, request: &Request) -> Option<AutoReply> {
        if request.max_forwards().ok().flatten() == Some(0) && request.method != Method::Cancel {
            return Some((483, Vec::new()));
        }
        let allowed = matches!(request.method, Method::Cancel)
            || self.config.allowed_methods.contains(&request.method);
        if !allowed {
            let status = if matches!(request.method, Method::Other(_)) {
                501
            } else {
                405
            };
            return Some((status, vec![("Allow", self.allow_value())]));
        }
        if matches!(request.uri.scheme, Scheme::Other(_)) {
            return Some((416, Vec::new()));
        }
        if request.method != Method::Cancel {
            let unsupported: Vec<String> = request
                .headers
                .option_tags("Require")
                .into_iter()
                .filter(|t| {
                    !self
                        .config
                        .supported_extensions
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(t))
                })
                .collect();
            if !unsupported.is_empty() {
                return Some((420, vec![("Unsupported", unsupported.join(", "))]));
            }
        }
        None
    }

    fn on_retransmitted_request(&mut self, now: Instant, id: u64) {
        self.stats.retransmissions_absorbed += 1;
        let Some(tx) = self.server.get_mut(&id) else {
            return;
        };
        let dest = tx.reply_to.clone();
        let action = match &mut tx.machine {
            ServerMachine::Invite(m) => m.on_retransmission(),
            ServerMachine::NonInvite(m) => match m.on_retransmission() {
                Some(b) => RetransmissionAction::Resend(b),
                None => RetransmissionAction::Absorb,
            },
        };
        match action {
            RetransmissionAction::Resend(bytes) => {
                self.stats.retransmissions_sent += 1;
                self.transmit(dest, bytes);
            }
            RetransmissionAction::SendTrying => self.send_trying(now, id),
            RetransmissionAction::Absorb => {}
        }
        self.settle(id);
    }

    fn on_ack(&mut self, now: Instant, peer: Peer, request: Request, key: &ServerTxKey) {
        // ACK for a non-2xx shares the INVITE's branch.
        let by_branch = self.server_keys.get(key).copied();
        let id = match by_branch {
            Some(id) => Some(id),
            None => {
                let call_id = request.call_id().unwrap_or("").to_owned();
                let seq = request.cseq().map(|c| c.seq).unwrap_or(0);
                let to_tag = request.to().ok().and_then(|t| t.tag().map(str::to_owned));
                self.accepted.get(&(call_id, seq)).copied().filter(|id| {
                    self.server
                        .get(id)
                        .is_some_and(|tx| tx.accepted_tag.is_none() || tx.accepted_tag == to_tag)
                })
            }
        };
        let Some(id) = id else {
            self.stats.stray_acks += 1;
            return;
        };
        let action = match self.server.get_mut(&id).map(|tx| &mut tx.machine) {
            Some(ServerMachine::Invite(m)) => m.on_ack(now),
            _ => AckAction::Unexpected,
        };
        match action {
            AckAction::AcceptedAck => self.events.push_back(Event::AckReceived { request, peer }),
            AckAction::Absorbed if by_branch.is_none() => self.stats.retransmissions_absorbed += 1,
            AckAction::Absorbed => {}
            AckAction::Unexpected => self.stats.stray_acks += 1,
        }
        self.settle(id);
    }

    fn on_cancel(&mut self, now: Instant, cancel_id: u64, key: &ServerTxKey, cancel: Request) {
        let invite_key = ServerTxKey {
            method: Method::Invite,
            ..key.clone()
        };
        let Some(&invite_id) = self.server_keys.get(&invite_key) else {
            self.reply_auto(now, cancel_id, 481, Vec::new());
            return;
        };
        // RFC 3261 §9.2: the 200 to CANCEL carries the same To tag as the INVITE's answer.
        let tag = self.tx_to_tag(invite_id);
        if let Some(tx) = self.server.get_mut(&cancel_id) {
            tx.to_tag = Some(tag);
        }
        self.reply_auto(now, cancel_id, 200, Vec::new());
        let pending = matches!(
            self.server.get(&invite_id).map(|tx| &tx.machine),
            Some(ServerMachine::Invite(m)) if m.state() == crate::transaction::invite_server::InviteServerState::Proceeding
        );
        if pending {
            self.reply_auto(now, invite_id, 487, Vec::new());
            self.events.push_back(Event::InviteCancelled {
                key: invite_key,
                cancel,
            });
        }
    }

    fn on_response(&mut self, now: Instant, peer: Peer, response: Response) {
        self.stats.responses += 1;
        let (Ok(vias), Ok(cseq)) = (response.vias(), response.cseq()) else {
            self.stats.stray_responses += 1;
            return;
        };
        // RFC 3261 §8.1.3.3: more than one Via means it was not meant for us.
        let branch = match vias.as_slice() {
            [only] => only.branch.clone(),
            _ => None,
        };
        let Some(branch) = branch else {
            self.stats.stray_responses += 1;
            return;
        };
        let key = super::ClientTxKey {
            branch,
            method: cseq.method,
        };
        let Some(&id) = self.client_keys.get(&key) else {
            self.stats.stray_responses += 1;
            return;
        };
        let Some(tx) = self.client.get_mut(&id) else {
            return;
        };
        let (pass_up, transmit) = match &mut tx.machine {
            ClientMachine::Invite(m) => {
                let a = m.on_response(now, &response);
                (a.pass_up, a.transmit)
            }
            ClientMachine::NonInvite(m) => (m.on_response(now, response.status), None),
        };
        let send_cancel = tx.cancel == super::CancelState::Pending && response.is_provisional();
        let ClientTx {
            peer: tx_peer,
            report,
            ..
        } = tx;
        let (tx_peer, report) = (tx_peer.clone(), *report);
        if let Some(bytes) = transmit {
            self.transmit(tx_peer, bytes);
        }
        if !pass_up {
            self.stats.retransmissions_absorbed += 1;
        } else if report {
            self.events.push_back(Event::ResponseReceived {
                key,
                response,
                peer,
            });
        }
        if send_cancel {
            self.send_cancel(now, id);
        }
        self.settle(id);
    }
}
