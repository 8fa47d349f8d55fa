//! Configuration reload (`keysteward reload`, SIGHUP): the engine swaps its [`Config`] while
//! keeping every SA whose configuration did not change, and deletes the others the way
//! `reset` does (Delete payloads to the peer, RFC 2408 §3.15 / RFC 2409 §5.7, and events
//! for the data plane), so that an operator can add a tunnel without disturbing the tunnels
//! that carry traffic.
//!
//! What "did not change" means, exactly:
//!
//! - A **peer** (`ike peer NAME`) is unchanged when the new configuration has a peer of the
//!   same name whose every setting is equal: local address (the interface address its
//!   policy is bound to), remote address, exchange mode, the IKE proposals in order with all
//!   their algorithms and lifetimes, the pre-shared key and the user table's rows (every
//!   site's identity and key: a table changed in any row renegotiates the template's sites), local and remote identities, NAT
//!   traversal, DPD settings and the aggressive-mode permission ([`peer_unchanged`]). Its
//!   IKE SAs stay; otherwise they are deleted together with their IPsec SAs.
//! - A **policy entry** (`ipsec policy NAME SEQ`) is unchanged when the new configuration has
//!   the entry with the same name and sequence, its peer is unchanged (as above, and the
//!   same peer by name), and its flows (the permit rules of its ACL, in order), its IPsec
//!   proposals in order (transform, algorithms, encapsulation mode), its PFS group and its
//!   lifetimes in seconds and kilobytes are equal ([`policy_unchanged`]). Its IPsec SAs stay
//!   with the same SPIs and keys; otherwise they are deleted.
//! - The ICV truncation of HMAC-SHA2-256 (`undo ipsec sha2 compatible enable`) is the same,
//!   or every policy entry counts as changed.
//! - Everything else is new: it takes effect for the next negotiation. The engine-wide
//!   [`crate::Limits`] and the global aggressive-mode switch apply to exchanges started
//!   after the reload.
//!
//! A quick mode still running for a changed or removed policy is abandoned (its policy no
//! longer exists to install the result under); a phase 1 still running with a changed or
//! removed peer is abandoned too. Positions may move (a policy inserted before another):
//! SAs that stay are renumbered, and [`ConfigDiff::policies`] tells the data plane how.

use crate::config::{Config, PeerConfig, PolicyConfig};

/// How an old configuration maps onto a new one: for each old peer and policy (by index),
/// its index in the new configuration when it is unchanged, `None` when it was changed or
/// removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// Old peer index → new peer index, for unchanged peers.
    pub peers: Vec<Option<usize>>,
    /// Old policy index → new policy index, for unchanged policy entries.
    pub policies: Vec<Option<usize>>,
    /// New policy indices that are new or changed: their SAs must be negotiated afresh.
    pub fresh_policies: Vec<usize>,
}

impl ConfigDiff {
    /// Compares `old` with `new` by the rules of the module documentation.
    pub fn between(old: &Config, new: &Config) -> Self {
        let peers: Vec<Option<usize>> = old
            .peers
            .iter()
            .map(|p| {
                new.peers.iter().position(|q| q.name == p.name).filter(|&j| peer_unchanged(p, &new.peers[j]))
            })
            .collect();
        let policies: Vec<Option<usize>> = old
            .policies
            .iter()
            .map(|p| {
                let j = new.policies.iter().position(|q| q.id == p.id)?;
                let q = &new.policies[j];
                let same_peer = peers.get(p.peer).copied().flatten() == Some(q.peer);
                // The ICV truncation applies to every IPsec SA: a change renegotiates them all.
                let same_icv = old.sha2_256_truncation_96 == new.sha2_256_truncation_96;
                (same_peer && same_icv && policy_unchanged(p, q)).then_some(j)
            })
            .collect();
        let fresh_policies =
            (0..new.policies.len()).filter(|j| !policies.contains(&Some(*j))).collect::<Vec<_>>();
        Self { peers, policies, fresh_policies }
    }

    /// The new index of old peer `index`, if it is unchanged.
    pub fn peer(&self, index: usize) -> Option<usize> {
        self.peers.get(index).copied().flatten()
    }

    /// The new index of old policy `index`, if it is unchanged.
    pub fn policy(&self, index: usize) -> Option<usize> {
        self.policies.get(index).copied().flatten()
    }
}

