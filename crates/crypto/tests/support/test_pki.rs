//! A small PKI made by tests with rcgen: a CA, end-entity certificates with chosen keys,
//! names, validity and extended key usage, and CRLs. Shared by the crypto tests and the IKE
//! engine tests (included there by path), so both check the same kinds of certificates.
#![allow(dead_code, unreachable_pub)] // each including test uses a different part; items are shared by path

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};
use time::OffsetDateTime;

/// Unix time the tests treat as "now" (2026-01-01).
pub const NOW: i64 = 1_767_225_600;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// The key types the engine must handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    Rsa3072,
    P256,
    P384,
}

fn key_pair(kind: KeyKind) -> KeyPair {
    match kind {
        KeyKind::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
        KeyKind::Rsa3072 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072),
        KeyKind::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyKind::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
    }
    .expect("key generation")
}

fn time(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("time in range")
}

fn dn(organization: &str, common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CN");
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, DER.
    pub der: Vec<u8>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// An end-entity certificate and its private key.
pub struct Leaf {
    /// Certificate, DER.
    pub der: Vec<u8>,
    /// Certificate, PEM.
    pub pem: String,
    /// Private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
    /// Private key, PKCS#8 PEM.
    pub key_pem: String,
    /// Serial number.
    pub serial: u64,
}

/// What an end-entity certificate says.
pub struct LeafSpec<'a> {
    pub common_name: &'a str,
    pub dns: &'a [&'a str],
    pub emails: &'a [&'a str],
    pub ips: &'a [IpAddr],
    pub key: KeyKind,
    pub not_before: i64,
    pub not_after: i64,
    pub eku: Vec<ExtendedKeyUsagePurpose>,
    pub key_usage: Vec<KeyUsagePurpose>,
    pub serial: u64,
}

impl<'a> LeafSpec<'a> {
    /// A certificate valid for a year around [`NOW`], with the given names and key.
    pub fn new(common_name: &'a str, key: KeyKind) -> Self {
        Self {
            common_name,
            dns: &[],
            emails: &[],
            ips: &[],
            key,
            not_before: NOW - 30 * DAY,
            not_after: NOW + 335 * DAY,
            eku: Vec::new(),
            key_usage: vec![KeyUsagePurpose::DigitalSignature],
            serial: 2,
        }
    }
}

impl Ca {
    /// A self-signed CA named `O=<organization>, CN=<organization> CA`.
    pub fn new(organization: &str, key: KeyKind) -> Self {
        let key = key_pair(key);
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(organization, &format!("{organization} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = time(NOW - 365 * DAY);
        params.not_after = time(NOW + 3650 * DAY);
        params.serial_number = Some(SerialNumber::from(1u64));
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { der: cert.der().to_vec(), pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// Issues an end-entity certificate to `spec` (organization "keysteward test").
    pub fn issue(&self, spec: &LeafSpec<'_>) -> Leaf {
        let key = key_pair(spec.key);
        let mut params = CertificateParams::default();
        params.distinguished_name = dn("keysteward test", spec.common_name);
        for name in spec.dns {
            params.subject_alt_names.push(SanType::DnsName((*name).try_into().expect("DNS name")));
        }
        for email in spec.emails {
            params.subject_alt_names.push(SanType::Rfc822Name((*email).try_into().expect("email")));
        }
        for ip in spec.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.not_before = time(spec.not_before);
        params.not_after = time(spec.not_after);
        params.extended_key_usages = spec.eku.clone();
        params.key_usages = spec.key_usage.clone();
        params.serial_number = Some(SerialNumber::from(spec.serial));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        Leaf {
            der: cert.der().to_vec(),
            pem: cert.pem(),
            key_pkcs8: key.serialize_der(),
            key_pem: key.serialize_pem(),
            serial: spec.serial,
        }
    }

    /// A CRL valid around [`NOW`] revoking `serials`, DER.
    pub fn crl(&self, serials: &[u64]) -> Vec<u8> {
        self.crl_at(serials, NOW)
    }

    /// A CRL valid around `now` (Unix seconds) revoking `serials`, DER.
    pub fn crl_at(&self, serials: &[u64], now: i64) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update: time(now - DAY),
            next_update: time(now + 30 * DAY),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: time(now - DAY),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        params.signed_by(&self.issuer).expect("CRL").der().to_vec()
    }
}
