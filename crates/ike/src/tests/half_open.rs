//! Half-open responder SAs never block our own work and cannot lock a real peer out (issue 13,
//! findings 1–4): spoofed first messages from the peer's address or from anywhere, floods
//! larger than the half-open budget, many real initiators behind one address, and SA payloads
//! too large to keep.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crypto::{DhGroup, HashAlgorithm, Phase1Cipher};

use super::tunnel_up;
use super::util::{failures, ike, installed, Gateway, Pair, TestRng, FW_A, FW_B};
use crate::{Acquire, Engine, Event, FailureReason, Limits, PolicyFailure};

/// A main-mode MM1 as `gateway` would send it to its peer (a fresh initiator, its own cookie).
fn mm1_of(gateway: &Gateway, seed: u64, now: Instant) -> Vec<u8> {
    let mut engine = Engine::new(gateway.config(), Box::new(TestRng(seed)));
    engine.handle_acquire(now, Acquire { policy: 0, selector: gateway.selector() });
    engine.poll_transmit().expect("MM1").payload
}

/// Hands `mm1` to `engine` as if it came from `from` (spoofed), and drops whatever the engine
/// answers: the MM2 goes to the spoofed address, not to anyone in the test.
fn spoof(engine: &mut Engine, now: Instant, to: Ipv4Addr, from: SocketAddr, mm1: &[u8]) {
    engine.handle_datagram(now, SocketAddr::new(IpAddr::V4(to), 500), from, mm1);
    while engine.poll_transmit().is_some() {}
}

/// The first few failures of `side`, for an assertion message (a flood makes thousands).
fn first_failures(side: &super::util::Side) -> Vec<String> {
    failures(side).iter().take(3).map(ToString::to_string).collect()
}

/// How many messages `side` sent that it had sent before (retransmissions).
fn repeats(sent: &[Vec<u8>]) -> usize {
    sent.iter().enumerate().filter(|(i, m)| sent[..*i].contains(m)).count()
}

/// Finding 1: one MM1 with FW_B's address (another source port) made FW_A park its own
/// initiation behind the half-open responder SA for the 60 s of its lifetime.
#[test]
fn a_spoofed_mm1_from_the_peer_address_does_not_delay_our_initiation() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1301);
    let forged = mm1_of(&b, 77, pair.now);
    spoof(&mut pair.a.engine, pair.now, FW_A, SocketAddr::new(IpAddr::V4(FW_B), 40_500), &forged);
    assert_eq!(pair.a.engine.half_open().entries, 1);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    pair.next_event();
    let mm1 = pair.a.transmits.last().expect("our MM1 leaves at once, beside the half-open SA");
    assert_eq!(mm1.remote, SocketAddr::new(IpAddr::V4(FW_B), 500));
    assert!(pair.drive_until(200, tunnel_up), "{:?}", first_failures(&pair.a));
    assert!(pair.now - start < Duration::from_secs(1), "up after {:?}", pair.now - start);
    // The half-open SA is still there, harmless, until it expires.
    assert_eq!(pair.a.engine.half_open().entries, 1);
    pair.drive_for(Duration::from_secs(120));
    assert_eq!(pair.a.engine.half_open().entries, 0);
    assert_eq!(installed(&pair.a).len(), 1, "the tunnel stays up");
}

/// Finding 1, the other way round: when the peer's own phase 1 (we are responder) completes
/// before ours, the traffic waiting on ours goes through it at once.
#[test]
fn traffic_waiting_on_our_initiation_goes_through_the_first_sa_that_comes_up() {
    let second = |g: &Gateway, inside: Ipv4Addr| {
        crate::TrafficSelector::between(crate::Subnet::new(inside, 24), crate::Subnet::new(g.far, 24))
    };
    let (mut a, mut b) = (Gateway::fw_a(), Gateway::fw_b());
    a.rules = vec![a.selector(), second(&a, Ipv4Addr::new(10, 1, 2, 0))];
    b.rules = vec![
        b.selector(),
        crate::TrafficSelector::between(
            crate::Subnet::new(b.inside, 24),
            crate::Subnet::new(Ipv4Addr::new(10, 1, 2, 0), 24),
        ),
    ];
    let mut pair = Pair::new(&a, &b, 1302);
    // A's own MM1 is lost; B initiates for the first flow a moment later.
    let mut dropped = false;
    pair.alter = Some(Box::new(move |to_b, _| !to_b || std::mem::replace(&mut dropped, true)));
    let start = pair.now;
    pair.acquire_on_a(a.rules[1]);
    pair.next_event();
    pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.rules[0] });
    let served = |p: &Pair| installed(&p.a).iter().any(|s| s.selector == a.rules[1]);
    assert!(pair.drive_until(200, served), "{:?}", first_failures(&pair.a));
    // Before A's own MM1 was even retransmitted (500 ms): through B's IKE SA.
    assert!(pair.now - start < Duration::from_millis(500), "served after {:?}", pair.now - start);
}

