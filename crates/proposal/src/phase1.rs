//! Phase-1 proposals (RFC 2409 §5 and Appendix A): one ISAKMP proposal with one transform
//! per configured `ike proposal`, in priority order. The responder takes the first offered
//! transform equal to one of its proposals in encryption (and key length), hash,
//! authentication method and DH group; the lifetime is not compared, both sides use the
//! shorter (the USG and ASA rule).

use core::fmt;
use std::time::Duration;

use crypto::{DhGroup, HashAlgorithm, Phase1Cipher};
use isakmp::attribute::{AuthenticationMethod, GroupDescription, IkeAttribute, LifeType, KEY_IKE};
use isakmp::{Proposal, ProtocolId, SecurityAssociation, Transform, SIT_IDENTITY_ONLY};

use crate::{AuthMethod, IkeProposal};

/// Largest lifetime we accept from a peer (about 68 years): anything larger is treated as
/// this, so arithmetic on deadlines cannot overflow.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(u32::MAX as u64);

/// The phase-1 SA payload offering `proposals` in order.
pub fn phase1_offer(proposals: &[IkeProposal]) -> SecurityAssociation<'static> {
    let transforms = proposals
        .iter()
        .enumerate()
        .map(|(i, p)| Transform {
            number: u8::try_from(i + 1).unwrap_or(u8::MAX),
            transform_id: KEY_IKE,
            attributes: phase1_attributes(p),
        })
        .collect();
    SecurityAssociation {
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal { number: 1, protocol: ProtocolId::Isakmp, spi: &[], transforms }],
    }
}

fn phase1_attributes(p: &IkeProposal) -> Vec<isakmp::Attribute<'static>> {
    let mut attributes = vec![IkeAttribute::EncryptionAlgorithm(p.encryption.encryption_algorithm().into())];
    if let Some(bits) = p.encryption.key_length_attribute() {
        attributes.push(IkeAttribute::KeyLength(bits));
    }
    attributes.extend([
        IkeAttribute::HashAlgorithm(p.hash.hash_algorithm().into()),
        IkeAttribute::AuthenticationMethod(match p.auth_method {
            AuthMethod::PreSharedKey => AuthenticationMethod::PreSharedKey,
            AuthMethod::RsaSignature => AuthenticationMethod::RsaSignatures,
            AuthMethod::EcdsaP256 => AuthenticationMethod::EcdsaP256,
            AuthMethod::EcdsaP384 => AuthenticationMethod::EcdsaP384,
            AuthMethod::EcdsaP521 => AuthenticationMethod::EcdsaP521,
        }),
        IkeAttribute::GroupDescription(GroupDescription::from(p.group.id())),
        IkeAttribute::LifeType(LifeType::Seconds),
        IkeAttribute::LifeDuration(p.lifetime.as_secs()),
    ]);
    attributes.iter().map(IkeAttribute::to_attribute).collect()
}

/// What a peer offered in one phase-1 transform, as far as we could read it. Unknown values
/// are kept as numbers so a mismatch log can name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase1Offer {
    /// Encryption algorithm number and key length.
    pub encryption: (u16, Option<u16>),
    /// Hash algorithm number.
    pub hash: u16,
    /// Authentication method number.
    pub auth_method: u16,
    /// Group number.
    pub group: u16,
    /// Lifetime in seconds, if given.
    pub lifetime: Option<u64>,
}

impl Phase1Offer {
    fn read(transform: &Transform<'_>) -> Self {
        let mut offer = Self { encryption: (0, None), hash: 0, auth_method: 0, group: 0, lifetime: None };
        let mut life_type = LifeType::Seconds;
        for attribute in transform.ike_attributes() {
            match attribute {
                IkeAttribute::EncryptionAlgorithm(v) => offer.encryption.0 = v.into(),
                IkeAttribute::KeyLength(bits) => offer.encryption.1 = Some(bits),
                IkeAttribute::HashAlgorithm(v) => offer.hash = v.into(),
                IkeAttribute::AuthenticationMethod(v) => offer.auth_method = v.into(),
                IkeAttribute::GroupDescription(v) => offer.group = v.into(),
                IkeAttribute::LifeType(t) => life_type = t,
                // A duration of 0 proposes no limit: our own configured lifetime applies.
                IkeAttribute::LifeDuration(v) if life_type == LifeType::Seconds => {
                    offer.lifetime = (v != 0).then_some(v);
                }
                _ => {}
            }
        }
        offer
    }

