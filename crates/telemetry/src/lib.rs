//! The keysteward daemon's telemetry: [`logging`] (the `tracing` subscriber of `keysteward run`:
//! `RUST_LOG`-style filters, text or JSON lines on stderr, or journald's native protocol when
//! systemd runs the daemon) and [`metrics`] (the Prometheus endpoint, `--metrics ADDR:PORT`);
//! [`events`] words the log line of each IKE engine event, [`refusals`] rate-limits those of
//! failures.

#![forbid(unsafe_code)]

pub mod events;
pub mod logging;
pub mod metrics;
pub mod refusals;
