//! X.509 certificates for IKEv1 signature authentication (RFC 2409 §5.1, RFC 4945 for the
//! PKI profile): the trusted CAs and CRLs of a peer, verification of the certificate a peer
//! sends in its CERT payload, and the check that its ID payload names that certificate.
//!
//! Path building, signatures along the chain, validity and revocation are rustls-webpki's
//! (with the AWS-LC backend); the fields webpki does not expose (subject and issuer as text,
//! subjectAltName, key usage) are read with x509-parser. Time is an argument, never read
//! from a clock, so the engine stays sans-IO and tests can move it.
//!
//! Every refusal is a [`CertificateError`] that names what failed (which certificate, which
//! date, which CA, which identity), because "certificate invalid" tells an operator nothing.

use std::fmt;
use std::net::IpAddr;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy,
    ExtendedKeyUsageValidator, KeyPurposeIdIter, RevocationCheckDepth, RevocationOptionsBuilder,
    UnknownStatusPolicy,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

use crate::signature::{SignatureError, SigningKey, VerifyingKey};

/// id-kp-ipsecIKE (RFC 4945 §5.1.3.12): 1.3.6.1.5.5.7.3.17, DER contents.
const EKU_IPSEC_IKE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11];
/// anyExtendedKeyUsage (RFC 5280 §4.2.1.12): 2.5.29.37.0, DER contents.
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// Largest certificate or CRL file accepted (a CRL of a big CA can be large; more is an
/// error, not an allocation).
pub const MAX_PKI_FILE_LEN: usize = 16 * 1024 * 1024;

/// Why a certificate, CRL or key was refused. Each variant says which check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The bytes are not a DER certificate (or a PEM file holding one).
    #[error("cannot parse {what}: {reason}")]
    Malformed {
        /// What was being parsed ("peer certificate", "CA certificate", "CRL", "private key").
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The certificate's validity period ends before the time of the check.
    #[error("certificate '{subject}' expired at {} (checked at {})", utc_text(*.not_after as i64), utc_text(*.now as i64))]
    Expired {
        /// Subject of the peer certificate.
        subject: String,
        /// notAfter, seconds since the Unix epoch.
        not_after: u64,
        /// The time of the check, seconds since the Unix epoch.
        now: u64,
    },
    /// The certificate's validity period starts after the time of the check.
    #[error("certificate '{subject}' is not valid before {} (checked at {})", utc_text(*.not_before as i64), utc_text(*.now as i64))]
    NotYetValid {
        /// Subject of the peer certificate.
        subject: String,
        /// notBefore, seconds since the Unix epoch.
        not_before: u64,
        /// The time of the check.
        now: u64,
    },
    /// No chain leads from the certificate to a configured CA.
    #[error("certificate '{subject}' issued by '{issuer}' does not chain to a trusted CA")]
    UnknownIssuer {
        /// Subject of the peer certificate.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// A CRL lists the certificate (or one of its issuers) as revoked.
    #[error("certificate '{subject}' is revoked by a CRL of '{issuer}'")]
    Revoked {
        /// Subject of the peer certificate.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// The CRL of the issuer is past its nextUpdate.
    #[error("the CRL for '{issuer}' has expired")]
    CrlExpired {
        /// Issuer of the peer certificate.
        issuer: String,
    },
    /// A signature along the chain does not verify.
    #[error("certificate '{subject}': the issuer's signature does not verify")]
    BadChainSignature {
        /// Subject of the peer certificate.
        subject: String,
    },
    /// The keyUsage extension is present and allows neither digitalSignature nor
    /// nonRepudiation.
    #[error("certificate '{subject}': key usage does not allow digital signatures")]
    KeyUsage {
        /// Subject of the peer certificate.
        subject: String,
    },
    /// The extendedKeyUsage extension is present without ipsecIKE or anyExtendedKeyUsage.
    #[error("certificate '{subject}': extended key usage allows neither ipsecIKE nor any")]
    ExtendedKeyUsage {
        /// Subject of the peer certificate.
        subject: String,
    },
    /// A CA certificate was presented as the peer's own.
    #[error("certificate '{subject}' is a CA certificate, not an end entity")]
    CaAsEndEntity {
        /// Subject of the certificate.
        subject: String,
    },
    /// The certificate's public key is not one keysteward verifies with.
    #[error("certificate '{subject}': {source}")]
    PublicKey {
        /// Subject of the certificate.
        subject: String,
        /// Why the key was refused.
        source: SignatureError,
    },
    /// The peer's ID payload does not name the certificate.
    #[error("identity {presented} is not in certificate '{subject}' ({looked_in})")]
    IdentityNotInCertificate {
        /// The identity the peer presented.
        presented: String,
        /// Subject of its certificate.
        subject: String,
        /// Where it was looked for ("subject", "subjectAltName dNSName", …).
        looked_in: &'static str,
    },
    /// Any other path-validation failure, as webpki names it.
    #[error("certificate '{subject}' rejected: {reason}")]
    Invalid {
        /// Subject of the certificate.
        subject: String,
        /// webpki's reason.
        reason: String,
    },
}

/// Reads a PEM file's blocks of one kind, or takes the bytes as one DER object when they are
/// not PEM. Certificates and CRLs come in either form in configurations.
fn pem_or_der<T: PemObject + AsRef<[u8]>>(
    bytes: &[u8],
    what: &'static str,
) -> Result<Vec<Vec<u8>>, CertificateError> {
    if bytes.len() > MAX_PKI_FILE_LEN {
        return Err(CertificateError::Malformed {
            what,
            reason: format!("larger than {MAX_PKI_FILE_LEN} bytes"),
        });
    }
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let items: Result<Vec<T>, _> = T::pem_slice_iter(bytes).collect();
    let items = items.map_err(|e| CertificateError::Malformed { what, reason: format!("PEM: {e}") })?;
    if items.is_empty() {
        return Err(CertificateError::Malformed {
            what,
            reason: "neither DER nor a PEM block of this kind".into(),
        });
    }
    Ok(items.into_iter().map(|i| i.as_ref().to_vec()).collect())
}

/// Certificates from a PEM (one or more `CERTIFICATE` blocks) or DER file.
pub fn certificates_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    pem_or_der::<CertificateDer<'static>>(bytes, "certificate")
}

/// CRLs from a PEM (`X509 CRL` blocks) or DER file.
pub fn crls_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    pem_or_der::<CertificateRevocationListDer<'static>>(bytes, "CRL")
}

