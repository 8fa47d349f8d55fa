//! Parse errors, and the one place that decides which notification a malformed message earns
//! (RFC 2408 §5 lists the checks and the notify types; rustls's `InvalidMessage` →
//! `AlertDescription` mapping is the model).

use core::fmt;

use crate::numbers::{NotifyType, PayloadType};

/// Where in a message a parse error happened: the engine logs it and tests assert on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The 28-byte ISAKMP header (RFC 2408 §3.1).
    Header,
    /// A payload of this type, or a structure nested in it (proposals and transforms name
    /// their own types).
    Payload(PayloadType),
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header => f.write_str("ISAKMP header"),
            Self::Payload(t) => write!(f, "{t} payload"),
        }
    }
}

/// A malformed message: what was wrong, in which payload, at which byte offset.
///
/// The offset counts from the start of the buffer given to the parser: the datagram for
/// [`crate::Message::parse`], the decrypted body for [`crate::parse_payload_chain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} in {context} at offset {offset}")]
pub struct ParseError {
    /// The structure being parsed.
    pub context: Context,
    /// Byte offset of the field or structure that failed.
    pub offset: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// The payload type the error names, if it is not the header.
    pub fn payload_type(&self) -> Option<PayloadType> {
        match self.context {
            Context::Header => None,
            Context::Payload(t) => Some(t),
        }
    }

    /// The notification this error earns (see `From<&ParseErrorKind> for NotifyType`).
    pub fn notify_type(&self) -> NotifyType {
        NotifyType::from(&self.kind)
    }
}

/// Why a message failed to parse. Names in `&'static str` say which field (rustls style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The buffer ended before this field.
    #[error("missing data: {0}")]
    MissingData(&'static str),
    /// A length field is below its structure's minimum or runs past its container.
    #[error("length out of range: {0}")]
    LengthOutOfRange(&'static str),
    /// The header's length field and the datagram's length differ (see
    /// [`crate::Message::parse`] for why this is refused rather than tolerated).
    #[error("header length {header} but datagram length {datagram}")]
    LengthMismatch {
        /// The header's length field.
        header: u32,
        /// Bytes received.
        datagram: usize,
    },
    /// Bytes left inside a structure after its last field.
    #[error("trailing data: {0}")]
    TrailingData(&'static str),
    /// A fixed-size field has the wrong size for its type (for example an IPv4 ID that is not
    /// 4 bytes).
    #[error("invalid length: {0}")]
    InvalidLength(&'static str),
    /// More payloads, proposals, transforms or attributes than this crate accepts.
    #[error("too many {0}")]
    TooMany(&'static str),
    /// Major version other than 1 (an IKEv2 message, for example).
    #[error("major version {0} is not 1")]
    BadMajorVersion(u8),
    /// Minor version other than 0.
    #[error("minor version {0} is not 0")]
    BadMinorVersion(u8),
    /// A payload where it cannot appear: a proposal or transform in the top-level chain, or
    /// something other than a proposal (transform) inside an SA (proposal).
    #[error("payload {0} is not allowed here")]
    MisplacedPayload(PayloadType),
    /// A proposal's transform count disagrees with the transforms it holds.
    #[error("proposal announces {announced} transforms but holds {found}")]
    TransformCountMismatch {
        /// The "# of Transforms" field.
        announced: u8,
        /// Transforms found.
        found: usize,
    },
    /// An attribute defined as basic (TV) arrived in variable (TLV) form.
    #[error("attribute {0} must use the basic (TV) format")]
    AttributeFormat(u16),
    /// An SA payload with a DOI other than IPsec: its situation layout is unknown.
    #[error("DOI {0} is not supported")]
    UnsupportedDoi(u32),
    /// An IPsec DOI situation with secrecy or integrity labels (RFC 2407 §4.2), which this
    /// crate does not parse.
    #[error("situation {0:#x} is not supported")]
    UnsupportedSituation(u32),
    /// An ID payload whose data does not fit its ID type.
    #[error("invalid identification: {0}")]
    InvalidIdentification(&'static str),
    /// An AH or ESP SPI in the range RFC 4303 §2.1 reserves (0 is never sent, 1 to 255 are
    /// reserved by IANA).
    #[error("SPI {0} is reserved (RFC 4303: 0 to 255)")]
    ReservedSpi(u32),
    /// An all-zero initiator cookie: it names no ISAKMP SA (the zero responder cookie is
    /// what marks a first message).
    #[error("initiator cookie is zero")]
    ZeroInitiatorCookie,
    /// A body whose length is outside the bounds its RFC sets (a nonce outside RFC 2409 §5's
    /// 8 to 256 bytes).
    #[error("{field} of {length} bytes (allowed: {min} to {max})")]
    LengthBounds {
        /// The field, in the RFC's words.
        field: &'static str,
        /// Bytes received.
        length: usize,
        /// Smallest length allowed.
        min: usize,
        /// Largest length allowed.
        max: usize,
    },
}

impl From<&ParseErrorKind> for NotifyType {
    /// What to tell the peer about a malformed message (RFC 2408 §5). Whether to send it at
    /// all (unauthenticated phase-1 messages usually earn silence) is the engine's decision.
    fn from(kind: &ParseErrorKind) -> Self {
        match kind {
            ParseErrorKind::BadMajorVersion(_) => NotifyType::InvalidMajorVersion,
            ParseErrorKind::BadMinorVersion(_) => NotifyType::InvalidMinorVersion,
            ParseErrorKind::LengthMismatch { .. } => NotifyType::UnequalPayloadLengths,
            ParseErrorKind::MisplacedPayload(_) => NotifyType::InvalidPayloadType,
            ParseErrorKind::TransformCountMismatch { .. } => NotifyType::BadProposalSyntax,
            ParseErrorKind::AttributeFormat(_) => NotifyType::AttributesNotSupported,
            ParseErrorKind::UnsupportedDoi(_) => NotifyType::DoiNotSupported,
            ParseErrorKind::UnsupportedSituation(_) => NotifyType::SituationNotSupported,
            ParseErrorKind::InvalidIdentification(_) => NotifyType::InvalidIdInformation,
            ParseErrorKind::ReservedSpi(_) => NotifyType::InvalidSpi,
            ParseErrorKind::ZeroInitiatorCookie => NotifyType::InvalidCookie,
            ParseErrorKind::MissingData(_)
            | ParseErrorKind::LengthOutOfRange(_)
            | ParseErrorKind::TrailingData(_)
            | ParseErrorKind::InvalidLength(_)
            | ParseErrorKind::LengthBounds { .. }
            | ParseErrorKind::TooMany(_) => NotifyType::PayloadMalformed,
        }
    }
}
