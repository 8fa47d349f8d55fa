//! Why an exchange failed, grouped by cause: the proposals, authentication, identities, a
//! notification from the peer, a timeout, a malformed message, or our own policy and limits.
//! Each reason prints as one line written for an operator (`display ike error-info`, the
//! logs), naming algorithms the way the VRP configuration does (`aes-256`, `sha2-256`,
//! `group14`) and notifications by their RFC names (`NO-PROPOSAL-CHOSEN`); no `Debug`
//! formatting reaches that line.

use core::fmt;
use std::time::Duration;

use crypto::DhError;
use hub_limits::{FlowRefusal, LimitRefusal};
use isakmp::{NotifyType, ParseError};

use crate::proposal::{IpsecMismatch, Phase1Mismatch};

/// Why an exchange failed, by cause.
#[derive(Debug, Clone)]
pub enum FailureReason {
    /// No proposal in common.
    Proposal(ProposalFailure),
    /// The peer (or we) could not be authenticated.
    Authentication(AuthenticationFailure),
    /// An identity or a proxy identity was not the one allowed.
    Identity(IdentityFailure),
    /// The peer answered with an error notification.
    PeerNotified(NotifyType),
    /// The peer did not answer in time.
    Timeout(TimeoutFailure),
    /// A message from the peer could not be read.
    Malformed(MalformedFailure),
    /// Our own policy or limits refused or abandoned the exchange.
    Policy(PolicyFailure),
}

/// No proposal in common.
#[derive(Debug, Clone)]
pub enum ProposalFailure {
    /// No phase-1 proposal in common.
    Phase1(Phase1Mismatch),
    /// No quick-mode proposal in common.
    Ipsec(IpsecMismatch),
}