/// A private key from a PEM file (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`) or DER
/// (PKCS#8, PKCS#1 or SEC1). Encrypted keys are refused with that reason.
pub fn signing_key_from_pem_or_der(bytes: &[u8]) -> Result<SigningKey, CertificateError> {
    let what = "private key";
    if bytes.first() == Some(&0x30) {
        return SigningKey::from_der(bytes)
            .map_err(|e| CertificateError::Malformed { what, reason: e.to_string() });
    }
    if bytes.windows(b"ENCRYPTED PRIVATE KEY".len()).any(|w| w == b"ENCRYPTED PRIVATE KEY")
        || bytes.windows(b"Proc-Type: 4,ENCRYPTED".len()).any(|w| w == b"Proc-Type: 4,ENCRYPTED")
    {
        return Err(CertificateError::Malformed {
            what,
            reason: "encrypted private keys are not supported".into(),
        });
    }
    let mut key = PrivateKeyDer::from_pem_slice(bytes)
        .map_err(|e| CertificateError::Malformed { what, reason: format!("PEM: {e}") })?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs8(k) => SigningKey::from_pkcs8_der(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => SigningKey::from_pkcs1_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(k) => SigningKey::from_sec1_der(k.secret_sec1_der()),
        _ => return Err(CertificateError::Malformed { what, reason: "unknown private key kind".into() }),
    };
    // The decoded DER is key material: wiped here; AWS-LC holds (and wipes) its own copy.
    zeroize::Zeroize::zeroize(&mut key);
    parsed.map_err(|e| CertificateError::Malformed { what, reason: e.to_string() })
}

/// The facts of a certificate that logs, displays and ID checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Subject DN as text, e.g. `C=CN, O=Example, CN=fw-a`.
    pub subject: String,
    /// Subject DN in DER: the body of an ID_DER_ASN1_DN identity.
    pub subject_der: Vec<u8>,
    /// Issuer DN as text.
    pub issuer: String,
    /// Issuer DN in DER: what a CR payload names.
    pub issuer_der: Vec<u8>,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: i64,
    /// Serial number as colon-separated hex.
    pub serial: String,
    /// subjectAltName entries this gateway can match against an ID payload.
    pub alt_names: Vec<AltName>,
}

/// A subjectAltName entry (RFC 5280 §4.2.1.6) of a kind IKEv1 identities map to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AltName {
    /// dNSName — ID_FQDN.
    Dns(String),
    /// rfc822Name — ID_USER_FQDN.
    Email(String),
    /// iPAddress — ID_IPV4_ADDR / ID_IPV6_ADDR.
    Ip(IpAddr),
}

