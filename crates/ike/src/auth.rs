//! Phase-1 authentication, shared by main and aggressive mode: the check of a HASH_I / HASH_R
//! under a pre-shared key (RFC 2409 §5, [`verify_psk_hash`]), and signatures with X.509
//! certificates (RFC 2409 §5.1, RFC 4754, the PKI profile of RFC 4945), below.
//!
//! ```text
//! MM3 HDR, KE, Ni, [CR…]            MM4 HDR, KE, Nr, [CR…]
//! MM5 HDR*, IDii, [CERT], SIG_I     MM6 HDR*, IDir, [CERT], SIG_R
//! AM1 HDR, SA, KE, Ni, IDii, [CR…]
//! AM2 HDR, SA, KE, Nr, IDir, [CERT], [CR…], SIG_R
//! AM3 HDR*, [CERT], SIG_I
//! ```
//!
//! - SKEYID = prf(Ni_b | Nr_b, g^xy); the SIG payload signs HASH_I / HASH_R itself: RSA
//!   PKCS#1 v1.5 without DigestInfo, ECDSA `r || s` (`crypto::signature`).
//! - For the ECDSA methods, HASH_I / HASH_R are computed with HMAC of the curve's hash
//!   (SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521) keyed with SKEYID, whatever
//!   hash the proposal negotiated: RFC 4754 §3 ties the hash to the curve, and strongSwan
//!   (`keymat_v1.c`) builds the hashes so; SKEYID and the phase-1 keys keep the negotiated PRF.
//! - CR payloads name each trusted CA by its DER subject. Our certificate goes in a CERT
//!   payload always, or only when the peer sent a CR ([`SendCertificate`]).
//! - The peer's first X.509 CERT is its end-entity certificate; further ones are offered as
//!   intermediates. It must chain to a configured CA at the wall-clock time the driver gave
//!   ([`crate::Engine::set_wall_clock`]), pass the CRLs, key usage and EKU checks, carry a key
//!   of the negotiated method, verify the SIG, and contain the ID payload's identity (DN =
//!   subject, FQDN / USER_FQDN / IP in subjectAltName). Each failure is its own
//!   [`FailureReason`].

use crypto::key_schedule::{AuthHashInput, HashVerified};
use crypto::{CertificateSummary, Digest, HashAlgorithm, HashFunction, PresentedIdentity, SignatureVerified};
use isakmp::{Certificate, CertificateEncoding, CertificateRequest, Identification, Identity, Payload};

use crate::config::{AuthMethod, IkeProposal, PeerConfig, SendCertificate};
use crate::failure::{AuthenticationFailure, FailureReason, MalformedFailure};
use crate::sa::keys::Phase1Material;

/// What proved the peer's identity: a HASH under a pre-shared key or a signature under a
/// verified certificate. Only the checks make one, so no SA is established without either.
#[derive(Debug)]
pub(crate) enum PeerProof {
    /// HASH_I / HASH_R verified.
    Hash(HashVerified),
    /// SIG over HASH_I / HASH_R verified with a certificate that chained to our CA.
    Signature(SignatureVerified),
}

/// Checks the peer's HASH_I (`from_initiator`) or HASH_R under a pre-shared key, in constant
/// time, over `id_b` (its ID payload body as received) and `input`; `which` names the hash in
/// the failure (the pre-shared keys probably differ).
pub(crate) fn verify_psk_hash(
    material: &Phase1Material,
    input: &AuthHashInput<'_>,
    id_b: &[u8],
    hash: &[u8],
    from_initiator: bool,
    which: &'static str,
) -> Result<PeerProof, FailureReason> {
    let verified = if from_initiator {
        material.skeyid.verify_hash_i(input, id_b, hash)
    } else {
        material.skeyid.verify_hash_r(input, id_b, hash)
    };
    let verified = verified.map_err(|_| AuthenticationFailure::HashMismatch { hash: which })?;
    Ok(PeerProof::Hash(verified))
}

/// The PRF HASH_I / HASH_R are computed with under `method` (module doc).
fn auth_prf(method: AuthMethod, negotiated: HashAlgorithm) -> HashAlgorithm {
    match method {
        AuthMethod::EcdsaP256 => HashAlgorithm::Sha256,
        AuthMethod::EcdsaP384 => HashAlgorithm::Sha384,
        AuthMethod::EcdsaP521 => HashAlgorithm::Sha512,
        AuthMethod::PreSharedKey | AuthMethod::RsaSignature => negotiated,
    }
}

