//! The ESP packet format (RFC 4303 §2), as a smoltcp-style checked view.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Security Parameters Index (SPI)                 |  0..4
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Sequence Number                          |  4..8
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    IV (explicit, per cipher)                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                    Payload Data (variable)                    ~
//! +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               |     Padding (0-255 bytes)                     |
//! +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                               |  Pad Length   | Next Header   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Integrity Check Value (variable)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The fixed header is all a packet says about itself; where the IV ends and the ICV starts
//! depends on the SA's algorithms, so [`EspPacket::layout`] takes them and is the one place
//! that decides whether the lengths add up. The trailer (padding, pad length, next header,
//! RFC 4303 §2.4–§2.6) is written by [`write_trailer`] and checked by [`check_trailer`].

use crypto::key_schedule::Spi;

/// IP protocol number of ESP (also the next header of AH in an AH+ESP bundle).
pub const PROTOCOL_ESP: u8 = 50;
/// Length of the fixed ESP header: SPI and sequence number (RFC 4303 §2.1, §2.2).
pub const HEADER_LEN: usize = 8;
/// Length of the pad length and next header fields at the end of the encrypted part.
pub const TRAILER_LEN: usize = 2;
/// ESP's own alignment: the pad length and next header end on a 4-byte boundary (§2.4).
pub const ALIGNMENT: usize = 4;

/// Next header for an IPv4 packet (tunnel mode).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next header for an IPv6 packet (tunnel mode).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// "No next header": a dummy packet to be discarded (RFC 4303 §2.6).
pub const NEXT_HEADER_NONE: u8 = 59;

mod field {
    use core::ops::Range;

    pub(super) const SPI: Range<usize> = 0..4;
    pub(super) const SEQUENCE: Range<usize> = 4..8;
}

/// Why bytes are not an ESP packet of the SA's shape. Every variant is a drop reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the header, IV, one trailer and the ICV together.
    #[error("ESP packet of {len} bytes is shorter than the {min} bytes the SA needs")]
    Truncated {
        /// The packet length.
        len: usize,
        /// The least length the SA's algorithms allow.
        min: usize,
    },
    /// The encrypted part is not a whole number of cipher blocks.
    #[error("ESP ciphertext of {len} bytes is not a multiple of the {block}-byte block")]
    NotBlockAligned {
        /// Ciphertext length.
        len: usize,
        /// Cipher block length.
        block: usize,
    },
}

/// Why a decrypted trailer is refused (RFC 4303 §2.4–§2.6). Reaching these means the ICV
/// matched, so the peer (not an attacker) sent the packet; it is still dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TrailerError {
    /// The pad length points before the start of the payload.
    #[error("pad length {pad_len} exceeds the {available} bytes before the trailer")]
    PadLengthTooLarge {
        /// The Pad Length field.
        pad_len: u8,
        /// Bytes available for padding.
        available: usize,
    },
    /// The padding is not 1, 2, 3, … (the default scheme of §2.4, which both ends use).
    #[error("padding byte {index} is {found:#04x}, expected {expected:#04x}")]
    BadPadding {
        /// Position within the padding, from 0.
        index: usize,
        /// The byte found.
        found: u8,
        /// The byte expected.
        expected: u8,
    },
}

/// Where the parts of one ESP packet lie, for an SA's IV and ICV lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Start of the IV (always [`HEADER_LEN`]).
    pub iv_start: usize,
    /// Start of the encrypted part (payload, padding, pad length, next header).
    pub ciphertext_start: usize,
    /// Start of the ICV, i.e. the end of the encrypted part.
    pub icv_start: usize,
    /// End of the packet.
    pub end: usize,
}

