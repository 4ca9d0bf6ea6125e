//! callmux media toolkit: everything a call task needs between an RTP socket and 16 kHz PCM.
//!
//! This crate is sans-IO. It never opens a socket, spawns a task or a thread, sleeps, reads a
//! clock or draws entropy by itself: bytes, `now: Instant` and RNG seeds are arguments, and
//! results are returned values or caller-owned buffers.
//!
//! # Run-loop contract (one call task, one leg)
//!
//! 1. Signalling: [`sdp::SessionDescription::parse`] the remote offer, [`sdp::answer`] it (or
//!    [`sdp::offer`] then [`sdp::accept_answer`] for outbound legs), and allocate the RTP port
//!    from a [`ports::PortPool`]. [`sdp::NegotiationError::NoCommonCodec`] means SIP 488.
//! 2. For every datagram received on the RTP port: if [`rtp::is_rtcp`] it is RTCP
//!    ([`rtcp::parse_rtcp`] for statistics); otherwise [`rtp::parse_rtp`] it, route the
//!    negotiated telephone-event payload type to [`dtmf::DtmfDetector::push`], and
//!    [`reorder::ReorderBuffer::push`] audio.
//! 3. After every push, and at [`reorder::ReorderBuffer::next_deadline`], drain
//!    [`reorder::ReorderBuffer::pop`] until it returns `None`: a released packet goes to
//!    [`codec::AudioDecoder::decode`], a declared loss (with its estimated length) to
//!    [`codec::AudioDecoder::conceal`]. Both append 16 kHz mono `i16` to a reused buffer.
//! 4. To send: 20 ms of 16 kHz PCM (a [`tone::ToneGenerator`], a prompt, the mix) go through
//!    [`codec::AudioEncoder::encode`] and [`rtp::RtpPacketizer::write`] into a reused buffer;
//!    DTMF goes out as [`dtmf::DtmfGenerator::packets`], one per 20 ms, audio paused.
//!
//! Steady-state media processing (steps 2-4) does not allocate: parsers borrow, the reorder
//! buffer copies into preallocated slots, codecs and resamplers keep fixed state and append to
//! caller buffers whose capacity is reused.
//!
//! # Panic policy
//!
//! A panic is a bug; nothing from the network panics. Every parser here (SDP, RTP, RTCP,
//! RFC 4733 telephone-event, SIP INFO DTMF bodies, Opus payloads) returns an error for bad
//! input, is covered by malformed-input tests and proptests, and has an entry point in
//! [`fuzzing`] for cargo-fuzz.
//!
//! # What this crate never does
//!
//! No I/O of any kind, no tokio, no locks shared between calls, no logging on the media path,
//! no `unsafe` (libopus is reached through `audiopus`).

pub mod codec;
pub mod dtmf;
pub mod fuzzing;
pub mod mixer;
pub mod ports;
pub mod reorder;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod tone;

pub use codec::{AudioDecoder, AudioEncoder, CodecError};
pub use dtmf::{
    parse_dtmf_info, DtmfDetector, DtmfError, DtmfGenerator, DtmfPacket, TelephoneEvent,
};
pub use mixer::{
    ConferenceMixer, MixerConfig, MixerError, ParticipantId, ParticipantOptions, ParticipantStats,
};
pub use ports::PortPool;
pub use reorder::{PushOutcome, Released, ReorderBuffer, ReorderStats};
pub use resample::{Downsampler2x, Upsampler2x};
pub use rtp::{is_rtcp, parse_rtp, write_rtp_packet, RtpError, RtpPacketizer, RtpView};
pub use sdp::{
    accept_answer, answer, offer, offer_with_direction, Codec, CodecPreferences, Direction,
    Negotiated, NegotiationError, PayloadFormat, SdpError, SdpOrigin, SessionDescription,
    TelephoneEventFormat,
};
pub use tone::{Beep, ToneGenerator};
