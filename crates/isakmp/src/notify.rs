//! The Notification and Delete payloads (RFC 2408 §3.14–3.15, RFC 2407 §4.6.3–4.6.4), with the
//! notification data of RFC 2407 §4.6.3 (RESPONDER-LIFETIME, REPLAY-STATUS, INITIAL-CONTACT)
//! and RFC 3706 §5 (DPD sequence numbers).

use crate::error::{ParseError, ParseErrorKind};
use crate::header::Cookie;
use crate::numbers::{Doi, NotifyType, ProtocolId};
use crate::reader::Reader;
use crate::sa::Spi;

/// At most this many SPIs in one Delete payload (a bound on allocation that no real delete
/// comes near).
pub const MAX_DELETE_SPIS: usize = 1024;

/// A Notification payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    /// Domain of interpretation (1 in practice, 0 from a few implementations).
    pub doi: Doi,
    /// Protocol the SPI belongs to.
    pub protocol: ProtocolId,
    /// SPI as sent: empty, 4 bytes (IPsec SA), or 16 (the two cookies, for example with
    /// INITIAL-CONTACT and DPD).
    pub spi: &'a [u8],
    /// The notification.
    pub notify_type: NotifyType,
    /// Notification data.
    pub data: &'a [u8],
}

impl<'a> Notification<'a> {
    /// Parses a Notification body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let doi = Doi::from(r.u32("DOI")?);
        let protocol = ProtocolId::from(r.u8("protocol ID")?);
        let spi_size = r.u8("SPI size")?;
        let notify_type = NotifyType::from(r.u16("notify message type")?);
        let spi = r.take(usize::from(spi_size), "SPI")?;
        let data = r.rest();
        Ok(Self { doi, protocol, spi, notify_type, data })
    }

    /// Appends the Notification body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::from(self.doi).to_be_bytes());
        out.push(self.protocol.into());
        out.push(u8::try_from(self.spi.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&u16::from(self.notify_type).to_be_bytes());
        out.extend_from_slice(self.spi);
        out.extend_from_slice(self.data);
    }

    /// The SPI as an IPsec SPI, if it is 4 bytes long.
    pub fn ipsec_spi(&self) -> Option<Spi> {
        Spi::from_slice(self.spi)
    }

    /// The SPI as the ISAKMP SA's cookie pair, if it is 16 bytes long.
    pub fn cookies(&self) -> Option<(Cookie, Cookie)> {
        let i = <[u8; 8]>::try_from(self.spi.get(..8)?).ok()?;
        let r = <[u8; 8]>::try_from(self.spi.get(8..)?).ok()?;
        Some((Cookie(i), Cookie(r)))
    }

    /// The sequence number of an R-U-THERE / R-U-THERE-ACK (RFC 3706 §5), if this is one and
    /// its data is 4 bytes.
    pub fn dpd_sequence(&self) -> Option<u32> {
        match self.notify_type {
            NotifyType::DpdRUThere | NotifyType::DpdRUThereAck => {
                <[u8; 4]>::try_from(self.data).ok().map(u32::from_be_bytes)
            }
            _ => None,
        }
    }
}

/// A Delete payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete<'a> {
    /// Domain of interpretation.
    pub doi: Doi,
    /// Protocol of the deleted SAs.
    pub protocol: ProtocolId,
    /// The size of each SPI: 16 for an ISAKMP SA, 4 for AH/ESP (any other size for those is
    /// refused when parsed). Kept separately so a delete with no SPIs round-trips.
    pub spi_size: u8,
    /// The SPIs, each `spi_size` bytes.
    pub spis: Vec<&'a [u8]>,
}

