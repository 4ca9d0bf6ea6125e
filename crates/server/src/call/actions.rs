//! What the call does off its media loop: prompts prepared by other tasks (TTS, stream
//! downloads), input answers fetched from the application, and the events of recordings
//! that failed.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use callmux_ncco::{ActionId, CallRunner, EventMethod, RunnerInput};
use callmux_record::RecordingSummary;
use callmux_webhook::HttpMethod;
use tracing::{info, warn};

use super::InboundCall;
use crate::playback::Prompt;

/// A recording that could not be started or written.
pub(super) struct FailedRecording {
    pub(super) id: ActionId,
    pub(super) recording_uuid: String,
    pub(super) reason: String,
    pub(super) start_time: Option<SystemTime>,
    /// A partial file left on disk.
    pub(super) path: Option<String>,
}

impl FailedRecording {
    pub(super) fn from_summary(id: ActionId, s: &RecordingSummary, reason: String) -> Self {
        Self {
            id,
            recording_uuid: s.recording_uuid.clone(),
            reason,
            start_time: Some(s.start_time),
            path: (s.size > 0).then(|| s.path.display().to_string()),
        }
    }
}

/// Work finished off the call task.
pub(super) enum Job {
    /// A prompt's audio is ready.
    PlayReady {
        id: ActionId,
        pcm: Vec<i16>,
        loop_count: u32,
    },
    /// A prompt could not be prepared.
    PlayFailed { id: ActionId, reason: String },
    /// Something for the runner (the answer to an input).
    Runner(RunnerInput),
    /// A `ringbackTone` file is ready.
    RingbackReady { pcm: Vec<i16> },
}

/// The NCCO's `eventMethod` as the queue's method.
pub(super) fn http_method(m: EventMethod) -> HttpMethod {
    match m {
        EventMethod::Get => HttpMethod::Get,
        EventMethod::Post => HttpMethod::Post,
    }
}

impl InboundCall {
    /// Ends the call because something it needed failed: a `failed` event (before
    /// `completed`) names the reason.
    pub(super) fn fail_call(&mut self, reason: String, runner: &mut CallRunner) {
        warn!(%reason, "the call failed; hanging up");
        self.failure.get_or_insert(reason);
        self.hangup_requested = true;
        self.prompt = None;
        self.pending_play = None;
        runner.handle_input(RunnerInput::CallEnded, Instant::now());
    }

    /// Handles work finished off the call task.
    pub(super) async fn on_job(&mut self, job: Job, runner: &mut CallRunner) {
        let now = Instant::now();
        match job {
            Job::PlayReady {
                id,
                pcm,
                loop_count,
            } if self.pending_play == Some(id) => {
                self.pending_play = None;
                if pcm.is_empty() {
                    runner.handle_input(RunnerInput::PlayFinished { id }, now);
                    return;
                }
                info!(
                    action = id.0,
                    seconds = pcm.len() as f64 / 16_000.0,
                    loop_count,
                    "prompt playing"
                );
                self.prompt = Some(Prompt::new(id, Arc::new(pcm), loop_count));
                self.next_play.get_or_insert(now);
            }
            Job::PlayFailed { id, reason } if self.pending_play == Some(id) => {
                self.fail_call(reason, runner);
            }
            // A prompt stopped (barge-in) before it was ready.
            Job::PlayReady { .. } | Job::PlayFailed { .. } => {}
            Job::Runner(input) => runner.handle_input(input, now),
            Job::RingbackReady { pcm } => self.set_ringback_file(pcm),
        }
    }

    /// Sends the record_failed events of recordings that failed, then tells the runner.
    pub(super) async fn report_failed_recordings(&mut self, runner: &mut CallRunner) {
        for f in std::mem::take(&mut self.failed_recordings) {
            crate::metrics::recording_failed();
            let (url, method) = self.record_target(f.id);
            let ev = callmux_webhook::RecordFailedEvent {
                status: callmux_webhook::RecordFailedStatus::RecordFailed,
                uuid: self.uuid.clone(),
                conversation_uuid: self.conversation_uuid.clone(),
                recording_uuid: f.recording_uuid,
                timestamp: callmux_webhook::Timestamp::from_system_time(SystemTime::now()),
                reason: f.reason.clone(),
                start_time: f
                    .start_time
                    .map(callmux_webhook::Timestamp::from_system_time),
                path: f.path,
            };
            self.ctx
                .events
                .emit(&self.uuid, url.as_deref(), method, &ev)
                .await;
            self.record_targets.remove(&f.id.0);
            runner.handle_input(
                RunnerInput::RecordingFailed {
                    id: f.id,
                    reason: f.reason,
                },
                Instant::now(),
            );
        }
    }

