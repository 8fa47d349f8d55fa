//! The keysteward gateway: the glue between the operator's VRP configuration, the IKE engine
//! and (later) the sockets, the TUN device and the data plane. The `keysteward` binary
//! (`src/main.rs`) is its command-line face.
#![forbid(unsafe_code)]

pub mod engine_config;
