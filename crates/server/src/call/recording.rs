//! Recordings started by `record` actions on an inbound call: starting one (with the legs
//! already up), feeding it the caller's released audio, `endOnSilence`, and finishing it into
//! a record event (or a failed recording reported before the call moves on).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use callmux_ncco::{ActionId, CallRunner, Record, RecordStopReason, RunnerInput};
use callmux_record::{
    ChannelLayout, LegInfo, LegKey, RecordFormat, Recording, RecordingParams, RecordingSummary,
    SilenceDetector, TimelineConfig,
};
use callmux_webhook::RecordState;
use tracing::{info, warn};

use super::actions::FailedRecording;
use super::{InboundCall, CALLER};
use crate::blocking;

/// A recording started by a `record` action.
pub(super) struct ActiveRecording {
    pub(super) rec: Recording,
    /// `endOnSilence`: the detector, its length, when audio was last fed (no packets at all
    /// counts as silence too), and whether the runner was told.
    silence: Option<SilenceWatch>,
    /// Counted in the active recordings gauge while it lives.
    _active: crate::metrics::RecordingGauge,
    /// This host's note that it writes the file (crash recovery at the next start).
    _live: crate::recovery::LiveMarker,
}

/// Where a leg's decoder tail goes (`MediaLeg::flush_tail`, `flush_paused`): into every
/// recording, as leg `key`'s audio, and nowhere else (live audio does not need the 4 ms).
pub(super) fn tail_into(
    recordings: &mut BTreeMap<u32, ActiveRecording>,
    key: LegKey,
) -> impl FnMut(u32, u32, u32, &[i16]) + '_ {
    move |ssrc, ts, clock, pcm| {
        for r in recordings.values_mut() {
            r.rec.push_tail(key, ssrc, ts, clock, pcm);
        }
    }
}

/// Watches the caller's audio for `endOnSilence`.
struct SilenceWatch {
    detector: SilenceDetector,
    min: Duration,
    last_audio: Instant,
    reported: bool,
}

impl SilenceWatch {
    /// Level at or below which the caller counts as silent.
    const THRESHOLD_DBFS: f32 = -45.0;

    fn new(min: Duration, now: Instant) -> Self {
        Self {
            detector: SilenceDetector::new(Self::THRESHOLD_DBFS, min),
            min,
            last_audio: now,
            reported: false,
        }
    }

    /// Feeds a frame; true when the silence is complete (once).
    fn feed(&mut self, at: Instant, pcm: &[i16]) -> bool {
        self.last_audio = at;
        let fired = self.detector.feed(at, pcm);
        self.fire(fired)
    }

    /// True once when no audio at all has arrived for `min`.
    fn check_idle(&mut self, now: Instant) -> bool {
        let idle = now.saturating_duration_since(self.last_audio) >= self.min;
        self.fire(idle)
    }

    fn fire(&mut self, cond: bool) -> bool {
        if cond && !self.reported {
            self.reported = true;
            return true;
        }
        false
    }
}

