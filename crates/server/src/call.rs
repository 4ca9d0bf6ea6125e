//! One inbound call, as a task: answer the INVITE (SDP offer/answer, RTP port), run the
//! NCCO with `ncco::CallRunner`, feed the caller's audio to the recordings the NCCO started,
//! and end cleanly on BYE, on the NCCO's hang-up or on a SIP/media timeout, finalizing every
//! recording before the task exits.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use callmux_media::tone::beep;
use callmux_media::{parse_dtmf_info, CodecPreferences, PortPool, SdpOrigin, SessionDescription};
use callmux_ncco::{
    ActionId, CallRunner, Capabilities, Command, HangupReason, Ncco, Record, RunnerInput,
};
use callmux_record::{LegInfo, LegKey};
use callmux_sip::{Dialog, Method, Peer, Request, Response, ServerTxKey};
use callmux_webhook::{CallStatus, HttpMethod};
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

mod actions;
mod bridge;
mod recording;
mod room;
mod setup;

use self::actions::{http_method, FailedRecording, Job};
use self::bridge::{ActiveConnect, Ringback};
use self::recording::ActiveRecording;
use self::room::ActiveRoom;
use self::setup::{answer, user_part};
use crate::config::Config;
use crate::events::{CallInfo, EventSink};
use crate::media_leg::{MediaLeg, Received, FRAME_16K};
use crate::playback::Prompt;
use crate::sip_task::{CallInput, SipCommand, SipHandle};

/// What every call task shares: configuration, the NCCO, the RTP port pool, counters.
pub(crate) struct ServerContext {
    pub(crate) config: Config,
    /// The static NCCO (file or built-in default); unused with an answer URL.
    pub(crate) ncco: Ncco,
    pub(crate) ports: Arc<Mutex<PortPool>>,
    pub(crate) active_calls: AtomicUsize,
    pub(crate) sip: OnceLock<SipHandle>,
    /// The event queue writer.
    pub(crate) events: EventSink,
    /// HTTP client for answer URLs, input answers and stream files.
    pub(crate) http: reqwest::Client,
    /// What NCCOs may use.
    pub(crate) caps: Capabilities,
    /// Named conferences.
    pub(crate) conferences: Arc<crate::conference::ConferenceHub>,
    /// `[[trunk]]`s for `phone` endpoints; replaced on SIGHUP (calls keep the list they
    /// routed with).
    trunks: std::sync::RwLock<Arc<Vec<crate::trunks::TrunkConfig>>>,
    seeds: AtomicU64,
}

impl ServerContext {
    /// A context for `config` running `ncco` on every call.
    pub(crate) fn new(
        config: Config,
        ncco: Ncco,
        events: EventSink,
        conferences: Arc<crate::conference::ConferenceHub>,
    ) -> Self {
        let ports = PortPool::new(config.rtp_ports.0, config.rtp_ports.1);
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let trunks = std::sync::RwLock::new(Arc::new(config.trunks.clone()));
        Self {
            config,
            ncco,
            ports: Arc::new(Mutex::new(ports)),
            active_calls: AtomicUsize::new(0),
            sip: OnceLock::new(),
            events,
            http: crate::answer::client(),
            caps: crate::serve::capabilities(),
            trunks,
            conferences,
            seeds: AtomicU64::new(seed),
        }
    }

    /// The trunks in force now.
    pub(crate) fn trunks(&self) -> Arc<Vec<crate::trunks::TrunkConfig>> {
        self.trunks
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |t| Arc::clone(&t))
    }

    /// Replaces the trunks (SIGHUP reload).
    pub(crate) fn set_trunks(&self, trunks: Vec<crate::trunks::TrunkConfig>) {
        let new = Arc::new(trunks);
        match self.trunks.write() {
            Ok(mut t) => *t = new,
            Err(p) => *p.into_inner() = new,
        }
    }

    /// A fresh seed for per-call randomness (SSRC, tags).
    pub(crate) fn next_seed(&self) -> u64 {
        self.seeds
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .rotate_left(17)
    }
}

