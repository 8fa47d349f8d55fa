//! The data plane as one sans-IO value: the SPD, the SA database and the acquire queues,
//! with RFC 4301 §5.1 (outbound) and §5.2 (inbound) processing on top of the per-SA seal and
//! open.
//!
//! Per-packet calls return outcomes that borrow the caller's buffer, as boringtun's
//! `TunnResult` does: [`DataPlane::seal`] → [`Outbound`], [`DataPlane::open`] → [`Inbound`].
//! Things the control plane must act on (acquires, traffic lifetime notices) come out of
//! [`DataPlane::poll_event`]. Nothing here reads a clock or a socket.
//!
//! SA pairs are installed from the IKE engine's `IpsecSaInstalled` event, converted by the
//! gateway into a [`SaPair`]: this crate does not depend on `ike`, so the data plane builds
//! and tests without the engine, and the engine's types can change without touching the
//! packet path. The conversion is a field-by-field copy: `policy` (the engine's `PolicyId`)
//! to the gateway's [`PolicyIndex`]; `selector` prefixes from the engine's `Subnet` masks via
//! [`Prefix::from_mask`](crate::Prefix::from_mask) and its protocol (0 = any); `suite` to
//! [`SaParams`] (cipher, integrity, mode, traffic lifetime via
//! [`TrafficLimits::from_kilobytes`](crate::TrafficLimits::from_kilobytes) with the
//! engine's rekey threshold, `IpsecSaPair::traffic_soft_bytes`, as the soft limit);
//! `udp_encapsulation.is_some()` to [`SaParams::udp_encapsulated`]; `local`, `remote`; and
//! `inbound` / `outbound` `EspKeys` via `SaKeys::from`.
//!
//! Make-before-break (RFC 4301 §4.4.2 rekeying): several SA pairs may serve one flow. Outbound
//! packets use the newest that is not expired; inbound packets are accepted on every
//! installed SA until the gateway removes the old one (on its delete or expiry).
//!
//! Acquire (§5.1, "no SA: ... invoke IKE"): a packet matching a `Protect` rule with no SA is
//! copied into a queue for that rule (at most [`DataPlaneConfig::queue_len`] packets, oldest
//! dropped first) and an [`Event::Acquire`] is raised once per queue. When a matching SA is
//! installed, the packets move to a ready list that [`DataPlane::poll_queued`] seals. If the
//! negotiation fails, the gateway calls [`DataPlane::abandon_acquire`], which drops the queue
//! so the next packet raises a fresh acquire. Queueing is the slow path: it copies and may
//! allocate (buffers are recycled); the protected fast path does neither.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crypto::key_schedule::Spi;
use crypto::SecureRandom;

use crypto::Integrity;

use crate::mtu::{self, IPV4_HEADER_LEN, UDP_HEADER_LEN};
use crate::sa::ah::{self, AhParams, InboundAh, OutboundAh, PROTOCOL_AH, PROTOCOL_ESP};
use crate::sa::esp::{InboundSa, OutboundSa, SaParams};
use crate::sa::{LifetimeNotice, Mode, OpenError, SaError, SaKeys, SealError};
use crate::selector::{Flow, FlowError, Selector, PROTOCOL_SCTP, PROTOCOL_TCP, PROTOCOL_UDP};
use crate::spd::{Action, PolicyIndex, Rule, Spd};
use crate::wire::esp::EspPacket;

/// Implementation limits of the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// Packets kept per acquire queue while an SA is negotiated.
    pub queue_len: usize,
    /// Spare packet buffers kept for reuse by the queues.
    pub spare_buffers: usize,
    /// MTU of the path to the peers: no outer packet (IPv4 header, UDP header when
    /// encapsulated, ESP) leaves bigger than this.
    pub path_mtu: u16,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self { queue_len: 8, spare_buffers: 64, path_mtu: 1500 }
    }
}

/// Which IPsec protocols a pair uses (`transform esp | ah | ah-esp`), with the AH keys of
/// an AH+ESP bundle.
#[derive(Debug, Clone, Copy)]
pub enum Protocols<'a> {
    /// ESP alone: [`SaPair::inbound`] / [`SaPair::outbound`] are the ESP SAs' keys.
    Esp,
    /// AH alone with this integrity algorithm: [`SaPair::inbound`] / [`SaPair::outbound`]
    /// are the AH SAs' keys (no cipher key, as the IKE engine reports them), and only the
    /// mode, window and limits of [`SaPair::params`] apply.
    Ah(Integrity),
    /// AH outside ESP (RFC 4301 §4.5, transport adjacency): ESP keys in the pair, AH's here.
    AhEsp {
        /// The AH integrity algorithm.
        integrity: Integrity,
        /// Keys for AH packets from the peer, under the AH SPI we chose.
        inbound: SaKeys<'a>,
        /// Keys for AH packets to the peer, under the AH SPI the peer chose.
        outbound: SaKeys<'a>,
    },
}

/// Longest addition AH makes before a payload: the outer IPv4 header and the longest AH
/// header. [`DataPlane::seal`]'s output buffer needs this much more for AH pairs.
pub const MAX_AH_HEADROOM: usize = ah::OUTER_HEADER_LEN + ah::MAX_AH_LEN;

/// A pair of SAs as the IKE engine negotiated them.
#[derive(Debug, Clone, Copy)]
pub struct SaPair<'a> {
    /// The policy entry it serves.
    pub policy: PolicyIndex,
    /// The negotiated flow, our side as `local` (both directions use it).
    pub selector: Selector,
    /// Algorithms, mode, framing, window, limits (the same both ways).
    pub params: SaParams,
    /// Our gateway address (and port 4500 when UDP-encapsulated).
    pub local: SocketAddr,
    /// The peer's gateway address and port.
    pub remote: SocketAddr,
    /// Keys for packets from the peer, under the SPI we chose.
    pub inbound: SaKeys<'a>,
    /// Keys for packets to the peer, under the SPI the peer chose.
    pub outbound: SaKeys<'a>,
    /// ESP, AH or both.
    pub protocols: Protocols<'a>,
}

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
    /// [`PROTOCOL_ESP`]: `datagram` is an ESP packet the caller frames (IP protocol 50 or
    /// UDP). [`PROTOCOL_AH`]: `datagram` is a complete IPv4 packet carrying AH, to be sent
    /// as is (`IP_HDRINCL`): its ICV covers the IPv4 header.
    pub protocol: u8,
    /// The ESP packet, or the IPv4 packet with AH.
    pub datagram: &'a [u8],
    /// More datagrams wait in [`DataPlane::poll_queued`] (the other fragments of this
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
/// [`DataPlane::decide`] returns it.
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

