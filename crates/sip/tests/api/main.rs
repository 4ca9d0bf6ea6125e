//! Integration tests for callmux-sip: the endpoint driven on simulated time.

mod back_to_back;
mod client;
mod framing;
mod harness;
mod invite_server;
mod malformed;
mod requests;
