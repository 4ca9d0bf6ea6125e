//! One leg's RTP: its socket, symmetric-RTP latching, reorder buffer, decoder and DTMF
//! detector on the way in; encoder and packetizer on the way out. Owned by the call task;
//! nothing here is shared between calls.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callmux_media::{
    is_rtcp, parse_rtp, AudioDecoder, AudioEncoder, Codec, DtmfDetector, Negotiated, PortPool,
    Released, ReorderBuffer, RtpPacketizer,
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
    encoder: Option<AudioEncoder>,
    packetizer: RtpPacketizer,
    out: Vec<u8>,
    payload: Vec<u8>,
    pub(crate) last_rx: Option<Instant>,
    last_ssrc: Option<u32>,
    pub(crate) stats: LegStats,
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
            encoder: None,
            packetizer,
            out: Vec::with_capacity(1500),
            payload: Vec::with_capacity(1500),
            last_rx: None,
            last_ssrc: None,
            stats: LegStats::default(),
            negotiated,
        })
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
        if self.encoder.is_none() {
            self.encoder = Some(AudioEncoder::new(&self.negotiated.audio)?);
        }
        let Some(enc) = self.encoder.as_mut() else {
            return Ok(());
        };
        self.payload.clear();
        let advance = enc.encode(pcm16k, &mut self.payload)?;
        self.out.clear();
        self.packetizer
            .write(&self.payload, false, advance, &mut self.out);
        self.socket.send_to(&self.out, self.remote).await?;
        self.stats.sent += 1;
        Ok(())
    }
}
