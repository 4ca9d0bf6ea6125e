//! The media half of a user-agent call: stream a source as RTP every 20 ms, send DTMF,
//! receive and optionally save what the other side sends, until the time is up or the
//! other side hangs up.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callmux_media::{
    parse_rtp, AudioDecoder, AudioEncoder, DtmfDetector, DtmfGenerator, Negotiated, RtpPacketizer,
    ToneGenerator,
};
use callmux_record::{ChannelLayout, LegKey, RecordingTimeline, TimelineConfig};
use callmux_sip::{Dialog, Method, Peer};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::media_leg::FRAME_16K;
use crate::sip_task::{CallInput, SipCommand, SipHandle};

/// The audio a user agent streams, 20 ms at a time at 16 kHz.
pub(crate) enum Source {
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

/// What to do during the session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionOptions {
    /// Stream for this long, then return (`None`: until the other side hangs up).
    pub(crate) seconds: Option<f64>,
    /// Digits to send.
    pub(crate) dtmf: Vec<char>,
    /// When the first digit goes out, after the start.
    pub(crate) dtmf_at: f64,
    /// Send digits as SIP INFO instead of RFC 4733.
    pub(crate) dtmf_info: bool,
    /// No packets from START for DURATION seconds (timestamps keep running).
    pub(crate) gap: Option<(f64, f64)>,
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The time was up; the caller of `run` hangs up.
    TimeUp,
    /// The other side sent BYE (already answered 200).
    RemoteHungUp,
    /// The SIP task went away.
    Stopped,
}

/// A running media session.
pub(crate) struct MediaSession {
    rtp: UdpSocket,
    negotiated: Negotiated,
    source: Source,
    save: Option<(RecordingTimeline, Vec<i16>)>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

impl MediaSession {
    /// A session on `rtp` for `negotiated`, streaming `source`, saving what it hears when
    /// `save` is set.
    pub(crate) fn new(rtp: UdpSocket, negotiated: Negotiated, source: Source, save: bool) -> Self {
        let save = save.then(|| {
            let now = Instant::now();
            let mut t = RecordingTimeline::new(ChannelLayout::Mono, TimelineConfig::default(), now);
            t.add_leg(LegKey(0), now);
            (t, Vec::new())
        });
        Self {
            rtp,
            negotiated,
            source,
            save,
            sent: 0,
            received: 0,
        }
    }

