//! Audio codecs behind one decoder and one encoder type. Everything leaves a decoder as
//! 16 kHz mono `i16` and enters an encoder the same way; the G.711 paths resample 8↔16 kHz
//! with [`crate::resample`], Opus runs at 16 kHz natively.
//!
//! Decoders and encoders append to caller buffers and keep fixed state, so the media path
//! does not allocate per frame once the caller's buffers have grown to a frame.

pub mod g711;
mod opus;

use crate::resample::{Downsampler2x, Upsampler2x, UP_DELAY};

/// G.711 samples decoded (or encoded) per block on the stack.
const G711_BLOCK: usize = 160;
use crate::sdp::{Codec, PayloadFormat};

/// Why a codec could not be built or a payload not decoded or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The payload format names a clock rate this codec cannot run at (our misuse).
    #[error("{codec} cannot run at an RTP clock of {clock_rate} Hz")]
    UnsupportedFormat {
        /// The codec.
        codec: Codec,
        /// The clock rate asked for.
        clock_rate: u32,
    },
    /// An empty payload where the codec needs data (malformed input).
    #[error("empty payload")]
    EmptyPayload,
    /// An encoder was given a frame length it cannot encode (our misuse).
    #[error("cannot encode a frame of {samples} samples")]
    BadFrameSize {
        /// The length given.
        samples: usize,
    },
    /// libopus rejected the packet or the call (malformed input when decoding).
    #[error("opus: {0}")]
    Opus(&'static str),
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per leg, built once and never moved per packet; inline filter state avoids a pointer hop per sample"
)]
enum DecoderKind {
    G711 { alaw: bool, up: Upsampler2x },
    Opus(opus::OpusDecoder),
}

/// Decodes one leg's audio payloads into 16 kHz mono PCM.
#[derive(Debug)]
pub struct AudioDecoder {
    format: PayloadFormat,
    kind: DecoderKind,
}

fn check_rate(format: &PayloadFormat) -> Result<(), CodecError> {
    if format.clock_rate == format.codec.clock_rate() {
        Ok(())
    } else {
        Err(CodecError::UnsupportedFormat {
            codec: format.codec,
            clock_rate: format.clock_rate,
        })
    }
}

impl AudioDecoder {
    /// A decoder for the negotiated format.
    pub fn new(format: &PayloadFormat) -> Result<Self, CodecError> {
        check_rate(format)?;
        let kind = match format.codec {
            Codec::Pcmu => DecoderKind::G711 {
                alaw: false,
                up: Upsampler2x::new(),
            },
            Codec::Pcma => DecoderKind::G711 {
                alaw: true,
                up: Upsampler2x::new(),
            },
            Codec::Opus => DecoderKind::Opus(opus::OpusDecoder::new()?),
        };
        Ok(Self {
            format: *format,
            kind,
        })
    }

    /// The format this decoder was built for.
    pub fn format(&self) -> &PayloadFormat {
        &self.format
    }

