//! A recording: timeline + file sink + sidecar, driven by the server's call task.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::RecordError;
use crate::layout::{ChannelLayout, LegKey, SAMPLE_RATE};
use crate::recover::repair_file;
use crate::sidecar::{
    format_time, valid_uuid, ChannelContent, ChannelEntry, LegRole, Sidecar, SidecarLeg,
    SidecarState, SIDECAR_VERSION,
};
use crate::sink::{Mp3Sink, OggOpusSink, RecordWriter, Sink, SinkError, WavSink};
use crate::timeline::{RecordingTimeline, TimelineConfig, TimelineStats};

/// Longest a running recording waits between two polls even when no packet arrives.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Longest allowed checkpoint interval (the file is playable up to at most this long ago).
pub const MAX_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// File format of a recording (NCCO `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// 16 kHz 16-bit PCM WAV, 1–32 channels.
    Wav,
    /// MP3 16 kHz 32 kbit/s CBR, 1–2 channels.
    Mp3,
    /// Opus in Ogg, 1–8 channels.
    Ogg,
}

impl RecordFormat {
    /// File extension (`wav`, `mp3`, `ogg`).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Mp3 => "mp3",
            Self::Ogg => "ogg",
        }
    }

    /// Most channels the format holds here.
    pub fn max_channels(self) -> u16 {
        match self {
            Self::Wav => 32,
            Self::Ogg => crate::sink::OGG_MAX_CHANNELS,
            Self::Mp3 => crate::sink::MP3_MAX_CHANNELS,
        }
    }
}

/// Everything needed to start a recording.
#[derive(Debug, Clone)]
pub struct RecordingParams {
    /// Recordings directory; files go to `{root}/{YYYY}/{MM}/{DD}/`.
    pub root: PathBuf,
    /// Recording id (1–128 of `[A-Za-z0-9_-]`); the file stem.
    pub recording_uuid: String,
    /// Call uuid, for the sidecar and the record event.
    pub call_uuid: String,
    /// Conversation uuid, for the sidecar and the record event.
    pub conversation_uuid: String,
    /// Channel layout.
    pub layout: ChannelLayout,
    /// File format.
    pub format: RecordFormat,
    /// Wall-clock start (names the date directory, stamps the sidecar).
    pub wall_start: SystemTime,
    /// Timeline tuning.
    pub timeline: TimelineConfig,
    /// How often the file is made consistent on disk; must be in (0, 1 s]. 500 ms is good.
    pub checkpoint_interval: Duration,
}

/// Who a leg is, for the sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegInfo {
    /// The leg's uuid.
    pub uuid: String,
    /// Caller id.
    pub from: String,
    /// Destination.
    pub to: String,
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingState {
    /// Finished normally.
    Complete,
    /// Repaired after a crash.
    Recovered,
    /// Stopped by an error (the reason); the file is still playable.
    Failed(String),
}

/// What the server needs for the record event once a recording has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Recording id.
    pub recording_uuid: String,
    /// Call uuid.
    pub call_uuid: String,
    /// Conversation uuid.
    pub conversation_uuid: String,
    /// Audio file.
    pub path: PathBuf,
    /// Sidecar file.
    pub sidecar: PathBuf,
    /// Format.
    pub format: RecordFormat,
    /// Channels.
    pub channels: u16,
    /// File size in bytes.
    pub size: u64,
    /// Wall-clock start.
    pub start_time: SystemTime,
    /// Wall-clock end.
    pub end_time: SystemTime,
    /// Audio duration in the file.
    pub duration: Duration,
    /// How it ended.
    pub state: RecordingState,
}

struct OpenStay {
    leg: LegKey,
    channel_idx: usize,
    entry_idx: usize,
}

