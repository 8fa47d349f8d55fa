//! Hub limits (issue 13, finding 8), engine level with virtual time: a hub answering branches
//! through a policy template refuses flows that would take the default route, its own
//! addresses or another branch's networks, unless its ACL names exactly that destination,
//! and keeps its caps on IKE SAs, IPsec SAs and flows, with reasons an operator can act on.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use isakmp::NotifyType;

use super::util::{failures, installed, Gateway, Pair, TestRng};
use crate::{
    Config, Engine, FailureReason, FlowConflict, HubLimit, HubLimits, PolicyFailure, Subnet, TemplateConfig,
    TrafficSelector,
};

/// An interface address of the hub (beside its `local_address`, 192.0.2.2).
const HUB_LAN_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn branch(last: u8, inside: Ipv4Addr, prefix: u8) -> Gateway {
    let mut a = Gateway { local: Ipv4Addr::new(192, 0, 2, last), inside, ..Gateway::fw_a() };
    a.rules = vec![TrafficSelector::between(Subnet::new(inside, prefix), Subnet::new(a.far, 24))];
    a
}

fn hub_gateway() -> Gateway {
    Gateway { remote: Ipv4Addr::new(192, 0, 2, 99), ..Gateway::fw_b() }
}

/// The hub's configuration: a template peer (no address) whose ACL is `rules` (selector, and
/// whether its destination is written as an address rather than `any`).
fn hub_config(rules: &[(TrafficSelector, bool)], limits: HubLimits) -> Config {
    let mut config = hub_gateway().config();
    config.peers[0].remote_address = None;
    config.policies[0].selectors = rules.iter().map(|r| r.0).collect();
    config.policies[0].template =
        Some(TemplateConfig { limits, explicit_destinations: rules.iter().map(|r| r.1).collect() });
    config.own_addresses = vec![IpAddr::V4(HUB_LAN_ADDRESS)];
    config
}

/// The hub's inside network to `remote`.
fn rule(remote: Subnet) -> TrafficSelector {
    TrafficSelector::between(Subnet::new(hub_gateway().inside, 24), remote)
}

fn any() -> Subnet {
    Subnet::new(Ipv4Addr::UNSPECIFIED, 0)
}

/// `branch` negotiates with a hub of `config`; the pair after a minute of virtual time.
fn negotiate(branch: &Gateway, config: Config, seed: u64) -> Pair {
    let mut pair = Pair::new(branch, &hub_gateway(), seed);
    pair.b.engine = Engine::new(config, Box::new(TestRng(seed + 100)));
    pair.acquire_on_a(branch.rules[0]);
    pair.drive_for(Duration::from_secs(60));
    pair
}

/// A second branch meets the hub engine of `first` (its time goes on).
fn second_branch(first: &mut Pair, branch: &Gateway, seed: u64) -> Pair {
    let mut pair = Pair::new(branch, &hub_gateway(), seed);
    pair.now = first.now;
    std::mem::swap(&mut pair.b.engine, &mut first.b.engine);
    pair.acquire_on_a(branch.rules[0]);
    pair.drive_for(Duration::from_secs(60));
    pair
}

fn policy_refusals(pair: &Pair) -> Vec<(PolicyFailure, String)> {
    failures(&pair.b)
        .iter()
        .filter_map(|f| match &f.reason {
            FailureReason::Policy(
                p @ (PolicyFailure::FlowRefused { .. } | PolicyFailure::LimitReached { .. }),
            ) => Some((p.clone(), f.reason.to_string())),
            _ => None,
        })
        .collect()
}

fn branch_heard(pair: &Pair, notify: NotifyType) -> bool {
    failures(&pair.a).iter().any(|f| matches!(f.reason, FailureReason::PeerNotified(n) if n == notify))
}

