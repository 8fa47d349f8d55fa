//! ISAKMP / IKEv1 wire format for keysteward: the header, every payload keysteward speaks, SA /
//! proposal / transform attributes, notify and vendor-ID constants and the capabilities they
//! announce (`capabilities`). Typed parse and emit; no
//! crypto, no I/O.
//!
//! Specifications: RFC 2408 §3 (formats) and §5 (checks), RFC 2407 §4.4–4.6 (IPsec DOI),
//! RFC 2409 App. A (phase-1 attributes) and App. B (padding), RFC 3947 (NAT-T payloads),
//! RFC 3706 (DPD notifications), draft-dukes-ike-mode-cfg (Attribute payload), and the
//! Cisco/Microsoft fragment payload.
//!
//! Shape (see `shared/reference/style-anchors.md` §10):
//! - [`Message::parse`] reads a datagram; with the E flag set the body stays opaque
//!   ([`Message::encrypted_body`]) and is parsed after decryption with [`parse_payload_chain`].
//! - [`Message::emit`] / [`emit_payload_chain`] write messages and chains, deriving every next
//!   payload field and length. For everything the parser accepts, emitting the result gives the
//!   same bytes back, apart from non-zero reserved bytes (ignored, emitted as zero) and
//!   encryption padding (returned separately).
//! - Every malformed input yields a [`ParseError`] naming the payload and byte offset; its
//!   kind maps to the notification to send with `NotifyType::from(&kind)`.
//! - Allocation is bounded by the input: at most [`MAX_PAYLOADS`] payloads,
//!   [`sa::MAX_PROPOSALS`] proposals per SA, 255 transforms per proposal,
//!   [`sa::MAX_ATTRIBUTES`] attributes per transform, and counts checked against the bytes
//!   present before any vector is sized from them. Every element pushed consumes at least one
//!   byte of input (4 for payloads and attributes, 8 for proposals and transforms), so the
//!   memory a parse allocates is a small constant times the datagram length.
//!
//! Decisions on tolerance (interop pitfalls from `shared/reference/ikev1-notes.md`):
//! - header length ≠ datagram length: refused, `LengthMismatch` → UNEQUAL-PAYLOAD-LENGTHS
//!   ([`HeaderView::new_checked`] explains why);
//! - bytes after the last payload: tolerated as padding, in cleartext (kept in
//!   [`Body::Cleartext`] so the message re-emits) and in decrypted chains (pitfall 1);
//! - a last payload whose next payload is not 0 (pitfall 13): refused, the chain defines the
//!   end ([`payload`] module docs);
//! - phase-1 ID protocol/port 0/0, 17/500, 17/4500, anything (pitfall 4): all accepted;
//! - a transform with no attributes: accepted; unknown payload types: kept as
//!   [`Payload::Unknown`]; non-zero reserved bytes: ignored.
//!
//! Security pitfall 1 (parser robustness) and where it is defended: short packets and length
//! fields — [`HeaderView::new_checked`] and the bounded reader, unit tests `test_check_len` and
//! `test_bad_lengths`; payload length 0 or beyond the end, next-payload loops, too many
//! payloads — [`RawPayloads`], tests in `payload.rs`; unknown and IKEv2 payload numbers —
//! `test_unknown_and_misplaced`; panics on arbitrary input — `tests/roundtrip.rs` (random and
//! mutated messages) and `tests/corpus_replay.rs` (the fuzz corpus).
#![forbid(unsafe_code)]

mod macros;

pub mod attribute;
pub mod capabilities;
pub mod cert;
pub mod config;
pub mod error;
pub mod fragment;
pub mod fragmentation;
pub mod header;
pub mod id;
pub mod message;
pub mod nat;
pub mod notify;
pub mod numbers;
pub mod payload;
mod reader;
pub mod sa;
pub mod vendor;

pub use attribute::{
    AhTransformId, Attribute, AttributeValue, AuthenticationAlgorithm, AuthenticationMethod,
    EncapsulationMode, EncryptionAlgorithm, EspTransformId, GroupDescription, HashAlgorithm, IkeAttribute,
    IkeAttributeType, IpCompTransformId, IpsecAttribute, IpsecAttributeType, LifeType, KEY_IKE,
};
pub use cert::{Certificate, CertificateRequest};
pub use config::{ConfigAttributes, ConfigType};
pub use error::{Context, ParseError, ParseErrorKind};
pub use fragment::Fragment;
pub use header::{Cookie, Flags, Header, HeaderView, MessageId, HEADER_LEN};
pub use id::{Identification, Identity};
pub use message::{Body, Message};
pub use nat::{NatDiscovery, NatOriginalAddress};
pub use notify::{Delete, Notification};
pub use numbers::{CertificateEncoding, Doi, ExchangeType, IdType, NotifyType, PayloadType, ProtocolId};
pub use payload::{Payload, RawPayload, RawPayloads, MAX_PAYLOADS};
pub use sa::{Proposal, SecurityAssociation, Spi, Transform, SIT_IDENTITY_ONLY};

/// Parses a decrypted payload chain whose first payload has type `first` (the header's next
/// payload). Bytes after the last payload — the encryption padding of RFC 2409 App. B, zeros
/// from strongSwan, random from racoon — are ignored. Error offsets count from `body[0]`.
pub fn parse_payload_chain(first: PayloadType, body: &[u8]) -> Result<Vec<Payload<'_>>, ParseError> {
    payload::parse_chain(first, body, 0).map(|(payloads, _padding)| payloads)
}

/// Like [`parse_payload_chain`], also returning the padding after the chain (the engine may
/// want to log its length, or check it is shorter than a block).
pub fn parse_payload_chain_with_padding(
    first: PayloadType,
    body: &[u8],
) -> Result<(Vec<Payload<'_>>, &[u8]), ParseError> {
    payload::parse_chain(first, body, 0)
}

/// Appends a payload chain alone (the engine pads and encrypts it, then builds a
/// [`Body::Encrypted`] message whose first payload is `payloads[0].payload_type()`). The hashed
/// "rest of message after HASH" of RFC 2409 §5.5 is `emit_payload_chain(&payloads[1..])`.
pub fn emit_payload_chain(payloads: &[Payload<'_>], out: &mut Vec<u8>) {
    payload::emit_chain(payloads, out)
}