    /// Where recording `id`'s events go.
    pub(super) fn record_target(&self, id: ActionId) -> (Option<String>, HttpMethod) {
        match self.record_targets.get(&id.0) {
            Some((Some(url), method)) => (Some(url.clone()), *method),
            _ => (
                self.ctx.config.event_url.clone(),
                self.ctx.config.event_method,
            ),
        }
    }

    /// Prepares a talk or stream prompt off the call task; `Job::PlayReady` brings it back.
    pub(super) fn start_prompt(&mut self, id: ActionId, source: callmux_ncco::PlaySource) {
        self.pending_play = Some(id);
        self.prompt = None;
        let tx = self.jobs_tx.clone();
        match source {
            callmux_ncco::PlaySource::Talk(talk) => {
                tokio::spawn(async move {
                    let job = match crate::playback::synthesize(&talk).await {
                        Ok(pcm) => Job::PlayReady {
                            id,
                            pcm,
                            loop_count: talk.loop_count,
                        },
                        Err(reason) => Job::PlayFailed {
                            id,
                            reason: format!("talk: {reason}"),
                        },
                    };
                    let _ = tx.send(job);
                });
            }
            callmux_ncco::PlaySource::Stream(stream) => {
                let client = self.ctx.http.clone();
                let data_dir = self.ctx.config.data_dir.clone();
                tokio::spawn(async move {
                    let job = match crate::playback::load_stream(&client, &data_dir, &stream).await
                    {
                        Ok(pcm) => Job::PlayReady {
                            id,
                            pcm,
                            loop_count: stream.loop_count,
                        },
                        Err(reason) => Job::PlayFailed {
                            id,
                            reason: format!("stream: {reason}"),
                        },
                    };
                    let _ = tx.send(job);
                });
            }
        }
    }

    /// Sends an input's result to its eventUrl (or the call's); the answer comes back as
    /// `InputAnswer`, `InputAnswerFailed` or `InputAnswerInvalid`.
    pub(super) fn submit_input(
        &mut self,
        id: ActionId,
        input: &callmux_ncco::Input,
        result: &callmux_ncco::InputResult,
        runner: &mut CallRunner,
    ) {
        let event = callmux_webhook::InputEvent {
            uuid: self.uuid.clone(),
            conversation_uuid: self.conversation_uuid.clone(),
            timestamp: callmux_webhook::Timestamp::from_system_time(SystemTime::now()),
            dtmf: callmux_webhook::Dtmf {
                digits: result.dtmf.clone(),
                timed_out: result.timed_out,
            },
            from: self.from.clone(),
            to: self.to.clone(),
        };
        info!(action = id.0, digits = %result.dtmf, timed_out = result.timed_out, "input collected");
        let Some(url) = input
            .event_url
            .clone()
            .or_else(|| self.ctx.config.event_url.clone())
        else {
            runner.handle_input(
                RunnerInput::InputAnswerFailed {
                    id,
                    reason: "no eventUrl for the input and no event URL configured".into(),
                },
                Instant::now(),
            );
            return;
        };
        let method = http_method(input.event_method);
        let body = serde_json::to_value(&event).unwrap_or_default();
        let ctx = Arc::clone(&self.ctx);
        let tx = self.jobs_tx.clone();
        tokio::spawn(async move {
            let fallback = ctx
                .config
                .answer
                .as_ref()
                .and_then(|a| a.fallback_url.clone());
            let result = crate::answer::fetch_ncco(
                &ctx.http,
                &url,
                fallback.as_deref(),
                method,
                &body,
                &ctx.caps,
            )
            .await;
            let input = match result {
                Ok(ncco) => RunnerInput::InputAnswer { id, ncco },
                Err(crate::answer::FetchError::Invalid { error, .. }) => {
                    RunnerInput::InputAnswerInvalid { id, error }
                }
                Err(e) => {
                    info!(reason = %e.reason(), "no NCCO in the input answer; the NCCO goes on");
                    RunnerInput::InputAnswerFailed {
                        id,
                        reason: e.reason(),
                    }
                }
            };
            let _ = tx.send(Job::Runner(input));
        });
    }
}
