//! One-way ESP security associations: outbound processing (RFC 4303 §3.3) and inbound
//! processing (§3.4), in tunnel and transport mode (§3.1), without allocation per packet.
//!
//! Algorithms come from `crypto::esp_transform`: AES-CBC and (3)DES-CBC (RFC 3602, RFC 2451)
//! with an HMAC (RFC 2403, RFC 2404, RFC 4868), AES-GCM-16 (RFC 4106) and NULL with an HMAC
//! (RFC 2410). Confidentiality-only ESP (a CBC cipher without integrity) is refused when the
//! SA is built: RFC 4303 §3.2 allows it, but unauthenticated CBC is open to the padding and
//! bit-flipping attacks of Paterson and Yau, and no peer of ours needs it.
//!
//! IVs (RFC 4303 §3.3.2, RFC 3602 §3): a CBC IV must be unpredictable, so each outbound SA
//! keys a second instance of its cipher with random bytes at set-up and encrypts the
//! sequence number under it (NIST SP 800-38A Appendix C, "apply the forward cipher function
//! to a nonce"). Randomness is needed only once per SA, so sealing takes no random source.
//! An AES-GCM IV must never repeat under one key, so it is the 64-bit sequence number
//! (RFC 4106 §3.1), which the 32-bit counter below never lets wrap.
//!
//! Sequence numbers (§3.3.3) start at 1 and are 32 bits: extended sequence numbers are an
//! IKEv2 / RFC 4304 feature the IKEv1 engine never negotiates. When 2³² − 1 has been sent the
//! SA refuses to seal ([`SealError::SequenceExhausted`]) and reports a hard lifetime notice;
//! a soft notice comes well before, at [`SEQUENCE_SOFT_LIMIT`], so the engine rekeys in time.
//!
//! Traffic lifetimes (RFC 2407 §4.5 "SA Life Duration" in kilobytes) count the bytes of the
//! protected packets (the inner packet in tunnel mode, the IP payload in transport mode) and
//! the packets. Time lifetimes are the IKE engine's: it owns the clock.
//!
//! UDP encapsulation (RFC 3948) is the caller's: `seal` produces the ESP packet and `open`
//! takes one; the caller adds or strips the outer IP and UDP headers (and drops NAT-keepalive
//! bytes `0xFF` and non-ESP-marker IKE traffic on port 4500 before calling `open`).
//! [`SaParams::udp_encapsulated`] records which framing the SA uses so the caller can ask.

use crypto::esp_transform::{EspCryptoError, GCM_ICV_LEN, GCM_IV_LEN};
use crypto::key_schedule::{EspKeys, Spi};
use crypto::{CipherKey, EspCipher, Integrity, IntegrityKey, SecretBytes, SecureRandom};

use crate::replay::{ReplayError, ReplayWindow, DEFAULT_WINDOW};
use crate::selector::{Flow, FlowError};
use crate::wire::{
    self, check_trailer, write_trailer, EspPacket, TrailerError, WireError, HEADER_LEN, NEXT_HEADER_IPV4,
    NEXT_HEADER_IPV6, NEXT_HEADER_NONE, TRAILER_LEN,
};

/// Most bytes an SA puts before the payload: header and the longest IV (AES-CBC, 16).
/// Callers sealing in place reserve this much headroom (plus their own outer IP and UDP
/// headers).
pub const MAX_HEADROOM: usize = HEADER_LEN + 16;
/// Most bytes an SA puts after the payload: 15 bytes of padding (AES-CBC), the two trailer
/// bytes and the longest ICV (HMAC-SHA2-512-256, 32).
pub const MAX_TAILROOM: usize = 15 + TRAILER_LEN + crypto::esp_transform::MAX_ICV_LEN;

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

/// Everything about an SA but its keys: algorithms, mode, framing, replay window, limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaParams {
    /// The ESP transform.
    pub cipher: EspCipher,
    /// The authentication algorithm; `None` exactly when the cipher is AES-GCM.
    pub integrity: Option<Integrity>,
    /// Tunnel or transport.
    pub mode: Mode,
    /// True when packets travel in UDP on port 4500 (RFC 3948); the caller frames them.
    pub udp_encapsulated: bool,
    /// Inbound anti-replay window in packets (64 by default, see [`ReplayWindow::new`]).
    pub replay_window: u32,
    /// Traffic lifetime.
    pub limits: TrafficLimits,
}

