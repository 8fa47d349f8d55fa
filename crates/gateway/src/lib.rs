//! The keysteward gateway: the glue between the operator's VRP configuration, the IKE engine,
//! the sockets, the TUN device and the ESP data plane. The `keysteward` binary
//! (`src/main.rs`) is its command-line face.
#![forbid(unsafe_code)]

pub mod control;
pub mod daemon;
pub mod data_path;
pub mod demo;
pub mod display;
pub mod engine_config;
pub mod fast_path;
pub mod key_log;
pub mod load;
pub mod pki;
