//! `callmux call`: a small SIP user agent client for demos and tests. It sends an INVITE
//! with an SDP offer, streams a tone or a WAV file as RTP in real time (optionally with
//! RFC 4733 or SIP INFO DTMF), can save what it hears, and hangs up with BYE.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use callmux_media::{
    accept_answer, offer, parse_rtp, AudioDecoder, AudioEncoder, Codec, CodecPreferences,
    DtmfGenerator, RtpPacketizer, SdpOrigin, SessionDescription, ToneGenerator,
};
use callmux_record::{ChannelLayout, LegKey, RecordingTimeline, TimelineConfig};
use callmux_sip::{Dialog, Method, Request, Uri};
use clap::{Args, ValueEnum};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media_leg::FRAME_16K;
use crate::sip_task::{CallInput, InviteDecision, SipCommand, SipTask, SipTransports};

/// `callmux call` arguments.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Whom to call, e.g. sip:100@127.0.0.1:5060
    uri: String,
    /// Stream a sine tone of this frequency (Hz).
    #[arg(long, conflicts_with = "wav")]
    tone: Option<f32>,
    /// Stream this WAV file (any rate; mono or first channel), looped to --seconds.
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
    /// Seconds after the answer at which the first digit is sent.
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

fn parse_gap(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("expected START,DURATION in seconds, got {s:?}");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let a: f64 = a.trim().parse().map_err(|_| bad())?;
    let b: f64 = b.trim().parse().map_err(|_| bad())?;
    if a < 0.0 || b <= 0.0 {
        return Err(bad());
    }
    Ok((a, b))
}

/// Codecs `callmux call` can offer.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum CodecArg {
    Pcmu,
    Pcma,
    Opus,
}

impl From<CodecArg> for Codec {
    fn from(c: CodecArg) -> Self {
        match c {
            CodecArg::Pcmu => Self::Pcmu,
            CodecArg::Pcma => Self::Pcma,
            CodecArg::Opus => Self::Opus,
        }
    }
}

/// The audio we stream, 20 ms at a time at 16 kHz.
enum Source {
    Tone(ToneGenerator),
    Samples { pcm: Vec<i16>, pos: usize },
    Silence,
}

impl Source {
    fn fill(&mut self, frame: &mut [i16]) {
        match self {
            Self::Tone(g) => g.fill(frame),
            Self::Samples { pcm, pos } => {
                for s in frame.iter_mut() {
                    *s = pcm.get(*pos).copied().unwrap_or(0);
                    *pos = if *pos + 1 >= pcm.len() { 0 } else { *pos + 1 };
                }
            }
            Self::Silence => frame.fill(0),
        }
    }
}

/// Reads a WAV file as 16 kHz mono (first channel, linear interpolation when resampling).
fn load_wav(path: &PathBuf) -> anyhow::Result<Vec<i16>> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        bail!(
            "{}: only 16-bit PCM WAV files are supported",
            path.display()
        );
    }
    let ch = usize::from(spec.channels.max(1));
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .step_by(ch)
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if samples.is_empty() {
        bail!("{}: no audio", path.display());
    }
    if spec.sample_rate == 16_000 {
        return Ok(samples);
    }
    let ratio = f64::from(spec.sample_rate) / 16_000.0;
    let n = (samples.len() as f64 / ratio) as usize;
    Ok((0..n)
        .map(|i| {
            let x = i as f64 * ratio;
            let i0 = x as usize;
            let a = f64::from(samples.get(i0).copied().unwrap_or(0));
            let b = f64::from(samples.get(i0 + 1).copied().unwrap_or(0));
            (a + (b - a) * (x - i0 as f64)) as i16
        })
        .collect())
}

