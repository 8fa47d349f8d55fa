//! The keysteward gateway: the glue between the operator's VRP configuration, the IKE engine,
//! the sockets, the TUN device and the ESP data plane. The `keysteward` binary
//! (`src/main.rs`) is its command-line face.
//!
//! Modules by concern: [`os`] is everything that touches the operating system (routes, TUN,
//! sockets); [`data_path`] moves packets on a thread of its own; [`bridge`] turns engine
//! events into data-plane operations; [`control`] is the control protocol and its socket;
//! [`display`] renders the displays; [`daemon`] is the loop that routes between them.
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod bridge;
/// The control protocol and its socket (crate `keysteward-control`).
pub use control;
pub mod daemon;
/// The data-plane thread and the state it shares with the loop (crate `keysteward-datapath`).
pub use data_path;
pub mod demo;
pub mod display;
pub mod engine_config;
/// The key log of `run --key-log` (crate `keysteward-keylog`).
pub use key_log;
pub mod load;
pub mod os;
pub mod pki;
pub mod records;
/// What makes the daemon a system service (crate `keysteward-service`).
pub use service;
