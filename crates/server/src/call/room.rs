//! `conversation`: the call joins a named conference. What the caller says goes to the
//! conference task; what it hears (everyone but itself) comes back every 20 ms and is sent
//! to the caller and recorded as heard. The NCCO goes on when the conference ends or the
//! call leaves it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callmux_ncco::{ActionId, CallRunner, Conversation, RunnerInput};
use tracing::{info, warn};

use super::{InboundCall, CALLER};
use crate::conference::{JoinRequest, Membership, RoomOutput};

/// The conference the call is in.
pub(super) struct ActiveRoom {
    pub(super) id: ActionId,
    pub(super) membership: Membership,
}

impl InboundCall {
    /// Joins the conversation named by the action.
    pub(super) async fn join_conversation(
        &mut self,
        id: ActionId,
        conv: Conversation,
        runner: &mut CallRunner,
    ) {
        let music_on_hold = match &conv.music_on_hold_url {
            Some(url) => {
                let stream = callmux_ncco::Stream {
                    stream_url: url.clone(),
                    level: 0.0,
                    barge_in: false,
                    loop_count: 0,
                };
                let load = crate::playback::load_stream(
                    &self.ctx.http,
                    &self.ctx.config.data_dir,
                    &stream,
                );
                match tokio::time::timeout(Duration::from_secs(10), load).await {
                    Ok(Ok(pcm)) => Some(Arc::new(pcm)),
                    Ok(Err(e)) => {
                        warn!(%url, error = %e, "music on hold unavailable; silence instead");
                        None
                    }
                    Err(_) => {
                        warn!(%url, "music on hold took too long; silence instead");
                        None
                    }
                }
            }
            None => None,
        };
        let req = JoinRequest {
            leg_uuid: self.uuid.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            start_on_enter: conv.start_on_enter,
            end_on_exit: conv.end_on_exit,
            mute: conv.mute,
            can_speak: conv.can_speak.clone(),
            can_hear: conv.can_hear.clone(),
            record: conv.record,
            music_on_hold,
        };
        match self.ctx.conferences.join(&conv.name, req).await {
            Ok(membership) => {
                info!(action = id.0, conversation = %conv.name, "joined the conversation");
                self.room = Some(ActiveRoom { id, membership });
            }
            Err(e) => {
                warn!(action = id.0, error = %e, "cannot join the conversation");
                runner.handle_input(RunnerInput::ConversationLeft { id }, Instant::now());
            }
        }
    }

    /// A frame (or the end) from the conference.
    pub(super) fn on_room_output(
        &mut self,
        out: Option<RoomOutput>,
        runner: &mut CallRunner,
        now: Instant,
    ) {
        match out {
            Some(RoomOutput::Frame(frame)) => {
                if let Err(e) = self.leg.send_pcm_frame(&frame[..]) {
                    warn!(error = %e, "cannot send conference audio");
                }
                for r in self.recordings.values_mut() {
                    r.rec.push_played(CALLER, now, &frame[..]);
                }
            }
            Some(RoomOutput::Ended) | None => {
                if let Some(room) = self.room.take() {
                    info!(action = room.id.0, conversation = %room.membership.name, "left the conversation");
                    runner.handle_input(RunnerInput::ConversationLeft { id: room.id }, now);
                }
            }
        }
    }
}