/// Authentication failed: a hash, a key, a certificate or a signature.
#[derive(Debug, Clone)]
pub enum AuthenticationFailure {
    /// A HASH_I / HASH_R did not verify.
    HashMismatch {
        /// Which hash.
        hash: &'static str,
    },
    /// An encrypted phase-1 message decrypted to garbage.
    KeysDiffer {
        /// Which message.
        message: &'static str,
    },
    /// A quick-mode or informational HASH did not verify.
    InvalidHash {
        /// Which hash.
        hash: &'static str,
    },
    /// The peer's certificate was refused; the error names the check (chain, validity,
    /// revocation, key usage, identity).
    Certificate(crypto::CertificateError),
    /// The peer's SIG payload over HASH_I / HASH_R did not verify under its certificate's key.
    SignatureInvalid {
        /// Which hash was signed.
        hash: &'static str,
        /// Why the signature was refused.
        error: crypto::SignatureError,
    },
    /// The peer's certificate key does not fit the negotiated method (an RSA key under an
    /// ECDSA method, or another curve).
    CertificateKeyMismatch {
        /// The negotiated method.
        method: &'static str,
        /// The certificate's key.
        key: crypto::SignatureAlgorithm,
    },
    /// A signature method was negotiated but this peer has no certificate configuration, or
    /// no wall clock was given to check certificate validity
    /// ([`Engine::set_wall_clock`](crate::Engine::set_wall_clock)).
    CertificateUnavailable(&'static str),
    /// Signing our HASH failed inside the crypto library.
    SigningFailed(crypto::SignatureError),
}

/// An identity was not the one allowed.
#[derive(Debug, Clone)]
pub enum IdentityFailure {
    /// The peer presented an identity other than the configured `remote-id`.
    Mismatch {
        /// What it presented.
        received: String,
        /// What we expected.
        expected: String,
    },
    /// The proxy identities of a quick mode match none of our policies for the peer.
    ProxyIdNotAllowed {
        /// The flow the peer proposed.
        proposed: String,
    },
}

/// The peer did not answer in time.
#[derive(Debug, Clone)]
pub enum TimeoutFailure {
    /// No answer after every retransmission, or the exchange's deadline passed.
    NoAnswer {
        /// How many retransmissions were sent.
        retransmissions: u32,
        /// How long we waited in all.
        waited: Duration,
    },
    /// The exchange gave up, and what the peer did send could not be authenticated (it did
    /// not decrypt, its HASH or signature did not verify, or it was an error notify in
    /// clear): each was dropped, and the last one's reason is the likely cause.
    OnlyUnauthenticated {
        /// How many retransmissions were sent.
        retransmissions: u32,
        /// How long we waited in all.
        waited: Duration,
        /// Why the last unauthenticated message was dropped.
        last: Box<FailureReason>,
    },
}

/// A message from the peer could not be read.
#[derive(Debug, Clone)]
pub enum MalformedFailure {
    /// The message does not parse.
    InvalidMessage(ParseError),
    /// A required payload was missing.
    MissingPayload(&'static str),
    /// The message could not be decrypted (wrong length or key).
    Undecryptable,
    /// The peer's KE payload was refused (wrong length for the group, or an invalid value).
    KeyExchange(DhError),
}

/// Our own policy or limits refused or abandoned the exchange.
#[derive(Debug, Clone)]
pub enum PolicyFailure {
    /// No peer is configured for the address.
    UnknownPeer,
    /// A first message's SA payload (`size` bytes) is larger than a half-open SA keeps
    /// (`limit`, [`crate::Limits::max_first_sa_payload`]): dropped before any work, no reply.
    #[allow(missing_docs)] // the fields are named in the variant's description
    SaPayloadTooLarge { size: usize, limit: usize },
    /// An aggressive-mode request arrived for a peer authenticated by pre-shared key whose
    /// `exchange-mode` is main ([`PeerConfig::accept_aggressive_mode`](crate::PeerConfig::accept_aggressive_mode)
    /// is off), or for no peer. It gets no reply at all: an answer would hand out HASH_R for
    /// offline cracking (an error notify would also tell a scanner that the gateway speaks
    /// IKEv1 aggressive mode), and a spoofed AM1 must not make us send anything (no
    /// amplification).
    AggressiveModePskRefused,
    /// The same for a peer authenticated by signatures: no reply, no Diffie-Hellman, no
    /// signature, and our certificate is not reflected to the AM1's source.
    AggressiveModeNotConfigured,
    /// The aggressive-mode responder's rate limit
    /// ([`Limits::aggressive_mode_responses_per_second`](crate::Limits::aggressive_mode_responses_per_second))
    /// refused the request before any work.
    AggressiveModeRateLimited,
    /// A configuration reload changed or removed the peer or policy the exchange served, so
    /// it was abandoned (`Engine::reconfigure`); the peer's retransmissions go unanswered
    /// and it gives up in turn.
    Reconfigured,
    /// A flow a branch proposed through a template conflicts (issue 13; INVALID-ID-INFORMATION).
    FlowRefused(Box<FlowRefusal>),
    /// A cap of a template was reached (`sa max …`; NO-PROPOSAL-CHOSEN, or the IKE SA deleted).
    LimitReached(Box<LimitRefusal>),
    /// The peer has a user table (per-site keys) and the site is not in it: `site` is
    /// `address A` (main mode, by source address) or `identity fqdn N` (aggressive mode, by
    /// the AM1's ID, escaped). Refused before any work, no reply.
    #[allow(missing_docs)] // the field is named in the variant's description
    NotInUserTable { site: String },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proposal(p) => p.fmt(f),
            Self::Authentication(a) => a.fmt(f),
            Self::Identity(i) => i.fmt(f),
            Self::PeerNotified(n) => write!(f, "peer sent notify {}", NotifyName(*n)),
            Self::Timeout(t) => t.fmt(f),
            Self::Malformed(m) => m.fmt(f),
            Self::Policy(p) => p.fmt(f),
        }
    }
}

impl fmt::Display for ProposalFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Phase1(m) => write!(f, "IKE proposal mismatch: {m}"),
            Self::Ipsec(m) => write!(f, "IPsec proposal mismatch: {m}"),
        }
    }
}

