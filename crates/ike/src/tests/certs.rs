//! Phase 1 with signatures and X.509 certificates (RFC 2409 §5.1, RFC 4754): RSA-2048,
//! RSA-3072, ECDSA P-256 and P-384 in main and aggressive mode, and each way a peer's
//! certificate or signature is refused, with the reason the Failed event must carry.

use std::sync::Arc;

use crypto::x509::signing_key_from_pem_or_der;
use crypto::{CertificateError, LocalCertificate, SignatureError, TrustStore};
use isakmp::{CertificateEncoding, Message, Payload};

use super::test_pki::{Ca, KeyKind, Leaf, LeafSpec, DAY, NOW};
use super::util::{failures, Gateway, Pair};
use super::{assert_keys_agree, tunnel_up};
use crate::auth::fault::{self, SignatureFault};
use crate::{
    AuthMethod, CertificateAuth, ExchangeMode, FailureReason, IdentityConfig, IkeProposal, SendCertificate,
};
use crate::{AuthenticationFailure, IdentityFailure};

const SUBJECT_A: &str = "C=CN, O=keysteward test, CN=fw-a";
const SUBJECT_B: &str = "C=CN, O=keysteward test, CN=fw-b";

fn auth(ca: &Ca, leaf: &Leaf, crls: &[Vec<u8>], send: SendCertificate) -> Arc<CertificateAuth> {
    let key = signing_key_from_pem_or_der(leaf.key_pem.as_bytes()).expect("key");
    Arc::new(CertificateAuth {
        certificate: LocalCertificate::new(leaf.der.clone(), &key).expect("certificate matches key"),
        key,
        trust: TrustStore::new(vec![ca.der.clone()], crls).expect("trust store"),
        send_certificate: send,
    })
}

fn method(kind: KeyKind) -> AuthMethod {
    match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa3072 => AuthMethod::RsaSignature,
        KeyKind::P256 => AuthMethod::EcdsaP256,
        KeyKind::P384 => AuthMethod::EcdsaP384,
    }
}

/// FW_A and FW_B with certificates from one CA, identities as DNs, `kind` keys, `mode`.
pub(super) fn gateways(ca: &Ca, kind: KeyKind, mode: ExchangeMode) -> (Gateway, Gateway, Leaf, Leaf) {
    let mut spec = LeafSpec::new("fw-a", kind);
    spec.dns = &["fw-a.example"];
    let leaf_a = ca.issue(&spec);
    let mut spec = LeafSpec::new("fw-b", kind);
    spec.dns = &["fw-b.example"];
    spec.serial = 3;
    let leaf_b = ca.issue(&spec);
    let proposal = IkeProposal { auth_method: method(kind), ..IkeProposal::recommended() };
    let mut a = Gateway::fw_a();
    let mut b = Gateway::fw_b();
    for (gw, own, peer_subject) in [(&mut a, &leaf_a, SUBJECT_B), (&mut b, &leaf_b, SUBJECT_A)] {
        gw.ike = vec![proposal];
        gw.mode = mode;
        // As `exchange-mode aggressive` sets it: the responder answers aggressive mode only
        // from a peer configured for it, signatures included.
        gw.accept_aggressive_from_peer = mode == ExchangeMode::Aggressive;
        gw.psk = "unused-with-signatures";
        gw.certificate = Some(auth(ca, own, &[], SendCertificate::Always));
        gw.local_id = Some(IdentityConfig::Dn(String::new()));
        gw.remote_id = Some(IdentityConfig::Dn(peer_subject.into()));
    }
    (a, b, leaf_a, leaf_b)
}

fn run(a: &Gateway, b: &Gateway) -> Pair {
    let mut pair = Pair::new(a, b, 7);
    pair.acquire_on_a(a.selector());
    pair.drive_until(10_000, |p| tunnel_up(p) || !failures(&p.a).is_empty() || !failures(&p.b).is_empty());
    pair
}

fn assert_up_with_certificates(pair: &Pair) {
    assert!(tunnel_up(pair), "a: {:?}\nb: {:?}", failures(&pair.a), failures(&pair.b));
    assert_keys_agree(pair);
    let view_a = pair.a.engine.ike_sas().next().expect("A has an IKE SA");
    let view_b = pair.b.engine.ike_sas().next().expect("B has an IKE SA");
    let cert_b = view_a.peer_certificate.expect("A saw B's certificate");
    let cert_a = view_b.peer_certificate.expect("B saw A's certificate");
    assert_eq!(cert_b.subject, SUBJECT_B);
    assert_eq!(cert_a.subject, SUBJECT_A);
    assert_eq!(cert_b.issuer, "C=CN, O=keysteward CA, CN=keysteward CA CA");
    assert_eq!((cert_b.not_before, cert_b.not_after), (NOW - 30 * DAY, NOW + 335 * DAY));
}