/// Finding 1 at renewal time: a half-open responder SA made by a spoofed MM1 used to count as
/// the "newer SA" that renews an IKE SA, so our renewal did not start and the IPsec SAs ended
/// with the old IKE SA.
#[test]
fn a_spoofed_mm1_does_not_stop_the_renewal_of_an_ike_sa() {
    let lifetime = Duration::from_secs(200);
    let a = Gateway {
        ike: vec![crate::IkeProposal { lifetime, ..crate::IkeProposal::recommended() }],
        ..Gateway::fw_a()
    };
    let b = Gateway { ike: a.ike.clone(), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 1307);
    let start = pair.now;
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    // B's own renewal never reaches A (its MM1s are lost): only A's can renew the SA.
    pair.alter = Some(Box::new(|to_b, t| {
        to_b || !isakmp::Message::parse(&t.payload).is_ok_and(|m| {
            m.header.exchange_type == isakmp::ExchangeType::IdentityProtection
                && m.header.responder_cookie.is_zero()
        })
    }));
    // Before A's renewal (between 170 and 180 s), one MM1 with FW_B's address.
    pair.advance(Duration::from_secs(150));
    let forged = mm1_of(&b, 78, pair.now);
    spoof(&mut pair.a.engine, pair.now, FW_A, SocketAddr::new(IpAddr::V4(FW_B), 40_500), &forged);
    while pair.next_event().is_some_and(|t| t <= start + Duration::from_secs(205)) {
        assert!(pair.step());
    }
    let established = |side: &super::util::Side| {
        side.events.iter().filter(|e| matches!(e, Event::IkeSaEstablished { .. })).count()
    };
    assert_eq!(established(&pair.a), 2, "A renewed its IKE SA: {:?}", first_failures(&pair.a));
    assert!(pair.a.engine.ike_sas().any(|v| v.state == "established"));
    assert_eq!(pair.a.engine.ipsec_sas(pair.now).count(), 1, "the IPsec SA lives on");
}

/// Finding 2: 500 MM1 from the peer's address (other ports) used to fill the 16 half-open SAs
/// allowed per address, and the real peer was refused for the whole half-open lifetime.
#[test]
fn five_hundred_spoofed_mm1_from_its_address_do_not_lock_the_real_peer_out() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1303);
    for i in 0..500u16 {
        let forged = mm1_of(&b, 10_000 + u64::from(i), pair.now);
        spoof(&mut pair.a.engine, pair.now, FW_A, SocketAddr::new(IpAddr::V4(FW_B), 1_000 + i), &forged);
    }
    assert_eq!(pair.a.engine.half_open().entries, 500, "every one admitted: memory allows it");
    // The real FW_B initiates: it gets in at its first attempt.
    pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
    assert!(pair.drive_until(200, tunnel_up), "{:?}", first_failures(&pair.a));
    assert_eq!(repeats(&pair.b.sent), 0, "B did not have to retransmit");
    assert!(failures(&pair.a).is_empty(), "{:?}", first_failures(&pair.a));
}

/// The hub of finding 3: a template peer answers any address, so spoofed MM1s from random
/// addresses make half-open SAs.
fn hub(b: &Gateway, limits: Limits) -> Engine {
    let mut config = b.config();
    config.peers[0].remote_address = None;
    config.limits = limits;
    Engine::new(config, Box::new(TestRng(4242)))
}

/// A random-looking source for the `i`-th spoofed MM1.
fn random_source(i: u32) -> SocketAddr {
    let x = i.wrapping_mul(2_654_435_761);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(100, 64 + (x >> 26) as u8 % 64, (x >> 8) as u8, x as u8)), 500)
}