impl fmt::Display for AuthenticationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HashMismatch { hash } => {
                write!(f, "{hash} did not verify: the pre-shared keys probably differ")
            }
            Self::KeysDiffer { message } => {
                write!(f, "{message} decrypted to garbage: the pre-shared keys probably differ")
            }
            Self::InvalidHash { hash } => {
                write!(f, "{hash} did not verify: message altered or keys out of step")
            }
            Self::Certificate(e) => write!(f, "peer certificate refused: {e}"),
            Self::SignatureInvalid { hash, error } => {
                write!(f, "signature over {hash} did not verify with the peer certificate's key: {error}")
            }
            Self::CertificateKeyMismatch { method, key } => {
                write!(f, "peer certificate key {key} cannot sign for the negotiated method {method}")
            }
            Self::CertificateUnavailable(why) => write!(f, "certificate authentication unavailable: {why}"),
            Self::SigningFailed(e) => write!(f, "could not sign our HASH: {e}"),
        }
    }
}

impl fmt::Display for IdentityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mismatch { received, expected } => {
                write!(f, "peer identity {received} is not the configured remote-id {expected}")
            }
            Self::ProxyIdNotAllowed { proposed } => {
                write!(f, "proposed flow {proposed} is not covered by any ACL of the policies for this peer")
            }
        }
    }
}

impl fmt::Display for TimeoutFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAnswer { retransmissions, waited } => {
                write!(f, "no answer after {retransmissions} retransmissions in {} s", waited.as_secs())
            }
            Self::OnlyUnauthenticated { retransmissions, waited, last } => write!(
                f,
                "no authenticated answer after {retransmissions} retransmissions in {} s; \
                 the last message dropped as unauthenticated: {last}",
                waited.as_secs()
            ),
        }
    }
}

impl fmt::Display for MalformedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidMessage(e) => write!(f, "malformed message: {e}"),
            Self::MissingPayload(p) => write!(f, "required {p} payload missing"),
            Self::Undecryptable => f.write_str("message could not be decrypted"),
            Self::KeyExchange(e) => write!(f, "peer's KE payload refused: {e}"),
        }
    }
}

impl fmt::Display for PolicyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPeer => f.write_str("no ike peer is configured for this address"),
            Self::SaPayloadTooLarge { size, limit } => write!(
                f,
                "first message refused before any work: its SA payload is {size} bytes, more than \
                 the {limit} a half-open IKE SA keeps"
            ),
            Self::AggressiveModePskRefused => write!(
                f,
                "aggressive mode with pre-shared keys refused as responder, no reply sent \
                 (allowed neither for this peer nor for any: set exchange-mode aggressive or auto \
                 on its ike peer to accept it): {}",
                crate::config::AGGRESSIVE_MODE_PSK_RISK
            ),
            Self::AggressiveModeNotConfigured => f.write_str(
                "aggressive mode refused as responder, no reply sent: the ike peer's exchange-mode \
                 is main (aggressive or auto accepts it)",
            ),
            Self::AggressiveModeRateLimited => f.write_str(
                "aggressive mode refused as responder, no reply sent: over the rate limit of \
                 first aggressive-mode messages answered per second",
            ),
            Self::Reconfigured => {
                f.write_str("abandoned: a configuration reload changed or removed its peer or policy")
            }
            Self::FlowRefused(r) => r.fmt(f),
            Self::LimitReached(r) => r.fmt(f),
            Self::NotInUserTable { site } => write!(
                f,
                "{site} is not in the ike user-table of this peer: no pre-shared key for it, refused \
                 before any work, no reply sent"
            ),
        }
    }
}

impl FailureReason {
    /// A required payload was missing (`Malformed`).
    pub(crate) fn missing_payload(payload: &'static str) -> Self {
        Self::Malformed(MalformedFailure::MissingPayload(payload))
    }

