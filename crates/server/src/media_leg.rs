//! One leg's RTP: its socket, symmetric-RTP latching, reorder buffer, decoder and DTMF
//! detector on the way in; encoder and packetizer on the way out. Owned by the call task;
//! nothing here is shared between calls.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callmux_media::{
    is_rtcp, parse_rtp, AudioDecoder, AudioEncoder, Codec, Direction, DtmfDetector, Negotiated,
    PortPool, Released, ReorderBuffer, RtpPacketizer,
};
use tokio::net::UdpSocket;

/// Frame length of everything callmux sends: 20 ms at 16 kHz.
pub(crate) const FRAME_16K: usize = 320;

/// An RTP port taken from the pool, returned when dropped.
pub(crate) struct PortLease {
    pool: Arc<Mutex<PortPool>>,
    port: u16,
}

impl Drop for PortLease {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock() {
            p.release(self.port);
        }
    }
}

/// Binds an RTP socket on the first free even port of the pool.
pub(crate) fn bind_rtp(
    pool: &Arc<Mutex<PortPool>>,
    ip: IpAddr,
) -> anyhow::Result<(UdpSocket, PortLease)> {
    // A port can be taken by another program; try a bounded number of them.
    for _ in 0..64 {
        let port = pool
            .lock()
            .map_err(|_| anyhow::anyhow!("port pool poisoned"))?
            .allocate()
            .ok_or_else(|| anyhow::anyhow!("no free RTP port in the configured range"))?;
        let lease = PortLease {
            pool: Arc::clone(pool),
            port,
        };
        match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
            Ok(sock) => {
                sock.set_nonblocking(true)?;
                return Ok((UdpSocket::from_std(sock)?, lease));
            }
            Err(_) => continue, // lease dropped → port returned; try the next one
        }
    }
    anyhow::bail!("no bindable RTP port in the configured range")
}

/// What one received datagram turned out to be.
pub(crate) enum Received {
    /// Audio accepted into the reorder buffer (drain it with [`MediaLeg::drain`]).
    Audio,
    /// A DTMF key completed (RFC 4733).
    Dtmf(char),
    /// Nothing for the call (RTCP, comfort noise, duplicate, foreign source, garbage).
    Nothing,
}

/// Counters of one leg.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LegStats {
    pub(crate) packets: u64,
    pub(crate) bytes: u64,
    pub(crate) foreign_source: u64,
    pub(crate) malformed: u64,
    pub(crate) decode_errors: u64,
    pub(crate) sent: u64,
    pub(crate) relayed: u64,
    pub(crate) send_errors: u64,
}

