//! `callmux answer`: a UAS for demos and tests. It answers INVITEs (after ringing, if
//! asked), streams a tone or WAV in the codec it negotiated, saves what it hears, and hangs
//! up after a while or waits for the caller's BYE; or refuses calls with a given status.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use callmux_media::{answer, CodecPreferences, SdpOrigin, SessionDescription, ToneGenerator};
use callmux_sip::{Dialog, Peer, Request, ServerTxKey, Uri};
use clap::Args;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{
    clock_seed, hang_up, load_wav, CodecArg, MediaSession, SessionEnd, SessionOptions, Source,
};
use crate::sip_task::{CallInput, InviteDecision, SipCommand, SipHandle, SipTask, SipTransports};

/// `callmux answer` arguments.
#[derive(Debug, Args, Clone)]
pub(crate) struct AnswerArgs {
    /// Address to listen on (SIP over UDP; RTP uses the same IP).
    #[arg(long, default_value = "127.0.0.1:5080")]
    bind: SocketAddr,
    /// Stream a sine tone of this frequency (Hz).
    #[arg(long, conflicts_with = "wav")]
    tone: Option<f32>,
    /// Stream this WAV file (16-bit PCM), looped.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// Tone level in dBFS.
    #[arg(long, default_value_t = -12.0, allow_negative_numbers = true)]
    level: f32,
    /// Codecs accepted, in order of preference (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [CodecArg::Pcmu, CodecArg::Pcma, CodecArg::Opus])]
    codec: Vec<CodecArg>,
    /// Ring (180) this long before answering, in milliseconds.
    #[arg(long, default_value_t = 0)]
    ring_ms: u64,
    /// Refuse every call with this status (e.g. 486, 603, 480) after ringing.
    #[arg(long)]
    reject: Option<u16>,
    /// Hang up (BYE) this many seconds after answering; by default wait for the caller's BYE.
    #[arg(long)]
    seconds: Option<f64>,
    /// Save what each call hears to this WAV file; `{n}` is replaced by the call's number.
    #[arg(long)]
    save: Option<String>,
    /// Exit after this many calls have ended.
    #[arg(long)]
    calls: Option<u32>,
}

/// Listens and answers until `--calls` calls have ended (or forever).
pub(crate) async fn run(args: AnswerArgs) -> anyhow::Result<ExitCode> {
    let sock = UdpSocket::bind(args.bind)
        .await
        .with_context(|| format!("cannot bind {}", args.bind))?;
    let local = sock.local_addr()?;
    let args = Arc::new(args);
    let handle: Arc<OnceLock<SipHandle>> = Arc::new(OnceLock::new());
    let counter = Arc::new(AtomicU32::new(0));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    let on_invite = {
        let args = Arc::clone(&args);
        let handle = Arc::clone(&handle);
        let counter = Arc::clone(&counter);
        Box::new(move |key, req: Request, peer: Peer, _user| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            if args.calls.is_some_and(|max| n > max) {
                return InviteDecision::Reject(req.make_response(486, "Busy Here"));
            }
            let (tx, rx) = mpsc::unbounded_channel();
            if let Some(sip) = handle.get().cloned() {
                let args = Arc::clone(&args);
                let done = done_tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer_one(&args, &sip, key, req, peer, rx, n).await {
                        eprintln!("call {n}: {e:#}");
                    }
                    let _ = done.send(());
                });
            }
            InviteDecision::Accept(tx)
        })
    };
    let (sip, _join) = SipTask::spawn(
        SipTransports {
            udp: sock,
            tcp: None,
            user_agent: format!("callmux-answer/{}", env!("CARGO_PKG_VERSION")),
        },
        on_invite,
        clock_seed(),
    )?;
    let _ = handle.set(sip);
    eprintln!("answering on {local}");
    let mut ended = 0u32;
    loop {
        tokio::select! {
            d = done_rx.recv() => {
                if d.is_none() { break; }
                ended += 1;
                if args.calls.is_some_and(|max| ended >= max) {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Let the SIP task send the last 200 OK to a BYE before the process exits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(ExitCode::SUCCESS)
}

async fn answer_one(
    args: &AnswerArgs,
    sip: &SipHandle,
    key: ServerTxKey,
    invite: Request,
    peer: Peer,
    mut inputs: mpsc::UnboundedReceiver<CallInput>,
    n: u32,
) -> anyhow::Result<()> {
    let call_id = invite.call_id().unwrap_or_default().to_string();
    let seed = clock_seed() ^ u64::from(n);
    let tag = format!("{:08x}", seed as u32);
    let respond = |status: u16, reason: &str, body: Option<String>| {
        let mut r = invite.make_response(status, reason).with_to_tag(&tag);
        if let Some(b) = body {
            r.headers
                .push("Contact", format!("<sip:answer@{}>", sip.local));
            r.set_body("application/sdp", b.into_bytes());
        }
        sip.send(SipCommand::Respond {
            key: key.clone(),
            response: r,
        });
    };
    if args.ring_ms > 0 || args.reject.is_some() {
        respond(180, "Ringing", None);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(args.ring_ms)) => {}
            // The caller cancelled while we rang.
            Some(CallInput::Cancelled) = inputs.recv() => {
                eprintln!("call {n}: cancelled while ringing");
                return Ok(());
            }
        }
    }
    if let Some(status) = args.reject {
        respond(status, callmux_sip::default_reason(status), None);
        eprintln!("call {n}: refused with {status}");
        return Ok(());
    }
    let offer = SessionDescription::parse(&invite.body).map_err(|e| {
        respond(488, "Not Acceptable Here", None);
        anyhow::anyhow!("bad SDP offer: {e}")
    })?;
    let rtp = UdpSocket::bind(SocketAddr::new(sip.local.ip(), 0)).await?;
    let prefs = CodecPreferences {
        codecs: args.codec.iter().map(|c| (*c).into()).collect(),
    };
    let mut origin = SdpOrigin::new(seed);
    let (negotiated, sdp) =
        answer(&offer, &prefs, rtp.local_addr()?, &mut origin).map_err(|e| {
            respond(488, "Not Acceptable Here", None);
            anyhow::anyhow!("cannot answer: {e}")
        })?;
    let contact: Uri = format!("sip:answer@{}", sip.local)
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut dialog = Dialog::uas(&invite, &tag, &contact).map_err(|e| anyhow::anyhow!("{e}"))?;
    respond(200, "OK", Some(sdp));
    eprintln!(
        "call {n}: answered {call_id} with {:?}",
        negotiated.audio.codec
    );
    let source = match (&args.tone, &args.wav) {
        (Some(f), _) => Source::Tone(ToneGenerator::new(*f, args.level, 16_000)),
        (None, Some(p)) => Source::Samples {
            pcm: load_wav(p)?,
            pos: 0,
        },
        (None, None) => Source::Silence,
    };
    let mut session = MediaSession::new(rtp, negotiated, source, args.save.is_some());
    let opts = SessionOptions {
        seconds: args.seconds,
        ..SessionOptions::default()
    };
    let end = session
        .run(&opts, &mut dialog, sip, &peer, &mut inputs, seed)
        .await?;
    if end == SessionEnd::TimeUp {
        hang_up(&mut dialog, sip, &peer, &mut inputs).await?;
    }
    if let Some(template) = &args.save {
        let path = PathBuf::from(template.replace("{n}", &n.to_string()));
        session.save_to(&path)?;
    }
    eprintln!(
        "call {n}: ended ({end:?}), {} packets sent, {} received",
        session.sent, session.received
    );
    sip.send(SipCommand::Unregister { call_id });
    Ok(())
}
