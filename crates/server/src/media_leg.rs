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

    /// When the reorder buffer must be polled even without new packets.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.reorder.next_deadline()
    }

    /// Encodes 20 ms of 16 kHz audio and sends it to the latched/SDP address.
    pub(crate) async fn send_frame(&mut self, pcm16k: &[i16]) -> anyhow::Result<()> {
        self.send_pcm_frame(pcm16k)
    }
}
