//! The IKEv1 engine of keysteward, sans-IO: a value fed with datagrams, acquires and time,
//! which answers with datagrams to send, SA events and its next deadline (DESIGN.md).
//!
//! Implemented so far: main mode and aggressive mode with pre-shared keys in both roles
//! (RFC 2409 §5, §5.4; aggressive mode as responder only when the configuration allows it),
//! quick mode with and without PFS in both roles (RFC 2409 §5.5) for ESP, AH and AH+ESP
//! (two proposal payloads under one number, KEYMAT per protocol), with proxy identities that
//! are addresses, prefixes or ranges with a protocol and ports, phase-1 and quick-mode
//! proposal selection, retransmission with back-off, answers to repeated messages from
//! memory, half-open responder SAs admitted by a memory budget (oldest evicted), error
//! notifications in clear before phase 1 is authenticated and
//! under HASH protection afterwards, and Delete payloads received and sent. Aggressive mode with
//! pre-shared keys in both roles (`aggressive_mode`). Vendor IDs (`isakmp::capabilities`), NAT traversal
//! with the float to UDP 4500, UDP-encapsulated modes, keepalives and NAT-OA (RFC 3947/3948,
//! `nat_t`; main mode only so far), dead peer detection (RFC 3706, `dpd`) and INITIAL-CONTACT
//! (RFC 2407 §4.6.3.3). IPsec SA lifetimes in time, traffic and sequence numbers with
//! rekeying before expiry, IKE SA renewal by a new main mode, RESPONDER-LIFETIME
//! (`lifetime`), the reset commands and the error history (`commands`), configuration
//! reload keeping the SAs whose configuration did not change (`reconfigure`), signature
//! authentication with X.509 certificates in main and aggressive mode, RSA and ECDSA
//! (RFC 2409 §5.1, RFC 4754; `auth`, which also checks pre-shared-key hashes), with IKE fragmentation (`isakmp::fragmentation`), and
//! a trace of every main, aggressive and quick-mode message sent or accepted, with its step
//! and payloads, for drivers that log the message flow (`trace`,
//! [`Engine::set_message_trace`]).
//!
//! What the driver does for NAT-T: listen on UDP 500 and 4500; on 4500 strip the 4-byte
//! zero non-ESP marker before [`Engine::handle_datagram`] (and pass ESP-in-UDP to the data
//! plane), prepend it when [`Transmit::non_esp_marker`] is set, and send keepalive transmits
//! ([`Transmit::nat_keepalive`]) as they are. The data plane reports inbound traffic with
//! [`Engine::handle_traffic`] so that DPD only probes idle tunnels.
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

mod aggressive_mode;
mod auth;
mod commands;
mod config;
mod dpd;
mod engine;
mod event;
mod failure;
mod hub;
mod identity;
mod ike_sa;
mod informational;
mod lifetime;
mod main_mode;
mod nat_t;
use ike_proposal as proposal;
mod proxy_id;
mod quick_mode;
mod quick_mode_end;
mod rate_limit;
mod reconfigure;
mod sa;
mod tally;
mod trace;
mod wire;

#[cfg(test)]
mod tests;

pub use commands::{Command, ErrorRecord, ERROR_HISTORY_LEN};
pub use config::{
    Addresses, AuthMethod, CertificateAuth, Config, DpdConfig, EncapsulationMode, ExchangeMode,
    IdentityConfig, IkeProposal, IpsecProposal, IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId,
    SendCertificate, SiteKey, Subnet, TrafficSelector, AGGRESSIVE_MODE_PSK_RISK,
};
pub use engine::endpoint::{Engine, HalfOpenUsage, Statistics};
pub use engine::views::IkeSaView;
pub use event::{
    Acquire, AhSaKeys, ClearReason, ConnectionId, Event, Exchange, Failure, IkeSaEnd, IpsecSaEnd,
    IpsecSaPair, Phase1KeyLog, Transmit, UdpEncapsulation,
};
pub use failure::{
    AuthenticationFailure, FailureReason, IdentityFailure, MalformedFailure, NotifyName, PolicyFailure,
    ProposalFailure, TimeoutFailure,
};
pub use hub_limits::{
    FlowConflict, FlowRefusal, HubLimit, HubLimits, LimitRefusal, Template as TemplateConfig,
};
pub use identity::PeerIdentity;
pub use isakmp::capabilities::{NatTVersion, PeerCapabilities};
pub use nat_t::{KEEPALIVE, KEEPALIVE_INTERVAL, NAT_T_PORT};
pub use proposal::{IpsecMismatch, IpsecOffer, IpsecSuite, Phase1Mismatch, Phase1Offer, SuiteName};
pub use reconfigure::{peer_unchanged, policy_unchanged, ConfigDiff};
pub use sa::core::Role;
pub use sa::lifetimes::{IpsecSaState, IpsecSaView, SaUsage, SEQUENCE_HARD_LIMIT, SEQUENCE_SOFT_LIMIT};
pub use tally::{exchange_label, reason_label, ExchangeCounts, SaCounts, EXCHANGES, REASONS};
pub use trace::{summarize, Direction, MessageTrace, Step};
