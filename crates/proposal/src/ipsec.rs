//! Quick-mode proposals (RFC 2407 §4.5, RFC 2409 §5.5): one proposal per configured `ipsec
//! proposal` (ESP, AH, or AH+ESP as two proposal payloads under one number). The responder
//! takes the first one equal to one of its own, with the same PFS group.

use core::fmt;
use std::time::Duration;

use crypto::{DhGroup, EspCipher, Integrity};
use isakmp::attribute::{EncapsulationMode as WireEncapsulation, GroupDescription, IpsecAttribute, LifeType};
use isakmp::{Proposal, ProtocolId, SecurityAssociation, Transform, SIT_IDENTITY_ONLY};

use crate::{EncapsulationMode, IpsecProposal, IpsecProtocols};
use isakmp::capabilities::NatTVersion;

use crate::phase1::{join, MAX_LIFETIME};

/// An IPsec SA suite as negotiated in quick mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpsecSuite {
    /// Protocols, algorithms and mode.
    pub proposal: IpsecProposal,
    /// PFS group, if the quick mode carried KE payloads.
    pub pfs: Option<DhGroup>,
    /// Lifetime in time (the shorter of both sides).
    pub lifetime: Duration,
    /// Lifetime in traffic, kilobytes (the shorter of both sides), if any.
    pub lifetime_kilobytes: Option<u64>,
}

impl IpsecSuite {
    /// The suite with HMAC-SHA2-256 truncated to 96 bits (`undo ipsec sha2 compatible
    /// enable`, [`IpsecProtocols::legacy_96`]).
    pub fn with_legacy_96(self) -> Self {
        let protocols = self.proposal.protocols.legacy_96();
        Self { proposal: IpsecProposal { protocols, ..self.proposal }, ..self }
    }
}

impl fmt::Display for IpsecSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocols = self.proposal.protocols;
        if let Some(ah) = protocols.ah() {
            write!(f, "ah-{}", ah.name())?;
        }
        if let Some((encryption, integrity)) = protocols.esp() {
            if protocols.ah().is_some() {
                f.write_str("+")?;
            }
            write!(f, "esp-{}", encryption.name())?;
            if let Some(i) = integrity {
                write!(f, "/{}", i.name())?;
            }
        }
        let mode = match self.proposal.mode {
            EncapsulationMode::Tunnel => "tunnel",
            EncapsulationMode::Transport => "transport",
        };
        write!(f, "/{mode}")?;
        match self.pfs {
            Some(g) => write!(f, "/pfs-group{}", g.id()),
            None => f.write_str("/no-pfs"),
        }
    }
}

/// Our inbound SPIs for a quick mode: one per protocol, whichever the offer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OurSpis {
    /// Our inbound SPI for ESP.
    pub esp: [u8; 4],
    /// Our inbound SPI for AH.
    pub ah: [u8; 4],
}

impl OurSpis {
    /// Our SPI for `protocol` (AH's for AH, ESP's otherwise).
    pub fn of(&self, protocol: ProtocolId) -> &[u8; 4] {
        if protocol == ProtocolId::Ah {
            &self.ah
        } else {
            &self.esp
        }
    }
}

/// The quick-mode SA payload: one proposal number per suite, numbered 1, 2, … (alternatives).
/// ESP or AH alone is one proposal payload; AH+ESP is two with the same number, AH first
/// (RFC 2408 §4.2: the same number means both). Each carries our inbound SPI for its
/// protocol and one transform. With `udp` (NAT-T in use) the modes are the UDP-encapsulated
/// ones of that dialect (RFC 3947 §5.1).
pub fn quick_mode_offer<'a>(
    suites: &[IpsecSuite],
    spis: &'a OurSpis,
    udp: Option<NatTVersion>,
) -> SecurityAssociation<'a> {
    let mut proposals = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
        if let Some(integrity) = suite.proposal.protocols.ah() {
            proposals.push(Proposal {
                number,
                protocol: ProtocolId::Ah,
                spi: &spis.ah,
                transforms: vec![Transform {
                    number: 1,
                    transform_id: integrity.ah_transform_id(),
                    attributes: ah_attributes(suite, udp),
                }],
            });
        }
        if let Some((encryption, _)) = suite.proposal.protocols.esp() {
            proposals.push(Proposal {
                number,
                protocol: ProtocolId::Esp,
                spi: &spis.esp,
                transforms: vec![Transform {
                    number: 1,
                    transform_id: encryption.transform_id(),
                    attributes: esp_attributes(suite, udp),
                }],
            });
        }
    }
    SecurityAssociation { situation: SIT_IDENTITY_ONLY, proposals }
}

