//! The IKEv1 engine of keysteward, sans-IO: a value fed with datagrams, acquires and time,
//! which answers with datagrams to send, SA events and its next deadline (DESIGN.md).
//!
//! Implemented so far: main mode and aggressive mode with pre-shared keys in both roles
//! (RFC 2409 §5, §5.4; aggressive mode as responder only when the configuration allows it),
//! quick mode with and without PFS in both roles (RFC 2409 §5.5), phase-1 and quick-mode
//! proposal selection, retransmission with back-off, answers to repeated messages from
//! memory, half-open limits, error notifications in clear before phase 1 is authenticated and
//! under HASH protection afterwards, and Delete payloads received. NAT-T, DPD, rekeying and
//! signatures are not implemented yet.
#![forbid(unsafe_code)]

mod aggressive_mode;
mod config;
mod engine;
mod event;
mod ike_sa;
mod informational;
mod proposal;
mod quick_mode;
mod wire;

#[cfg(test)]
mod tests;

pub use config::{
    AuthMethod, Config, EncapsulationMode, ExchangeMode, IdentityConfig, IkeProposal, IpsecProposal,
    IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector,
    AGGRESSIVE_MODE_PSK_RISK,
};
pub use engine::{Engine, IkeSaView, Statistics};
pub use event::{ConnectionId, Event, Exchange, Failure, FailureReason, IpsecSaPair, Transmit};
pub use ike_sa::Role;
pub use proposal::{IpsecMismatch, IpsecOffer, IpsecSuite, Phase1Mismatch, Phase1Offer, SuiteName};
pub use quick_mode::Acquire;