#[test]
fn test_signatures_every_key_kind_in_main_and_aggressive_mode() {
    for kind in [KeyKind::Rsa2048, KeyKind::Rsa3072, KeyKind::P256, KeyKind::P384] {
        let ca = Ca::new("keysteward CA", KeyKind::P256);
        for mode in [ExchangeMode::Main, ExchangeMode::Aggressive] {
            let (a, b, _, _) = gateways(&ca, kind, mode);
            let pair = run(&a, &b);
            assert_up_with_certificates(&pair);
            let suite = pair.a.engine.ike_sas().next().and_then(|v| v.suite).expect("suite");
            assert_eq!(suite.auth_method, method(kind), "{kind:?} {mode:?}");
        }
    }
}

/// The responder's failure in a main-mode exchange whose initiator A has `leaf_a`.
fn responder_failure(a: &Gateway, b: &Gateway) -> FailureReason {
    let pair = run(a, b);
    assert!(!tunnel_up(&pair));
    let failed = failures(&pair.b);
    failed.first().unwrap_or_else(|| panic!("B did not fail; A: {:?}", failures(&pair.a))).reason.clone()
}

#[test]
fn test_expired_certificate_is_refused_naming_the_date() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (mut a, b, _, _) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    let mut spec = LeafSpec::new("fw-a", KeyKind::P256);
    spec.not_before = NOW - 400 * DAY;
    spec.not_after = NOW - 2 * DAY;
    a.certificate = Some(auth(&ca, &ca.issue(&spec), &[], SendCertificate::Always));
    match responder_failure(&a, &b) {
        FailureReason::Authentication(AuthenticationFailure::Certificate(CertificateError::Expired {
            subject,
            not_after,
            now,
        })) => {
            assert_eq!((subject.as_str(), not_after), (SUBJECT_A, (NOW - 2 * DAY) as u64));
            // Checked at each of A's MM5s: the failure is that of the third (a refused
            // signature is dropped as unauthenticated twice first), a few seconds in.
            assert!((NOW as u64..NOW as u64 + 5).contains(&now), "{now}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn test_unknown_ca_is_refused_naming_the_issuer() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let rogue = Ca::new("Rogue", KeyKind::P256);
    let (mut a, b, _, _) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    // A trusts our CA (so it accepts B) but holds a certificate from another one.
    let leaf = rogue.issue(&LeafSpec::new("fw-a", KeyKind::P256));
    let key = signing_key_from_pem_or_der(&leaf.key_pkcs8).unwrap();
    a.certificate = Some(Arc::new(CertificateAuth {
        certificate: LocalCertificate::new(leaf.der.clone(), &key).unwrap(),
        key,
        trust: TrustStore::new(vec![ca.der.clone()], &[]).unwrap(),
        send_certificate: SendCertificate::Always,
    }));
    let reason = responder_failure(&a, &b);
    assert_eq!(
        reason.to_string(),
        format!("peer certificate refused: certificate '{SUBJECT_A}' issued by 'C=CN, O=Rogue, CN=Rogue CA' does not chain to a trusted CA")
    );
    assert_eq!(reason.notify(), Some(isakmp::NotifyType::InvalidCertificate));
}

#[test]
fn test_revoked_certificate_is_refused() {
    let ca = Ca::new("keysteward CA", KeyKind::Rsa2048);
    let (a, mut b, leaf_a, leaf_b) = gateways(&ca, KeyKind::Rsa2048, ExchangeMode::Main);
    b.certificate = Some(auth(&ca, &leaf_b, &[ca.crl(&[leaf_a.serial])], SendCertificate::Always));
    assert!(matches!(
        responder_failure(&a, &b),
        FailureReason::Authentication(AuthenticationFailure::Certificate(CertificateError::Revoked { subject, .. })) if subject == SUBJECT_A
    ));
    // A CRL that lists another serial changes nothing.
    b.certificate = Some(auth(&ca, &leaf_b, &[ca.crl(&[999])], SendCertificate::Always));
    assert_up_with_certificates(&run(&a, &b));
}

#[test]
fn test_identity_not_in_certificate_is_refused() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (mut a, mut b, _, _) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    // A presents an FQDN its certificate does not carry.
    a.local_id = Some(IdentityConfig::Fqdn("fw-z.example".into()));
    b.remote_id = None;
    match responder_failure(&a, &b) {
        FailureReason::Authentication(AuthenticationFailure::Certificate(
            CertificateError::IdentityNotInCertificate { presented, subject, looked_in },
        )) => {
            assert_eq!((presented.as_str(), subject.as_str()), ("fqdn fw-z.example", SUBJECT_A));
            assert_eq!(looked_in, "subjectAltName dNSName");
        }
        other => panic!("{other}"),
    }
    // The FQDN that is in the certificate is accepted, and may be the configured remote-id.
    a.local_id = Some(IdentityConfig::Fqdn("fw-a.example".into()));
    b.remote_id = Some(IdentityConfig::Fqdn("fw-a.example".into()));
    assert!(tunnel_up(&run(&a, &b)));
    // A valid certificate whose DN is not the configured remote-id.
    a.local_id = Some(IdentityConfig::Dn(String::new()));
    b.remote_id = Some(IdentityConfig::Dn("C=CN, O=keysteward test, CN=fw-c".into()));
    assert!(matches!(responder_failure(&a, &b), FailureReason::Identity(IdentityFailure::Mismatch { .. })));
}

#[test]
fn test_bad_signature_is_refused() {
    for kind in [KeyKind::Rsa2048, KeyKind::P256] {
        let ca = Ca::new("keysteward CA", KeyKind::P256);
        let (a, b, _, _) = gateways(&ca, kind, ExchangeMode::Main);
        fault::inject("CN=fw-a", SignatureFault::FlipBit);
        let reason = responder_failure(&a, &b);
        fault::clear();
        match reason {
            FailureReason::Authentication(AuthenticationFailure::SignatureInvalid {
                hash: "HASH_I",
                error,
            }) => {
                assert!(
                    matches!(error, SignatureError::BadSignature | SignatureError::BadPadding(_)),
                    "{error}"
                );
            }
            other => panic!("{kind:?}: {other}"),
        }
    }
}

#[test]
fn test_signature_with_trailing_bytes_after_the_hash_is_refused() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    // In aggressive mode the responder B signs HASH_R; A must refuse a block with extra bytes.
    let (a, b, _, _) = gateways(&ca, KeyKind::Rsa2048, ExchangeMode::Aggressive);
    fault::inject("CN=fw-b", SignatureFault::TrailingBytes(vec![0xAB; 4]));
    let pair = run(&a, &b);
    fault::clear();
    assert!(!tunnel_up(&pair));
    let failed = failures(&pair.a);
    assert!(
        matches!(
            failed.first().map(|f| &f.reason),
            Some(FailureReason::Authentication(AuthenticationFailure::SignatureInvalid {
                hash: "HASH_R",
                error: SignatureError::TrailingData { extra: 4 }
            }))
        ),
        "{failed:?}"
    );
    // Main mode, the initiator's signature.
    let (a, b, _, _) = gateways(&ca, KeyKind::Rsa3072, ExchangeMode::Main);
    fault::inject("CN=fw-a", SignatureFault::TrailingBytes(vec![0; 1]));
    let reason = responder_failure(&a, &b);
    fault::clear();
    assert!(matches!(
        reason,
        FailureReason::Authentication(AuthenticationFailure::SignatureInvalid {
            hash: "HASH_I",
            error: SignatureError::TrailingData { extra: 1 }
        })
    ));
}