/// Inbound drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InboundDrops {
    /// No SA for the SPI (or shorter than an ESP header).
    pub unknown_spi: u64,
    /// Too short or misaligned for the SA.
    pub malformed: u64,
    /// Duplicate, too old or sequence number 0.
    pub replayed: u64,
    /// ICV or AEAD tag mismatch.
    pub authentication: u64,
    /// Bad padding or pad length.
    pub trailer: u64,
    /// Dummy packets (next header 59).
    pub dummy: u64,
    /// Unexpected next header or broken inner header.
    pub inner: u64,
    /// SA past its hard lifetime.
    pub expired: u64,
    /// Outside the SA's selector.
    pub policy_mismatch: u64,
    /// Other (buffer, cipher failures).
    pub other: u64,
}

impl InboundDrops {
    fn count(&mut self, reason: &DropReason) {
        let counter = match reason {
            DropReason::Truncated | DropReason::UnknownSpi(_) => &mut self.unknown_spi,
            DropReason::PolicyMismatch { .. } | DropReason::ProtectionMismatch { .. } => {
                &mut self.policy_mismatch
            }
            DropReason::Open(error) => match error {
                OpenError::Malformed(_) | OpenError::MalformedAh(_) | OpenError::WrongSpi { .. } => {
                    &mut self.malformed
                }
                OpenError::Replay(_) => &mut self.replayed,
                OpenError::AuthenticationFailed => &mut self.authentication,
                OpenError::Trailer(_) => &mut self.trailer,
                OpenError::Dummy => &mut self.dummy,
                OpenError::UnexpectedNextHeader(_) | OpenError::InnerMalformed(_) => &mut self.inner,
                OpenError::Expired => &mut self.expired,
                OpenError::BufferTooSmall { .. } | OpenError::Crypto(_) => &mut self.other,
            },
        };
        *counter += 1;
    }
}

/// Counters for `display ipsec statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statistics {
    /// Packets sealed.
    pub sealed: u64,
    /// Packets opened and delivered.
    pub opened: u64,
    /// Packets passed in clear.
    pub bypassed: u64,
    /// Packets queued waiting for an SA.
    pub queued: u64,
    /// Queued packets dropped because their queue was full or abandoned, or released
    /// packets and fragments whose SA went away before `poll_queued`.
    pub queue_dropped: u64,
    /// Acquires raised.
    pub acquires: u64,
    /// Packets fragmented before encryption to fit the path MTU.
    pub fragmented: u64,
    /// Packets too big for the path with DF set (answered with ICMP or dropped).
    pub too_big: u64,
    /// Outbound packets dropped: malformed.
    pub outbound_malformed: u64,
    /// Outbound packets dropped: a discard rule.
    pub outbound_policy_discards: u64,
    /// Outbound packets dropped: the SA refused (exhausted, expired, buffer).
    pub outbound_seal_errors: u64,
    /// Inbound drops by reason.
    pub inbound: InboundDrops,
    /// Clear packets from outside refused because policy wants them protected (or dropped).
    pub inbound_clear_refused: u64,
}

/// Hashes the keys of the SA tables (our own inbound SPIs, policy indices) with one
/// multiplication (Fibonacci hashing). These keys are chosen by us, not by the network (the
/// IKE engine picks our SPIs at random; a packet's SPI is only looked up), so SipHash's
/// resistance to flooding buys nothing, and it cost about 7 % of sealing a 1400-byte packet.
#[derive(Default, Clone, Copy)]
struct IndexHasher(u64);

const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*byte)).wrapping_mul(FIBONACCI);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(32) ^ n).wrapping_mul(FIBONACCI);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;

/// What a bundle asks of each of its SAs, whichever the protocol and the direction.
trait BundledSa {
    fn spi(&self) -> Spi;
    fn mode(&self) -> Mode;
    fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice>;
}

/// Implements [`BundledSa`] by the SA types' own methods of the same names.
macro_rules! bundled_sa {
    ($($sa:ty),*) => {$(
        impl BundledSa for $sa {
            fn spi(&self) -> Spi {
                <$sa>::spi(self)
            }
            fn mode(&self) -> Mode {
                self.params().mode
            }
            fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
                <$sa>::take_lifetime_notice(self)
            }
        }
    )*};
}
bundled_sa!(OutboundSa, OutboundAh, InboundSa, InboundAh);

/// The SAs of one pair in one direction: ESP, AH, or AH outside ESP. Generic over the
/// direction so that both directions answer alike which SA names the pair (ESP's when there
/// is one) and which mode it is in.
struct Bundle<E, A> {
    esp: Option<E>,
    ah: Option<A>,
}

impl<E: BundledSa, A: BundledSa> Bundle<E, A> {
    /// The SPI the pair is known by: the ESP SA's, else the AH SA's.
    fn spi(&self) -> Spi {
        match (&self.esp, &self.ah) {
            (Some(esp), _) => esp.spi(),
            (None, Some(ah)) => ah.spi(),
            (None, None) => Spi(0),
        }
    }

    /// The bundle's mode; both SAs of an AH+ESP bundle are built in the same one.
    fn mode(&self) -> Mode {
        match (&self.esp, &self.ah) {
            (Some(esp), _) => esp.mode(),
            (None, Some(ah)) => ah.mode(),
            (None, None) => Mode::Tunnel,
        }
    }

    /// The first pending lifetime notice, ESP's before AH's; both are taken, so a notice of
    /// the other SA is not left to be reported later for the same pair.
    fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        let esp = self.esp.as_mut().and_then(E::take_lifetime_notice);
        let ah = self.ah.as_mut().and_then(A::take_lifetime_notice);
        esp.or(ah)
    }
}