/// How relayed packets of one source stream map onto our outgoing stream: fixed offsets, so
/// the far end sees one SSRC with continuous sequence numbers and timestamps (RFC 7667 §3.2.1
/// media translator), while the source's own gaps and reordering are preserved.
#[derive(Debug, Clone, Copy)]
struct RelayMap {
    src_ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// Everything callmux sends to this leg goes through one RTP stream: generated audio
/// (prompts, beeps, ringback, transcoded or mixed audio) and relayed packets alike.
struct Outgoing {
    packetizer: RtpPacketizer,
    encoder: Option<AudioEncoder>,
    relay: Option<RelayMap>,
    /// Partial 20 ms frame of 16 kHz PCM waiting to be encoded.
    pending: Vec<i16>,
    out: Vec<u8>,
    payload: Vec<u8>,
    /// RTP ticks in 20 ms for the leg's codec.
    frame_ticks: u32,
}

/// How long a leg's audio must have stopped before the decoder's tail is handed to the
/// recordings: well above jitter (so a stream that goes on is rarely split, and when it is,
/// the split is seamless), and well inside the timeline's `stall_hold` (250 ms after the
/// newest audio), which keeps the positions right after the last packet open until then.
pub(crate) const TAIL_AFTER: Duration = Duration::from_millis(120);

/// Where the decoder's tail goes once the stream pauses: right after the last packet.
#[derive(Debug, Clone, Copy)]
struct PendingTail {
    ssrc: u32,
    /// The RTP timestamp the packet after the last decoded one would carry.
    next_ts: u32,
    /// When the last decoded packet arrived.
    arrival: Instant,
}

/// One leg's media state.
pub(crate) struct MediaLeg {
    pub(crate) socket: UdpSocket,
    _lease: PortLease,
    pub(crate) local: SocketAddr,
    pub(crate) negotiated: Negotiated,
    /// Where we send: the SDP address until the first packet latches the real source.
    remote: SocketAddr,
    latched: bool,
    reorder: ReorderBuffer,
    decoder: AudioDecoder,
    dtmf: DtmfDetector,
    pcm: Vec<i16>,
    outgoing: Outgoing,
    pub(crate) last_rx: Option<Instant>,
    last_ssrc: Option<u32>,
    /// Set while the decoder holds audio of the last packet (G.711: its up-sampler's delay
    /// and ringing) that no one has been given yet.
    tail: Option<PendingTail>,
    pub(crate) stats: LegStats,
    /// Prometheus counters, flushed once a second (never a registry lookup per packet).
    meter: crate::metrics::RtpMeter,
}

impl Drop for MediaLeg {
    /// The last second of counts goes to the registry when the leg ends.
    fn drop(&mut self) {
        self.meter
            .flush(Instant::now(), self.stats.packets, self.reorder.stats());
    }
}

impl MediaLeg {
    /// A leg for a negotiated session on an already bound socket.
    pub(crate) fn new(
        socket: UdpSocket,
        lease: PortLease,
        negotiated: Negotiated,
        reorder_delay: Duration,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let local = socket.local_addr()?;
        let decoder = AudioDecoder::new(&negotiated.audio)?;
        let packetizer = RtpPacketizer::new(negotiated.audio.pt, seed);
        let frame_ticks = negotiated.audio.clock_rate / 50;
        Ok(Self {
            socket,
            _lease: lease,
            local,
            remote: negotiated.remote,
            latched: false,
            reorder: ReorderBuffer::new(reorder_delay),
            decoder,
            dtmf: DtmfDetector::new(),
            pcm: Vec::with_capacity(4 * FRAME_16K),
            outgoing: Outgoing {
                packetizer,
                encoder: None,
                relay: None,
                pending: Vec::with_capacity(2 * FRAME_16K),
                out: Vec::with_capacity(1500),
                payload: Vec::with_capacity(1500),
                frame_ticks,
            },
            last_rx: None,
            last_ssrc: None,
            tail: None,
            stats: LegStats::default(),
            meter: crate::metrics::RtpMeter::new(negotiated.audio.codec.encoding_name()),
            negotiated,
        })
    }

    /// Whether this leg's SDP lets us send to it (not on hold by the far end).
    pub(crate) fn may_send(&self) -> bool {
        matches!(
            self.negotiated.direction,
            Direction::SendRecv | Direction::SendOnly
        )
    }

    /// Whether the same RTP payload can be relayed from `src` to this leg untouched.
    pub(crate) fn can_relay_from(&self, src: &Self) -> bool {
        src.negotiated.audio.codec == self.negotiated.audio.codec
            && src.negotiated.audio.clock_rate == self.negotiated.audio.clock_rate
    }

    /// Relays one RTP packet that arrived on leg `src` (already accepted by
    /// `src.on_datagram`): audio of the same codec is copied with our SSRC and mapped
    /// sequence/timestamp; RFC 4733 events are passed on with this leg's event payload type.
    /// Returns false when the packet is not relayable (other codec: transcode instead).
    pub(crate) fn relay_from(&mut self, src: &Self, packet: &[u8]) -> bool {
        let Ok(rtp) = parse_rtp(packet) else {
            return false;
        };
        let is_event = src
            .negotiated
            .telephone_event
            .as_ref()
            .is_some_and(|te| te.pt == rtp.payload_type);
        let pt = if is_event {
            match &self.negotiated.telephone_event {
                Some(te)
                    if te.clock_rate
                        == src
                            .negotiated
                            .telephone_event
                            .as_ref()
                            .map_or(0, |t| t.clock_rate) =>
                {
                    te.pt
                }
                _ => return false,
            }
        } else if rtp.payload_type == src.negotiated.audio.pt && self.can_relay_from(src) {
            self.negotiated.audio.pt
        } else {
            return false;
        };
        if !self.may_send() {
            return true;
        }
        let o = &mut self.outgoing;
        let map = match o.relay {
            Some(m) if m.src_ssrc == rtp.ssrc => m,
            _ => {
                let m = RelayMap {
                    src_ssrc: rtp.ssrc,
                    seq_offset: o.packetizer.seq.wrapping_sub(rtp.sequence),
                    ts_offset: o.packetizer.timestamp.wrapping_sub(rtp.timestamp),
                };
                o.relay = Some(m);
                m
            }
        };
        let seq = rtp.sequence.wrapping_add(map.seq_offset);
        let ts = rtp.timestamp.wrapping_add(map.ts_offset);
        o.out.clear();
        callmux_media::write_rtp_packet(
            pt,
            rtp.marker,
            seq,
            ts,
            o.packetizer.ssrc,
            rtp.payload,
            &mut o.out,
        );
        // Keep the packetizer after the newest relayed packet, so generated audio that
        // follows (a prompt after the bridge) continues the stream.
        if seq.wrapping_sub(o.packetizer.seq) < 0x8000 {
            o.packetizer.seq = seq.wrapping_add(1);
        }
        let next_ts = ts.wrapping_add(o.frame_ticks);
        if !is_event && next_ts.wrapping_sub(o.packetizer.timestamp) < 0x8000_0000 {
            o.packetizer.timestamp = next_ts;
        }
        match self.socket.try_send_to(&o.out, self.remote) {
            Ok(_) => self.stats.relayed += 1,
            Err(_) => self.stats.send_errors += 1,
        }
        true
    }