/// Drops the call from the counters and the SIP routing table however the task ends.
struct CallGuard {
    ctx: Arc<ServerContext>,
    call_id: String,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.ctx.active_calls.fetch_sub(1, Ordering::Relaxed);
        if let Some(sip) = self.ctx.sip.get() {
            sip.send(SipCommand::Unregister {
                call_id: std::mem::take(&mut self.call_id),
            });
        }
    }
}

/// Runs one inbound call to its end. The caller has already counted it in `active_calls`.
pub(crate) async fn run_inbound(
    ctx: Arc<ServerContext>,
    key: ServerTxKey,
    invite: Request,
    peer: Peer,
    authenticated_user: Option<String>,
    self_tx: mpsc::UnboundedSender<CallInput>,
    inputs: mpsc::UnboundedReceiver<CallInput>,
) {
    let call_id = invite.call_id().unwrap_or_default().to_string();
    let uuid = uuid::Uuid::new_v4().to_string();
    let span = info_span!("call", %uuid, %call_id);
    let guard = CallGuard {
        ctx: Arc::clone(&ctx),
        call_id,
    };
    async move {
        let Some(sip) = ctx.sip.get().cloned() else {
            return;
        };
        let info = CallInfo {
            uuid: uuid.clone(),
            conversation_uuid: uuid::Uuid::new_v4().to_string(),
            // A digest-authenticated caller is its user name, whatever its From header says.
            from: authenticated_user
                .unwrap_or_else(|| user_part(invite.from().ok().map(|f| f.uri).as_ref())),
            to: user_part(invite.to().ok().map(|t| t.uri).as_ref()),
        };
        let mut inputs = inputs;
        ctx.events
            .call_status(&info.event(CallStatus::Started))
            .await;
        match answer(&ctx, &sip, key, &invite, peer, info, (self_tx, &mut inputs)).await {
            Ok(call) => call.run(inputs).await,
            Err(status) => {
                crate::metrics::call_ended(crate::metrics::CallResult::from_status(status));
                info!(status, "call not answered");
            }
        }
        drop(guard);
    }
    .instrument(span)
    .await;
}

/// State of an answered inbound call.
struct InboundCall {
    ctx: Arc<ServerContext>,
    sip: SipHandle,
    uuid: String,
    conversation_uuid: String,
    from: String,
    to: String,
    dialog: Dialog,
    peer: Peer,
    leg: MediaLeg,
    origin: SdpOrigin,
    acked: bool,
    /// We sent BYE and wait for its response.
    bye_pending: bool,
    /// The NCCO wants to hang up (sent as soon as the ACK has arrived).
    hangup_requested: bool,
    /// The dialog is over (BYE either way, CANCEL, timeout).
    ended: bool,
    recordings: BTreeMap<u32, ActiveRecording>,
    /// Audio queued for the caller, 20 ms frames at 16 kHz, sent on a 20 ms clock.
    playout: VecDeque<[i16; FRAME_16K]>,
    next_play: Option<Instant>,
    /// Recordings that start when the playout queue is empty (after `beepStart`'s beep).
    after_playout: Vec<(ActionId, Record)>,
    /// The client transaction of our BYE.
    bye_key: Option<callmux_sip::ClientTxKey>,
    started: Instant,
    /// Who the call is, for events.
    info: CallInfo,
    /// The NCCO this call runs.
    ncco: Ncco,
    /// When the 200 OK went out (`start_time` of `completed`).
    answered_at: SystemTime,
    /// Results of work done off the call task (TTS, downloads, input answers).
    jobs_tx: mpsc::UnboundedSender<Job>,
    jobs_rx: Option<mpsc::UnboundedReceiver<Job>>,
    /// The talk/stream prompt being played.
    prompt: Option<Prompt>,
    /// The prompt being prepared (TTS or download running).
    pending_play: Option<ActionId>,
    /// Where each recording's record event goes (the action's eventUrl, else the call's).
    record_targets: BTreeMap<u32, (Option<String>, HttpMethod)>,
    /// Recordings that failed while being written: reported before the call moves on.
    failed_recordings: Vec<FailedRecording>,
    /// Why the call failed after it was answered (a `failed` event is sent before
    /// `completed`).
    failure: Option<String>,
    /// This call's own input channel (outbound legs register their Call-IDs with it).
    self_tx: mpsc::UnboundedSender<CallInput>,
    /// The leg a `connect` placed.
    connect: Option<ActiveConnect>,
    /// Ringback played to the caller while a `connect` rings.
    ringback: Option<Ringback>,
    /// The conference the call is in.
    room: Option<ActiveRoom>,
    /// Legs other than the caller that are up (added to recordings that start later).
    joined_legs: Vec<(LegKey, LegInfo)>,
    /// Key of the next leg to join.
    next_leg_key: u32,
}

