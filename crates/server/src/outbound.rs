//! An outbound leg placed by `connect`: INVITE with our SDP offer, digest authentication on
//! 401/407, the ringing time-out (CANCEL), the callee's final answer mapped to the hosted
//! API's call statuses, and the leg's end (BYE either way). The leg belongs to the call task
//! that placed it; SIP goes through the SIP task like every other message.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callmux_media::{
    accept_answer, offer, CodecPreferences, Negotiated, PortPool, SdpOrigin, SessionDescription,
};
use callmux_sip::auth::{authorize, Challenge};
use callmux_sip::{ClientTxKey, Dialog, Method, Peer, Request, Response, ServerTxKey, Uri};
use tokio::net::UdpSocket;
use tracing::{debug, info};

use crate::media_leg::{bind_rtp, MediaLeg, PortLease};
use crate::sip_task::{CallInput, SipCommand, SipHandle};

mod fork;
pub(crate) use fork::ForkedLeg;

/// How a leg ended (or did not start), in the hosted API's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegOutcome {
    /// It was answered and has now ended (BYE either way).
    Completed,
    /// 486 Busy Here / 600 Busy Everywhere.
    Busy,
    /// 403 / 603 Decline.
    Rejected,
    /// Our ringing time-out passed (we sent CANCEL), or 408.
    Timeout,
    /// 480 Temporarily Unavailable, 404/410 (nobody there to answer).
    Unanswered,
    /// We cancelled it (the caller hung up while it rang).
    Cancelled,
    /// Anything else: status (if a response came) and reason.
    Failed { status: Option<u16>, reason: String },
}

impl LegOutcome {
    /// The hosted API's `status` value for the leg's final event.
    pub(crate) fn status(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Busy => "busy",
            Self::Rejected => "rejected",
            Self::Timeout => "timeout",
            Self::Unanswered => "unanswered",
            Self::Cancelled => "cancelled",
            Self::Failed { .. } => "failed",
        }
    }

    /// Maps a final non-2xx response.
    fn from_response(r: &Response) -> Self {
        match r.status {
            486 | 600 => Self::Busy,
            403 | 603 => Self::Rejected,
            408 => Self::Timeout,
            404 | 410 | 480 => Self::Unanswered,
            s => Self::Failed {
                status: Some(s),
                reason: format!("{s} {}", r.reason),
            },
        }
    }
}

/// What a response or timer did to the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Nothing the call needs to act on.
    Nothing,
    /// 180/183: the callee is ringing.
    Ringing,
    /// 2xx with a usable SDP answer: bridge now.
    Answered,
    /// The leg is over.
    Ended(LegOutcome),
}

/// What to dial and how.
#[derive(Debug, Clone)]
pub(crate) struct OutboundParams {
    /// Request-URI.
    pub(crate) uri: Uri,
    /// From user (caller ID).
    pub(crate) from_user: String,
    /// Extra headers (`connect` sip endpoint `headers`, sent as `X-` headers).
    pub(crate) headers: Vec<(String, String)>,
    /// Digest credentials for 401/407.
    pub(crate) credentials: Option<(String, String)>,
    /// How long it may ring.
    pub(crate) ring_timeout: Duration,
    /// Our media address.
    pub(crate) media_ip: IpAddr,
    /// Codecs we offer, in order.
    pub(crate) codecs: CodecPreferences,
    /// Send to this address instead of the Request-URI's host (a registered phone behind
    /// NAT is reached where its REGISTER came from).
    pub(crate) target: Option<SocketAddr>,
    /// Use this Call-ID (the branches of a forked `connect` share one, as a forking
    /// proxy's do, so the call routes all their messages to the connect).
    pub(crate) call_id: Option<String>,
    /// Who the leg is to in events and the sidecar, when that is not the Request-URI's user
    /// (a registered phone's Contact user is not its user name).
    pub(crate) to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Ringing,
    Cancelling,
    Answered,
    Ending,
    Ended,
}