    /// Decodes one RTP payload, appending 16 kHz samples to `out`; returns how many.
    /// A G.711 payload of N bytes gives 2N samples; an Opus packet 2.5-120 ms of audio.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        match &mut self.kind {
            DecoderKind::G711 { alaw, up } => {
                if payload.is_empty() {
                    return Err(CodecError::EmptyPayload);
                }
                let start = out.len();
                out.resize(start + 2 * payload.len(), 0);
                let dst = out.get_mut(start..).unwrap_or_default();
                for (codes, d) in payload
                    .chunks(G711_BLOCK)
                    .zip(dst.chunks_mut(2 * G711_BLOCK))
                {
                    let mut pcm = [0i16; G711_BLOCK];
                    // Two loops rather than a function pointer, so the lookup is inlined.
                    if *alaw {
                        for (p, &c) in pcm.iter_mut().zip(codes) {
                            *p = g711::alaw_to_linear(c);
                        }
                    } else {
                        for (p, &c) in pcm.iter_mut().zip(codes) {
                            *p = g711::ulaw_to_linear(c);
                        }
                    }
                    up.run(pcm.get(..codes.len()).unwrap_or_default(), d);
                }
                Ok(payload.len() * 2)
            }
            DecoderKind::Opus(dec) => dec.decode(payload, out),
        }
    }

    /// Samples (16 kHz) by which decoded audio lags the packet's timestamp: the G.711
    /// up-sampler's group delay ([`UP_DELAY`], 31 samples = 1.94 ms), 0 for Opus. Every
    /// packet is delayed alike, so legs stay aligned; what a stream's end leaves inside the
    /// filter comes out of [`tail`](Self::tail).
    pub fn delay(&self) -> usize {
        match self.kind {
            DecoderKind::G711 { .. } => UP_DELAY,
            DecoderKind::Opus(_) => 0,
        }
    }

    /// Appends the audio still inside the decoder when the stream ends (or a recording of
    /// it stops): [`delay`](Self::delay) samples that continue the last decoded packet, as
    /// if silence followed. Returns how many. The decoder's state is unchanged, so a stream
    /// that goes on is not disturbed. Without it, every G.711 stream loses its last 1.94 ms.
    pub fn tail(&self, out: &mut Vec<i16>) -> usize {
        match &self.kind {
            DecoderKind::G711 { up, .. } => up.tail(out),
            DecoderKind::Opus(_) => 0,
        }
    }

    /// Appends everything the stream decoded so far still contributes (the G.711
    /// up-sampler's [`UP_RING_OUT`](crate::resample::UP_RING_OUT) samples: the
    /// [`tail`](Self::tail), then the filter's ringing) and empties the filter; returns
    /// how many. Call it when the stream pauses:
    /// the samples belong right after the last decoded packet, and if the stream goes on
    /// there, the next packet's output (which now starts from silence) adds up with them
    /// to what an unbroken decode would give (within 1 LSB). Opus: 0, state unchanged.
    pub fn flush(&mut self, out: &mut Vec<i16>) -> usize {
        match &mut self.kind {
            DecoderKind::G711 { up, .. } => up.flush(out),
            DecoderKind::Opus(_) => 0,
        }
    }

    /// Fills a gap of `samples_16k` samples (a lost packet, or a timestamp jump): Opus
    /// packet-loss concealment, silence for G.711 (run through the interpolator so the
    /// transition is smooth). Appends exactly `samples_16k` samples and returns that count.
    pub fn conceal(&mut self, samples_16k: usize, out: &mut Vec<i16>) -> usize {
        match &mut self.kind {
            DecoderKind::G711 { up, .. } => {
                out.reserve(samples_16k);
                let target = out.len() + samples_16k;
                for _ in 0..samples_16k.div_ceil(2) {
                    let pair = up.push(0);
                    let room = target - out.len();
                    out.extend_from_slice(pair.get(..room.min(2)).unwrap_or(&[]));
                }
                samples_16k
            }
            DecoderKind::Opus(dec) => dec.conceal(samples_16k, out),
        }
    }

    /// Fills the gap of one lost packet of `samples_16k` using the packet that followed it:
    /// Opus in-band FEC when `next_payload` carries it (falling back to concealment), plain
    /// [`conceal`](Self::conceal) for G.711. Decode `next_payload` itself afterwards.
    pub fn recover(
        &mut self,
        next_payload: &[u8],
        samples_16k: usize,
        out: &mut Vec<i16>,
    ) -> usize {
        match &mut self.kind {
            DecoderKind::Opus(dec) => dec.recover(next_payload, samples_16k, out),
            DecoderKind::G711 { .. } => self.conceal(samples_16k, out),
        }
    }

    /// 16 kHz samples per RTP clock tick: 2 for 8 kHz codecs, 1/3 for Opus' 48 kHz clock.
    pub fn samples_per_rtp_tick(&self) -> f64 {
        16000.0 / f64::from(self.format.clock_rate)
    }

    /// Converts an RTP timestamp difference to 16 kHz samples (8000 → ×2, 48000 → ÷3).
    /// Use it on differences (wrapping), not on absolute timestamps.
    pub fn rtp_ts_to_16k(&self, ticks: u32) -> u32 {
        match self.format.clock_rate {
            8000 => ticks.wrapping_mul(2),
            48000 => ticks / 3,
            rate => (u64::from(ticks) * 16000 / u64::from(rate.max(1))) as u32,
        }
    }

    /// Converts a count of 16 kHz samples to RTP clock ticks (inverse of
    /// [`rtp_ts_to_16k`](Self::rtp_ts_to_16k)).
    pub fn samples_16k_to_rtp_ts(&self, samples: u32) -> u32 {
        to_rtp_ticks(self.format.clock_rate, samples)
    }
}