impl SaParams {
    /// Tunnel mode, raw ESP, the default window and no traffic limit.
    pub fn new(cipher: EspCipher, integrity: Option<Integrity>) -> Self {
        Self {
            cipher,
            integrity,
            mode: Mode::Tunnel,
            udp_encapsulated: false,
            replay_window: DEFAULT_WINDOW,
            limits: TrafficLimits::default(),
        }
    }

    fn icv_len(&self) -> usize {
        self.cipher.icv_len() + self.integrity.map_or(0, Integrity::icv_len)
    }

    fn validate(&self) -> Result<(), SaError> {
        match (self.cipher.is_aead(), self.integrity) {
            (true, Some(integrity)) => Err(SaError::AeadWithIntegrity { cipher: self.cipher, integrity }),
            (false, None) => Err(SaError::MissingIntegrity(self.cipher)),
            _ => Ok(()),
        }
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
    MalformedAh(#[from] crate::ah::AhWireError),
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
pub(crate) struct Lifetime {
    limits: TrafficLimits,
    pub(crate) counters: Counters,
    pub(crate) soft: bool,
    pub(crate) hard: bool,
    pub(crate) notice: Option<LifetimeNotice>,
}

impl Lifetime {
    pub(crate) fn new(limits: TrafficLimits) -> Self {
        Self { limits, counters: Counters::default(), soft: false, hard: false, notice: None }
    }

    pub(crate) fn record(&mut self, bytes: usize) {
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

    pub(crate) fn soften(&mut self, cause: LifetimeCause) {
        self.soft = true;
        // A pending hard notice says more; never replace it with a soft one.
        if !self.hard {
            self.notice = Some(LifetimeNotice::Soft(cause));
        }
    }

    pub(crate) fn expire(&mut self, cause: LifetimeCause) {
        self.hard = true;
        self.soft = true;
        self.notice = Some(LifetimeNotice::Hard(cause));
    }
}

/// The per-packet bookkeeping of an outbound SA, ESP or AH alike: the 32-bit sequence
/// counter (RFC 4303 §3.3.3, RFC 4302 §3.3.2) and the traffic lifetime. One type so the two
/// protocols cannot drift apart on when a sequence number is consumed or when the sequence
/// space asks for a rekey.
#[derive(Debug, Clone)]
pub(crate) struct OutboundCounter {
    last_sequence: u32,
    lifetime: Lifetime,
}

impl OutboundCounter {
    pub(crate) fn new(limits: TrafficLimits) -> Self {
        Self { last_sequence: 0, lifetime: Lifetime::new(limits) }
    }

    /// Takes the next sequence number, refusing once the SA is expired or the space is used
    /// up. The number is consumed before any cryptography, so an IV derived from it is never
    /// reused, even after a failure.
    pub(crate) fn next_sequence(&mut self) -> Result<u32, SealError> {
        if self.lifetime.hard {
            return Err(SealError::Expired);
        }
        let sequence = self.last_sequence.checked_add(1).ok_or(SealError::SequenceExhausted)?;
        self.last_sequence = sequence;
        Ok(sequence)
    }

    /// Counts a sealed packet of `payload_len` protected bytes against the traffic limits and
    /// the sequence space: hard at 2³² − 1, soft at [`SEQUENCE_SOFT_LIMIT`].
    pub(crate) fn sealed(&mut self, sequence: u32, payload_len: usize) {
        self.lifetime.record(payload_len);
        if sequence == u32::MAX {
            self.lifetime.expire(LifetimeCause::SequenceNumbers);
        } else if sequence >= SEQUENCE_SOFT_LIMIT && !self.lifetime.soft {
            self.lifetime.soften(LifetimeCause::SequenceNumbers);
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        self.lifetime.counters
    }

    pub(crate) fn last_sequence(&self) -> u32 {
        self.last_sequence
    }

    pub(crate) fn is_expired(&self) -> bool {
        self.lifetime.hard
    }

    pub(crate) fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.lifetime.notice.take()
    }

    #[cfg(test)]
    pub(crate) fn set_last_sequence(&mut self, sequence: u32) {
        self.last_sequence = sequence;
    }
}

/// The per-packet bookkeeping of an inbound SA, ESP or AH alike: the anti-replay window and
/// the traffic lifetime. It enforces the order both RFCs ask for (RFC 4303 §3.4.3, RFC 4302
/// §3.4.3): [`InboundCounter::check`] before any cryptography, and the window moved only by
/// [`InboundCounter::accept`] or [`InboundCounter::dummy`] once the packet proved authentic.
#[derive(Debug)]
pub(crate) struct InboundCounter {
    replay: ReplayWindow,
    lifetime: Lifetime,
}

impl InboundCounter {
    /// Allocates the replay window.
    pub(crate) fn new(replay_window: u32, limits: TrafficLimits) -> Self {
        Self { replay: ReplayWindow::new(replay_window), lifetime: Lifetime::new(limits) }
    }

    /// The checks that cost no cryptography: the hard lifetime, then the replay window.
    pub(crate) fn check(&self, sequence: u32) -> Result<(), OpenError> {
        if self.lifetime.hard {
            return Err(OpenError::Expired);
        }
        Ok(self.replay.check(sequence)?)
    }

    /// An authentic packet carrying `payload_len` protected bytes: moves the window and
    /// counts it.
    pub(crate) fn accept(&mut self, sequence: u32, payload_len: usize) -> Result<(), OpenError> {
        self.replay.update(sequence)?;
        self.lifetime.record(payload_len);
        Ok(())
    }

    /// An authentic dummy packet (next header 59, RFC 4303 §2.6): it may move the window but
    /// carries nothing, so it is not counted and always ends in [`OpenError::Dummy`].
    pub(crate) fn dummy<T>(&mut self, sequence: u32) -> Result<T, OpenError> {
        self.replay.update(sequence)?;
        Err(OpenError::Dummy)
    }

    pub(crate) fn counters(&self) -> Counters {
        self.lifetime.counters
    }

    pub(crate) fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    pub(crate) fn is_expired(&self) -> bool {
        self.lifetime.hard
    }

    pub(crate) fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.lifetime.notice.take()
    }
}

/// Keys a CBC cipher with random bytes once per SA and encrypts sequence numbers into IVs.
struct IvGenerator {
    key: CipherKey,
}

impl IvGenerator {
    fn new(cipher: EspCipher, rng: &mut dyn SecureRandom) -> Result<Self, EspCryptoError> {
        let mut last = EspCryptoError::Internal;
        // A random DES key is weak with probability 2⁻⁵²; retry rather than fail.
        for _ in 0..8 {
            let mut material = vec![0u8; cipher.key_len()];
            rng.fill(&mut material);
            let material = SecretBytes::new(material);
            match CipherKey::new(cipher, material.expose()) {
                Ok(key) => return Ok(Self { key }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Writes E_k(sequence) into `iv` (one block, so CBC from a zero IV is the block cipher).
    fn fill(&self, sequence: u32, iv: &mut [u8]) -> Result<(), EspCryptoError> {
        const ZERO: [u8; 16] = [0; 16];
        iv.fill(0);
        let len = iv.len();
        iv[len - 4..].copy_from_slice(&sequence.to_be_bytes());
        self.key.encrypt_in_place(&ZERO[..len], iv)
    }
}

/// An SA for packets we send: seals inner packets into ESP.
pub struct OutboundSa {
    spi: Spi,
    params: SaParams,
    cipher: CipherKey,
    integrity: Option<IntegrityKey>,
    iv: Option<IvGenerator>,
    counter: OutboundCounter,
}

impl core::fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &self.spi)
            .field("params", &self.params)
            .field("last_sequence", &self.counter.last_sequence())
            .field("counters", &self.counter.counters())
            .finish_non_exhaustive()
    }
}

fn keys(params: &SaParams, keys: SaKeys<'_>) -> Result<(CipherKey, Option<IntegrityKey>), SaError> {
    params.validate()?;
    if keys.spi.0 < 256 {
        return Err(SaError::ReservedSpi(keys.spi));
    }
    let cipher = CipherKey::new(params.cipher, keys.cipher_key)?;
    let integrity = params.integrity.map(|i| IntegrityKey::new(i, keys.integrity_key)).transpose()?;
    Ok((cipher, integrity))
}

impl OutboundSa {
    /// Builds the SA; `rng` keys the CBC IV generator (unused for GCM and NULL).
    pub fn new(params: &SaParams, sa_keys: SaKeys<'_>, rng: &mut dyn SecureRandom) -> Result<Self, SaError> {
        let (cipher, integrity) = keys(params, sa_keys)?;
        // CBC ciphers need unpredictable IVs from a keyed generator; AEAD ciphers take the
        // sequence number as their explicit IV, and NULL has none.
        let iv = match params.cipher {
            cipher if cipher.is_aead() || cipher.iv_len() == 0 => None,
            cbc => Some(IvGenerator::new(cbc, rng)?),
        };
        Ok(Self {
            spi: sa_keys.spi,
            params: *params,
            cipher,
            integrity,
            iv,
            counter: OutboundCounter::new(params.limits),
        })
    }

    /// The SPI in the packets' headers.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Algorithms, mode and limits.
    pub fn params(&self) -> &SaParams {
        &self.params
    }

    /// Packets and bytes sealed so far.
    pub fn counters(&self) -> Counters {
        self.counter.counters()
    }

    /// The sequence number of the last packet sealed (0 before the first).
    pub fn last_sequence(&self) -> u32 {
        self.counter.last_sequence()
    }

    /// True once a hard limit has been crossed: the SA seals nothing more.
    pub fn is_expired(&self) -> bool {
        self.counter.is_expired()
    }

    /// The pending lifetime notice, once.
    pub fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.counter.take_lifetime_notice()
    }

    /// Bytes before the payload: the header and the IV. [`OutboundSa::seal_in_place`] expects
    /// the payload to start here.
    pub fn headroom(&self) -> usize {
        HEADER_LEN + self.params.cipher.iv_len()
    }

    /// Length of the ESP packet for a payload of `payload_len` bytes.
    pub fn sealed_len(&self, payload_len: usize) -> usize {
        self.headroom()
            + payload_len
            + wire::pad_len(payload_len, self.params.cipher.block_len())
            + TRAILER_LEN
            + self.params.icv_len()
    }

    /// The longest payload whose ESP packet fits in `space` bytes (0 when none does): what
    /// path-MTU handling compares inner packets against.
    pub fn max_payload_len(&self, space: usize) -> usize {
        let fixed = self.headroom() + self.params.icv_len();
        let align = self.params.cipher.block_len().max(wire::ALIGNMENT);
        let encrypted = space.saturating_sub(fixed) / align * align;
        encrypted.saturating_sub(TRAILER_LEN)
    }

    /// Seals a whole IPv4 or IPv6 packet in tunnel mode (next header 4 or 41) into `out`,
    /// which needs [`OutboundSa::sealed_len`] bytes (at most `packet.len()` +
    /// [`MAX_HEADROOM`] + [`MAX_TAILROOM`]). Returns the ESP packet.
    pub fn seal_tunnel<'o>(&mut self, packet: &[u8], out: &'o mut [u8]) -> Result<&'o mut [u8], SealError> {
        if self.params.mode != Mode::Tunnel {
            return Err(SealError::WrongMode(self.params.mode));
        }
        let next_header = match packet.first().map(|b| b >> 4) {
            Some(4) => NEXT_HEADER_IPV4,
            Some(6) => NEXT_HEADER_IPV6,
            _ => return Err(SealError::NotAnIpPacket),
        };
        self.seal(next_header, packet, out)
    }

    /// Seals the payload of an IP packet in transport mode: `protocol` (the IP header's
    /// protocol field) becomes the next header; the caller rewrites the IP header's protocol
    /// to 50 (or wraps the result in UDP).
    pub fn seal_transport<'o>(
        &mut self,
        protocol: u8,
        payload: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o mut [u8], SealError> {
        if self.params.mode != Mode::Transport {
            return Err(SealError::WrongMode(self.params.mode));
        }
        self.seal(protocol, payload, out)
    }

    fn seal<'o>(
        &mut self,
        next_header: u8,
        payload: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o mut [u8], SealError> {
        let needed = self.sealed_len(payload.len());
        if out.len() < needed {
            return Err(SealError::BufferTooSmall { needed, available: out.len() });
        }
        let start = self.headroom();
        out[start..start + payload.len()].copy_from_slice(payload);
        let len = self.seal_in_place(out, payload.len(), next_header)?;
        Ok(&mut out[..len])
    }

    /// Seals in place, without copying the payload: `buf[headroom()..headroom() +
    /// payload_len]` holds the payload (a gateway reads the TUN device straight there); the
    /// header and IV are written before it, the trailer and ICV after it. Returns the ESP
    /// packet's length, which starts at `buf[0]`.
    pub fn seal_in_place(
        &mut self,
        buf: &mut [u8],
        payload_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        let needed = self.sealed_len(payload_len);
        if buf.len() < needed {
            return Err(SealError::BufferTooSmall { needed, available: buf.len() });
        }
        let sequence = self.counter.next_sequence()?;

        let start = self.headroom();
        let buf = &mut buf[..needed];
        let mut header = EspPacket::new_unchecked(&mut buf[..HEADER_LEN]);
        header.set_spi(self.spi);
        header.set_sequence_number(sequence);
        let ciphertext_end = start
            + write_trailer(&mut buf[start..], payload_len, self.params.cipher.block_len(), next_header);

        let (head, rest) = buf.split_at_mut(start);
        let (ciphertext, icv) = rest.split_at_mut(ciphertext_end - start);
        if self.params.cipher.is_aead() {
            let iv = u64::from(sequence).to_be_bytes();
            head[HEADER_LEN..].copy_from_slice(&iv);
            let tag = self.cipher.seal_in_place(&iv, &head[..HEADER_LEN], ciphertext)?;
            icv.copy_from_slice(&tag);
        } else {
            let iv = &mut head[HEADER_LEN..];
            if let Some(generator) = &self.iv {
                generator.fill(sequence, iv)?;
            }
            self.cipher.encrypt_in_place(iv, ciphertext)?;
            if let Some(integrity) = &self.integrity {
                let computed = integrity.compute(&[head, ciphertext])?;
                icv.copy_from_slice(&computed);
            }
        }

        self.counter.sealed(sequence, payload_len);
        Ok(needed)
    }

    #[cfg(test)]
    pub(crate) fn set_last_sequence(&mut self, sequence: u32) {
        self.counter.set_last_sequence(sequence);
    }
}

/// A packet that passed every inbound check, in the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The inner packet (tunnel mode; TFC padding removed) or the IP payload (transport mode).
    pub payload: &'a mut [u8],
    /// Where `payload` starts in the buffer given to `open` / `open_in_place`.
    pub offset: usize,
    /// The next header: 4 or 41 in tunnel mode, the payload's protocol in transport mode.
    pub next_header: u8,
    /// The packet's sequence number.
    pub sequence: u32,
}

