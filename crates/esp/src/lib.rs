//! The keysteward data plane, sans-IO: ESP (RFC 4303) and AH (RFC 4302, alone or outside
//! ESP) sealing and opening in tunnel and transport mode, the anti-replay window (RFC 4303 §3.4.3, RFC 6479), and the security
//! policy and SA databases with acquire queueing (RFC 4301 §4.4, §5).
//!
//! Layers, each usable alone:
//! - [`wire`]: the [`EspPacket`] view and the trailer rules;
//! - [`replay`]: the [`ReplayWindow`];
//! - [`ah`]: AH SAs, [`OutboundAh::seal`] / [`InboundAh::open_in_place`], over whole IPv4
//!   packets (AH authenticates the outer header);
//! - [`sa`]: one-way SAs, [`OutboundSa::seal_tunnel`] / [`InboundSa::open`], with their
//!   lifetimes and counters;
//! - [`selector`] and [`spd`]: flows, selectors, the ordered [`Spd`];
//! - [`mtu`]: ICMP "fragmentation needed" and fragmentation before encryption;
//! - [`data_plane`]: the [`DataPlane`] that ties them together for the gateway.
//!
//! Nothing here touches a clock, a socket or the operating system's random source: the
//! caller passes packets, buffers and a [`crypto::SecureRandom`] in, and reads outcomes and
//! events out. UDP encapsulation (RFC 3948) and the outer IP header are the caller's.
//!
//! # Buffers
//!
//! The per-packet paths do not allocate. Sealing writes into the caller's buffer, which must
//! hold the packet plus at most [`MAX_HEADROOM`] bytes before it (ESP header and IV) and
//! [`MAX_TAILROOM`] after it (padding, pad length, next header, ICV); a gateway that reads the
//! TUN device at offset `outer headers + MAX_HEADROOM` can seal in place with
//! [`OutboundSa::seal_in_place`]. Opening needs a buffer as long as the ESP packet, or works
//! in place with [`InboundSa::open_in_place`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod ah;
pub mod data_plane;
pub mod mtu;
pub mod replay;
pub mod sa;
pub mod selector;
pub mod spd;
pub mod wire;

#[cfg(test)]
mod test_util;

pub use ah::{AhHeader, AhOpened, AhParams, AhWireError, InboundAh, OutboundAh, PROTOCOL_AH, PROTOCOL_ESP};
pub use crypto::key_schedule::Spi;
/// The algorithm types an [`SaParams`] names, re-exported so callers need not depend on `crypto`.
pub use crypto::{EspCipher, Integrity, SecureRandom};
pub use data_plane::{
    DataPlane, DataPlaneConfig, Decision, Direction, DiscardReason, DropReason, Event, Inbound, InboundDrops,
    Outbound, Protocols, SaPair, Send, Statistics, MAX_AH_HEADROOM,
};
pub use replay::{ReplayError, ReplayWindow};
pub use sa::{
    Counters, InboundSa, LifetimeCause, LifetimeNotice, Mode, OpenError, Opened, OutboundSa, SaError, SaKeys,
    SaParams, SealError, TrafficLimits, MAX_HEADROOM, MAX_TAILROOM,
};
pub use selector::{Flow, FlowError, PortRange, Prefix, Selector};
pub use spd::{Action, PolicyIndex, Rule, Spd};
pub use wire::{EspPacket, TrailerError, WireError};
