//! The security policy database (RFC 4301 §4.4.1): an ordered list of rules, first match
//! wins (§4.4.1, "the SPD is an ordered database").
//!
//! The gateway builds it from the `ipsec policy` entries bound to an interface, in sequence
//! order and, within an entry, in ACL rule order: a `permit` rule becomes
//! [`Action::Protect`] with the entry's [`PolicyIndex`], a `deny` rule [`Action::Bypass`]
//! (VRP's meaning: the packet leaves in clear, not protected by that entry). Packets that
//! match no rule get the database's default action, `Bypass` for VRP.
//!
//! Fragments (RFC 4301 §7): rules are matched per packet, without fragment state. A
//! non-first fragment has no ports; it matches a port-specific rule on addresses and protocol
//! ([`selector`]), so it is protected with the first rule (and SA) whose addresses and
//! protocol it has, never sent in clear because its ports cannot be read. With two
//! port-specific rules for the same addresses and protocol under different entries, such a
//! fragment can travel in the other rule's SA than its first fragment; it is protected
//! either way and the peer's check accepts it (same addresses and protocol).
//!
//! Traffic the gateway routes into the TUN by protocol ([`Spd::with_clear_fallback`]) and no
//! rule protects leaves in clear: the data plane hands it back ([`Spd::leaves_in_clear`]).
//!
//! A crate of its own (docs/DESIGN.md): the SPD is one job — what traffic is protected by which
//! policy — that the data plane (`esp`) consults per packet and the gateway builds from the
//! configuration; it needs neither crypto nor I/O. [`selector`] holds the selectors and the
//! flow of a packet; this file the ordered database. The functions the data plane calls per
//! packet are `#[inline]`: without it they could not be inlined across the crate boundary.

pub mod index;
pub mod keyed;
pub mod selector;

pub use selector::{Flow, FlowError, PortRange, Prefix, Selector, PROTOCOL_SCTP, PROTOCOL_TCP, PROTOCOL_UDP};

use core::fmt;

use index::PairIndex;

/// The remote prefixes and protocols of `selectors` (a configuration's rules) whose traffic
/// the gateway routes into the data plane by protocol (`ip rule to PREFIX ipproto P`) rather
/// than by a route for the whole prefix, so the rest of the traffic to that prefix keeps its
/// clear path: the selectors with a protocol, but not where a selector for every protocol has
/// an overlapping remote prefix (that one's route takes everything anyway), and those toward
/// one of `peers` (the peer gateways' own addresses) only if `toward_peers`. For
/// [`Spd::with_clear_fallback`] and the gateway's routes.
pub fn protocol_routed(
    selectors: &[Selector],
    peers: &[std::net::Ipv4Addr],
    toward_peers: bool,
) -> Vec<(Prefix, u8)> {
    let to_peer = |p: &Prefix| peers.iter().any(|a| p.contains(*a));
    let whole: Vec<Prefix> =
        selectors.iter().filter(|s| s.protocol.is_none() && !to_peer(&s.remote)).map(|s| s.remote).collect();
    let mut flows = Vec::new();
    for s in selectors {
        let overlaps = whole.iter().any(|w| w.covers(&s.remote) || s.remote.covers(w));
        let routed = if to_peer(&s.remote) { toward_peers } else { !overlaps };
        match s.protocol {
            Some(protocol) if routed && !flows.contains(&(s.remote, protocol)) => {
                flows.push((s.remote, protocol))
            }
            _ => {}
        }
    }
    flows
}

/// Which policy entry protects a flow; the gateway maps it to `ipsec policy NAME SEQ` and to
/// the IKE engine's policy identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyIndex(pub usize);

impl fmt::Display for PolicyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy #{}", self.0)
    }
}

/// What to do with a packet (RFC 4301 §4.4.1: PROTECT, BYPASS, DISCARD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Protect with an SA of this policy entry, negotiating one if there is none.
    Protect(PolicyIndex),
    /// Send in clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One rule: a selector and what to do on a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The traffic it covers, from our side's point of view.
    pub selector: Selector,
    /// The action.
    pub action: Action,
}

/// The ordered rules and the fall-through action, with an index that finds the first match
/// without testing every rule ([`index::PairIndex`]): a lookup costs about the same with 10
/// rules as with 100,000.
#[derive(Debug, Clone)]
pub struct Spd {
    rules: Vec<Rule>,
    default_action: Action,
    /// Rule indices by the prefixes of their selectors; each bucket in rule order.
    index: PairIndex<u32>,
    /// The remote prefixes and protocols whose traffic reaches the data plane by a policy
    /// route on its protocol rather than a route for the whole prefix.
    clear_fallback: Vec<(Prefix, Option<u8>)>,
}

