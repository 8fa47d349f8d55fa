//! When the configured certificates and CRLs run out: the `notAfter` of the certificates of
//! `certificate local-filename` and `ca-filename`, the `nextUpdate` of `crl-filename`. One
//! entry per configured file (the earliest date in a file with several); the metrics export
//! the days left per file and peer, and a CRL past its next update is a warning.

use serde::Serialize;
use x509_parser::prelude::{CertificateRevocationList, FromDer, X509Certificate};

/// A seconds-per-day constant for the days left.
const DAY: i64 = 86_400;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryKind {
    /// Certificates: the date is the earliest `notAfter`.
    Certificate,
    /// CRLs: the date is the earliest `nextUpdate`.
    Crl,
}

/// One configured certificate or CRL file and when it runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// The `ike peer` that names the file.
    pub peer: String,
    /// The command that names it: `local-filename`, `ca-filename` or `crl-filename`.
    pub setting: String,
    /// The file name as configured.
    pub file: String,
    /// Certificate or CRL.
    pub kind: ExpiryKind,
    /// The date, in seconds since the Unix epoch.
    pub unix: i64,
}

impl Expiry {
    /// Whole days from `now` (Unix seconds) until the date; negative once it has passed.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.unix - now).div_euclid(DAY)
    }

    /// The warning for a CRL past its next update at `now`, naming the peer and the file.
    pub fn stale_crl(&self, now: i64) -> Option<String> {
        (self.kind == ExpiryKind::Crl && self.unix <= now).then(|| {
            format!(
                "ike peer {}: crl-filename {}: the CRL's next update was {} day(s) ago; \
                 revocations since are not known: install a current CRL and reload",
                self.peer,
                self.file,
                (now - self.unix).div_euclid(DAY)
            )
        })
    }
}

/// The DER objects of a PEM or DER file.
fn ders(bytes: &[u8]) -> Vec<Vec<u8>> {
    let pems: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(bytes)
        .map_while(Result::ok)
        .map(|pem| pem.contents)
        .collect();
    if pems.is_empty() {
        vec![bytes.to_vec()]
    } else {
        pems
    }
}

/// The expiry of the file `file` that `setting` of peer `peer` names, from its bytes; `None`
/// when nothing in it parses or a CRL has no next update. `crl-filename` holds CRLs, the
/// other settings certificates.
pub fn read(peer: &str, setting: &str, file: &str, bytes: &[u8]) -> Option<Expiry> {
    let kind = if setting == "crl-filename" { ExpiryKind::Crl } else { ExpiryKind::Certificate };
    let dates = ders(bytes).into_iter().filter_map(|der| match kind {
        ExpiryKind::Certificate => {
            X509Certificate::from_der(&der).ok().map(|(_, c)| c.validity().not_after.timestamp())
        }
        ExpiryKind::Crl => CertificateRevocationList::from_der(&der)
            .ok()
            .and_then(|(_, crl)| crl.next_update().map(|t| t.timestamp())),
    });
    let unix = dates.min()?;
    Some(Expiry { peer: peer.to_owned(), setting: setting.to_owned(), file: file.to_owned(), kind, unix })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_pki::{Ca, KeyKind, LeafSpec, DAY, NOW};

    #[test]
    fn certificate_not_after_and_days_left() {
        let ca = Ca::new("expiry", KeyKind::P256);
        let leaf =
            ca.issue(&LeafSpec { not_after: NOW + 40 * DAY + 5, ..LeafSpec::new("gw", KeyKind::P256) });
        let bundle = format!("{}{}", leaf.pem, ca.pem);
        let e = read("b", "local-filename", "gw.pem", bundle.as_bytes()).unwrap();
        assert_eq!((e.kind, e.unix), (ExpiryKind::Certificate, NOW + 40 * DAY + 5), "the earliest");
        assert_eq!(e.days_left(NOW), 40);
        assert_eq!(e.days_left(NOW + 41 * DAY), -1);
        assert_eq!(read("b", "ca-filename", "ca.der", &ca.der).unwrap().unix, NOW + 3650 * DAY);
        assert_eq!(read("b", "ca-filename", "junk", b"not a certificate"), None);
    }

    #[test]
    fn crl_next_update_and_the_stale_warning() {
        let ca = Ca::new("expiry", KeyKind::P256);
        let crl = ca.crl_at(&[], NOW);
        let e = read("branch1", "crl-filename", "ca.crl", &crl).unwrap();
        assert_eq!((e.kind, e.unix), (ExpiryKind::Crl, NOW + 30 * DAY));
        assert_eq!(e.stale_crl(NOW + 29 * DAY), None);
        let warning = e.stale_crl(NOW + 32 * DAY).unwrap();
        assert!(
            warning
                .starts_with("ike peer branch1: crl-filename ca.crl: the CRL's next update was 2 day(s) ago"),
            "{warning}"
        );
    }
}
