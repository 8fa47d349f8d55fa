//! The Security Association payload and its nested proposals and transforms: RFC 2408
//! §3.4–3.6, with the IPsec DOI's situation (RFC 2407 §4.6.1) and protocol and transform
//! numbers (RFC 2407 §4.4).
//!
//! Nesting: an SA body holds DOI, situation and proposal payloads; a proposal holds its SPI and
//! transform payloads; a transform holds attributes. Inside an SA, each proposal's
//! "next payload" is 2 (another proposal follows) or 0 (last); inside a proposal each
//! transform's is 3 or 0. The nested lists end where their container ends, and the next fields
//! must agree with that. Emission derives every next field and length, so callers never
//! compute one.

use core::fmt;

use crate::attribute::{
    parse_attributes, AhTransformId, Attribute, AttributeSpace, EspTransformId, IkeAttribute,
    IpCompTransformId, IpsecAttribute,
};
use crate::error::{Context, ParseError, ParseErrorKind};
use crate::numbers::{Doi, PayloadType, ProtocolId};
use crate::reader::{patch_u16_len, Reader};

/// SIT_IDENTITY_ONLY (RFC 2407 §4.6.1), the only situation keysteward negotiates.
pub const SIT_IDENTITY_ONLY: u32 = 0x01;
/// SIT_SECRECY: labelled situations are not supported.
const SIT_SECRECY: u32 = 0x02;
/// SIT_INTEGRITY: labelled situations are not supported.
const SIT_INTEGRITY: u32 = 0x04;

/// At most this many proposals in one SA payload (a bound on allocation; real offers hold a
/// handful, and strongSwan sends one per child proposal).
pub const MAX_PROPOSALS: usize = 64;
/// At most this many attributes in one transform (a phase-1 transform has about eight).
pub const MAX_ATTRIBUTES: usize = 64;

/// An IPsec SPI (RFC 2407 §4.4.1: 4 bytes for AH and ESP), as chosen by the receiver of the SA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Spi(pub u32);

impl Spi {
    /// Reads a 4-byte SPI field; `None` for any other size.
    pub fn from_slice(bytes: &[u8]) -> Option<Spi> {
        <[u8; 4]>::try_from(bytes).ok().map(|b| Spi(u32::from_be_bytes(b)))
    }

    /// The bytes as sent.
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }
}

impl fmt::Debug for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Spi({:08x})", self.0)
    }
}

/// The SA payload body (RFC 2408 §3.4) in the IPsec DOI.
///
/// The DOI is not stored: anything but the IPsec DOI is refused at parse time (its situation
/// has an unknown layout) and DOI 1 is always emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAssociation<'a> {
    /// The situation bitmask; [`SIT_IDENTITY_ONLY`] in practice.
    pub situation: u32,
    /// The proposals, in wire order. Consecutive proposals with the same number form one
    /// combined offer (AH and ESP together, RFC 2408 §4.2). May be empty on the wire; refusing
    /// an SA without proposals (BAD-PROPOSAL-SYNTAX) is the engine's decision.
    pub proposals: Vec<Proposal<'a>>,
}

impl<'a> SecurityAssociation<'a> {
    /// Parses an SA body. `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let doi_offset = r.offset();
        let doi = r.u32("DOI")?;
        if Doi::from(doi) != Doi::Ipsec {
            return Err(r.error_at(doi_offset, ParseErrorKind::UnsupportedDoi(doi)));
        }
        let situation_offset = r.offset();
        let situation = r.u32("situation")?;
        if situation & (SIT_SECRECY | SIT_INTEGRITY) != 0 {
            return Err(r.error_at(situation_offset, ParseErrorKind::UnsupportedSituation(situation)));
        }
        let mut proposals = Vec::new();
        for_each_nested(r, PayloadType::Proposal, MAX_PROPOSALS, "proposals", |body| {
            proposals.push(Proposal::parse(body)?);
            Ok(())
        })?;
        Ok(Self { situation, proposals })
    }

    /// Appends the SA body (without the generic payload header).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::from(Doi::Ipsec).to_be_bytes());
        out.extend_from_slice(&self.situation.to_be_bytes());
        emit_nested(&self.proposals, PayloadType::Proposal, out, |p, out| p.emit(out));
    }
}