/// The attributes both protocols' transforms share: lifetimes, mode, PFS group.
fn common_attributes(suite: &IpsecSuite, udp: Option<NatTVersion>) -> Vec<IpsecAttribute<'static>> {
    let mut attributes = vec![
        IpsecAttribute::LifeType(LifeType::Seconds),
        IpsecAttribute::LifeDuration(suite.lifetime.as_secs()),
    ];
    if let Some(kb) = suite.lifetime_kilobytes {
        attributes.push(IpsecAttribute::LifeType(LifeType::Kilobytes));
        attributes.push(IpsecAttribute::LifeDuration(kb));
    }
    attributes.push(IpsecAttribute::EncapsulationMode(wire_mode(suite.proposal.mode, udp)));
    attributes
}

/// The attributes of one ESP transform for `suite` (which has ESP).
pub(crate) fn esp_attributes(
    suite: &IpsecSuite,
    udp: Option<NatTVersion>,
) -> Vec<isakmp::Attribute<'static>> {
    let mut attributes = common_attributes(suite, udp);
    if let Some((encryption, integrity)) = suite.proposal.protocols.esp() {
        if let Some(i) = integrity {
            attributes.push(IpsecAttribute::AuthenticationAlgorithm(i.auth_algorithm_id().into()));
        }
        if let Some(bits) = encryption.key_length_attribute() {
            attributes.push(IpsecAttribute::KeyLength(bits));
        }
    }
    if let Some(group) = suite.pfs {
        attributes.push(IpsecAttribute::GroupDescription(GroupDescription::from(group.id())));
    }
    attributes.iter().map(IpsecAttribute::to_attribute).collect()
}

/// The attributes of one AH transform for `suite` (which has AH): AUTH_ALGORITHM is required
/// and names the same algorithm as the transform ID (RFC 2407 §4.4.3, §4.5).
pub(crate) fn ah_attributes(suite: &IpsecSuite, udp: Option<NatTVersion>) -> Vec<isakmp::Attribute<'static>> {
    let mut attributes = common_attributes(suite, udp);
    if let Some(i) = suite.proposal.protocols.ah() {
        attributes.push(IpsecAttribute::AuthenticationAlgorithm(i.auth_algorithm_id().into()));
    }
    if let Some(group) = suite.pfs {
        attributes.push(IpsecAttribute::GroupDescription(GroupDescription::from(group.id())));
    }
    attributes.iter().map(IpsecAttribute::to_attribute).collect()
}

/// The Encapsulation-Mode value for `mode`, UDP-encapsulated in dialect `udp` if given
/// (RFC 3947 §5.1: 3 and 4; the drafts: 61443 and 61444).
fn wire_mode(mode: EncapsulationMode, udp: Option<NatTVersion>) -> WireEncapsulation {
    match (mode, udp) {
        (EncapsulationMode::Tunnel, None) => WireEncapsulation::Tunnel,
        (EncapsulationMode::Transport, None) => WireEncapsulation::Transport,
        (EncapsulationMode::Tunnel, Some(v)) if v.is_draft() => WireEncapsulation::UdpTunnelDraft,
        (EncapsulationMode::Transport, Some(v)) if v.is_draft() => WireEncapsulation::UdpTransportDraft,
        (EncapsulationMode::Tunnel, Some(_)) => WireEncapsulation::UdpTunnel,
        (EncapsulationMode::Transport, Some(_)) => WireEncapsulation::UdpTransport,
    }
}