fn to_rtp_ticks(clock_rate: u32, samples: u32) -> u32 {
    match clock_rate {
        8000 => samples / 2,
        48000 => samples.wrapping_mul(3),
        rate => (u64::from(samples) * u64::from(rate) / 16000) as u32,
    }
}

#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per leg, built once and never moved per packet; inline filter state avoids a pointer hop per sample"
)]
enum EncoderKind {
    G711 { alaw: bool, down: Downsampler2x },
    Opus(opus::OpusEncoder),
}

/// Encodes 16 kHz mono PCM into one leg's audio payloads.
#[derive(Debug)]
pub struct AudioEncoder {
    format: PayloadFormat,
    kind: EncoderKind,
}

impl AudioEncoder {
    /// An encoder for the negotiated format.
    pub fn new(format: &PayloadFormat) -> Result<Self, CodecError> {
        check_rate(format)?;
        let kind = match format.codec {
            Codec::Pcmu => EncoderKind::G711 {
                alaw: false,
                down: Downsampler2x::new(),
            },
            Codec::Pcma => EncoderKind::G711 {
                alaw: true,
                down: Downsampler2x::new(),
            },
            Codec::Opus => EncoderKind::Opus(opus::OpusEncoder::new()?),
        };
        Ok(Self {
            format: *format,
            kind,
        })
    }

    /// The format this encoder was built for.
    pub fn format(&self) -> &PayloadFormat {
        &self.format
    }

    /// Encodes one frame (normally 20 ms = 320 samples) and appends one payload to `out`.
    /// Returns how far the RTP timestamp advances (160 for G.711, 960 for Opus at 20 ms).
    /// G.711 takes any even length; Opus a valid Opus duration (2.5, 5, 10, 20, 40, 60 ms).
    pub fn encode(&mut self, pcm16k: &[i16], out: &mut Vec<u8>) -> Result<u32, CodecError> {
        match &mut self.kind {
            EncoderKind::G711 { alaw, down } => {
                if !pcm16k.len().is_multiple_of(2) {
                    return Err(CodecError::BadFrameSize {
                        samples: pcm16k.len(),
                    });
                }
                out.reserve(pcm16k.len() / 2);
                for chunk in pcm16k.chunks(2 * G711_BLOCK) {
                    let mut pcm = [0i16; G711_BLOCK];
                    let n = down.run(chunk, &mut pcm);
                    let pcm = pcm.get(..n).unwrap_or_default();
                    if *alaw {
                        out.extend(pcm.iter().map(|&y| g711::linear_to_alaw(y)));
                    } else {
                        out.extend(pcm.iter().map(|&y| g711::linear_to_ulaw(y)));
                    }
                }
                Ok(u32::try_from(pcm16k.len() / 2).unwrap_or(u32::MAX))
            }
            EncoderKind::Opus(enc) => enc.encode(pcm16k, out),
        }
    }

    /// RTP ticks for `samples` 16 kHz samples at this encoder's clock rate.
    pub fn samples_16k_to_rtp_ts(&self, samples: u32) -> u32 {
        to_rtp_ticks(self.format.clock_rate, samples)
    }
}

#[cfg(test)]
mod tests;
