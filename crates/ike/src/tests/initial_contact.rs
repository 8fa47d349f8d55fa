//! INITIAL-CONTACT by identity (RFC 2407 §4.6.3.3; issue 13, finding 11): a hub with a
//! template peer and many branches behind one carrier-NAT address, each with its own
//! identity, as strongSwan's load-tester makes them. Every branch's first IKE SA carries
//! INITIAL-CONTACT; it may clear only older SAs between the same two identities.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::util::{cleared, epoch, Gateway, TestRng};
use crate::{Acquire, ClearReason, ConnectionId, Engine, Event, IdentityConfig, Subnet, Transmit};

/// The carrier NAT's public address: every branch's datagrams come from it.
const CARRIER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const HUB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PSK: &str = "carrier-nat-branches";

/// One branch: its engine, its NAT mapping (source ports 500 and 4500 plus `offset`) and what
/// it emitted.
struct Branch {
    engine: Engine,
    gateway: Gateway,
    offset: u16,
    events: Vec<Event>,
}

/// A hub and its branches on a network with a fixed latency and a NAPT in front of the
/// branches.
struct Net {
    hub: Engine,
    hub_events: Vec<Event>,
    branches: Vec<Branch>,
    now: Instant,
    /// (deliver at, branch index or `None` for the hub, datagram as sent)
    in_flight: Vec<(Instant, Option<usize>, Transmit)>,
}

fn branch_gateway(i: usize) -> Gateway {
    let third = u8::try_from(i).expect("fewer than 256 branches");
    Gateway {
        local: CARRIER,
        remote: HUB,
        inside: Ipv4Addr::new(10, 1, third, 0),
        far: Ipv4Addr::new(10, 2, 2, 0),
        psk: PSK,
        local_id: Some(IdentityConfig::Fqdn(format!("branch{i}.example.net"))),
        ..Gateway::fw_a()
    }
}

fn hub_engine() -> Engine {
    let gateway = Gateway { local: HUB, psk: PSK, inside: Ipv4Addr::new(10, 2, 2, 0), ..Gateway::fw_b() };
    let mut config = gateway.config();
    config.peers[0].remote_address = None; // the template peer: any branch
    config.policies[0].selectors[0].remote = Subnet::new(Ipv4Addr::new(10, 1, 0, 0), 16).into();
    Engine::new(config, Box::new(TestRng(7)))
}

impl Net {
    fn new(branches: usize) -> Self {
        let mut net = Self {
            hub: hub_engine(),
            hub_events: Vec::new(),
            branches: Vec::new(),
            now: epoch(),
            in_flight: Vec::new(),
        };
        for i in 0..branches {
            net.add_branch(i, u16::try_from(i + 1).unwrap());
        }
        net
    }

    /// A branch with identity `branchI.example.net` behind NAT port offset `offset`.
    fn add_branch(&mut self, i: usize, offset: u16) {
        let gateway = branch_gateway(i);
        let engine = Engine::new(gateway.config(), Box::new(TestRng(1000 + u64::from(offset))));
        self.branches.push(Branch { engine, gateway, offset, events: Vec::new() });
    }

    /// The branch at `index` sees traffic for its flow.
    fn acquire(&mut self, index: usize) {
        let branch = &mut self.branches[index];
        branch.engine.handle_acquire(self.now, Acquire { policy: 0, selector: branch.gateway.selector() });
    }

    fn collect(&mut self) {
        let at = self.now + Duration::from_millis(10);
        while let Some(mut t) = self.hub.poll_transmit() {
            // Back through the NAT: the port says which branch.
            let port = t.remote.port();
            let (index, to_port) = match port {
                501..=1499 => (port - 500, 500),
                4501..=5499 => (port - 4500, 4500),
                _ => continue,
            };
            let Some(branch) = self.branches.iter().position(|b| b.offset == index) else { continue };
            t.remote.set_port(to_port);
            self.in_flight.push((at, Some(branch), t));
        }
        while let Some(e) = self.hub.poll_event() {
            self.hub_events.push(e);
        }
        for branch in &mut self.branches {
            while let Some(mut t) = branch.engine.poll_transmit() {
                t.local.set_port(t.local.port() + branch.offset);
                self.in_flight.push((at, None, t));
            }
            while let Some(e) = branch.engine.poll_event() {
                branch.events.push(e);
            }
        }
    }