/// HASH_I (`initiator`) or HASH_R for a signature method, as signed in the SIG payload.
pub(crate) fn signed_hash(
    suite: &IkeProposal,
    material: &Phase1Material,
    input: &AuthHashInput<'_>,
    id_b: &[u8],
    initiator: bool,
) -> Digest {
    let prf = auth_prf(suite.auth_method, suite.hash);
    if prf == material.skeyid.prf() {
        return if initiator {
            material.skeyid.hash_i(input, id_b)
        } else {
            material.skeyid.hash_r(input, id_b)
        };
    }
    let key = material.skeyid.expose();
    if initiator {
        prf.hmac(key, &[input.g_xi, input.g_xr, &input.cky_i, &input.cky_r, input.sai_b, id_b])
    } else {
        prf.hmac(key, &[input.g_xr, input.g_xi, &input.cky_r, &input.cky_i, input.sai_b, id_b])
    }
}

/// The CR payloads we send when `method` is a signature method: one per trusted CA.
pub(crate) fn certificate_requests(peer: &PeerConfig, method: AuthMethod) -> Vec<Payload<'_>> {
    let Some(auth) = peer.certificate.as_deref().filter(|_| method.is_signature()) else { return Vec::new() };
    auth.trust
        .ca_names()
        .map(|authority| {
            Payload::CertificateRequest(CertificateRequest {
                encoding: CertificateEncoding::X509Signature,
                authority,
            })
        })
        .collect()
}

/// Whether the peer asked for a certificate (any CR payload).
pub(crate) fn peer_requested_certificate(payloads: &[Payload<'_>]) -> bool {
    payloads.iter().any(|p| matches!(p, Payload::CertificateRequest(_)))
}

/// The CERT payload to send (if any) and the SIG body.
pub(crate) type SignedProof<'c> = (Option<&'c [u8]>, Vec<u8>);

/// Our proof for MM5 / MM6 / AM2 / AM3: under a signature method the CERT payload and SIG
/// body of [`sign`]; under pre-shared keys `None` (the hash goes out as HASH instead). One
/// place for all four messages, so none of them decides the method differently.
pub(crate) fn sign_if_signature<'c>(
    suite: &IkeProposal,
    peer: &'c PeerConfig,
    hash: &[u8],
    peer_asked: bool,
) -> Result<Option<SignedProof<'c>>, FailureReason> {
    if suite.auth_method.is_signature() {
        sign(peer, hash, peer_asked).map(Some)
    } else {
        Ok(None)
    }
}

/// Our proof for MM5 / MM6 / AM2 / AM3 under a signature method: the CERT payload (per the
/// send policy) and the SIG body over `hash`.
pub(crate) fn sign<'c>(
    peer: &'c PeerConfig,
    hash: &[u8],
    peer_asked: bool,
) -> Result<SignedProof<'c>, FailureReason> {
    let auth = peer.certificate.as_deref().ok_or(FailureReason::Authentication(
        AuthenticationFailure::CertificateUnavailable("no certificate configured for this peer"),
    ))?;
    #[cfg(test)]
    let signature = fault::sign(auth, hash)
        .map_err(|e| FailureReason::Authentication(AuthenticationFailure::SigningFailed(e)))?;
    #[cfg(not(test))]
    let signature = auth
        .key
        .sign(hash)
        .map_err(|e| FailureReason::Authentication(AuthenticationFailure::SigningFailed(e)))?;
    let send = match auth.send_certificate {
        SendCertificate::Always => true,
        SendCertificate::WhenAsked => peer_asked,
    };
    Ok((send.then(|| auth.certificate.der()), signature))
}

/// The payloads carrying our signature proof: `[CERT], SIG`.
pub(crate) fn proof_payloads<'a>(certificate: Option<&'a [u8]>, signature: &'a [u8]) -> Vec<Payload<'a>> {
    let mut payloads = Vec::new();
    if let Some(data) = certificate {
        payloads
            .push(Payload::Certificate(Certificate { encoding: CertificateEncoding::X509Signature, data }));
    }
    payloads.push(Payload::Signature(signature));
    payloads
}

/// Maps an ID payload's identity to what certificates are matched against; other ID types
/// cannot be found in a certificate.
fn presented<'a>(identity: &Identity<'a>) -> Option<PresentedIdentity<'a>> {
    Some(match *identity {
        Identity::DerAsn1Dn(der) => PresentedIdentity::Dn(der),
        Identity::Fqdn(name) => PresentedIdentity::Fqdn(name),
        Identity::UserFqdn(name) => PresentedIdentity::UserFqdn(name),
        Identity::Ipv4Addr(a) => PresentedIdentity::Ip(a.into()),
        Identity::Ipv6Addr(a) => PresentedIdentity::Ip(a.into()),
        _ => return None,
    })
}

