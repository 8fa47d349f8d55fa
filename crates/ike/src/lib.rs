//! The IKEv1 engine of keysteward, sans-IO: a value fed with datagrams, acquires and time,
//! which answers with datagrams to send, SA events and its next deadline (DESIGN.md).
//!
//! Implemented so far: main mode with pre-shared keys in both roles (RFC 2409 §5, §5.4),
//! quick mode with and without PFS in both roles (RFC 2409 §5.5), phase-1 and quick-mode
//! proposal selection, retransmission with back-off, answers to repeated messages from
//! memory, half-open limits, error notifications in clear before phase 1 is authenticated and
//! under HASH protection afterwards, and Delete payloads received and sent. IPsec SA
//! lifetimes in time, traffic and sequence numbers with rekeying before expiry, IKE SA renewal
//! by a new main mode, RESPONDER-LIFETIME, the reset commands and the error history are in
//! `lifetime.rs` and `commands.rs`. Aggressive mode, NAT-T, DPD and signatures are not
//! implemented yet.
#![forbid(unsafe_code)]

mod commands;
mod config;
mod engine;
mod event;
mod ike_sa;
mod informational;
mod lifetime;
mod proposal;
mod quick_mode;
mod wire;

#[cfg(test)]
mod tests;

pub use commands::{Command, ErrorRecord, ERROR_HISTORY_LEN};
pub use config::{
    AuthMethod, Config, EncapsulationMode, ExchangeMode, IdentityConfig, IkeProposal, IpsecProposal,
    IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector,
};
pub use engine::{Engine, IkeSaView, Statistics};
pub use event::{ConnectionId, Event, Exchange, Failure, FailureReason, IpsecSaPair, Transmit};
pub use ike_sa::Role;
pub use lifetime::{
    IkeSaEnd, IpsecSaEnd, IpsecSaState, IpsecSaView, SaUsage, SEQUENCE_HARD_LIMIT, SEQUENCE_SOFT_LIMIT,
};
pub use proposal::{IpsecMismatch, IpsecOffer, IpsecSuite, Phase1Mismatch, Phase1Offer, SuiteName};
pub use quick_mode::Acquire;
