//! The Certificate and Certificate Request payloads (RFC 2408 §3.9–3.10): an encoding byte and
//! opaque data. Certificates are checked by the engine's X.509 layer, not here.

use crate::error::ParseError;
use crate::numbers::CertificateEncoding;
use crate::reader::Reader;

/// A CERT payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate<'a> {
    /// The certificate's encoding.
    pub encoding: CertificateEncoding,
    /// The certificate bytes.
    pub data: &'a [u8],
}

/// A CR payload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest<'a> {
    /// The certificate type asked for.
    pub encoding: CertificateEncoding,
    /// The acceptable certificate authority (a DER DN for X.509), possibly empty.
    pub authority: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Parses a CERT body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let encoding = CertificateEncoding::from(r.u8("certificate encoding")?);
        Ok(Self { encoding, data: r.rest() })
    }

    /// Appends the CERT body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.into());
        out.extend_from_slice(self.data);
    }
}

impl<'a> CertificateRequest<'a> {
    /// Parses a CR body; `r` covers exactly the body.
    pub(crate) fn parse(r: &mut Reader<'a>) -> Result<Self, ParseError> {
        let encoding = CertificateEncoding::from(r.u8("certificate type")?);
        Ok(Self { encoding, authority: r.rest() })
    }

    /// Appends the CR body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.encoding.into());
        out.extend_from_slice(self.authority);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Context, ParseErrorKind};
    use crate::numbers::PayloadType;

    #[test]
    fn test_parse_emit() {
        let bytes = [4u8, 0x30, 0x82];
        let c = Certificate::parse(&mut Reader::new(&bytes, 0, Context::Payload(PayloadType::Certificate)))
            .unwrap();
        assert_eq!((c.encoding, c.data), (CertificateEncoding::X509Signature, &bytes[1..]));
        let mut out = Vec::new();
        c.emit(&mut out);
        assert_eq!(out, bytes);
        let cr = CertificateRequest::parse(&mut Reader::new(
            &bytes[..1],
            0,
            Context::Payload(PayloadType::CertificateRequest),
        ))
        .unwrap();
        assert!(cr.authority.is_empty());
        let err = Certificate::parse(&mut Reader::new(&[], 9, Context::Payload(PayloadType::Certificate)))
            .unwrap_err();
        assert_eq!((err.kind, err.offset), (ParseErrorKind::MissingData("certificate encoding"), 9));
    }
}
