//! The generic payload header and the payload chain (RFC 2408 §3.2 and §5.2–5.15).
//!
//! Every payload starts with next payload (1 byte), reserved (1), payload length (2, header
//! included). The chain is walked by [`RawPayloads`], which yields one generic payload at a
//! time; [`Payload::parse`] gives each its typed meaning.
//!
//! Decisions, each defended by a test:
//! - The next-payload chain defines the end of the chain: after a payload whose next field is
//!   0, the remaining bytes are padding (RFC 2409 App. B; racoon pads with random bytes) and are
//!   returned, not parsed. A last payload with a non-zero next field (notes pitfall 13) is
//!   therefore *not* tolerated: it is refused with `MissingData` naming the announced type,
//!   because telling such a payload from the start of padding would be guesswork.
//! - A length below 4 or past the end of the buffer is `LengthOutOfRange`; every payload
//!   advances by at least 4 bytes, so the walk cannot loop, and at most [`MAX_PAYLOADS`]
//!   payloads are accepted.
//! - Unknown payload types (including IKEv2 numbers) are skipped and reported as
//!   [`Payload::Unknown`]; proposals and transforms outside an SA are refused as
//!   `MisplacedPayload` (INVALID-PAYLOAD-TYPE).
//! - Reserved bytes are ignored on input and emitted as zero, so `emit(parse(x)) == x` holds
//!   for canonical input.

use crate::cert::{Certificate, CertificateRequest};
use crate::config::ConfigAttributes;
use crate::error::{Context, ParseError, ParseErrorKind};
use crate::fragment::Fragment;
use crate::id::Identification;
use crate::nat::{NatDiscovery, NatOriginalAddress};
use crate::notify::{Delete, Notification};
use crate::numbers::PayloadType;
use crate::reader::{patch_u16_len, Reader};
use crate::sa::SecurityAssociation;

/// At most this many payloads in one message or decrypted chain. Real IKEv1 messages carry
/// fewer than 16 (quick mode with PFS and NAT-OA: about 8; MM1 with vendor IDs: about 10).
pub const MAX_PAYLOADS: usize = 64;

/// Length of the generic payload header.
pub const GENERIC_HEADER_LEN: usize = 4;