/// Places the call and returns the exit code (0 when it was answered and ended normally).
pub(crate) async fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let target: Uri = args
        .uri
        .parse()
        .map_err(|e| anyhow::anyhow!("bad SIP URI {:?}: {e}", args.uri))?;
    let host = target.host.clone();
    let port = target.port.unwrap_or(5060);
    let remote: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;

    let mut source = match (&args.tone, &args.wav) {
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
    let on_invite = Box::new(|_key, req: Request, _peer| {
        InviteDecision::Reject(req.make_response(486, "Busy Here"))
    });
    let seed = Instant::now().elapsed().as_nanos() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64);
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
    let contact = format!("<sip:{}@{}>", args.from, local_sip);
    let mut invite = Request::new(Method::Invite, target.clone());
    invite.headers.push(
        "From",
        format!("<sip:{}@{}>;tag={tag}", args.from, local_sip.ip()),
    );
    invite.headers.push("To", format!("<{target}>"));
    invite.headers.push("Call-ID", &call_id);
    invite.headers.push("CSeq", "1 INVITE");
    invite.headers.push("Contact", &contact);
    invite.headers.push("Max-Forwards", "70");
    invite.set_body("application/sdp", sdp.into_bytes());

    let (in_tx, mut inputs) = mpsc::unbounded_channel();
    sip.send(SipCommand::Register {
        call_id: call_id.clone(),
        inputs: in_tx,
    });
    let invite_key = sip.send_request(invite.clone(), peer.clone()).await?;
    eprintln!("calling {target} from {local_sip} (RTP {local_rtp}), Call-ID {call_id}");

    // Wait for the final answer.
    let answer_deadline = Instant::now() + Duration::from_secs_f64(args.answer_timeout);
    let (dialog, negotiated) = loop {
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

    let mut dialog = dialog;
    let mut encoder = AudioEncoder::new(&negotiated.audio)?;
    let mut decoder = AudioDecoder::new(&negotiated.audio)?;
    let mut packetizer = RtpPacketizer::new(negotiated.audio.pt, seed);
    let mut dtmf_gen = negotiated
        .telephone_event
        .as_ref()
        .map(|te| DtmfGenerator::new(te.pt, te.clock_rate));
    let digits: Vec<char> = args.dtmf.clone().unwrap_or_default().chars().collect();
    let mut next_digit = 0usize;
    let mut save = args.save.as_ref().map(|_| {
        RecordingTimeline::new(
            ChannelLayout::Mono,
            TimelineConfig::default(),
            Instant::now(),
        )
    });
    if let Some(t) = save.as_mut() {
        t.add_leg(LegKey(0), Instant::now());
    }
    let mut saved: Vec<i16> = Vec::new();

    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.seconds);
    let dtmf_start = start + Duration::from_secs_f64(args.dtmf_at);
    let mut frame = vec![0i16; FRAME_16K];
    let mut payload = Vec::with_capacity(512);
    let mut packet = Vec::with_capacity(1500);
    let mut pcm = Vec::with_capacity(4 * FRAME_16K);
    let mut buf = vec![0u8; 2048];
    let mut tick = 0u64;
    let mut dtmf_packets: Vec<Vec<u8>> = Vec::new();
    let mut remote_hung_up = false;
    let mut sent = 0u64;
    let mut received = 0u64;

    loop {
        let next_tick = start + Duration::from_millis(20 * tick);
        if next_tick >= end {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(next_tick.into()) => {
                tick += 1;
                // DTMF: a digit every 300 ms from dtmf_at; audio pauses while it plays.
                if next_digit < digits.len() && next_tick >= dtmf_start + Duration::from_millis(300 * next_digit as u64) && dtmf_packets.is_empty() {
                    let d = digits[next_digit];
                    next_digit += 1;
                    if args.dtmf_info {
                        let mut info = dialog.create_request(Method::Info);
                        info.set_body("application/dtmf-relay", format!("Signal={d}\r\nDuration=160\r\n").into_bytes());
                        let _ = sip.send_request(info, peer.clone()).await;
                    } else if let Some(g) = dtmf_gen.as_mut() {
                        dtmf_packets = g.packets(d, Duration::from_millis(100), &mut packetizer);
                        dtmf_packets.reverse();
                    } else {
                        eprintln!("the answer has no telephone-event; digit {d} not sent");
                    }
                }
                if let Some(p) = dtmf_packets.pop() {
                    let _ = rtp.send_to(&p, negotiated.remote).await;
                    sent += 1;
                    continue;
                }
                source.fill(&mut frame);
                payload.clear();
                let advance = encoder.encode(&frame, &mut payload)?;
                packet.clear();
                packetizer.write(&payload, false, advance, &mut packet);
                let in_gap = args.gap.is_some_and(|(at, len)| {
                    let t = next_tick.duration_since(start).as_secs_f64();
                    t >= at && t < at + len
                });
                if !in_gap {
                    let _ = rtp.send_to(&packet, negotiated.remote).await;
                    sent += 1;
                }
            }
            r = rtp.recv_from(&mut buf) => {
                if let Ok((n, _src)) = r {
                    let now = Instant::now();
                    if let Ok(p) = parse_rtp(buf.get(..n).unwrap_or_default()) {
                        if p.payload_type == negotiated.audio.pt {
                            received += 1;
                            if let Some(t) = save.as_mut() {
                                pcm.clear();
                                if decoder.decode(p.payload, &mut pcm).is_ok() {
                                    t.push_received(LegKey(0), p.ssrc, p.timestamp, negotiated.audio.clock_rate, now, &pcm);
                                    t.drain(now, &mut saved);
                                }
                            }
                        }
                    }
                }
            }
            input = inputs.recv() => match input {
                Some(CallInput::Request { key, request }) => {
                    let bye = request.method == Method::Bye;
                    sip.send(SipCommand::Respond { key, response: request.make_response(200, "OK") });
                    if bye {
                        remote_hung_up = true;
                        break;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    }

    if !remote_hung_up {
        let bye = dialog.create_request(Method::Bye);
        let bye_key = sip.send_request(bye, peer.clone()).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline.into(), inputs.recv()).await {
                Ok(Some(CallInput::Response { key, response }))
                    if key == bye_key && response.status >= 200 =>
                {
                    eprintln!("BYE answered {} {}", response.status, response.reason);
                    break;
                }
                Ok(Some(CallInput::Request { key, request })) => {
                    sip.send(SipCommand::Respond {
                        key,
                        response: request.make_response(200, "OK"),
                    });
                }
                Ok(Some(CallInput::ClientTimeout { .. })) | Ok(None) | Err(_) => {
                    eprintln!("no answer to BYE");
                    break;
                }
                Ok(Some(_)) => {}
            }
        }
    } else {
        // The SIP task sends our 200 OK to the BYE; exiting at once can drop it, and the
        // other side would then retransmit its BYE until its transaction times out.
        tokio::time::sleep(Duration::from_millis(200)).await;
        eprintln!("the other side hung up");
    }

    if let (Some(path), Some(t)) = (&args.save, save.as_mut()) {
        t.finish(Instant::now(), &mut saved);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec)
            .with_context(|| format!("cannot create {}", path.display()))?;
        for s in &saved {
            w.write_sample(*s)?;
        }
        w.finalize()?;
        eprintln!("saved what was heard to {}", path.display());
    }
    println!(
        "call {call_id}: answered, {:.1} s, {sent} packets sent, {received} received{}",
        start.elapsed().as_secs_f64(),
        if remote_hung_up {
            ", remote hung up"
        } else {
            ""
        }
    );
    sip.send(SipCommand::Unregister { call_id });
    Ok(ExitCode::SUCCESS)
}