impl fmt::Display for AltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(n) => write!(f, "DNS:{}", crate::untrusted::printable_str(n)),
            Self::Email(n) => write!(f, "email:{}", crate::untrusted::printable_str(n)),
            Self::Ip(a) => write!(f, "IP:{a}"),
        }
    }
}

/// An identity from an ID payload, as far as certificate matching needs it (this crate does
/// not depend on the wire format).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentedIdentity<'a> {
    /// ID_DER_ASN1_DN: a DER Name.
    Dn(&'a [u8]),
    /// ID_FQDN.
    Fqdn(&'a [u8]),
    /// ID_USER_FQDN.
    UserFqdn(&'a [u8]),
    /// ID_IPV4_ADDR / ID_IPV6_ADDR.
    Ip(IpAddr),
}

/// A certificate's name for logs, displays and errors: escaped and bounded, since a peer's
/// certificate is peer-chosen text until it verifies (and a CA may sign odd names).
fn name_text(name: &X509Name<'_>) -> String {
    crate::untrusted::printable_str(&name.to_string())
}

fn parse_x509<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, CertificateError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CertificateError::Malformed { what, reason: "bytes after the certificate".into() }),
        Err(e) => Err(CertificateError::Malformed { what, reason: e.to_string() }),
    }
}

fn summarize(cert: &X509Certificate<'_>) -> CertificateSummary {
    let mut alt_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => alt_names.push(AltName::Dns((*n).to_owned())),
                GeneralName::RFC822Name(n) => alt_names.push(AltName::Email((*n).to_owned())),
                GeneralName::IPAddress(bytes) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                        alt_names.push(AltName::Ip(IpAddr::from(v4)));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                        alt_names.push(AltName::Ip(IpAddr::from(v6)));
                    }
                }
                _ => {}
            }
        }
    }
    CertificateSummary {
        subject: name_text(cert.subject()),
        subject_der: cert.subject().as_raw().to_vec(),
        issuer: name_text(cert.issuer()),
        issuer_der: cert.issuer().as_raw().to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert.raw_serial_as_string(),
        alt_names,
    }
}

/// Our own certificate: what we send in CERT payloads, the DN we present in ID payloads, and
/// the key that must match our private key.
#[derive(Debug, Clone)]
pub struct LocalCertificate {
    der: Vec<u8>,
    summary: CertificateSummary,
}

impl LocalCertificate {
    /// Parses our certificate (DER) and checks that `key` is its private key, so a mismatched
    /// pair is found at configuration time, not by the peer.
    pub fn new(der: Vec<u8>, key: &SigningKey) -> Result<Self, CertificateError> {
        let cert = parse_x509(&der, "local certificate")?;
        let summary = summarize(&cert);
        let public = VerifyingKey::from_spki_der(cert.public_key().raw)
            .map_err(|source| CertificateError::PublicKey { subject: summary.subject.clone(), source })?;
        // Sign and verify a fixed digest: proves the pair without exposing the key.
        let probe = [0x5a_u8; 32];
        let signature = key
            .sign(&probe)
            .map_err(|source| CertificateError::PublicKey { subject: summary.subject.clone(), source })?;
        if public.verify(&probe, &signature).is_err() {
            return Err(CertificateError::Malformed {
                what: "local certificate",
                reason: format!("the private key does not belong to certificate '{}'", summary.subject),
            });
        }
        drop(cert);
        Ok(Self { der, summary })
    }

    /// The certificate in DER, for CERT payloads.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Subject, issuer, validity and alternative names.
    pub fn summary(&self) -> &CertificateSummary {
        &self.summary
    }
}

/// The CAs and CRLs a peer's certificate is checked against.
pub struct TrustStore {
    cas: Vec<CertificateDer<'static>>,
    ca_subjects: Vec<Vec<u8>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The CRLs as given, for [`PartialEq`] (a reload compares trust stores).
    crl_ders: Vec<Vec<u8>>,
}

impl PartialEq for TrustStore {
    /// The same CAs and CRLs, byte for byte, in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.cas == other.cas && self.crl_ders == other.crl_ders
    }
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustStore({} CAs, {} CRLs)", self.cas.len(), self.crls.len())
    }
}

