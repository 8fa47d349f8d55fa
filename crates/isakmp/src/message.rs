//! A whole ISAKMP message: header and payload chain (RFC 2408 §3.1–3.2), with the body either
//! parsed (cleartext) or kept opaque until the engine decrypts it (E flag, RFC 2408 §3.1 and
//! RFC 2409 App. B) — quinn-proto's two-step `PartialDecode`.

use crate::error::ParseError;
use crate::header::{patch_header_len, Header, HeaderView, HEADER_LEN};
use crate::numbers::PayloadType;
use crate::payload::{emit_chain, parse_chain, Payload};

/// A parsed (or to-be-emitted) ISAKMP message borrowing its datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The header fields that are not derived from the body.
    pub header: Header,
    /// The payloads, or the ciphertext.
    pub body: Body<'a>,
}

/// The part of a message after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// E flag clear: the parsed chain.
    Cleartext {
        /// The payloads in order.
        payloads: Vec<Payload<'a>>,
        /// Bytes after the last payload. Empty from strongSwan; some peers align cleartext
        /// messages to 4 bytes (notes pitfall 1). Kept so the message re-emits unchanged.
        padding: &'a [u8],
    },
    /// E flag set: the header's next payload and the ciphertext, for the engine to decrypt and
    /// then parse with [`crate::parse_payload_chain`].
    Encrypted {
        /// Type of the first encrypted payload.
        first_payload: PayloadType,
        /// Ciphertext, including the encrypted padding.
        ciphertext: &'a [u8],
    },
}

impl<'a> Message<'a> {
    /// Parses a UDP payload (without the non-ESP marker on port 4500) as one ISAKMP message.
    ///
    /// The header's length field must equal the datagram's length (see [`HeaderView`]); the
    /// version must be 1.0. With the E flag set the body is not touched.
    pub fn parse(datagram: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let view = HeaderView::new_checked(datagram)?;
        let header = Header::parse(&view)?;
        let first = view.next_payload();
        let body = datagram.get(HEADER_LEN..).unwrap_or_default();
        let body = if header.flags.encryption() {
            Body::Encrypted { first_payload: first, ciphertext: body }
        } else {
            let (payloads, padding) = parse_chain(first, body, HEADER_LEN)?;
            Body::Cleartext { payloads, padding }
        };
        Ok(Message { header, body })
    }

    /// The ciphertext, if the E flag was set.
    pub fn encrypted_body(&self) -> Option<&'a [u8]> {
        match self.body {
            Body::Encrypted { ciphertext, .. } => Some(ciphertext),
            Body::Cleartext { .. } => None,
        }
    }

    /// The payloads of a cleartext message (empty for an encrypted one).
    pub fn payloads(&self) -> &[Payload<'a>] {
        match &self.body {
            Body::Cleartext { payloads, .. } => payloads,
            Body::Encrypted { .. } => &[],
        }
    }

    /// The header's next payload field: the type of the first payload.
    pub fn first_payload(&self) -> PayloadType {
        match &self.body {
            Body::Cleartext { payloads, .. } => {
                payloads.first().map_or(PayloadType::None, Payload::payload_type)
            }
            Body::Encrypted { first_payload, .. } => *first_payload,
        }
    }

    /// Appends the message. The E flag follows the body variant; the next payload, every
    /// payload length, nested SA lengths and the header length are derived.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let encrypted = matches!(self.body, Body::Encrypted { .. });
        self.header.emit(self.first_payload(), self.header.flags.with_encryption(encrypted), out);
        match &self.body {
            Body::Cleartext { payloads, padding } => {
                emit_chain(payloads, out);
                out.extend_from_slice(padding);
            }
            Body::Encrypted { ciphertext, .. } => out.extend_from_slice(ciphertext),
        }
        patch_header_len(out, start);
    }

    /// The message as a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Context, ParseErrorKind};
    use crate::header::{Cookie, Flags, MessageId};
    use crate::numbers::ExchangeType;

    fn informational() -> Message<'static> {
        Message {
            header: Header {
                initiator_cookie: Cookie([1; 8]),
                responder_cookie: Cookie([2; 8]),
                exchange_type: ExchangeType::Informational,
                flags: Flags::default(),
                message_id: MessageId(7),
            },
            body: Body::Cleartext {
                payloads: vec![Payload::Hash(&[0xaa; 20]), Payload::VendorId(b"keysteward")],
                padding: &[],
            },
        }
    }

    #[test]
    fn test_emit_parse() {
        let m = informational();
        let bytes = m.to_vec();
        assert_eq!(bytes.len(), 28 + 24 + 14);
        assert_eq!(bytes[16], 8);
        assert_eq!(&bytes[24..28], &66u32.to_be_bytes());
        assert_eq!(Message::parse(&bytes).unwrap(), m);
    }

    #[test]
    fn test_encrypted() {
        let mut m = informational();
        m.body = Body::Encrypted { first_payload: PayloadType::Hash, ciphertext: &[0x55; 32] };
        let bytes = m.to_vec();
        assert_eq!(bytes[19], Flags::ENCRYPTION);
        let parsed = Message::parse(&bytes).unwrap();
        assert_eq!(parsed.encrypted_body(), Some(&[0x55; 32][..]));
        assert_eq!(parsed.first_payload(), PayloadType::Hash);
        assert!(parsed.payloads().is_empty());
        assert!(parsed.header.flags.encryption());
    }

    #[test]
    fn test_cleartext_padding_kept() {
        let mut bytes = informational().to_vec();
        bytes.extend_from_slice(&[0, 0]);
        let len = bytes.len() as u32;
        bytes[24..28].copy_from_slice(&len.to_be_bytes());
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.payloads().len(), 2);
        assert_eq!(m.to_vec(), bytes);
    }

    #[test]
    fn test_errors_name_payload_and_offset() {
        let mut bytes = informational().to_vec();
        bytes[28 + 3] = 0xff; // HASH length past the end
        let err = Message::parse(&bytes).unwrap_err();
        assert_eq!(err.context, Context::Payload(PayloadType::Hash));
        assert_eq!((err.offset, err.kind), (30, ParseErrorKind::LengthOutOfRange("payload length")));
        assert_eq!(err.notify_type(), crate::NotifyType::PayloadMalformed);
        let short = informational().to_vec();
        let err = Message::parse(&short[..60]).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LengthMismatch { header: 66, datagram: 60 });
        assert_eq!(err.notify_type(), crate::NotifyType::UnequalPayloadLengths);
    }
}
