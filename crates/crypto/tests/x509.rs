//! X.509 verification for IKEv1 signature authentication: chains to configured CAs,
//! validity at a given time, CRLs, key usage and EKU, ID-versus-certificate matching, and
//! the file formats keys and certificates come in. Certificates are made here with rcgen.

#[path = "support/test_pki.rs"]
mod test_pki;

use std::net::{IpAddr, Ipv4Addr};

use crypto::x509::{
    certificates_from_pem_or_der, crls_from_pem_or_der, dn_equal, signing_key_from_pem_or_der, AltName,
};
use crypto::{CertificateError, LocalCertificate, PresentedIdentity, SignatureAlgorithm, TrustStore};
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use test_pki::{Ca, KeyKind, LeafSpec, DAY, NOW};

const NOW_U: u64 = NOW as u64;

fn store(ca: &Ca, crls: &[Vec<u8>]) -> TrustStore {
    TrustStore::new(vec![ca.der.clone()], crls).unwrap()
}

#[test]
fn test_valid_chain_gives_subject_issuer_validity_and_key() {
    let ca = Ca::new("Alpha", KeyKind::Rsa2048);
    let ip = IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1));
    let mut spec = LeafSpec::new("fw-a", KeyKind::Rsa2048);
    spec.dns = &["fw-a.example"];
    spec.emails = &["ops@fw-a.example"];
    spec.ips = std::slice::from_ref(&ip);
    let leaf = ca.issue(&spec);
    let verified = store(&ca, &[]).verify(&leaf.der, &[], NOW_U).unwrap();
    let s = verified.summary();
    assert_eq!(s.subject, "C=CN, O=keysteward test, CN=fw-a");
    assert_eq!(s.issuer, "C=CN, O=Alpha, CN=Alpha CA");
    assert_eq!((s.not_before, s.not_after), (NOW - 30 * DAY, NOW + 335 * DAY));
    assert_eq!(
        s.alt_names,
        vec![AltName::Dns("fw-a.example".into()), AltName::Email("ops@fw-a.example".into()), AltName::Ip(ip)]
    );
    assert_eq!(verified.key().algorithm(), SignatureAlgorithm::Rsa { modulus_bits: 2048 });
}

#[test]
fn test_every_key_kind_verifies() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    for (kind, alg) in [
        (KeyKind::Rsa3072, SignatureAlgorithm::Rsa { modulus_bits: 3072 }),
        (KeyKind::P256, SignatureAlgorithm::EcdsaP256),
        (KeyKind::P384, SignatureAlgorithm::EcdsaP384),
    ] {
        let leaf = ca.issue(&LeafSpec::new("fw", kind));
        assert_eq!(store(&ca, &[]).verify(&leaf.der, &[], NOW_U).unwrap().key().algorithm(), alg);
    }
}

#[test]
fn test_expired_and_not_yet_valid_name_the_dates() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let mut spec = LeafSpec::new("old", KeyKind::P256);
    spec.not_before = NOW - 400 * DAY;
    spec.not_after = NOW - DAY;
    let old = ca.issue(&spec);
    assert_eq!(
        store(&ca, &[]).verify(&old.der, &[], NOW_U).unwrap_err(),
        CertificateError::Expired {
            subject: "C=CN, O=keysteward test, CN=old".into(),
            not_after: (NOW - DAY) as u64,
            now: NOW_U
        }
    );
    // The same certificate is fine at a time inside its validity: time is an argument.
    assert!(store(&ca, &[]).verify(&old.der, &[], (NOW - 10 * DAY) as u64).is_ok());
    let mut spec = LeafSpec::new("future", KeyKind::P256);
    spec.not_before = NOW + DAY;
    let future = ca.issue(&spec);
    assert!(matches!(
        store(&ca, &[]).verify(&future.der, &[], NOW_U),
        Err(CertificateError::NotYetValid { not_before, .. }) if not_before == (NOW + DAY) as u64
    ));
}