    /// The notification to send the peer for this failure, if one may be sent.
    pub(crate) fn notify(&self) -> Option<NotifyType> {
        use AuthenticationFailure as A;
        Some(match self {
            Self::Proposal(_) => NotifyType::NoProposalChosen,
            Self::Authentication(A::HashMismatch { .. } | A::KeysDiffer { .. }) => {
                NotifyType::AuthenticationFailed
            }
            Self::Authentication(A::InvalidHash { .. }) => NotifyType::InvalidHashInformation,
            Self::Authentication(A::Certificate(_) | A::CertificateKeyMismatch { .. }) => {
                NotifyType::InvalidCertificate
            }
            Self::Authentication(A::SignatureInvalid { .. }) => NotifyType::InvalidSignature,
            Self::Authentication(A::CertificateUnavailable(_) | A::SigningFailed(_)) => {
                NotifyType::CertificateUnavailable
            }
            Self::Identity(_) => NotifyType::InvalidIdInformation,
            Self::Policy(PolicyFailure::FlowRefused(_)) => NotifyType::InvalidIdInformation,
            Self::Policy(PolicyFailure::LimitReached(_)) => NotifyType::NoProposalChosen,
            Self::Malformed(MalformedFailure::KeyExchange(_)) => NotifyType::InvalidKeyInformation,
            // The parser knows the precise type (INVALID-SPI, INVALID-MAJOR-VERSION, …).
            Self::Malformed(MalformedFailure::InvalidMessage(error)) => error.notify_type(),
            Self::Malformed(MalformedFailure::MissingPayload(_)) => NotifyType::PayloadMalformed,
            Self::Malformed(MalformedFailure::Undecryptable)
            | Self::PeerNotified(_)
            | Self::Timeout(_)
            | Self::Policy(_) => return None,
        })
    }
}

impl From<ProposalFailure> for FailureReason {
    fn from(p: ProposalFailure) -> Self {
        Self::Proposal(p)
    }
}

impl From<Phase1Mismatch> for FailureReason {
    fn from(m: Phase1Mismatch) -> Self {
        Self::Proposal(ProposalFailure::Phase1(m))
    }
}

impl From<IpsecMismatch> for FailureReason {
    fn from(m: IpsecMismatch) -> Self {
        Self::Proposal(ProposalFailure::Ipsec(m))
    }
}

impl From<AuthenticationFailure> for FailureReason {
    fn from(a: AuthenticationFailure) -> Self {
        Self::Authentication(a)
    }
}

impl From<crypto::CertificateError> for FailureReason {
    fn from(e: crypto::CertificateError) -> Self {
        Self::Authentication(AuthenticationFailure::Certificate(e))
    }
}

impl From<IdentityFailure> for FailureReason {
    fn from(i: IdentityFailure) -> Self {
        Self::Identity(i)
    }
}

impl From<TimeoutFailure> for FailureReason {
    fn from(t: TimeoutFailure) -> Self {
        Self::Timeout(t)
    }
}

impl From<MalformedFailure> for FailureReason {
    fn from(m: MalformedFailure) -> Self {
        Self::Malformed(m)
    }
}

impl From<ParseError> for FailureReason {
    fn from(e: ParseError) -> Self {
        Self::Malformed(MalformedFailure::InvalidMessage(e))
    }
}

impl From<DhError> for FailureReason {
    fn from(e: DhError) -> Self {
        Self::Malformed(MalformedFailure::KeyExchange(e))
    }
}

impl From<PolicyFailure> for FailureReason {
    fn from(p: PolicyFailure) -> Self {
        Self::Policy(p)
    }
}

/// A notify message type by its RFC name (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706 §5),
/// or its number for one we do not know.
pub struct NotifyName(pub NotifyType);

