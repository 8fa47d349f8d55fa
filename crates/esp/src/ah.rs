//! The IP Authentication Header (RFC 4302) over IPv4: one-way AH SAs that seal a payload
//! into a whole IPv4 packet (outer header, AH, payload) and open such packets, in tunnel and
//! transport mode, without allocation per packet.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Next Header   |  Payload Len  |          RESERVED             |  0..4
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Security Parameters Index (SPI)               |  4..8
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Sequence Number Field                      |  8..12
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! +                Integrity Check Value-ICV (variable)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Unlike ESP, AH authenticates the outer IP header (§3.3.3.1), so an AH SA writes the outer
//! IPv4 header itself and the caller sends the result as a complete packet (a raw socket
//! with `IP_HDRINCL`): were the kernel to choose the Identification field, the receiver
//! could not verify the ICV. The ICV is computed with the fields that routers change on
//! the way zeroed (§3.3.3.1.1.1): TOS (DSCP and ECN), flags and fragment offset, TTL and the
//! header checksum, and mutable options (all but End of Options, No Operation, the security
//! options and Router Alert, RFC 4302 Appendix A.1) zeroed whole. The AH header takes part
//! with its ICV field zero. Every ICV here is a multiple of 32 bits (12, 16, 24 or 32
//! bytes), which is the alignment IPv4 asks for (§2.6); the padding rule is still applied so
//! the header length is always right.
//!
//! AH+ESP (`transform ah-esp`, RFC 4301 §4.5 "transport adjacency"): ESP is applied first
//! and AH outside it, so the payload of an AH packet is then an ESP packet (next header 50);
//! the data plane chains the two.
//!
//! Sequence numbers, the anti-replay window and traffic lifetimes behave exactly as for ESP
//! (RFC 4302 §3.3.2, §3.4.3): 32 bits, no ESN, soft notice at
//! [`crate::sa::SEQUENCE_SOFT_LIMIT`]; replay checked before the ICV,
//! the window moved only after it. AH is not UDP-encapsulated (RFC 3948 covers ESP only).

use std::net::Ipv4Addr;

use crypto::key_schedule::Spi;
use crypto::{Integrity, IntegrityKey};

use crate::replay::{ReplayWindow, DEFAULT_WINDOW};
use crate::sa::{
    Counters, InboundCounter, LifetimeNotice, Mode, OpenError, OutboundCounter, SaError, SaKeys, SealError,
    TrafficLimits,
};
use crate::selector::Flow;
use crate::wire::{NEXT_HEADER_IPV4, NEXT_HEADER_NONE};

/// IP protocol number of AH.
pub const PROTOCOL_AH: u8 = 51;
/// IP protocol number of ESP (the next header of AH in an AH+ESP bundle).
pub const PROTOCOL_ESP: u8 = 50;
/// Length of the fixed AH fields before the ICV: next header, payload length, reserved, SPI,
/// sequence number.
pub const AH_FIXED_LEN: usize = 12;
/// Length of the outer IPv4 header an AH SA writes (no options).
pub const OUTER_HEADER_LEN: usize = 20;
/// Longest AH header: the fixed part and the longest ICV (HMAC-SHA2-512-256, 32).
pub const MAX_AH_LEN: usize = AH_FIXED_LEN + crypto::esp_transform::MAX_ICV_LEN;
/// Longest IPv4 header (IHL 15).
const MAX_IPV4_HEADER_LEN: usize = 60;
/// The outer TTL of packets we originate (RFC 1700's default).
const OUTER_TTL: u8 = 64;