/// A proposal (RFC 2408 §3.5): one protocol, its SPI, and alternative transforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal<'a> {
    /// Proposal number.
    pub number: u8,
    /// The protocol this proposal negotiates; it decides the transform ID and attribute spaces.
    pub protocol: ProtocolId,
    /// The SPI as sent: empty in phase 1, 4 bytes for AH/ESP, 2 for IPCOMP's CPI.
    pub spi: &'a [u8],
    /// The transforms, alternatives in order of preference.
    pub transforms: Vec<Transform<'a>>,
}

impl<'a> Proposal<'a> {
    fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let number = r.u8("proposal number")?;
        let protocol = ProtocolId::from(r.u8("protocol ID")?);
        let spi_size = r.u8("SPI size")?;
        let count_offset = r.offset();
        let announced = r.u8("number of transforms")?;
        let spi_offset = r.offset();
        let spi = r.take(usize::from(spi_size), "SPI")?;
        if matches!(protocol, ProtocolId::Ah | ProtocolId::Esp) {
            // RFC 2407 §4.4.1: 4 bytes; RFC 4303 §2.1: 0 to 255 are not SPIs.
            let value = Spi::from_slice(spi).ok_or_else(|| {
                r.error_at(spi_offset, ParseErrorKind::InvalidLength("AH and ESP SPIs are 4 bytes"))
            })?;
            if value.0 < 256 {
                return Err(r.error_at(spi_offset, ParseErrorKind::ReservedSpi(value.0)));
            }
        }
        let space = match protocol {
            ProtocolId::Isakmp => AttributeSpace::Ike,
            ProtocolId::Ah | ProtocolId::Esp | ProtocolId::IpComp => AttributeSpace::Ipsec,
            _ => AttributeSpace::Other,
        };
        let mut transforms = Vec::new();
        for_each_nested(r, PayloadType::Transform, usize::from(u8::MAX), "transforms", |body| {
            transforms.push(Transform::parse(body, space)?);
            Ok(())
        })?;
        if transforms.len() != usize::from(announced) {
            return Err(r.error_at(
                count_offset,
                ParseErrorKind::TransformCountMismatch { announced, found: transforms.len() },
            ));
        }
        Ok(Self { number, protocol, spi, transforms })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.number);
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        out.push(u8::try_from(self.transforms.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.spi);
        emit_nested(&self.transforms, PayloadType::Transform, out, |t, out| t.emit(out));
    }

    /// The SPI as an IPsec SPI, if it is 4 bytes long.
    pub fn ipsec_spi(&self) -> Option<Spi> {
        Spi::from_slice(self.spi)
    }
}

/// A transform (RFC 2408 §3.6): one algorithm choice with its attributes.
///
/// A transform without attributes is valid (strongSwan sends one in its default proposals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform<'a> {
    /// Transform number.
    pub number: u8,
    /// Transform ID in the proposal's protocol space ([`crate::KEY_IKE`], [`EspTransformId`]…).
    pub transform_id: u8,
    /// The attributes, raw and in wire order.
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> Transform<'a> {
    fn parse(r: &mut Reader<'a>, space: AttributeSpace) -> Result<Self, ParseError> {
        let number = r.u8("transform number")?;
        let transform_id = r.u8("transform ID")?;
        let _reserved = r.u16("reserved")?;
        let attributes = parse_attributes(r, space, MAX_ATTRIBUTES)?;
        Ok(Self { number, transform_id, attributes })
    }

    fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.number);
        out.push(self.transform_id);
        out.extend_from_slice(&[0, 0]);
        self.attributes.iter().for_each(|a| a.emit(out));
    }

    /// The transform ID read as an ESP cipher.
    pub fn esp_transform_id(&self) -> EspTransformId {
        self.transform_id.into()
    }

    /// The transform ID read as an AH algorithm.
    pub fn ah_transform_id(&self) -> AhTransformId {
        self.transform_id.into()
    }

    /// The transform ID read as an IPCOMP algorithm.
    pub fn ipcomp_transform_id(&self) -> IpCompTransformId {
        self.transform_id.into()
    }

    /// The attributes read as phase-1 attributes.
    pub fn ike_attributes(&self) -> impl Iterator<Item = IkeAttribute<'a>> + '_ {
        self.attributes.iter().map(Attribute::ike)
    }

    /// The attributes read as IPsec DOI attributes.
    pub fn ipsec_attributes(&self) -> impl Iterator<Item = IpsecAttribute<'a>> + '_ {
        self.attributes.iter().map(Attribute::ipsec)
    }
}