/// A view of an ESP packet in a buffer; `new_checked` is the only entry for network bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
    /// Wraps a buffer without checks; accessors may panic on a short buffer. For buffers this
    /// crate has just sized itself.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer that holds at least the fixed header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { len, min: HEADER_LEN });
        }
        Ok(Self { buffer })
    }

    /// The SPI, which names the receiving SA.
    pub fn spi(&self) -> Spi {
        let b = &self.buffer.as_ref()[field::SPI];
        Spi(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The 32-bit sequence number (no ESN: IKEv1 SAs here never negotiate it).
    pub fn sequence_number(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::SEQUENCE];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// The fixed header, which is AES-GCM's additional authenticated data (RFC 4106 §5).
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }

    /// Everything after the header: IV, ciphertext and ICV.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Splits the packet for an SA with these lengths. The encrypted part must hold at least
    /// the trailer and, for a block cipher, be a whole number of blocks (RFC 4303 §2.4).
    pub fn layout(&self, iv_len: usize, icv_len: usize, block_len: usize) -> Result<Layout, WireError> {
        let len = self.buffer.as_ref().len();
        let block = block_len.max(1);
        let min_ciphertext = TRAILER_LEN.next_multiple_of(block);
        let min = HEADER_LEN + iv_len + min_ciphertext + icv_len;
        if len < min {
            return Err(WireError::Truncated { len, min });
        }
        let ciphertext_start = HEADER_LEN + iv_len;
        let icv_start = len - icv_len;
        let ciphertext_len = icv_start - ciphertext_start;
        if !ciphertext_len.is_multiple_of(block) {
            return Err(WireError::NotBlockAligned { len: ciphertext_len, block });
        }
        Ok(Layout { iv_start: HEADER_LEN, ciphertext_start, icv_start, end: len })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspPacket<T> {
    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: Spi) {
        self.buffer.as_mut()[field::SPI].copy_from_slice(&spi.to_bytes());
    }

    /// Sets the sequence number.
    pub fn set_sequence_number(&mut self, sequence: u32) {
        self.buffer.as_mut()[field::SEQUENCE].copy_from_slice(&sequence.to_be_bytes());
    }
}

/// Bytes of padding for a payload of `payload_len`: enough that payload, padding and the
/// two trailer bytes fill whole cipher blocks and end on a 4-byte boundary (§2.4). Never more
/// than `max(block, 4) - 1`.
pub const fn pad_len(payload_len: usize, block_len: usize) -> usize {
    let align = if block_len > ALIGNMENT { block_len } else { ALIGNMENT };
    (payload_len + TRAILER_LEN).next_multiple_of(align) - payload_len - TRAILER_LEN
}

/// Writes padding 1, 2, 3, …, the pad length and the next header after the payload that
/// fills `buf[..payload_len]`; returns the end of the trailer. `buf` must have room for
/// [`pad_len`] + [`TRAILER_LEN`] more bytes (the sealing code sizes it first).
pub fn write_trailer(buf: &mut [u8], payload_len: usize, block_len: usize, next_header: u8) -> usize {
    let pad = pad_len(payload_len, block_len);
    let mut at = payload_len;
    for (i, byte) in buf[at..at + pad].iter_mut().enumerate() {
        // Never above 255: pad < max block length (16).
        *byte = (i + 1) as u8;
    }
    at += pad;
    buf[at] = pad as u8;
    buf[at + 1] = next_header;
    at + TRAILER_LEN
}

/// Checks the trailer at the end of a decrypted `plaintext` (payload, padding, pad length,
/// next header) and returns the payload length and the next header. The padding must be the
/// default 1, 2, 3, … (RFC 4303 §2.4: a receiver that checks it drops on mismatch); the
/// comparison runs over every byte so its time depends only on the pad length.
pub fn check_trailer(plaintext: &[u8]) -> Result<(usize, u8), TrailerError> {
    let [.., pad_len, next_header] = *plaintext else {
        return Err(TrailerError::PadLengthTooLarge { pad_len: 0, available: 0 });
    };
    let available = plaintext.len() - TRAILER_LEN;
    let pad = usize::from(pad_len);
    if pad > available {
        return Err(TrailerError::PadLengthTooLarge { pad_len, available });
    }
    let payload_len = available - pad;
    let mut first_bad = None;
    for (i, &found) in plaintext[payload_len..available].iter().enumerate() {
        let expected = (i + 1) as u8;
        if found != expected && first_bad.is_none() {
            first_bad = Some(TrailerError::BadPadding { index: i, found, expected });
        }
    }
    match first_bad {
        Some(error) => Err(error),
        None => Ok((payload_len, next_header)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let bytes = [0xc6, 0x04, 0xfa, 0x79, 0, 0, 0, 1, 0xAA];
        let packet = EspPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.spi(), Spi(0xc604fa79));
        assert_eq!(packet.sequence_number(), 1);
        assert_eq!(packet.header(), &bytes[..8]);
        assert_eq!(packet.payload(), &[0xAA]);

        let mut buf = [0u8; 8];
        let mut packet = EspPacket::new_checked(&mut buf[..]).unwrap();
        packet.set_spi(Spi(0x01020304));
        packet.set_sequence_number(0xfffffffe);
        assert_eq!(buf, [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe]);
    }

    #[test]
    fn check_len() {
        assert_eq!(EspPacket::new_checked(&[0u8; 7][..]), Err(WireError::Truncated { len: 7, min: 8 }));
        // AES-CBC (IV 16, block 16) with a 16-byte ICV: at least 8 + 16 + 16 + 16.
        let packet = EspPacket::new_checked(&[0u8; 55][..]).unwrap();
        assert_eq!(packet.layout(16, 16, 16), Err(WireError::Truncated { len: 55, min: 56 }));
        let packet = EspPacket::new_checked(&[0u8; 57][..]).unwrap();
        assert_eq!(packet.layout(16, 16, 16), Err(WireError::NotBlockAligned { len: 17, block: 16 }));
        let packet = EspPacket::new_checked(&[0u8; 56][..]).unwrap();
        assert_eq!(
            packet.layout(16, 16, 16),
            Ok(Layout { iv_start: 8, ciphertext_start: 24, icv_start: 40, end: 56 })
        );
        // GCM: IV 8, stream (block 1), ICV 16: at least 8 + 8 + 2 + 16.
        let packet = EspPacket::new_checked(&[0u8; 33][..]).unwrap();
        assert!(packet.layout(8, 16, 1).is_err());
        let packet = EspPacket::new_checked(&[0u8; 35][..]).unwrap();
        assert_eq!(packet.layout(8, 16, 1).unwrap().icv_start, 19);
    }

    #[test]
    fn padding_lengths() {
        // Stream-like (NULL, GCM): 4-byte alignment only.
        assert_eq!(pad_len(0, 1), 2);
        assert_eq!(pad_len(2, 1), 0);
        assert_eq!(pad_len(84, 1), 2);
        // 3DES: 8-byte blocks; AES-CBC: 16.
        assert_eq!(pad_len(84, 8), 2);
        assert_eq!(pad_len(84, 16), 10);
        assert_eq!(pad_len(14, 16), 0);
        for len in 0..200 {
            for block in [1, 8, 16] {
                let pad = pad_len(len, block);
                assert!(pad < block.max(4));
                assert_eq!((len + pad + 2) % block.max(4), 0);
            }
        }
    }

    #[test]
    fn trailer_round_trip() {
        for len in 0..40 {
            for block in [1, 8, 16] {
                let mut buf = vec![0xEEu8; len + 20];
                let end = write_trailer(&mut buf, len, block, 4);
                assert_eq!(end, len + pad_len(len, block) + 2);
                assert_eq!(check_trailer(&buf[..end]), Ok((len, 4)));
            }
        }
    }

    #[test]
    fn trailer_errors() {
        assert!(check_trailer(&[]).is_err());
        assert!(check_trailer(&[4]).is_err());
        assert_eq!(check_trailer(&[0, 4]), Ok((0, 4)));
        assert_eq!(check_trailer(&[1, 4]), Err(TrailerError::PadLengthTooLarge { pad_len: 1, available: 0 }));
        assert_eq!(
            check_trailer(&[0xAA, 1, 2, 4, 3, 4]),
            Err(TrailerError::BadPadding { index: 2, found: 4, expected: 3 })
        );
        assert_eq!(check_trailer(&[0xAA, 1, 2, 3, 3, 4]), Ok((1, 4)));
        assert_eq!(
            check_trailer(&[0, 0, 2, 59]),
            Err(TrailerError::BadPadding { index: 0, found: 0, expected: 1 })
        );
    }
}