/// The outbound SAs of one pair.
type OutboundBundle = Bundle<OutboundSa, OutboundAh>;
/// The inbound SAs of one pair.
type InboundBundle = Bundle<InboundSa, InboundAh>;

impl OutboundBundle {
    fn is_expired(&self) -> bool {
        self.esp.as_ref().is_some_and(OutboundSa::is_expired)
            || self.ah.as_ref().is_some_and(OutboundAh::is_expired)
    }

    fn udp_encapsulated(&self) -> bool {
        self.esp.as_ref().is_some_and(|esp| esp.params().udp_encapsulated)
    }

    /// The longest inner packet (tunnel) whose protected packet fits in `space` bytes after
    /// the outer IPv4 (and UDP) header.
    fn max_payload_len(&self, space: usize) -> usize {
        let space = space.saturating_sub(self.ah.as_ref().map_or(0, |ah| ah.params().header_len()));
        match &self.esp {
            Some(esp) => esp.max_payload_len(space),
            None => space,
        }
    }

    /// Seals: ESP first, then AH outside it. Returns the length written at `out[0]` and the
    /// protocol of the result (ESP packet, or a whole IPv4 packet with AH).
    fn seal(
        &mut self,
        local: IpAddr,
        remote: IpAddr,
        protocol: u8,
        header_len: usize,
        packet: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, u8), SealError> {
        let mode = self.mode();
        let (next_header, payload) = match mode {
            Mode::Tunnel => (crate::wire::esp::NEXT_HEADER_IPV4, packet),
            Mode::Transport => (protocol, packet.get(header_len..).unwrap_or_default()),
        };
        let Some(ah) = &mut self.ah else {
            let esp = self.esp.as_mut().ok_or(SealError::NotAnIpPacket)?;
            return Ok((seal_esp(esp, mode, next_header, payload, out)?, PROTOCOL_ESP));
        };
        let (IpAddr::V4(source), IpAddr::V4(destination)) = (local, remote) else {
            return Err(SealError::NotAnIpPacket);
        };
        let headroom = ah.headroom();
        let available = out.len();
        let len = match &mut self.esp {
            Some(esp) => {
                let inner = out
                    .get_mut(headroom..)
                    .ok_or(SealError::BufferTooSmall { needed: headroom, available })?;
                let esp_len = seal_esp(esp, mode, next_header, payload, inner)?;
                ah.seal_in_place(source, destination, PROTOCOL_ESP, out, esp_len)?
            }
            None => ah.seal(source, destination, next_header, payload, out)?.len(),
        };
        Ok((len, PROTOCOL_AH))
    }
}

/// Seals `payload` with the ESP SA of a bundle in the bundle's mode into `out`, returning the
/// ESP packet's length: one place for ESP alone and for ESP under AH, so both check the mode
/// the same way (a tunnel payload must be an IP packet; a transport one keeps `next_header`).
fn seal_esp(
    esp: &mut OutboundSa,
    mode: Mode,
    next_header: u8,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, SealError> {
    Ok(match mode {
        Mode::Tunnel => esp.seal_tunnel(payload, out)?.len(),
        Mode::Transport => esp.seal_transport(next_header, payload, out)?.len(),
    })
}

struct OutboundEntry {
    sa: OutboundBundle,
    selector: Selector,
    local: SocketAddr,
    remote: SocketAddr,
    inbound_spi: Spi,
    serial: u64,
}

struct InboundEntry {
    sa: InboundBundle,
    policy: PolicyIndex,
    selector: Selector,
    local: SocketAddr,
    remote: SocketAddr,
}

/// A packet waiting for `poll_queued`: released from an acquire queue (`sa: None`, looked
/// up again), or a fragment bound to the SA of its original packet (`policy`, serial).
struct Released {
    packet: Vec<u8>,
    sa: Option<(PolicyIndex, u64)>,
}

struct AcquireQueue {
    policy: PolicyIndex,
    packets: VecDeque<Vec<u8>>,
}

/// The SPD, the SAs and the acquire queues of one gateway.
pub struct DataPlane {
    config: DataPlaneConfig,
    spd: Spd,
    /// Outbound SAs per policy entry, oldest first.
    outbound: IndexMap<PolicyIndex, Vec<OutboundEntry>>,
    /// Inbound SA pairs by our SPI (unique: we choose them): the ESP SPI, or the AH SPI
    /// for AH alone.
    inbound: IndexMap<Spi, InboundEntry>,
    /// Our AH SPIs to the key of their pair in `inbound`.
    inbound_ah: IndexMap<Spi, Spi>,
    /// Acquire queues by SPD rule index (`None`: the default action).
    queues: HashMap<Option<usize>, AcquireQueue>,
    /// Released packets waiting for `poll_queued`.
    ready: VecDeque<Released>,
    spare: Vec<Vec<u8>>,
    events: VecDeque<Event>,
    statistics: Statistics,
    next_serial: u64,
}

impl core::fmt::Debug for DataPlane {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DataPlane")
            .field("rules", &self.spd.rules().len())
            .field("inbound_sas", &self.inbound.len())
            .field("queues", &self.queues.len())
            .field("statistics", &self.statistics)
            .finish_non_exhaustive()
    }
}

impl DataPlane {
    /// A data plane with `spd` and no SAs.
    pub fn new(spd: Spd, config: DataPlaneConfig) -> Self {
        Self {
            config,
            spd,
            outbound: IndexMap::default(),
            inbound: IndexMap::default(),
            inbound_ah: IndexMap::default(),
            queues: HashMap::new(),
            ready: VecDeque::new(),
            spare: Vec::new(),
            events: VecDeque::new(),
            statistics: Statistics::default(),
            next_serial: 0,
        }
    }

    /// Replaces the SPD (configuration reload). Installed SAs stay; queued packets are
    /// dropped, since rule indices change.
    pub fn replace_spd(&mut self, spd: Spd) {
        self.spd = spd;
        let rules: Vec<Option<usize>> = self.queues.keys().copied().collect();
        for rule in rules {
            self.drop_queue(rule);
        }
    }