    /// Delivers and runs timers until `done` holds or `limit` of virtual time has passed.
    fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.collect();
            if done(self) {
                return true;
            }
            let timers = std::iter::once(self.hub.poll_timeout())
                .chain(self.branches.iter().map(|b| b.engine.poll_timeout()))
                .flatten();
            let Some(next) = self.in_flight.iter().map(|(at, _, _)| *at).chain(timers).min() else {
                return false;
            };
            if next > end {
                return false;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.in_flight).into_iter().partition(|d| d.0 <= now);
            self.in_flight = later;
            for (_, to, t) in due {
                match to {
                    None => self.hub.handle_datagram(now, t.remote, t.local, &t.payload),
                    Some(i) => self.branches[i].engine.handle_datagram(now, t.remote, t.local, &t.payload),
                }
            }
            self.hub.handle_timeout(now);
            for branch in &mut self.branches {
                branch.engine.handle_timeout(now);
            }
        }
    }
}

fn pairs_installed(events: &[Event]) -> Vec<(ConnectionId, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaInstalled(p) => Some((p.connection, p.inbound.spi().0)),
            _ => None,
        })
        .collect()
}

/// The inbound SPIs of the pairs the hub told its data plane to drop.
fn pairs_ended(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaExpired { inbound_spi, .. } => Some(*inbound_spi),
            _ => None,
        })
        .collect()
}

const BRANCHES: usize = 40;

/// Every branch and the hub have installed a pair for each branch.
fn all_up(net: &Net) -> bool {
    net.branches.iter().all(|b| !pairs_installed(&b.events).is_empty())
        && pairs_installed(&net.hub_events).len() >= net.branches.len()
}

#[test]
fn initial_contact_of_branches_behind_one_address_clears_no_other_branch() {
    let mut net = Net::new(BRANCHES);
    for i in 0..BRANCHES {
        net.acquire(i);
    }
    assert!(net.run_until(Duration::from_secs(30), all_up), "hub: {:?}", net.hub_events);
    // Every branch said INITIAL-CONTACT (it had no SA with the hub), yet each keeps its
    // tunnel: the hub cleared nothing and holds one IKE SA and one pair per branch.
    assert!(cleared(&net.hub_events).is_empty(), "{:?}", cleared(&net.hub_events));
    assert!(pairs_ended(&net.hub_events).is_empty());
    assert_eq!(net.hub.ike_sas().count(), BRANCHES);
    assert!(net.hub.ike_sas().all(|sa| sa.remote.ip() == IpAddr::V4(CARRIER)));
    assert_eq!(pairs_installed(&net.hub_events).len(), BRANCHES);
    // Nothing was lost mid-exchange on the branches either, and all stay up.
    net.run_until(Duration::from_secs(60), |_| false);
    assert!(net.branches.iter().all(|b| cleared(&b.events).is_empty() && pairs_ended(&b.events).is_empty()));
    assert_eq!(net.hub.ike_sas().count(), BRANCHES);
}

#[test]
fn initial_contact_of_a_restarted_branch_clears_its_own_old_sas_only() {
    let mut net = Net::new(3);
    for i in 0..3 {
        net.acquire(i);
    }
    assert!(net.run_until(Duration::from_secs(30), all_up));
    let old: Vec<(ConnectionId, u32)> = pairs_installed(&net.hub_events);
    let old_of_branch1 = net.hub.ike_sas().find(|sa| sa.remote.port() % 1000 == 502).map(|sa| sa.connection);
    let old_of_branch1 = old_of_branch1.expect("branch 1 has an IKE SA on the hub (via NAT-T, port 4502)");
    let old_spi = old.iter().find(|(c, _)| *c == old_of_branch1).map(|(_, spi)| *spi).unwrap();

    // Branch 1 restarts (a new engine, same identity) and its NAT mapping changes: it comes
    // back from another port with INITIAL-CONTACT.
    net.branches.remove(1);
    net.add_branch(1, 77);
    let restarted = net.branches.len() - 1;
    net.acquire(restarted);
    let back = move |net: &Net| {
        !pairs_installed(&net.branches[restarted].events).is_empty()
            && pairs_installed(&net.hub_events).len() > 3
    };
    assert!(net.run_until(Duration::from_secs(30), back), "hub: {:?}", net.hub_events);

    let new = pairs_installed(&net.hub_events).last().map(|(c, _)| *c).unwrap();
    assert_eq!(
        cleared(&net.hub_events),
        [(old_of_branch1, ClearReason::InitialContact { replaced_by: new })]
    );
    assert_eq!(pairs_ended(&net.hub_events), [old_spi], "the old pair leaves the data plane");
    // The two other branches keep theirs.
    let remaining: Vec<ConnectionId> = net.hub.ike_sas().map(|sa| sa.connection).collect();
    assert_eq!(remaining.len(), 3);
    assert!(!remaining.contains(&old_of_branch1) && remaining.contains(&new));
}