impl fmt::Display for NotifyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            NotifyType::InvalidPayloadType => "INVALID-PAYLOAD-TYPE",
            NotifyType::DoiNotSupported => "DOI-NOT-SUPPORTED",
            NotifyType::SituationNotSupported => "SITUATION-NOT-SUPPORTED",
            NotifyType::InvalidCookie => "INVALID-COOKIE",
            NotifyType::InvalidMajorVersion => "INVALID-MAJOR-VERSION",
            NotifyType::InvalidMinorVersion => "INVALID-MINOR-VERSION",
            NotifyType::InvalidExchangeType => "INVALID-EXCHANGE-TYPE",
            NotifyType::InvalidFlags => "INVALID-FLAGS",
            NotifyType::InvalidMessageId => "INVALID-MESSAGE-ID",
            NotifyType::InvalidProtocolId => "INVALID-PROTOCOL-ID",
            NotifyType::InvalidSpi => "INVALID-SPI",
            NotifyType::InvalidTransformId => "INVALID-TRANSFORM-ID",
            NotifyType::AttributesNotSupported => "ATTRIBUTES-NOT-SUPPORTED",
            NotifyType::NoProposalChosen => "NO-PROPOSAL-CHOSEN",
            NotifyType::BadProposalSyntax => "BAD-PROPOSAL-SYNTAX",
            NotifyType::PayloadMalformed => "PAYLOAD-MALFORMED",
            NotifyType::InvalidKeyInformation => "INVALID-KEY-INFORMATION",
            NotifyType::InvalidIdInformation => "INVALID-ID-INFORMATION",
            NotifyType::InvalidCertEncoding => "INVALID-CERT-ENCODING",
            NotifyType::InvalidCertificate => "INVALID-CERTIFICATE",
            NotifyType::CertTypeUnsupported => "CERT-TYPE-UNSUPPORTED",
            NotifyType::InvalidCertAuthority => "INVALID-CERT-AUTHORITY",
            NotifyType::InvalidHashInformation => "INVALID-HASH-INFORMATION",
            NotifyType::AuthenticationFailed => "AUTHENTICATION-FAILED",
            NotifyType::InvalidSignature => "INVALID-SIGNATURE",
            NotifyType::AddressNotification => "ADDRESS-NOTIFICATION",
            NotifyType::NotifySaLifetime => "NOTIFY-SA-LIFETIME",
            NotifyType::CertificateUnavailable => "CERTIFICATE-UNAVAILABLE",
            NotifyType::UnsupportedExchangeType => "UNSUPPORTED-EXCHANGE-TYPE",
            NotifyType::UnequalPayloadLengths => "UNEQUAL-PAYLOAD-LENGTHS",
            NotifyType::Connected => "CONNECTED",
            NotifyType::InitialContact => "INITIAL-CONTACT",
            NotifyType::ResponderLifetime => "RESPONDER-LIFETIME",
            NotifyType::ReplayStatus => "REPLAY-STATUS",
            NotifyType::DpdRUThere => "R-U-THERE",
            NotifyType::DpdRUThereAck => "R-U-THERE-ACK",
            NotifyType::UnityLoadBalance => "UNITY-LOAD-BALANCE",
            other => return write!(f, "type {}", u16::from(other)),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crypto::SignatureError;
    use crypto::{
        CertificateError, DhGroup, EspCipher, HashAlgorithm, Integrity, Phase1Cipher, SignatureAlgorithm,
    };
    use isakmp::NotifyType;

    use super::*;
    use crate::config::{AuthMethod, EncapsulationMode, IkeProposal, IpsecProposal, IpsecProtocols};
    use crate::proposal::{IpsecOffer, IpsecSuite, Phase1Offer};
    use hub_limits::{FlowConflict, HubLimit};

    /// What an operator must never read: `Debug` output of options, structs, tuples and enum
    /// variants, paths, and more than one line.
    fn assert_operator_line(text: &str) {
        assert!(!text.is_empty() && !text.contains('\n'), "one line: {text:?}");
        for artifact in ["Some(", "None", "{", "}", "::", "\"", "[", "]"] {
            assert!(!text.contains(artifact), "{artifact:?} in {text:?}");
        }
        let chars: Vec<char> = text.chars().chain([' ']).collect();
        for w in chars.windows(3) {
            // `Foo(x` is a Debug tuple (`HASH(2)` is the RFC's name of a hash); `aB` inside a
            // word is a Debug variant name like `NoProposalChosen` or `DerAsn1Dn`.
            let tuple = w[0].is_alphanumeric() && w[1] == '(' && !w[2].is_ascii_digit();
            assert!(!tuple, "Debug tuple in {text:?}");
            assert!(!(w[0].is_lowercase() && w[1].is_uppercase()), "Debug name in {text:?}");
        }
    }

    fn ipsec_suite(protocols: IpsecProtocols) -> IpsecSuite {
        IpsecSuite {
            proposal: IpsecProposal { protocols, mode: EncapsulationMode::Tunnel },
            pfs: Some(DhGroup::Modp2048),
            lifetime: Duration::from_secs(3600),
            lifetime_kilobytes: None,
        }
    }

    fn proposal_failures() -> Vec<FailureReason> {
        let ours = IkeProposal {
            encryption: Phase1Cipher::Aes128,
            hash: HashAlgorithm::Sha256,
            auth_method: AuthMethod::PreSharedKey,
            group: DhGroup::Modp2048,
            lifetime: Duration::from_secs(86_400),
        };
        let offer = |encryption, hash, auth_method, group| Phase1Offer {
            encryption,
            hash,
            auth_method,
            group,
            lifetime: None,
        };
        let phase1 = Phase1Mismatch {
            // aes-256/sha2-512/group16 (known), AES without a key length, unknown numbers.
            offered: vec![
                offer((7, Some(256)), 6, 1, 16),
                offer((7, None), 2, 3, 14),
                offer((65001, Some(512)), 99, 65002, 99),
            ],
            accepted: vec![ours],
        };
        // The example: `esp transform 12 auth Some(5) mode Some(1) group None`.
        let ipsec = IpsecMismatch {
            offered: vec![
                IpsecOffer::with_attributes(Some((12, None)), Some(5), None, Some(1), None),
                IpsecOffer::with_attributes(Some((12, Some(128))), Some(2), None, Some(61443), Some(14)),
                IpsecOffer::with_attributes(
                    Some((250, Some(99))),
                    Some(999),
                    Some((2, Some(9))),
                    Some(77),
                    Some(999),
                ),
                IpsecOffer::with_attributes(None, None, Some((99, None)), None, None),
            ],
            accepted: vec![
                ipsec_suite(IpsecProtocols::Esp {
                    encryption: EspCipher::AesCbc128,
                    integrity: Some(Integrity::HmacSha1_96),
                }),
                ipsec_suite(IpsecProtocols::Ah { integrity: Integrity::HmacSha256_128 }),
            ],
        };
        let nothing = Phase1Mismatch { offered: Vec::new(), accepted: Vec::new() };
        vec![phase1.into(), ipsec.into(), nothing.into()]
    }

    fn authentication_failures() -> Vec<FailureReason> {
        use AuthenticationFailure as A;
        let expired = CertificateError::Expired {
            subject: "C=CN, O=Example, CN=fw-b".into(),
            not_after: 0,
            now: 86_400,
        };
        vec![
            A::HashMismatch { hash: "HASH_I" }.into(),
            A::KeysDiffer { message: "MM5" }.into(),
            A::InvalidHash { hash: "HASH(2)" }.into(),
            expired.into(),
            A::SignatureInvalid { hash: "HASH_R", error: SignatureError::TrailingData { extra: 1 } }.into(),
            A::CertificateKeyMismatch {
                method: "ecdsa-signature-256",
                key: SignatureAlgorithm::Rsa { modulus_bits: 2048 },
            }
            .into(),
            A::CertificateUnavailable("the engine was given no wall clock").into(),
            A::SigningFailed(SignatureError::EmptyHash).into(),
        ]
    }

    /// The refusals of a hub (module `hub`): every conflict and every cap.
    fn hub_failures() -> Vec<FailureReason> {
        let mut all: Vec<FailureReason> = vec![
            PolicyFailure::FlowRefused(Box::new(FlowRefusal {
                branch: "branch7 (fqdn b7.example.net)".into(),
                flow: "10.0.0.0/8 -> 0.0.0.0/0".into(),
                conflict: FlowConflict::DefaultRoute,
                policy: "hub-10".into(),
            }))
            .into(),
            PolicyFailure::FlowRefused(Box::new(FlowRefusal {
                branch: "branch7".into(),
                flow: "10.0.0.0/8 -> 192.0.2.1".into(),
                conflict: FlowConflict::OwnAddress([192, 0, 2, 1].into()),
                policy: "hub-10".into(),
            }))
            .into(),
            PolicyFailure::FlowRefused(Box::new(FlowRefusal {
                branch: "branch7".into(),
                flow: "10.0.0.0/8 -> 10.9.0.0/16".into(),
                conflict: FlowConflict::PeerFlow { peer: "peer branches (fqdn b8)".into(), flow: "x".into() },
                policy: "hub-10".into(),
            }))
            .into(),
            PolicyFailure::FlowRefused(Box::new(FlowRefusal {
                branch: "branch7".into(),
                flow: "10.0.0.0/8 -> 198.51.100.0/24".into(),
                conflict: FlowConflict::PeerAddress {
                    peer: "peer b8".into(),
                    address: [198, 51, 100, 7].into(),
                },
                policy: "hub-10".into(),
            }))
            .into(),
        ];
        all.extend(
            [
                HubLimit::IkeSas,
                HubLimit::IpsecSas,
                HubLimit::Flows,
                HubLimit::PerPeerIkeSas,
                HubLimit::PerPeerIpsecSas,
                HubLimit::PerPeerFlows,
            ]
            .map(|limit| {
                FailureReason::from(PolicyFailure::LimitReached(Box::new(LimitRefusal {
                    branch: "b".into(),
                    limit,
                    max: 3,
                    policy: "hub-10".into(),
                })))
            }),
        );
        all
    }

    fn other_failures() -> Vec<FailureReason> {
        let mut all: Vec<FailureReason> = vec![
            IdentityFailure::Mismatch { received: "fqdn fw-c".into(), expected: "fqdn fw-b".into() }.into(),
            IdentityFailure::ProxyIdNotAllowed {
                proposed: "10.2.3.0/255.255.255.0 -> 10.1.1.0/255.255.255.0".into(),
            }
            .into(),
            TimeoutFailure::NoAnswer { retransmissions: 5, waited: Duration::from_secs(63) }.into(),
            TimeoutFailure::OnlyUnauthenticated {
                retransmissions: 5,
                waited: Duration::from_secs(63),
                last: Box::new(AuthenticationFailure::KeysDiffer { message: "MM6" }.into()),
            }
            .into(),
            MalformedFailure::MissingPayload("KE").into(),
            MalformedFailure::Undecryptable.into(),
            DhError::WrongLength { group: DhGroup::Modp2048, expected: 256, actual: 64 }.into(),
            PolicyFailure::UnknownPeer.into(),
            PolicyFailure::SaPayloadTooLarge { size: 20_000, limit: 16_384 }.into(),
            PolicyFailure::AggressiveModePskRefused.into(),
            PolicyFailure::AggressiveModeNotConfigured.into(),
            PolicyFailure::AggressiveModeRateLimited.into(),
            PolicyFailure::Reconfigured.into(),
            PolicyFailure::NotInUserTable { site: "address 192.0.2.9".into() }.into(),
        ];
        all.extend(hub_failures());
        // Malformed messages as the parser reports them: too short, a bad length, a bad version.
        for datagram in [&[0u8; 3][..], &[1; 28], &[0; 40]] {
            let error = isakmp::Message::parse(datagram).expect_err("malformed");
            all.push(error.into());
        }
        all.push(FailureReason::from(isakmp::ParseError {
            context: isakmp::Context::Payload(isakmp::PayloadType::SecurityAssociation),
            offset: 28,
            kind: isakmp::ParseErrorKind::MisplacedPayload(isakmp::PayloadType::from(77)),
        }));
        // Every notification we know by name, and one we do not.
        all.extend(
            (0..=u16::MAX)
                .map(NotifyType::from)
                .filter(|n| !matches!(n, NotifyType::Unknown(_)))
                .map(FailureReason::PeerNotified),
        );
        all.push(FailureReason::PeerNotified(NotifyType::from(12_345)));
        all
    }

    #[test]
    fn every_failure_reason_reads_as_one_operator_line() {
        let all: Vec<FailureReason> = [proposal_failures(), authentication_failures(), other_failures()]
            .into_iter()
            .flatten()
            .collect();
        for reason in &all {
            assert_operator_line(&reason.to_string());
        }
        // The groups are all there.
        let group = |r: &FailureReason| std::mem::discriminant(r);
        let groups: std::collections::HashSet<_> = all.iter().map(group).collect();
        assert_eq!(groups.len(), 7);
    }

    /// The log lines `docs/operations.md` gives in its troubleshooting section: its inline code
    /// spans, where `…` stands for any text.
    fn documented_lines() -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let start = text.find("\n## Troubleshooting").expect("a `## Troubleshooting` section");
        let section = &text[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
        section.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    }

    /// True when `line` is `template` with each `…` standing for some text.
    fn matches(template: &str, line: &str) -> bool {
        let parts: Vec<&str> = template.split('…').collect();
        let [first, middle @ .., last] = &parts[..] else { return template == line };
        let Some(mut rest) = line.strip_prefix(first) else { return false };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last) && rest.len() > last.len()
    }

    #[test]
    fn every_failure_reason_is_in_the_operations_guide() {
        let documented = documented_lines();
        let undocumented: Vec<String> = [proposal_failures(), authentication_failures(), other_failures()]
            .into_iter()
            .flatten()
            .map(|reason| reason.to_string())
            .filter(|line| !documented.iter().any(|template| matches(template, line)))
            .collect();
        assert!(
            undocumented.is_empty(),
            "docs/operations.md, Troubleshooting, gives no log line for:\n{}",
            undocumented.join("\n")
        );
        assert!(matches("peer sent notify …", "peer sent notify INVALID-SPI"));
        assert!(!matches("peer sent notify …", "peer sent notify "));
        assert!(!matches("no answer after … s", "no answer after 5 retransmissions in 63 min"));
    }

    #[test]
    fn offers_name_what_we_know_the_way_the_configuration_does() {
        let [phase1, ipsec, nothing] = &proposal_failures()[..] else { unreachable!() };
        assert_eq!(
            phase1.to_string(),
            "IKE proposal mismatch: peer offers aes-256/sha2-512/group16/pre-share, \
             encryption 7/sha1/group14/rsa-signature, encryption 65001-512/hash 99/group 99/auth 65002, \
             we accept aes-128/sha2-256/group14/pre-share"
        );
        assert_eq!(
            ipsec.to_string(),
            "IPsec proposal mismatch: peer offers esp transform 12/hmac-sha2-256-128/tunnel, \
             esp-aes-cbc-128/hmac-sha1-96/tunnel/pfs-group14, \
             ah-hmac-md5-96/auth 9+esp transform 250-99/auth 999/mode 77/pfs group 999, \
             ah transform 99/no auth/tunnel, \
             we accept esp-aes-cbc-128/hmac-sha1-96/tunnel/pfs-group14, ah-hmac-sha2-256-128/tunnel/pfs-group14"
        );
        assert_eq!(nothing.to_string(), "IKE proposal mismatch: peer offers nothing, we accept nothing");
        assert_eq!(
            FailureReason::PeerNotified(NotifyType::NoProposalChosen).to_string(),
            "peer sent notify NO-PROPOSAL-CHOSEN"
        );
    }

    /// A malformed message earns the notify the parser names, not always PAYLOAD-MALFORMED.
    #[test]
    fn malformed_messages_earn_the_parsers_notify() {
        let notify = |datagram: &[u8]| {
            FailureReason::from(isakmp::Message::parse(datagram).expect_err("malformed")).notify()
        };
        // An IKEv2 header (major version 2): INVALID-MAJOR-VERSION (RFC 2408 §5).
        let mut ikev2 = [0u8; 28];
        ikev2[0] = 1;
        ikev2[17] = 0x20;
        ikev2[18] = 2;
        ikev2[27] = 28;
        assert_eq!(notify(&ikev2), Some(NotifyType::InvalidMajorVersion));
        // A truncated datagram is still PAYLOAD-MALFORMED.
        assert_eq!(notify(&ikev2[..20]), Some(NotifyType::PayloadMalformed));
        assert_eq!(
            FailureReason::from(MalformedFailure::MissingPayload("KE")).notify(),
            Some(NotifyType::PayloadMalformed)
        );
    }
}
