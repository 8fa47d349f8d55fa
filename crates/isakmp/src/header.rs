//! The fixed 28-byte ISAKMP header (RFC 2408 §3.1) as a smoltcp-style view over a buffer
//! ([`HeaderView`]) and a typed representation ([`Header`]).
//!
//! ```text
//!  0..8   initiator cookie      8..16  responder cookie
//!  16     next payload          17     major (high nibble) / minor (low nibble) version
//!  18     exchange type         19     flags (E = 1, C = 2, A = 4)
//!  20..24 message ID            24..28 length of the whole message, header included
//! ```

use core::fmt;

use crate::error::{Context, ParseError, ParseErrorKind};
use crate::numbers::{ExchangeType, PayloadType};

/// Byte ranges of the header fields (smoltcp's `mod field`).
mod field {
    pub(super) type Field = core::ops::Range<usize>;
    pub(super) const INITIATOR_COOKIE: Field = 0..8;
    pub(super) const RESPONDER_COOKIE: Field = 8..16;
    pub(super) const NEXT_PAYLOAD: usize = 16;
    pub(super) const VERSION: usize = 17;
    pub(super) const EXCHANGE_TYPE: usize = 18;
    pub(super) const FLAGS: usize = 19;
    pub(super) const MESSAGE_ID: Field = 20..24;
    pub(super) const LENGTH: Field = 24..28;
}

/// Length of the ISAKMP header.
pub const HEADER_LEN: usize = 28;

/// The only version this crate speaks: major 1, minor 0 (RFC 2408 §3.1).
pub const VERSION_1_0: u8 = 0x10;

/// An 8-byte ISAKMP cookie (RFC 2408 §2.5.3): together the two cookies name the ISAKMP SA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Cookie(pub [u8; 8]);

impl Cookie {
    /// The all-zero responder cookie of a first message (RFC 2408 §3.1).
    pub const ZERO: Cookie = Cookie([0; 8]);

    /// Whether the cookie is all zeros (not yet chosen by the responder).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Debug for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cookie({self})")
    }
}

impl fmt::Display for Cookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// The message ID (RFC 2408 §3.1): zero in phase 1, random per phase-2 / informational
/// exchange; it keys the per-exchange IV and hash state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(pub u32);

impl MessageId {
    /// Phase-1 messages carry message ID zero.
    pub const ZERO: MessageId = MessageId(0);

    /// The bytes as they appear on the wire and in the quick-mode hashes.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

/// Header flags (RFC 2408 §3.1). Unknown bits are kept so the header round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// E: the payloads after the header are encrypted.
    pub const ENCRYPTION: u8 = 0x01;
    /// C: commit (RFC 2408 §3.1; RFC 2409 §5.5 for quick mode).
    pub const COMMIT: u8 = 0x02;
    /// A: authentication only (the payloads are not encrypted).
    pub const AUTHENTICATION_ONLY: u8 = 0x04;

    /// Whether the E flag is set.
    pub fn encryption(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }

    /// Whether the C flag is set.
    pub fn commit(self) -> bool {
        self.0 & Self::COMMIT != 0
    }

    /// Whether the A flag is set.
    pub fn authentication_only(self) -> bool {
        self.0 & Self::AUTHENTICATION_ONLY != 0
    }

    /// These flags with E set or cleared.
    #[must_use]
    pub fn with_encryption(self, on: bool) -> Self {
        if on {
            Self(self.0 | Self::ENCRYPTION)
        } else {
            Self(self.0 & !Self::ENCRYPTION)
        }
    }
}