/// True when a chosen transform asks for ESP in UDP (any of the four UDP modes).
pub fn is_udp_encapsulated(transform: &Transform<'_>) -> bool {
    IpsecOffer::read(transform).mode.map(WireEncapsulation::from).is_some_and(is_udp_mode)
}

fn is_udp_mode(mode: WireEncapsulation) -> bool {
    matches!(
        mode,
        WireEncapsulation::UdpTunnel
            | WireEncapsulation::UdpTransport
            | WireEncapsulation::UdpTunnelDraft
            | WireEncapsulation::UdpTransportDraft
    )
}

/// What one offered proposal says (an ESP transform, an AH transform, or one of each for
/// AH+ESP), read leniently so that a mismatch can be described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecOffer {
    /// ESP transform ID and key length; `None` for AH alone.
    pub encryption: Option<(u8, Option<u16>)>,
    /// ESP AUTH_ALGORITHM, if present.
    pub integrity: Option<u16>,
    /// AH transform ID and its AUTH_ALGORITHM, for AH and AH+ESP.
    pub ah: Option<(u8, Option<u16>)>,
    /// ENCAPSULATION_MODE, if present.
    pub mode: Option<u16>,
    /// GROUP_DESCRIPTION (PFS), if present.
    pub group: Option<u16>,
    /// Lifetime in seconds, if present.
    pub lifetime: Option<u64>,
    /// Lifetime in kilobytes, if present.
    pub lifetime_kilobytes: Option<u64>,
    /// False when the AH and ESP transforms of an AH+ESP offer disagree on mode or group.
    consistent: bool,
}

impl IpsecOffer {
    /// Reads an ESP transform.
    pub(crate) fn read(transform: &Transform<'_>) -> Self {
        let mut offer = Self::read_common(transform);
        offer.encryption = Some((transform.transform_id, None));
        for attribute in transform.ipsec_attributes() {
            match attribute {
                IpsecAttribute::KeyLength(bits) => {
                    offer.encryption = Some((transform.transform_id, Some(bits)));
                }
                IpsecAttribute::AuthenticationAlgorithm(a) => offer.integrity = Some(a.into()),
                _ => {}
            }
        }
        offer
    }

    /// Reads an AH transform.
    pub(crate) fn read_ah(transform: &Transform<'_>) -> Self {
        let mut offer = Self::read_common(transform);
        let auth = transform.ipsec_attributes().find_map(|a| match a {
            IpsecAttribute::AuthenticationAlgorithm(a) => Some(u16::from(a)),
            _ => None,
        });
        offer.ah = Some((transform.transform_id, auth));
        offer
    }

    /// Reads a transform of `protocol` (AH or ESP).
    pub(crate) fn read_protocol(protocol: ProtocolId, transform: &Transform<'_>) -> Self {
        if protocol == ProtocolId::Ah {
            Self::read_ah(transform)
        } else {
            Self::read(transform)
        }
    }

    fn read_common(transform: &Transform<'_>) -> Self {
        let mut offer = Self {
            encryption: None,
            integrity: None,
            ah: None,
            mode: None,
            group: None,
            lifetime: None,
            lifetime_kilobytes: None,
            consistent: true,
        };
        let mut life_type = LifeType::Seconds;
        for attribute in transform.ipsec_attributes() {
            match attribute {
                IpsecAttribute::EncapsulationMode(m) => offer.mode = Some(m.into()),
                IpsecAttribute::GroupDescription(g) => offer.group = Some(g.into()),
                IpsecAttribute::LifeType(t) => life_type = t,
                // A duration of 0 proposes no limit: our own configured lifetime applies (the
                // longest for the seconds, so that the shorter of both is ours; none for the
                // kilobytes). An absent attribute is different: RFC 2407 §4.5's default.
                IpsecAttribute::LifeDuration(v) => match life_type {
                    LifeType::Kilobytes => offer.lifetime_kilobytes = (v != 0).then_some(v),
                    _ => offer.lifetime = Some(if v == 0 { u64::MAX } else { v }),
                },
                _ => {}
            }
        }
        offer
    }