/// A recording being written (see the crate docs for the run loop).
pub struct Recording {
    path: PathBuf,
    sidecar_path: PathBuf,
    sidecar: Sidecar,
    timeline: RecordingTimeline,
    sink: Option<Box<dyn Sink>>,
    buf: Vec<i16>,
    start: Instant,
    checkpoint_interval: Duration,
    last_checkpoint: Instant,
    last_poll: Instant,
    stopped: Option<String>,
    size_limited: bool,
    open: Vec<OpenStay>,
    /// Every leg ever added, with the role it got on its first join.
    known: Vec<(LegKey, LegRole)>,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("recording_uuid", &self.sidecar.recording_uuid)
            .field("path", &self.path)
            .field("channels", &self.sidecar.channels)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

fn date_dir(root: &Path, t: SystemTime) -> PathBuf {
    let s = format_time(t);
    // "YYYY-MM-DDT..." — format_time always yields this shape.
    root.join(&s[0..4]).join(&s[5..7]).join(&s[8..10])
}

fn fnv32(s: &str) -> u32 {
    s.bytes().fold(0x811C_9DC5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn channel_map(layout: ChannelLayout) -> Vec<ChannelEntry> {
    (1..=layout.channels())
        .map(|channel| ChannelEntry {
            channel,
            content: match (layout, channel) {
                (ChannelLayout::Mono, _) => ChannelContent::Mix,
                (ChannelLayout::Split, 1) => ChannelContent::CallerSent,
                (ChannelLayout::Split, _) => ChannelContent::CallerHeard,
                (ChannelLayout::Multi(_), _) => ChannelContent::Participant,
            },
            legs: Vec::new(),
        })
        .collect()
}

fn sink_error(path: &Path, e: SinkError) -> RecordError {
    match e {
        SinkError::Io(source) => RecordError::io(path, source),
        SinkError::SizeLimit => RecordError::SizeLimit {
            path: path.to_path_buf(),
        },
        SinkError::Encoder { codec, reason } => RecordError::Encoder { codec, reason },
    }
}

fn open_file(path: &Path) -> std::io::Result<Box<dyn RecordWriter>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    Ok(Box::new(f))
}

impl Recording {
    /// Creates `{root}/{YYYY}/{MM}/{DD}/{recording_uuid}.{ext}` and its sidecar (state
    /// `recording`); the file is playable (empty) from here on.
    pub fn create(params: RecordingParams, now: Instant) -> Result<Self, RecordError> {
        Self::create_with(params, now, open_file)
    }

    /// Like [`Recording::create`] but the audio file is opened by `open` (given the path
    /// it must write); used to inject failing writers in tests.
    pub fn create_with(
        params: RecordingParams,
        now: Instant,
        open: impl FnOnce(&Path) -> std::io::Result<Box<dyn RecordWriter>>,
    ) -> Result<Self, RecordError> {
        let invalid = |m: String| Err(RecordError::InvalidParams(m));
        if !valid_uuid(&params.recording_uuid) {
            return invalid("recording_uuid must be 1-128 of [A-Za-z0-9_-]".into());
        }
        params
            .layout
            .validate()
            .map_err(RecordError::InvalidParams)?;
        let channels = params.layout.channels();
        if channels > params.format.max_channels() {
            return Err(RecordError::TooManyChannels {
                format: params.format.extension(),
                channels,
                max: params.format.max_channels(),
            });
        }
        if params.checkpoint_interval.is_zero()
            || params.checkpoint_interval > MAX_CHECKPOINT_INTERVAL
        {
            return invalid("checkpoint_interval must be in (0, 1 s]".into());
        }
        let dir = date_dir(&params.root, params.wall_start);
        fs::create_dir_all(&dir).map_err(|e| RecordError::io(&dir, e))?;
        let file = format!("{}.{}", params.recording_uuid, params.format.extension());
        let path = dir.join(&file);
        let sidecar_path = dir.join(format!("{}.json", params.recording_uuid));
        let writer = open(&path).map_err(|e| RecordError::io(&path, e))?;
        let sink = Self::make_sink(&params, writer, channels).and_then(|mut s| {
            s.checkpoint()?;
            Ok(s)
        });
        let sink = match sink {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(sink_error(&path, e));
            }
        };
        let sidecar = Sidecar {
            version: SIDECAR_VERSION,
            recording_uuid: params.recording_uuid.clone(),
            call_uuid: params.call_uuid.clone(),
            conversation_uuid: params.conversation_uuid.clone(),
            format: params.format,
            sample_rate: SAMPLE_RATE,
            channels,
            layout: params.layout.name(),
            state: SidecarState::Recording,
            reason: None,
            start_time: params.wall_start,
            end_time: None,
            size: None,
            duration_ms: None,
            file,
            channel_map: channel_map(params.layout),
        };
        if let Err(e) = sidecar.store(&sidecar_path) {
            drop(sink);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(Self {
            path,
            sidecar_path,
            sidecar,
            timeline: RecordingTimeline::new(params.layout, params.timeline, now),
            sink: Some(sink),
            // 100 ms of frames; a drain after a held-back stretch grows it once.
            buf: Vec::with_capacity(usize::from(channels) * 1_600),
            start: now,
            checkpoint_interval: params.checkpoint_interval,
            last_checkpoint: now,
            last_poll: now,
            stopped: None,
            size_limited: false,
            open: Vec::new(),
            known: Vec::new(),
        })
    }

    fn make_sink(
        params: &RecordingParams,
        writer: Box<dyn RecordWriter>,
        channels: u16,
    ) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match params.format {
            RecordFormat::Wav => Box::new(WavSink::new(writer, channels)?),
            RecordFormat::Mp3 => Box::new(Mp3Sink::new(writer, channels)?),
            RecordFormat::Ogg => {
                let comments = [
                    format!("CALLMUX_RECORDING_UUID={}", params.recording_uuid),
                    format!("CALLMUX_CALL_UUID={}", params.call_uuid),
                    format!("CALLMUX_CONVERSATION_UUID={}", params.conversation_uuid),
                ];
                let serial = fnv32(&params.recording_uuid);
                Box::new(OggOpusSink::new(writer, channels, serial, &comments)?)
            }
        })
    }