/// A checked view over the first 28 bytes of a datagram (smoltcp's `Packet`).
///
/// [`HeaderView::new_checked`] is the only constructor for network bytes and holds the one
/// decision on the length field against the datagram length: they must be equal. A UDP
/// datagram carries exactly one ISAKMP message, RFC 2409 App. B requires the length to include
/// the encryption padding, and bytes beyond the length field are not covered by any hash, so
/// accepting them would only hide a bug or a tampered length (security pitfall 1).
#[derive(Debug, Clone)]
pub struct HeaderView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeaderView<T> {
    /// Wraps a buffer without checks; accessors may then panic on a short buffer, so this is
    /// for buffers this process built itself.
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a received datagram after checking its length and the header's length field.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let view = Self { buffer };
        let len = view.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(header_error(len, ParseErrorKind::MissingData("ISAKMP header")));
        }
        let length = view.length();
        if (length as usize) < HEADER_LEN {
            return Err(header_error(
                field::LENGTH.start,
                ParseErrorKind::LengthOutOfRange("message length"),
            ));
        }
        if length as usize != len {
            return Err(header_error(
                field::LENGTH.start,
                ParseErrorKind::LengthMismatch { header: length, datagram: len },
            ));
        }
        Ok(view)
    }

    fn bytes<const N: usize>(&self, range: field::Field) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer.as_ref()[range]);
        out
    }

    /// The initiator cookie.
    pub fn initiator_cookie(&self) -> Cookie {
        Cookie(self.bytes(field::INITIATOR_COOKIE))
    }

    /// The responder cookie.
    pub fn responder_cookie(&self) -> Cookie {
        Cookie(self.bytes(field::RESPONDER_COOKIE))
    }

    /// The type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType::from(self.buffer.as_ref()[field::NEXT_PAYLOAD])
    }

    /// The raw version byte (major in the high nibble).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// The exchange type.
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType::from(self.buffer.as_ref()[field::EXCHANGE_TYPE])
    }

    /// The flags byte.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The message ID.
    pub fn message_id(&self) -> MessageId {
        MessageId(u32::from_be_bytes(self.bytes(field::MESSAGE_ID)))
    }

    /// The length field.
    pub fn length(&self) -> u32 {
        u32::from_be_bytes(self.bytes(field::LENGTH))
    }

    /// The bytes after the header (up to the end of the buffer, which `new_checked` made
    /// equal to the length field).
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

fn header_error(offset: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { context: Context::Header, offset, kind }
}

/// The typed ISAKMP header, without the two fields [`crate::Message`] derives: the next
/// payload (from the body) and the length (computed on emission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Initiator cookie.
    pub initiator_cookie: Cookie,
    /// Responder cookie (zero in the first message).
    pub responder_cookie: Cookie,
    /// Exchange type.
    pub exchange_type: ExchangeType,
    /// Flags. On emission the E bit is set from the message body, whatever this says.
    pub flags: Flags,
    /// Message ID.
    pub message_id: MessageId,
}

impl Header {
    /// Reads the typed header from a checked view, refusing versions other than 1.0.
    pub fn parse<T: AsRef<[u8]>>(view: &HeaderView<T>) -> Result<Header, ParseError> {
        let version = view.version();
        if version >> 4 != 1 {
            return Err(header_error(field::VERSION, ParseErrorKind::BadMajorVersion(version >> 4)));
        }
        if version & 0x0f != 0 {
            return Err(header_error(field::VERSION, ParseErrorKind::BadMinorVersion(version & 0x0f)));
        }
        if view.initiator_cookie().is_zero() {
            return Err(header_error(field::INITIATOR_COOKIE.start, ParseErrorKind::ZeroInitiatorCookie));
        }
        Ok(Header {
            initiator_cookie: view.initiator_cookie(),
            responder_cookie: view.responder_cookie(),
            exchange_type: view.exchange_type(),
            flags: view.flags(),
            message_id: view.message_id(),
        })
    }

    /// Appends the 28 header bytes with a placeholder length of all ones (patched by the
    /// caller once the body is written, as rustls's `LengthPrefixedBuffer` does).
    pub(crate) fn emit(&self, next_payload: PayloadType, flags: Flags, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_cookie.0);
        out.extend_from_slice(&self.responder_cookie.0);
        out.push(next_payload.into());
        out.push(VERSION_1_0);
        out.push(self.exchange_type.into());
        out.push(flags.0);
        out.extend_from_slice(&self.message_id.to_bytes());
        out.extend_from_slice(&[0xff; 4]);
    }
}

