//! Opus (RFC 6716 / RFC 7587) through libopus (`audiopus`), decoding and encoding directly
//! at 16 kHz mono: libopus resamples internally, and the RTP clock stays 48 kHz.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Channels, ErrorCode, SampleRate};

use super::CodecError;

/// Longest Opus packet duration (120 ms) in 16 kHz samples.
pub(crate) const MAX_FRAME_16K: usize = 1920;
/// Opus frame durations are multiples of 2.5 ms = 40 samples at 16 kHz.
const STEP_16K: usize = 40;
/// Largest encoded packet we produce (RFC 6716 caps one frame at 1275 bytes).
const MAX_PACKET: usize = 1500;

fn reason(e: audiopus::Error) -> &'static str {
    match e {
        audiopus::Error::Opus(ErrorCode::InvalidPacket) => "invalid packet",
        audiopus::Error::Opus(ErrorCode::BufferTooSmall) => "packet longer than 120 ms",
        audiopus::Error::Opus(ErrorCode::BadArgument) => "bad argument",
        audiopus::Error::Opus(ErrorCode::InternalError) => "internal error",
        audiopus::Error::Opus(ErrorCode::AllocFail) => "allocation failed",
        audiopus::Error::EmptyPacket => "empty packet",
        audiopus::Error::PacketTooLarge | audiopus::Error::SignalsTooLarge => "buffer too large",
        _ => "opus error",
    }
}

fn opus_err(e: audiopus::Error) -> CodecError {
    CodecError::Opus(reason(e))
}

/// Opus decoder producing 16 kHz mono, with FEC and packet-loss concealment.
#[derive(Debug)]
pub(crate) struct OpusDecoder {
    decoder: Decoder,
    scratch: Box<[i16]>,
}

impl OpusDecoder {
    pub(crate) fn new() -> Result<Self, CodecError> {
        let decoder = Decoder::new(SampleRate::Hz16000, Channels::Mono).map_err(opus_err)?;
        Ok(Self {
            decoder,
            scratch: vec![0i16; MAX_FRAME_16K].into_boxed_slice(),
        })
    }

    pub(crate) fn decode(
        &mut self,
        payload: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        let n = self
            .decoder
            .decode(Some(payload), &mut self.scratch[..], false)
            .map_err(opus_err)?;
        out.extend_from_slice(self.scratch.get(..n).unwrap_or(&[]));
        Ok(n)
    }

    /// Packet-loss concealment for exactly `samples` samples (run in 2.5 ms multiples, the
    /// last chunk truncated).
    pub(crate) fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> usize {
        let mut remaining = samples;
        while remaining > 0 {
            let want = remaining.min(320);
            let chunk = want.div_ceil(STEP_16K) * STEP_16K;
            let produced = self
                .decoder
                .decode(None::<&[u8]>, &mut self.scratch[..chunk], false)
                .unwrap_or(0);
            let take = produced.min(want);
            out.extend_from_slice(self.scratch.get(..take).unwrap_or(&[]));
            if take < want {
                // libopus refused: fall back to silence so the caller's timeline stays whole.
                out.resize(out.len() + (want - take), 0);
            }
            remaining -= want;
        }
        samples
    }

    /// Recovers a lost packet of `samples` from the in-band FEC data of the packet after it;
    /// falls back to PLC when there is none or the size is not a valid Opus duration.
    pub(crate) fn recover(
        &mut self,
        next_payload: &[u8],
        samples: usize,
        out: &mut Vec<i16>,
    ) -> usize {
        let valid = samples > 0 && samples.is_multiple_of(STEP_16K) && samples <= MAX_FRAME_16K;
        if valid && !next_payload.is_empty() {
            if let Ok(n) =
                self.decoder
                    .decode(Some(next_payload), &mut self.scratch[..samples], true)
            {
                if n == samples {
                    out.extend_from_slice(self.scratch.get(..n).unwrap_or(&[]));
                    return n;
                }
            }
        }
        self.conceal(samples, out)
    }
}

/// The encoder's complexity (0–10): see [`OpusEncoder`].
const OPUS_COMPLEXITY: u8 = 5;

/// Opus encoder taking 16 kHz mono, VoIP mode, in-band FEC on, complexity 5.
///
/// Complexity 5 instead of libopus' default (9–10): the encoder is what a transcoded call
/// costs (137 µs per 20 ms frame at the default, 60 µs at 5 on this project's test machine;
/// see docs/bridging-performance.md), and for 16 kHz speech the difference is not audible.
#[derive(Debug)]
pub(crate) struct OpusEncoder {
    encoder: Encoder,
}

impl OpusEncoder {
    pub(crate) fn new() -> Result<Self, CodecError> {
        let mut encoder = Encoder::new(SampleRate::Hz16000, Channels::Mono, Application::Voip)
            .map_err(opus_err)?;
        encoder.set_inband_fec(true).map_err(opus_err)?;
        encoder.set_packet_loss_perc(10).map_err(opus_err)?;
        encoder.set_complexity(OPUS_COMPLEXITY).map_err(opus_err)?;
        Ok(Self { encoder })
    }

    /// Appends one packet; `pcm.len()` must be an Opus frame size at 16 kHz (2.5 to 60 ms).
    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<u32, CodecError> {
        if !matches!(pcm.len(), 40 | 80 | 160 | 320 | 640 | 960) {
            return Err(CodecError::BadFrameSize { samples: pcm.len() });
        }
        let start = out.len();
        out.resize(start + MAX_PACKET, 0);
        let written = self
            .encoder
            .encode(pcm, &mut out[start..])
            .map_err(opus_err);
        match written {
            Ok(n) => {
                out.truncate(start + n);
                // 16 kHz samples → 48 kHz RTP ticks.
                Ok(u32::try_from(pcm.len() * 3).unwrap_or(u32::MAX))
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}
