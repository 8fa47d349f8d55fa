//! The IKEv1 engine of keysteward, sans-IO: a value fed with datagrams, acquires and time,
//! which answers with datagrams to send, SA events and its next deadline (DESIGN.md).
//!
//! Implemented so far: main mode with pre-shared keys in both roles (RFC 2409 §5, §5.4),
//! quick mode with and without PFS in both roles (RFC 2409 §5.5), phase-1 and quick-mode
//! proposal selection, retransmission with back-off, answers to repeated messages from
//! memory, half-open limits, error notifications in clear before phase 1 is authenticated and
//! under HASH protection afterwards, and Delete payloads received. Aggressive mode, NAT-T,
//! DPD, rekeying and signatures are not implemented yet.
#![forbid(unsafe_code)]

mod config;
mod dpd;
mod engine;
mod event;
mod ike_sa;
mod informational;
mod nat_t;
mod proposal;
mod quick_mode;
mod vendor;
mod wire;

#[cfg(test)]
mod tests;

pub use config::{
    AuthMethod, Config, DpdConfig, EncapsulationMode, ExchangeMode, IdentityConfig, IkeProposal,
    IpsecProposal, IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector,
};
pub use engine::{Engine, IkeSaView, Statistics};
pub use event::{
    ClearReason, ConnectionId, Event, Exchange, Failure, FailureReason, IpsecSaPair, Transmit,
    UdpEncapsulation,
};
pub use ike_sa::Role;
pub use nat_t::{KEEPALIVE, KEEPALIVE_INTERVAL, NAT_T_PORT};
pub use proposal::{IpsecMismatch, IpsecOffer, IpsecSuite, Phase1Mismatch, Phase1Offer, SuiteName};
pub use quick_mode::Acquire;
pub use vendor::{NatTVersion, PeerCapabilities};