#[test]
fn test_unknown_ca_names_the_issuer() {
    let ours = Ca::new("Alpha", KeyKind::P256);
    let theirs = Ca::new("Mallory", KeyKind::P256);
    let leaf = theirs.issue(&LeafSpec::new("fw-m", KeyKind::P256));
    assert_eq!(
        store(&ours, &[]).verify(&leaf.der, &[], NOW_U).unwrap_err(),
        CertificateError::UnknownIssuer {
            subject: "C=CN, O=keysteward test, CN=fw-m".into(),
            issuer: "C=CN, O=Mallory, CN=Mallory CA".into()
        }
    );
}

#[test]
fn test_crl_revokes_listed_serial_only() {
    let ca = Ca::new("Alpha", KeyKind::Rsa2048);
    let mut spec = LeafSpec::new("revoked", KeyKind::P256);
    spec.serial = 77;
    let revoked = ca.issue(&spec);
    spec.serial = 78;
    spec.common_name = "good";
    let good = ca.issue(&spec);
    let crl = ca.crl(&[77]);
    let trust = store(&ca, std::slice::from_ref(&crl));
    assert!(matches!(trust.verify(&revoked.der, &[], NOW_U), Err(CertificateError::Revoked { .. })));
    assert!(trust.verify(&good.der, &[], NOW_U).is_ok());
    // Without the CRL the revoked certificate is accepted: CRLs are optional.
    assert!(store(&ca, &[]).verify(&revoked.der, &[], NOW_U).is_ok());
    // A CRL past its nextUpdate is refused as such.
    assert!(matches!(
        trust.verify(&good.der, &[], (NOW + 60 * DAY) as u64),
        Err(CertificateError::CrlExpired { .. })
    ));
}

#[test]
fn test_key_usage_and_extended_key_usage() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let trust = store(&ca, &[]);
    let mut spec = LeafSpec::new("eku", KeyKind::P256);
    spec.eku = vec![ExtendedKeyUsagePurpose::ServerAuth];
    assert!(matches!(
        trust.verify(&ca.issue(&spec).der, &[], NOW_U),
        Err(CertificateError::ExtendedKeyUsage { .. })
    ));
    spec.eku = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17]),
    ];
    assert!(trust.verify(&ca.issue(&spec).der, &[], NOW_U).is_ok());
    spec.eku = vec![ExtendedKeyUsagePurpose::Any];
    assert!(trust.verify(&ca.issue(&spec).der, &[], NOW_U).is_ok());
    spec.eku = Vec::new();
    spec.key_usage = vec![KeyUsagePurpose::KeyEncipherment];
    assert!(matches!(trust.verify(&ca.issue(&spec).der, &[], NOW_U), Err(CertificateError::KeyUsage { .. })));
    spec.key_usage = Vec::new();
    assert!(trust.verify(&ca.issue(&spec).der, &[], NOW_U).is_ok());
    // A CA certificate is not a peer certificate.
    assert!(trust.verify(&ca.der, &[], NOW_U).is_err());
}