/// True when two peer configurations are equal in every setting (the pre-shared key compared
/// in constant time). Every field is named, so a field added to [`PeerConfig`] must be
/// considered here before the crate compiles.
pub fn peer_unchanged(old: &PeerConfig, new: &PeerConfig) -> bool {
    let PeerConfig {
        name,
        local_address,
        remote_address,
        exchange_mode,
        proposals,
        pre_shared_key,
        site_keys,
        local_id,
        remote_id,
        nat_traversal,
        force_encapsulation,
        dpd,
        accept_aggressive_mode,
        certificate,
    } = old;
    *name == new.name
        && *local_address == new.local_address
        && *remote_address == new.remote_address
        && *exchange_mode == new.exchange_mode
        && *proposals == new.proposals
        && pre_shared_key.ct_eq(new.pre_shared_key.expose())
        && site_keys.len() == new.site_keys.len()
        && site_keys
            .iter()
            .zip(&new.site_keys)
            .all(|(a, b)| a.id == b.id && a.pre_shared_key.ct_eq(b.pre_shared_key.expose()))
        && *local_id == new.local_id
        && *remote_id == new.remote_id
        && *nat_traversal == new.nat_traversal
        && *force_encapsulation == new.force_encapsulation
        && *dpd == new.dpd
        && *accept_aggressive_mode == new.accept_aggressive_mode
        && certificate_unchanged(certificate.as_deref(), new.certificate.as_deref())
}

/// Certificate material is unchanged when our certificate (and so, as it was checked against
/// it, our key), the trusted CAs and CRLs, and the send policy are the same: a new CRL
/// renegotiates, so a certificate it revokes stops being trusted.
fn certificate_unchanged(old: Option<&crate::CertificateAuth>, new: Option<&crate::CertificateAuth>) -> bool {
    match (old, new) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.certificate.der() == b.certificate.der()
                && a.trust == b.trust
                && a.send_certificate == b.send_certificate
        }
        _ => false,
    }
}