#[test]
fn test_key_of_another_method_is_refused() {
    // Both negotiate ECDSA P-256, but A's certificate holds a P-384 key.
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (mut a, b, _, _) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    a.certificate =
        Some(auth(&ca, &ca.issue(&LeafSpec::new("fw-a", KeyKind::P384)), &[], SendCertificate::Always));
    assert_eq!(
        responder_failure(&a, &b).to_string(),
        "peer certificate key ecdsa-p384 cannot sign for the negotiated method ecdsa-signature (P-256)"
    );
}

#[test]
fn test_certificate_requests_name_our_ca_and_when_asked_policy() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (mut a, mut b, leaf_a, leaf_b) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    a.certificate = Some(auth(&ca, &leaf_a, &[], SendCertificate::WhenAsked));
    b.certificate = Some(auth(&ca, &leaf_b, &[], SendCertificate::WhenAsked));
    let pair = run(&a, &b);
    assert_up_with_certificates(&pair);
    // MM3 (A's second message) carries a CR naming the CA's subject.
    let store = TrustStore::new(vec![ca.der.clone()], &[]).expect("trust store");
    let ca_subject = store.ca_names().next().map(<[u8]>::to_vec).expect("CA subject");
    let mm3 = Message::parse(&pair.a.sent[1]).expect("MM3 parses");
    let requests: Vec<_> = mm3
        .payloads()
        .iter()
        .filter_map(|p| match p {
            Payload::CertificateRequest(cr) => Some((cr.encoding, cr.authority.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(requests, vec![(CertificateEncoding::X509Signature, ca_subject)]);
}

#[test]
fn test_no_wall_clock_refuses_rather_than_guesses() {
    let ca = Ca::new("keysteward CA", KeyKind::P256);
    let (a, b, _, _) = gateways(&ca, KeyKind::P256, ExchangeMode::Main);
    let mut pair = Pair::new(&a, &b, 7);
    pair.b.engine = crate::Engine::new(b.config(), Box::new(super::util::TestRng(99)));
    pair.acquire_on_a(a.selector());
    pair.drive_until(10_000, |p| !failures(&p.b).is_empty());
    assert!(matches!(
        failures(&pair.b).first().map(|f| &f.reason),
        Some(FailureReason::Authentication(AuthenticationFailure::CertificateUnavailable(
            "the engine was given no wall clock"
        )))
    ));
}