impl TrustStore {
    /// Builds a trust store from CA certificates and CRLs, all DER. Every CA must parse as a
    /// trust anchor and every CRL as a CRL: a broken file is a configuration error, not a
    /// silently weaker check.
    pub fn new(ca_ders: Vec<Vec<u8>>, crl_ders: &[Vec<u8>]) -> Result<Self, CertificateError> {
        if ca_ders.is_empty() {
            return Err(CertificateError::Malformed {
                what: "CA certificate",
                reason: "no CA configured".into(),
            });
        }
        let mut cas = Vec::new();
        let mut ca_subjects = Vec::new();
        for der in ca_ders {
            let cert = parse_x509(&der, "CA certificate")?;
            ca_subjects.push(cert.subject().as_raw().to_vec());
            let der = CertificateDer::from(der);
            webpki::anchor_from_trusted_cert(&der).map_err(|e| CertificateError::Malformed {
                what: "CA certificate",
                reason: webpki_reason(&e),
            })?;
            cas.push(der);
        }
        let mut crls = Vec::new();
        for der in crl_ders {
            let crl = BorrowedCertRevocationList::from_der(der)
                .and_then(|c| c.to_owned())
                .map_err(|e| CertificateError::Malformed { what: "CRL", reason: webpki_reason(&e) })?;
            crls.push(CertRevocationList::from(crl));
        }
        Ok(Self { cas, ca_subjects, crls, crl_ders: crl_ders.to_vec() })
    }

    /// DER subject names of the trusted CAs, for the CR payloads we send.
    pub fn ca_names(&self) -> impl Iterator<Item = &[u8]> {
        self.ca_subjects.iter().map(Vec::as_slice)
    }

    /// Whether `name` (a DER DN, from a peer's CR payload) is one of our CAs' subjects.
    pub fn has_ca_named(&self, name: &[u8]) -> bool {
        self.ca_subjects.iter().any(|s| s == name)
    }

    /// Verifies the peer's certificate `der` with optional intermediate certificates at
    /// `unix_seconds`: chain to a configured CA, validity, CRLs of configured issuers (a
    /// certificate whose issuer has no configured CRL is accepted: CRLs are optional), key
    /// usage and extended key usage. Returns the verified certificate's facts and key.
    pub fn verify(
        &self,
        der: &[u8],
        intermediates: &[&[u8]],
        unix_seconds: u64,
    ) -> Result<VerifiedCertificate, CertificateError> {
        let cert = parse_x509(der, "peer certificate")?;
        let summary = summarize(&cert);
        let subject = summary.subject.clone();
        if let Ok(Some(ku)) = cert.key_usage() {
            if !ku.value.digital_signature() && !ku.value.non_repudiation() {
                return Err(CertificateError::KeyUsage { subject });
            }
        }
        let key = VerifyingKey::from_spki_der(cert.public_key().raw)
            .map_err(|source| CertificateError::PublicKey { subject: subject.clone(), source })?;
        drop(cert);

        let anchors: Result<Vec<_>, _> = self.cas.iter().map(webpki::anchor_from_trusted_cert).collect();
        let anchors = anchors
            .map_err(|e| CertificateError::Invalid { subject: subject.clone(), reason: webpki_reason(&e) })?;
        let intermediates: Vec<CertificateDer<'_>> =
            intermediates.iter().map(|d| CertificateDer::from(*d)).collect();
        let ee_der = CertificateDer::from(der);
        let ee = EndEntityCert::try_from(&ee_der).map_err(|e| CertificateError::Malformed {
            what: "peer certificate",
            reason: webpki_reason(&e),
        })?;
        let crl_refs: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = if crl_refs.is_empty() {
            None
        } else {
            RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
                // An expired CRL is an error, not silently "not revoked".
                b.with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(UnknownStatusPolicy::Allow)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            })
        };
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(unix_seconds));
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            IpsecIkeUsage,
            revocation,
            None,
        )
        .map_err(|e| self.explain(e, &summary, unix_seconds))?;
        Ok(VerifiedCertificate { summary, key })
    }

    fn explain(&self, error: webpki::Error, summary: &CertificateSummary, now: u64) -> CertificateError {
        let subject = summary.subject.clone();
        let issuer = summary.issuer.clone();
        use webpki::Error as E;
        match error {
            E::CertExpired { .. } => {
                CertificateError::Expired { subject, not_after: summary.not_after.max(0) as u64, now }
            }
            E::CertNotValidYet { .. } => {
                CertificateError::NotYetValid { subject, not_before: summary.not_before.max(0) as u64, now }
            }
            E::UnknownIssuer => CertificateError::UnknownIssuer { subject, issuer },
            E::CertRevoked => CertificateError::Revoked { subject, issuer },
            E::CrlExpired { .. } => CertificateError::CrlExpired { issuer },
            E::InvalidSignatureForPublicKey | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                CertificateError::BadChainSignature { subject }
            }
            E::RequiredEkuNotFoundContext(_) => CertificateError::ExtendedKeyUsage { subject },
            E::CaUsedAsEndEntity => CertificateError::CaAsEndEntity { subject },
            other => CertificateError::Invalid { subject, reason: webpki_reason(&other) },
        }
    }
}

