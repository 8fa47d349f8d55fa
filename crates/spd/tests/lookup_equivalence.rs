//! The indexed SPD lookup against its definition: the first rule in order whose selector
//! matches (RFC 4301 §4.4.1), on random databases whose rules overlap, nest and differ only
//! in protocol or ports, and after random appends and removals as a hub makes them.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use spd::{Action, Flow, PolicyIndex, PortRange, Prefix, Rule, Selector, Spd};

/// Prefixes from a small universe, so that rules overlap and share buckets.
fn prefix() -> impl Strategy<Value = Prefix> {
    (0u8..4, 0u8..4, 0u8..4, prop::sample::select(vec![0u8, 8, 16, 23, 24, 30, 32]))
        .prop_map(|(a, b, c, len)| Prefix::new(Ipv4Addr::new(10, a, b, c), len))
}

fn ports() -> impl Strategy<Value = Option<PortRange>> {
    prop_oneof![
        3 => Just(None),
        1 => (0u16..4, 0u16..3).prop_map(|(first, span)| Some(PortRange { first, last: first + span })),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        prop::option::of(prop::sample::select(vec![1u8, 6, 17])),
        prefix(),
        prefix(),
        ports(),
        ports(),
        prop_oneof![
            Just(Action::Bypass),
            Just(Action::Discard),
            (0usize..3).prop_map(|i| Action::Protect(PolicyIndex(i)))
        ],
    )
        .prop_map(|(protocol, local, remote, local_ports, remote_ports, action)| Rule {
            selector: Selector { protocol, local, remote, local_ports, remote_ports },
            action,
        })
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        prop::sample::select(vec![1u8, 6, 17]),
        (0u8..4, 0u8..4, 0u8..4),
        (0u8..4, 0u8..4, 0u8..4),
        prop::option::of((0u16..6, 0u16..6)),
    )
        .prop_map(|(protocol, (a, b, c), (d, e, f), ports)| {
            let ports = if protocol == 1 { None } else { ports };
            Flow {
                protocol,
                source: Ipv4Addr::new(10, a, b, c),
                destination: Ipv4Addr::new(10, d, e, f),
                source_port: ports.map(|p| p.0),
                destination_port: ports.map(|p| p.1),
            }
        })
}

/// The inbound definition: the roles swapped.
fn linear_inbound(spd: &Spd, flow: &Flow, default: Action) -> (Option<usize>, Action) {
    match spd.rules().iter().position(|r| r.selector.matches_inbound(flow)) {
        Some(i) => (Some(i), spd.rules()[i].action),
        None => (None, default),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn indexed_lookup_is_first_match(rules in prop::collection::vec(rule(), 0..40), flows in prop::collection::vec(flow(), 1..40)) {
        let spd = Spd::new(rules, Action::Bypass);
        for flow in &flows {
            prop_assert_eq!(spd.lookup(flow), spd.lookup_linear(flow));
            prop_assert_eq!(spd.lookup_inbound(flow), linear_inbound(&spd, flow, Action::Bypass));
        }
    }

    #[test]
    fn appends_and_removals_keep_rule_order(
        rules in prop::collection::vec(rule(), 0..20),
        edits in prop::collection::vec((any::<bool>(), rule(), any::<prop::sample::Index>()), 0..30),
        flows in prop::collection::vec(flow(), 1..30),
    ) {
        let mut spd = Spd::new(rules, Action::Discard);
        for (push, rule, at) in edits {
            if push || spd.rules().is_empty() {
                spd.push(rule);
            } else {
                let index = at.index(spd.rules().len());
                let removed = spd.rules()[index];
                prop_assert_eq!(spd.remove(index), Some(removed));
            }
            for flow in &flows {
                prop_assert_eq!(spd.lookup(flow), spd.lookup_linear(flow));
                prop_assert_eq!(spd.lookup_inbound(flow), linear_inbound(&spd, flow, Action::Discard));
            }
            for (i, rule) in spd.rules().iter().enumerate() {
                let first = spd.rules().iter().position(|r| r == rule);
                prop_assert_eq!(spd.position(rule), first);
                prop_assert!(first <= Some(i));
            }
        }
    }
}
