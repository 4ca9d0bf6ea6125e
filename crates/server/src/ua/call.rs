//! `callmux call`: INVITE with an SDP offer, stream, hang up with BYE.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use callmux_media::{
    accept_answer, offer, CodecPreferences, SdpOrigin, SessionDescription, ToneGenerator,
};
use callmux_sip::{Dialog, Method, Request, Uri};
use clap::Args;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::{
    clock_seed, hang_up, load_wav, parse_gap, CodecArg, MediaSession, SessionEnd, SessionOptions,
    Source,
};
use crate::sip_task::{CallInput, InviteDecision, SipCommand, SipTask, SipTransports};

/// `callmux call` arguments.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Whom to call, e.g. sip:100@127.0.0.1:5060
    uri: String,
    /// Stream a sine tone of this frequency (Hz).
    #[arg(long, conflicts_with = "wav")]
    tone: Option<f32>,
    /// Stream this WAV file (16-bit PCM, any rate; first channel), looped to --seconds.
    #[arg(long)]
    wav: Option<PathBuf>,
    /// How long to stream after the call is answered, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Tone level in dBFS.
    #[arg(long, default_value_t = -12.0, allow_negative_numbers = true)]
    level: f32,
    /// DTMF digits to send (0-9 * # A-D), RFC 4733 unless --dtmf-info.
    #[arg(long)]
    dtmf: Option<String>,
    /// Seconds after the answer at which the first digit is sent (then one every 300 ms).
    #[arg(long, default_value_t = 1.0)]
    dtmf_at: f64,
    /// Send DTMF as SIP INFO (application/dtmf-relay) instead of RFC 4733.
    #[arg(long)]
    dtmf_info: bool,
    /// Codec to offer.
    #[arg(long, value_enum, default_value_t = CodecArg::Pcmu)]
    codec: CodecArg,
    /// Save what this caller hears to a 16 kHz mono WAV file.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Local address for SIP (RTP uses the same IP).
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// User part of the From URI.
    #[arg(long, default_value = "callmux")]
    from: String,
    /// Stop sending RTP for a while, as DTX would (timestamps keep running):
    /// `START,DURATION` in seconds after the answer.
    #[arg(long, value_parser = parse_gap)]
    gap: Option<(f64, f64)>,
    /// Give up if there is no final answer within this many seconds.
    #[arg(long, default_value_t = 32.0)]
    answer_timeout: f64,
}

