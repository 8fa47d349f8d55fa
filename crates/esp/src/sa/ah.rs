//! One-way AH SAs (RFC 4302) over IPv4: seal a payload into a whole IPv4 packet (outer
//! header, AH, payload) and open such packets, in tunnel and transport mode, without
//! allocation per packet. The header format and the mutable-field rules are
//! [`crate::wire::ah`]'s.
//!
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

use crypto::{Integrity, IntegrityKey};

use super::{Mode, OpenError, Sa, SaError, SaKeys, SealError, SequenceCounter, TrafficLimits};
use crate::mtu;
use crate::replay::{ReplayWindow, DEFAULT_WINDOW};
use crate::wire::ah::{ipv4_lengths, zero_mutable, MAX_IPV4_HEADER_LEN};
pub use crate::wire::ah::{
    packet_spi, AhHeader, AhWireError, AH_FIXED_LEN, MAX_AH_LEN, OUTER_HEADER_LEN, PROTOCOL_AH,
};
pub use crate::wire::esp::PROTOCOL_ESP;
use crate::wire::esp::{NEXT_HEADER_IPV4, NEXT_HEADER_NONE};
use spd::Flow;

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

/// AH's part of an SA: its parameters and keyed integrity algorithm.
#[derive(Debug)]
pub struct Ah {
    params: AhParams,
    key: IntegrityKey,
}

impl Ah {
    /// Keys the integrity algorithm (`keys.cipher_key` is not used).
    fn new(params: &AhParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Ok(Self { params: *params, key: IntegrityKey::new(params.integrity, keys.integrity_key)? })
    }
}

/// An AH SA for packets we send.
pub type OutboundAh = Sa<SequenceCounter, Ah>;
/// An AH SA for packets the peer sends us.
pub type InboundAh = Sa<ReplayWindow, Ah>;

impl<S> Sa<S, Ah> {
    /// Algorithm, mode and limits.
    pub fn params(&self) -> &AhParams {
        &self.protocol.params
    }
}

impl OutboundAh {
    /// Builds the SA from its integrity key (`keys.cipher_key` is not used).
    pub fn new(params: &AhParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Sa::build(keys.spi, SequenceCounter::default(), params.limits, || Ah::new(params, keys))
    }

    /// Bytes before the payload: the outer IPv4 header and the AH header.
    pub fn headroom(&self) -> usize {
        OUTER_HEADER_LEN + self.protocol.params.header_len()
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
        let sequence = self.next_sequence()?;

        let buf = &mut buf[..needed];
        // A non-zero Identification: with IP_HDRINCL, Linux replaces a zero one, which would
        // change an immutable field after the ICV was computed.
        let identification = (sequence % 0xffff) as u16 + 1;
        // DF: the data plane sizes packets to the path, so routers never need to fragment them.
        mtu::write_header(buf, needed, identification, true, PROTOCOL_AH, source, destination);
        let header_len = self.protocol.params.header_len();
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
        let icv = self.protocol.key.compute(&[&zeroed[..ip_len], &head[OUTER_HEADER_LEN..], payload])?;
        head[OUTER_HEADER_LEN + AH_FIXED_LEN..OUTER_HEADER_LEN + AH_FIXED_LEN + icv.len()]
            .copy_from_slice(&icv);

        self.sealed(sequence, payload_len);
        Ok(needed)
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

impl InboundAh {
    /// Builds the SA; allocates its replay window.
    pub fn new(params: &AhParams, keys: SaKeys<'_>) -> Result<Self, SaError> {
        Sa::build(keys.spi, ReplayWindow::new(params.replay_window), params.limits, || Ah::new(params, keys))
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
        let expected = self.protocol.params.header_len();
        if ah.header_len() != expected {
            return Err(OpenError::MalformedAh(AhWireError::HeaderLength {
                found: ah.header_len(),
                expected,
            }));
        }
        let (sequence, next_header) = (ah.sequence_number(), ah.next_header());
        self.check(sequence)?;

        let mut zeroed = [0u8; MAX_IPV4_HEADER_LEN];
        let ip_len = zero_mutable(&packet[..header_len], &mut zeroed).map_err(OpenError::MalformedAh)?;
        let ah_start = header_len;
        let icv_start = ah_start + AH_FIXED_LEN;
        let payload_start = ah_start + expected;
        let zero_icv = [0u8; crypto::esp_transform::MAX_ICV_LEN];
        let icv_len = self.protocol.params.integrity.icv_len();
        self.protocol
            .key
            .verify(
                &[
                    &zeroed[..ip_len],
                    &packet[ah_start..icv_start],
                    &zero_icv[..self.protocol.params.icv_field_len()],
                    &packet[payload_start..],
                ],
                &packet[icv_start..icv_start + icv_len],
            )
            .map_err(|_| OpenError::AuthenticationFailed)?;

        let payload = &packet[payload_start..];
        let payload_len = match (self.protocol.params.mode, next_header) {
            (_, NEXT_HEADER_NONE) => return self.dummy(sequence),
            (Mode::Tunnel, NEXT_HEADER_IPV4) => {
                Flow::parse_ipv4(payload).map_err(OpenError::InnerMalformed)?.2
            }
            (Mode::Tunnel, PROTOCOL_ESP) | (Mode::Transport, _) => payload.len(),
            (Mode::Tunnel, other) => return Err(OpenError::UnexpectedNextHeader(other)),
        };
        self.accept(sequence, payload_len)?;
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

#[cfg(test)]
mod tests;