#[test]
fn test_identity_must_be_in_the_certificate() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let ip = IpAddr::V4(Ipv4Addr::new(2, 2, 2, 2));
    let mut spec = LeafSpec::new("fw-b", KeyKind::P256);
    spec.dns = &["fw-b.example"];
    spec.emails = &["vpn@fw-b.example"];
    spec.ips = std::slice::from_ref(&ip);
    let leaf = ca.issue(&spec);
    let verified = store(&ca, &[]).verify(&leaf.der, &[], NOW_U).unwrap();
    let subject_der = verified.summary().subject_der.clone();
    assert!(verified.check_identity(&PresentedIdentity::Dn(&subject_der)).is_ok());
    assert!(verified.check_identity(&PresentedIdentity::Fqdn(b"FW-B.example")).is_ok());
    assert!(verified.check_identity(&PresentedIdentity::UserFqdn(b"vpn@fw-b.example")).is_ok());
    assert!(verified.check_identity(&PresentedIdentity::Ip(ip)).is_ok());
    assert_eq!(
        verified.check_identity(&PresentedIdentity::Fqdn(b"fw-c.example")).unwrap_err(),
        CertificateError::IdentityNotInCertificate {
            presented: "fqdn fw-c.example".into(),
            subject: "C=CN, O=keysteward test, CN=fw-b".into(),
            looked_in: "subjectAltName dNSName",
        }
    );
    assert!(verified.check_identity(&PresentedIdentity::Ip(IpAddr::V4(Ipv4Addr::new(2, 2, 2, 3)))).is_err());
    // Another certificate's DN is refused, naming both.
    let other = ca.issue(&LeafSpec::new("fw-c", KeyKind::P256));
    let other = store(&ca, &[]).verify(&other.der, &[], NOW_U).unwrap();
    let err = verified.check_identity(&PresentedIdentity::Dn(&other.summary().subject_der)).unwrap_err();
    assert_eq!(err.to_string(), "identity dn C=CN, O=keysteward test, CN=fw-c is not in certificate 'C=CN, O=keysteward test, CN=fw-b' (subject)");
}

/// A certificate's names are text a peer (or an odd CA) chose: the summary, alt-name display
/// and identity errors show them escaped on one line, and the DN comparison is unaffected.
#[test]
fn test_names_in_summaries_and_errors_are_escaped() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let mut spec = LeafSpec::new("fw-b\n2026-12-07T08:00:00Z INFO fake line\x07", KeyKind::P256);
    spec.dns = &["fw-b.example\r\nX"];
    let leaf = ca.issue(&spec);
    let verified = store(&ca, &[]).verify(&leaf.der, &[], NOW_U).unwrap();
    let s = verified.summary();
    assert_eq!(s.subject, "C=CN, O=keysteward test, CN=fw-b\\x0a2026-12-07T08:00:00Z INFO fake line\\x07");
    assert_eq!(s.alt_names[0].to_string(), "DNS:fw-b.example\\x0d\\x0aX");
    assert!(verified.check_identity(&PresentedIdentity::Dn(&s.subject_der)).is_ok());
    let err = verified.check_identity(&PresentedIdentity::Fqdn(b"fw-c\n\x1b[2Jx")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "identity fqdn fw-c\\x0a\\x1b[2Jx is not in certificate 'C=CN, O=keysteward test, \
         CN=fw-b\\x0a2026-12-07T08:00:00Z INFO fake line\\x07' (subjectAltName dNSName)"
    );
}

#[test]
fn test_dn_text_comparison() {
    assert!(dn_equal("C=CN, O=keysteward test, CN=fw-b", "c=cn,o=Keysteward Test,cn=FW-B"));
    assert!(dn_equal("C=CH, E=a@b, CN=x", "C=CH, emailAddress=a@b, CN=x"));
    assert!(!dn_equal("C=CN, CN=fw-b", "CN=fw-b, C=CN"));
    assert!(!dn_equal("C=CN, CN=fw-b", "C=CN, CN=fw-b, OU=x"));
    assert!(!dn_equal("garbage", "garbage"));
}

