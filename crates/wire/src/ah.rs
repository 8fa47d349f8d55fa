//! The IP Authentication Header (RFC 4302 §2) over IPv4, as a checked view, and the rules
//! for the outer IPv4 header an AH SA writes and authenticates.
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

use crypto::key_schedule::Spi;

/// IP protocol number of AH.
pub const PROTOCOL_AH: u8 = 51;
/// Length of the fixed AH fields before the ICV: next header, payload length, reserved, SPI,
/// sequence number.
pub const AH_FIXED_LEN: usize = 12;
/// Length of the outer IPv4 header an AH SA writes (no options).
pub const OUTER_HEADER_LEN: usize = 20;
/// Longest AH header: the fixed part and the longest ICV (HMAC-SHA2-512-256, 32).
pub const MAX_AH_LEN: usize = AH_FIXED_LEN + crypto::esp_transform::MAX_ICV_LEN;
/// Longest IPv4 header (IHL 15).
pub const MAX_IPV4_HEADER_LEN: usize = 60;

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
pub fn zero_mutable(header: &[u8], zeroed: &mut [u8; MAX_IPV4_HEADER_LEN]) -> Result<usize, AhWireError> {
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

/// The header length and total length of an IPv4 packet of protocol 51 that is not a fragment.
pub fn ipv4_lengths(packet: &[u8]) -> Result<(usize, usize), AhWireError> {
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