/// Why bytes are not an IPv4 packet carrying AH that this SA can check. Every variant is a
/// drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AhWireError {
    /// The outer header is not a complete IPv4 header of protocol 51.
    #[error("not an IPv4 packet carrying AH: {0}")]
    NotAh(&'static str),
    /// The outer header's lengths do not fit the buffer.
    #[error("IPv4 header length {header_len} or total length {total_len} does not fit {len} bytes")]
    BadLength {
        /// IHL × 4.
        header_len: usize,
        /// The Total Length field.
        total_len: usize,
        /// Bytes available.
        len: usize,
    },
    /// A fragment: AH is verified on whole datagrams only (RFC 4302 §3.4.1); the kernel
    /// reassembles before a raw socket sees the packet, so a fragment here is forged.
    #[error("AH packet is a fragment")]
    Fragment,
    /// An IPv4 option whose length runs past the header (RFC 791 §3.1).
    #[error("malformed IPv4 option at header offset {offset}")]
    BadOption {
        /// Where the option starts in the IPv4 header.
        offset: usize,
    },
    /// The AH header is shorter than its fixed fields, or its Payload Len does not match the
    /// SA's ICV length.
    #[error("AH header of {found} bytes, {expected} expected for the SA's ICV")]
    HeaderLength {
        /// Bytes the Payload Len field claims (or the bytes present, if fewer).
        found: usize,
        /// Bytes the SA's algorithm needs.
        expected: usize,
    },
}

/// Algorithm, mode, window and limits of an AH SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhParams {
    /// The authentication algorithm.
    pub integrity: Integrity,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Inbound anti-replay window in packets.
    pub replay_window: u32,
    /// Traffic lifetime.
    pub limits: TrafficLimits,
}

impl AhParams {
    /// Tunnel mode, the default window and no traffic limit.
    pub fn new(integrity: Integrity) -> Self {
        Self {
            integrity,
            mode: Mode::Tunnel,
            replay_window: DEFAULT_WINDOW,
            limits: TrafficLimits::default(),
        }
    }

    /// The ICV field length: the ICV padded to 32 bits for IPv4 (RFC 4302 §2.6).
    pub fn icv_field_len(&self) -> usize {
        self.integrity.icv_len().div_ceil(4) * 4
    }

    /// Length of the AH header with its ICV field.
    pub fn header_len(&self) -> usize {
        AH_FIXED_LEN + self.icv_field_len()
    }
}