    /// Appends a rule to the SPD (lowest priority) without touching the acquire queues, and
    /// returns its index: a hub adds the flow a branch negotiated through a policy template
    /// when the pair is installed (the gateway's `data_path`).
    pub fn push_rule(&mut self, rule: Rule) -> usize {
        self.spd.push(rule)
    }

    /// Removes the first SPD rule equal to `rule` (the SAs of a template flow are gone).
    /// Packets queued on that rule are dropped and counted; the queues of the rules after it
    /// follow their rules' new indices. Returns false when no rule is equal.
    pub fn remove_rule(&mut self, rule: &Rule) -> bool {
        let Some(index) = self.spd.rules().iter().position(|r| r == rule) else { return false };
        self.drop_queue(Some(index));
        self.spd.remove(index);
        let mut moved: Vec<usize> = self.queues.keys().filter_map(|k| k.filter(|&i| i > index)).collect();
        moved.sort_unstable();
        for old in moved {
            if let Some(queue) = self.queues.remove(&Some(old)) {
                self.queues.insert(Some(old - 1), queue);
            }
        }
        true
    }

    /// Follows a configuration reload in which policy entries moved or went: the SAs of
    /// policy `old` now belong to `renumber(old)`, and the SAs of a policy that maps to
    /// `None` are removed (the engine deleted them with the peer). Fragments waiting under a
    /// removed policy are dropped. Call with the new SPD ([`DataPlane::replace_spd`]), whose
    /// `Protect` actions use the new numbers. Returns how many pairs were removed.
    pub fn renumber_policies(&mut self, renumber: impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        let mut removed = 0;
        let outbound = std::mem::take(&mut self.outbound);
        for (old, entries) in outbound {
            match renumber(old) {
                Some(new) => self.outbound.entry(new).or_default().extend(entries),
                None => {
                    for entry in entries {
                        self.inbound.remove(&entry.inbound_spi);
                        removed += 1;
                    }
                }
            }
        }
        // Inbound SAs whose outbound half was already gone follow the same rule.
        self.inbound.retain(|_, entry| match renumber(entry.policy) {
            Some(new) => {
                entry.policy = new;
                true
            }
            None => false,
        });
        // AH SPIs of removed AH and AH+ESP pairs.
        let inbound = &self.inbound;
        self.inbound_ah.retain(|_, pair| inbound.contains_key(pair));
        let ready = std::mem::take(&mut self.ready);
        for mut released in ready {
            match released.sa {
                Some((policy, serial)) => match renumber(policy) {
                    Some(new) => {
                        released.sa = Some((new, serial));
                        self.ready.push_back(released);
                    }
                    None => {
                        self.statistics.queue_dropped += 1;
                        self.recycle(released.packet);
                    }
                },
                None => self.ready.push_back(released),
            }
        }
        removed
    }

    /// The counters.
    pub fn statistics(&self) -> &Statistics {
        &self.statistics
    }

    /// The next event, if any. Drain after every call that takes a packet or an SA.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Installs a pair of SAs and releases the packets queued for its flow (see
    /// [`DataPlane::poll_queued`]). `rng` keys the CBC IV generator.
    pub fn install(&mut self, pair: SaPair<'_>, rng: &mut dyn SecureRandom) -> Result<(), SaError> {
        if self.inbound.contains_key(&pair.inbound.spi) {
            return Err(SaError::DuplicateSpi(pair.inbound.spi));
        }
        let p = &pair.params;
        if !matches!(pair.protocols, Protocols::Esp) {
            if p.udp_encapsulated {
                return Err(SaError::AhUdpEncapsulated);
            }
            if !(pair.local.is_ipv4() && pair.remote.is_ipv4()) {
                return Err(SaError::AhNotIpv4);
            }
        }
        let ah_params = |integrity| AhParams {
            integrity,
            mode: p.mode,
            replay_window: p.replay_window,
            limits: p.limits,
        };
        let (outbound, inbound) = match pair.protocols {
            Protocols::Esp => (
                OutboundBundle { esp: Some(OutboundSa::new(p, pair.outbound, rng)?), ah: None },
                InboundBundle { esp: Some(InboundSa::new(p, pair.inbound)?), ah: None },
            ),
            Protocols::Ah(integrity) => (
                OutboundBundle {
                    esp: None,
                    ah: Some(OutboundAh::new(&ah_params(integrity), pair.outbound)?),
                },
                InboundBundle { esp: None, ah: Some(InboundAh::new(&ah_params(integrity), pair.inbound)?) },
            ),
            Protocols::AhEsp { integrity, inbound, outbound } => (
                OutboundBundle {
                    esp: Some(OutboundSa::new(p, pair.outbound, rng)?),
                    ah: Some(OutboundAh::new(&ah_params(integrity), outbound)?),
                },
                InboundBundle {
                    esp: Some(InboundSa::new(p, pair.inbound)?),
                    ah: Some(InboundAh::new(&ah_params(integrity), inbound)?),
                },
            ),
        };
        if let Some(ah) = &inbound.ah {
            if self.inbound_ah.contains_key(&ah.spi()) {
                return Err(SaError::DuplicateSpi(ah.spi()));
            }
            self.inbound_ah.insert(ah.spi(), pair.inbound.spi);
        }
        self.inbound.insert(
            pair.inbound.spi,
            InboundEntry {
                sa: inbound,
                policy: pair.policy,
                selector: pair.selector,
                local: pair.local,
                remote: pair.remote,
            },
        );
        self.next_serial += 1;
        self.outbound.entry(pair.policy).or_default().push(OutboundEntry {
            sa: outbound,
            selector: pair.selector,
            local: pair.local,
            remote: pair.remote,
            inbound_spi: pair.inbound.spi,
            serial: self.next_serial,
        });
        self.release(pair.policy, &pair.selector);
        Ok(())
    }

    /// Moves queued packets of `policy` that `selector` covers to the ready list.
    fn release(&mut self, policy: PolicyIndex, selector: &Selector) {
        let rules: Vec<Option<usize>> =
            self.queues.iter().filter(|(_, q)| q.policy == policy).map(|(rule, _)| *rule).collect();
        for rule in rules {
            let Some(queue) = self.queues.get_mut(&rule) else { continue };
            let mut kept = VecDeque::new();
            while let Some(packet) = queue.packets.pop_front() {
                let covered =
                    Flow::parse_ipv4(&packet).is_ok_and(|(flow, ..)| selector.matches_outbound(&flow));
                if covered {
                    self.ready.push_back(Released { packet, sa: None });
                } else {
                    kept.push_back(packet);
                }
            }
            if kept.is_empty() {
                self.queues.remove(&rule);
            } else {
                queue.packets = kept;
            }
        }
    }