    /// Sends 16 kHz audio to this leg in its codec, 20 ms per packet (partial frames wait
    /// for the rest). Used for transcoded bridges, mixes and prompts.
    pub(crate) fn send_pcm(&mut self, pcm16k: &[i16]) -> anyhow::Result<()> {
        let mut rest = pcm16k;
        while !rest.is_empty() {
            let need = FRAME_16K - self.outgoing.pending.len();
            let take = need.min(rest.len());
            let (now, later) = rest.split_at(take);
            self.outgoing.pending.extend_from_slice(now);
            rest = later;
            if self.outgoing.pending.len() == FRAME_16K {
                let frame = std::mem::take(&mut self.outgoing.pending);
                let r = self.send_pcm_frame(&frame);
                self.outgoing.pending = frame;
                self.outgoing.pending.clear();
                r?;
            }
        }
        Ok(())
    }

    /// Encodes exactly one 20 ms frame and sends it (nothing when the leg is on hold).
    pub(crate) fn send_pcm_frame(&mut self, frame: &[i16]) -> anyhow::Result<()> {
        if !self.may_send() {
            return Ok(());
        }
        let o = &mut self.outgoing;
        if o.encoder.is_none() {
            o.encoder = Some(AudioEncoder::new(&self.negotiated.audio)?);
        }
        let Some(enc) = o.encoder.as_mut() else {
            return Ok(());
        };
        o.payload.clear();
        let advance = enc.encode(frame, &mut o.payload)?;
        o.out.clear();
        // Generated audio ends any relay mapping: a later relayed stream re-anchors after it.
        o.relay = None;
        o.packetizer.write(&o.payload, false, advance, &mut o.out);
        match self.socket.try_send_to(&o.out, self.remote) {
            Ok(_) => self.stats.sent += 1,
            Err(_) => self.stats.send_errors += 1,
        }
        Ok(())
    }

    /// Updates the session after a re-INVITE/UPDATE (hold, resume, new address): the codec
    /// stays; direction and, before latching, the remote address follow the new SDP.
    pub(crate) fn renegotiate(&mut self, n: Negotiated) {
        if !self.latched {
            self.remote = n.remote;
        }
        self.negotiated.direction = n.direction;
        self.negotiated.telephone_event = n.telephone_event;
    }

    /// Handles one datagram from the socket.
    pub(crate) fn on_datagram(&mut self, bytes: &[u8], src: SocketAddr, now: Instant) -> Received {
        // Symmetric RTP (RFC 4961): latch on the first packet from the address the SDP
        // names, or from anywhere when the SDP address is unusable (NAT, 0.0.0.0); after
        // that, packets from other sources are ignored so a stranger cannot hijack media.
        if self.latched {
            if src != self.remote {
                self.stats.foreign_source += 1;
                return Received::Nothing;
            }
        } else {
            self.remote = src;
            self.latched = true;
        }
        if is_rtcp(bytes) {
            return Received::Nothing;
        }
        let Ok(rtp) = parse_rtp(bytes) else {
            self.stats.malformed += 1;
            return Received::Nothing;
        };
        self.stats.packets += 1;
        self.stats.bytes += bytes.len() as u64;
        self.last_rx = Some(now);
        if self.meter.due(now) {
            self.meter
                .flush(now, self.stats.packets, self.reorder.stats());
        }
        if let Some(te) = &self.negotiated.telephone_event {
            if rtp.payload_type == te.pt {
                return match self.dtmf.push(rtp.timestamp, rtp.payload) {
                    Some(key) => Received::Dtmf(key),
                    None => Received::Nothing,
                };
            }
        }
        if rtp.payload_type != self.negotiated.audio.pt {
            // Comfort noise (PT 13) and anything else not negotiated: the gap it leaves is
            // silence in the recording.
            return Received::Nothing;
        }
        self.meter
            .jitter
            .on_packet(rtp.timestamp, self.negotiated.audio.clock_rate, now);
        self.reorder.push(&rtp, now);
        Received::Audio
    }