/// A checked view of an AH header (the fixed fields; the ICV follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhHeader<T> {
    /// Checks that `buffer` holds the fixed fields and the header its Payload Len announces.
    pub fn new_checked(buffer: T) -> Result<Self, AhWireError> {
        let len = buffer.as_ref().len();
        if len < AH_FIXED_LEN {
            return Err(AhWireError::HeaderLength { found: len, expected: AH_FIXED_LEN });
        }
        let header = Self { buffer };
        if header.header_len() < AH_FIXED_LEN || header.header_len() > len {
            return Err(AhWireError::HeaderLength {
                found: header.header_len().min(len),
                expected: AH_FIXED_LEN,
            });
        }
        Ok(header)
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The protocol of the payload after AH.
    pub fn next_header(&self) -> u8 {
        self.bytes()[0]
    }

    /// The AH header's length in bytes from its Payload Len field (32-bit words minus 2).
    pub fn header_len(&self) -> usize {
        (usize::from(self.bytes()[1]) + 2) * 4
    }

    /// The SPI.
    pub fn spi(&self) -> Spi {
        let b = self.bytes();
        Spi(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
    }

    /// The sequence number.
    pub fn sequence_number(&self) -> u32 {
        let b = self.bytes();
        u32::from_be_bytes([b[8], b[9], b[10], b[11]])
    }
}

/// The SPI of an IPv4 packet carrying AH, for looking its SA up; `None` if the bytes do not
/// reach that far.
pub fn packet_spi(packet: &[u8]) -> Option<Spi> {
    let header_len = usize::from(packet.first()? & 0x0f) * 4;
    let spi = packet.get(header_len + 4..header_len + 8)?;
    Some(Spi(u32::from_be_bytes([spi[0], spi[1], spi[2], spi[3]])))
}

/// Copies the IPv4 header `header` into `zeroed` with the mutable fields zero (RFC 4302
/// §3.3.3.1.1), returning the copy's length.
fn zero_mutable(header: &[u8], zeroed: &mut [u8; MAX_IPV4_HEADER_LEN]) -> Result<usize, AhWireError> {
    let len = header.len();
    let copy = zeroed.get_mut(..len).ok_or(AhWireError::NotAh("IPv4 header longer than 60 bytes"))?;
    copy.copy_from_slice(header);
    copy[1] = 0; // TOS: DSCP and ECN
    copy[6..8].fill(0); // flags and fragment offset
    copy[8] = 0; // TTL
    copy[10..12].fill(0); // header checksum
    let mut offset = OUTER_HEADER_LEN;
    while offset < len {
        match copy[offset] {
            0 => break,       // End of Options List: the rest is padding
            1 => offset += 1, // No Operation
            kind => {
                let option_len = usize::from(*copy.get(offset + 1).ok_or(AhWireError::BadOption { offset })?);
                if option_len < 2 || offset + option_len > len {
                    return Err(AhWireError::BadOption { offset });
                }
                // Immutable (RFC 4302 Appendix A.1): Security 130, Extended Security 133,
                // Commercial Security 134, Router Alert 148, Sender Directed Multi-Destination
                // Delivery 149. Every other option is mutable and zeroed whole.
                if !matches!(kind, 130 | 133 | 134 | 148 | 149) {
                    copy[offset..offset + option_len].fill(0);
                }
                offset += option_len;
            }
        }
    }
    Ok(len)
}

/// Writes a 20-byte IPv4 header without options.
fn write_outer_header(
    header: &mut [u8],
    total_len: usize,
    identification: u16,
    source: Ipv4Addr,
    destination: Ipv4Addr,
) {
    header[0] = 0x45;
    header[1] = 0;
    header[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
    header[4..6].copy_from_slice(&identification.to_be_bytes());
    // DF: the data plane sizes packets to the path, so routers never need to fragment them.
    header[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
    header[8] = OUTER_TTL;
    header[9] = PROTOCOL_AH;
    header[10..12].fill(0);
    header[12..16].copy_from_slice(&source.octets());
    header[16..20].copy_from_slice(&destination.octets());
    let sum = crate::mtu::checksum(&header[..OUTER_HEADER_LEN]);
    header[10..12].copy_from_slice(&sum.to_be_bytes());
}

fn ah_keys(params: &AhParams, keys: SaKeys<'_>) -> Result<IntegrityKey, SaError> {
    if keys.spi.0 < 256 {
        return Err(SaError::ReservedSpi(keys.spi));
    }
    Ok(IntegrityKey::new(params.integrity, keys.integrity_key)?)
}

/// An AH SA for packets we send.
pub struct OutboundAh {
    spi: Spi,
    params: AhParams,
    key: IntegrityKey,
    counter: OutboundCounter,
}

impl core::fmt::Debug for OutboundAh {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutboundAh")
            .field("spi", &self.spi)
            .field("params", &self.params)
            .field("last_sequence", &self.counter.last_sequence())
            .finish_non_exhaustive()
    }
}

impl OutboundAh {
    /// Builds the SA from its integrity key (`keys.cipher_key` is not used).
    pub fn new(params: &AhParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Ok(Self {
            spi: keys.spi,
            params: *params,
            key: ah_keys(params, keys)?,
            counter: OutboundCounter::new(params.limits),
        })
    }

    /// The SPI in the packets' headers.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Algorithm, mode and limits.
    pub fn params(&self) -> &AhParams {
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

    /// True once a hard limit has been crossed.
    pub fn is_expired(&self) -> bool {
        self.counter.is_expired()
    }

    /// The pending lifetime notice, once.
    pub fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.counter.take_lifetime_notice()
    }

    /// Bytes before the payload: the outer IPv4 header and the AH header.
    pub fn headroom(&self) -> usize {
        OUTER_HEADER_LEN + self.params.header_len()
    }

    /// Length of the IPv4 packet for a payload of `payload_len` bytes.
    pub fn sealed_len(&self, payload_len: usize) -> usize {
        self.headroom() + payload_len
    }

    /// Seals `payload` (an inner IP packet in tunnel mode, an IP payload in transport mode)
    /// with next header `next_header` into `out` as a whole IPv4 packet from `source` to
    /// `destination`. Returns the packet.
    pub fn seal<'o>(
        &mut self,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        next_header: u8,
        payload: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o mut [u8], SealError> {
        let needed = self.sealed_len(payload.len());
        let available = out.len();
        let start = self.headroom();
        let Some(body) = out.get_mut(start..start + payload.len()) else {
            return Err(SealError::BufferTooSmall { needed, available });
        };
        body.copy_from_slice(payload);
        let len = self.seal_in_place(source, destination, next_header, out, payload.len())?;
        Ok(&mut out[..len])
    }

    /// Seals in place: `buf[headroom()..headroom() + payload_len]` holds the payload (for
    /// AH+ESP, the ESP packet just sealed there); the outer header and AH are written
    /// before it. Returns the packet's length, which starts at `buf[0]`.
    pub fn seal_in_place(
        &mut self,
        source: Ipv4Addr,
        destination: Ipv4Addr,
        next_header: u8,
        buf: &mut [u8],
        payload_len: usize,
    ) -> Result<usize, SealError> {
        let needed = self.sealed_len(payload_len);
        if buf.len() < needed || needed > usize::from(u16::MAX) {
            return Err(SealError::BufferTooSmall {
                needed,
                available: buf.len().min(usize::from(u16::MAX)),
            });
        }
        let sequence = self.counter.next_sequence()?;

        let buf = &mut buf[..needed];
        // A non-zero Identification: with IP_HDRINCL, Linux replaces a zero one, which would
        // change an immutable field after the ICV was computed.
        let identification = (sequence % 0xffff) as u16 + 1;
        write_outer_header(buf, needed, identification, source, destination);
        let header_len = self.params.header_len();
        let ah = &mut buf[OUTER_HEADER_LEN..OUTER_HEADER_LEN + header_len];
        ah[0] = next_header;
        ah[1] = (header_len / 4 - 2) as u8;
        ah[2..4].fill(0);
        ah[4..8].copy_from_slice(&self.spi.0.to_be_bytes());
        ah[8..12].copy_from_slice(&sequence.to_be_bytes());
        ah[AH_FIXED_LEN..].fill(0);

        let mut zeroed = [0u8; MAX_IPV4_HEADER_LEN];
        let ip_len = zero_mutable(&buf[..OUTER_HEADER_LEN], &mut zeroed)
            .map_err(|_| SealError::Crypto(crypto::esp_transform::EspCryptoError::Internal))?;
        let (head, payload) = buf.split_at_mut(OUTER_HEADER_LEN + header_len);
        let icv = self.key.compute(&[&zeroed[..ip_len], &head[OUTER_HEADER_LEN..], payload])?;
        head[OUTER_HEADER_LEN + AH_FIXED_LEN..OUTER_HEADER_LEN + AH_FIXED_LEN + icv.len()]
            .copy_from_slice(&icv);

        self.counter.sealed(sequence, payload_len);
        Ok(needed)
    }

    #[cfg(test)]
    pub(crate) fn set_last_sequence(&mut self, sequence: u32) {
        self.counter.set_last_sequence(sequence);
    }
}

/// An AH packet that passed the inbound checks, in the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct AhOpened<'a> {
    /// The payload after AH: an inner IP packet (tunnel), an IP payload (transport) or an
    /// ESP packet (AH+ESP, next header 50).
    pub payload: &'a mut [u8],
    /// Where `payload` starts in the buffer given to `open_in_place`.
    pub offset: usize,
    /// The next header.
    pub next_header: u8,
    /// The packet's sequence number.
    pub sequence: u32,
    /// The outer source address.
    pub source: Ipv4Addr,
    /// The outer destination address.
    pub destination: Ipv4Addr,
}

/// An AH SA for packets the peer sends us.
pub struct InboundAh {
    spi: Spi,
    params: AhParams,
    key: IntegrityKey,
    counter: InboundCounter,
}

impl core::fmt::Debug for InboundAh {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InboundAh")
            .field("spi", &self.spi)
            .field("params", &self.params)
            .field("highest_sequence", &self.counter.replay_window().highest())
            .finish_non_exhaustive()
    }
}