/// One outbound leg.
pub(crate) struct OutboundLeg {
    /// The leg's uuid (events, sidecar).
    pub(crate) uuid: String,
    /// Its own Call-ID (the call task routes messages by it).
    pub(crate) call_id: String,
    /// The number or URI dialled, for events (`to`).
    pub(crate) to: String,
    /// Caller ID used.
    pub(crate) from: String,
    params: OutboundParams,
    peer: Peer,
    invite: Request,
    key: ClientTxKey,
    state: State,
    dialog: Option<Dialog>,
    bye_key: Option<ClientTxKey>,
    rtp: Option<(UdpSocket, PortLease)>,
    negotiated: Option<Negotiated>,
    ring_deadline: Instant,
    /// Outcome decided before the final response arrived (time-out, cancel).
    pending_outcome: Option<LegOutcome>,
    auth_tries: u32,
    cseq: u32,
    /// When the callee answered.
    pub(crate) answered_at: Option<Instant>,
    /// When the INVITE went out.
    pub(crate) started_at: Instant,
}

impl OutboundLeg {
    /// Binds an RTP port, sends the INVITE and registers the leg's Call-ID with the SIP task
    /// (responses and requests come back on `inputs`).
    pub(crate) async fn start(
        sip: &SipHandle,
        inputs: &tokio::sync::mpsc::UnboundedSender<CallInput>,
        ports: &Arc<Mutex<PortPool>>,
        params: OutboundParams,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let host = params.uri.host.clone();
        let port = params.uri.port.unwrap_or(5060);
        let remote: SocketAddr = match params.target {
            Some(t) => t,
            None => tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
                .await
                .with_context(|| format!("cannot resolve {host}"))?
                .next()
                .with_context(|| format!("{host} has no address"))?,
        };
        if params.uri.params.get("transport").is_some_and(|t| {
            !t.value
                .as_deref()
                .is_some_and(|v| v.eq_ignore_ascii_case("udp"))
        }) {
            anyhow::bail!(
                "{}: only UDP is supported for outbound legs in this build",
                params.uri
            );
        }
        let (socket, lease) = bind_rtp(ports, params.media_ip)?;
        let local_rtp = socket.local_addr()?;
        let mut origin = SdpOrigin::new(seed);
        let sdp = offer(&params.codecs, local_rtp, &mut origin);
        let call_id = params
            .call_id
            .clone()
            .unwrap_or_else(|| format!("{:016x}@callmux", seed));
        let from_tag = format!("{:08x}", (seed >> 7) as u32);
        let local = sip.local;
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut invite = Request::new(Method::Invite, params.uri.clone());
        invite.headers.push(
            "From",
            format!(
                "<sip:{}@{}>;tag={from_tag}",
                params.from_user,
                crate::serve::host_port(params.media_ip, local.port())
                    .split(':')
                    .next()
                    .unwrap_or_default()
            ),
        );
        invite.headers.push("To", format!("<{}>", params.uri));
        invite.headers.push("Call-ID", call_id.clone());
        invite.headers.push("CSeq", "1 INVITE");
        invite.headers.push(
            "Contact",
            format!(
                "<sip:callmux@{}>",
                crate::serve::host_port(params.media_ip, local.port())
            ),
        );
        invite.headers.push("Max-Forwards", "70");
        invite
            .headers
            .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
        for (name, value) in &params.headers {
            invite.headers.push(name.as_str(), value.as_str());
        }
        invite.set_body("application/sdp", sdp.into_bytes());
        sip.send(SipCommand::Register {
            call_id: call_id.clone(),
            inputs: inputs.clone(),
        });
        let peer = sip.udp_peer(remote);
        let key = sip.send_request(invite.clone(), peer.clone()).await?;
        let now = Instant::now();
        info!(leg = %uuid, to = %params.uri, %call_id, "outbound INVITE sent");
        Ok(Self {
            uuid,
            call_id,
            to: params.to.clone().unwrap_or_else(|| {
                params
                    .uri
                    .user
                    .clone()
                    .unwrap_or_else(|| params.uri.to_string())
            }),
            from: params.from_user.clone(),
            ring_deadline: now + params.ring_timeout,
            params,
            peer,
            invite,
            key,
            state: State::Calling,
            dialog: None,
            bye_key: None,
            rtp: Some((socket, lease)),
            negotiated: None,
            pending_outcome: None,
            auth_tries: 0,
            cseq: 1,
            answered_at: None,
            started_at: now,
        })
    }

    /// Whether a message with this Call-ID belongs to the leg.
    pub(crate) fn owns(&self, call_id: Option<&str>) -> bool {
        call_id == Some(self.call_id.as_str())
    }