/// The finding: a branch proposing 0.0.0.0/0 through a template with `destination any` made
/// the hub protect (and route) everything toward it. Refused, with INVALID-ID-INFORMATION.
#[test]
fn a_branch_proposing_the_default_route_is_refused() {
    let a = branch(11, Ipv4Addr::UNSPECIFIED, 0);
    let pair = negotiate(&a, hub_config(&[(rule(any()), false)], HubLimits::default()), 1);
    assert!(installed(&pair.b).is_empty(), "no SA for 0.0.0.0/0 on the hub");
    assert!(installed(&pair.a).is_empty());
    let refusals = policy_refusals(&pair);
    let (reason, text) = refusals.first().expect("a refusal");
    assert!(
        matches!(reason, PolicyFailure::FlowRefused(r) if r.conflict == FlowConflict::DefaultRoute),
        "{text}"
    );
    assert_eq!(
        text,
        "flow 10.2.2.0/24 -> 0.0.0.0/0 proposed by peer peer (ip 192.0.2.11 at 192.0.2.11) through template \
         policy policy1-1 refused: it covers the default route 0.0.0.0/0 (only an ACL rule of the template \
         naming exactly that destination allows it)"
    );
    assert!(branch_heard(&pair, NotifyType::InvalidIdInformation), "{:?}", failures(&pair.a));
}

/// An ACL rule that names 0.0.0.0/0 as an address (not `any`) allows it: the operator asked.
#[test]
fn an_acl_naming_the_default_route_allows_it() {
    let a = branch(11, Ipv4Addr::UNSPECIFIED, 0);
    let pair = negotiate(&a, hub_config(&[(rule(any()), true)], HubLimits::default()), 2);
    assert_eq!(installed(&pair.b).len(), 1, "{:?}", failures(&pair.b));
    assert!(policy_refusals(&pair).is_empty());
}

/// A branch claiming a network with the hub's own addresses in it: its interface address
/// (`own_addresses`) and its `local_address` toward the peers.
#[test]
fn a_branch_proposing_the_hubs_own_address_is_refused() {
    let config = || hub_config(&[(rule(any()), false)], HubLimits::default());
    for (seed, (inside, own)) in [
        (Ipv4Addr::new(198, 51, 100, 0), HUB_LAN_ADDRESS),
        (Ipv4Addr::new(192, 0, 2, 0), hub_gateway().local),
    ]
    .into_iter()
    .enumerate()
    {
        let a = branch(11, inside, 24);
        let pair = negotiate(&a, config(), 10 + seed as u64);
        assert!(installed(&pair.b).is_empty());
        let refusals = policy_refusals(&pair);
        let (reason, text) = refusals.first().expect("a refusal");
        assert!(
            matches!(reason, PolicyFailure::FlowRefused(r) if r.conflict == FlowConflict::OwnAddress(IpAddr::V4(own))),
            "{text}"
        );
        assert!(text.contains(&format!("it covers this gateway's own address {own}")), "{text}");
        assert!(branch_heard(&pair, NotifyType::InvalidIdInformation));
    }
    // Named exactly by the ACL, it is allowed.
    let a = branch(11, Ipv4Addr::new(198, 51, 100, 0), 24);
    let named = rule(Subnet::new(Ipv4Addr::new(198, 51, 100, 0), 24));
    let pair = negotiate(&a, hub_config(&[(named, true), (rule(any()), false)], HubLimits::default()), 12);
    assert_eq!(installed(&pair.b).len(), 1, "{:?}", failures(&pair.b));
}

/// A second branch proposing a network that overlaps the first branch's flow is refused; the
/// first keeps its SAs. A branch with its own network gets in.
#[test]
fn a_branch_proposing_another_branchs_network_is_refused() {
    let config = hub_config(&[(rule(any()), false)], HubLimits::default());
    let first = branch(11, Ipv4Addr::new(10, 1, 1, 0), 24);
    let mut one = negotiate(&first, config, 20);
    assert_eq!(installed(&one.b).len(), 1, "{:?}", failures(&one.b));
    let thief = branch(12, Ipv4Addr::new(10, 1, 0, 0), 16);
    let mut two = second_branch(&mut one, &thief, 21);
    assert!(installed(&two.b).is_empty());
    let refusals = policy_refusals(&two);
    let (reason, text) = refusals.first().expect("a refusal");
    assert!(
        matches!(reason, PolicyFailure::FlowRefused(r) if matches!(r.conflict, FlowConflict::PeerFlow { .. })),
        "{text}"
    );
    assert!(
        text.contains("proposed by peer peer (ip 192.0.2.12 at 192.0.2.12)")
            && text.contains(
                "it overlaps flow 10.2.2.0/24 -> 10.1.1.0/24 of peer peer (ip 192.0.2.11 at 192.0.2.11)"
            ),
        "{text}"
    );
    assert!(branch_heard(&two, NotifyType::InvalidIdInformation));
    let honest = branch(13, Ipv4Addr::new(10, 1, 2, 0), 24);
    let three = second_branch(&mut two, &honest, 22);
    assert_eq!(installed(&three.b).len(), 1, "{:?}", failures(&three.b));
    // What `display ipsec statistics` counts: three branches authenticated (the thief too),
    // two flows with SAs.
    let hub = &three.b.engine;
    assert_eq!(hub.ike_sas().filter(|sa| sa.expires_at.is_some()).count(), 3);
    assert_eq!(hub.ipsec_sas(three.now).count(), 2);
}