/// What webpki found wrong, in an operator's words. webpki's own `Display` prints its `Debug`
/// form (`BadDer`, `TrailingData(Certificate)`), which is not for an operator's log.
fn webpki_reason(error: &webpki::Error) -> String {
    use webpki::Error as E;
    let text = match error {
        E::BadDer | E::TrailingData(_) => "its DER encoding is malformed",
        E::BadDerTime | E::InvalidCertValidity => "its validity period is malformed",
        E::CaUsedAsEndEntity => "a CA certificate is used as an end-entity certificate",
        E::EndEntityUsedAsCa => "an end-entity certificate is used as a CA",
        E::CertDistrusted => "the CA is distrusted",
        E::CertExpired { .. } => "it has expired",
        E::CertNotValidYet { .. } => "it is not valid yet",
        E::CertRevoked => "it is revoked",
        E::CrlExpired { .. } => "the issuer's CRL has expired",
        E::EmptyEkuExtension => "its extended key usage extension is empty",
        E::RequiredEkuNotFoundContext(_) => "its extended key usage allows neither ipsecIKE nor any purpose",
        E::ExtensionValueInvalid | E::MalformedExtensions | E::UnsupportedCriticalExtension => {
            "it has a malformed or unsupported critical extension"
        }
        E::InvalidSerialNumber => "its serial number is malformed",
        E::UnsupportedCertVersion => "it is not an X.509 version 3 certificate",
        E::MalformedNameConstraint
        | E::NameConstraintViolation
        | E::InvalidNetworkMaskConstraint
        | E::MaximumNameConstraintComparisonsExceeded => "it violates its CA's name constraints",
        E::PathLenConstraintViolated | E::MaximumPathDepthExceeded => {
            "the chain is longer than its CAs allow"
        }
        E::MaximumPathBuildCallsExceeded | E::MaximumSignatureChecksExceeded => {
            "building the chain took too many steps"
        }
        E::UnknownIssuer => "it is not issued by a configured CA",
        E::InvalidSignatureForPublicKey | E::SignatureAlgorithmMismatch => {
            "a signature in its chain is invalid"
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "its chain uses an unsupported signature algorithm"
        }
        E::InvalidCrlNumber
        | E::InvalidCrlSignatureForPublicKey
        | E::IssuerNotCrlSigner
        | E::UnknownRevocationStatus
        | E::UnsupportedCrlIssuingDistributionPoint
        | E::UnsupportedCrlVersion
        | E::UnsupportedDeltaCrl
        | E::UnsupportedIndirectCrl
        | E::UnsupportedRevocationReason
        | E::UnsupportedRevocationReasonsPartitioning
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => {
            "a configured CRL cannot be used to check it"
        }
        E::CertNotValidForName(_) | E::MalformedDnsIdentifier | E::UnsupportedNameType => {
            "its names are malformed or unsupported"
        }
        // webpki's error is non-exhaustive (and its deprecated variants are never produced): a
        // variant added later still reads as a rejection.
        _ => "it fails X.509 path validation",
    };
    text.to_owned()
}

/// The EKU policy of RFC 4945 §5.1.3.12: a certificate without extendedKeyUsage is fine; one
/// with it must allow ipsecIKE or anyExtendedKeyUsage.
struct IpsecIkeUsage;

impl ExtendedKeyUsageValidator for IpsecIkeUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut empty = true;
        for purpose in iter {
            let purpose = purpose?;
            empty = false;
            let wanted = [EKU_IPSEC_IKE, EKU_ANY].iter().any(|oid| purpose == webpki::KeyPurposeId::new(oid));
            if wanted {
                return Ok(());
            }
        }
        if empty {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required_if_present(EKU_IPSEC_IKE),
                present: Vec::new(),
            }))
        }
    }
}

/// A peer certificate that verified: its facts and the key its SIG payload is checked with.
#[derive(Debug)]
pub struct VerifiedCertificate {
    summary: CertificateSummary,
    key: VerifyingKey,
}

