//! The server's end-to-end tests, one module per capability, all in one test binary: each
//! test starts the real `callmux` binary (and SIPp, baresip, Redis, Kamailio where it needs
//! them) and checks what it recorded and delivered. One binary instead of one per file keeps
//! the build small: every test binary links the whole dependency tree.
//!
//! Run one group with a filter, e.g. `cargo test -p callmux-server --test it bridge::`.

mod common;
mod reg_client;

mod api_doc;
mod bad_answers;
mod bad_input;
mod bridge;
mod bridge_more;
mod config_errors;
mod delivery;
mod dispatch_bench;
mod first_call;
mod metrics;
mod nat;
mod ops;
mod record_options;
mod recording_tail;
mod redis_dispatch;
mod registrar;
mod reload;
mod robustness;
mod scaleout;
mod security;
mod shutdown;
mod softphone;
mod webhooks;