    /// An AH+ESP offer from its AH and its ESP transform: the ESP values, the AH algorithm,
    /// the shorter lifetimes; mode and PFS group must agree.
    pub(crate) fn combine(ah: &Self, esp: &Self) -> Self {
        Self {
            ah: ah.ah,
            lifetime: min_optional(ah.lifetime, esp.lifetime),
            lifetime_kilobytes: min_optional(ah.lifetime_kilobytes, esp.lifetime_kilobytes),
            consistent: ah.consistent && esp.consistent && ah.mode == esp.mode && ah.group == esp.group,
            ..esp.clone()
        }
    }

    /// The suite, if every value is one we implement.
    pub fn suite(&self) -> Option<IpsecSuite> {
        if !self.consistent {
            return None;
        }
        let esp = match self.encryption {
            Some((id, bits)) => {
                let encryption = EspCipher::from_transform_id(id, bits)?;
                let integrity = match self.integrity {
                    Some(a) => Some(Integrity::from_auth_algorithm_id(a)?),
                    None => None,
                };
                if encryption.is_aead() == integrity.is_some() {
                    return None;
                }
                Some((encryption, integrity))
            }
            None => None,
        };
        let ah = match self.ah {
            Some((id, auth)) => {
                let integrity = Integrity::from_ah_transform_id(id)?;
                // RFC 2407 §4.5: AUTH_ALGORITHM is required with AH and must name the
                // transform's algorithm.
                if auth != Some(integrity.auth_algorithm_id()) {
                    return None;
                }
                Some(integrity)
            }
            None => None,
        };
        let protocols = IpsecProtocols::from_parts(ah, esp)?;
        if ah.is_some() && self.mode.is_some_and(|m| is_udp_mode(WireEncapsulation::from(m))) {
            // AH has no UDP encapsulation (RFC 3948 covers ESP only).
            return None;
        }
        let mode = match self.mode.map(WireEncapsulation::from) {
            Some(
                WireEncapsulation::Tunnel | WireEncapsulation::UdpTunnel | WireEncapsulation::UdpTunnelDraft,
            )
            | None => EncapsulationMode::Tunnel,
            Some(
                WireEncapsulation::Transport
                | WireEncapsulation::UdpTransport
                | WireEncapsulation::UdpTransportDraft,
            ) => EncapsulationMode::Transport,
            Some(WireEncapsulation::Unknown(_)) => return None,
        };
        let pfs = match self.group {
            Some(g) => Some(DhGroup::from_id(g)?),
            None => None,
        };
        Some(IpsecSuite {
            proposal: IpsecProposal { protocols, mode },
            pfs,
            // RFC 2407 §4.5: without a lifetime attribute the default is 28800 seconds.
            lifetime: Duration::from_secs(self.lifetime.unwrap_or(28_800)).min(MAX_LIFETIME),
            lifetime_kilobytes: self.lifetime_kilobytes,
        })
    }
}