    /// The suite, if every algorithm is one we implement.
    fn suite(&self) -> Option<IkeProposal> {
        let encryption = phase1_cipher(self.encryption)?;
        let hash = HashAlgorithm::from_hash_algorithm(self.hash)?;
        let auth_method = match AuthenticationMethod::from(self.auth_method) {
            AuthenticationMethod::PreSharedKey => AuthMethod::PreSharedKey,
            AuthenticationMethod::RsaSignatures => AuthMethod::RsaSignature,
            AuthenticationMethod::EcdsaP256 => AuthMethod::EcdsaP256,
            AuthenticationMethod::EcdsaP384 => AuthMethod::EcdsaP384,
            AuthenticationMethod::EcdsaP521 => AuthMethod::EcdsaP521,
            _ => return None,
        };
        let group = DhGroup::from_id(self.group)?;
        let lifetime = self.lifetime.map_or(MAX_LIFETIME, |s| Duration::from_secs(s).min(MAX_LIFETIME));
        Some(IkeProposal { encryption, hash, auth_method, group, lifetime })
    }
}

/// The phase-1 cipher of an Encryption Algorithm number and Key Length, if we implement it.
fn phase1_cipher((algorithm, bits): (u16, Option<u16>)) -> Option<Phase1Cipher> {
    Phase1Cipher::from_attributes(algorithm, bits)
}

impl fmt::Display for Phase1Offer {
    /// A suite we implement prints as we name ours (`aes-256/sha2-256/group14/pre-share`); any
    /// other offer names each part we know by the VRP keyword and the rest by its number, e.g.
    /// `encryption 7-512/sha2-256/group14/pre-share`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.suite() {
            return write!(f, "{}", SuiteName(&s));
        }
        let (algorithm, bits) = self.encryption;
        match phase1_cipher(self.encryption) {
            Some(cipher) => write!(f, "{cipher}")?,
            None => {
                write!(f, "encryption {algorithm}")?;
                if let Some(bits) = bits {
                    write!(f, "-{bits}")?;
                }
            }
        }
        match HashAlgorithm::from_hash_algorithm(self.hash) {
            Some(hash) => write!(f, "/{hash}")?,
            None => write!(f, "/hash {}", self.hash)?,
        }
        match DhGroup::from_id(self.group) {
            Some(group) => write!(f, "/{group}")?,
            None => write!(f, "/group {}", self.group)?,
        }
        match AuthenticationMethod::from(self.auth_method) {
            AuthenticationMethod::PreSharedKey => f.write_str("/pre-share"),
            AuthenticationMethod::RsaSignatures => f.write_str("/rsa-signature"),
            AuthenticationMethod::EcdsaP256 => f.write_str("/ecdsa-signature-256"),
            AuthenticationMethod::EcdsaP384 => f.write_str("/ecdsa-signature-384"),
            AuthenticationMethod::EcdsaP521 => f.write_str("/ecdsa-signature-521"),
            _ => write!(f, "/auth {}", self.auth_method),
        }
    }
}

/// Prints a phase-1 suite the way operators name it: `aes-256/sha2-256/group14/pre-share`.
pub struct SuiteName<'a>(pub &'a IkeProposal);

impl fmt::Display for SuiteName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let auth = match p.auth_method {
            AuthMethod::PreSharedKey => "pre-share",
            AuthMethod::RsaSignature => "rsa-signature",
            AuthMethod::EcdsaP256 => "ecdsa-signature-256",
            AuthMethod::EcdsaP384 => "ecdsa-signature-384",
            AuthMethod::EcdsaP521 => "ecdsa-signature-521",
        };
        write!(f, "{}/{}/group{}/{}", p.encryption, p.hash, p.group.id(), auth)
    }
}

/// Why no phase-1 proposal was chosen: what the peer offered beside what we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase1Mismatch {
    /// Every transform the peer offered.
    pub offered: Vec<Phase1Offer>,
    /// Our proposals.
    pub accepted: Vec<IkeProposal>,
}

impl fmt::Display for Phase1Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer offers ")?;
        join(f, self.offered.iter())?;
        f.write_str(", we accept ")?;
        join(f, self.accepted.iter().map(SuiteName))
    }
}