/// Per-peer caps: a branch's second flow over `sa max per-peer flow 1`, and over
/// `sa max per-peer ipsec-sa 1`, is answered with NO-PROPOSAL-CHOSEN and reported.
#[test]
fn per_peer_caps_refuse_with_a_reason() {
    for (seed, limits, expected) in [
        (30, HubLimits { per_peer_flows: 1, ..HubLimits::default() }, HubLimit::PerPeerFlows),
        (31, HubLimits { per_peer_ipsec_sas: 1, ..HubLimits::default() }, HubLimit::PerPeerIpsecSas),
        (32, HubLimits { flows: 1, ..HubLimits::default() }, HubLimit::Flows),
        (33, HubLimits { ipsec_sas: 1, ..HubLimits::default() }, HubLimit::IpsecSas),
    ] {
        let mut a = branch(11, Ipv4Addr::new(10, 1, 1, 0), 24);
        let second =
            TrafficSelector::between(Subnet::new(Ipv4Addr::new(10, 1, 9, 0), 24), Subnet::new(a.far, 24));
        a.rules.push(second);
        let mut pair = negotiate(&a, hub_config(&[(rule(any()), false)], limits), seed);
        assert_eq!(installed(&pair.b).len(), 1, "{:?}", failures(&pair.b));
        pair.acquire_on_a(second);
        pair.drive_for(Duration::from_secs(60));
        assert_eq!(installed(&pair.b).len(), 1, "the second flow is refused");
        let refusals = policy_refusals(&pair);
        let (reason, text) = refusals.first().expect("a refusal");
        assert!(
            matches!(reason, PolicyFailure::LimitReached(r) if r.limit == expected && r.max == 1),
            "{text}"
        );
        assert!(text.contains(&format!("reached its cap ({expected} 1)")), "{text}");
        assert!(branch_heard(&pair, NotifyType::NoProposalChosen), "{:?}", failures(&pair.a));
    }
}

/// `sa max ike-sa 1`: a second branch's phase 1 is deleted as soon as it completes; the first
/// branch keeps its tunnel.
#[test]
fn the_template_ike_sa_cap_refuses_a_second_branch() {
    let config = hub_config(&[(rule(any()), false)], HubLimits { ike_sas: 1, ..HubLimits::default() });
    let mut one = negotiate(&branch(11, Ipv4Addr::new(10, 1, 1, 0), 24), config, 40);
    assert_eq!(installed(&one.b).len(), 1);
    let two = second_branch(&mut one, &branch(12, Ipv4Addr::new(10, 1, 2, 0), 24), 41);
    assert!(installed(&two.b).is_empty() && installed(&two.a).is_empty());
    let refusals = policy_refusals(&two);
    let (reason, text) = refusals.first().expect("a refusal");
    assert!(
        matches!(reason, PolicyFailure::LimitReached(r) if r.limit == HubLimit::IkeSas && r.max == 1),
        "{text}"
    );
    assert!(text.starts_with("peer peer (ip 192.0.2.12 at 192.0.2.12) refused"), "{text}");
    assert_eq!(two.b.engine.ike_sas().count(), 1, "only the first branch's IKE SA is left");
}