    /// The audio file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar file.
    pub fn sidecar_path(&self) -> &Path {
        &self.sidecar_path
    }

    /// The recording id.
    pub fn recording_uuid(&self) -> &str {
        &self.sidecar.recording_uuid
    }

    /// Channels of the file.
    pub fn channels(&self) -> u16 {
        self.sidecar.channels
    }

    /// The sidecar as last written.
    pub fn sidecar(&self) -> &Sidecar {
        &self.sidecar
    }

    /// Timeline counters (loss, late, drift, silence).
    pub fn stats(&self) -> TimelineStats {
        self.timeline.stats()
    }

    fn ms_since_start(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Adds a leg; returns its channel (0-based). The sidecar is rewritten.
    pub fn add_leg(
        &mut self,
        leg: LegKey,
        info: LegInfo,
        now: Instant,
    ) -> Result<u16, RecordError> {
        if self.open.iter().any(|o| o.leg == leg) {
            return Ok(self.timeline.add_leg(leg, now));
        }
        let channel = self.timeline.add_leg(leg, now);
        let role = match self.known.iter().find(|(k, _)| *k == leg) {
            Some(&(_, role)) => role,
            None => {
                let role = match (self.known.len(), self.timeline.layout()) {
                    (0, _) => LegRole::Caller,
                    (_, ChannelLayout::Multi(_)) => LegRole::Participant,
                    _ => LegRole::Callee,
                };
                self.known.push((leg, role));
                role
            }
        };
        let channel_idx =
            usize::from(channel).min(self.sidecar.channel_map.len().saturating_sub(1));
        let joined_ms = self.ms_since_start(now);
        let Some(entry) = self.sidecar.channel_map.get_mut(channel_idx) else {
            return Ok(channel);
        };
        entry.legs.push(SidecarLeg {
            leg_uuid: info.uuid,
            from: info.from,
            to: info.to,
            role,
            joined_ms,
            left_ms: None,
        });
        self.open.push(OpenStay {
            leg,
            channel_idx,
            entry_idx: entry.legs.len() - 1,
        });
        self.sidecar.store(&self.sidecar_path)?;
        Ok(channel)
    }

    /// Removes a leg (no-op for a leg not in the recording). The sidecar is rewritten.
    pub fn remove_leg(&mut self, leg: LegKey, now: Instant) -> Result<(), RecordError> {
        self.timeline.remove_leg(leg, now);
        let Some(i) = self.open.iter().position(|o| o.leg == leg) else {
            return Ok(());
        };
        let stay = self.open.swap_remove(i);
        let left = self.ms_since_start(now);
        self.close_stay(&stay, left);
        self.sidecar.store(&self.sidecar_path)
    }

    fn close_stay(&mut self, stay: &OpenStay, left_ms: u64) {
        if let Some(l) = self
            .sidecar
            .channel_map
            .get_mut(stay.channel_idx)
            .and_then(|c| c.legs.get_mut(stay.entry_idx))
        {
            l.left_ms = Some(left_ms.max(l.joined_ms));
        }
    }

    /// See [`RecordingTimeline::push_received`].
    pub fn push_received(
        &mut self,
        leg: LegKey,
        ssrc: u32,
        rtp_ts: u32,
        clock_rate: u32,
        arrival: Instant,
        pcm: &[i16],
    ) {
        self.timeline
            .push_received(leg, ssrc, rtp_ts, clock_rate, arrival, pcm);
    }

    /// See [`RecordingTimeline::push_tail`].
    pub fn push_tail(&mut self, leg: LegKey, ssrc: u32, rtp_ts: u32, clock_rate: u32, pcm: &[i16]) {
        self.timeline.push_tail(leg, ssrc, rtp_ts, clock_rate, pcm);
    }

    /// See [`RecordingTimeline::push_played`].
    pub fn push_played(&mut self, leg: LegKey, now: Instant, pcm: &[i16]) {
        self.timeline.push_played(leg, now, pcm);
    }

    fn write_buf(&mut self) -> Result<(), RecordError> {
        if self.buf.is_empty() || self.size_limited {
            return Ok(());
        }
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        match sink.write(&self.buf) {
            Ok(()) => Ok(()),
            Err(SinkError::SizeLimit) => {
                self.size_limited = true;
                self.stopped = Some("size limit reached".into());
                Err(RecordError::SizeLimit {
                    path: self.path.clone(),
                })
            }
            Err(e) => {
                self.stopped = Some(e.to_string());
                Err(sink_error(&self.path, e))
            }
        }
    }

    /// Writes every final frame to the file and checkpoints when the interval has passed.
    /// Call it after pushing packets and at [`Recording::next_deadline`]. After an error
    /// the recording writes nothing more; call [`Recording::fail`] (or
    /// [`Recording::finish`] after [`RecordError::SizeLimit`]).
    pub fn poll(&mut self, now: Instant) -> Result<(), RecordError> {
        if let Some(reason) = &self.stopped {
            return Err(RecordError::Stopped(reason.clone()));
        }
        self.last_poll = now;
        self.buf.clear();
        self.timeline.drain(now, &mut self.buf);
        self.write_buf()?;
        if now.saturating_duration_since(self.last_checkpoint) >= self.checkpoint_interval {
            self.last_checkpoint = now;
            if let Some(sink) = self.sink.as_mut() {
                if let Err(e) = sink.checkpoint() {
                    self.stopped = Some(e.to_string());
                    return Err(sink_error(&self.path, e));
                }
            }
        }
        Ok(())
    }

    /// When `poll` must run again even if no packet arrives (None once stopped).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        Some((self.last_checkpoint + self.checkpoint_interval).min(self.last_poll + POLL_INTERVAL))
    }