const CALLER: LegKey = LegKey(0);

/// Most queued datagrams read in one go before the recordings are fed.
const MAX_BACKLOG: usize = 64;

impl InboundCall {
    async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<CallInput>) {
        let mut runner = CallRunner::new(self.ncco.clone(), Instant::now());
        let mut buf = vec![0u8; 2048];
        let mut buf2 = vec![0u8; 2048];
        let mut bye_deadline: Option<Instant> = None;
        let Some(mut jobs) = self.jobs_rx.take() else {
            return;
        };
        loop {
            // A failed recording is reported (event, then runner) before anything else, and
            // what the runner does about it is done at once.
            loop {
                self.report_failed_recordings(&mut runner).await;
                self.run_commands(&mut runner).await;
                if self.failed_recordings.is_empty() {
                    break;
                }
            }
            if self.hangup_requested && self.acked && !self.bye_pending && !self.ended {
                self.send_bye().await;
                bye_deadline = Some(Instant::now() + Duration::from_secs(32));
            }
            if (self.ended || self.hangup_requested) && self.connect.is_some() {
                // The caller is gone or hanging up: the outbound leg goes too.
                self.end_connect().await;
            }
            if (self.ended || self.hangup_requested) && self.room.is_some() {
                if let Some(room) = self.room.take() {
                    runner.handle_input(
                        RunnerInput::ConversationLeft { id: room.id },
                        Instant::now(),
                    );
                }
            }
            if self.ended && self.recordings.is_empty() && self.connect.is_none() {
                break;
            }
            if bye_deadline.is_some_and(|d| Instant::now() >= d) {
                warn!("no answer to our BYE; ending the call");
                self.ended = true;
                runner.handle_input(RunnerInput::CallEnded, Instant::now());
                continue;
            }
            let deadline = [
                runner.poll_timeout(),
                self.leg.next_deadline(),
                self.recordings
                    .values()
                    .filter_map(|r| r.rec.next_deadline())
                    .min(),
                bye_deadline,
                self.next_play,
                self.connect_deadline(),
                self.connect
                    .as_ref()
                    .and_then(|c| c.media.as_ref())
                    .and_then(MediaLeg::next_deadline),
                self.media_timeout_deadline(),
            ]
            .into_iter()
            .flatten()
            .min();
            let callee_socket = self
                .connect
                .as_ref()
                .and_then(|c| c.media.as_ref())
                .map(|m| &m.socket);
            let room = self.room.as_mut().map(|r| &mut r.membership.output);
            tokio::select! {
                r = self.leg.socket.recv_from(&mut buf) => {
                    let now = Instant::now();
                    if let Ok((n, src)) = r {
                        let mut audio = self.on_caller_datagram(buf.get(..n).unwrap_or_default(), src, now, &mut runner);
                        // Take whatever else is already queued before finalising anything, so
                        // a backlog after a scheduling stall is placed, not dropped as late.
                        for _ in 0..MAX_BACKLOG {
                            let Ok((n, src)) = self.leg.socket.try_recv_from(&mut buf) else {
                                break;
                            };
                            audio |= self.on_caller_datagram(buf.get(..n).unwrap_or_default(), src, Instant::now(), &mut runner);
                        }
                        if audio {
                            self.feed_recordings(Instant::now(), &mut runner);
                        }
                    }
                }
                r = recv_opt(callee_socket, &mut buf2) => {
                    let now = Instant::now();
                    if let Ok((n, src)) = r {
                        self.on_callee_datagram(buf2.get(..n).unwrap_or_default(), src, now);
                    }
                }
                out = recv_room(room) => {
                    self.on_room_output(out, &mut runner, Instant::now());
                }
                input = inputs.recv() => {
                    let now = Instant::now();
                    match input {
                        Some(CallInput::ClientTimeout { key }) if self.connect.is_some() => {
                            self.on_leg_input(CallInput::ClientTimeout { key: key.clone() }, &mut runner).await;
                            self.on_sip(CallInput::ClientTimeout { key }, &mut runner, now);
                        }
                        Some(input) => {
                            let leg_call = self.connect.as_ref().is_some_and(|c| c.leg.owns(input_call_id(&input)));
                            if leg_call {
                                self.on_leg_input(input, &mut runner).await;
                            } else {
                                self.on_sip(input, &mut runner, now);
                            }
                        }
                        None => {
                            self.ended = true;
                            runner.handle_input(RunnerInput::CallEnded, now);
                        }
                    }
                }
                Some(job) = jobs.recv() => {
                    self.on_job(job, &mut runner).await;
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.play_due(now, &mut runner).await;
                    self.connect_timers(now, &mut runner).await;
                    self.drain_callee(now);
                    runner.handle_timeout(now);
                    self.feed_recordings(now, &mut runner);
                    if self.media_timeout_deadline().is_some_and(|d| now >= d) {
                        info!("no RTP from the caller for the media timeout; hanging up");
                        self.hangup_requested = true;
                        runner.handle_input(RunnerInput::CallEnded, now);
                    }
                }
            }
        }
        info!(
            duration_ms = self.started.elapsed().as_millis() as u64,
            packets = self.leg.stats.packets,
            foreign = self.leg.stats.foreign_source,
            malformed = self.leg.stats.malformed,
            "call ended"
        );
        crate::metrics::call_ended(if self.failure.is_some() {
            crate::metrics::CallResult::Failed
        } else {
            crate::metrics::CallResult::Answered
        });
        if let Some(reason) = self.failure.take() {
            let ev = self.info.ended_event(CallStatus::Failed, &reason, None);
            self.ctx.events.call_status(&ev).await;
        }
        let end = SystemTime::now();
        let mut ev = self.info.event(CallStatus::Completed);
        ev.start_time = Some(callmux_webhook::Timestamp::from_system_time(
            self.answered_at,
        ));
        ev.end_time = Some(callmux_webhook::Timestamp::from_system_time(end));
        ev.duration = Some(callmux_webhook::event::duration_string(
            end.duration_since(self.answered_at).unwrap_or_default(),
        ));
        self.ctx.events.call_status(&ev).await;
    }

    /// One datagram from the caller: relayed to a bridged leg, DTMF to the runner. True
    /// when it was audio for the recordings.
    fn on_caller_datagram(
        &mut self,
        packet: &[u8],
        src: std::net::SocketAddr,
        now: Instant,
        runner: &mut CallRunner,
    ) -> bool {
        let received = self.leg.on_datagram(packet, src, now);
        if !matches!(received, Received::Nothing) {
            if let Some(callee) = self.connect.as_mut().and_then(|c| c.media.as_mut()) {
                callee.relay_from(&self.leg, packet);
            }
        }
        match received {
            Received::Audio => true,
            Received::Dtmf(digit) => {
                info!(%digit, "DTMF (RFC 4733)");
                runner.handle_input(RunnerInput::Dtmf { digit }, now);
                false
            }
            Received::Nothing => false,
        }
    }

    fn media_timeout_deadline(&self) -> Option<Instant> {
        let timeout = self.ctx.config.media_timeout?;
        if self.ended {
            return None;
        }
        Some(self.leg.last_rx.unwrap_or(self.started) + timeout)
    }

    fn on_sip(&mut self, input: CallInput, runner: &mut CallRunner, now: Instant) {
        match input {
            CallInput::Ack => self.acked = true,
            CallInput::AckTimeout => {
                warn!("our 200 OK was never acknowledged; ending the call");
                self.acked = true;
                self.hangup_requested = true;
                runner.handle_input(RunnerInput::CallEnded, now);
            }
            CallInput::Cancelled => {
                self.ended = true;
                runner.handle_input(RunnerInput::CallEnded, now);
            }
            CallInput::Shutdown => {
                self.hangup_requested = true;
                runner.handle_input(RunnerInput::CallEnded, now);
            }
            CallInput::Request { key, request } => {
                self.on_request(key, &request, runner, now);
            }
            CallInput::Response { key, response } => {
                if self.bye_key.as_ref() == Some(&key) && response.status >= 200 {
                    self.ended = true;
                }
            }
            CallInput::ClientTimeout { key } => {
                if self.bye_key.as_ref() == Some(&key) {
                    self.ended = true;
                }
            }
        }
    }

    fn on_request(
        &mut self,
        key: ServerTxKey,
        request: &Request,
        runner: &mut CallRunner,
        now: Instant,
    ) {
        if let Err(e) = self.dialog.check_incoming(request) {
            let (status, reason) = e.status();
            self.respond(key, request.make_response(status, reason));
            return;
        }
        match request.method {
            Method::Bye => {
                self.respond(key, request.make_response(200, "OK"));
                self.ended = true;
                self.acked = true;
                runner.handle_input(RunnerInput::CallEnded, now);
            }
            Method::Info => {
                let ct = request.content_type().unwrap_or_default();
                if let Some(digit) = parse_dtmf_info(ct, &request.body) {
                    info!(%digit, "DTMF (SIP INFO)");
                    runner.handle_input(RunnerInput::Dtmf { digit }, now);
                }
                self.respond(key, request.make_response(200, "OK"));
            }
            Method::Invite => self.on_reinvite(key, request),
            _ => {
                let mut r = request.make_response(405, "Method Not Allowed");
                r.headers
                    .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
                self.respond(key, r);
            }
        }
    }

    /// A re-INVITE (session refresh, hold, new address): answered on the same port.
    fn on_reinvite(&mut self, key: ServerTxKey, request: &Request) {
        if request.body.is_empty() {
            self.respond(key, request.make_response(488, "Not Acceptable Here"));
            return;
        }
        let result = SessionDescription::parse(&request.body)
            .map_err(|e| e.to_string())
            .and_then(|offer| {
                callmux_media::answer(
                    &offer,
                    &CodecPreferences::default(),
                    self.leg.local,
                    &mut self.origin,
                )
                .map_err(|e| e.to_string())
            });
        match result {
            Ok((negotiated, sdp)) if negotiated.audio == self.leg.negotiated.audio => {
                info!(direction = ?negotiated.direction, "re-INVITE");
                self.leg.renegotiate(negotiated);
                let mut ok = request.make_response(200, "OK");
                ok.headers.push("Contact", self.dialog.local_contact());
                ok.set_body("application/sdp", sdp.into_bytes());
                self.respond(key, ok);
            }
            Ok(_) => {
                let mut r = request.make_response(488, "Not Acceptable Here");
                r.headers.push(
                    "Warning",
                    "399 callmux \"changing the codec mid-call is not supported\"",
                );
                self.respond(key, r);
            }
            Err(e) => {
                let mut r = request.make_response(488, "Not Acceptable Here");
                r.headers.push(
                    "Warning",
                    format!("399 callmux \"{}\"", e.replace('"', "'")),
                );
                self.respond(key, r);
            }
        }
    }

    fn respond(&self, key: ServerTxKey, response: Response) {
        self.sip.send(SipCommand::Respond { key, response });
    }

    async fn send_bye(&mut self) {
        let bye = self.dialog.create_request(Method::Bye);
        let peer = self.peer.clone();
        self.bye_pending = true;
        match self.sip.send_request(bye, peer).await {
            Ok(key) => self.bye_key = Some(key),
            Err(e) => {
                warn!(error = %e, "cannot send BYE");
                self.ended = true;
            }
        }
    }

    /// Performs what the runner asks, until it has nothing more for now.
    async fn run_commands(&mut self, runner: &mut CallRunner) {
        while let Some(cmd) = runner.poll_command() {
            let now = Instant::now();
            match cmd {
                Command::StartRecording { id, record } => {
                    self.record_targets.insert(
                        id.0,
                        (record.event_url.clone(), http_method(record.event_method)),
                    );
                    if record.beep_start {
                        // The beep goes out first; the recording starts when it has been sent.
                        self.playout.extend(beep());
                        self.next_play.get_or_insert(now);
                        self.after_playout.push((id, record));
                    } else {
                        self.begin_recording(id, &record, now);
                    }
                }
                Command::StopRecording { id, reason } => {
                    // The record event is committed before the NCCO moves on.
                    self.stop_recording(id, &reason, now).await;
                    runner.handle_input(RunnerInput::RecordingFinished { id }, Instant::now());
                }
                Command::Play { id, source } => self.start_prompt(id, source),
                Command::StopPlay { id } => {
                    if self.pending_play == Some(id) {
                        self.pending_play = None;
                    }
                    if self.prompt.as_ref().is_some_and(|p| p.id == id) {
                        info!(action = id.0, "prompt stopped (barge-in)");
                        self.prompt = None;
                    }
                }
                Command::CollectDigits { id, input } => {
                    info!(
                        action = id.0,
                        max_digits = input.dtmf.max_digits,
                        "collecting DTMF"
                    );
                }
                Command::SubmitInput { id, input, result } => {
                    self.submit_input(id, &input, &result, runner);
                }
                Command::Notify { id, notify } => {
                    info!(action = id.0, url = %notify.event_url, "notify");
                    let payload =
                        callmux_webhook::NotifyEvent(serde_json::Value::Object(notify.payload));
                    self.ctx
                        .events
                        .emit(
                            &self.uuid,
                            Some(&notify.event_url),
                            http_method(notify.event_method),
                            &payload,
                        )
                        .await;
                }
                Command::Connect { id, connect } => {
                    self.start_connect(id, connect, runner).await;
                }
                Command::JoinConversation { id, conversation } => {
                    self.join_conversation(id, conversation, runner).await;
                }
                Command::Hangup { reason } => {
                    if let HangupReason::InvalidNcco(e) = &reason {
                        self.failure.get_or_insert(format!(
                            "the answer to an input was an invalid NCCO: {e}"
                        ));
                    }
                    self.hangup_requested = true;
                    // Recordings end with the call.
                    runner.handle_input(RunnerInput::CallEnded, now);
                }
                other => {
                    // Capabilities keep every other action out of the NCCO at load time;
                    // reaching here is a bug, so end the call rather than pretend.
                    warn!(command = ?other, "NCCO command not supported by this server; hanging up");
                    self.hangup_requested = true;
                    runner.handle_input(RunnerInput::CallEnded, now);
                }
            }
        }
    }

    /// Sends the queued frames that are due, records them as heard by the caller, and starts
    /// the recordings that waited for the playout to finish.
    async fn play_due(&mut self, now: Instant, runner: &mut CallRunner) {
        while let Some(due) = self.next_play.filter(|&t| t <= now) {
            let frame = match self.playout.pop_front() {
                Some(f) => Some(f),
                None if self.prompt.is_none() && self.ringback.is_some() => {
                    self.ringback.as_mut().map(Ringback::next_frame)
                }
                None => match self.prompt.as_mut() {
                    Some(p) => match p.next_frame() {
                        Some(f) => Some(f),
                        None => {
                            let id = p.id;
                            self.prompt = None;
                            info!(action = id.0, "prompt finished");
                            runner.handle_input(RunnerInput::PlayFinished { id }, now);
                            None
                        }
                    },
                    None => None,
                },
            };
            let Some(frame) = frame else {
                self.next_play = None;
                break;
            };
            if let Err(e) = self.leg.send_frame(&frame).await {
                warn!(error = %e, "cannot send audio to the caller");
            }
            for r in self.recordings.values_mut() {
                r.rec.push_played(CALLER, now, &frame);
            }
            self.next_play = Some(due + Duration::from_millis(20));
        }
        if self.playout.is_empty() {
            if self.prompt.is_none() && self.ringback.is_none() {
                self.next_play = None;
            }
            for (id, record) in std::mem::take(&mut self.after_playout) {
                self.begin_recording(id, &record, now);
            }
        }
    }
}

/// The Call-ID of a SIP input (to tell the caller's dialog from an outbound leg's).
fn input_call_id(input: &CallInput) -> Option<&str> {
    match input {
        CallInput::Request { request, .. } => request.call_id(),
        CallInput::Response { response, .. } => response.call_id(),
        _ => None,
    }
}

/// Receives on a socket that may not exist yet (pending forever then).
async fn recv_opt(
    socket: Option<&tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::net::SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Receives from the conference, if the call is in one.
async fn recv_room(
    rx: Option<&mut mpsc::Receiver<crate::conference::RoomOutput>>,
) -> Option<crate::conference::RoomOutput> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