impl PartialEq for Spd {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
            && self.default_action == other.default_action
            && self.clear_fallback == other.clear_fallback
    }
}

impl Eq for Spd {}

impl Spd {
    /// A database of `rules`, in order, with `default_action` for packets none matches.
    pub fn new(rules: Vec<Rule>, default_action: Action) -> Self {
        let mut index = PairIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            index.insert(rule.selector.local, rule.selector.remote, i as u32);
        }
        Self { rules, default_action, index, clear_fallback: Vec::new() }
    }

    /// The same database, told which traffic reaches it by a policy route on its remote
    /// prefix and protocol (`ip rule … to PREFIX ipproto P`, as the gateway routes a rule
    /// with a protocol and ports; `None`: every protocol, as it routes the prefixes of a
    /// policy with deny rules): such a packet that no rule protects is not the gateway's
    /// to drop. VRP sends traffic no rule matches in clear, so [`Spd::leaves_in_clear`] says
    /// to hand it back to the kernel, whose rule for packets coming back from the TUN routes
    /// it by the main table.
    pub fn with_clear_fallback(mut self, flows: Vec<(Prefix, Option<u8>)>) -> Self {
        self.clear_fallback = flows;
        self
    }

    /// True when a fragment with `flow`'s addresses and protocol would be carried by a rule
    /// with ports: the first rule that its addresses and protocol match, read without ports
    /// as a non-first fragment is, has a port range. The fragments of such a datagram are
    /// reassembled before the lookup (docs/DESIGN.md, "Fragments"), all of them alike, since
    /// the answer does not depend on the ports.
    pub fn port_specific(&self, flow: &Flow) -> bool {
        let portless = Flow { source_port: None, destination_port: None, ..*flow };
        let ported = |s: &Selector| s.local_ports.is_some() || s.remote_ports.is_some();
        self.lookup(&portless).0.is_some_and(|index| ported(&self.rules[index].selector))
    }

    /// True when an outbound packet whose lookup gave [`Action::Bypass`] leaves in clear
    /// rather than being dropped: it is of a remote prefix (and protocol) policy-routed into
    /// the data plane ([`Spd::with_clear_fallback`]). Linear in those flows, on the bypass
    /// path only.
    pub fn leaves_in_clear(&self, flow: &Flow) -> bool {
        let routed = |(remote, protocol): &(Prefix, Option<u8>)| {
            protocol.is_none_or(|p| p == flow.protocol) && remote.contains(flow.destination)
        };
        self.clear_fallback.iter().any(routed)
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Appends `rule` after every other rule (lowest priority) and returns its index. A hub
    /// adds one such rule per flow negotiated through a policy template: the flow is only
    /// known once a branch has proposed it.
    pub fn push(&mut self, rule: Rule) -> usize {
        self.index.insert(rule.selector.local, rule.selector.remote, self.rules.len() as u32);
        self.rules.push(rule);
        self.rules.len() - 1
    }

    /// Removes and returns the rule at `index`; the rules after it move up one place. Linear
    /// in the number of rules (every later index is renumbered), which a hub pays when a
    /// template flow goes, not per packet.
    pub fn remove(&mut self, index: usize) -> Option<Rule> {
        let rule = *self.rules.get(index)?;
        self.index.remove(rule.selector.local, rule.selector.remote, index as u32);
        for i in self.index.values_mut() {
            if *i as usize > index {
                *i -= 1;
            }
        }
        Some(self.rules.remove(index))
    }

    /// The index of the first rule equal to `rule`, found through the index.
    pub fn position(&self, rule: &Rule) -> Option<usize> {
        let mut exact = self.index.exact(rule.selector.local, rule.selector.remote);
        exact.find(|&i| self.rules.get(i as usize) == Some(rule)).map(|i| i as usize)
    }

    /// The first rule matching an outbound packet's flow (its index and action), or `None`
    /// and the default action.
    #[inline]
    pub fn lookup(&self, flow: &Flow) -> (Option<usize>, Action) {
        self.first_match(flow.source, flow.destination, |selector| selector.matches_outbound(flow))
    }

    /// The first rule matching a packet that arrived from the peer's side in clear, with
    /// the selector roles swapped (RFC 4301 §5.2 step 3a: a clear packet that a `Protect`
    /// rule covers must be dropped, since it should have come in ESP).
    #[inline]
    pub fn lookup_inbound(&self, flow: &Flow) -> (Option<usize>, Action) {
        self.first_match(flow.destination, flow.source, |selector| selector.matches_inbound(flow))
    }

    /// The simple definition of [`Spd::lookup`]: every rule in order until one matches. For
    /// tests and benchmarks that compare the index with it.
    pub fn lookup_linear(&self, flow: &Flow) -> (Option<usize>, Action) {
        match self.rules.iter().position(|rule| rule.selector.matches_outbound(flow)) {
            Some(index) => (Some(index), self.rules[index].action),
            None => (None, self.default_action),
        }
    }

    /// The lowest-numbered rule matching among the candidates of each prefix-length group
    /// (each bucket is in rule order, so its first match is its best).
    #[inline]
    fn first_match(
        &self,
        local: std::net::Ipv4Addr,
        remote: std::net::Ipv4Addr,
        matches: impl Fn(&Selector) -> bool,
    ) -> (Option<usize>, Action) {
        let mut best: Option<usize> = None;
        for bucket in self.index.candidates(local, remote) {
            for i in bucket.iter() {
                let i = i as usize;
                if best.is_some_and(|b| i >= b) {
                    break;
                }
                if self.rules.get(i).is_some_and(|rule| matches(&rule.selector)) {
                    best = Some(i);
                    break;
                }
            }
        }
        match best {
            Some(index) => (Some(index), self.rules[index].action),
            None => (None, self.default_action),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::selector::tests::{ipv4_packet, udp};
    use crate::selector::{PortRange, Prefix, PROTOCOL_UDP};

    fn flow(src: [u8; 4], dst: [u8; 4], dport: u16) -> Flow {
        Flow::parse_ipv4(&ipv4_packet(PROTOCOL_UDP, src, dst, &udp(1000, dport))).unwrap().0
    }

    fn net(a: u8, b: u8, c: u8, len: u8) -> Prefix {
        Prefix::new(Ipv4Addr::new(a, b, c, 0), len)
    }

    #[test]
    fn first_match_wins_and_deny_bypasses() {
        let mut dns = Selector::between(net(10, 1, 1, 24), net(10, 2, 2, 24));
        dns.protocol = Some(PROTOCOL_UDP);
        dns.remote_ports = Some(PortRange::single(53));
        let spd = Spd::new(
            vec![
                // rule 0: deny DNS to the peer's network (goes in clear)
                Rule { selector: dns, action: Action::Bypass },
                // rule 1: permit the site-to-site flow under entry 0
                Rule {
                    selector: Selector::between(net(10, 1, 1, 24), net(10, 2, 2, 24)),
                    action: Action::Protect(PolicyIndex(0)),
                },
                // rule 2: a second entry for a wider network
                Rule {
                    selector: Selector::between(net(10, 1, 0, 16), net(10, 2, 0, 16)),
                    action: Action::Protect(PolicyIndex(1)),
                },
                // rule 3: everything else from inside to 10/8 is dropped
                Rule {
                    selector: Selector::between(net(10, 1, 0, 16), net(10, 0, 0, 8)),
                    action: Action::Discard,
                },
            ],
            Action::Bypass,
        );
        assert_eq!(spd.lookup(&flow([10, 1, 1, 2], [10, 2, 2, 2], 53)), (Some(0), Action::Bypass));
        assert_eq!(
            spd.lookup(&flow([10, 1, 1, 2], [10, 2, 2, 2], 80)),
            (Some(1), Action::Protect(PolicyIndex(0)))
        );
        assert_eq!(
            spd.lookup(&flow([10, 1, 7, 2], [10, 2, 2, 2], 53)),
            (Some(2), Action::Protect(PolicyIndex(1)))
        );
        assert_eq!(spd.lookup(&flow([10, 1, 7, 2], [10, 9, 2, 2], 53)), (Some(3), Action::Discard));
        assert_eq!(spd.lookup(&flow([192, 168, 0, 1], [10, 2, 2, 2], 80)), (None, Action::Bypass));
        // Order matters: the same rules reversed protect DNS too.
        let mut reversed = spd.rules().to_vec();
        reversed.swap(0, 1);
        let spd = Spd::new(reversed, Action::Discard);
        assert_eq!(
            spd.lookup(&flow([10, 1, 1, 2], [10, 2, 2, 2], 53)),
            (Some(0), Action::Protect(PolicyIndex(0)))
        );
        assert_eq!(spd.lookup(&flow([192, 168, 0, 1], [10, 2, 2, 2], 80)), (None, Action::Discard));
        // Inbound clear traffic uses the same rules with the roles swapped.
        let back = Flow::parse_ipv4(&ipv4_packet(PROTOCOL_UDP, [10, 2, 2, 2], [10, 1, 1, 2], &udp(53, 1000)))
            .unwrap()
            .0;
        assert_eq!(spd.lookup_inbound(&back), (Some(0), Action::Protect(PolicyIndex(0))));
        assert_eq!(spd.lookup(&back), (None, Action::Discard));
    }

    /// Which rules' traffic is routed into the data plane by protocol, and what of it the
    /// data plane hands back to the clear path.
    #[test]
    fn protocol_routed_flows_and_their_clear_fallback() {
        let with = |protocol: Option<u8>, remote: Prefix| {
            let mut s = Selector::between(net(10, 1, 1, 24), remote);
            s.protocol = protocol;
            s.remote_ports = protocol.map(|_| PortRange::single(1701));
            s
        };
        let peer = Ipv4Addr::new(192, 0, 2, 2);
        let selectors = [
            with(Some(PROTOCOL_UDP), net(10, 2, 2, 24)),
            with(Some(PROTOCOL_UDP), net(10, 2, 2, 24)), // the same flow once
            with(Some(6), net(10, 3, 3, 24)),
            with(None, net(10, 3, 0, 16)), // every protocol to 10.3/16: its route takes 10.3.3/24
            with(Some(47), Prefix::host(peer)),
        ];
        let udp = (net(10, 2, 2, 24), PROTOCOL_UDP);
        assert_eq!(protocol_routed(&selectors, &[peer], false), [udp]);
        let all = protocol_routed(&selectors, &[peer], true);
        assert_eq!(all, [udp, (Prefix::host(peer), 47)]);
        let all = all.into_iter().map(|(p, protocol)| (p, Some(protocol))).collect();
        let spd = Spd::new(vec![], Action::Bypass).with_clear_fallback(all);
        assert!(spd.leaves_in_clear(&flow([10, 1, 1, 2], [10, 2, 2, 9], 9999)));
        assert!(!spd.leaves_in_clear(&flow([10, 1, 1, 2], [10, 3, 3, 9], 9999)));
        assert_ne!(spd, Spd::new(vec![], Action::Bypass), "the fallback is part of the database");
    }

    /// Which fragments are reassembled before the lookup: those that a rule with ports would
    /// carry, by addresses and protocol, whatever their own ports say; not those that a rule
    /// for every port (or no rule) takes first.
    #[test]
    fn port_specific_fragments_by_addresses_and_protocol() {
        let mut l2tp = Selector::between(net(10, 1, 1, 24), net(10, 2, 2, 24));
        l2tp.protocol = Some(PROTOCOL_UDP);
        l2tp.remote_ports = Some(PortRange::single(1701));
        let whole = Selector::between(net(10, 1, 1, 24), net(10, 3, 3, 24));
        let spd = Spd::new(
            vec![
                Rule { selector: whole, action: Action::Protect(PolicyIndex(0)) },
                Rule { selector: l2tp, action: Action::Protect(PolicyIndex(1)) },
                Rule { selector: Selector { remote: net(10, 3, 3, 24), ..l2tp }, action: Action::Bypass },
            ],
            Action::Bypass,
        );
        assert!(spd.port_specific(&flow([10, 1, 1, 2], [10, 2, 2, 2], 1701)));
        assert!(spd.port_specific(&flow([10, 1, 1, 2], [10, 2, 2, 2], 9999)), "its ports do not count");
        assert!(!spd.port_specific(&flow([10, 1, 1, 2], [10, 3, 3, 2], 1701)), "a rule for every port first");
        assert!(!spd.port_specific(&flow([10, 1, 1, 2], [10, 4, 4, 2], 1701)), "no rule");
        let mut tcp = flow([10, 1, 1, 2], [10, 2, 2, 2], 1701);
        tcp.protocol = 6;
        assert!(!spd.port_specific(&tcp), "another protocol");
    }
}