impl fmt::Display for IpsecOffer {
    /// A suite we implement prints as we name ours (`esp-aes-cbc-128/hmac-sha1-96/tunnel`);
    /// any other offer names each part we know by that name and the rest by its number, e.g.
    /// `esp transform 12/hmac-sha2-256-128/tunnel` (AES without a key length).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.suite() {
            return write!(f, "{s}");
        }
        if let Some((id, auth)) = self.ah {
            let integrity = Integrity::from_ah_transform_id(id);
            match integrity {
                Some(integrity) => write!(f, "ah-{}", integrity.name())?,
                None => write!(f, "ah transform {id}")?,
            }
            // The AUTH_ALGORITHM attribute is named only when it is not the transform's own.
            match auth {
                Some(a) if integrity.is_some_and(|i| i.auth_algorithm_id() == a) => {}
                Some(a) => write!(f, "/{}", IntegrityName(a))?,
                None => f.write_str("/no auth")?,
            }
            if self.encryption.is_some() {
                f.write_str("+")?;
            }
        }
        if let Some((id, bits)) = self.encryption {
            match EspCipher::from_transform_id(id, bits) {
                Some(cipher) => write!(f, "esp-{}", cipher.name())?,
                None => {
                    write!(f, "esp transform {id}")?;
                    if let Some(bits) = bits {
                        write!(f, "-{bits}")?;
                    }
                }
            }
            if let Some(integrity) = self.integrity {
                write!(f, "/{}", IntegrityName(integrity))?;
            }
        }
        match self.mode.map(WireEncapsulation::from) {
            Some(WireEncapsulation::Tunnel) | None => f.write_str("/tunnel")?,
            Some(WireEncapsulation::Transport) => f.write_str("/transport")?,
            Some(WireEncapsulation::UdpTunnel | WireEncapsulation::UdpTunnelDraft) => {
                f.write_str("/udp-tunnel")?
            }
            Some(WireEncapsulation::UdpTransport | WireEncapsulation::UdpTransportDraft) => {
                f.write_str("/udp-transport")?
            }
            Some(WireEncapsulation::Unknown(m)) => write!(f, "/mode {m}")?,
        }
        match self.group {
            Some(g) => match DhGroup::from_id(g) {
                Some(group) => write!(f, "/pfs {group}"),
                None => write!(f, "/pfs group {g}"),
            },
            None => Ok(()),
        }
    }
}

impl IpsecOffer {
    /// An offer with these attributes, as `read` would make it: how the engine's tests build
    /// the offers its failure texts describe, without a wire message.
    pub fn with_attributes(
        encryption: Option<(u8, Option<u16>)>,
        integrity: Option<u16>,
        ah: Option<(u8, Option<u16>)>,
        mode: Option<u16>,
        group: Option<u16>,
    ) -> Self {
        Self {
            encryption,
            integrity,
            ah,
            mode,
            group,
            lifetime: None,
            lifetime_kilobytes: None,
            consistent: true,
        }
    }
}

/// An IPsec authentication algorithm number, by our name when we implement it.
struct IntegrityName(u16);

impl fmt::Display for IntegrityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Integrity::from_auth_algorithm_id(self.0) {
            Some(integrity) => f.write_str(integrity.name()),
            None => write!(f, "auth {}", self.0),
        }
    }
}

/// Why no quick-mode proposal was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpsecMismatch {
    /// What the peer offered.
    pub offered: Vec<IpsecOffer>,
    /// What we accept.
    pub accepted: Vec<IpsecSuite>,
}

impl fmt::Display for IpsecMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("peer offers ")?;
        join(f, self.offered.iter())?;
        f.write_str(", we accept ")?;
        join(f, self.accepted.iter())
    }
}

/// One protocol of a chosen proposal: its transform and the peer's inbound SPI for it.
#[derive(Debug, Clone)]
pub struct ChosenProtocol {
    /// AH or ESP.
    pub protocol: ProtocolId,
    /// The chosen transform, as offered.
    pub transform: Transform<'static>,
    /// The SPI the peer chose for its inbound SA of this protocol.
    pub peer_spi: [u8; 4],
}

/// The chosen proposal: its number, its protocols (AH before ESP) and the negotiated suite.
#[derive(Debug, Clone)]
pub struct IpsecChoice {
    /// The proposal number, echoed in the answer.
    pub proposal_number: u8,
    /// Its protocols, AH before ESP.
    pub parts: Vec<ChosenProtocol>,
    /// The negotiated algorithms, mode and lifetimes.
    pub suite: IpsecSuite,
}