pub(crate) fn join<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: impl Iterator<Item = T>,
) -> fmt::Result {
    let mut first = true;
    for item in items {
        if !first {
            f.write_str(", ")?;
        }
        first = false;
        write!(f, "{item}")?;
    }
    if first {
        f.write_str("nothing")?;
    }
    Ok(())
}

/// The responder's choice: the negotiated suite (lifetime already the shorter of both) and the
/// SA payload to answer with (the chosen transform, echoed as received).
#[derive(Debug)]
pub struct Phase1Choice<'a> {
    /// The negotiated suite, its lifetime the shorter of both sides'.
    pub suite: IkeProposal,
    /// The SA payload to answer with.
    pub reply: SecurityAssociation<'a>,
}

/// The responder's selection (RFC 2408 §4.2: one proposal, one transform in the reply).
pub fn choose_phase1<'a>(
    offer: &SecurityAssociation<'a>,
    ours: &[IkeProposal],
) -> Result<Phase1Choice<'a>, Phase1Mismatch> {
    let mut offered = Vec::new();
    for proposal in offer.proposals.iter().filter(|p| p.protocol == ProtocolId::Isakmp) {
        for transform in proposal.transforms.iter().filter(|t| t.transform_id == KEY_IKE) {
            let read = Phase1Offer::read(transform);
            if let Some(suite) = read.suite() {
                if let Some(mine) = ours.iter().find(|m| same_suite(m, &suite)) {
                    let suite = IkeProposal { lifetime: suite.lifetime.min(mine.lifetime), ..suite };
                    let reply = SecurityAssociation {
                        situation: offer.situation,
                        proposals: vec![Proposal {
                            number: proposal.number,
                            protocol: ProtocolId::Isakmp,
                            spi: proposal.spi,
                            transforms: vec![transform.clone()],
                        }],
                    };
                    return Ok(Phase1Choice { suite, reply });
                }
            }
            offered.push(read);
        }
    }
    Err(Phase1Mismatch { offered, accepted: ours.to_vec() })
}

/// The initiator's check of the responder's choice: it must be exactly one transform, equal
/// to one we offered. Returns the suite with the shorter lifetime.
pub fn accept_phase1_reply(
    reply: &SecurityAssociation<'_>,
    ours: &[IkeProposal],
) -> Result<IkeProposal, Phase1Mismatch> {
    let transforms: Vec<&Transform<'_>> = reply.proposals.iter().flat_map(|p| p.transforms.iter()).collect();
    let offered: Vec<Phase1Offer> = transforms.iter().map(|t| Phase1Offer::read(t)).collect();
    let mismatch = || Phase1Mismatch { offered: offered.clone(), accepted: ours.to_vec() };
    let [transform] = transforms.as_slice() else { return Err(mismatch()) };
    let suite = Phase1Offer::read(transform).suite().ok_or_else(mismatch)?;
    let mine = ours.iter().find(|m| same_suite(m, &suite)).ok_or_else(mismatch)?;
    Ok(IkeProposal { lifetime: suite.lifetime.min(mine.lifetime), ..suite })
}

fn same_suite(a: &IkeProposal, b: &IkeProposal) -> bool {
    a.encryption == b.encryption && a.hash == b.hash && a.auth_method == b.auth_method && a.group == b.group
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proposed_lifetime_of_zero_means_ours_applies() {
        let ours = [IkeProposal { lifetime: Duration::from_secs(3600), ..IkeProposal::recommended() }];
        let zero = phase1_offer(&[IkeProposal { lifetime: Duration::ZERO, ..IkeProposal::recommended() }]);
        // As responder (the peer's offer) and as initiator (the peer's reply).
        let chosen = choose_phase1(&zero, &ours).expect("same suite");
        assert_eq!(chosen.suite.lifetime, Duration::from_secs(3600));
        let accepted = accept_phase1_reply(&zero, &ours).expect("same suite");
        assert_eq!(accepted.lifetime, Duration::from_secs(3600));
        // A real lifetime still wins when it is the shorter.
        let short =
            phase1_offer(&[IkeProposal { lifetime: Duration::from_secs(60), ..IkeProposal::recommended() }]);
        assert_eq!(choose_phase1(&short, &ours).expect("same suite").suite.lifetime, Duration::from_secs(60));
    }
}