/// True when two policy entries are equal in what they negotiate: name and sequence, flows,
/// proposals, PFS and lifetimes. The peer index is not compared here (indices move); the
/// caller checks that the peer is the same, unchanged one ([`ConfigDiff::between`]). Template
/// caps are not compared: they apply to what is negotiated next.
pub fn policy_unchanged(old: &PolicyConfig, new: &PolicyConfig) -> bool {
    let PolicyConfig { id, peer: _, selectors, proposals, pfs, lifetime, lifetime_kilobytes, template } = old;
    let named = |t: &Option<crate::TemplateConfig>| t.as_ref().map(|t| t.explicit_destinations.clone());
    *id == new.id
        && named(template) == named(&new.template)
        && *selectors == new.selectors
        && *proposals == new.proposals
        && *pfs == new.pfs
        && *lifetime == new.lifetime
        && *lifetime_kilobytes == new.lifetime_kilobytes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crypto::{DhGroup, EspCipher, Integrity};

    use super::*;
    use crate::tests::util::{esp, installed, Gateway, Pair};
    use crate::{Acquire, Event, IkeSaEnd, IpsecSaEnd, PolicyId, Subnet, TrafficSelector};

    /// FW_A's configuration with a second, unrelated policy (to 10.3.3.0/24) inserted
    /// before the reference one, so that the reference policy's index moves from 0 to 1.
    fn with_unrelated_policy_first(gateway: &Gateway) -> Config {
        let mut config = gateway.config();
        let mut extra = config.policies[0].clone();
        extra.id = PolicyId { name: "branch".into(), sequence: 1 };
        extra.selectors = vec![TrafficSelector::between(
            Subnet::new(gateway.inside, 24),
            Subnet::new(std::net::Ipv4Addr::new(10, 3, 3, 0), 24),
        )];
        config.policies.insert(0, extra);
        config
    }

    #[test]
    fn an_equal_configuration_keeps_everything_in_place() {
        let a = Gateway::fw_a();
        let diff = ConfigDiff::between(&a.config(), &a.config());
        assert_eq!(diff.peers, vec![Some(0)]);
        assert_eq!(diff.policies, vec![Some(0)]);
        assert!(diff.fresh_policies.is_empty());
    }

    #[test]
    fn an_added_policy_is_fresh_and_the_others_move() {
        let a = Gateway::fw_a();
        let diff = ConfigDiff::between(&a.config(), &with_unrelated_policy_first(&a));
        assert_eq!(diff.peers, vec![Some(0)]);
        assert_eq!(diff.policies, vec![Some(1)], "the reference policy is now second");
        assert_eq!(diff.fresh_policies, vec![0]);
    }

    #[test]
    fn each_policy_setting_counts_as_a_change() {
        let a = Gateway::fw_a();
        let changes: Vec<(&str, Gateway)> = vec![
            (
                "ipsec proposal",
                Gateway {
                    ipsec: vec![esp(EspCipher::AesCbc128, Some(Integrity::HmacSha256_128))],
                    ..a.clone()
                },
            ),
            ("pfs", Gateway { pfs: Some(DhGroup::Modp2048), ..a.clone() }),
            ("lifetime", Gateway { lifetime: Duration::from_secs(1800), ..a.clone() }),
            ("traffic lifetime", Gateway { lifetime_kilobytes: Some(1000), ..a.clone() }),
            (
                "acl",
                Gateway {
                    rules: vec![TrafficSelector::between(Subnet::new(a.inside, 25), Subnet::new(a.far, 24))],
                    ..a.clone()
                },
            ),
        ];
        for (what, changed) in changes {
            let diff = ConfigDiff::between(&a.config(), &changed.config());
            assert_eq!(diff.peers, vec![Some(0)], "{what}: the peer stays");
            assert_eq!(diff.policies, vec![None], "{what}: the policy changed");
            assert_eq!(diff.fresh_policies, vec![0], "{what}");
        }
        let mut renamed = a.config();
        renamed.policies[0].id.sequence = 2;
        assert_eq!(ConfigDiff::between(&a.config(), &renamed).policies, vec![None], "another entry");
    }

    #[test]
    fn each_peer_setting_counts_as_a_change_and_takes_its_policies() {
        let a = Gateway::fw_a();
        let changes: Vec<(&str, Gateway)> = vec![
            ("pre-shared key", Gateway { psk: "another key entirely", ..a.clone() }),
            ("remote address", Gateway { remote: std::net::Ipv4Addr::new(192, 0, 2, 9), ..a.clone() }),
            (
                "ike proposal",
                Gateway {
                    ike: vec![crate::tests::util::ike(
                        crypto::Phase1Cipher::Aes128,
                        crypto::HashAlgorithm::Sha1,
                        DhGroup::Ecp256,
                    )],
                    ..a.clone()
                },
            ),
            ("exchange mode", Gateway { mode: crate::ExchangeMode::Aggressive, ..a.clone() }),
            ("nat traversal", Gateway { nat_traversal: false, ..a.clone() }),
            ("dpd", Gateway { dpd: Some(crate::DpdConfig::default()), ..a.clone() }),
            (
                "remote id",
                Gateway { remote_id: Some(crate::IdentityConfig::Fqdn("b.example".into())), ..a.clone() },
            ),
        ];
        for (what, changed) in changes {
            let diff = ConfigDiff::between(&a.config(), &changed.config());
            assert_eq!(diff.peers, vec![None], "{what}: the peer changed");
            assert_eq!(diff.policies, vec![None], "{what}: its policy goes with it");
        }
        let mut renamed = a.config();
        renamed.peers[0].name = "other".into();
        assert_eq!(ConfigDiff::between(&a.config(), &renamed).peers, vec![None], "another peer");
    }

    fn up(pair: &Pair) -> bool {
        !installed(&pair.a).is_empty() && !installed(&pair.b).is_empty()
    }

    #[test]
    fn reconfigure_with_an_added_policy_keeps_the_sas_and_their_spis() {
        let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
        let mut pair = Pair::new(&a, &b, 71);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, up));
        let before: Vec<_> =
            pair.a.engine.ipsec_sas(pair.now).map(|v| (v.inbound_spi, v.outbound_spi)).collect();
        let ike_before: Vec<_> = pair.a.engine.ike_sas().map(|s| s.connection).collect();

        let diff = pair.a.engine.reconfigure(pair.now, with_unrelated_policy_first(&a));
        assert_eq!(diff.policies, vec![Some(1)]);
        assert!(pair.a.engine.poll_transmit().is_none(), "nothing to tell the peer");
        assert!(pair.a.engine.poll_event().is_none(), "nothing ended");
        let after: Vec<_> =
            pair.a.engine.ipsec_sas(pair.now).map(|v| (v.inbound_spi, v.outbound_spi)).collect();
        assert_eq!(after, before, "same SPIs");
        assert_eq!(pair.a.engine.ike_sas().map(|s| s.connection).collect::<Vec<_>>(), ike_before);
        let view = pair.a.engine.ipsec_sas(pair.now).next().unwrap();
        assert_eq!(view.policy, PolicyId { name: "policy1".into(), sequence: 1 });

        // The renumbered pair still serves its flow (no new quick mode for it), and still
        // rekeys under its new index: the rekey installs a pair for policy1 on both sides.
        pair.a.engine.handle_acquire(pair.now, Acquire { policy: 1, selector: a.selector() });
        assert!(pair.a.engine.poll_transmit().is_none(), "the flow is served");
        pair.drive_for(Duration::from_secs(3600));
        let rekeyed = installed(&pair.a);
        assert!(rekeyed.len() >= 2, "rekeyed after the reload: {} pairs", rekeyed.len());
        assert!(rekeyed.iter().all(|p| p.policy.name == "policy1"));
        assert!(crate::tests::util::failures(&pair.a).is_empty());
    }

    #[test]
    fn reconfigure_with_a_changed_proposal_deletes_on_both_sides_then_renegotiates() {
        let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
        let mut pair = Pair::new(&a, &b, 72);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, up));
        let old_spi = installed(&pair.a)[0].inbound.spi().0;

        let gcm = vec![esp(EspCipher::AesGcm128, None)];
        let (a2, b2) = (Gateway { ipsec: gcm.clone(), ..a.clone() }, Gateway { ipsec: gcm, ..b.clone() });
        let diff = pair.a.engine.reconfigure(pair.now, a2.config());
        assert_eq!(diff.policies, vec![None]);
        pair.b.engine.reconfigure(pair.now, b2.config());
        pair.drive_for(Duration::from_secs(1));
        assert!(pair.a.events.iter().any(|e| matches!(
            e,
            Event::IpsecSaExpired { inbound_spi, reason: IpsecSaEnd::Reconfigured, .. } if *inbound_spi == old_spi
        )));
        assert!(pair.b.events.iter().any(|e| matches!(e, Event::IpsecSaDeleted { .. })));
        assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 0);
        assert_eq!(pair.a.engine.ike_sas().count(), 1, "the peer did not change: phase 1 stays");

        pair.acquire_on_a(a2.selector());
        assert!(pair.drive_until(100, |p| installed(&p.a).len() == 2 && installed(&p.b).len() == 2));
        let new = installed(&pair.a)[1];
        assert_eq!(new.suite.proposal.protocols.esp(), Some((EspCipher::AesGcm128, None)));
        let established =
            pair.a.events.iter().filter(|e| matches!(e, Event::IkeSaEstablished { .. })).count();
        assert_eq!(established, 1, "no new main mode");
    }

    #[test]
    fn reconfigure_abandons_a_quick_mode_under_way_for_a_changed_policy_and_says_why() {
        let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
        let mut pair = Pair::new(&a, &b, 74);
        pair.acquire_on_a(a.selector());
        let phase1 = |p: &Pair| p.a.events.iter().any(|e| matches!(e, Event::IkeSaEstablished { .. }));
        assert!(pair.drive_until(100, phase1));
        assert!(installed(&pair.a).is_empty(), "QM1 is on its way");
        assert_eq!(pair.a.engine.ike_sas().next().unwrap().quick_modes_in_progress, 1);

        let gcm = vec![esp(EspCipher::AesGcm128, None)];
        let (a2, b2) = (Gateway { ipsec: gcm.clone(), ..a.clone() }, Gateway { ipsec: gcm, ..b.clone() });
        pair.a.engine.reconfigure(pair.now, a2.config());
        let abandoned = pair.a.engine.poll_event();
        assert!(
            matches!(
                &abandoned,
                Some(Event::Failed(f)) if matches!(f.reason, crate::FailureReason::Policy(crate::PolicyFailure::Reconfigured))
                    && f.exchange == crate::Exchange::QuickMode
            ),
            "{abandoned:?}"
        );
        assert_eq!(pair.a.engine.ike_sas().next().unwrap().quick_modes_in_progress, 0);
        assert_eq!(pair.a.engine.error_history().count(), 1, "display ike error-info shows it");

        // The old exchange's late messages do no harm: with B reconfigured too, the next
        // acquire negotiates the new proposal on the same IKE SA.
        pair.b.engine.reconfigure(pair.now, b2.config());
        pair.drive_for(Duration::from_secs(5));
        pair.acquire_on_a(a2.selector());
        let gcm_up = |p: &Pair| {
            installed(&p.a)
                .iter()
                .any(|i| i.suite.proposal.protocols.esp() == Some((EspCipher::AesGcm128, None)))
        };
        assert!(pair.drive_until(200, gcm_up), "a: {:?}\nb: {:?}", pair.a.events, pair.b.events);
        assert!(
            installed(&pair.a)
                .iter()
                .all(|i| i.suite.proposal.protocols.esp()
                    != Some((EspCipher::Des, Some(Integrity::HmacMd5_96))))
        );
    }

    #[test]
    fn reconfigure_with_a_changed_key_deletes_the_ike_sa_and_its_ipsec_sas() {
        let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
        let mut pair = Pair::new(&a, &b, 73);
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, up));
        pair.a.engine.reconfigure(pair.now, Gateway { psk: "a brand new secret", ..a.clone() }.config());
        pair.drive_for(Duration::from_secs(1));
        assert!(pair
            .a
            .events
            .iter()
            .any(|e| matches!(e, Event::IkeSaExpired { reason: IkeSaEnd::Reconfigured, .. })));
        assert!(pair
            .a
            .events
            .iter()
            .any(|e| matches!(e, Event::IpsecSaExpired { reason: IpsecSaEnd::Reconfigured, .. })));
        assert!(pair.b.events.iter().any(|e| matches!(e, Event::IkeSaDeleted { .. })));
        assert_eq!(pair.a.engine.ike_sas().count(), 0);
        assert_eq!(pair.b.engine.ike_sas().count(), 0);
        assert_eq!(pair.b.engine.ipsec_sas(pair.now).count(), 0);
    }
}