impl IpsecChoice {
    /// The part of `protocol`, if chosen.
    pub fn part(&self, protocol: ProtocolId) -> Option<&ChosenProtocol> {
        self.parts.iter().find(|p| p.protocol == protocol)
    }

    /// What the chosen transforms offered, read back (the lifetimes as the peer offered).
    pub fn offered(&self) -> IpsecOffer {
        let read = |p: &ChosenProtocol| IpsecOffer::read_protocol(p.protocol, &p.transform);
        match (self.part(ProtocolId::Ah), self.part(ProtocolId::Esp)) {
            (Some(ah), Some(esp)) => IpsecOffer::combine(&read(ah), &read(esp)),
            _ => read(&self.parts[0]),
        }
    }

    /// The transform that decides the encapsulation (ESP's, or AH's alone).
    pub fn main_transform(&self) -> &Transform<'static> {
        &self.part(ProtocolId::Esp).unwrap_or(&self.parts[0]).transform
    }
}

/// Chooses among the proposals of a quick-mode SA payload. Proposal payloads with the same
/// number form one proposal (RFC 2408 §4.2): ESP alone, AH alone, or AH with ESP, each with a
/// 4-byte SPI. The first whose transforms (one per protocol) equal one of `ours` in
/// algorithms, mode and PFS group wins. Lifetimes are not compared; the shorter wins.
pub fn choose_ipsec(
    offer: &SecurityAssociation<'_>,
    ours: &[IpsecSuite],
) -> Result<IpsecChoice, IpsecMismatch> {
    let mut offered = Vec::new();
    let mut rest = offer.proposals.as_slice();
    while let Some(first) = rest.first() {
        let len = rest.iter().take_while(|p| p.number == first.number).count();
        let (group, tail) = rest.split_at(len);
        rest = tail;
        let ah: Vec<&Proposal<'_>> = group.iter().filter(|p| p.protocol == ProtocolId::Ah).collect();
        let esp: Vec<&Proposal<'_>> = group.iter().filter(|p| p.protocol == ProtocolId::Esp).collect();
        // Only ESP, AH, or one of each; IPComp and doubles are not implemented.
        if ah.len() > 1 || esp.len() > 1 || ah.len() + esp.len() != group.len() || group.is_empty() {
            continue;
        }
        let spi = |p: &Proposal<'_>| <[u8; 4]>::try_from(p.spi).ok();
        if group.iter().any(|p| spi(p).is_none()) {
            continue;
        }
        // Every combination of one transform per protocol, in the offer's order.
        let mut combinations: Vec<(IpsecOffer, Vec<(&Proposal<'_>, &Transform<'_>)>)> = Vec::new();
        match (ah.first(), esp.first()) {
            (Some(a), Some(e)) => {
                for ta in &a.transforms {
                    for te in &e.transforms {
                        let read = IpsecOffer::combine(&IpsecOffer::read_ah(ta), &IpsecOffer::read(te));
                        combinations.push((read, vec![(*a, ta), (*e, te)]));
                    }
                }
            }
            (Some(a), None) => {
                for ta in &a.transforms {
                    combinations.push((IpsecOffer::read_ah(ta), vec![(*a, ta)]));
                }
            }
            (None, Some(e)) => {
                for te in &e.transforms {
                    combinations.push((IpsecOffer::read(te), vec![(*e, te)]));
                }
            }
            (None, None) => {}
        }
        for (read, parts) in combinations {
            if let Some(suite) = read.suite() {
                if let Some(mine) = ours.iter().find(|m| m.proposal == suite.proposal && m.pfs == suite.pfs) {
                    let suite = IpsecSuite {
                        lifetime: suite.lifetime.min(mine.lifetime),
                        lifetime_kilobytes: min_optional(suite.lifetime_kilobytes, mine.lifetime_kilobytes),
                        ..suite
                    };
                    let parts = parts
                        .into_iter()
                        .filter_map(|(p, t)| {
                            Some(ChosenProtocol {
                                protocol: p.protocol,
                                transform: owned_transform(t),
                                peer_spi: spi(p)?,
                            })
                        })
                        .collect();
                    return Ok(IpsecChoice { proposal_number: first.number, parts, suite });
                }
            }
            offered.push(read);
        }
    }
    Err(IpsecMismatch { offered, accepted: ours.to_vec() })
}