/// Walks a nested list of `kind` payloads filling `r`, calling `each` with a reader over each
/// body. Each generic header's next field must be `kind` when another follows and 0 on the
/// last one.
fn for_each_nested<'a>(
    r: &mut Reader<'a>,
    kind: PayloadType,
    max: usize,
    what: &'static str,
    mut each: impl FnMut(&mut Reader<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let context = Context::Payload(kind);
    // Errors in a nested generic header name the nested kind, not the container.
    let error = |offset, kind| ParseError { context, offset, kind };
    let with_context = |e: ParseError| ParseError { context, ..e };
    let mut count = 0usize;
    while !r.is_empty() {
        if count == max {
            return Err(r.error(ParseErrorKind::TooMany(what)));
        }
        count += 1;
        let start = r.offset();
        let next = PayloadType::from(r.u8("next payload").map_err(with_context)?);
        let _reserved = r.u8("reserved").map_err(with_context)?;
        let length = usize::from(r.u16("payload length").map_err(with_context)?);
        let body_len = match length.checked_sub(4) {
            Some(len) if len <= r.remaining() => len,
            _ => return Err(error(start + 2, ParseErrorKind::LengthOutOfRange("payload length"))),
        };
        let mut body = r.sub(body_len, context, "payload body")?;
        each(&mut body)?;
        body.expect_empty(what)?;
        let last = r.is_empty();
        match next {
            PayloadType::None if last => {}
            n if n == kind && !last => {}
            PayloadType::None => return Err(error(start, ParseErrorKind::TrailingData(what))),
            n if n == kind => return Err(error(start, ParseErrorKind::MissingData(what))),
            other => return Err(error(start, ParseErrorKind::MisplacedPayload(other))),
        }
    }
    Ok(())
}

