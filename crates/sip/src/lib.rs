//! callmux's sans-IO SIP core: messages, RFC 3261 transactions, dialogs, digest
//! authentication and the [`Endpoint`] that ties them together.
//!
//! # Run loop
//!
//! The driver (in `crates/server`) owns the sockets and the clock and does, forever:
//!
//! 1. `endpoint.handle_input(now, peer, bytes)` for each UDP datagram, and for each
//!    [`framing::Framed::Message`] that a per-connection [`StreamFramer`] cut from TCP/TLS
//!    bytes (answer each [`framing::Framed::Ping`] with `b"\r\n"`; close the connection
//!    on a framing error);
//! 2. `endpoint.handle_timeout(now)` once `endpoint.poll_timeout()` has passed;
//! 3. drain `poll_transmit()` (send each [`Transmit`]) and `poll_event()` (hand each
//!    [`Event`] to the call logic, which answers with `respond`, `send_request`,
//!    `send_stateless` or `cancel`), then drain `poll_transmit()` again;
//! 4. sleep until `poll_timeout()` or the next input.
//!
//! Given the same `rng_seed` and the same sequence of calls, the endpoint produces the same
//! bytes and events in the same order.
//!
//! # Panic policy
//!
//! A panic is a bug; nothing from the network panics. Parsers never index untrusted input
//! unchecked, every parser has malformed-input tests and a fuzz entry point in [`fuzzing`],
//! and the endpoint still wraps parsing in `catch_unwind` as a last safety net (a caught
//! panic is counted and reported as malformed input).
//!
//! # What this crate never does
//!
//! No sockets, no threads, no async runtime, no sleeping, no reading of the clock (time is
//! always an argument; only the fuzz helper picks a starting `Instant`), no unseeded
//! randomness, no logging, no `unsafe`. rsip is not used: it rejects unknown methods,
//! folded headers and IPv6 URIs, so the parser is our own and no third-party SIP type
//! appears in the API.

pub mod auth;
pub mod dialog;
pub mod endpoint;
pub mod framing;
pub mod fuzzing;
pub mod headers;
pub(crate) mod lex;
pub mod message;
pub mod method;
pub mod params;
pub mod registrar;
pub(crate) mod rng;
pub mod transaction;
pub mod uri;

pub use dialog::{Dialog, DialogError, DialogId};
pub use endpoint::{
    ClientTxKey, ConnectionId, Endpoint, EndpointConfig, EndpointError, EndpointStats, Event, Peer,
    ServerTxKey, Transmit, TransportKind,
};
pub use framing::{Framed, FramingError, StreamFramer};
pub use headers::{CSeq, Header, HeaderError, Headers, NameAddr, Via};
pub use message::{
    default_reason, Message, ParseError, ParseErrorKind, ParseLimits, Request, Response,
    ResponseContext,
};
pub use method::Method;
pub use params::{Param, Params};
pub use transaction::TimerConfig;
pub use uri::{Scheme, Uri};