    /// Removes the pair whose inbound SA has our SPI `spi`. Returns false if there is none.
    pub fn remove_by_inbound_spi(&mut self, spi: Spi) -> bool {
        let Some(entry) = self.inbound.remove(&spi) else {
            return false;
        };
        if let Some(ah) = &entry.sa.ah {
            self.inbound_ah.remove(&ah.spi());
        }
        if let Some(list) = self.outbound.get_mut(&entry.policy) {
            list.retain(|o| o.inbound_spi != spi);
        }
        true
    }

    /// Removes the pair whose outbound SA goes to `remote` under the peer's SPI `spi` (what
    /// a Delete payload names; peers choose SPIs, so the address disambiguates). Returns
    /// false if there is none.
    pub fn remove_by_outbound_spi(&mut self, remote: IpAddr, spi: Spi) -> bool {
        let found = self
            .outbound
            .values()
            .flatten()
            .find(|o| o.sa.spi() == spi && o.remote.ip() == remote)
            .map(|o| o.inbound_spi);
        match found {
            Some(inbound_spi) => self.remove_by_inbound_spi(inbound_spi),
            None => false,
        }
    }

    /// Drops the packets waiting for `policy` (its negotiation failed or was given up), so
    /// the next packet raises a fresh acquire. Returns how many were dropped.
    pub fn abandon_acquire(&mut self, policy: PolicyIndex) -> usize {
        let rules: Vec<Option<usize>> =
            self.queues.iter().filter(|(_, q)| q.policy == policy).map(|(rule, _)| *rule).collect();
        rules.into_iter().map(|rule| self.drop_queue(rule)).sum()
    }

    fn drop_queue(&mut self, rule: Option<usize>) -> usize {
        let Some(queue) = self.queues.remove(&rule) else { return 0 };
        let dropped = queue.packets.len();
        self.statistics.queue_dropped += dropped as u64;
        for packet in queue.packets {
            self.recycle(packet);
        }
        dropped
    }

    fn recycle(&mut self, mut packet: Vec<u8>) {
        if self.spare.len() < self.config.spare_buffers {
            packet.clear();
            self.spare.push(packet);
        }
    }

    /// Packets waiting in acquire queues.
    pub fn queued_packets(&self) -> usize {
        self.queues.values().map(|q| q.packets.len()).sum()
    }