/// An SA for packets the peer sends us: checks and opens ESP packets.
pub struct InboundSa {
    spi: Spi,
    params: SaParams,
    cipher: CipherKey,
    integrity: Option<IntegrityKey>,
    counter: InboundCounter,
}

impl core::fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &self.spi)
            .field("params", &self.params)
            .field("highest_sequence", &self.counter.replay_window().highest())
            .field("counters", &self.counter.counters())
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    /// Builds the SA; allocates its replay window.
    pub fn new(params: &SaParams, sa_keys: SaKeys<'_>) -> Result<Self, SaError> {
        let (cipher, integrity) = keys(params, sa_keys)?;
        Ok(Self {
            spi: sa_keys.spi,
            params: *params,
            cipher,
            integrity,
            counter: InboundCounter::new(params.replay_window, params.limits),
        })
    }

    /// The SPI this SA receives on.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Algorithms, mode and limits.
    pub fn params(&self) -> &SaParams {
        &self.params
    }

    /// Packets and bytes accepted so far.
    pub fn counters(&self) -> Counters {
        self.counter.counters()
    }

    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        self.counter.replay_window()
    }

    /// True once a hard limit has been crossed: the SA accepts nothing more.
    pub fn is_expired(&self) -> bool {
        self.counter.is_expired()
    }

    /// The pending lifetime notice, once.
    pub fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.counter.take_lifetime_notice()
    }

    /// The checks that cost no cryptography: length, SPI, lifetime, replay window.
    fn precheck<'p>(&self, packet: &'p [u8]) -> Result<(EspPacket<&'p [u8]>, wire::Layout), OpenError> {
        let packet = EspPacket::new_checked(packet)?;
        if packet.spi() != self.spi {
            return Err(OpenError::WrongSpi { expected: self.spi, found: packet.spi() });
        }
        self.counter.check(packet.sequence_number())?;
        let cipher = self.params.cipher;
        let layout = packet.layout(cipher.iv_len(), self.params.icv_len(), cipher.block_len())?;
        Ok((packet, layout))
    }

    /// Opens the ESP packet `esp` (the UDP payload or the IP payload of protocol 50) into
    /// `out`, which needs `esp.len()` bytes. Replayed and malformed packets are refused before
    /// they are copied.
    pub fn open<'o>(&mut self, esp: &[u8], out: &'o mut [u8]) -> Result<Opened<'o>, OpenError> {
        self.precheck(esp)?;
        let available = out.len();
        let Some(out) = out.get_mut(..esp.len()) else {
            return Err(OpenError::BufferTooSmall { needed: esp.len(), available });
        };
        out.copy_from_slice(esp);
        self.open_in_place(out)
    }

    /// Opens the ESP packet that fills `buf`, decrypting in place. On an error the buffer's
    /// contents are unspecified (AES-GCM may have decrypted part of a forgery) and must be
    /// discarded.
    ///
    /// Order (RFC 4303 §3.4.3): replay check, then ICV, then decryption and trailer, and only
    /// then the window update, so neither a forgery nor a broken trailer moves the window.
    pub fn open_in_place<'b>(&mut self, buf: &'b mut [u8]) -> Result<Opened<'b>, OpenError> {
        let (packet, layout) = self.precheck(buf)?;
        let sequence = packet.sequence_number();
        let mut aad = [0u8; HEADER_LEN];
        aad.copy_from_slice(packet.header());
        let iv_len = self.params.cipher.iv_len();
        let mut iv = [0u8; 16];
        iv[..iv_len].copy_from_slice(&buf[layout.iv_start..layout.ciphertext_start]);

        if self.params.cipher.is_aead() {
            let gcm_iv: [u8; GCM_IV_LEN] =
                iv[..GCM_IV_LEN].try_into().map_err(|_| OpenError::Crypto(EspCryptoError::Internal))?;
            let (body, icv) = buf.split_at_mut(layout.icv_start);
            debug_assert_eq!(icv.len(), GCM_ICV_LEN);
            self.cipher
                .open_in_place(&gcm_iv, &aad, &mut body[layout.ciphertext_start..], icv)
                .map_err(authentication)?;
        } else {
            if let Some(integrity) = &self.integrity {
                let (body, icv) = buf.split_at(layout.icv_start);
                integrity.verify(&[body], icv).map_err(authentication)?;
            }
            self.cipher
                .decrypt_in_place(&iv[..iv_len], &mut buf[layout.ciphertext_start..layout.icv_start])
                .map_err(OpenError::Crypto)?;
        }

        let plaintext = &buf[layout.ciphertext_start..layout.icv_start];
        let (payload_len, next_header) = check_trailer(plaintext)?;
        let payload = &plaintext[..payload_len];
        let payload_len = match (self.params.mode, next_header) {
            // Authentic (the ICV matched), so it may move the window; it carries nothing.
            (_, NEXT_HEADER_NONE) => return self.counter.dummy(sequence),
            (Mode::Tunnel, NEXT_HEADER_IPV4) => {
                Flow::parse_ipv4(payload).map_err(OpenError::InnerMalformed)?.2
            }
            (Mode::Tunnel, NEXT_HEADER_IPV6) => ipv6_len(payload)?,
            (Mode::Tunnel, other) => return Err(OpenError::UnexpectedNextHeader(other)),
            (Mode::Transport, _) => payload_len,
        };

        self.counter.accept(sequence, payload_len)?;
        let offset = layout.ciphertext_start;
        Ok(Opened { payload: &mut buf[offset..offset + payload_len], offset, next_header, sequence })
    }
}

fn authentication(error: EspCryptoError) -> OpenError {
    match error {
        EspCryptoError::AuthenticationFailed | EspCryptoError::IcvLength { .. } => {
            OpenError::AuthenticationFailed
        }
        other => OpenError::Crypto(other),
    }
}

/// Length of an inner IPv6 packet from its header (40 bytes plus the payload length).
fn ipv6_len(payload: &[u8]) -> Result<usize, OpenError> {
    let malformed = |len| OpenError::InnerMalformed(FlowError::Truncated(len));
    if payload.len() < 40 || payload[0] >> 4 != 6 {
        return Err(malformed(payload.len()));
    }
    let len = 40 + usize::from(u16::from_be_bytes([payload[4], payload[5]]));
    if len > payload.len() {
        return Err(malformed(payload.len()));
    }
    Ok(len)
}

#[cfg(test)]
mod tests;