/// Finding 3: 4,096 half-open SAs in total, each kept 60 s, and every new branch was refused.
/// Now a flood larger than the budget evicts the oldest, and a real branch that arrives
/// during the flood gets in at its first attempt, with the flood going on.
#[test]
fn a_flood_larger_than_the_budget_from_random_addresses_does_not_lock_a_branch_out() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1304);
    // A budget for about 1,000 minimal half-open SAs.
    let limits = Limits { half_open_memory_budget: 1_800_000, ..b.limits };
    pair.b.engine = hub(&b, limits);
    let forged = mm1_of(&a, 99, pair.now);
    let mut sent = 0u32;
    let mut flood = |engine: &mut Engine, now: Instant, count: u32| {
        for _ in 0..count {
            spoof(engine, now, FW_B, random_source(sent), &forged);
            sent += 1;
        }
    };
    flood(&mut pair.b.engine, pair.now, 5_000);
    let usage = pair.b.engine.half_open();
    assert!(usage.entries > 500 && usage.entries <= usage.max_entries(), "{usage:?}");
    assert!(usage.bytes <= usage.budget, "{usage:?}");
    pair.acquire_on_a(a.selector());
    // 5,000 spoofed MM1 per second: 50 for each 10 ms the network takes.
    for _ in 0..400 {
        if tunnel_up(&pair) {
            break;
        }
        pair.advance(Duration::from_millis(10));
        flood(&mut pair.b.engine, pair.now, 50);
        let usage = pair.b.engine.half_open();
        assert!(usage.bytes <= usage.budget && usage.entries <= usage.max_entries(), "{usage:?}");
    }
    assert!(tunnel_up(&pair), "{:?}", first_failures(&pair.b));
    assert!(repeats(&pair.a.sent) <= 1, "in at the first attempt or the first retransmission");
    assert!(pair.b.engine.statistics().half_open_evicted >= 4_000);
}

/// Issue 13: 1,000 real initiators behind one address (a carrier NAT: one address, a port
/// each, their own cookies) all get in at their first attempt, all at once.
#[test]
fn a_thousand_initiators_behind_one_address_all_get_in() {
    const N: usize = 1_000;
    let proposal = ike(Phase1Cipher::Aes128, HashAlgorithm::Sha256, DhGroup::Ecp256);
    let a = Gateway { ike: vec![proposal], ..Gateway::fw_a() };
    let b = Gateway { ike: vec![proposal], ..Gateway::fw_b() };
    let now = super::util::epoch();
    let mut hub = Engine::new(b.config(), Box::new(TestRng(1305)));
    let mut branches: Vec<Engine> =
        (0..N).map(|i| Engine::new(a.config(), Box::new(TestRng(20_000 + i as u64)))).collect();
    for branch in &mut branches {
        branch.handle_acquire(now, Acquire { policy: 0, selector: a.selector() });
    }
    // The NAT: branch i's port 500 is 10000 + i outside, its 4500 is 30000 + i.
    let outside = |i: usize, port: u16| {
        SocketAddr::new(IpAddr::V4(FW_A), if port == 500 { 10_000 } else { 30_000 } + i as u16)
    };
    let inside = |port: u16| -> Option<(usize, SocketAddr)> {
        let (base, to) = if (10_000..20_000).contains(&port) { (10_000, 500) } else { (30_000, 4_500) };
        let i = usize::from(port.checked_sub(base)?);
        (i < N).then(|| (i, SocketAddr::new(IpAddr::V4(FW_A), to)))
    };
    let mut up = vec![false; N];
    for round in 0..12 {
        let at = now + Duration::from_millis(10 * round);
        for (i, branch) in branches.iter_mut().enumerate() {
            while let Some(t) = branch.poll_transmit() {
                hub.handle_datagram(at, t.remote, outside(i, t.local.port()), &t.payload);
            }
        }
        if round == 0 {
            assert_eq!(hub.half_open().entries, N, "every first message admitted");
        }
        while let Some(t) = hub.poll_transmit() {
            if let Some((i, to)) = inside(t.remote.port()) {
                branches[i].handle_datagram(at, to, t.local, &t.payload);
            }
        }
        for (i, branch) in branches.iter_mut().enumerate() {
            while let Some(event) = branch.poll_event() {
                up[i] |= matches!(event, Event::IpsecSaInstalled(_));
            }
        }
    }
    let missing = up.iter().filter(|up| !**up).count();
    assert_eq!(missing, 0, "{missing} branches not in");
    assert_eq!(hub.statistics().half_open_evicted, 0);
    assert_eq!(hub.half_open().entries, 0);
}