impl InboundCall {
    /// Moves released caller audio into every active recording, then lets them write.
    pub(super) fn feed_recordings(&mut self, now: Instant, runner: &mut CallRunner) {
        let recordings = &mut self.recordings;
        let mut silent = Vec::new();
        let mut transcode_to = self
            .connect
            .as_mut()
            .and_then(|c| c.media.as_mut())
            .filter(|m| !m.can_relay_from(&self.leg));
        let room = self.room.as_ref();
        self.leg.drain(now, |ssrc, ts, clock, arrival, pcm| {
            if let Some(callee) = transcode_to.as_mut() {
                let _ = callee.send_pcm(pcm);
            }
            if let Some(room) = room {
                room.membership.say(crate::conference::Spoken {
                    ssrc,
                    rtp_ts: ts,
                    clock_rate: clock,
                    arrival,
                    pcm: pcm.to_vec(),
                });
            }
            for (id, r) in recordings.iter_mut() {
                r.rec.push_received(CALLER, ssrc, ts, clock, arrival, pcm);
                if r.silence.as_mut().is_some_and(|w| w.feed(arrival, pcm)) {
                    silent.push(*id);
                }
            }
        });
        // The decoder's last 4 ms once the caller pauses: for the recordings only.
        self.leg
            .flush_paused(now, tail_into(&mut *recordings, CALLER));
        for (id, r) in recordings.iter_mut() {
            if r.silence.as_mut().is_some_and(|w| w.check_idle(now)) {
                silent.push(*id);
            }
        }
        for id in silent {
            info!(action = id, "caller silent: endOnSilence reached");
            runner.handle_input(RunnerInput::SilenceDetected { id: ActionId(id) }, now);
        }
        let mut failed = Vec::new();
        for (id, r) in &mut self.recordings {
            if let Err(e) = r.rec.poll(now) {
                failed.push((*id, e.to_string()));
            }
        }
        for (id, reason) in failed {
            if let Some(r) = self.recordings.remove(&id) {
                let summary = blocking(|| r.rec.fail(&reason, SystemTime::now()));
                log_record_failed(&summary, &reason);
                self.failed_recordings.push(FailedRecording::from_summary(
                    ActionId(id),
                    &summary,
                    reason,
                ));
            }
        }
    }

    pub(super) fn begin_recording(&mut self, id: ActionId, record: &Record, now: Instant) {
        let recording_uuid = uuid::Uuid::new_v4().to_string();
        match self.start_recording(record, &recording_uuid, now) {
            Ok(rec) => {
                info!(recording_uuid = rec.recording_uuid(), path = %rec.path().display(), "recording started");
                let silence = record
                    .end_on_silence
                    .map(|s| SilenceWatch::new(Duration::from_secs(u64::from(s)), now));
                let live = blocking(|| {
                    crate::recovery::LiveMarker::create(
                        &self.ctx.config.data_dir,
                        rec.recording_uuid(),
                        rec.path(),
                    )
                });
                self.recordings.insert(
                    id.0,
                    ActiveRecording {
                        rec,
                        silence,
                        _active: crate::metrics::RecordingGauge::start(),
                        _live: live,
                    },
                );
            }
            Err(e) => {
                warn!(error = %e, "cannot start recording");
                self.failed_recordings.push(FailedRecording {
                    id,
                    recording_uuid,
                    reason: format!("cannot start recording: {e}"),
                    start_time: None,
                    path: None,
                });
            }
        }
    }

    fn start_recording(
        &mut self,
        record: &Record,
        recording_uuid: &str,
        now: Instant,
    ) -> anyhow::Result<Recording> {
        let layout = match (record.channels, record.split.is_some()) {
            (Some(n), _) => ChannelLayout::Multi(n),
            (None, true) => ChannelLayout::Split,
            (None, false) => ChannelLayout::Mono,
        };
        let format = match record.format.as_str() {
            "mp3" => RecordFormat::Mp3,
            "ogg" => RecordFormat::Ogg,
            _ => RecordFormat::Wav,
        };
        let params = RecordingParams {
            root: self.ctx.config.recordings_dir.clone(),
            recording_uuid: recording_uuid.to_string(),
            call_uuid: self.uuid.clone(),
            conversation_uuid: self.conversation_uuid.clone(),
            layout,
            format,
            wall_start: SystemTime::now(),
            timeline: TimelineConfig {
                reorder_delay: self.ctx.config.reorder_delay,
                ..TimelineConfig::default()
            },
            checkpoint_interval: self.ctx.config.checkpoint_interval,
        };
        let mut rec = blocking(|| Recording::create(params, now))?;
        rec.add_leg(
            CALLER,
            LegInfo {
                uuid: self.uuid.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
            },
            now,
        )?;
        for (key, info) in &self.joined_legs {
            rec.add_leg(*key, info.clone(), now)?;
        }
        Ok(rec)
    }