/// `sa max flow 1` and `sa max ipsec-sa 1` count every branch's pairs: a second branch's flow
/// is refused because of the first branch's (issue 16: the hub's totals come from the
/// engine's census, not a walk of every IKE SA; under test both answer and must agree).
#[test]
fn template_caps_count_the_other_branches_pairs() {
    for (seed, limits, expected) in [
        (50, HubLimits { flows: 1, ..HubLimits::default() }, HubLimit::Flows),
        (52, HubLimits { ipsec_sas: 1, ..HubLimits::default() }, HubLimit::IpsecSas),
    ] {
        let config = hub_config(&[(rule(any()), false)], limits);
        let mut one = negotiate(&branch(11, Ipv4Addr::new(10, 1, 1, 0), 24), config, seed);
        assert_eq!(installed(&one.b).len(), 1, "{:?}", failures(&one.b));
        let two = second_branch(&mut one, &branch(12, Ipv4Addr::new(10, 1, 2, 0), 24), seed + 1);
        assert!(installed(&two.b).is_empty(), "the second branch's flow is refused");
        let refusals = policy_refusals(&two);
        let (reason, text) = refusals.first().expect("a refusal");
        assert!(
            matches!(reason, PolicyFailure::LimitReached(r) if r.limit == expected && r.max == 1),
            "{text}"
        );
        assert!(text.starts_with("peer peer (ip 192.0.2.12 at 192.0.2.12) refused"), "{text}");
        assert_eq!(two.b.engine.ike_sas().filter(|sa| sa.state == "established").count(), 2);
    }
}

/// The ordered views a page of the displays starts from: from any cursor, the SAs after it
/// in conn-id (and inbound SPI) order — the same as sorting every SA — and the totals of
/// `display ipsec sa brief`'s header without a view built.
#[test]
fn ordered_views_start_after_any_cursor() {
    let config = hub_config(&[(rule(any()), false)], HubLimits::default());
    let mut one = negotiate(&branch(11, Ipv4Addr::new(10, 1, 1, 0), 24), config, 40);
    let mut two = second_branch(&mut one, &branch(12, Ipv4Addr::new(10, 1, 2, 0), 24), 41);
    let three = second_branch(&mut two, &branch(13, Ipv4Addr::new(10, 1, 3, 0), 24), 42);
    let hub = &three.b.engine;
    let mut ids: Vec<crate::ConnectionId> = hub.ike_sas().map(|sa| sa.connection).collect();
    ids.sort();
    assert_eq!((ids.len(), hub.ike_sa_count()), (3, 3));
    let after = |c| hub.ike_sas_after(c).map(|sa| sa.connection).collect::<Vec<_>>();
    assert_eq!(after(None), ids);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(after(Some(*id)), ids[i + 1..]);
    }
    // A page starts at its cursor: the SAs before it are not walked (not even viewed).
    let built = || crate::engine::views::VIEWS_BUILT.with(std::cell::Cell::get);
    let before = built();
    assert_eq!(hub.ike_sas_after(Some(ids[1])).count(), 1);
    assert_eq!(hub.ike_sas_after(None).take(1).count(), 1);
    assert_eq!(built() - before, 2, "a page viewed SAs outside it");
    let mut pairs: Vec<(crate::ConnectionId, u32)> =
        hub.ipsec_sas(three.now).map(|p| (p.connection, p.inbound_spi)).collect();
    pairs.sort();
    assert_eq!(pairs.len(), 3);
    let pairs_after =
        |a| hub.ipsec_sas_after(three.now, a).map(|p| (p.connection, p.inbound_spi)).collect::<Vec<_>>();
    assert_eq!(pairs_after(None), pairs);
    for (i, key) in pairs.iter().enumerate() {
        assert_eq!(pairs_after(Some(*key)), pairs[i + 1..]);
        // A cursor on the same SA before its SPI (a pair that came since) still finds it.
        if key.1 > 0 {
            assert_eq!(pairs_after(Some((key.0, key.1 - 1))), pairs[i..]);
        }
    }
    // Three ESP pairs: six lines of `display ipsec sa brief`.
    assert_eq!(hub.ipsec_sa_lines(), (3, 6));
}