    fn duration(&self) -> Duration {
        let frames = self.sink.as_ref().map_or(0, |s| s.frames());
        crate::recover::frames_to_duration(frames, SAMPLE_RATE)
    }

    fn summary(
        &self,
        size: u64,
        end_time: SystemTime,
        duration: Duration,
        state: RecordingState,
    ) -> RecordingSummary {
        RecordingSummary {
            recording_uuid: self.sidecar.recording_uuid.clone(),
            call_uuid: self.sidecar.call_uuid.clone(),
            conversation_uuid: self.sidecar.conversation_uuid.clone(),
            path: self.path.clone(),
            sidecar: self.sidecar_path.clone(),
            format: self.sidecar.format,
            channels: self.sidecar.channels,
            size,
            start_time: self.sidecar.start_time,
            end_time,
            duration,
            state,
        }
    }

    fn close_all_stays(&mut self, at_ms: u64) {
        let open = std::mem::take(&mut self.open);
        for stay in &open {
            self.close_stay(stay, at_ms);
        }
    }

    /// Ends the recording: the rest of the timeline (up to `now`) is written, the file
    /// finalized and synced, the sidecar marked `complete`. On error the recording has
    /// already been stopped as by [`Recording::fail`] (file repaired, sidecar `failed`).
    pub fn finish(
        mut self,
        now: Instant,
        wall_end: SystemTime,
    ) -> Result<RecordingSummary, RecordError> {
        if let Some(reason) = self.stopped.clone() {
            if !self.size_limited {
                self.fail_inner(&reason, wall_end);
                return Err(RecordError::Stopped(reason));
            }
        }
        self.buf.clear();
        self.timeline.finish(now, &mut self.buf);
        match self.write_buf() {
            Ok(()) | Err(RecordError::SizeLimit { .. }) => {}
            Err(e) => {
                self.fail_inner(&e.to_string(), wall_end);
                return Err(e);
            }
        }
        let duration = self.duration();
        let finished = match self.sink.take() {
            Some(sink) => sink.finish().map_err(|e| sink_error(&self.path, e)),
            None => Ok(()),
        };
        let synced = finished.and_then(|()| {
            let f = fs::File::open(&self.path).map_err(|e| RecordError::io(&self.path, e))?;
            f.sync_all().map_err(|e| RecordError::io(&self.path, e))?;
            f.metadata()
                .map(|m| m.len())
                .map_err(|e| RecordError::io(&self.path, e))
        });
        let size = match synced {
            Ok(size) => size,
            Err(e) => {
                self.fail_inner(&e.to_string(), wall_end);
                return Err(e);
            }
        };
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.close_all_stays(ms);
        self.sidecar.state = SidecarState::Complete;
        self.sidecar.end_time = Some(wall_end);
        self.sidecar.size = Some(size);
        self.sidecar.duration_ms = Some(ms);
        self.sidecar.store(&self.sidecar_path)?;
        Ok(self.summary(size, wall_end, duration, RecordingState::Complete))
    }