/// A random generator that counts the bytes drawn from it.
struct CountingRng(TestRng, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl crypto::SecureRandom for CountingRng {
    fn fill(&mut self, dest: &mut [u8]) {
        self.1.fetch_add(dest.len(), std::sync::atomic::Ordering::Relaxed);
        self.0.fill(dest);
    }
}

/// Main mode does no Diffie-Hellman before MM3: answering an MM1 draws only the responder
/// cookie (8 bytes) and the start of the DPD sequence (4) from the generator; a DH private
/// value would take 32 bytes or more.
#[test]
fn the_main_mode_responder_does_no_diffie_hellman_on_mm1() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let drawn = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut responder = Engine::new(b.config(), Box::new(CountingRng(TestRng(5), drawn.clone())));
    let now = super::util::epoch();
    let mm1 = mm1_of(&a, 6, now);
    let from = SocketAddr::new(IpAddr::V4(FW_A), 500);
    responder.handle_datagram(now, SocketAddr::new(IpAddr::V4(FW_B), 500), from, &mm1);
    assert!(responder.poll_transmit().is_some(), "MM2");
    assert_eq!(drawn.load(std::sync::atomic::Ordering::Relaxed), 8 + 4, "cookie and DPD sequence only");
    assert_eq!(responder.ike_sas().map(|v| v.state).collect::<Vec<_>>(), ["waiting for MM3"]);
}

/// Finding 4: a half-open SA kept a copy of an SA payload of up to 64 KiB. One larger than a
/// half-open SA keeps is refused before any work, with the sizes and the peer named; the
/// largest offer a real peer makes (255 transforms) is still answered.
#[test]
fn an_oversized_sa_payload_is_refused_with_its_size() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 1306);
    let mm1 = mm1_of(&a, 5, pair.now);
    let with_transforms = |proposals: usize, transforms: usize| {
        let mut message = isakmp::Message::parse(&mm1).expect("MM1");
        let isakmp::Body::Cleartext { payloads, .. } = &mut message.body else { panic!("cleartext") };
        for payload in payloads.iter_mut() {
            if let isakmp::Payload::SecurityAssociation(sa) = payload {
                let mut proposal = sa.proposals[0].clone();
                let transform = proposal.transforms[0].clone();
                proposal.transforms = (1..=transforms)
                    .map(|n| isakmp::Transform { number: n as u8, ..transform.clone() })
                    .collect();
                sa.proposals = vec![proposal; proposals];
            }
        }
        message.to_vec()
    };
    let from = SocketAddr::new(IpAddr::V4(FW_A), 500);
    let to = SocketAddr::new(IpAddr::V4(FW_B), 500);
    // The most one proposal can number: answered.
    let largest = with_transforms(1, 255);
    pair.b.engine.handle_datagram(pair.now, to, from, &largest);
    assert!(pair.b.engine.poll_transmit().is_some(), "255 transforms are answered");
    // Three such proposals: over 16 KiB.
    let oversized = with_transforms(3, 255);
    pair.b.engine.handle_datagram(pair.now, to, SocketAddr::new(IpAddr::V4(FW_A), 501), &oversized);
    assert!(pair.b.engine.poll_transmit().is_none(), "no reply");
    assert_eq!(pair.b.engine.half_open().entries, 1, "no state for it");
    assert_eq!(pair.b.engine.statistics().oversized_sa_payloads, 1);
    while let Some(event) = pair.b.engine.poll_event() {
        pair.b.events.push(event);
    }
    let refused = failures(&pair.b);
    assert_eq!(refused.len(), 1, "{refused:?}");
    let FailureReason::Policy(PolicyFailure::SaPayloadTooLarge { size, limit }) = refused[0].reason else {
        panic!("{}", refused[0]);
    };
    assert!(size > 16 * 1024 && limit == 16 * 1024, "{size} {limit}");
    let line = refused[0].to_string();
    assert!(
        line.contains("192.0.2.1") && line.contains(&size.to_string()) && line.contains("16384"),
        "{line}"
    );
}