    /// Releases audio that is in order (or given up for lost), decoded to 16 kHz, to `sink`
    /// as (ssrc, rtp timestamp, clock rate, arrival, samples).
    pub(crate) fn drain(
        &mut self,
        now: Instant,
        mut sink: impl FnMut(u32, u32, u32, Instant, &[i16]),
    ) {
        let clock = self.negotiated.audio.clock_rate;
        while let Some(rel) = self.reorder.pop(now) {
            self.pcm.clear();
            match rel {
                Released::Packet {
                    timestamp,
                    ssrc,
                    arrival,
                    payload,
                    ..
                } => {
                    self.last_ssrc = Some(ssrc);
                    if self.decoder.decode(payload, &mut self.pcm).is_err() {
                        self.stats.decode_errors += 1;
                        continue;
                    }
                    if self.decoder.delay() > 0 {
                        let n = u32::try_from(self.pcm.len()).unwrap_or(u32::MAX);
                        self.tail = Some(PendingTail {
                            ssrc,
                            next_ts: timestamp.wrapping_add(self.decoder.samples_16k_to_rtp_ts(n)),
                            arrival,
                        });
                    }
                    sink(ssrc, timestamp, clock, arrival, &self.pcm);
                }
                Released::Lost {
                    timestamp_estimate,
                    duration_estimate,
                    ..
                } => {
                    // G.711 loss stays silence (the timeline fills the gap); Opus conceals
                    // it with its packet-loss concealment.
                    let Some(ssrc) = self.last_ssrc else { continue };
                    if self.negotiated.audio.codec != Codec::Opus || duration_estimate == 0 {
                        continue;
                    }
                    let n = self.decoder.rtp_ts_to_16k(duration_estimate) as usize;
                    if self.decoder.conceal(n, &mut self.pcm) > 0 {
                        sink(ssrc, timestamp_estimate, clock, now, &self.pcm);
                    }
                }
            }
        }
    }

    /// Once the stream has paused ([`TAIL_AFTER`] since the last decoded packet arrived,
    /// nothing held for reordering), hands the decoder's tail to `sink` as (ssrc, RTP
    /// timestamp, clock rate, samples) and empties the decoder; the timestamp is the one
    /// the next packet would carry, so the samples go right after the last packet (see
    /// `Recording::push_tail`). For recordings only: live audio (bridges, conferences)
    /// does not miss these 4 ms. If the stream goes on, its next packet starts from
    /// silence and adds up with the tail to the unbroken audio. Call it wherever `drain`
    /// runs on a deadline, so [`next_deadline`](Self::next_deadline) moves on.
    pub(crate) fn flush_paused(&mut self, now: Instant, sink: impl FnMut(u32, u32, u32, &[i16])) {
        if self.tail_due().is_some_and(|due| now >= due) {
            self.flush_tail(sink);
        }
    }

    /// Hands the decoder's tail to `sink` now, pause or not: a recording stops (the others
    /// get it seamlessly, as after a pause), or the leg ends and its decoder goes.
    pub(crate) fn flush_tail(&mut self, mut sink: impl FnMut(u32, u32, u32, &[i16])) {
        let Some(t) = self.tail.take() else {
            return;
        };
        self.pcm.clear();
        if self.decoder.flush(&mut self.pcm) > 0 {
            sink(
                t.ssrc,
                t.next_ts,
                self.negotiated.audio.clock_rate,
                &self.pcm,
            );
        }
    }

    /// When the pending tail is due, unless packets wait in the reorder buffer (their own
    /// deadline comes first, and releasing them moves the tail on).
    fn tail_due(&self) -> Option<Instant> {
        let t = self.tail.as_ref()?;
        (self.reorder.held() == 0).then_some(t.arrival + TAIL_AFTER)
    }