/// Emits `items` as a nested list of `kind` payloads, deriving next fields and lengths.
fn emit_nested<T>(items: &[T], kind: PayloadType, out: &mut Vec<u8>, mut emit: impl FnMut(&T, &mut Vec<u8>)) {
    for (i, item) in items.iter().enumerate() {
        let next = if i + 1 == items.len() { PayloadType::None } else { kind };
        let start = out.len();
        out.extend_from_slice(&[next.into(), 0, 0xff, 0xff]);
        emit(item, out);
        patch_u16_len(out, start + 2, start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{EncapsulationMode, IpsecAttribute};

    fn parse(bytes: &[u8]) -> Result<SecurityAssociation<'_>, ParseError> {
        let mut r = Reader::new(bytes, 0, Context::Payload(PayloadType::SecurityAssociation));
        SecurityAssociation::parse(&mut r)
    }

    fn emit(sa: &SecurityAssociation<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        sa.emit(&mut out);
        out
    }

    // sai_b and qm1_sa_b of mm-psk-pfs.
    const PHASE1: &str = "00000001000000010000002c01010001000000240101000080010007800e0080800200048004000e80030001800b0001800c3de0";
    const QUICK: &str = "00000001000000010000002c01030401a4cb1e3c00000020010c000080060080800500058003000e800400038001000180020f78";

    #[test]
    fn test_ipsec_spis_are_4_bytes_and_not_reserved() {
        let bytes = hex::decode(QUICK).unwrap();
        // The ESP proposal's SPI is at offset 16 (DOI, situation, proposal header, 4 bytes).
        assert_eq!(&bytes[16..20], [0xa4, 0xcb, 0x1e, 0x3c]);
        for (spi, refused) in [(0u32, true), (1, true), (255, true), (256, false), (u32::MAX, false)] {
            let mut b = bytes.clone();
            b[16..20].copy_from_slice(&spi.to_be_bytes());
            match parse(&b) {
                Ok(sa) => assert!(!refused && sa.proposals[0].ipsec_spi() == Some(Spi(spi))),
                Err(e) => {
                    assert!(refused, "SPI {spi}: {e}");
                    assert_eq!((e.offset, e.kind), (16, ParseErrorKind::ReservedSpi(spi)));
                    assert_eq!(e.notify_type(), crate::NotifyType::InvalidSpi);
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "SPI {spi} is reserved (RFC 4303: 0 to 255) in PROPOSAL payload at offset 16"
                        )
                    );
                }
            }
        }
        // A 2-byte SPI (IPComp's CPI size) on ESP: refused, naming the field.
        let mut sa = parse(&bytes).unwrap();
        sa.proposals[0].spi = &[1, 2];
        let err = parse(&emit(&sa)).unwrap_err();
        assert_eq!(
            (err.offset, err.kind),
            (16, ParseErrorKind::InvalidLength("AH and ESP SPIs are 4 bytes"))
        );
        // Phase 1 keeps its empty (or any) SPI.
        assert!(parse(&hex::decode(PHASE1).unwrap()).is_ok());
    }

    #[test]
    fn test_parse_phase1() {
        let bytes = hex::decode(PHASE1).unwrap();
        let sa = parse(&bytes).unwrap();
        assert_eq!(sa.situation, SIT_IDENTITY_ONLY);
        assert_eq!(sa.proposals.len(), 1);
        let p = &sa.proposals[0];
        assert_eq!((p.number, p.protocol, p.spi), (1, ProtocolId::Isakmp, &[][..]));
        assert_eq!(p.transforms[0].transform_id, crate::KEY_IKE);
        assert_eq!(p.transforms[0].attributes.len(), 7);
        assert_eq!(emit(&sa), bytes);
    }

    #[test]
    fn test_parse_quick_mode() {
        let bytes = hex::decode(QUICK).unwrap();
        let sa = parse(&bytes).unwrap();
        let p = &sa.proposals[0];
        assert_eq!(p.protocol, ProtocolId::Esp);
        assert_eq!(p.ipsec_spi(), Some(Spi(0xa4cb1e3c)));
        let t = &p.transforms[0];
        assert_eq!(t.esp_transform_id(), EspTransformId::AesCbc);
        assert!(t
            .ipsec_attributes()
            .any(|a| a == IpsecAttribute::EncapsulationMode(EncapsulationMode::UdpTunnel)));
        assert_eq!(emit(&sa), bytes);
    }

    #[test]
    fn test_transform_without_attributes() {
        let sa = SecurityAssociation {
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Esp,
                spi: &[1, 2, 3, 4],
                transforms: vec![
                    Transform { number: 1, transform_id: 12, attributes: vec![] },
                    Transform { number: 2, transform_id: 3, attributes: vec![] },
                ],
            }],
        };
        let bytes = emit(&sa);
        assert_eq!(parse(&bytes).unwrap(), sa);
    }

    #[test]
    fn test_bad_lengths() {
        let good = hex::decode(PHASE1).unwrap();
        // Proposal length one byte too long.
        let mut b = good.clone();
        b[11] += 1;
        let err = parse(&b).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::LengthOutOfRange("payload length"));
        assert_eq!((err.context, err.offset), (Context::Payload(PayloadType::Proposal), 10));
        // Proposal length below its header.
        b = good.clone();
        b[11] = 3;
        assert_eq!(parse(&b).unwrap_err().kind, ParseErrorKind::LengthOutOfRange("payload length"));
        // Transform length one byte short: the proposal then has trailing bytes.
        b = good.clone();
        b[19] -= 1;
        let err = parse(&b).unwrap_err();
        assert_eq!(err.context, Context::Payload(PayloadType::Transform));
        // Transform count wrong.
        b = good.clone();
        b[15] = 2;
        let err = parse(&b).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::TransformCountMismatch { announced: 2, found: 1 });
        assert_eq!(err.notify_type(), crate::NotifyType::BadProposalSyntax);
        // Proposal next payload says "another follows" but nothing does.
        b = good.clone();
        b[8] = 2;
        assert_eq!(parse(&b).unwrap_err().kind, ParseErrorKind::MissingData("proposals"));
        // A transform inside an SA where a proposal belongs.
        b = good.clone();
        b[8] = 3;
        assert_eq!(parse(&b).unwrap_err().kind, ParseErrorKind::MisplacedPayload(PayloadType::Transform));
        // Other DOI and labelled situations.
        b = good.clone();
        b[3] = 2;
        assert_eq!(parse(&b).unwrap_err().kind, ParseErrorKind::UnsupportedDoi(2));
        b = good.clone();
        b[7] = 3;
        assert_eq!(parse(&b).unwrap_err().kind, ParseErrorKind::UnsupportedSituation(3));
        // Truncations never panic and always fail.
        for len in 0..good.len() {
            if len == 8 {
                continue; // DOI and situation with no proposals is structurally valid
            }
            assert!(parse(&good[..len]).is_err(), "len {len}");
        }
    }
}