/// One payload of the chain, read for its meaning. Bodies borrow the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload<'a> {
    /// SA (1).
    SecurityAssociation(SecurityAssociation<'a>),
    /// KE (4): the public value (`g^xi` / `g^xr`).
    KeyExchange(&'a [u8]),
    /// ID (5).
    Identification(Identification<'a>),
    /// CERT (6).
    Certificate(Certificate<'a>),
    /// CR (7).
    CertificateRequest(CertificateRequest<'a>),
    /// HASH (8).
    Hash(&'a [u8]),
    /// SIG (9).
    Signature(&'a [u8]),
    /// NONCE (10).
    Nonce(&'a [u8]),
    /// N (11).
    Notification(Notification<'a>),
    /// D (12).
    Delete(Delete<'a>),
    /// VID (13); see [`crate::vendor`] for known values.
    VendorId(&'a [u8]),
    /// ATTR (14).
    Attribute(ConfigAttributes<'a>),
    /// NAT-D (20 or draft 130).
    NatDiscovery(NatDiscovery<'a>),
    /// NAT-OA (21 or draft 131).
    NatOriginalAddress(NatOriginalAddress),
    /// IKE fragment (132).
    Fragment(Fragment<'a>),
    /// A payload type this crate does not know, skipped and reported. `payload_type` is always
    /// a [`PayloadType::Unknown`] for parsed payloads.
    Unknown {
        /// The type number.
        payload_type: PayloadType,
        /// The body after the generic header.
        body: &'a [u8],
    },
}

impl<'a> Payload<'a> {
    /// The payload type this payload is sent as.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Self::SecurityAssociation(_) => PayloadType::SecurityAssociation,
            Self::KeyExchange(_) => PayloadType::KeyExchange,
            Self::Identification(_) => PayloadType::Identification,
            Self::Certificate(_) => PayloadType::Certificate,
            Self::CertificateRequest(_) => PayloadType::CertificateRequest,
            Self::Hash(_) => PayloadType::Hash,
            Self::Signature(_) => PayloadType::Signature,
            Self::Nonce(_) => PayloadType::Nonce,
            Self::Notification(_) => PayloadType::Notification,
            Self::Delete(_) => PayloadType::Delete,
            Self::VendorId(_) => PayloadType::VendorId,
            Self::Attribute(_) => PayloadType::Attribute,
            Self::NatDiscovery(d) => d.payload_type(),
            Self::NatOriginalAddress(oa) => oa.payload_type(),
            Self::Fragment(_) => PayloadType::Fragment,
            Self::Unknown { payload_type, .. } => *payload_type,
        }
    }

    /// Reads the typed payload from a generic payload.
    pub fn parse(raw: &RawPayload<'a>) -> Result<Self, ParseError> {
        let context = Context::Payload(raw.payload_type);
        let mut r = Reader::new(raw.body, raw.offset + GENERIC_HEADER_LEN, context);
        let payload = match raw.payload_type {
            PayloadType::SecurityAssociation => {
                Self::SecurityAssociation(SecurityAssociation::parse(&mut r)?)
            }
            PayloadType::KeyExchange => Self::KeyExchange(r.rest()),
            PayloadType::Identification => Self::Identification(Identification::parse(&mut r)?),
            PayloadType::Certificate => Self::Certificate(Certificate::parse(&mut r)?),
            PayloadType::CertificateRequest => Self::CertificateRequest(CertificateRequest::parse(&mut r)?),
            PayloadType::Hash => Self::Hash(r.rest()),
            PayloadType::Signature => Self::Signature(r.rest()),
            PayloadType::Nonce => Self::Nonce(nonce(r.rest(), raw.offset)?),
            PayloadType::Notification => Self::Notification(Notification::parse(&mut r)?),
            PayloadType::Delete => Self::Delete(Delete::parse(&mut r)?),
            PayloadType::VendorId => Self::VendorId(r.rest()),
            PayloadType::Attribute => Self::Attribute(ConfigAttributes::parse(&mut r)?),
            PayloadType::NatDiscovery => Self::NatDiscovery(NatDiscovery { draft: false, hash: r.rest() }),
            PayloadType::NatDiscoveryDraft => {
                Self::NatDiscovery(NatDiscovery { draft: true, hash: r.rest() })
            }
            PayloadType::NatOriginalAddress => {
                Self::NatOriginalAddress(NatOriginalAddress::parse(&mut r, false)?)
            }
            PayloadType::NatOriginalAddressDraft => {
                Self::NatOriginalAddress(NatOriginalAddress::parse(&mut r, true)?)
            }
            PayloadType::Fragment => Self::Fragment(Fragment::parse(&mut r)?),
            PayloadType::Unknown(_) => Self::Unknown { payload_type: raw.payload_type, body: r.rest() },
            misplaced @ (PayloadType::None | PayloadType::Proposal | PayloadType::Transform) => {
                return Err(ParseError {
                    context,
                    offset: raw.offset,
                    kind: ParseErrorKind::MisplacedPayload(misplaced),
                })
            }
        };
        r.expect_empty("payload body")?;
        Ok(payload)
    }

    /// Appends the body (without the generic header): the bytes the IKEv1 hashes cover as
    /// `SAi_b`, `IDii_b`, `Ni_b`, …
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::SecurityAssociation(sa) => sa.emit(out),
            Self::Identification(id) => id.emit(out),
            Self::Certificate(c) => c.emit(out),
            Self::CertificateRequest(c) => c.emit(out),
            Self::Notification(n) => n.emit(out),
            Self::Delete(d) => d.emit(out),
            Self::Attribute(a) => a.emit(out),
            Self::NatOriginalAddress(oa) => oa.emit(out),
            Self::Fragment(f) => f.emit(out),
            Self::NatDiscovery(NatDiscovery { hash: bytes, .. })
            | Self::KeyExchange(bytes)
            | Self::Hash(bytes)
            | Self::Signature(bytes)
            | Self::Nonce(bytes)
            | Self::VendorId(bytes)
            | Self::Unknown { body: bytes, .. } => out.extend_from_slice(bytes),
        }
    }

    /// The body as a new vector (see [`Payload::emit_body`]).
    pub fn body_to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit_body(&mut out);
        out
    }
}

/// Smallest nonce RFC 2409 §5 allows ("the length of nonce payload MUST be between 8 and 256
/// bytes inclusive").
pub const MIN_NONCE_LEN: usize = 8;
/// Largest nonce RFC 2409 §5 allows.
pub const MAX_NONCE_LEN: usize = 256;

/// A NONCE body, if its length is within RFC 2409 §5's bounds (every nonce of main,
/// aggressive and quick mode passes here).
fn nonce(body: &[u8], offset: usize) -> Result<&[u8], ParseError> {
    let length = body.len();
    if (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&length) {
        return Ok(body);
    }
    Err(ParseError {
        context: Context::Payload(PayloadType::Nonce),
        offset,
        kind: ParseErrorKind::LengthBounds { field: "nonce", length, min: MIN_NONCE_LEN, max: MAX_NONCE_LEN },
    })
}

/// One generic payload of a chain, before its body is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// This payload's type (the previous header's next field).
    pub payload_type: PayloadType,
    /// This header's next field.
    pub next_payload: PayloadType,
    /// Offset of the generic header in the parsed buffer.
    pub offset: usize,
    /// The body after the generic header.
    pub body: &'a [u8],
}

/// Iterator over the generic payloads of a chain (see the module docs for the rules). After
/// it has returned `None`, [`RawPayloads::padding`] holds the bytes after the chain.
#[derive(Debug, Clone)]
pub struct RawPayloads<'a> {
    reader: Reader<'a>,
    next: PayloadType,
    count: usize,
    failed: bool,
}

impl<'a> RawPayloads<'a> {
    /// Walks the chain in `buf` whose first payload has type `first`; offsets in errors and in
    /// [`RawPayload::offset`] count from `buf[0]` plus `base`.
    pub fn new(first: PayloadType, buf: &'a [u8], base: usize) -> Self {
        Self { reader: Reader::new(buf, base, Context::Payload(first)), next: first, count: 0, failed: false }
    }

    /// The bytes after the last payload (padding), once the chain is finished.
    pub fn padding(&self) -> &'a [u8] {
        self.reader.clone().rest()
    }

    fn read(&mut self) -> Result<RawPayload<'a>, ParseError> {
        let context = Context::Payload(self.next);
        let r = &mut self.reader;
        let with_context = |e: ParseError| ParseError { context, ..e };
        let offset = r.offset();
        if self.count == MAX_PAYLOADS {
            return Err(ParseError { context, offset, kind: ParseErrorKind::TooMany("payloads") });
        }
        let next_payload = PayloadType::from(r.u8("generic payload header").map_err(with_context)?);
        let _reserved = r.u8("generic payload header").map_err(with_context)?;
        let length = usize::from(r.u16("generic payload header").map_err(with_context)?);
        let body_len = match length.checked_sub(GENERIC_HEADER_LEN) {
            Some(len) if len <= r.remaining() => len,
            _ => {
                let kind = ParseErrorKind::LengthOutOfRange("payload length");
                return Err(ParseError { context, offset: offset + 2, kind });
            }
        };
        let body = r.take(body_len, "payload body").map_err(with_context)?;
        self.count += 1;
        let payload_type = core::mem::replace(&mut self.next, next_payload);
        Ok(RawPayload { payload_type, next_payload, offset, body })
    }
}

impl<'a> Iterator for RawPayloads<'a> {
    type Item = Result<RawPayload<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next == PayloadType::None {
            return None;
        }
        let item = self.read();
        self.failed = item.is_err();
        Some(item)
    }
}

/// Parses a whole chain, returning the payloads and the padding after them.
pub(crate) fn parse_chain(
    first: PayloadType,
    buf: &[u8],
    base: usize,
) -> Result<(Vec<Payload<'_>>, &[u8]), ParseError> {
    let mut raw = RawPayloads::new(first, buf, base);
    let mut payloads = Vec::new();
    for item in raw.by_ref() {
        payloads.push(Payload::parse(&item?)?);
    }
    Ok((payloads, raw.padding()))
}

/// Emits a payload chain: generic headers with next fields and lengths derived, bodies in
/// order, the last next field 0. The header's next payload is `payloads[0].payload_type()`.
pub(crate) fn emit_chain(payloads: &[Payload<'_>], out: &mut Vec<u8>) {
    for (i, payload) in payloads.iter().enumerate() {
        let next = payloads.get(i + 1).map_or(PayloadType::None, Payload::payload_type);
        let start = out.len();
        out.extend_from_slice(&[next.into(), 0, 0xff, 0xff]);
        payload.emit_body(out);
        patch_u16_len(out, start + 2, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // MM5 plaintext of mm-psk-pfs: ID, HASH, N(INITIAL-CONTACT), then 4 bytes of zero padding.
    const MM5: &str = "0800000c01000000c00002010b000024a6e2d3ff99e4e26daa42b358b57e138ce51488665cae240f5e9b9542ce3d67500000001c00000001011060020126bed59fd4f70af42f82f957d1431e00000000";

    #[test]
    fn test_parse_chain_with_padding() {
        let bytes = hex::decode(MM5).unwrap();
        let (payloads, padding) = parse_chain(PayloadType::Identification, &bytes, 0).unwrap();
        let types: Vec<_> = payloads.iter().map(Payload::payload_type).collect();
        assert_eq!(types, [PayloadType::Identification, PayloadType::Hash, PayloadType::Notification]);
        assert_eq!(padding, [0u8; 4]);
        let mut out = Vec::new();
        emit_chain(&payloads, &mut out);
        assert_eq!(out, bytes[..76]);
    }

    #[test]
    fn test_last_next_payload_nonzero_refused() {
        let mut bytes = hex::decode(MM5).unwrap();
        bytes[48] = 13; // N says a VID follows; there is only padding.
        let err = parse_chain(PayloadType::Identification, &bytes, 0).unwrap_err();
        assert_eq!((err.context, err.offset), (Context::Payload(PayloadType::VendorId), 78));
        assert_eq!(err.kind, ParseErrorKind::LengthOutOfRange("payload length"));
        let err = parse_chain(PayloadType::Identification, &bytes[..76], 0).unwrap_err();
        assert_eq!((err.context, err.offset), (Context::Payload(PayloadType::VendorId), 76));
        assert_eq!(err.kind, ParseErrorKind::MissingData("generic payload header"));
    }

    #[test]
    fn test_bad_lengths() {
        let bytes = hex::decode(MM5).unwrap();
        for (at, value) in [(3usize, 0u8), (3, 3), (3, 0xff)] {
            let mut b = bytes.clone();
            b[at] = value;
            let err = parse_chain(PayloadType::Identification, &b, 28).unwrap_err();
            assert_eq!(err.kind, ParseErrorKind::LengthOutOfRange("payload length"));
            assert_eq!(err.offset, 30);
        }
        // ID length 13: the ID body then has a 5-byte IPv4 address.
        let mut b = bytes.clone();
        b[3] = 13;
        assert!(parse_chain(PayloadType::Identification, &b, 0).is_err());
    }

    #[test]
    fn test_unknown_and_misplaced() {
        // An IKEv2 payload number (SK = 46) then a VID.
        let bytes = hex::decode("0d000006abcd00000005ff").unwrap();
        let (payloads, _) = parse_chain(PayloadType::Unknown(46), &bytes, 0).unwrap();
        assert_eq!(
            payloads[0],
            Payload::Unknown { payload_type: PayloadType::Unknown(46), body: &[0xab, 0xcd] }
        );
        assert_eq!(payloads[1], Payload::VendorId(&[0xff]));
        let err = parse_chain(PayloadType::Proposal, &bytes, 0).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MisplacedPayload(PayloadType::Proposal));
        assert_eq!(err.notify_type(), crate::NotifyType::InvalidPayloadType);
    }

    #[test]
    fn test_too_many_payloads() {
        let vid = [13u8, 0, 0, 4];
        let mut bytes = vid.repeat(MAX_PAYLOADS);
        bytes.extend_from_slice(&[0, 0, 0, 4]);
        let err = parse_chain(PayloadType::VendorId, &bytes, 0).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::TooMany("payloads"));
        let ok = parse_chain(PayloadType::VendorId, &bytes[4..], 0).unwrap();
        assert_eq!(ok.0.len(), MAX_PAYLOADS);
    }

    #[test]
    fn test_opaque_payloads() {
        // KE, NONCE, HASH, SIG, VID, NAT-D (RFC and draft numbers): body kept as is.
        let bytes = hex::decode(
            "0a000006aaaa0800000cbbbbbbbbbbbbbbbb090000041400000482000005010d000006ccdd00000005ddeeff",
        )
        .unwrap();
        let (payloads, padding) = parse_chain(PayloadType::KeyExchange, &bytes, 0).unwrap();
        assert_eq!(padding, [0xee, 0xff]);
        assert_eq!(
            payloads,
            vec![
                Payload::KeyExchange(&[0xaa, 0xaa]),
                Payload::Nonce(&[0xbb; 8]),
                Payload::Hash(&[]),
                Payload::Signature(&[]),
                Payload::NatDiscovery(NatDiscovery { draft: false, hash: &[0x01] }),
                Payload::NatDiscovery(NatDiscovery { draft: true, hash: &[0xcc, 0xdd] }),
                Payload::VendorId(&[0xdd]),
            ]
        );
        let mut out = Vec::new();
        emit_chain(&payloads, &mut out);
        assert_eq!(out, bytes[..bytes.len() - 2]);
    }

    #[test]
    fn test_nonce_length_bounds() {
        // RFC 2409 §5: a nonce is 8 to 256 bytes. After a 4-byte VID at offset 0, a NONCE of
        // `len` bytes at offset 4.
        let chain = |len: usize| {
            let mut bytes = hex::decode("0a000004").unwrap();
            bytes.extend_from_slice(&[0, 0]);
            bytes.extend_from_slice(&u16::try_from(len + 4).unwrap().to_be_bytes());
            bytes.extend(std::iter::repeat_n(0x5a, len));
            bytes
        };
        for len in [8, 32, 256] {
            let bytes = chain(len);
            let (payloads, _) = parse_chain(PayloadType::VendorId, &bytes, 0).unwrap();
            assert_eq!(payloads[1], Payload::Nonce(&bytes[8..]), "len {len}");
        }
        for len in [0, 1, 7, 257, 1000] {
            let err = parse_chain(PayloadType::VendorId, &chain(len), 0).unwrap_err();
            assert_eq!(err.context, Context::Payload(PayloadType::Nonce));
            assert_eq!(err.offset, 4);
            assert_eq!(
                err.kind,
                ParseErrorKind::LengthBounds { field: "nonce", length: len, min: 8, max: 256 }
            );
            assert_eq!(err.notify_type(), crate::NotifyType::PayloadMalformed);
        }
        assert_eq!(
            parse_chain(PayloadType::VendorId, &chain(7), 0).unwrap_err().to_string(),
            "nonce of 7 bytes (allowed: 8 to 256) in NONCE payload at offset 4"
        );
    }

    #[test]
    fn test_reserved_ignored_and_emitted_zero() {
        // RFC 2408 §3.2: RESERVED "MUST be set to 0"; receivers ignore it (MS-IKEE says so too).
        let bytes = hex::decode("0d7f0005aa0000000401").unwrap();
        let (payloads, padding) = parse_chain(PayloadType::VendorId, &bytes, 0).unwrap();
        assert_eq!(payloads, vec![Payload::VendorId(&[0xaa]), Payload::VendorId(&[])]);
        assert_eq!(padding, [0x01]);
        let mut out = Vec::new();
        emit_chain(&payloads, &mut out);
        assert_eq!(out, hex::decode("0d000005aa00000004").unwrap());
    }

    #[test]
    fn test_truncations_fail_cleanly() {
        let bytes = hex::decode(MM5).unwrap();
        for len in 0..76 {
            let err = parse_chain(PayloadType::Identification, &bytes[..len], 10).unwrap_err();
            assert!(err.offset >= 10 && err.offset <= 10 + len, "len {len}: {err}");
        }
    }
}