    /// Index (in its policy's list) of the outbound SA that would carry `flow` of `policy`
    /// now: the newest unexpired one whose selector covers the flow.
    fn find_outbound(&self, policy: PolicyIndex, flow: &Flow) -> Option<usize> {
        self.outbound
            .get(&policy)?
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.sa.is_expired() && o.selector.matches_outbound(flow))
            .max_by_key(|(_, o)| o.serial)
            .map(|(index, _)| index)
    }

    /// The outbound decision for a flow without touching any state: which SA would protect
    /// it, or whether it needs an acquire, passes in clear or is dropped. For `display`,
    /// tests and callers that want to decide before reading the whole packet.
    pub fn decide(&self, flow: &Flow) -> Decision {
        self.decide_with_index(flow).0
    }

    /// [`DataPlane::decide`] and, for `Protect`, the SA's index in its policy's list, so
    /// the packet path looks the SA up once.
    fn decide_with_index(&self, flow: &Flow) -> (Decision, usize) {
        match self.spd.lookup(flow) {
            (_, Action::Bypass) => (Decision::Bypass, 0),
            (_, Action::Discard) => (Decision::Discard, 0),
            (rule, Action::Protect(policy)) => {
                let found = self.find_outbound(policy, flow).and_then(|index| {
                    let entry = self.outbound.get(&policy)?.get(index)?;
                    Some((Decision::Protect { policy, spi: entry.sa.spi() }, index))
                });
                found.unwrap_or_else(|| {
                    // A rule's selector, or for a `Protect` default the packet's own flow
                    // (RFC 4301 §4.4.1.1 "populate from packet").
                    let selector = match rule.and_then(|i| self.spd.rules().get(i)) {
                        Some(r) => r.selector,
                        None => Selector::for_flow(flow),
                    };
                    (Decision::Acquire { policy, rule, selector }, 0)
                })
            }
        }
    }

    /// RFC 4301 §5.1 for one IPv4 packet from the inside: SPD lookup, then seal into `out`
    /// (which needs `packet.len()` + [`MAX_HEADROOM`](crate::MAX_HEADROOM) +
    /// [`MAX_TAILROOM`](crate::MAX_TAILROOM) bytes, plus [`MAX_AH_HEADROOM`] for AH pairs, and at least
    /// [`MAX_ICMP_LEN`](crate::mtu::MAX_ICMP_LEN)), pass in clear, queue, or drop. A tunnel
    /// packet too big for [`DataPlaneConfig::path_mtu`] is answered with ICMP when DF is set
    /// and fragmented otherwise; when a `Send` says `pending`, drain
    /// [`DataPlane::poll_queued`].
    pub fn seal<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Outbound<'o> {
        let (flow, header_len, total_len) = match Flow::parse_ipv4(packet) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.statistics.outbound_malformed += 1;
                return Outbound::Discard(DiscardReason::Malformed(e));
            }
        };
        let packet = &packet[..total_len];
        let (decision, index) = self.decide_with_index(&flow);
        let policy = match decision {
            Decision::Protect { policy, .. } => policy,
            Decision::Acquire { policy, rule, selector } => {
                self.enqueue(policy, rule, selector, flow, packet);
                return Outbound::Queued;
            }
            Decision::Bypass => {
                self.statistics.bypassed += 1;
                return Outbound::Bypass;
            }
            Decision::Discard => {
                self.statistics.outbound_policy_discards += 1;
                return Outbound::Discard(DiscardReason::Policy);
            }
        };
        let Some(entry) = self.outbound.get(&policy).and_then(|list| list.get(index)) else {
            // `decide_with_index` just found it; unreachable, but never panic on this path.
            self.statistics.outbound_seal_errors += 1;
            return Outbound::Discard(DiscardReason::Policy);
        };
        if entry.sa.mode() == Mode::Tunnel {
            let outer = IPV4_HEADER_LEN + if entry.sa.udp_encapsulated() { UDP_HEADER_LEN } else { 0 };
            let space = usize::from(self.config.path_mtu).saturating_sub(outer);
            let max_inner = entry.sa.max_payload_len(space);
            if packet.len() > max_inner {
                let (local, serial) = (entry.local.ip(), entry.serial);
                return self.too_big(policy, index, serial, header_len, packet, max_inner, local, out);
            }
        }
        self.seal_with(policy, index, flow.protocol, header_len, packet, out)
    }

    /// A tunnel-mode packet bigger than the path allows after encapsulation: ICMP back to
    /// the sender if DF is set, otherwise fragments sealed one by one (see [`crate::mtu`]).
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    fn too_big<'o>(
        &mut self,
        policy: PolicyIndex,
        index: usize,
        serial: u64,
        header_len: usize,
        packet: &[u8],
        max_inner: usize,
        local: IpAddr,
        out: &'o mut [u8],
    ) -> Outbound<'o> {
        let mtu = u16::try_from(max_inner).unwrap_or(u16::MAX);
        if mtu::dont_fragment(packet) {
            self.statistics.too_big += 1;
            let source = match local {
                IpAddr::V4(address) => address,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            return match mtu::frag_needed(packet, source, mtu, out) {
                Some(len) => Outbound::TooBig { icmp: &out[..len], mtu },
                None => Outbound::Discard(DiscardReason::TooBig { mtu }),
            };
        }
        let mut fragments = Vec::new();
        let spare = &mut self.spare;
        let split = mtu::fragment(packet, header_len, max_inner, |fragment| {
            let mut buffer = spare.pop().unwrap_or_default();
            buffer.extend_from_slice(fragment);
            fragments.push(buffer);
        });
        let mut fragments = fragments.into_iter();
        let (true, Some(first)) = (split, fragments.next()) else {
            self.statistics.too_big += 1;
            return Outbound::Discard(DiscardReason::TooBig { mtu });
        };
        self.statistics.fragmented += 1;
        for packet in fragments {
            self.ready.push_back(Released { packet, sa: Some((policy, serial)) });
        }
        let outcome = self.seal_with(policy, index, 0, header_len, &first, out);
        self.recycle(first);
        outcome
    }

    /// Seals `packet` with the outbound SA at `index` of `policy`'s list.
    fn seal_with<'o>(
        &mut self,
        policy: PolicyIndex,
        index: usize,
        protocol: u8,
        header_len: usize,
        packet: &[u8],
        out: &'o mut [u8],
    ) -> Outbound<'o> {
        let pending = !self.ready.is_empty();
        let Some(entry) = self.outbound.get_mut(&policy).and_then(|list| list.get_mut(index)) else {
            self.statistics.outbound_seal_errors += 1;
            return Outbound::Discard(DiscardReason::Policy);
        };
        let (spi, local, remote) = (entry.sa.spi(), entry.local, entry.remote);
        let result = entry.sa.seal(local.ip(), remote.ip(), protocol, header_len, packet, out);
        let notice = entry.sa.take_lifetime_notice();
        let udp_encapsulated = entry.sa.udp_encapsulated();
        if let Some(notice) = notice {
            self.events.push_back(Event::Lifetime { direction: Direction::Outbound, spi, remote, notice });
        }
        match result {
            Ok((len, protocol)) => {
                self.statistics.sealed += 1;
                let datagram = &out[..len];
                Outbound::Send(Send { spi, local, remote, udp_encapsulated, protocol, datagram, pending })
            }
            Err(e) => {
                self.statistics.outbound_seal_errors += 1;
                Outbound::Discard(DiscardReason::Seal(e))
            }
        }
    }

    fn enqueue(
        &mut self,
        policy: PolicyIndex,
        rule: Option<usize>,
        selector: Selector,
        flow: Flow,
        packet: &[u8],
    ) {
        let queue_len = self.config.queue_len.max(1);
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.extend_from_slice(packet);
        let queue = match self.queues.get_mut(&rule) {
            Some(queue) => queue,
            None => {
                self.statistics.acquires += 1;
                self.events.push_back(Event::Acquire { policy, rule, selector, flow });
                self.queues.entry(rule).or_insert(AcquireQueue { policy, packets: VecDeque::new() })
            }
        };
        let oldest = if queue.packets.len() >= queue_len { queue.packets.pop_front() } else { None };
        queue.packets.push_back(buffer);
        self.statistics.queued += 1;
        if let Some(oldest) = oldest {
            self.statistics.queue_dropped += 1;
            self.recycle(oldest);
        }
    }

    /// Seals the next packet released from an acquire queue into `out`; `None` when there
    /// is none left. Call after [`DataPlane::install`] until it returns `None`. A released
    /// packet that no longer finds an SA (removed meanwhile) is queued again or dropped.
    pub fn poll_queued<'o>(&mut self, out: &'o mut [u8]) -> Option<Outbound<'o>> {
        while let Some(Released { packet, sa }) = self.ready.pop_front() {
            if let Some((policy, serial)) = sa {
                // A fragment goes out on the SA chosen for its whole packet, never through a
                // new lookup: a non-first fragment has no ports and could match another rule.
                let index = self
                    .outbound
                    .get(&policy)
                    .and_then(|list| list.iter().position(|o| o.serial == serial && !o.sa.is_expired()));
                let Some(index) = index else {
                    self.statistics.queue_dropped += 1;
                    self.recycle(packet);
                    continue;
                };
                let outcome = self.seal_with(policy, index, 0, IPV4_HEADER_LEN, &packet, out);
                self.recycle(packet);
                return Some(outcome);
            }
            // Re-run the whole outbound path: the SPD may have changed since it was queued.
            // Sealing needs `out` for the outcome, so a non-`Send` outcome is decided on a
            // dry path first to keep the borrow simple.
            let (flow, ..) = match Flow::parse_ipv4(&packet) {
                Ok(parsed) => parsed,
                Err(_) => {
                    self.recycle(packet);
                    continue;
                }
            };
            if !matches!(self.decide(&flow), Decision::Protect { .. }) {
                // Queue again (or count as dropped) through the normal path.
                let mut scratch = [0u8; 0];
                let outcome = self.seal(&packet, &mut scratch);
                if !matches!(outcome, Outbound::Queued) {
                    self.statistics.queue_dropped += 1;
                }
                self.recycle(packet);
                continue;
            }
            let outcome = self.seal(&packet, out);
            self.recycle(packet);
            return Some(outcome);
        }
        None
    }

    /// RFC 4301 §5.2 for one ESP packet from the peer (the payload of an IP protocol 50
    /// packet, or of a UDP/4500 datagram after the caller stripped the UDP header): SA by
    /// SPI, open into `out` (which needs `esp.len()` bytes), then the inbound policy check.
    pub fn open<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let spi = match EspPacket::new_checked(packet) {
            Ok(packet) => packet.spi(),
            Err(_) => return self.drop(DropReason::Truncated),
        };
        let Some(entry) = self.inbound.get_mut(&spi) else {
            return self.drop(DropReason::UnknownSpi(spi));
        };
        let result = match (&mut entry.sa.esp, &entry.sa.ah) {
            (Some(esp), None) => esp.open(packet, out),
            _ => return self.drop(DropReason::ProtectionMismatch { spi, why: ESP_WITHOUT_AH }),
        };
        Self::finish_open(&mut self.statistics, &mut self.events, entry, result)
    }

    /// As [`DataPlane::open`], decrypting in place in `buf`, which holds exactly the ESP
    /// packet. On a drop the buffer's contents are unspecified.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        let spi = match EspPacket::new_checked(&*buf) {
            Ok(packet) => packet.spi(),
            Err(_) => return self.drop(DropReason::Truncated),
        };
        let Some(entry) = self.inbound.get_mut(&spi) else {
            return self.drop(DropReason::UnknownSpi(spi));
        };
        let result = match (&mut entry.sa.esp, &entry.sa.ah) {
            (Some(esp), None) => esp.open_in_place(buf),
            _ => return self.drop(DropReason::ProtectionMismatch { spi, why: ESP_WITHOUT_AH }),
        };
        Self::finish_open(&mut self.statistics, &mut self.events, entry, result)
    }

    /// RFC 4301 §5.2 for one IPv4 packet of protocol 51 (AH) from the peer, header
    /// included (as a raw socket reads it): SA by AH SPI, ICV over the header with its
    /// mutable fields zeroed, then for AH+ESP the ESP packet inside, then the inbound
    /// policy check. `out` needs `packet.len()` bytes.
    pub fn open_ah<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Inbound<'o> {
        let available = out.len();
        let Some(out) = out.get_mut(..packet.len()) else {
            return self
                .drop(DropReason::Open(OpenError::BufferTooSmall { needed: packet.len(), available }));
        };
        out.copy_from_slice(packet);
        self.open_ah_in_place(out)
    }

    /// As [`DataPlane::open_ah`], in place in `buf`, which holds exactly the IPv4 packet.
    pub fn open_ah_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Inbound<'b> {
        let Some(ah_spi) = ah::packet_spi(buf) else {
            return self.drop(DropReason::Truncated);
        };
        let Some(entry) = self.inbound_ah.get(&ah_spi).and_then(|spi| self.inbound.get_mut(spi)) else {
            return self.drop(DropReason::UnknownSpi(ah_spi));
        };
        let result = match open_bundle(entry, buf) {
            Ok(opened) => Ok(opened),
            Err(Mismatch(why)) => {
                let spi = entry.sa.spi();
                if let Some(notice) = entry.sa.take_lifetime_notice() {
                    let remote = entry.remote;
                    self.events.push_back(Event::Lifetime {
                        direction: Direction::Inbound,
                        spi,
                        remote,
                        notice,
                    });
                }
                return self.drop(DropReason::ProtectionMismatch { spi, why });
            }
            Err(Open(e)) => Err(e),
        };
        Self::finish_open(&mut self.statistics, &mut self.events, entry, result)
    }

    fn drop<'o>(&mut self, reason: DropReason) -> Inbound<'o> {
        self.statistics.inbound.count(&reason);
        Inbound::Drop(reason)
    }

    fn finish_open<'o>(
        statistics: &mut Statistics,
        events: &mut VecDeque<Event>,
        entry: &mut InboundEntry,
        result: Result<crate::sa::esp::Opened<'o>, OpenError>,
    ) -> Inbound<'o> {
        let spi = entry.sa.spi();
        if let Some(notice) = entry.sa.take_lifetime_notice() {
            events.push_back(Event::Lifetime {
                direction: Direction::Inbound,
                spi,
                remote: entry.remote,
                notice,
            });
        }
        let reason = match result {
            Ok(opened) => {
                let mode = entry.sa.mode();
                if inbound_policy_allows(entry, mode, opened.next_header, opened.payload) {
                    statistics.opened += 1;
                    return Inbound::Deliver {
                        spi,
                        policy: entry.policy,
                        mode,
                        next_header: opened.next_header,
                        packet: opened.payload,
                    };
                }
                DropReason::PolicyMismatch { spi }
            }
            Err(e) => DropReason::Open(e),
        };
        statistics.inbound.count(&reason);
        Inbound::Drop(reason)
    }

    /// RFC 4301 §5.2 for a packet that arrived from outside in clear (not ESP): true when
    /// policy lets it through, false when a `Protect` or `Discard` rule covers it (traffic
    /// that should have been protected must not be accepted in clear). Counts refusals.
    pub fn accept_clear(&mut self, packet: &[u8]) -> bool {
        let allowed = match Flow::parse_ipv4(packet) {
            Ok((flow, ..)) => matches!(self.spd.lookup_inbound(&flow).1, Action::Bypass),
            Err(_) => false,
        };
        if !allowed {
            self.statistics.inbound_clear_refused += 1;
        }
        allowed
    }

    /// The inbound ESP SA of the pair with our SPI `spi`, for `display ipsec sa`.
    pub fn inbound_sa(&self, spi: Spi) -> Option<&InboundSa> {
        self.inbound.get(&spi).and_then(|e| e.sa.esp.as_ref())
    }

    /// The inbound AH SA of the pair with our SPI `spi` (the ESP SPI for AH+ESP, the AH SPI
    /// for AH alone).
    pub fn inbound_ah_sa(&self, spi: Spi) -> Option<&InboundAh> {
        self.inbound.get(&spi).and_then(|e| e.sa.ah.as_ref())
    }

    /// Every outbound ESP SA of `policy`, oldest first.
    pub fn outbound_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundSa> {
        self.outbound.get(&policy).into_iter().flatten().filter_map(|e| e.sa.esp.as_ref())
    }

    /// True when an inbound AH SA has our AH SPI `spi` (alone or in an AH+ESP pair).
    pub fn knows_ah_spi(&self, spi: Spi) -> bool {
        self.inbound_ah.contains_key(&spi)
    }

    /// Every outbound AH SA of `policy`, oldest first.
    pub fn outbound_ah_sas(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundAh> {
        self.outbound.get(&policy).into_iter().flatten().filter_map(|e| e.sa.ah.as_ref())
    }

    /// Traffic of the pair whose outbound SA (ESP, or AH alone) has the peer's SPI `spi` on
    /// `policy`: its counters and last sequence number, for lifetime reports.
    pub fn outbound_usage(&self, policy: PolicyIndex, spi: Spi) -> Option<(crate::sa::Counters, u32)> {
        let entry = self.outbound.get(&policy)?.iter().find(|e| e.sa.spi() == spi)?;
        match (&entry.sa.esp, &entry.sa.ah) {
            (Some(esp), _) => Some((esp.counters(), esp.last_sequence())),
            (None, Some(ah)) => Some((ah.counters(), ah.last_sequence())),
            (None, None) => None,
        }
    }

    /// Traffic of the pair with our SPI `spi` (ESP, or AH alone).
    pub fn inbound_usage(&self, spi: Spi) -> Option<crate::sa::Counters> {
        let entry = self.inbound.get(&spi)?;
        match (&entry.sa.esp, &entry.sa.ah) {
            (Some(esp), _) => Some(esp.counters()),
            (None, Some(ah)) => Some(ah.counters()),
            (None, None) => None,
        }
    }
}