/// Checks the peer's signature proof in `payloads` (its CERTs and SIG) over `hash` (the
/// HASH_I or HASH_R we computed, named by `which`) and that its ID `id` is in the certificate.
/// Returns the proof and the certificate's facts for the SA's view.
pub(crate) fn verify_peer(
    peer: &PeerConfig,
    suite: &IkeProposal,
    payloads: &[Payload<'_>],
    id: &Identification<'_>,
    hash: &[u8],
    which: &'static str,
    unix_time: Option<u64>,
) -> Result<(PeerProof, CertificateSummary), FailureReason> {
    let auth = peer.certificate.as_deref().ok_or(FailureReason::Authentication(
        AuthenticationFailure::CertificateUnavailable("no certificate configured for this peer"),
    ))?;
    let now = unix_time.ok_or(FailureReason::Authentication(
        AuthenticationFailure::CertificateUnavailable("the engine was given no wall clock"),
    ))?;
    let signature = payloads
        .iter()
        .find_map(|p| match p {
            Payload::Signature(s) => Some(*s),
            _ => None,
        })
        .ok_or(FailureReason::missing_payload("SIG"))?;
    let mut certificates = payloads.iter().filter_map(|p| match p {
        Payload::Certificate(c) if c.encoding == CertificateEncoding::X509Signature => Some(c.data),
        _ => None,
    });
    let end_entity = certificates
        .next()
        .ok_or(FailureReason::Malformed(MalformedFailure::MissingPayload("CERT (X.509 signature)")))?;
    // A bounded number of intermediates: a peer cannot make us try paths without end.
    let intermediates: Vec<&[u8]> = certificates.take(4).collect();
    let verified = auth.trust.verify(end_entity, &intermediates, now).map_err(FailureReason::from)?;
    let key = verified.key().algorithm();
    if !suite.auth_method.accepts_key(key) {
        return Err(FailureReason::Authentication(AuthenticationFailure::CertificateKeyMismatch {
            method: method_name(suite.auth_method),
            key,
        }));
    }
    let proof = verified.key().verify(hash, signature).map_err(|error| {
        FailureReason::Authentication(AuthenticationFailure::SignatureInvalid { hash: which, error })
    })?;
    let identity = presented(&id.identity).ok_or_else(|| {
        FailureReason::Authentication(AuthenticationFailure::Certificate(
            crypto::CertificateError::IdentityNotInCertificate {
                presented: crate::identity::describe_identity(&id.identity),
                subject: verified.summary().subject.clone(),
                looked_in: "no certificate field holds this ID type",
            },
        ))
    })?;
    verified.check_identity(&identity).map_err(FailureReason::from)?;
    Ok((PeerProof::Signature(proof), verified.summary().clone()))
}

fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::PreSharedKey => "pre-share",
        AuthMethod::RsaSignature => "rsa-signature",
        AuthMethod::EcdsaP256 => "ecdsa-signature (P-256)",
        AuthMethod::EcdsaP384 => "ecdsa-signature (P-384)",
        AuthMethod::EcdsaP521 => "ecdsa-signature (P-521)",
    }
}

/// Signature faults for the engine tests: a forged signature cannot be made from outside the
/// encrypted MM5/MM6, so a test asks the signer of one certificate to misbehave.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::RefCell;

    use crate::config::CertificateAuth;

    /// How the signer named in [`inject`] misbehaves.
    #[derive(Debug, Clone)]
    pub(crate) enum SignatureFault {
        /// Sign `hash || extra` instead of `hash`: a well-padded PKCS#1 block with bytes after
        /// the hash (the CVE-2018-16151 shape).
        TrailingBytes(Vec<u8>),
        /// Flip a bit of the finished signature.
        FlipBit,
    }

    thread_local! {
        static FAULT: RefCell<Option<(String, SignatureFault)>> = const { RefCell::new(None) };
    }

    /// Makes the signer whose certificate subject contains `subject` misbehave (this thread).
    pub(crate) fn inject(subject: &str, fault: SignatureFault) {
        FAULT.with(|f| *f.borrow_mut() = Some((subject.to_owned(), fault)));
    }

    /// Clears any fault.
    pub(crate) fn clear() {
        FAULT.with(|f| *f.borrow_mut() = None);
    }

    pub(super) fn sign(auth: &CertificateAuth, hash: &[u8]) -> Result<Vec<u8>, crypto::SignatureError> {
        let fault = FAULT.with(|f| {
            f.borrow()
                .as_ref()
                .filter(|(subject, _)| auth.certificate.summary().subject.contains(subject.as_str()))
                .map(|(_, fault)| fault.clone())
        });
        match fault {
            None => auth.key.sign(hash),
            Some(SignatureFault::TrailingBytes(extra)) => {
                let mut longer = hash.to_vec();
                longer.extend_from_slice(&extra);
                auth.key.sign(&longer)
            }
            Some(SignatureFault::FlipBit) => {
                let mut signature = auth.key.sign(hash)?;
                if let Some(byte) = signature.get_mut(10) {
                    *byte ^= 0x01;
                }
                Ok(signature)
            }
        }
    }
}
