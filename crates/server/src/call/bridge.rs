//! `connect`: the call places an outbound leg, plays ringback to the caller while it rings,
//! bridges the two legs' media when it answers (RTP relay for the same codec, transcoding
//! through 16 kHz otherwise), records the new leg in its own channel, and reports the leg's
//! outcome to the NCCO runner, which then goes on.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use callmux_media::{CodecPreferences, ToneGenerator};
use callmux_ncco::{ActionId, CallRunner, Connect, ConnectOutcome, Endpoint, RunnerInput};
use callmux_record::{LegInfo, LegKey};
use callmux_sip::Uri;
use callmux_webhook::{CallEvent, CallStatus, Direction, Timestamp};
use tracing::{info, warn};

use super::recording::tail_into;
use super::InboundCall;
use crate::blocking;
use crate::events::CallInfo;
use crate::media_leg::{MediaLeg, Received, FRAME_16K};
use crate::outbound::{ForkedLeg, LegOutcome, OutboundLeg, OutboundParams, Progress};
use crate::sip_task::CallInput;

/// The leg a `connect` placed.
pub(super) struct ActiveConnect {
    pub(super) id: ActionId,
    connect: Connect,
    /// The leg (several branches for a user registered from several phones).
    pub(super) leg: ForkedLeg,
    /// Its media once answered.
    pub(super) media: Option<MediaLeg>,
    /// Its key in recordings.
    pub(super) key: LegKey,
    info: CallInfo,
    limit_deadline: Option<Instant>,
    answered_wall: Option<SystemTime>,
}

/// Ringback played to the caller while the leg rings: the ringbackTone file, or a
/// generated North American ringback (440 + 480 Hz, 2 s on, 4 s off).
pub(super) enum Ringback {
    Generated {
        a: ToneGenerator,
        b: ToneGenerator,
        pos: usize,
    },
    File {
        pcm: Arc<Vec<i16>>,
        pos: usize,
    },
}

impl Ringback {
    fn generated() -> Self {
        Self::Generated {
            a: ToneGenerator::new(440.0, -19.0, 16_000),
            b: ToneGenerator::new(480.0, -19.0, 16_000),
            pos: 0,
        }
    }

    /// The next 20 ms.
    pub(super) fn next_frame(&mut self) -> [i16; FRAME_16K] {
        let mut frame = [0i16; FRAME_16K];
        match self {
            Self::Generated { a, b, pos } => {
                // 6 s cadence: 2 s of tone, 4 s of silence.
                let on = (*pos % 96_000) < 32_000;
                if on {
                    let mut other = [0i16; FRAME_16K];
                    a.fill(&mut frame);
                    b.fill(&mut other);
                    for (x, y) in frame.iter_mut().zip(other) {
                        *x = x.saturating_add(y);
                    }
                }
                *pos += FRAME_16K;
            }
            Self::File { pcm, pos } => {
                if !pcm.is_empty() {
                    for s in frame.iter_mut() {
                        *s = pcm.get(*pos).copied().unwrap_or(0);
                        *pos = (*pos + 1) % pcm.len();
                    }
                }
            }
        }
        frame
    }
}

fn to_connect_outcome(o: &LegOutcome) -> ConnectOutcome {
    match o {
        LegOutcome::Completed => ConnectOutcome::AnsweredThenEnded,
        LegOutcome::Busy => ConnectOutcome::Busy,
        LegOutcome::Rejected => ConnectOutcome::Rejected,
        LegOutcome::Timeout => ConnectOutcome::Timeout,
        LegOutcome::Unanswered => ConnectOutcome::Unanswered,
        LegOutcome::Cancelled => ConnectOutcome::Cancelled,
        LegOutcome::Failed { .. } => ConnectOutcome::Failed,
    }
}

