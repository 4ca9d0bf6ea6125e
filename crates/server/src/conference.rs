//! Named conferences for the `conversation` action. One task per name owns the
//! `ConferenceMixer` and, when asked, the conference recording; participants (legs of any
//! call) send it what they said and get back, every 20 ms, what they should hear (everyone
//! but themselves). The conference starts with the first participant whose `startOnEnter`
//! is true (the others hear music on hold until then) and ends when its last participant
//! leaves or one with `endOnExit` does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use callmux_media::{ConferenceMixer, MixerConfig, ParticipantId, ParticipantOptions};
use callmux_record::{
    ChannelLayout, LegInfo, LegKey, RecordFormat, Recording, RecordingParams, RecordingSummary,
    TimelineConfig,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::blocking;
use crate::media_leg::FRAME_16K;

/// How a participant joins.
#[derive(Debug, Clone)]
pub(crate) struct JoinRequest {
    /// The leg's uuid (canSpeak/canHear name legs by uuid).
    pub(crate) leg_uuid: String,
    /// For the recording's sidecar.
    pub(crate) from: String,
    /// For the recording's sidecar.
    pub(crate) to: String,
    /// Starts the conference when it joins (default true).
    pub(crate) start_on_enter: bool,
    /// Ends the conference when it leaves (default false).
    pub(crate) end_on_exit: bool,
    /// Joins muted.
    pub(crate) mute: bool,
    /// Leg uuids this one may be heard by (`None`: everyone).
    pub(crate) can_speak: Option<Vec<String>>,
    /// Leg uuids this one hears (`None`: everyone).
    pub(crate) can_hear: Option<Vec<String>>,
    /// Record the conference (from its start to its end).
    pub(crate) record: bool,
    /// Audio played to participants while the conference has not started.
    pub(crate) music_on_hold: Option<Arc<Vec<i16>>>,
}

/// What a participant receives.
#[derive(Debug)]
pub(crate) enum RoomOutput {
    /// 20 ms of what this participant hears.
    Frame(Box<[i16; FRAME_16K]>),
    /// The conference ended (or the participant was removed).
    Ended,
}

/// What a participant said, with the RTP timing it arrived with (for the recording).
#[derive(Debug)]
pub(crate) struct Spoken {
    pub(crate) ssrc: u32,
    pub(crate) rtp_ts: u32,
    pub(crate) clock_rate: u32,
    pub(crate) arrival: Instant,
    pub(crate) pcm: Vec<i16>,
}

enum RoomInput {
    Join {
        req: JoinRequest,
        out: mpsc::Sender<RoomOutput>,
        reply: oneshot::Sender<ParticipantId>,
    },
    Audio {
        id: ParticipantId,
        spoken: Spoken,
    },
    Leave {
        id: ParticipantId,
    },
}

/// A participant's handle on its conference.
pub(crate) struct Membership {
    /// The room's name.
    pub(crate) name: String,
    id: ParticipantId,
    room: mpsc::UnboundedSender<RoomInput>,
    /// Frames to play to the leg, and the end notice.
    pub(crate) output: mpsc::Receiver<RoomOutput>,
}

impl Membership {
    /// Sends what the participant said.
    pub(crate) fn say(&self, spoken: Spoken) {
        let _ = self.room.send(RoomInput::Audio {
            id: self.id,
            spoken,
        });
    }

    /// Leaves the conference.
    pub(crate) fn leave(&self) {
        let _ = self.room.send(RoomInput::Leave { id: self.id });
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Settings a conference recording needs.
#[derive(Debug, Clone)]
pub(crate) struct ConferenceRecordingConfig {
    pub(crate) root: std::path::PathBuf,
    pub(crate) channels: u8,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) reorder_delay: Duration,
}

/// A finished conference recording, for the record event.
pub(crate) type RecordingDone = Box<dyn Fn(RecordingSummary) + Send + Sync>;

/// All conferences of the server, by name.
pub(crate) struct ConferenceHub {
    rooms: Mutex<HashMap<String, mpsc::UnboundedSender<RoomInput>>>,
    recording: ConferenceRecordingConfig,
    on_recording: Arc<RecordingDone>,
}

impl ConferenceHub {
    /// A hub whose conference recordings go to `recording.root`; `on_recording` is called
    /// with each finished conference recording (to produce its record event).
    pub(crate) fn new(recording: ConferenceRecordingConfig, on_recording: RecordingDone) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            recording,
            on_recording: Arc::new(on_recording),
        }
    }

    /// Joins (creating the conference if needed).
    pub(crate) async fn join(
        self: &Arc<Self>,
        name: &str,
        req: JoinRequest,
    ) -> anyhow::Result<Membership> {
        for _ in 0..2 {
            let room = self.room(name);
            let (out_tx, out_rx) = mpsc::channel(64);
            let (reply_tx, reply_rx) = oneshot::channel();
            if room
                .send(RoomInput::Join {
                    req: req.clone(),
                    out: out_tx,
                    reply: reply_tx,
                })
                .is_err()
            {
                // The room ended between lookup and join: a new one is made on the retry.
                self.forget(name, &room);
                continue;
            }
            match reply_rx.await {
                Ok(id) => {
                    return Ok(Membership {
                        name: name.to_string(),
                        id,
                        room,
                        output: out_rx,
                    })
                }
                Err(_) => {
                    self.forget(name, &room);
                    continue;
                }
            }
        }
        anyhow::bail!("conference {name:?} could not be joined")
    }

    fn room(self: &Arc<Self>, name: &str) -> mpsc::UnboundedSender<RoomInput> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rooms.get(name).filter(|r| !r.is_closed()) {
            return r.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        rooms.insert(name.to_string(), tx.clone());
        let hub = Arc::clone(self);
        let name = name.to_string();
        tokio::spawn(async move {
            Room::new(
                name.clone(),
                hub.recording.clone(),
                Arc::clone(&hub.on_recording),
            )
            .run(rx)
            .await;
            hub.forget_closed(&name);
        });
        tx
    }

    fn forget(&self, name: &str, room: &mpsc::UnboundedSender<RoomInput>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms.get(name).is_some_and(|r| r.same_channel(room)) {
            rooms.remove(name);
        }
    }

    fn forget_closed(&self, name: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if rooms.get(name).is_some_and(|r| r.is_closed()) {
            rooms.remove(name);
        }
    }

    /// Number of live conferences.
    pub(crate) fn len(&self) -> usize {
        self.rooms.lock().map_or(0, |r| r.len())
    }
}

