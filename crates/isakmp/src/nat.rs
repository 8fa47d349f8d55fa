//! NAT traversal payloads: NAT-D (RFC 3947 §3.2) and NAT-OA (RFC 3947 §5.1), under their RFC
//! numbers (20, 21) or the numbers of draft-ietf-ipsec-nat-t-ike-02/03 (130, 131), which older
//! peers still send (notes pitfall 10).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{ParseError, ParseErrorKind};
use crate::numbers::{IdType, PayloadType};
use crate::reader::Reader;

/// A NAT-D payload: the hash of an address and port, compared to detect a NAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatDiscovery<'a> {
    /// Whether it travels under the draft payload number (130) instead of 20.
    pub draft: bool,
    /// HASH(CKY-I | CKY-R | IP | Port) with the negotiated hash.
    pub hash: &'a [u8],
}

impl NatDiscovery<'_> {
    /// The payload type this NAT-D is sent as.
    pub fn payload_type(&self) -> PayloadType {
        if self.draft {
            PayloadType::NatDiscoveryDraft
        } else {
            PayloadType::NatDiscovery
        }
    }
}

/// A NAT-OA payload: the original address of a peer behind a NAT, for transport mode
/// checksum fix-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatOriginalAddress {
    /// Whether it travels under the draft payload number (131) instead of 21.
    pub draft: bool,
    /// The original address (ID_IPV4_ADDR or ID_IPV6_ADDR on the wire).
    pub address: IpAddr,
}

impl NatOriginalAddress {
    /// The payload type this NAT-OA is sent as.
    pub fn payload_type(&self) -> PayloadType {
        if self.draft {
            PayloadType::NatOriginalAddressDraft
        } else {
            PayloadType::NatOriginalAddress
        }
    }

    /// Parses a NAT-OA body; `r` covers exactly the body. Reserved bytes are ignored.
    pub(crate) fn parse(r: &mut Reader<'_>, draft: bool) -> Result<Self, ParseError> {
        let type_offset = r.offset();
        let id_type = IdType::from(r.u8("ID type")?);
        let _reserved = r.array::<3>("reserved")?;
        let data_offset = r.offset();
        let data = r.rest();
        let address = match id_type {
            IdType::Ipv4Addr => <[u8; 4]>::try_from(data).map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            IdType::Ipv6Addr => <[u8; 16]>::try_from(data).map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            _ => {
                return Err(r.error_at(type_offset, ParseErrorKind::InvalidIdentification("NAT-OA ID type")));
            }
        }
        .map_err(|_| r.error_at(data_offset, ParseErrorKind::InvalidLength("NAT-OA address")))?;
        Ok(Self { draft, address })
    }

    /// Appends the NAT-OA body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self.address {
            IpAddr::V4(a) => {
                out.extend_from_slice(&[IdType::Ipv4Addr.into(), 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.extend_from_slice(&[IdType::Ipv6Addr.into(), 0, 0, 0]);
                out.extend_from_slice(&a.octets());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;

    fn parse(bytes: &[u8]) -> Result<NatOriginalAddress, ParseError> {
        NatOriginalAddress::parse(
            &mut Reader::new(bytes, 0, Context::Payload(PayloadType::NatOriginalAddress)),
            false,
        )
    }

    #[test]
    fn test_nat_oa() {
        let bytes = hex::decode("010000000a000001").unwrap();
        let oa = parse(&bytes).unwrap();
        assert_eq!(oa.address, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let mut out = Vec::new();
        oa.emit(&mut out);
        assert_eq!(out, bytes);
        let v6 = hex::decode("0500000020010db8000000000000000000000001").unwrap();
        assert!(parse(&v6).unwrap().address.is_ipv6());
        assert_eq!(parse(&bytes[..7]).unwrap_err().kind, ParseErrorKind::InvalidLength("NAT-OA address"));
        assert_eq!(parse(&bytes[..3]).unwrap_err().kind, ParseErrorKind::MissingData("reserved"));
        let err = parse(&hex::decode("020000000a000001").unwrap()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::InvalidIdentification("NAT-OA ID type"));
    }

    #[test]
    fn test_payload_types() {
        let d = NatDiscovery { draft: true, hash: &[] };
        assert_eq!(d.payload_type(), PayloadType::NatDiscoveryDraft);
        let oa = NatOriginalAddress { draft: false, address: IpAddr::V4(Ipv4Addr::LOCALHOST) };
        assert_eq!(oa.payload_type(), PayloadType::NatOriginalAddress);
    }
}