impl VerifiedCertificate {
    /// Subject, issuer, validity and alternative names (for logs and `display ike sa`).
    pub fn summary(&self) -> &CertificateSummary {
        &self.summary
    }

    /// The certificate's public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Checks that the identity of the peer's ID payload names this certificate: a DN must
    /// be the subject; an FQDN, user FQDN or address must be a subjectAltName of that kind
    /// (RFC 4945 §3.1).
    pub fn check_identity(&self, presented: &PresentedIdentity<'_>) -> Result<(), CertificateError> {
        let s = &self.summary;
        let mismatch = |presented: String, looked_in| CertificateError::IdentityNotInCertificate {
            presented,
            subject: s.subject.clone(),
            looked_in,
        };
        match *presented {
            PresentedIdentity::Dn(der) => {
                if der == s.subject_der.as_slice() {
                    return Ok(());
                }
                // Compared in full and unescaped: `s.subject` is the bounded display form.
                let Some(text) = dn_der_to_text(der) else {
                    return Err(mismatch("an unparseable DN".into(), "subject"));
                };
                if dn_der_to_text(&s.subject_der).is_some_and(|subject| dn_equal(&text, &subject)) {
                    Ok(())
                } else {
                    Err(mismatch(format!("dn {}", crate::untrusted::printable_str(&text)), "subject"))
                }
            }
            PresentedIdentity::Fqdn(name) => {
                let found = s
                    .alt_names
                    .iter()
                    .any(|a| matches!(a, AltName::Dns(n) if n.as_bytes().eq_ignore_ascii_case(name)));
                found
                    .then_some(())
                    .ok_or_else(|| mismatch(format!("fqdn {}", lossy(name)), "subjectAltName dNSName"))
            }
            PresentedIdentity::UserFqdn(name) => {
                let found = s
                    .alt_names
                    .iter()
                    .any(|a| matches!(a, AltName::Email(n) if n.as_bytes().eq_ignore_ascii_case(name)));
                found.then_some(()).ok_or_else(|| {
                    mismatch(format!("user-fqdn {}", lossy(name)), "subjectAltName rfc822Name")
                })
            }
            PresentedIdentity::Ip(address) => {
                let found = s.alt_names.contains(&AltName::Ip(address));
                found
                    .then_some(())
                    .ok_or_else(|| mismatch(format!("ip {address}"), "subjectAltName iPAddress"))
            }
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    crate::untrusted::printable(bytes)
}

/// A DER DN (an ID_DER_ASN1_DN body) in the text form [`dn_equal`] compares; `None` when it
/// does not parse. The text is the peer's, unescaped and unbounded: for comparing only;
/// show it through [`crate::untrusted::printable_str`].
pub fn dn_der_to_text(der: &[u8]) -> Option<String> {
    match X509Name::from_der(der) {
        Ok(([], name)) => Some(name.to_string()),
        _ => None,
    }
}

/// Splits a DN in its text form (`C=CN, O=Example, CN=fw-a`, as strongSwan and OpenSSL print
/// them, RFC 4514 order or its reverse is *not* normalised) into normalised pairs: attribute
/// names upper-cased with common aliases unified, values trimmed. Commas inside values are
/// not supported (they are rare in gateway DNs); such a DN simply will not match.
pub fn normalize_dn(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in text.split([',', '/']).map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=')?;
        let key = key.trim().to_ascii_uppercase();
        let key = match key.as_str() {
            "E" | "EMAIL" | "EMAILADDRESS" => "EMAILADDRESS".to_owned(),
            "S" | "ST" => "ST".to_owned(),
            _ => key,
        };
        out.push((key, value.trim().to_owned()));
    }
    (!out.is_empty()).then_some(out)
}

/// Whether two DNs in text form are the same: the same attributes in the same order, values
/// compared case-insensitively (as strongSwan does for its `rightid` DNs).
pub fn dn_equal(a: &str, b: &str) -> bool {
    match (normalize_dn(a), normalize_dn(b)) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.iter().zip(&b).all(|((ka, va), (kb, vb))| ka == kb && va.eq_ignore_ascii_case(vb))
        }
        _ => false,
    }
}

/// `seconds` since the Unix epoch as an operator reads it: `2026-11-27 06:54:10 UTC`. Times
/// outside the calendar's range (not from a sane certificate) print as the raw number.
pub fn utc_text(seconds: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{seconds} s after the Unix epoch"),
    }
}