/// Patches the header length at `start` (where the header begins in `out`).
///
/// A message above `u32::MAX` bytes cannot exist in a `Vec` on the platforms we build for;
/// the length saturates rather than wraps.
pub(crate) fn patch_header_len(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len().saturating_sub(start)).unwrap_or(u32::MAX);
    let at = start + field::LENGTH.start;
    if let Some(field) = out.get_mut(at..at + 4) {
        field.copy_from_slice(&len.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MM1_HEADER: &str = "0126bed59fd4f70a0000000000000000011002000000000000000030";

    fn datagram() -> Vec<u8> {
        let mut d = hex::decode(MM1_HEADER).unwrap();
        d.extend_from_slice(&[0u8; 20]);
        d
    }

    #[test]
    fn test_zero_initiator_cookie_is_refused() {
        let mut d = datagram();
        d[..8].fill(0);
        let view = HeaderView::new_checked(&d[..]).unwrap();
        let err = Header::parse(&view).unwrap_err();
        assert_eq!(
            (err.context, err.offset, err.kind),
            (Context::Header, 0, ParseErrorKind::ZeroInitiatorCookie)
        );
        assert_eq!(err.notify_type(), crate::NotifyType::InvalidCookie);
        assert_eq!(err.to_string(), "initiator cookie is zero in ISAKMP header at offset 0");
        // One non-zero byte is enough.
        d[7] = 1;
        assert!(Header::parse(&HeaderView::new_checked(&d[..]).unwrap()).is_ok());
    }

    #[test]
    fn test_parse() {
        let d = datagram();
        let view = HeaderView::new_checked(&d[..]).unwrap();
        let header = Header::parse(&view).unwrap();
        assert_eq!(header.initiator_cookie.to_string(), "0126bed59fd4f70a");
        assert!(header.responder_cookie.is_zero());
        assert_eq!(view.next_payload(), PayloadType::SecurityAssociation);
        assert_eq!(header.exchange_type, ExchangeType::IdentityProtection);
        assert_eq!(header.message_id, MessageId::ZERO);
        assert_eq!(view.length(), 48);
    }

    #[test]
    fn test_check_len() {
        let d = datagram();
        let err = HeaderView::new_checked(&d[..27]).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingData("ISAKMP header"));
        let err = HeaderView::new_checked(&d[..40]).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LengthMismatch { header: 48, datagram: 40 });
        let mut longer = d.clone();
        longer.push(0);
        assert!(HeaderView::new_checked(&longer[..]).is_err());
        let mut short = d.clone();
        short[24..28].copy_from_slice(&27u32.to_be_bytes());
        let err = HeaderView::new_checked(&short[..]).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LengthOutOfRange("message length"));
        assert_eq!(err.offset, 24);
    }

    #[test]
    fn test_version() {
        let mut d = datagram();
        d[17] = 0x20;
        let err = Header::parse(&HeaderView::new_checked(&d[..]).unwrap()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::BadMajorVersion(2));
        assert_eq!(err.notify_type(), crate::NotifyType::InvalidMajorVersion);
        d[17] = 0x11;
        let err = Header::parse(&HeaderView::new_checked(&d[..]).unwrap()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::BadMinorVersion(1));
    }

    #[test]
    fn test_emit() {
        let d = datagram();
        let header = Header::parse(&HeaderView::new_checked(&d[..]).unwrap()).unwrap();
        let mut out = Vec::new();
        header.emit(PayloadType::SecurityAssociation, header.flags, &mut out);
        out.extend_from_slice(&[0u8; 20]);
        patch_header_len(&mut out, 0);
        assert_eq!(out, d);
    }
}