/// A quick mode we were running on an IKE SA that INITIAL-CONTACT clears is not lost: its
/// flow is negotiated on the new SA.
#[test]
fn initial_contact_moves_our_quick_mode_in_flight_to_the_new_sa() {
    use super::util::{installed, Pair};
    use crate::TrafficSelector;
    let flow = |third: u8| {
        TrafficSelector::between(
            Subnet::new(Ipv4Addr::new(10, 1, third, 0), 24),
            Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
        )
    };
    let a = Gateway { rules: vec![flow(1), flow(2)], ..Gateway::fw_a() };
    // B's ACL covers both flows in one rule; what B proposes itself, A (narrower) refuses.
    let wide = TrafficSelector::between(
        Subnet::new(Ipv4Addr::new(10, 2, 0, 0), 16),
        Subnet::new(Ipv4Addr::new(10, 1, 0, 0), 16),
    );
    let b = Gateway { rules: vec![wide], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 61);
    pair.acquire_on_a(flow(1));
    assert!(pair.drive_until(100, |p| !installed(&p.a).is_empty() && !installed(&p.b).is_empty()));
    let old = installed(&pair.a)[0].connection;
    // B restarts; A, not knowing, starts a quick mode for flow 2 on the old IKE SA. B answers
    // it INVALID-COOKIE and starts a new IKE SA with INITIAL-CONTACT (`engine::recovery`).
    pair.b.engine = Engine::new(b.config(), Box::new(TestRng(62)));
    pair.b.events.clear();
    pair.acquire_on_a(flow(2));
    let flow2_up = |p: &Pair| installed(&p.a).iter().any(|i| i.selector == flow(2));
    assert!(pair.drive_until(300, flow2_up), "a: {:?}", pair.a.events);
    let on_a = installed(&pair.a).into_iter().find(|i| i.selector == flow(2)).unwrap();
    assert_ne!(on_a.connection, old, "negotiated on the new IKE SA");
    assert_eq!(
        cleared(&pair.a.events),
        [(old, ClearReason::InitialContact { replaced_by: on_a.connection })]
    );
}

/// An IKE SA on which the peer is running a quick mode is still in use by the peer: an
/// INITIAL-CONTACT on another SA between the same identities does not clear it.
#[test]
fn initial_contact_keeps_an_sa_on_which_the_peer_runs_a_quick_mode() {
    use super::util::{installed, Pair};
    use crate::{ExchangeMode, TrafficSelector};
    use isakmp::{ExchangeType, Message};
    let flow = |third: u8| {
        TrafficSelector::between(
            Subnet::new(Ipv4Addr::new(10, 1, third, 0), 24),
            Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
        )
    };
    let back = |third: u8| {
        TrafficSelector::between(
            Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
            Subnet::new(Ipv4Addr::new(10, 1, third, 0), 24),
        )
    };
    let a = Gateway { rules: vec![flow(1), flow(2)], ..Gateway::fw_a() };
    let b = Gateway { rules: vec![back(1), back(2)], ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 63);
    pair.acquire_on_a(flow(1));
    assert!(pair.drive_until(100, |p| !installed(&p.a).is_empty() && !installed(&p.b).is_empty()));
    let old = installed(&pair.a)[0].connection;
    // B starts a quick mode on that SA; its QM3 never reaches A, which waits for it.
    let mut quick_from_b = 0;
    pair.alter = Some(Box::new(move |to_b, t| {
        let quick =
            Message::parse(&t.payload).is_ok_and(|m| m.header.exchange_type == ExchangeType::QuickMode);
        if !to_b && quick {
            quick_from_b += 1;
            return quick_from_b == 1;
        }
        true
    }));
    pair.b.engine.handle_acquire(pair.now, crate::Acquire { policy: 0, selector: back(2) });
    pair.advance(Duration::from_millis(100));
    assert_eq!(pair.a.engine.ike_sas().map(|sa| sa.quick_modes_in_progress).sum::<usize>(), 1);
    // Meanwhile a new IKE SA between the same two identities says INITIAL-CONTACT.
    let (local, remote) = (pair.b.address, pair.a.address);
    let slot = pair.b.engine.initiate_phase1(pair.now, 0, ExchangeMode::Main, local, remote).unwrap();
    pair.b.engine.slots[slot].as_mut().unwrap().send_initial_contact = true;
    let new_established =
        |p: &Pair| p.a.engine.ike_sas().any(|sa| sa.connection != old && sa.state == "established");
    assert!(pair.drive_until(100, new_established));
    pair.advance(Duration::from_millis(100));
    assert!(cleared(&pair.a.events).is_empty(), "{:?}", cleared(&pair.a.events));
    assert!(pair.a.engine.ike_sas().any(|sa| sa.connection == old));
}