/// Places the call and returns the exit code (0 when it was answered and ended normally,
/// 1 when it was refused).
pub(crate) async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let target: Uri = args
        .uri
        .parse()
        .map_err(|e| anyhow::anyhow!("bad SIP URI {:?}: {e}", args.uri))?;
    let host = target.host.clone();
    let port = target.port.unwrap_or(5060);
    let remote: SocketAddr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;

    let source = match (&args.tone, &args.wav) {
        (Some(f), _) => Source::Tone(ToneGenerator::new(*f, args.level, 16_000)),
        (None, Some(p)) => Source::Samples {
            pcm: load_wav(p)?,
            pos: 0,
        },
        (None, None) => Source::Silence,
    };

    let sip_sock = UdpSocket::bind(args.bind)
        .await
        .with_context(|| format!("cannot bind SIP socket {}", args.bind))?;
    let local_sip = sip_sock.local_addr()?;
    let rtp = UdpSocket::bind(SocketAddr::new(local_sip.ip(), 0)).await?;
    let local_rtp = rtp.local_addr()?;
    let on_invite = Box::new(|_key, req: Request, _peer, _user| {
        InviteDecision::Reject(req.make_response(486, "Busy Here"))
    });
    let seed = clock_seed();
    let (sip, _join) = SipTask::spawn(
        SipTransports {
            udp: sip_sock,
            tcp: None,
            user_agent: format!("callmux-call/{}", env!("CARGO_PKG_VERSION")),
        },
        on_invite,
        seed,
    )?;
    let peer = sip.udp_peer(remote);

    let prefs = CodecPreferences {
        codecs: vec![args.codec.into()],
    };
    let mut origin = SdpOrigin::new(seed);
    let sdp = offer(&prefs, local_rtp, &mut origin);
    let call_id = format!("{:016x}@{}", seed, local_sip.ip());
    let tag = format!("{:08x}", seed as u32);
    let mut invite = Request::new(Method::Invite, target.clone());
    invite.headers.push(
        "From",
        format!("<sip:{}@{}>;tag={tag}", args.from, local_sip.ip()),
    );
    invite.headers.push("To", format!("<{target}>"));
    invite.headers.push("Call-ID", call_id.clone());
    invite.headers.push("CSeq", "1 INVITE");
    invite
        .headers
        .push("Contact", format!("<sip:{}@{}>", args.from, local_sip));
    invite.headers.push("Max-Forwards", "70");
    invite.set_body("application/sdp", sdp.into_bytes());

    let (in_tx, mut inputs) = mpsc::unbounded_channel();
    sip.send(SipCommand::Register {
        call_id: call_id.clone(),
        inputs: in_tx,
    });
    let invite_key = sip.send_request(invite.clone(), peer.clone()).await?;
    eprintln!("calling {target} from {local_sip} (RTP {local_rtp}), Call-ID {call_id}");

    let answer_deadline = Instant::now() + Duration::from_secs_f64(args.answer_timeout);
    let (mut dialog, negotiated) = loop {
        let input = tokio::time::timeout_at(answer_deadline.into(), inputs.recv()).await;
        match input {
            Err(_) => bail!("no final answer within {} s", args.answer_timeout),
            Ok(None) => bail!("SIP task stopped"),
            Ok(Some(CallInput::Response { key, response })) if key == invite_key => {
                match response.status {
                    100..=199 => eprintln!("{} {}", response.status, response.reason),
                    200..=299 => {
                        let dialog = Dialog::uac(&invite, &response)
                            .map_err(|e| anyhow::anyhow!("bad 2xx: {e}"))?;
                        let ack = dialog.ack_for_2xx(&invite, &response);
                        sip.send(SipCommand::SendStateless {
                            request: ack,
                            peer: peer.clone(),
                        });
                        let answer = SessionDescription::parse(&response.body)
                            .map_err(|e| anyhow::anyhow!("bad SDP answer: {e}"))?;
                        let negotiated = accept_answer(&prefs, &answer)
                            .map_err(|e| anyhow::anyhow!("SDP answer not acceptable: {e}"))?;
                        break (dialog, negotiated);
                    }
                    _ => {
                        let warning = response.headers.get("Warning").unwrap_or_default();
                        eprintln!(
                            "call failed: {} {} {warning}",
                            response.status, response.reason
                        );
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            Ok(Some(CallInput::ClientTimeout { .. })) => bail!("INVITE timed out (no response)"),
            Ok(Some(_)) => {}
        }
    };
    eprintln!(
        "answered: {:?}/{} to {}",
        negotiated.audio.codec, negotiated.audio.clock_rate, negotiated.remote
    );

    let start = Instant::now();
    let mut session = MediaSession::new(rtp, negotiated, source, args.save.is_some());
    let opts = SessionOptions {
        seconds: Some(args.seconds),
        dtmf: args.dtmf.clone().unwrap_or_default().chars().collect(),
        dtmf_at: args.dtmf_at,
        dtmf_info: args.dtmf_info,
        gap: args.gap,
    };
    let end = session
        .run(&opts, &mut dialog, &sip, &peer, &mut inputs, seed)
        .await?;
    match end {
        SessionEnd::TimeUp => match hang_up(&mut dialog, &sip, &peer, &mut inputs).await? {
            Some(status) => eprintln!("BYE answered {status}"),
            None => eprintln!("no answer to BYE"),
        },
        SessionEnd::RemoteHungUp => {
            // The SIP task sends our 200 OK to the BYE; exiting at once can drop it, and the
            // other side would then retransmit its BYE until its transaction times out.
            tokio::time::sleep(Duration::from_millis(200)).await;
            eprintln!("the other side hung up");
        }
        SessionEnd::Stopped => eprintln!("SIP stopped"),
    }
    if let Some(path) = &args.save {
        session.save_to(path)?;
        eprintln!("saved what was heard to {}", path.display());
    }
    println!(
        "call {call_id}: answered, {:.1} s, {} packets sent, {} received{}",
        start.elapsed().as_secs_f64(),
        session.sent,
        session.received,
        if end == SessionEnd::RemoteHungUp {
            ", remote hung up"
        } else {
            ""
        }
    );
    sip.send(SipCommand::Unregister { call_id });
    Ok(ExitCode::SUCCESS)
}