struct Member {
    req: JoinRequest,
    out: mpsc::Sender<RoomOutput>,
    key: LegKey,
    moh_pos: usize,
}

struct Room {
    name: String,
    mixer: ConferenceMixer,
    members: HashMap<u32, Member>,
    next_id: u32,
    started: bool,
    ended: bool,
    recording: Option<Recording>,
    want_recording: bool,
    rec_config: ConferenceRecordingConfig,
    on_recording: Arc<RecordingDone>,
    conversation_uuid: String,
}

impl Room {
    fn new(
        name: String,
        rec_config: ConferenceRecordingConfig,
        on_recording: Arc<RecordingDone>,
    ) -> Self {
        Self {
            name,
            mixer: ConferenceMixer::new(MixerConfig::default()),
            members: HashMap::new(),
            next_id: 0,
            started: false,
            ended: false,
            recording: None,
            want_recording: false,
            rec_config,
            on_recording,
            conversation_uuid: uuid::Uuid::new_v4().to_string(),
        }
    }

    async fn run(mut self, mut inputs: mpsc::UnboundedReceiver<RoomInput>) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        info!(conference = %self.name, "conference created");
        while !self.ended {
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(i) => self.on_input(i),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(Instant::now()),
            }
        }
        // Everyone still in hears the end; the recording is finalized.
        for m in self.members.values() {
            let _ = m.out.try_send(RoomOutput::Ended);
        }
        inputs.close();
        self.finish_recording(Instant::now());
        info!(conference = %self.name, "conference ended");
    }

    fn on_input(&mut self, input: RoomInput) {
        let now = Instant::now();
        match input {
            RoomInput::Join { req, out, reply } => {
                let id = ParticipantId(self.next_id);
                self.next_id += 1;
                if self.mixer.add(id, ParticipantOptions::default()).is_err() {
                    return;
                }
                self.mixer.set_muted(id, req.mute);
                if req.start_on_enter {
                    self.started = true;
                }
                if req.record {
                    self.want_recording = true;
                }
                let key = LegKey(id.0);
                self.members.insert(
                    id.0,
                    Member {
                        req,
                        out,
                        key,
                        moh_pos: 0,
                    },
                );
                self.apply_permissions();
                if self.started && self.want_recording && self.recording.is_none() {
                    self.start_recording(now);
                } else if let (Some(rec), Some(m)) =
                    (self.recording.as_mut(), self.members.get(&id.0))
                {
                    let _ = blocking(|| rec.add_leg(m.key, leg_info(&m.req), now));
                }
                info!(conference = %self.name, participant = id.0, "joined");
                let _ = reply.send(id);
            }
            RoomInput::Audio { id, spoken } => {
                if !self.members.contains_key(&id.0) {
                    return;
                }
                if self.started {
                    self.mixer.push(id, &spoken.pcm);
                }
                if let Some(rec) = self.recording.as_mut() {
                    rec.push_received(
                        LegKey(id.0),
                        spoken.ssrc,
                        spoken.rtp_ts,
                        spoken.clock_rate,
                        spoken.arrival,
                        &spoken.pcm,
                    );
                }
            }
            RoomInput::Leave { id } => {
                let Some(m) = self.members.remove(&id.0) else {
                    return;
                };
                self.mixer.remove(id);
                if let Some(rec) = self.recording.as_mut() {
                    let _ = blocking(|| rec.remove_leg(m.key, now));
                }
                self.apply_permissions();
                info!(conference = %self.name, participant = id.0, "left");
                if m.req.end_on_exit || self.members.is_empty() {
                    self.ended = true;
                }
            }
        }
    }

    /// canSpeak/canHear name leg uuids; the mixer wants participant ids.
    fn apply_permissions(&mut self) {
        let by_uuid: HashMap<&str, ParticipantId> = self
            .members
            .iter()
            .map(|(id, m)| (m.req.leg_uuid.as_str(), ParticipantId(*id)))
            .collect();
        let map = |list: &Option<Vec<String>>| {
            list.as_ref().map(|l| {
                l.iter()
                    .filter_map(|u| by_uuid.get(u.as_str()).copied())
                    .collect::<Vec<_>>()
            })
        };
        let updates: Vec<(ParticipantId, ParticipantOptions)> = self
            .members
            .iter()
            .map(|(id, m)| {
                (
                    ParticipantId(*id),
                    ParticipantOptions {
                        can_speak_to: map(&m.req.can_speak),
                        can_hear: map(&m.req.can_hear),
                        muted: m.req.mute,
                    },
                )
            })
            .collect();
        for (id, opts) in updates {
            self.mixer.set_options(id, opts);
        }
    }

    fn on_tick(&mut self, now: Instant) {
        if self.started {
            self.mixer.tick();
        }
        let mut gone = Vec::new();
        for (id, m) in &mut self.members {
            let mut frame = Box::new([0i16; FRAME_16K]);
            if self.started {
                if let Some(f) = self.mixer.frame_for(ParticipantId(*id)) {
                    frame.copy_from_slice(f);
                }
            } else if let Some(moh) = m.req.music_on_hold.as_ref().filter(|p| !p.is_empty()) {
                for s in frame.iter_mut() {
                    *s = moh.get(m.moh_pos).copied().unwrap_or(0);
                    m.moh_pos = (m.moh_pos + 1) % moh.len();
                }
            }
            match m.out.try_send(RoomOutput::Frame(frame)) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.on_input(RoomInput::Leave {
                id: ParticipantId(id),
            });
        }
        if let Some(rec) = self.recording.as_mut() {
            if let Err(e) = rec.poll(now) {
                warn!(conference = %self.name, error = %e, "conference recording failed");
                if let Some(rec) = self.recording.take() {
                    let _ = blocking(|| rec.fail(&e.to_string(), SystemTime::now()));
                }
            }
        }
    }

    fn start_recording(&mut self, now: Instant) {
        let params = RecordingParams {
            root: self.rec_config.root.clone(),
            recording_uuid: uuid::Uuid::new_v4().to_string(),
            call_uuid: format!("conversation:{}", self.name),
            conversation_uuid: self.conversation_uuid.clone(),
            layout: ChannelLayout::Multi(self.rec_config.channels),
            format: RecordFormat::Wav,
            wall_start: SystemTime::now(),
            timeline: TimelineConfig {
                reorder_delay: self.rec_config.reorder_delay,
                ..TimelineConfig::default()
            },
            checkpoint_interval: self.rec_config.checkpoint_interval,
        };
        match blocking(|| Recording::create(params, now)) {
            Ok(mut rec) => {
                let mut ids: Vec<u32> = self.members.keys().copied().collect();
                ids.sort_unstable();
                for id in ids {
                    if let Some(m) = self.members.get(&id) {
                        let _ = blocking(|| rec.add_leg(m.key, leg_info(&m.req), now));
                    }
                }
                info!(conference = %self.name, path = %rec.path().display(), "conference recording started");
                self.recording = Some(rec);
            }
            Err(e) => warn!(conference = %self.name, error = %e, "cannot record the conference"),
        }
    }

    fn finish_recording(&mut self, now: Instant) {
        if let Some(rec) = self.recording.take() {
            match blocking(|| rec.finish(now, SystemTime::now())) {
                Ok(summary) => (self.on_recording)(summary),
                Err(e) => {
                    warn!(conference = %self.name, error = %e, "conference recording not finalized")
                }
            }
        }
    }
}

fn leg_info(req: &JoinRequest) -> LegInfo {
    LegInfo {
        uuid: req.leg_uuid.clone(),
        from: req.from.clone(),
        to: req.to.clone(),
    }
}