    /// When the leg must be woken even without messages (ringing time-out).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        matches!(self.state, State::Calling | State::Ringing).then_some(self.ring_deadline)
    }

    /// The media of an answered leg (once).
    pub(crate) fn take_media(
        &mut self,
        reorder_delay: Duration,
        seed: u64,
    ) -> anyhow::Result<Option<MediaLeg>> {
        match (self.rtp.take(), self.negotiated) {
            (Some((socket, lease)), Some(n)) => {
                Ok(Some(MediaLeg::new(socket, lease, n, reorder_delay, seed)?))
            }
            (rtp, _) => {
                self.rtp = rtp;
                Ok(None)
            }
        }
    }

    /// Handles a response to one of the leg's requests.
    pub(crate) async fn on_response(
        &mut self,
        sip: &SipHandle,
        key: &ClientTxKey,
        r: &Response,
    ) -> Progress {
        if Some(key) == self.bye_key.as_ref() {
            if r.status >= 200 {
                return self.end(LegOutcome::Completed);
            }
            return Progress::Nothing;
        }
        if key != &self.key {
            return Progress::Nothing;
        }
        match r.status {
            100 => Progress::Nothing,
            101..=199 => {
                if self.state == State::Calling && matches!(r.status, 180 | 183) {
                    self.state = State::Ringing;
                    return Progress::Ringing;
                }
                Progress::Nothing
            }
            200..=299 => self.on_2xx(sip, r).await,
            401 | 407 if self.auth_tries == 0 && self.params.credentials.is_some() => {
                match self.retry_with_auth(sip, r).await {
                    Ok(()) => Progress::Nothing,
                    Err(e) => self.end(LegOutcome::Failed {
                        status: Some(r.status),
                        reason: format!("authentication failed: {e:#}"),
                    }),
                }
            }
            _ => {
                let outcome = self
                    .pending_outcome
                    .take()
                    .unwrap_or_else(|| LegOutcome::from_response(r));
                debug!(leg = %self.uuid, status = r.status, "outbound leg not answered");
                self.end(outcome)
            }
        }
    }

    async fn on_2xx(&mut self, sip: &SipHandle, r: &Response) -> Progress {
        // Every 2xx (retransmissions too) gets an ACK.
        let dialog = match &self.dialog {
            Some(d) => d.clone(),
            None => match Dialog::uac(&self.invite, r) {
                Ok(d) => d,
                Err(e) => {
                    return self.end(LegOutcome::Failed {
                        status: Some(r.status),
                        reason: format!("unusable 2xx: {e}"),
                    })
                }
            },
        };
        let ack = dialog.ack_for_2xx(&self.invite, r);
        sip.send(SipCommand::SendStateless {
            request: ack,
            peer: self.peer.clone(),
        });
        if self.dialog.is_some() {
            return Progress::Nothing;
        }
        self.dialog = Some(dialog);
        if matches!(self.state, State::Cancelling | State::Ending) {
            // Answered while we were cancelling: end it properly.
            self.state = State::Answered;
            self.hangup(sip).await;
            return Progress::Nothing;
        }
        let negotiated = SessionDescription::parse(&r.body)
            .map_err(|e| e.to_string())
            .and_then(|sdp| accept_answer(&self.params.codecs, &sdp).map_err(|e| e.to_string()));
        match negotiated {
            Ok(n) => {
                self.negotiated = Some(n);
                self.state = State::Answered;
                self.answered_at = Some(Instant::now());
                info!(leg = %self.uuid, "outbound leg answered");
                Progress::Answered
            }
            Err(e) => {
                self.state = State::Answered;
                self.pending_outcome = Some(LegOutcome::Failed {
                    status: Some(r.status),
                    reason: format!("unusable SDP answer: {e}"),
                });
                self.hangup(sip).await;
                Progress::Nothing
            }
        }
    }

    async fn retry_with_auth(&mut self, sip: &SipHandle, r: &Response) -> anyhow::Result<()> {
        self.auth_tries += 1;
        let (user, pass) = self.params.credentials.clone().context("no credentials")?;
        let (challenge_header, answer_header) = if r.status == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let value = r
            .headers
            .get(challenge_header)
            .with_context(|| format!("{} without {challenge_header}", r.status))?;
        let challenge = Challenge::parse(value).map_err(|e| anyhow::anyhow!("{e}"))?;
        let uri = self.invite.uri.to_string();
        let cnonce = format!("{:016x}", rand_u64(self.started_at));
        let creds = authorize(&challenge, &user, &pass, "INVITE", &uri, &cnonce, 1)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.cseq += 1;
        let mut invite = self.invite.clone();
        invite.headers.remove("Via");
        invite.headers.set("CSeq", format!("{} INVITE", self.cseq));
        invite.headers.remove(answer_header);
        invite.headers.push(answer_header, creds.to_string());
        self.key = sip.send_request(invite.clone(), self.peer.clone()).await?;
        self.invite = invite;
        Ok(())
    }

    /// A request from the callee in the leg's dialog (BYE, INFO, re-INVITE).
    pub(crate) fn on_request(
        &mut self,
        sip: &SipHandle,
        key: ServerTxKey,
        req: &Request,
    ) -> Progress {
        let in_dialog = self
            .dialog
            .as_mut()
            .is_none_or(|d| d.check_incoming(req).is_ok());
        let response = match req.method.clone() {
            _ if !in_dialog => req.make_response(481, "Call/Transaction Does Not Exist"),
            Method::Bye => {
                sip.send(SipCommand::Respond {
                    key,
                    response: req.make_response(200, "OK"),
                });
                return self.end(LegOutcome::Completed);
            }
            Method::Info => req.make_response(200, "OK"),
            Method::Invite => {
                // Hold/resume from the callee: answered with our current SDP.
                let mut r = req.make_response(488, "Not Acceptable Here");
                r.headers.push(
                    "Warning",
                    "399 callmux \"re-INVITE on outbound legs is not supported yet\"",
                );
                r
            }
            _ => req.make_response(405, "Method Not Allowed"),
        };
        sip.send(SipCommand::Respond { key, response });
        Progress::Nothing
    }

    /// The ringing time-out passed: CANCEL; the final 487 then ends the leg as `timeout`.
    pub(crate) fn on_timeout(&mut self, sip: &SipHandle, now: Instant) -> Progress {
        if self.deadline().is_some_and(|d| now >= d) {
            self.cancel_with(sip, LegOutcome::Timeout);
        }
        Progress::Nothing
    }

    /// The caller went away while the leg rang: CANCEL (outcome `cancelled`).
    pub(crate) fn cancel(&mut self, sip: &SipHandle) {
        self.cancel_with(sip, LegOutcome::Cancelled);
    }

    fn cancel_with(&mut self, sip: &SipHandle, outcome: LegOutcome) {
        if matches!(self.state, State::Calling | State::Ringing) {
            info!(leg = %self.uuid, outcome = outcome.status(), "cancelling outbound leg");
            self.pending_outcome = Some(outcome);
            self.state = State::Cancelling;
            sip.send(SipCommand::Cancel {
                key: self.key.clone(),
            });
        }
    }

    /// Ends the leg from our side: BYE when answered, CANCEL while ringing.
    pub(crate) async fn hangup(&mut self, sip: &SipHandle) {
        match self.state {
            State::Calling | State::Ringing => self.cancel(sip),
            State::Answered => {
                if let Some(d) = self.dialog.as_mut() {
                    let bye = d.create_request(Method::Bye);
                    self.state = State::Ending;
                    match sip.send_request(bye, self.peer.clone()).await {
                        Ok(k) => self.bye_key = Some(k),
                        Err(_) => self.state = State::Ended,
                    }
                }
            }
            State::Cancelling | State::Ending | State::Ended => {}
        }
    }

    /// A client transaction of the leg got no answer at all.
    pub(crate) fn on_client_timeout(&mut self, key: &ClientTxKey) -> Progress {
        if Some(key) == self.bye_key.as_ref() {
            return self.end(LegOutcome::Completed);
        }
        if key == &self.key {
            let outcome = self.pending_outcome.take().unwrap_or(LegOutcome::Failed {
                status: None,
                reason: "no response to INVITE".into(),
            });
            return self.end(outcome);
        }
        Progress::Nothing
    }

    fn end(&mut self, outcome: LegOutcome) -> Progress {
        if self.state == State::Ended {
            return Progress::Nothing;
        }
        self.state = State::Ended;
        self.rtp = None;
        let outcome = match (outcome, self.pending_outcome.take()) {
            (LegOutcome::Completed, Some(p)) => p,
            (o, _) => o,
        };
        Progress::Ended(outcome)
    }
}

/// A little per-leg randomness for cnonces (not security-critical: the server's nonce is).
fn rand_u64(t: Instant) -> u64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    n ^ (t.elapsed().as_nanos() as u64).rotate_left(29)
}