impl InboundAh {
    /// Builds the SA; allocates its replay window.
    pub fn new(params: &AhParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Ok(Self {
            spi: keys.spi,
            params: *params,
            key: ah_keys(params, keys)?,
            counter: InboundCounter::new(params.replay_window, params.limits),
        })
    }

    /// The SPI this SA receives on.
    pub fn spi(&self) -> Spi {
        self.spi
    }

    /// Algorithm, mode and limits.
    pub fn params(&self) -> &AhParams {
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

    /// True once a hard limit has been crossed.
    pub fn is_expired(&self) -> bool {
        self.counter.is_expired()
    }

    /// The pending lifetime notice, once.
    pub fn take_lifetime_notice(&mut self) -> Option<LifetimeNotice> {
        self.counter.take_lifetime_notice()
    }

    /// Checks and opens the IPv4 packet carrying AH that fills `packet` (bytes after its
    /// Total Length are ignored). The buffer is not modified.
    ///
    /// Order (RFC 4302 §3.4): header checks, SPI, replay check, ICV (constant time), then
    /// the window update; a forgery never moves the window. In tunnel mode the next header
    /// must be IPv4 and the inner header valid; in transport mode and for AH+ESP the payload
    /// is the caller's to check.
    pub fn open_in_place<'b>(&mut self, packet: &'b mut [u8]) -> Result<AhOpened<'b>, OpenError> {
        let (header_len, total_len) = ipv4_lengths(packet).map_err(OpenError::MalformedAh)?;
        let packet = &mut packet[..total_len];
        let ah = AhHeader::new_checked(&packet[header_len..]).map_err(OpenError::MalformedAh)?;
        if ah.spi() != self.spi {
            return Err(OpenError::WrongSpi { expected: self.spi, found: ah.spi() });
        }
        let expected = self.params.header_len();
        if ah.header_len() != expected {
            return Err(OpenError::MalformedAh(AhWireError::HeaderLength {
                found: ah.header_len(),
                expected,
            }));
        }
        let (sequence, next_header) = (ah.sequence_number(), ah.next_header());
        self.counter.check(sequence)?;