    /// Stops after an error: the file is repaired to what is on disk (header sizes, partial
    /// frames or pages dropped) and the sidecar marked `failed` with `reason`. Never fails;
    /// problems while cleaning up are folded into the returned reason.
    pub fn fail(mut self, reason: &str, wall_end: SystemTime) -> RecordingSummary {
        self.fail_inner(reason, wall_end)
    }

    fn fail_inner(&mut self, reason: &str, wall_end: SystemTime) -> RecordingSummary {
        let frames_duration = self.duration();
        // Dropping the sink flushes what it can and ignores errors.
        drop(self.sink.take());
        let mut reason = reason.to_string();
        let (duration, size) = match repair_file(&self.path, self.sidecar.format) {
            Ok(r) => (r.duration, r.size),
            Err(e) => {
                reason.push_str(&format!("; repair failed: {e}"));
                let size = fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
                (frames_duration, size)
            }
        };
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.close_all_stays(ms);
        self.sidecar.state = SidecarState::Failed;
        self.sidecar.reason = Some(reason.clone());
        self.sidecar.end_time = Some(wall_end);
        self.sidecar.size = Some(size);
        self.sidecar.duration_ms = Some(ms);
        if let Err(e) = self.sidecar.store(&self.sidecar_path) {
            reason.push_str(&format!("; sidecar not updated: {e}"));
        }
        self.stopped = Some(reason.clone());
        self.summary(size, wall_end, duration, RecordingState::Failed(reason))
    }
}
