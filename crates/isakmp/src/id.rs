//! The Identification payload: RFC 2408 §3.8 with the IPsec DOI layout of RFC 2407 §4.6.2
//! (ID type, IP protocol, port, data).
//!
//! In phase 1 the protocol/port pair is 0/0 or 17/500 by RFC 2407 §4.6.2, but NAT-T peers send
//! 17/4500 and some 17/0 (notes pitfall 4): every pair is accepted here and HASH_I/HASH_R must
//! use the bytes as received, which [`Identification::emit`] reproduces exactly. In quick mode
//! the IDs are the proxy identities (RFC 2409 §5.5).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ParseError, ParseErrorKind};
use crate::numbers::IdType;
use crate::reader::Reader;

/// An ID payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification<'a> {
    /// IP protocol (0 = any, 17 = UDP).
    pub protocol: u8,
    /// Port (0 = any).
    pub port: u16,
    /// The identity; its variant fixes the ID type.
    pub identity: Identity<'a>,
}

/// The identity carried in an ID payload, typed by its ID type (RFC 2407 §4.6.2.1).
///
/// Names and opaque identities borrow the datagram; they are not checked for UTF-8 or DER
/// validity, which is the policy layer's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<'a> {
    /// ID_IPV4_ADDR.
    Ipv4Addr(Ipv4Addr),
    /// ID_FQDN.
    Fqdn(&'a [u8]),
    /// ID_USER_FQDN.
    UserFqdn(&'a [u8]),
    /// ID_IPV4_ADDR_SUBNET.
    Ipv4Subnet {
        /// Network address.
        address: Ipv4Addr,
        /// Netmask (not checked for contiguity).
        mask: Ipv4Addr,
    },
    /// ID_IPV6_ADDR.
    Ipv6Addr(Ipv6Addr),
    /// ID_IPV6_ADDR_SUBNET.
    Ipv6Subnet {
        /// Network address.
        address: Ipv6Addr,
        /// Netmask.
        mask: Ipv6Addr,
    },
    /// ID_IPV4_ADDR_RANGE.
    Ipv4Range {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
    },
    /// ID_IPV6_ADDR_RANGE.
    Ipv6Range {
        /// First address.
        start: Ipv6Addr,
        /// Last address.
        end: Ipv6Addr,
    },
    /// ID_DER_ASN1_DN.
    DerAsn1Dn(&'a [u8]),
    /// ID_DER_ASN1_GN.
    DerAsn1Gn(&'a [u8]),
    /// ID_KEY_ID.
    KeyId(&'a [u8]),
    /// An ID type without a variant above (never one that has one).
    Unknown {
        /// The ID type number.
        id_type: u8,
        /// The raw data.
        data: &'a [u8],
    },
}

impl<'a> Identity<'a> {
    /// The ID type this identity is sent as.
    pub fn id_type(&self) -> IdType {
        match self {
            Self::Ipv4Addr(_) => IdType::Ipv4Addr,
            Self::Fqdn(_) => IdType::Fqdn,
            Self::UserFqdn(_) => IdType::UserFqdn,
            Self::Ipv4Subnet { .. } => IdType::Ipv4AddrSubnet,
            Self::Ipv6Addr(_) => IdType::Ipv6Addr,
            Self::Ipv6Subnet { .. } => IdType::Ipv6AddrSubnet,
            Self::Ipv4Range { .. } => IdType::Ipv4AddrRange,
            Self::Ipv6Range { .. } => IdType::Ipv6AddrRange,
            Self::DerAsn1Dn(_) => IdType::DerAsn1Dn,
            Self::DerAsn1Gn(_) => IdType::DerAsn1Gn,
            Self::KeyId(_) => IdType::KeyId,
            Self::Unknown { id_type, .. } => IdType::from(*id_type),
        }
    }

    /// Reads the identity data for `id_type`; `r` covers exactly the data.
    pub(crate) fn parse(id_type: IdType, r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let offset = r.offset();
        let data = r.rest();
        let bad = |what| ParseError {
            context: r.context(),
            offset,
            kind: ParseErrorKind::InvalidIdentification(what),
        };
        let v4 = |b: &[u8]| <[u8; 4]>::try_from(b).map(Ipv4Addr::from);
        let v6 = |b: &[u8]| <[u8; 16]>::try_from(b).map(Ipv6Addr::from);
        let pair4 = || -> Option<(Ipv4Addr, Ipv4Addr)> {
            let (a, b) = (data.get(..4)?, data.get(4..)?);
            Some((v4(a).ok()?, v4(b).ok()?))
        };
        let pair6 = || -> Option<(Ipv6Addr, Ipv6Addr)> {
            let (a, b) = (data.get(..16)?, data.get(16..)?);
            Some((v6(a).ok()?, v6(b).ok()?))
        };
        Ok(match id_type {
            IdType::Ipv4Addr => Self::Ipv4Addr(v4(data).map_err(|_| bad("ID_IPV4_ADDR must be 4 bytes"))?),
            IdType::Ipv6Addr => Self::Ipv6Addr(v6(data).map_err(|_| bad("ID_IPV6_ADDR must be 16 bytes"))?),
            IdType::Ipv4AddrSubnet => {
                let (address, mask) = pair4().ok_or_else(|| bad("ID_IPV4_ADDR_SUBNET must be 8 bytes"))?;
                Self::Ipv4Subnet { address, mask }
            }
            IdType::Ipv4AddrRange => {
                let (start, end) = pair4().ok_or_else(|| bad("ID_IPV4_ADDR_RANGE must be 8 bytes"))?;
                Self::Ipv4Range { start, end }
            }
            IdType::Ipv6AddrSubnet => {
                let (address, mask) = pair6().ok_or_else(|| bad("ID_IPV6_ADDR_SUBNET must be 32 bytes"))?;
                Self::Ipv6Subnet { address, mask }
            }
            IdType::Ipv6AddrRange => {
                let (start, end) = pair6().ok_or_else(|| bad("ID_IPV6_ADDR_RANGE must be 32 bytes"))?;
                Self::Ipv6Range { start, end }
            }
            IdType::Fqdn => Self::Fqdn(data),
            IdType::UserFqdn => Self::UserFqdn(data),
            IdType::DerAsn1Dn => Self::DerAsn1Dn(data),
            IdType::DerAsn1Gn => Self::DerAsn1Gn(data),
            IdType::KeyId => Self::KeyId(data),
            IdType::Unknown(id_type) => Self::Unknown { id_type, data },
        })
    }

    /// Appends the identity data (without type, protocol and port).
    pub fn emit_data(&self, out: &mut Vec<u8>) {
        match self {
            Self::Ipv4Addr(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv6Addr(a) => out.extend_from_slice(&a.octets()),
            Self::Ipv4Subnet { address: a, mask: b } | Self::Ipv4Range { start: a, end: b } => {
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            Self::Ipv6Subnet { address: a, mask: b } | Self::Ipv6Range { start: a, end: b } => {
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            Self::Fqdn(d) | Self::UserFqdn(d) | Self::DerAsn1Dn(d) | Self::DerAsn1Gn(d) | Self::KeyId(d) => {
                out.extend_from_slice(d)
            }
            Self::Unknown { data, .. } => out.extend_from_slice(data),
        }
    }
}

impl<'a> Identification<'a> {
    /// Parses an ID body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let id_type = IdType::from(r.u8("ID type")?);
        let protocol = r.u8("protocol ID")?;
        let port = r.u16("port")?;
        let identity = Identity::parse(id_type, r)?;
        Ok(Self { protocol, port, identity })
    }

    /// Parses a stored ID body (the `IDii_b` an aggressive-mode responder keeps from AM1
    /// until the certificate in AM3 can be matched against it).
    pub fn parse_body(body: &'a [u8]) -> Result<Self, ParseError> {
        let mut r =
            Reader::new(body, 0, crate::error::Context::Payload(crate::numbers::PayloadType::Identification));
        Self::parse(&mut r)
    }

    /// Appends the ID body (`IDii_b` / `IDir_b` of RFC 2409 §5 when this is a phase-1 ID).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.identity.id_type().into());
        out.push(self.protocol);
        out.extend_from_slice(&self.port.to_be_bytes());
        self.identity.emit_data(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;
    use crate::numbers::PayloadType;

    fn parse(bytes: &[u8]) -> Result<Identification<'_>, ParseError> {
        Identification::parse(&mut Reader::new(bytes, 100, Context::Payload(PayloadType::Identification)))
    }

    fn round_trip(hex_body: &str) -> Identification<'static> {
        let bytes: &'static [u8] = hex::decode(hex_body).unwrap().leak();
        let id = parse(bytes).unwrap();
        let mut out = Vec::new();
        id.emit(&mut out);
        assert_eq!(out, bytes);
        id
    }

    #[test]
    fn test_phase1_proto_port() {
        for (hex_body, protocol, port) in
            [("01000000c0000201", 0, 0), ("011101f4c0000201", 17, 500), ("01111194c0000201", 17, 4500)]
        {
            let id = round_trip(hex_body);
            assert_eq!((id.protocol, id.port), (protocol, port));
            assert_eq!(id.identity, Identity::Ipv4Addr(Ipv4Addr::new(192, 0, 2, 1)));
        }
    }

    #[test]
    fn test_types() {
        let id = round_trip("040000000a010100ffffff00");
        assert_eq!(
            id.identity,
            Identity::Ipv4Subnet {
                address: Ipv4Addr::new(10, 1, 1, 0),
                mask: Ipv4Addr::new(255, 255, 255, 0)
            }
        );
        let id = round_trip("021101f4667761");
        assert_eq!(id.identity, Identity::Fqdn(b"fwa"));
        assert_eq!(round_trip("0300000061406200").identity, Identity::UserFqdn(b"a@b\0"));
        assert_eq!(round_trip("0b000000").identity, Identity::KeyId(&[]));
        assert_eq!(round_trip("0900000030").identity, Identity::DerAsn1Dn(&[0x30]));
        assert_eq!(round_trip("0c000000aa").identity, Identity::Unknown { id_type: 12, data: &[0xaa] });
        let v6 = "20010db8000000000000000000000001";
        assert_eq!(round_trip(&format!("05000000{v6}")).identity.id_type(), IdType::Ipv6Addr);
        assert_eq!(round_trip(&format!("06000000{v6}{v6}")).identity.id_type(), IdType::Ipv6AddrSubnet);
        assert_eq!(round_trip(&format!("08000000{v6}{v6}")).identity.id_type(), IdType::Ipv6AddrRange);
        assert_eq!(round_trip("07000000010101010202020f").identity.id_type(), IdType::Ipv4AddrRange);
    }

    #[test]
    fn test_bad_lengths() {
        for bad in
            ["01000000c00002", "01000000c000020101", "040000000a010100", "05000000c0000201", "010000", ""]
        {
            let bytes = hex::decode(bad).unwrap();
            let err = parse(&bytes).unwrap_err();
            assert!(err.offset >= 100, "{bad}: {err}");
        }
        let err = parse(&hex::decode("01000000c00002").unwrap()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::InvalidIdentification("ID_IPV4_ADDR must be 4 bytes"));
        assert_eq!((err.offset, err.notify_type()), (104, crate::NotifyType::InvalidIdInformation));
    }
}