fn status_of(o: &LegOutcome) -> CallStatus {
    match o {
        LegOutcome::Completed => CallStatus::Completed,
        LegOutcome::Busy => CallStatus::Busy,
        LegOutcome::Rejected => CallStatus::Rejected,
        LegOutcome::Timeout => CallStatus::Timeout,
        LegOutcome::Unanswered => CallStatus::Unanswered,
        LegOutcome::Cancelled => CallStatus::Cancelled,
        LegOutcome::Failed { .. } => CallStatus::Failed,
    }
}

impl InboundCall {
    /// Starts a `connect`: resolves the endpoint, sends the INVITE, starts ringback.
    pub(super) async fn start_connect(
        &mut self,
        id: ActionId,
        connect: Connect,
        runner: &mut CallRunner,
    ) {
        let leg = match self.place_leg(&connect).await {
            Ok(l) => l,
            Err(reason) => {
                warn!(action = id.0, %reason, "connect cannot be placed");
                self.connect_failed_early(id, &connect, &reason, runner)
                    .await;
                return;
            }
        };
        let info = CallInfo {
            uuid: leg.uuid.clone(),
            conversation_uuid: self.conversation_uuid.clone(),
            from: leg.from.clone(),
            to: leg.to.clone(),
        };
        self.emit_leg(&connect, outbound_event(&info, CallStatus::Started))
            .await;
        self.ringback = Some(Ringback::generated());
        if let Some(url) = connect.ringback_tone.clone() {
            self.load_ringback(url);
        }
        self.next_play.get_or_insert(Instant::now());
        let key = LegKey(self.next_leg_key);
        self.next_leg_key += 1;
        self.connect = Some(ActiveConnect {
            id,
            connect,
            leg,
            media: None,
            key,
            info,
            limit_deadline: None,
            answered_wall: None,
        });
    }

    /// The INVITE could not even be sent: `failed` event, and the NCCO goes on.
    async fn connect_failed_early(
        &mut self,
        id: ActionId,
        connect: &Connect,
        reason: &str,
        runner: &mut CallRunner,
    ) {
        let to = match &connect.endpoint {
            Endpoint::Phone(p) => p.number.clone(),
            Endpoint::Sip(s) => s.uri.clone(),
            Endpoint::App(a) => a.user.clone(),
            other => other.type_name().to_string(),
        };
        let info = CallInfo {
            uuid: uuid::Uuid::new_v4().to_string(),
            conversation_uuid: self.conversation_uuid.clone(),
            from: connect.from.clone().unwrap_or_default(),
            to,
        };
        let mut ev = outbound_event(&info, CallStatus::Failed);
        ev.reason = Some(reason.to_string());
        self.emit_leg(connect, ev).await;
        runner.handle_input(
            RunnerInput::ConnectFinished {
                id,
                outcome: ConnectOutcome::Failed,
            },
            Instant::now(),
        );
    }

    /// Sends the INVITE(s): one per registered phone of an app user (sharing a Call-ID),
    /// one otherwise. Fails only when none could be sent.
    async fn place_leg(&mut self, connect: &Connect) -> Result<ForkedLeg, String> {
        let mut legs = Vec::new();
        let mut last_err = None;
        for params in self.outbound_params(connect)? {
            let seed = self.ctx.next_seed();
            match OutboundLeg::start(&self.sip, &self.self_tx, &self.ctx.ports, params, seed).await
            {
                Ok(l) => legs.push(l),
                Err(e) => last_err = Some(format!("{e:#}")),
            }
        }
        let mut legs = legs.into_iter();
        let first = legs
            .next()
            .ok_or_else(|| last_err.unwrap_or_else(|| "nothing to call".into()))?;
        Ok(ForkedLeg::new(first, legs.collect()))
    }

