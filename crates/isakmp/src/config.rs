//! The Attribute payload of the ISAKMP Configuration Method (draft-dukes-ike-mode-cfg-02 §3.2),
//! used by XAUTH (draft-ietf-ipsec-isakmp-xauth-06) and mode-config in Transaction exchanges.

use crate::attribute::{parse_attributes, Attribute, AttributeSpace};
use crate::error::ParseError;
use crate::macros::enum_with_unknown;
use crate::reader::Reader;

/// At most this many attributes in one Attribute payload (Cisco Unity replies carry a few
/// dozen at most).
pub const MAX_CONFIG_ATTRIBUTES: usize = 256;

enum_with_unknown! {
    /// The message type of an Attribute payload (draft-dukes-ike-mode-cfg §3.2).
    pub enum ConfigType(u8) {
        /// ISAKMP_CFG_REQUEST.
        Request = 1,
        /// ISAKMP_CFG_REPLY.
        Reply = 2,
        /// ISAKMP_CFG_SET.
        Set = 3,
        /// ISAKMP_CFG_ACK.
        Ack = 4,
    }
}

/// An Attribute payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAttributes<'a> {
    /// Request, reply, set or acknowledge.
    pub config_type: ConfigType,
    /// Identifier matching a reply to its request.
    pub identifier: u16,
    /// The attributes (XAUTH 16520–16529, mode-config 1–15, Unity 28672–28682, …), raw.
    pub attributes: Vec<Attribute<'a>>,
}

impl<'a> ConfigAttributes<'a> {
    /// Parses an Attribute body; `r` covers exactly the body. The reserved byte is ignored.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let config_type = ConfigType::from(r.u8("configuration type")?);
        let _reserved = r.u8("reserved")?;
        let identifier = r.u16("identifier")?;
        let attributes = parse_attributes(r, AttributeSpace::Other, MAX_CONFIG_ATTRIBUTES)?;
        Ok(Self { config_type, identifier, attributes })
    }

    /// Appends the Attribute body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.config_type.into());
        out.push(0);
        out.extend_from_slice(&self.identifier.to_be_bytes());
        self.attributes.iter().for_each(|a| a.emit(out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Context, ParseErrorKind};
    use crate::numbers::PayloadType;

    #[test]
    fn test_parse_emit() {
        // REQUEST id 7: XAUTH-TYPE (TV 0), XAUTH-USER-NAME (empty TLV).
        let bytes = hex::decode("01000007c088000040890000").unwrap();
        let c =
            ConfigAttributes::parse(&mut Reader::new(&bytes, 0, Context::Payload(PayloadType::Attribute)))
                .unwrap();
        assert_eq!((c.config_type, c.identifier, c.attributes.len()), (ConfigType::Request, 7, 2));
        let mut out = Vec::new();
        c.emit(&mut out);
        assert_eq!(out, bytes);
        let err = ConfigAttributes::parse(&mut Reader::new(
            &bytes[..3],
            0,
            Context::Payload(PayloadType::Attribute),
        ))
        .unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::MissingData("identifier"));
    }
}