fn pem(label: &str, der: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[test]
fn test_keys_and_certificates_in_pem_and_der() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let leaf = ca.issue(&LeafSpec::new("fw-a", KeyKind::Rsa2048));
    let key_pem = signing_key_from_pem_or_der(leaf.key_pem.as_bytes()).unwrap();
    let key_der = signing_key_from_pem_or_der(&leaf.key_pkcs8).unwrap();
    assert_eq!(key_pem.algorithm(), key_der.algorithm());
    let certs = certificates_from_pem_or_der(format!("{}{}", leaf.pem, ca.pem).as_bytes()).unwrap();
    assert_eq!(certs, vec![leaf.der.clone(), ca.der.clone()]);
    assert_eq!(certificates_from_pem_or_der(&leaf.der).unwrap(), vec![leaf.der.clone()]);
    let local = LocalCertificate::new(leaf.der.clone(), &key_pem).unwrap();
    assert_eq!(local.summary().subject, "C=CN, O=keysteward test, CN=fw-a");
    // A key that is not the certificate's is found at load time.
    let other = ca.issue(&LeafSpec::new("fw-x", KeyKind::Rsa2048));
    let other_key = signing_key_from_pem_or_der(other.key_pem.as_bytes()).unwrap();
    let err = LocalCertificate::new(leaf.der.clone(), &other_key).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    // PKCS#1 and SEC1 PEM (the fixtures of the signature tests).
    let pkcs1 = pem("RSA PRIVATE KEY", include_bytes!("data/rsa2048.pkcs1.der"));
    assert_eq!(
        signing_key_from_pem_or_der(pkcs1.as_bytes()).unwrap().algorithm(),
        SignatureAlgorithm::Rsa { modulus_bits: 2048 }
    );
    let sec1 = pem("EC PRIVATE KEY", include_bytes!("data/p256.sec1.der"));
    assert_eq!(
        signing_key_from_pem_or_der(sec1.as_bytes()).unwrap().algorithm(),
        SignatureAlgorithm::EcdsaP256
    );
    let encrypted = pem("ENCRYPTED PRIVATE KEY", &leaf.key_pkcs8);
    assert!(signing_key_from_pem_or_der(encrypted.as_bytes()).unwrap_err().to_string().contains("encrypted"));
    assert!(signing_key_from_pem_or_der(b"hello").is_err());
    assert!(certificates_from_pem_or_der(b"hello").is_err());
    // CRLs in PEM and DER.
    let crl = ca.crl(&[5]);
    assert_eq!(crls_from_pem_or_der(pem("X509 CRL", &crl).as_bytes()).unwrap(), vec![crl.clone()]);
    assert!(TrustStore::new(vec![ca.der.clone()], &[crl]).is_ok());
    assert!(TrustStore::new(vec![b"\x30\x03\x02\x01\x00".to_vec()], &[]).is_err());
    assert!(TrustStore::new(Vec::new(), &[]).is_err());
}

#[test]
fn test_garbage_certificates_are_errors_not_panics() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let trust = store(&ca, &[]);
    let leaf = ca.issue(&LeafSpec::new("fw", KeyKind::P256));
    for len in [0, 1, 10, leaf.der.len() / 2, leaf.der.len() - 1] {
        assert!(trust.verify(&leaf.der[..len], &[], NOW_U).is_err());
    }
    let mut flipped = leaf.der.clone();
    let last = flipped.len() - 5;
    flipped[last] ^= 1;
    assert!(matches!(trust.verify(&flipped, &[], NOW_U), Err(CertificateError::BadChainSignature { .. })));
    let mut trailing = leaf.der.clone();
    trailing.push(0);
    assert!(trust.verify(&trailing, &[], NOW_U).is_err());
}

/// A broken CRL file is reported in words, not as webpki's `Debug` names (`BadDer`, …).
#[test]
fn test_webpki_rejections_read_as_words() {
    let ca = Ca::new("Alpha", KeyKind::P256);
    let crl = ca.crl(&[5]);
    for broken in [vec![0x30, 0x03, 0x02, 0x01, 0x00], crl[..crl.len() / 2].to_vec(), b"hello".to_vec()] {
        let text = match TrustStore::new(vec![ca.der.clone()], &[broken]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a broken CRL is refused"),
        };
        assert!(text.starts_with("cannot parse CRL: "), "{text}");
        assert!(!text.contains(['(', '{', '_']) && text.chars().any(|c| c == ' '), "{text}");
        assert!(!text.contains("Der") && !text.contains("Error"), "{text}");
    }
}