    fn outbound_params(&self, connect: &Connect) -> Result<Vec<OutboundParams>, String> {
        let ring_timeout = Duration::from_secs(u64::from(connect.timeout.max(1)));
        let codecs = CodecPreferences::default();
        match &connect.endpoint {
            Endpoint::Sip(sip) => {
                let uri: Uri = sip
                    .uri
                    .parse()
                    .map_err(|e| format!("bad SIP URI {:?}: {e}", sip.uri))?;
                let headers = sip
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let name = if k.to_ascii_lowercase().starts_with("x-") {
                            k.clone()
                        } else {
                            format!("X-{k}")
                        };
                        (name, v.clone())
                    })
                    .collect();
                Ok(vec![OutboundParams {
                    uri,
                    from_user: connect.from.clone().unwrap_or_else(|| self.from.clone()),
                    headers,
                    credentials: None,
                    ring_timeout,
                    media_ip: self.ctx.config.media_ip,
                    codecs,
                    target: None,
                    call_id: None,
                    to: None,
                }])
            }
            Endpoint::Phone(phone) => {
                let number = phone.number.trim_start_matches('+');
                let trunks = self.ctx.trunks();
                let trunk = crate::trunks::route(&trunks, number)
                    .ok_or_else(|| format!("no [[trunk]] carries {}", phone.number))?;
                let uri: Uri = trunk
                    .uri_for(number)
                    .parse()
                    .map_err(|e| format!("trunk {}: bad URI: {e}", trunk.name))?;
                let from_user = connect
                    .from
                    .clone()
                    .or_else(|| trunk.from.clone())
                    .unwrap_or_else(|| self.from.clone());
                Ok(vec![OutboundParams {
                    uri,
                    from_user,
                    headers: Vec::new(),
                    credentials: trunk.username.clone().zip(trunk.password.clone()),
                    ring_timeout,
                    media_ip: self.ctx.config.media_ip,
                    codecs,
                    target: None,
                    call_id: None,
                    to: None,
                }])
            }
            Endpoint::App(app) => {
                let contacts = crate::registrar::registry()
                    .map(|r| r.contacts(&app.user))
                    .unwrap_or_default();
                if contacts.is_empty() {
                    return Err(format!("user {} is not registered", app.user));
                }
                // One Call-ID for every branch, as a forking proxy would send.
                let call_id = format!("{}@callmux", uuid::Uuid::new_v4().simple());
                let from_user = connect.from.clone().unwrap_or_else(|| self.from.clone());
                Ok(contacts
                    .into_iter()
                    .map(|b| OutboundParams {
                        // Sent where the REGISTER came from (NAT), over UDP.
                        target: (b.source.transport == callmux_sip::TransportKind::Udp)
                            .then_some(b.source.addr),
                        uri: b.contact,
                        from_user: from_user.clone(),
                        headers: Vec::new(),
                        credentials: None,
                        ring_timeout,
                        media_ip: self.ctx.config.media_ip,
                        codecs: codecs.clone(),
                        call_id: Some(call_id.clone()),
                        to: Some(app.user.clone()),
                    })
                    .collect())
            }
            other => Err(format!("{} endpoints are not supported", other.type_name())),
        }
    }

    /// A SIP message for the outbound leg (matched by Call-ID).
    pub(super) async fn on_leg_input(&mut self, input: CallInput, runner: &mut CallRunner) {
        let Some(c) = self.connect.as_mut() else {
            return;
        };
        let progress = match input {
            CallInput::Response { key, response } => {
                c.leg.on_response(&self.sip, &key, &response).await
            }
            CallInput::Request { key, request } => c.leg.on_request(&self.sip, key, &request),
            CallInput::ClientTimeout { key } => c.leg.on_client_timeout(&self.sip, &key),
            _ => Progress::Nothing,
        };
        self.on_progress(progress, runner).await;
    }

    /// Ringing time-out and `limit`.
    pub(super) async fn connect_timers(&mut self, now: Instant, runner: &mut CallRunner) {
        let Some(c) = self.connect.as_mut() else {
            return;
        };
        let p = c.leg.on_timeout(&self.sip, now);
        if c.limit_deadline.is_some_and(|d| now >= d) {
            info!(action = c.id.0, "connect limit reached; hanging up the leg");
            c.limit_deadline = None;
            c.leg.hangup(&self.sip).await;
        }
        self.on_progress(p, runner).await;
    }

    /// A datagram on the outbound leg's RTP socket: relayed to the caller (or transcoded),
    /// and recorded as the leg's voice.
    pub(super) fn on_callee_datagram(
        &mut self,
        packet: &[u8],
        src: std::net::SocketAddr,
        now: Instant,
    ) {
        let Some(m) = self.connect.as_mut().and_then(|c| c.media.as_mut()) else {
            return;
        };
        let received = m.on_datagram(packet, src, now);
        if matches!(received, Received::Nothing) {
            return;
        }
        self.leg.relay_from(m, packet);
        if matches!(received, Received::Audio) {
            self.drain_callee(now);
        }
    }

    /// Moves the outbound leg's released audio into the recordings (and to the caller when
    /// the codecs differ).
    pub(super) fn drain_callee(&mut self, now: Instant) {
        let Some(c) = self.connect.as_mut() else {
            return;
        };
        let Some(m) = c.media.as_mut() else {
            return;
        };
        let key = c.key;
        let transcode = !self.leg.can_relay_from(m);
        let recordings = &mut self.recordings;
        let caller = &mut self.leg;
        m.drain(now, |ssrc, ts, clock, arrival, pcm| {
            if transcode {
                let _ = caller.send_pcm(pcm);
            }
            for r in recordings.values_mut() {
                r.rec.push_received(key, ssrc, ts, clock, arrival, pcm);
            }
        });
        // Its decoder's last 4 ms once it pauses: for the recordings only.
        m.flush_paused(now, tail_into(&mut *recordings, key));
    }

    /// When the connect needs waking.
    pub(super) fn connect_deadline(&self) -> Option<Instant> {
        let c = self.connect.as_ref()?;
        [c.leg.deadline(), c.limit_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// The caller is gone (or the NCCO ended): hang up / cancel the leg.
    pub(super) async fn end_connect(&mut self) {
        if let Some(c) = self.connect.as_mut() {
            c.leg.hangup(&self.sip).await;
        }
    }

    async fn on_progress(&mut self, p: Progress, runner: &mut CallRunner) {
        let now = Instant::now();
        match p {
            Progress::Nothing => {}
            Progress::Ringing => {
                if let Some(c) = &self.connect {
                    let ev = outbound_event(&c.info, CallStatus::Ringing);
                    let connect = c.connect.clone();
                    self.emit_leg(&connect, ev).await;
                }
            }
            Progress::Answered => {
                let seed = self.ctx.next_seed();
                let reorder = self.ctx.config.reorder_delay;
                let Some(c) = self.connect.as_mut() else {
                    return;
                };
                match c.leg.take_media(reorder, seed) {
                    Ok(Some(m)) => {
                        info!(leg = %c.leg.uuid, codec = ?m.negotiated.audio.codec, relay = m.can_relay_from(&self.leg), "bridged");
                        c.media = Some(m);
                    }
                    Ok(None) => {}
                    Err(e) => warn!(error = %e, "cannot set up the answered leg's media"),
                }
                c.limit_deadline =
                    Some(now + Duration::from_secs(u64::from(c.connect.limit.max(1))));
                c.answered_wall = Some(SystemTime::now());
                let key = c.key;
                let leg_info = LegInfo {
                    uuid: c.leg.uuid.clone(),
                    from: c.leg.from.clone(),
                    to: c.leg.to.clone(),
                };
                let ev = outbound_event(&c.info, CallStatus::Answered);
                let connect = c.connect.clone();
                self.ringback = None;
                self.joined_legs.push((key, leg_info.clone()));
                for r in self.recordings.values_mut() {
                    if let Err(e) = blocking(|| r.rec.add_leg(key, leg_info.clone(), now)) {
                        warn!(error = %e, "cannot add the leg to a recording");
                    }
                }
                self.emit_leg(&connect, ev).await;
            }
            Progress::Ended(outcome) => {
                let Some(c) = self.connect.take() else { return };
                self.ringback = None;
                info!(leg = %c.leg.uuid, outcome = outcome.status(), "outbound leg ended");
                // Audio still held in the leg's reorder buffer goes to the recordings first.
                if let Some(mut m) = c.media {
                    let recordings = &mut self.recordings;
                    let key = c.key;
                    m.drain(
                        now + Duration::from_secs(3600),
                        |ssrc, ts, clock, arrival, pcm| {
                            for r in recordings.values_mut() {
                                r.rec.push_received(key, ssrc, ts, clock, arrival, pcm);
                            }
                        },
                    );
                    m.flush_tail(tail_into(&mut *recordings, key));
                }
                for r in self.recordings.values_mut() {
                    let _ = blocking(|| r.rec.remove_leg(c.key, now));
                }
                self.joined_legs.retain(|(k, _)| *k != c.key);
                self.sip.send(crate::sip_task::SipCommand::Unregister {
                    call_id: c.leg.call_id.clone(),
                });
                let mut ev = outbound_event(&c.info, status_of(&outcome));
                if let LegOutcome::Failed { status, reason } = &outcome {
                    ev.reason = Some(reason.clone());
                    ev.sip_code = *status;
                }
                if let (LegOutcome::Completed, Some(start)) = (&outcome, c.answered_wall) {
                    let end = SystemTime::now();
                    ev.start_time = Some(Timestamp::from_system_time(start));
                    ev.end_time = Some(Timestamp::from_system_time(end));
                    ev.duration = Some(callmux_webhook::event::duration_string(
                        end.duration_since(start).unwrap_or_default(),
                    ));
                }
                self.emit_leg(&c.connect, ev).await;
                runner.handle_input(
                    RunnerInput::ConnectFinished {
                        id: c.id,
                        outcome: to_connect_outcome(&outcome),
                    },
                    Instant::now(),
                );
            }
        }
    }

    /// Commits an event of the outbound leg (to the connect's eventUrl, else the call's).
    /// The returned future owns what it needs, so no borrow of the call is held across the
    /// commit.
    fn emit_leg(
        &self,
        connect: &Connect,
        ev: CallEvent,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let url = connect
            .event_url
            .clone()
            .or_else(|| self.ctx.config.event_url.clone());
        let method = super::actions::http_method(connect.event_method);
        emit_leg_event(Arc::clone(&self.ctx), self.uuid.clone(), url, method, ev)
    }

    /// Fetches the ringbackTone WAV off the call task.
    fn load_ringback(&self, url: String) {
        let client = self.ctx.http.clone();
        let data_dir = self.ctx.config.data_dir.clone();
        let tx = self.jobs_tx.clone();
        tokio::spawn(async move {
            let stream = callmux_ncco::Stream {
                stream_url: url,
                level: 0.0,
                barge_in: false,
                loop_count: 0,
            };
            if let Ok(pcm) = crate::playback::load_stream(&client, &data_dir, &stream).await {
                let _ = tx.send(super::actions::Job::RingbackReady { pcm });
            }
        });
    }

    /// A ringbackTone file arrived: play it instead of the generated ringback.
    pub(super) fn set_ringback_file(&mut self, pcm: Vec<i16>) {
        if self.ringback.is_some() {
            self.ringback = Some(Ringback::File {
                pcm: Arc::new(pcm),
                pos: 0,
            });
        }
    }
}

/// Commits an outbound leg's event; owns what it needs so no borrow of the call is held
/// across the commit.
async fn emit_leg_event(
    ctx: Arc<super::ServerContext>,
    call_uuid: String,
    url: Option<String>,
    method: callmux_webhook::HttpMethod,
    ev: CallEvent,
) {
    info!(status = ?ev.status, leg = %ev.uuid, "outbound leg event");
    ctx.events
        .emit(&call_uuid, url.as_deref(), method, &ev)
        .await;
}

fn outbound_event(info: &CallInfo, status: CallStatus) -> CallEvent {
    CallEvent::new(
        &info.uuid,
        &info.conversation_uuid,
        &info.from,
        &info.to,
        Direction::Outbound,
        status,
        Timestamp::from_system_time(SystemTime::now()),
    )
}
