//! Integration tests of callmux-webhook (one binary: see tests/api/).

#[path = "api/harness.rs"]
mod harness;

#[path = "api/conformance.rs"]
mod conformance;

#[path = "api/crash.rs"]
mod crash;

#[path = "api/events.rs"]
mod events;

#[path = "api/scheduler.rs"]
mod scheduler;

#[path = "api/signing.rs"]
mod signing;

#[path = "api/redis_backend.rs"]
mod redis_backend;