fn min_optional(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// A transform with its attribute values copied, so it can outlive the datagram.
pub(crate) fn owned_transform(t: &Transform<'_>) -> Transform<'static> {
    Transform {
        number: t.number,
        transform_id: t.transform_id,
        attributes: t
            .attributes
            .iter()
            .map(|a| isakmp::Attribute {
                attribute_type: a.attribute_type,
                value: match &a.value {
                    isakmp::attribute::AttributeValue::Basic(v) => {
                        isakmp::attribute::AttributeValue::Basic(*v)
                    }
                    isakmp::attribute::AttributeValue::Variable(v) => {
                        isakmp::attribute::AttributeValue::Variable(std::borrow::Cow::Owned(v.to_vec()))
                    }
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EncapsulationMode, IpsecProposal, IpsecProtocols};

    use isakmp::capabilities::NatTVersion;

    #[test]
    fn a_proposed_lifetime_of_zero_means_ours_applies() {
        let suite = |seconds, kilobytes| IpsecSuite {
            proposal: IpsecProposal {
                protocols: IpsecProtocols::Esp { encryption: EspCipher::AesGcm128, integrity: None },
                mode: EncapsulationMode::Tunnel,
            },
            pfs: None,
            lifetime: Duration::from_secs(seconds),
            lifetime_kilobytes: kilobytes,
        };
        let spis = OurSpis { esp: [0, 0, 1, 0], ah: [0, 0, 2, 0] };
        let zero = quick_mode_offer(&[suite(0, Some(0))], &spis, None);
        for (ours, expected) in
            [(suite(100_000, None), (100_000, None)), (suite(600, Some(50_000)), (600, Some(50_000)))]
        {
            let choice = choose_ipsec(&zero, &[ours]).expect("same suite");
            assert_eq!((choice.suite.lifetime.as_secs(), choice.suite.lifetime_kilobytes), expected);
        }
    }

    #[test]
    fn udp_encapsulated_modes_follow_the_nat_t_dialect() {
        let modes = |udp| {
            [EncapsulationMode::Tunnel, EncapsulationMode::Transport].map(|m| u16::from(wire_mode(m, udp)))
        };
        assert_eq!(modes(None), [1, 2]);
        assert_eq!(modes(Some(NatTVersion::Rfc3947)), [3, 4]);
        assert_eq!(modes(Some(NatTVersion::Draft02N)), [61443, 61444]);
        let suite = IpsecSuite {
            proposal: IpsecProposal {
                protocols: IpsecProtocols::Esp { encryption: EspCipher::AesGcm128, integrity: None },
                mode: EncapsulationMode::Tunnel,
            },
            pfs: None,
            lifetime: Duration::from_secs(3600),
            lifetime_kilobytes: None,
        };
        let spis = OurSpis { esp: [0, 0, 1, 0], ah: [0, 0, 2, 0] };
        for (udp, encapsulated) in [(None, false), (Some(NatTVersion::Draft03), true)] {
            let offer = quick_mode_offer(&[suite], &spis, udp);
            let transform = &offer.proposals[0].transforms[0];
            assert_eq!(is_udp_encapsulated(transform), encapsulated);
            // Either way it reads back as the configured tunnel suite.
            assert_eq!(IpsecOffer::read(transform).suite().map(|s| s.proposal), Some(suite.proposal));
        }
    }
}