/// Why an AH packet was refused before the policy check: an open error, or a protection
/// that is not the negotiated one.
enum BundleError {
    Open(OpenError),
    Mismatch(&'static str),
}
use BundleError::{Mismatch, Open};

/// Why a bare ESP packet on an AH or AH+ESP pair is dropped: RFC 4301 §5.2 step 4, the
/// packet must arrive with every protection the SA bundle was negotiated with.
const ESP_WITHOUT_AH: &str = "ESP without the AH the SA bundle requires";

/// Opens an AH packet on `entry`: AH, the peer's address, and the ESP inside for AH+ESP.
fn open_bundle<'b>(
    entry: &mut InboundEntry,
    buf: &'b mut [u8],
) -> Result<crate::sa::esp::Opened<'b>, BundleError> {
    let InboundBundle { esp, ah } = &mut entry.sa;
    let ah = ah.as_mut().ok_or(Mismatch("no AH SA"))?;
    let opened = ah.open_in_place(buf).map_err(Open)?;
    if IpAddr::V4(opened.source) != entry.remote.ip() || IpAddr::V4(opened.destination) != entry.local.ip() {
        return Err(Mismatch("AH between other addresses than the SA's"));
    }
    match (esp, opened.next_header) {
        (Some(esp), PROTOCOL_ESP) => {
            let offset = opened.offset;
            let inner = esp.open_in_place(opened.payload).map_err(Open)?;
            Ok(crate::sa::esp::Opened { offset: offset + inner.offset, ..inner })
        }
        (Some(_), _) => Err(Mismatch("AH without the ESP of the AH+ESP bundle")),
        (None, PROTOCOL_ESP) => Err(Mismatch("ESP inside an AH-only SA")),
        (None, next_header) => Ok(crate::sa::esp::Opened {
            payload: opened.payload,
            offset: opened.offset,
            next_header,
            sequence: opened.sequence,
        }),
    }
}

