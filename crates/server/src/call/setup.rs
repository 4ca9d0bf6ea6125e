//! Setting a call up: media negotiation and the RTP port, `180 Ringing`, the NCCO (answer
//! URL with its fallback, or the static one), and `200 OK`, with the call status events of
//! each step (`rejected`, `ringing`, `failed`, `cancelled`, `answered`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use callmux_media::{CodecPreferences, SdpOrigin, SessionDescription};
use callmux_ncco::Ncco;
use callmux_sip::{Dialog, Peer, Request, ServerTxKey};
use callmux_webhook::CallStatus;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{InboundCall, ServerContext};
use crate::events::CallInfo;
use crate::media_leg::{bind_rtp, MediaLeg, PortLease};
use crate::sip_task::{CallInput, SipCommand, SipHandle};

/// The user part of a From/To URI (or the whole URI when it has none).
pub(super) fn user_part(uri: Option<&callmux_sip::Uri>) -> String {
    uri.map(|u| u.user.clone().unwrap_or_else(|| u.to_string()))
        .unwrap_or_default()
}

/// Sends a final error response and returns the status for the log.
fn reject(
    sip: &SipHandle,
    key: ServerTxKey,
    invite: &Request,
    status: u16,
    reason: &str,
    warning: &str,
) -> u16 {
    let mut r = invite.make_response(status, reason);
    if !warning.is_empty() {
        r.headers.push(
            "Warning",
            format!("399 callmux \"{}\"", sanitize_warning(warning)),
        );
    }
    if status == 503 {
        r.headers.push("Retry-After", "5");
    }
    sip.send(SipCommand::Respond { key, response: r });
    status
}