    pub(super) async fn stop_recording(
        &mut self,
        id: ActionId,
        reason: &RecordStopReason,
        now: Instant,
    ) {
        if !self.recordings.contains_key(&id.0) {
            // Stopped before its beep finished: it never started.
            self.after_playout.retain(|(pending, _)| *pending != id);
            self.record_targets.remove(&id.0);
            return;
        }
        // Release what the reorder buffer still holds, into every recording, before
        // closing this one.
        let recordings = &mut self.recordings;
        self.leg.drain(
            now + Duration::from_secs(3600),
            |ssrc, ts, clock, arrival, pcm| {
                for r in recordings.values_mut() {
                    r.rec.push_received(CALLER, ssrc, ts, clock, arrival, pcm);
                }
            },
        );
        // And what its decoder still holds, so the stopping recording is not 2 ms short
        // when the caller spoke up to the end (the others get it seamlessly: the caller's
        // next packet starts from silence and adds to it).
        self.leg.flush_tail(tail_into(&mut *recordings, CALLER));
        // The bridged leg's too: when the call ends, the recording stops before that leg
        // has hung up, so its own end comes too late to reach the recording.
        if let Some(c) = self.connect.as_mut() {
            let key = c.key;
            if let Some(m) = c.media.as_mut() {
                m.flush_tail(tail_into(&mut *recordings, key));
            }
        }
        let Some(r) = self.recordings.remove(&id.0) else {
            return;
        };
        let recording_uuid = r.rec.recording_uuid().to_string();
        log_timeline_stats(&recording_uuid, &r.rec.stats());
        let path = r.rec.path().display().to_string();
        match blocking(|| r.rec.finish(now, SystemTime::now())) {
            Ok(summary) => {
                crate::metrics::recording_finished(summary.size);
                log_record_event(&summary, reason);
                let (url, method) = self.record_target(id);
                self.record_targets.remove(&id.0);
                let ev = crate::serve::record_event(
                    &summary,
                    self.ctx.config.http_listen,
                    RecordState::Complete,
                );
                self.ctx
                    .events
                    .emit(&self.uuid, url.as_deref(), method, &ev)
                    .await;
            }
            Err(e) => {
                warn!(error = %e, "recording could not be finalized");
                self.failed_recordings.push(FailedRecording {
                    id,
                    recording_uuid,
                    reason: format!("recording could not be finalized: {e}"),
                    start_time: None,
                    path: Some(path),
                });
            }
        }
    }
}

/// What the timeline did with each leg's packets, so a recording that lost audio explains
/// itself in the log (late drops, drift cuts and gaps, re-syncs) without the load harness.
fn log_timeline_stats(recording_uuid: &str, stats: &callmux_record::TimelineStats) {
    for l in stats
        .legs
        .iter()
        .filter(|l| l.frames_placed > 0 || l.late_frames > 0)
    {
        info!(
            %recording_uuid,
            channel = l.channel + 1,
            placed = l.frames_placed,
            late_samples = l.late_samples,
            tail_samples = l.tail_samples,
            dropped_tail_samples = l.dropped_tail_samples,
            cut_samples = l.cut_samples,
            gap_samples = l.gap_samples,
            overflow_samples = l.overflow_samples,
            drift_corrections = l.drift_corrections,
            late_resyncs = l.late_resyncs,
            reanchors = l.reanchors,
            "recording timeline"
        );
    }
}

fn log_record_event(s: &RecordingSummary, reason: &RecordStopReason) {
    info!(
        event = "record",
        recording_uuid = %s.recording_uuid,
        call_uuid = %s.call_uuid,
        conversation_uuid = %s.conversation_uuid,
        path = %s.path.display(),
        size = s.size,
        channels = s.channels,
        duration_ms = s.duration.as_millis() as u64,
        stop = ?reason,
        "recording finished"
    );
}

fn log_record_failed(s: &RecordingSummary, reason: &str) {
    warn!(
        event = "record_failed",
        recording_uuid = %s.recording_uuid,
        path = %s.path.display(),
        size = s.size,
        %reason,
        "recording stopped by an error; what was written is kept"
    );
}
