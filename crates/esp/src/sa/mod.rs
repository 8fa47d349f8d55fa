//! One-way security associations, ESP ([`esp`]) and AH ([`ah`]) alike. An [`Sa`] keeps what
//! the two protocols share per packet: the SPI, the sequence numbers it sends
//! ([`SequenceCounter`]) or the [`ReplayWindow`] it receives through, and the traffic lifetime
//! with its counters; the protocol's own keys and rules are its parameter `P`. One type, so
//! ESP and AH cannot drift apart on when a sequence number is consumed, when the window moves
//! or when a lifetime notice fires: [`OutboundSa`](esp::OutboundSa) is
//! `Sa<SequenceCounter, esp::Esp>`, [`InboundAh`](ah::InboundAh) is `Sa<ReplayWindow, ah::Ah>`.
//!
//! Sequence numbers (RFC 4303 §3.3.3, RFC 4302 §3.3.2) start at 1 and are 32 bits: extended
//! sequence numbers are an IKEv2 / RFC 4304 feature the IKEv1 engine never negotiates. When
//! 2³² − 1 has been sent the SA refuses to seal ([`SealError::SequenceExhausted`]) and reports
//! a hard lifetime notice; a soft notice comes well before, at [`SEQUENCE_SOFT_LIMIT`], so the
//! engine rekeys in time.
//!
//! Traffic lifetimes (RFC 2407 §4.5 "SA Life Duration" in kilobytes) count the bytes of the
//! protected packets (the inner packet in tunnel mode, the IP payload in transport mode) and
//! the packets. Time lifetimes are the IKE engine's: it owns the clock.

use crypto::esp_transform::EspCryptoError;
use crypto::key_schedule::{EspKeys, Spi};
use crypto::{EspCipher, Integrity};

use crate::replay::{ReplayError, ReplayWindow};
use crate::wire::ah::AhWireError;
use crate::wire::esp::{TrailerError, WireError};
use spd::FlowError;

pub mod ah;
pub mod esp;

/// After this many packets an outbound SA asks for a rekey (a soft notice): 7/8 of the
/// sequence space, which leaves 2²⁹ packets, minutes even at millions of packets a second.
pub const SEQUENCE_SOFT_LIMIT: u32 = 0xE000_0000;

/// Tunnel or transport mode (RFC 4303 §3.1.1, §3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The payload is a whole IP packet (next header 4 or 41).
    Tunnel,
    /// The payload is the payload of the outer IP packet; next header is its protocol.
    Transport,
}

/// Traffic limits of an SA; `None` for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrafficLimits {
    /// Bytes after which a rekey is asked for.
    pub soft_bytes: Option<u64>,
    /// Bytes after which the SA refuses traffic.
    pub hard_bytes: Option<u64>,
    /// Packets after which a rekey is asked for.
    pub soft_packets: Option<u64>,
    /// Packets after which the SA refuses traffic.
    pub hard_packets: Option<u64>,
}

impl TrafficLimits {
    /// A negotiated traffic lifetime in kilobytes (`sa duration traffic-based`) as the hard
    /// byte limit, and the soft limit at `soft_bytes` (at most the hard one): the byte count
    /// at which the key manager rekeys. It owns that threshold, so the notice must come
    /// exactly there; one any earlier is judged too early, and the next usage report may come
    /// only after the hard limit has stopped the traffic.
    pub fn from_kilobytes(kilobytes: u64, soft_bytes: u64) -> Self {
        let hard = kilobytes.saturating_mul(1024);
        Self { soft_bytes: Some(soft_bytes.min(hard)), hard_bytes: Some(hard), ..Self::default() }
    }
}

/// The keys of one SA direction, as bytes; borrowed so that nothing secret is copied
/// outside the crypto crate's zeroizing types.
#[derive(Clone, Copy)]
pub struct SaKeys<'a> {
    /// The SPI in the ESP header (chosen by the receiver of this SA).
    pub spi: Spi,
    /// Cipher key followed by the salt for AES-GCM ([`EspCipher::key_len`] bytes).
    pub cipher_key: &'a [u8],
    /// Integrity key (empty for AES-GCM).
    pub integrity_key: &'a [u8],
}

impl<'a> From<&'a EspKeys> for SaKeys<'a> {
    fn from(keys: &'a EspKeys) -> Self {
        Self {
            spi: keys.spi(),
            cipher_key: keys.encryption_key_with_salt(),
            integrity_key: keys.integrity_key(),
        }
    }
}

impl core::fmt::Debug for SaKeys<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SaKeys({}, <redacted>)", self.spi)
    }
}