        let mut zeroed = [0u8; MAX_IPV4_HEADER_LEN];
        let ip_len = zero_mutable(&packet[..header_len], &mut zeroed).map_err(OpenError::MalformedAh)?;
        let ah_start = header_len;
        let icv_start = ah_start + AH_FIXED_LEN;
        let payload_start = ah_start + expected;
        let zero_icv = [0u8; crypto::esp_transform::MAX_ICV_LEN];
        let icv_len = self.params.integrity.icv_len();
        self.key
            .verify(
                &[
                    &zeroed[..ip_len],
                    &packet[ah_start..icv_start],
                    &zero_icv[..self.params.icv_field_len()],
                    &packet[payload_start..],
                ],
                &packet[icv_start..icv_start + icv_len],
            )
            .map_err(|_| OpenError::AuthenticationFailed)?;

        let payload = &packet[payload_start..];
        let payload_len = match (self.params.mode, next_header) {
            (_, NEXT_HEADER_NONE) => return self.counter.dummy(sequence),
            (Mode::Tunnel, NEXT_HEADER_IPV4) => {
                Flow::parse_ipv4(payload).map_err(OpenError::InnerMalformed)?.2
            }
            (Mode::Tunnel, PROTOCOL_ESP) | (Mode::Transport, _) => payload.len(),
            (Mode::Tunnel, other) => return Err(OpenError::UnexpectedNextHeader(other)),
        };
        self.counter.accept(sequence, payload_len)?;
        let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        Ok(AhOpened {
            payload: &mut packet[payload_start..payload_start + payload_len],
            offset: payload_start,
            next_header,
            sequence,
            source,
            destination,
        })
    }
}

/// The header length and total length of an IPv4 packet of protocol 51 that is not a fragment.
fn ipv4_lengths(packet: &[u8]) -> Result<(usize, usize), AhWireError> {
    let first = *packet.first().ok_or(AhWireError::NotAh("empty"))?;
    if first >> 4 != 4 {
        return Err(AhWireError::NotAh("not IPv4"));
    }
    if packet.len() < OUTER_HEADER_LEN {
        return Err(AhWireError::NotAh("shorter than an IPv4 header"));
    }
    let header_len = usize::from(first & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if header_len < OUTER_HEADER_LEN || total_len < header_len || total_len > packet.len() {
        return Err(AhWireError::BadLength { header_len, total_len, len: packet.len() });
    }
    if packet[9] != PROTOCOL_AH {
        return Err(AhWireError::NotAh("protocol is not 51"));
    }
    if u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0 {
        return Err(AhWireError::Fragment);
    }
    Ok((header_len, total_len))
}

#[cfg(test)]
mod tests;
