//! The keysteward data plane, sans-IO: ESP (RFC 4303) and AH (RFC 4302, alone or outside
//! ESP) sealing and opening in tunnel and transport mode, the anti-replay window (RFC 4303 §3.4.3, RFC 6479), and the security
//! policy and SA databases with acquire queueing (RFC 4301 §4.4, §5).
//!
//! Layers, each usable alone:
//! - [`wire`]: the [`EspPacket`] and [`AhHeader`] views, ESP's trailer rules, AH's outer header;
//! - [`replay`]: the [`ReplayWindow`] (crate `keysteward-replay`, re-exported);
//! - [`sa`]: one-way SAs, [`sa::Sa`] with the sequence numbers, replay window, lifetimes and
//!   counters that ESP and AH share; ESP's [`OutboundSa::seal_tunnel`] / [`InboundSa::open`]
//!   and AH's [`OutboundAh::seal`] / [`InboundAh::open_in_place`] over whole IPv4 packets (AH
//!   authenticates the outer header);
//! - the security policy database (flows, selectors, the ordered [`Spd`]) is the `spd` crate;
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
#![warn(clippy::too_many_lines)]

pub mod data_plane;
/// The anti-replay window (crate `keysteward-replay`).
pub use anti_replay as replay;
/// Path-MTU handling (crate `keysteward-wire`).
pub use esp_wire::mtu;
pub mod sa;
/// The ESP and AH packet formats (crate `keysteward-wire`).
pub use esp_wire as wire;

#[cfg(test)]
mod tests;

pub use crypto::key_schedule::Spi;
/// The algorithm types an [`SaParams`] names, re-exported so callers need not depend on `crypto`.
pub use crypto::{EspCipher, Integrity, SecureRandom};
pub use data_plane::{
    BuiltPair, DataPlane, DataPlaneConfig, Decision, Direction, DiscardReason, DropReason, Event, Inbound,
    InboundDrops, OpenPlane, Outbound, OutboundHalf, Protocols, SaPair, SealPlane, Send, Statistics,
    MAX_AH_HEADROOM,
};
pub use replay::{ReplayError, ReplayWindow};
/// AH as one path: its SAs and its wire format (callers find raw AH packets' SPI with
/// `esp::ah::packet_spi`).
pub use sa::ah;
pub use sa::ah::{AhOpened, AhParams, InboundAh, OutboundAh};
pub use sa::esp::{InboundSa, Opened, OutboundSa, SaParams, MAX_HEADROOM, MAX_TAILROOM};
pub use sa::{
    Counters, LifetimeCause, LifetimeNotice, Mode, OpenError, SaError, SaKeys, SealError, TrafficLimits,
};
/// The security policy database the data plane consults, re-exported so the gateway names one
/// crate for the data path.
pub use spd::{
    protocol_routed, Action, Flow, FlowError, PolicyIndex, PortRange, Prefix, Rule, Selector, Spd,
};
pub use wire::ah::{AhHeader, AhWireError, PROTOCOL_AH};
pub use wire::esp::{EspPacket, TrailerError, WireError, PROTOCOL_ESP};