/// Why an SA could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    /// A key was refused (wrong length, weak DES key).
    #[error("SA key refused: {0}")]
    Key(#[from] EspCryptoError),
    /// A non-AEAD cipher without an integrity algorithm.
    #[error("{0} without an integrity algorithm is not supported (RFC 4303 §3.2)")]
    MissingIntegrity(EspCipher),
    /// AES-GCM with a separate integrity algorithm.
    #[error("{cipher} is an AEAD and cannot be combined with {integrity}")]
    AeadWithIntegrity {
        /// The cipher.
        cipher: EspCipher,
        /// The integrity algorithm.
        integrity: Integrity,
    },
    /// An inbound SA with this SPI is already installed.
    #[error("an inbound SA with SPI {0} is already installed")]
    DuplicateSpi(Spi),
    /// An SPI below 256: reserved by IANA (RFC 4303 §2.1).
    #[error("SPI {0} is reserved")]
    ReservedSpi(Spi),
    /// AH cannot be UDP-encapsulated (RFC 3948 covers ESP only; NAT rewrites the
    /// addresses AH authenticates).
    #[error("AH cannot be UDP-encapsulated (NAT traversal needs ESP alone)")]
    AhUdpEncapsulated,
    /// AH is implemented over IPv4 only.
    #[error("AH needs IPv4 gateway addresses")]
    AhNotIpv4,
}

/// Why a packet was not sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The output buffer cannot hold the ESP packet.
    #[error("output buffer of {available} bytes, {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// Every sequence number has been used: the SA must be replaced (RFC 4303 §3.3.3).
    #[error("sequence numbers exhausted; the SA must be rekeyed")]
    SequenceExhausted,
    /// The hard traffic lifetime was reached.
    #[error("hard traffic lifetime reached")]
    Expired,
    /// A tunnel-mode call on a transport-mode SA or the other way round.
    #[error("the SA is in {0:?} mode")]
    WrongMode(Mode),
    /// A tunnel-mode payload that is not an IPv4 or IPv6 packet.
    #[error("tunnel-mode payload is not an IP packet")]
    NotAnIpPacket,
    /// The cipher failed; not expected with keys the SA accepted.
    #[error("cipher failure: {0}")]
    Crypto(#[from] EspCryptoError),
}

/// Why a received ESP packet was dropped. Each variant is one drop reason for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Too short or misaligned for the SA's algorithms.
    #[error("malformed ESP packet: {0}")]
    Malformed(#[from] WireError),
    /// Not an IPv4 packet with an AH header of the SA's shape.
    #[error("malformed AH packet: {0}")]
    MalformedAh(#[from] AhWireError),
    /// The SPI is not this SA's.
    #[error("SPI {found} is not this SA's {expected}")]
    WrongSpi {
        /// This SA's SPI.
        expected: Spi,
        /// The packet's SPI.
        found: Spi,
    },
    /// Refused by the anti-replay window (before any cryptography).
    #[error("replay check: {0}")]
    Replay(#[from] ReplayError),
    /// The ICV or AEAD tag did not verify.
    #[error("integrity check failed")]
    AuthenticationFailed,
    /// The padding or pad length is wrong.
    #[error("bad trailer: {0}")]
    Trailer(#[from] TrailerError),
    /// A dummy packet (next header 59, RFC 4303 §2.6): authentic, counted, discarded.
    #[error("dummy packet (next header 59)")]
    Dummy,
    /// A tunnel-mode SA carried something other than IPv4 or IPv6.
    #[error("next header {0} in a tunnel-mode SA")]
    UnexpectedNextHeader(u8),
    /// The inner IPv4 header of a tunnel-mode packet is broken.
    #[error("inner packet: {0}")]
    InnerMalformed(FlowError),
    /// The hard traffic lifetime was reached.
    #[error("hard traffic lifetime reached")]
    Expired,
    /// The output buffer is shorter than the ESP packet.
    #[error("output buffer of {available} bytes, {needed} needed")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The cipher failed for a reason other than authentication.
    #[error("cipher failure: {0}")]
    Crypto(EspCryptoError),
}

/// Which limit a lifetime notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeCause {
    /// The byte count.
    Bytes,
    /// The packet count.
    Packets,
    /// The 32-bit sequence number space (outbound only).
    SequenceNumbers,
}

/// A traffic lifetime event: soft asks for a rekey, hard means the SA carries no more traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeNotice {
    /// A soft limit was crossed: start a rekey.
    Soft(LifetimeCause),
    /// A hard limit was crossed: the SA now refuses traffic and should be removed.
    Hard(LifetimeCause),
}

/// Traffic through one SA, for lifetimes and `display ipsec statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Packets protected or accepted.
    pub packets: u64,
    /// Their bytes (inner packet in tunnel mode, IP payload in transport mode).
    pub bytes: u64,
}

/// Counters plus the limit state machine shared by both directions.
#[derive(Debug, Clone)]
struct Lifetime {
    limits: TrafficLimits,
    counters: Counters,
    soft: bool,
    hard: bool,
    notice: Option<LifetimeNotice>,
}

impl Lifetime {
    fn new(limits: TrafficLimits) -> Self {
        Self { limits, counters: Counters::default(), soft: false, hard: false, notice: None }
    }

    fn record(&mut self, bytes: usize) {
        self.counters.packets += 1;
        self.counters.bytes += bytes as u64;
        let (c, l) = (self.counters, self.limits);
        let crossed = |limit: Option<u64>, value: u64| limit.is_some_and(|limit| value >= limit);
        if !self.hard {
            if crossed(l.hard_bytes, c.bytes) {
                self.expire(LifetimeCause::Bytes);
            } else if crossed(l.hard_packets, c.packets) {
                self.expire(LifetimeCause::Packets);
            }
        }
        if !self.soft {
            if crossed(l.soft_bytes, c.bytes) {
                self.soften(LifetimeCause::Bytes);
            } else if crossed(l.soft_packets, c.packets) {
                self.soften(LifetimeCause::Packets);
            }
        }
    }

