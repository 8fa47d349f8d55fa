//! What the data plane answers: the outcome of each packet ([`Outbound`], [`Inbound`]), the
//! policy decision for a flow ([`Decision`]) and the [`Event`]s the control plane acts on.

use std::net::SocketAddr;

use crypto::key_schedule::Spi;

use crate::sa::{LifetimeNotice, Mode, OpenError, SealError};
use spd::PolicyIndex;
use spd::{Flow, FlowError, Selector};

/// Which way an SA carries traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the peer to us.
    Inbound,
    /// From us to the peer.
    Outbound,
}

/// Something the control plane must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A packet needs an SA for `policy` and none is installed: negotiate one
    /// (the engine's `handle_acquire`).
    Acquire {
        /// The policy entry.
        policy: PolicyIndex,
        /// Index of the SPD rule that matched (`None`: the default action).
        rule: Option<usize>,
        /// The rule's selector (the flow an SA per rule would cover).
        selector: Selector,
        /// The packet that triggered it.
        flow: Flow,
    },
    /// An SA crossed a traffic limit.
    Lifetime {
        /// Which of the pair.
        direction: Direction,
        /// Its SPI.
        spi: Spi,
        /// The peer.
        remote: SocketAddr,
        /// Soft (rekey) or hard (remove).
        notice: LifetimeNotice,
    },
}

/// An ESP packet ready to go, in the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Send<'a> {
    /// The outbound SPI.
    pub spi: Spi,
    /// Source address (and port when UDP-encapsulated).
    pub local: SocketAddr,
    /// Destination address and port.
    pub remote: SocketAddr,
    /// Frame in UDP (RFC 3948) rather than IP protocol 50.
    pub udp_encapsulated: bool,
    /// [`PROTOCOL_ESP`](crate::PROTOCOL_ESP): `datagram` is an ESP packet the caller frames (IP protocol 50 or
    /// UDP). [`PROTOCOL_AH`](crate::PROTOCOL_AH): `datagram` is a complete IPv4 packet carrying AH, to be sent
    /// as is (`IP_HDRINCL`): its ICV covers the IPv4 header.
    pub protocol: u8,
    /// The ESP packet, or the IPv4 packet with AH.
    pub datagram: &'a [u8],
    /// More datagrams wait in [`DataPlane::poll_queued`](crate::DataPlane::poll_queued) (the other fragments of this
    /// packet, or packets released by an SA installation): drain it.
    pub pending: bool,
}

/// What became of an outbound packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Outbound<'a> {
    /// Sealed: send it.
    Send(Send<'a>),
    /// Not for IPsec: send the original packet in clear.
    Bypass,
    /// Waiting for an SA (an acquire is pending).
    Queued,
    /// Too big for the path with DF set: write `icmp` (an ICMP "fragmentation needed"
    /// announcing `mtu`, addressed to the sender) back into the inside network.
    TooBig {
        /// The ICMP error, a complete IPv4 packet.
        icmp: &'a [u8],
        /// The largest inner packet the tunnel carries.
        mtu: u16,
    },
    /// Dropped.
    Discard(DiscardReason),
}

/// The outbound policy decision for one flow (RFC 4301 §5.1 steps 1–2), as
/// [`DataPlane::decide`](crate::DataPlane::decide) returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// An SA is installed: `spi` would carry it.
    Protect {
        /// The policy entry.
        policy: PolicyIndex,
        /// The outbound SA (the newest usable one).
        spi: Spi,
    },
    /// The policy entry has no usable SA for the flow yet.
    Acquire {
        /// The policy entry.
        policy: PolicyIndex,
        /// Index of the SPD rule that matched (`None`: the default action).
        rule: Option<usize>,
        /// The rule's selector (the packet's own flow for the default action).
        selector: Selector,
    },
    /// Send in clear.
    Bypass,
    /// Drop.
    Discard,
}

/// Why an outbound packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscardReason {
    /// Not an IPv4 packet a policy can be applied to.
    #[error("malformed packet: {0}")]
    Malformed(FlowError),
    /// A `Discard` rule matched.
    #[error("discarded by policy")]
    Policy,
    /// The SA refused it.
    #[error("seal failed: {0}")]
    Seal(SealError),
    /// Too big for the path and neither an ICMP error nor fragments could be made.
    #[error("packet exceeds the tunnel MTU of {mtu}")]
    TooBig {
        /// The largest inner packet the tunnel carries.
        mtu: u16,
    },
}

/// What became of an inbound ESP packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Authentic, fresh and within its SA's policy: deliver it.
    Deliver {
        /// The SA it came on.
        spi: Spi,
        /// The SA's policy entry.
        policy: PolicyIndex,
        /// Tunnel: `packet` is an IP packet for the TUN device. Transport: `packet` is the
        /// payload of an IP packet from the peer with protocol `next_header`.
        mode: Mode,
        /// The next header.
        next_header: u8,
        /// The inner packet or payload.
        packet: &'a mut [u8],
    },
    /// Dropped.
    Drop(DropReason),
}

/// Why an inbound packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// Shorter than an ESP header.
    #[error("shorter than an ESP header")]
    Truncated,
    /// No inbound SA with this SPI.
    #[error("unknown SPI {0}")]
    UnknownSpi(Spi),
    /// The SA refused it.
    #[error("{0}")]
    Open(OpenError),
    /// The decrypted packet is outside its SA's selector (RFC 4301 §5.2 step 4).
    #[error("decrypted packet outside the selector of SA {spi}")]
    PolicyMismatch {
        /// The SA.
        spi: Spi,
    },
    /// ESP arrived without the AH its AH+ESP bundle requires, or AH from another address
    /// than the SA's peer, or AH alone carrying ESP: not what was negotiated.
    #[error("packet on SA {spi} does not have the negotiated protection ({why})")]
    ProtectionMismatch {
        /// The SA.
        spi: Spi,
        /// What was wrong.
        why: &'static str,
    },
}