    /// When the reorder buffer must be polled even without new packets, or the decoder's
    /// tail is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [self.reorder.next_deadline(), self.tail_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Encodes 20 ms of 16 kHz audio and sends it to the latched/SDP address.
    pub(crate) async fn send_frame(&mut self, pcm16k: &[i16]) -> anyhow::Result<()> {
        self.send_pcm_frame(pcm16k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmux_media::{write_rtp_packet, PayloadFormat};

    /// A PCMU leg on a loopback port, and the µ-law payload of packet `k` of a 700 Hz tone.
    fn leg() -> MediaLeg {
        let pool = Arc::new(Mutex::new(PortPool::new(31_000, 31_999)));
        let (socket, lease) = bind_rtp(&pool, IpAddr::from([127, 0, 0, 1])).unwrap();
        let negotiated = Negotiated {
            remote: SocketAddr::from(([127, 0, 0, 1], 9)),
            audio: PayloadFormat::pcmu(),
            telephone_event: None,
            direction: Direction::SendRecv,
            ptime_ms: 20,
        };
        MediaLeg::new(socket, lease, negotiated, Duration::from_millis(60), 1).unwrap()
    }

    fn payload(k: u32) -> Vec<u8> {
        (0..160u32)
            .map(|i| {
                let n = f64::from(k * 160 + i);
                let x = 12_000.0 * (2.0 * std::f64::consts::PI * 700.0 * n / 8000.0).sin();
                callmux_media::codec::g711::linear_to_ulaw(x as i16)
            })
            .collect()
    }

    fn rtp(seq: u16, k: u32) -> Vec<u8> {
        let mut out = Vec::new();
        write_rtp_packet(0, false, seq, 1000 + 160 * k, 77, &payload(k), &mut out);
        out
    }

    /// Feeds packet `k` (sequence `seq`) at `at` and drains; returns what was released.
    fn feed(m: &mut MediaLeg, seq: u16, k: u32, at: Instant) -> Vec<(u32, Vec<i16>)> {
        let src = SocketAddr::from(([127, 0, 0, 1], 40_000));
        assert!(matches!(
            m.on_datagram(&rtp(seq, k), src, at),
            Received::Audio
        ));
        let mut got = Vec::new();
        m.drain(at, |_, ts, _, _, pcm| got.push((ts, pcm.to_vec())));
        got
    }

    #[tokio::test]
    async fn the_tail_is_due_once_the_stream_pauses_and_the_next_packet_starts_afresh() {
        let mut m = leg();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for k in 0..5u32 {
            assert_eq!(feed(&mut m, k as u16, k, ms(20 * u64::from(k))).len(), 1);
        }
        // The last packet arrived at 80 ms: the tail is due 120 ms later, not before.
        assert_eq!(m.next_deadline(), Some(ms(200)));
        let mut tails = Vec::new();
        m.flush_paused(ms(199), |ssrc, ts, clock, pcm| {
            tails.push((ssrc, ts, clock, pcm.len()));
        });
        assert!(tails.is_empty());
        m.flush_paused(ms(200), |ssrc, ts, clock, pcm| {
            tails.push((ssrc, ts, clock, pcm.len()));
        });
        // Right after the last packet (timestamp 1000 + 5 × 160), all of the ring-out.
        let ring_out = callmux_media::resample::UP_RING_OUT;
        assert_eq!(tails, [(77, 1000 + 5 * 160, 8000, ring_out)]);
        assert_eq!(m.next_deadline(), None, "nothing left to wake up for");
        m.flush_paused(ms(400), |_, _, _, _| panic!("flushed twice"));

        // The stream goes on: its next packet is decoded from silence.
        let got = feed(&mut m, 5, 5, ms(250));
        let mut fresh = Vec::new();
        AudioDecoder::new(&PayloadFormat::pcmu())
            .unwrap()
            .decode(&payload(5), &mut fresh)
            .unwrap();
        assert_eq!(got, [(1000 + 5 * 160, fresh)]);
        assert_eq!(m.next_deadline(), Some(ms(370)));

        // A packet waiting for a missing one holds the tail back: the reorder buffer's
        // deadline comes first, and the tail then follows the newest packet.
        assert!(feed(&mut m, 7, 7, ms(290)).is_empty());
        assert_eq!(m.next_deadline(), Some(ms(350)));
        let mut released = Vec::new();
        m.drain(ms(350), |_, ts, _, _, _| released.push(ts));
        assert_eq!(released, [1000 + 7 * 160]);
        assert_eq!(m.next_deadline(), Some(ms(410)));
        // A leg that ends hands its tail over at once.
        let mut ended = Vec::new();
        m.flush_tail(|_, ts, _, pcm| ended.push((ts, pcm.len())));
        assert_eq!(ended, [(1000 + 8 * 160, ring_out)]);
    }
}
