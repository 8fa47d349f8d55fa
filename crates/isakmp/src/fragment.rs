//! The Cisco/Microsoft IKEv1 fragment payload (payload type 132, no RFC; announced by the
//! FRAGMENTATION vendor ID). Layout after the generic header: fragment ID (2 bytes), fragment
//! number (1, starting at 1), flags (1; bit 0 = last fragment), data.
//!
//! Splitting and reassembly, with its bounds on fragment count and total size (security
//! pitfall 2), are the `fragmentation` module's; this one only reads one fragment.

use crate::error::ParseError;
use crate::reader::Reader;

/// The "last fragment" flag bit.
pub const FRAGMENT_FLAG_LAST: u8 = 0x01;

/// One IKE fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// Identifies the message being fragmented.
    pub id: u16,
    /// Position of this fragment, from 1.
    pub number: u8,
    /// Flags; see [`FRAGMENT_FLAG_LAST`].
    pub flags: u8,
    /// The fragment's share of the original message.
    pub data: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// Whether this is the last fragment.
    pub fn is_last(&self) -> bool {
        self.flags & FRAGMENT_FLAG_LAST != 0
    }

    /// Parses a fragment body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let id = r.u16("fragment ID")?;
        let number = r.u8("fragment number")?;
        let flags = r.u8("flags")?;
        Ok(Self { id, number, flags, data: r.rest() })
    }

    /// Appends the fragment body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.push(self.number);
        out.push(self.flags);
        out.extend_from_slice(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Context, ParseErrorKind};
    use crate::numbers::PayloadType;

    #[test]
    fn test_parse_emit() {
        let bytes = hex::decode("00010301aabb").unwrap();
        let f =
            Fragment::parse(&mut Reader::new(&bytes, 0, Context::Payload(PayloadType::Fragment))).unwrap();
        assert_eq!((f.id, f.number, f.is_last(), f.data), (1, 3, true, &bytes[4..]));
        let mut out = Vec::new();
        f.emit(&mut out);
        assert_eq!(out, bytes);
        let err = Fragment::parse(&mut Reader::new(&bytes[..3], 0, Context::Payload(PayloadType::Fragment)))
            .unwrap_err();
        assert_eq!((err.kind, err.offset), (ParseErrorKind::MissingData("flags"), 3));
    }
}