impl<'a> Delete<'a> {
    /// Parses a Delete body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let doi = Doi::from(r.u32("DOI")?);
        let protocol = ProtocolId::from(r.u8("protocol ID")?);
        let size_offset = r.offset();
        let spi_size = r.u8("SPI size")?;
        let count_offset = r.offset();
        let count = usize::from(r.u16("number of SPIs")?);
        if count > MAX_DELETE_SPIS {
            return Err(r.error_at(count_offset, ParseErrorKind::TooMany("SPIs")));
        }
        if spi_size == 0 && count > 0 {
            return Err(r.error_at(count_offset, ParseErrorKind::InvalidLength("SPIs of size 0")));
        }
        // RFC 2408 §3.15 and RFC 2407 §4.6.3: an ISAKMP SA is named by its two cookies, an AH
        // or ESP SA by its 4-byte SPI. Any other size cannot name one of ours.
        let expected = match protocol {
            ProtocolId::Isakmp => Some(16),
            ProtocolId::Ah | ProtocolId::Esp => Some(4),
            _ => None,
        };
        if let Some(size) = expected.filter(|size| count > 0 && *size != spi_size) {
            let kind = ParseErrorKind::LengthBounds {
                field: "Delete SPI",
                length: usize::from(spi_size),
                min: usize::from(size),
                max: usize::from(size),
            };
            return Err(r.error_at(size_offset, kind));
        }
        // Checked before allocating: the SPIs must all be present.
        if count * usize::from(spi_size) > r.remaining() {
            return Err(r.error(ParseErrorKind::MissingData("SPIs")));
        }
        let mut spis = Vec::with_capacity(count);
        for _ in 0..count {
            spis.push(r.take(usize::from(spi_size), "SPI")?);
        }
        r.expect_empty("Delete payload")?;
        Ok(Self { doi, protocol, spi_size, spis })
    }

    /// Appends the Delete body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::from(self.doi).to_be_bytes());
        out.push(self.protocol.into());
        out.push(self.spi_size);
        out.extend_from_slice(&u16::try_from(self.spis.len()).unwrap_or(u16::MAX).to_be_bytes());
        self.spis.iter().for_each(|spi| out.extend_from_slice(spi));
    }

    /// The SPIs read as IPsec SPIs (those that are 4 bytes long).
    pub fn ipsec_spis(&self) -> impl Iterator<Item = Spi> + '_ {
        self.spis.iter().filter_map(|s| Spi::from_slice(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;
    use crate::numbers::PayloadType;

    fn reader(bytes: &[u8], t: PayloadType) -> Reader<'_> {
        Reader::new(bytes, 0, Context::Payload(t))
    }

    #[test]
    fn test_initial_contact() {
        // From MM5 of mm-psk-pfs.
        let bytes = hex::decode("00000001011060020126bed59fd4f70af42f82f957d1431e").unwrap();
        let n = Notification::parse(&mut reader(&bytes, PayloadType::Notification)).unwrap();
        assert_eq!(
            (n.doi, n.protocol, n.notify_type),
            (Doi::Ipsec, ProtocolId::Isakmp, NotifyType::InitialContact)
        );
        assert_eq!(n.cookies().unwrap().0.to_string(), "0126bed59fd4f70a");
        assert!(n.data.is_empty());
        let mut out = Vec::new();
        n.emit(&mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn test_dpd() {
        let bytes = hex::decode("0000000101108d280126bed59fd4f70af42f82f957d1431e0000002a").unwrap();
        let n = Notification::parse(&mut reader(&bytes, PayloadType::Notification)).unwrap();
        assert_eq!(n.dpd_sequence(), Some(42));
        let err = Notification::parse(&mut reader(&bytes[..20], PayloadType::Notification)).unwrap_err();
        assert_eq!((err.kind, err.offset), (ParseErrorKind::MissingData("SPI"), 8));
    }

    #[test]
    fn test_delete() {
        let bytes = hex::decode("00000001030400020102030405060708").unwrap();
        let d = Delete::parse(&mut reader(&bytes, PayloadType::Delete)).unwrap();
        assert_eq!(d.ipsec_spis().collect::<Vec<_>>(), vec![Spi(0x01020304), Spi(0x05060708)]);
        let mut out = Vec::new();
        d.emit(&mut out);
        assert_eq!(out, bytes);
        let parse =
            |b: &[u8]| Delete::parse(&mut reader(b, PayloadType::Delete)).map(|_| ()).unwrap_err().kind;
        assert_eq!(parse(&bytes[..15]), ParseErrorKind::MissingData("SPIs"));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(parse(&longer), ParseErrorKind::TrailingData("Delete payload"));
        assert_eq!(parse(&hex::decode("000000010300ffff").unwrap()), ParseErrorKind::TooMany("SPIs"));
        assert_eq!(
            parse(&hex::decode("0000000103000001").unwrap()),
            ParseErrorKind::InvalidLength("SPIs of size 0")
        );
    }

    #[test]
    fn delete_spi_size_must_fit_the_protocol() {
        // DOI 1, protocol ESP (3), SPI size 16, one SPI: the size of a cookie pair under ESP.
        let mut body = vec![0, 0, 0, 1, 3, 16, 0, 1];
        body.extend_from_slice(&[0xab; 16]);
        let err = Delete::parse(&mut reader(&body, PayloadType::Delete)).expect_err("refused");
        assert_eq!(err.offset, 5);
        assert_eq!(
            err.kind,
            ParseErrorKind::LengthBounds { field: "Delete SPI", length: 16, min: 4, max: 4 }
        );
        assert_eq!(err.kind.to_string(), "Delete SPI of 16 bytes (allowed: 4 to 4)");
        // ISAKMP (1) with a 4-byte SPI.
        let body = [0, 0, 0, 1, 1, 4, 0, 1, 1, 2, 3, 4];
        assert!(Delete::parse(&mut reader(&body, PayloadType::Delete)).is_err());
        // The right sizes parse.
        let body = [0, 0, 0, 1, 3, 4, 0, 1, 1, 2, 3, 4];
        let delete = Delete::parse(&mut reader(&body, PayloadType::Delete)).expect("ESP delete");
        assert_eq!(delete.spis, [&[1, 2, 3, 4][..]]);
        let mut body = vec![0, 0, 0, 1, 1, 16, 0, 1];
        body.extend_from_slice(&[7; 16]);
        assert!(Delete::parse(&mut reader(&body, PayloadType::Delete)).is_ok());
    }
}