/// Warning text: no quotes or control characters, at most 300 characters.
fn sanitize_warning(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

/// Media negotiated and an RTP port bound, before the call is answered.
struct Prepared {
    leg: MediaLeg,
    origin: SdpOrigin,
    answer_sdp: String,
    local_tag: String,
}

/// Negotiates media and binds the RTP port. Errors: (SIP status sent, reason).
fn prepare(
    ctx: &Arc<ServerContext>,
    sip: &SipHandle,
    key: &ServerTxKey,
    invite: &Request,
) -> Result<Prepared, (u16, String)> {
    let fail = |status: u16, phrase: &str, reason: String| {
        reject(sip, key.clone(), invite, status, phrase, &reason);
        (status, reason)
    };
    let is_sdp = invite
        .content_type()
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/sdp"));
    if invite.body.is_empty() || !is_sdp {
        return Err(fail(
            488,
            "Not Acceptable Here",
            "an SDP offer is required in the INVITE (late offer is not supported)".into(),
        ));
    }
    let offer = SessionDescription::parse(&invite.body)
        .map_err(|e| fail(488, "Not Acceptable Here", format!("bad SDP: {e}")))?;
    let (socket, lease): (_, PortLease) = bind_rtp(&ctx.ports, ctx.config.media_ip)
        .map_err(|e| fail(503, "Service Unavailable", e.to_string()))?;
    let local_rtp = socket
        .local_addr()
        .map_err(|e| fail(500, "Server Internal Error", e.to_string()))?;
    let mut origin = SdpOrigin::new(ctx.next_seed());
    let (negotiated, answer_sdp) =
        callmux_media::answer(&offer, &CodecPreferences::default(), local_rtp, &mut origin)
            .map_err(|e| fail(488, "Not Acceptable Here", e.to_string()))?;
    let seed = ctx.next_seed();
    let leg = MediaLeg::new(socket, lease, negotiated, ctx.config.reorder_delay, seed)
        .map_err(|e| fail(488, "Not Acceptable Here", e.to_string()))?;
    Ok(Prepared {
        leg,
        origin,
        answer_sdp,
        local_tag: format!("{:016x}", ctx.next_seed()),
    })
}

/// Why the NCCO could not be had.
enum NoNcco {
    /// The caller cancelled while we waited (487 already sent by the SIP layer).
    Cancelled,
    /// The server is shutting down.
    Shutdown,
    /// The answer URL failed: SIP status, phrase, reason.
    Failed(u16, &'static str, String),
}

/// The NCCO for this call: from the answer URL (with the fallback URL), or the static one.
/// Watches for CANCEL meanwhile.
async fn obtain_ncco(
    ctx: &Arc<ServerContext>,
    info: &CallInfo,
    inputs: &mut mpsc::UnboundedReceiver<CallInput>,
) -> Result<Ncco, NoNcco> {
    let Some(answer) = &ctx.config.answer else {
        return Ok(ctx.ncco.clone());
    };
    let body = serde_json::json!({
        "to": info.to,
        "from": info.from,
        "uuid": info.uuid,
        "conversation_uuid": info.conversation_uuid,
    });
    let fetch = crate::answer::fetch_ncco(
        &ctx.http,
        &answer.url,
        answer.fallback_url.as_deref(),
        answer.method,
        &body,
        &ctx.caps,
    );
    tokio::pin!(fetch);
    let asked = Instant::now();
    loop {
        tokio::select! {
            result = &mut fetch => {
                crate::metrics::answer_url_latency(asked.elapsed(), result.is_ok());
                return result.map_err(|e| {
                    let reason = format!("answer_url {}", e.reason());
                    match e {
                        crate::answer::FetchError::Unreachable(_) => {
                            NoNcco::Failed(503, "Service Unavailable", reason)
                        }
                        _ => NoNcco::Failed(500, "Server Internal Error", reason),
                    }
                });
            }
            input = inputs.recv() => match input {
                Some(CallInput::Cancelled) | None => return Err(NoNcco::Cancelled),
                Some(CallInput::Shutdown) => return Err(NoNcco::Shutdown),
                // Nothing else can arrive before the call is answered.
                Some(_) => {}
            }
        }
    }
}

/// Negotiates media, rings, obtains the NCCO and answers 200 OK, emitting `rejected`,
/// `ringing`, `failed`, `cancelled` or `answered` on the way. Errors are the SIP status
/// sent (0 when the caller cancelled).
pub(super) async fn answer(
    ctx: &Arc<ServerContext>,
    sip: &SipHandle,
    key: ServerTxKey,
    invite: &Request,
    peer: Peer,
    info: CallInfo,
    (self_tx, inputs): (
        mpsc::UnboundedSender<CallInput>,
        &mut mpsc::UnboundedReceiver<CallInput>,
    ),
) -> Result<InboundCall, u16> {
    let prepared = match prepare(ctx, sip, &key, invite) {
        Ok(p) => p,
        Err((status, reason)) => {
            let ev = info.ended_event(CallStatus::Rejected, &reason, Some(status));
            ctx.events.call_status(&ev).await;
            return Err(status);
        }
    };
    let ringing = invite
        .make_response(180, "Ringing")
        .with_to_tag(&prepared.local_tag);
    sip.send(SipCommand::Respond {
        key: key.clone(),
        response: ringing,
    });
    ctx.events
        .call_status(&info.event(CallStatus::Ringing))
        .await;

    let ncco = match obtain_ncco(ctx, &info, inputs).await {
        Ok(n) => n,
        Err(NoNcco::Cancelled) => {
            info!("caller cancelled while the NCCO was fetched");
            let ev = info.ended_event(
                CallStatus::Cancelled,
                "the caller cancelled before the call was answered",
                Some(487),
            );
            ctx.events.call_status(&ev).await;
            return Err(0);
        }
        Err(NoNcco::Shutdown) => {
            let status = reject(
                sip,
                key,
                invite,
                503,
                "Service Unavailable",
                "shutting down",
            );
            let ev = info.ended_event(CallStatus::Failed, "the server is shutting down", Some(503));
            ctx.events.call_status(&ev).await;
            return Err(status);
        }
        Err(NoNcco::Failed(status, phrase, reason)) => {
            warn!(%reason, "no NCCO for the call; rejecting it");
            reject(sip, key, invite, status, phrase, &reason);
            let ev = info.ended_event(CallStatus::Failed, &reason, Some(status));
            ctx.events.call_status(&ev).await;
            return Err(status);
        }
    };

    let Prepared {
        leg,
        origin,
        answer_sdp,
        local_tag,
    } = prepared;
    let contact_uri: callmux_sip::Uri = format!(
        "sip:callmux@{}",
        crate::serve::host_port(ctx.config.media_ip, sip.local.port())
    )
    .parse()
    .map_err(|_| {
        reject(
            sip,
            key.clone(),
            invite,
            500,
            "Server Internal Error",
            "bad contact",
        )
    })?;
    let contact = format!("<{contact_uri}>");
    let dialog = Dialog::uas(invite, &local_tag, &contact_uri)
        .map_err(|e| reject(sip, key.clone(), invite, 400, "Bad Request", &e.to_string()))?;
    let mut ok = invite.make_response(200, "OK").with_to_tag(&local_tag);
    ok.headers.push("Contact", &contact);
    ok.headers
        .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO");
    ok.set_body("application/sdp", answer_sdp.into_bytes());
    sip.send(SipCommand::Respond { key, response: ok });
    let answered_at = SystemTime::now();
    ctx.events
        .call_status(&info.event(CallStatus::Answered))
        .await;

    info!(from = %info.from, to = %info.to, codec = ?leg.negotiated.audio.codec, rtp = %leg.local, remote_rtp = %leg.negotiated.remote, "call answered");
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    Ok(InboundCall {
        ctx: Arc::clone(ctx),
        sip: sip.clone(),
        uuid: info.uuid.clone(),
        conversation_uuid: info.conversation_uuid.clone(),
        from: info.from.clone(),
        to: info.to.clone(),
        info,
        ncco,
        dialog,
        peer,
        leg,
        origin,
        acked: false,
        bye_pending: false,
        hangup_requested: false,
        ended: false,
        recordings: BTreeMap::new(),
        playout: VecDeque::new(),
        next_play: None,
        after_playout: Vec::new(),
        bye_key: None,
        started: Instant::now(),
        answered_at,
        jobs_tx,
        jobs_rx: Some(jobs_rx),
        prompt: None,
        pending_play: None,
        record_targets: BTreeMap::new(),
        failed_recordings: Vec::new(),
        failure: None,
        self_tx,
        connect: None,
        ringback: None,
        room: None,
        joined_legs: Vec::new(),
        next_leg_key: 1,
    })
}