    /// Streams until the time is up or the other side hangs up. In-dialog requests are
    /// answered (BYE ends the session, INFO and others get 200).
    pub(crate) async fn run(
        &mut self,
        opts: &SessionOptions,
        dialog: &mut Dialog,
        sip: &SipHandle,
        peer: &Peer,
        inputs: &mut mpsc::UnboundedReceiver<CallInput>,
        seed: u64,
    ) -> anyhow::Result<SessionEnd> {
        let n = &self.negotiated;
        let mut encoder = AudioEncoder::new(&n.audio)?;
        let mut decoder = AudioDecoder::new(&n.audio)?;
        let mut packetizer = RtpPacketizer::new(n.audio.pt, seed);
        let dtmf_gen = n
            .telephone_event
            .as_ref()
            .map(|te| DtmfGenerator::new(te.pt, te.clock_rate));
        let start = Instant::now();
        let end = opts.seconds.map(|s| start + Duration::from_secs_f64(s));
        let dtmf_start = start + Duration::from_secs_f64(opts.dtmf_at);
        let mut next_digit = 0usize;
        let mut frame = vec![0i16; FRAME_16K];
        let mut payload = Vec::with_capacity(512);
        let mut packet = Vec::with_capacity(1500);
        let mut pcm = Vec::with_capacity(4 * FRAME_16K);
        let mut buf = vec![0u8; 2048];
        let mut tick = 0u64;
        let mut dtmf_packets: Vec<Vec<u8>> = Vec::new();
        let mut dtmf_in = DtmfDetector::new();
        loop {
            let next_tick = start + Duration::from_millis(20 * tick);
            if end.is_some_and(|e| next_tick >= e) {
                return Ok(SessionEnd::TimeUp);
            }
            tokio::select! {
                () = tokio::time::sleep_until(next_tick.into()) => {
                    tick += 1;
                    // DTMF: a digit every 300 ms from dtmf_at; audio pauses while it plays.
                    let digit_due = dtmf_start + Duration::from_millis(300 * next_digit as u64);
                    if next_digit < opts.dtmf.len() && next_tick >= digit_due && dtmf_packets.is_empty() {
                        let d = opts.dtmf[next_digit];
                        next_digit += 1;
                        if opts.dtmf_info {
                            let mut info = dialog.create_request(Method::Info);
                            info.set_body("application/dtmf-relay", format!("Signal={d}\r\nDuration=160\r\n").into_bytes());
                            let _ = sip.send_request(info, peer.clone()).await;
                        } else if let Some(g) = dtmf_gen.as_ref() {
                            dtmf_packets = g.packets(d, Duration::from_millis(100), &mut packetizer);
                            dtmf_packets.reverse();
                        } else {
                            eprintln!("the other side has no telephone-event; digit {d} not sent");
                        }
                    }
                    if let Some(p) = dtmf_packets.pop() {
                        let _ = self.rtp.send_to(&p, n.remote).await;
                        self.sent += 1;
                        continue;
                    }
                    self.source.fill(&mut frame);
                    payload.clear();
                    let advance = encoder.encode(&frame, &mut payload)?;
                    packetizer.write(&payload, false, advance, &mut packet);
                    let in_gap = opts.gap.is_some_and(|(at, len)| {
                        let t = next_tick.duration_since(start).as_secs_f64();
                        t >= at && t < at + len
                    });
                    if !in_gap {
                        let _ = self.rtp.send_to(&packet, n.remote).await;
                        self.sent += 1;
                    }
                }
                r = self.rtp.recv_from(&mut buf) => {
                    if let Ok((len, _src)) = r {
                        let now = Instant::now();
                        if let Ok(p) = parse_rtp(buf.get(..len).unwrap_or_default()) {
                            if n.telephone_event.as_ref().is_some_and(|te| te.pt == p.payload_type) {
                                if let Some(digit) = dtmf_in.push(p.timestamp, p.payload) {
                                    eprintln!("received DTMF {digit}");
                                }
                            } else if p.payload_type == n.audio.pt {
                                self.received += 1;
                                if let Some((t, saved)) = self.save.as_mut() {
                                    pcm.clear();
                                    if decoder.decode(p.payload, &mut pcm).is_ok() {
                                        t.push_received(LegKey(0), p.ssrc, p.timestamp, n.audio.clock_rate, now, &pcm);
                                        t.drain(now, saved);
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
                            return Ok(SessionEnd::RemoteHungUp);
                        }
                    }
                    Some(_) => {}
                    None => return Ok(SessionEnd::Stopped),
                }
            }
        }
    }

    /// Writes what was heard (16 kHz mono WAV), if saving.
    pub(crate) fn save_to(&mut self, path: &Path) -> anyhow::Result<()> {
        let Some((t, saved)) = self.save.as_mut() else {
            return Ok(());
        };
        t.finish(Instant::now(), saved);
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut i16w = w.get_i16_writer(saved.len() as u32);
        for s in saved.iter() {
            i16w.write_sample(*s);
        }
        i16w.flush()?;
        w.finalize()?;
        Ok(())
    }
}

/// Sends BYE in `dialog` and waits (at most 5 s) for its final response; returns it.
pub(crate) async fn hang_up(
    dialog: &mut Dialog,
    sip: &SipHandle,
    peer: &Peer,
    inputs: &mut mpsc::UnboundedReceiver<CallInput>,
) -> anyhow::Result<Option<u16>> {
    let bye = dialog.create_request(Method::Bye);
    let bye_key = sip.send_request(bye, peer.clone()).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline.into(), inputs.recv()).await {
            Ok(Some(CallInput::Response { key, response }))
                if key == bye_key && response.status >= 200 =>
            {
                return Ok(Some(response.status));
            }
            Ok(Some(CallInput::Request { key, request })) => {
                sip.send(SipCommand::Respond {
                    key,
                    response: request.make_response(200, "OK"),
                });
            }
            Ok(Some(CallInput::ClientTimeout { .. }) | None) | Err(_) => return Ok(None),
            Ok(Some(_)) => {}
        }
    }
}