    fn soften(&mut self, cause: LifetimeCause) {
        self.soft = true;
        // A pending hard notice says more; never replace it with a soft one.
        if !self.hard {
            self.notice = Some(LifetimeNotice::Soft(cause));
        }
    }

    fn expire(&mut self, cause: LifetimeCause) {
        self.hard = true;
        self.soft = true;
        self.notice = Some(LifetimeNotice::Hard(cause));
    }
}

/// The sending side's sequence numbers: the last one used (0 before the first packet).
#[derive(Debug, Clone, Copy, Default)]
pub struct SequenceCounter {
    last: u32,
}

/// One direction of one SA: the SPI and the bookkeeping both protocols share, around the
/// protocol's keys `P`. `S` is the direction: [`SequenceCounter`] for packets we send,
/// [`ReplayWindow`] for packets the peer sends us.
#[derive(Debug)]
pub struct Sa<S, P> {
    spi: Spi,
    sequence: S,
    lifetime: Lifetime,
    protocol: P,
}

impl<S, P> Sa<S, P> {
    /// Refuses the SPIs below 256, which IANA reserves (RFC 4303 §2.1, RFC 4302 §2.4), before
    /// `protocol` keys anything.
    fn build(
        spi: Spi,
        sequence: S,
        limits: TrafficLimits,
        protocol: impl FnOnce() -> Result<P, SaError>,
    ) -> Result<Self, SaError> {
        if spi.0 < 256 {
            return Err(SaError::ReservedSpi(spi));
        }
        Ok(Self { spi, sequence, lifetime: Lifetime::new(limits), protocol: protocol()? })
    }

    /// The SPI in the packets' headers (chosen by the receiver of this SA).
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Packets and bytes sealed or accepted so far.
    pub fn counters(&self) -> Counters {
        self.lifetime.counters
    }

    /// True once a hard limit has been crossed: the SA carries nothing more.
    pub fn is_expired(&self) -> bool {
        self.lifetime.hard
    }

    /// The pending lifetime notice, once.
    pub fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.lifetime.notice.take()
    }
}

impl<P> Sa<SequenceCounter, P> {
    /// The sequence number of the last packet sealed (0 before the first).
    pub fn last_sequence(&self) -> u32 {
        self.sequence.last
    }

    /// Takes the next sequence number, refusing once the SA is expired or the space is used
    /// up. The number is consumed before any cryptography, so an IV derived from it is never
    /// reused, even after a failure.
    fn next_sequence(&mut self) -> Result<u32, SealError> {
        if self.lifetime.hard {
            return Err(SealError::Expired);
        }
        let sequence = self.sequence.last.checked_add(1).ok_or(SealError::SequenceExhausted)?;
        self.sequence.last = sequence;
        Ok(sequence)
    }

    /// Counts a sealed packet of `payload_len` protected bytes against the traffic limits and
    /// the sequence space: hard at 2³² − 1, soft at [`SEQUENCE_SOFT_LIMIT`].
    fn sealed(&mut self, sequence: u32, payload_len: usize) {
        self.lifetime.record(payload_len);
        if sequence == u32::MAX {
            self.lifetime.expire(LifetimeCause::SequenceNumbers);
        } else if sequence >= SEQUENCE_SOFT_LIMIT && !self.lifetime.soft {
            self.lifetime.soften(LifetimeCause::SequenceNumbers);
        }
    }

    #[cfg(test)]
    pub(crate) fn set_last_sequence(&mut self, sequence: u32) {
        self.sequence.last = sequence;
    }
}

/// The order both RFCs ask for on receipt (RFC 4303 §3.4.3, RFC 4302 §3.4.3): `check`
/// before any cryptography, and the window moved only by `accept` or `dummy` once
/// the packet proved authentic.
impl<P> Sa<ReplayWindow, P> {
    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.sequence
    }

    /// The checks that cost no cryptography: the hard lifetime, then the replay window.
    fn check(&self, sequence: u32) -> Result<(), OpenError> {
        if self.lifetime.hard {
            return Err(OpenError::Expired);
        }
        Ok(self.sequence.check(sequence)?)
    }

    /// An authentic packet carrying `payload_len` protected bytes: moves the window and
    /// counts it.
    fn accept(&mut self, sequence: u32, payload_len: usize) -> Result<(), OpenError> {
        self.sequence.update(sequence)?;
        self.lifetime.record(payload_len);
        Ok(())
    }

    /// An authentic dummy packet (next header 59, RFC 4303 §2.6): it may move the window but
    /// carries nothing, so it is not counted and always ends in [`OpenError::Dummy`].
    fn dummy<T>(&mut self, sequence: u32) -> Result<T, OpenError> {
        self.sequence.update(sequence)?;
        Err(OpenError::Dummy)
    }
}