/// RFC 4301 §5.2 step 4: the decrypted packet must lie inside the SA's selector. In tunnel
/// mode the inner IPv4 header is checked (IPv6 never matches an IPv4 selector); in transport
/// mode the addresses are the SA's endpoints and the protocol is the next header.
fn inbound_policy_allows(entry: &InboundEntry, mode: Mode, next_header: u8, payload: &[u8]) -> bool {
    let flow = match mode {
        Mode::Tunnel => match Flow::parse_ipv4(payload) {
            Ok((flow, ..)) => {
                // A non-first fragment carries no ports (RFC 4301 §7.1): check it on addresses
                // and protocol only, or a port-specific SA could never carry a big datagram.
                // The receiving host drops it anyway unless a first fragment passed this check.
                let later_fragment = u16::from_be_bytes([payload[6], payload[7]]) & 0x1fff != 0;
                if later_fragment {
                    let addresses = Selector { local_ports: None, remote_ports: None, ..entry.selector };
                    return addresses.matches_inbound(&flow);
                }
                flow
            }
            Err(_) => return false,
        },
        Mode::Transport => {
            let (IpAddr::V4(source), IpAddr::V4(destination)) = (entry.remote.ip(), entry.local.ip()) else {
                return false;
            };
            transport_flow(next_header, source, destination, payload)
        }
    };
    entry.selector.matches_inbound(&flow)
}

fn transport_flow(protocol: u8, source: Ipv4Addr, destination: Ipv4Addr, payload: &[u8]) -> Flow {
    let ports = match (protocol, payload) {
        (PROTOCOL_TCP | PROTOCOL_UDP | PROTOCOL_SCTP, [a, b, c, d, ..]) => {
            Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
        }
        _ => None,
    };
    Flow {
        protocol,
        source,
        destination,
        source_port: ports.map(|p| p.0),
        destination_port: ports.map(|p| p.1),
    }
}

#[cfg(test)]
mod tests;
