//! The data plane on two threads (issue 16): a sealing side and an opening side that never
//! share a lock. Two properties, at the level of the sans-IO sides:
//! - the replay window of the opening side stays right when packets come in bursts,
//!   reordered inside a burst and duplicated (every packet delivered once, every copy refused
//!   as a replay), checked over random bursts;
//! - with a sealing thread, an opening thread and the control plane installing, rekeying and
//!   deleting SAs while traffic flows, nothing queued is lost, no packet is sealed on an SA
//!   after its deletion, and every packet arrives exactly once.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use esp::{
    Action, DataPlane, DataPlaneConfig, DropReason, EspCipher, Event, Inbound, OpenError, OpenPlane,
    Outbound, PolicyIndex, Prefix, Protocols, Rule, SaKeys, SaPair, SaParams, SealPlane, SecureRandom,
    Selector, Spd, Spi,
};
use proptest::prelude::*;

/// A deterministic generator (xorshift64*), for keys, IV nonces and shuffles.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

impl SecureRandom for Seeded {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            *byte = (self.next() >> 56) as u8;
        }
    }
}

const SITE_A: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 0);
const SITE_B: Ipv4Addr = Ipv4Addr::new(10, 2, 2, 0);

fn a_selector() -> Selector {
    Selector::between(Prefix::new(SITE_A, 24), Prefix::new(SITE_B, 24))
}

fn b_selector() -> Selector {
    Selector::between(Prefix::new(SITE_B, 24), Prefix::new(SITE_A, 24))
}

fn gateway(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 4500))
}

/// Key material of generation `generation` one way (`way` 0: A to B, 1: B to A).
fn key(generation: u32, way: u32) -> Vec<u8> {
    (0..EspCipher::AesGcm128.key_len()).map(|i| (i as u32 * 7 + generation * 31 + way * 13) as u8).collect()
}

/// SPIs of a generation: (A to B, B to A).
fn spis(generation: u32) -> (Spi, Spi) {
    (Spi(0x1000 + generation), Spi(0x2000 + generation))
}

/// A's pair of generation `generation` (A seals with the A-to-B keys) and B's (B opens with them).
fn pairs(generation: u32, rng: &mut Seeded) -> (esp::BuiltPair, esp::BuiltPair) {
    let (ab, ba) = (key(generation, 0), key(generation, 1));
    let (ab_spi, ba_spi) = spis(generation);
    let params = SaParams { udp_encapsulated: true, ..SaParams::new(EspCipher::AesGcm128, None) };
    let a = SaPair {
        policy: PolicyIndex(0),
        selector: a_selector(),
        params,
        local: gateway(1),
        remote: gateway(2),
        inbound: SaKeys { spi: ba_spi, cipher_key: &ba, integrity_key: &[] },
        outbound: SaKeys { spi: ab_spi, cipher_key: &ab, integrity_key: &[] },
        protocols: Protocols::Esp,
    };
    let b = SaPair {
        policy: PolicyIndex(0),
        selector: b_selector(),
        local: gateway(2),
        remote: gateway(1),
        inbound: SaKeys { spi: ab_spi, cipher_key: &ab, integrity_key: &[] },
        outbound: SaKeys { spi: ba_spi, cipher_key: &ba, integrity_key: &[] },
        ..a
    };
    (a.build(rng).unwrap(), b.build(rng).unwrap())
}

fn sides() -> ((SealPlane, OpenPlane), OpenPlane) {
    let rule = |selector| Rule { selector, action: Action::Protect(PolicyIndex(0)) };
    let a = DataPlane::new(Spd::new(vec![rule(a_selector())], Action::Bypass), DataPlaneConfig::default());
    let b = DataPlane::new(Spd::new(vec![rule(b_selector())], Action::Bypass), DataPlaneConfig::default());
    (a.into_sides(), b.into_sides().1)
}

/// An IPv4 UDP packet from PC_A to PC_B whose payload is `n`.
fn packet(n: u32) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 32, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 1, 2, 10, 2, 2, 2];
    p.extend_from_slice(&[0x13, 0x88, 0x13, 0x89, 0, 12, 0, 0]);
    p.extend_from_slice(&n.to_be_bytes());
    p
}

/// The number a delivered packet carries.
fn number(inner: &[u8]) -> u32 {
    u32::from_be_bytes(inner[28..32].try_into().unwrap())
}

fn seal(plane: &mut SealPlane, n: u32) -> Option<(Spi, Vec<u8>)> {
    let mut out = vec![0u8; 256];
    match plane.seal(&packet(n), &mut out) {
        Outbound::Send(send) => Some((send.spi, send.datagram.to_vec())),
        Outbound::Queued => None,
        other => panic!("packet {n}: {other:?}"),
    }
}

/// Opens one datagram: the number it carried, or why it was dropped.
fn open(plane: &mut OpenPlane, datagram: &[u8]) -> Result<u32, DropReason> {
    let mut out = vec![0u8; datagram.len()];
    match plane.open(datagram, &mut out) {
        Inbound::Deliver { packet, .. } => Ok(number(packet)),
        Inbound::Drop(reason) => Err(reason),
    }
}

proptest! {
    /// Bursts of up to a window's worth of packets, each shuffled, with copies of some
    /// packets placed anywhere later in the same burst or the next: every packet is delivered
    /// exactly once, and every copy is refused as a replay (the window's `check` before the
    /// tag, `update` after it, per packet, as the opening thread runs them over a batch).
    #[test]
    fn the_replay_window_holds_over_reordered_and_duplicated_bursts(
        seed in 1u64..u64::MAX,
        count in 1u32..400,
        burst in 1usize..=64,
        copies in 0usize..60,
    ) {
        let mut rng = Seeded(seed);
        let ((mut seal_a, mut open_a), mut open_b) = sides();
        let (a, b) = pairs(1, &mut rng);
        seal_a.install(open_a.install(a).unwrap());
        open_b.install(b).unwrap();
        let sealed: Vec<Vec<u8>> = (0..count).map(|n| seal(&mut seal_a, n).unwrap().1).collect();
        let mut arriving = Vec::new();
        for chunk in sealed.chunks(burst) {
            let mut chunk = chunk.to_vec();
            rng.shuffle(&mut chunk);
            arriving.extend(chunk);
        }
        for _ in 0..copies {
            let original = rng.below(arriving.len());
            let later = original + 1 + rng.below(burst.min(arriving.len() - original));
            let copy = arriving[original].clone();
            arriving.insert(later.min(arriving.len()), copy);
        }
        let mut delivered = vec![0u32; count as usize];
        let mut replays = 0;
        for datagram in &arriving {
            match open(&mut open_b, datagram) {
                Ok(n) => delivered[n as usize] += 1,
                Err(DropReason::Open(OpenError::Replay(_))) => replays += 1,
                Err(other) => panic!("dropped for another reason: {other:?}"),
            }
        }
        prop_assert!(delivered.iter().all(|&d| d == 1), "each packet once: {delivered:?}");
        prop_assert_eq!(replays, copies);
        prop_assert_eq!(open_b.statistics().opened, u64::from(count));
    }
}

/// What the sealing thread shares with the control plane: the sealing side, and the SPIs of
/// the outbound SAs the control plane deleted (under the same lock, so the sealing thread
/// sees a deletion exactly when the side does).
struct SealSide {
    plane: SealPlane,
    deleted: HashSet<Spi>,
    /// Datagrams sealed so far.
    sealed: usize,
}

const PACKETS: u32 = 6_000;
const BURST: usize = 32;

/// Issue 16: sealing and opening on two threads while the control plane installs the first
/// pair (releasing the packets queued for it), rekeys (a second pair, then the first one
/// deleted), deletes the second pair while traffic flows (the next packets queue) and
/// installs a third (which releases them). The opening thread reorders each burst and repeats
/// some packets. Nothing is lost, nothing is sealed on a deleted SA, nothing arrives twice.
#[test]
fn install_rekey_and_delete_while_two_threads_carry_traffic_lose_nothing() {
    let mut rng = Seeded(0x5eed);
    let ((seal_a, mut open_a), open_b) = sides();
    let seal_a = Arc::new(Mutex::new(SealSide { plane: seal_a, deleted: HashSet::new(), sealed: 0 }));
    let open_b = Arc::new(Mutex::new(open_b));
    let (bursts, arrive) = mpsc::channel::<Vec<(Spi, Vec<u8>)>>();
    let sent = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));

    // Before any SA: the first packets queue and raise an acquire.
    {
        let mut side = seal_a.lock().unwrap();
        for n in 0..6 {
            assert!(seal(&mut side.plane, n).is_none(), "packet {n} queued");
        }
        assert!(matches!(side.plane.poll_event(), Some(Event::Acquire { .. })));
    }

    let sealer = {
        let (seal_a, sent, started) = (seal_a.clone(), sent.clone(), started.clone());
        std::thread::spawn(move || {
            let mut out = vec![0u8; 256];
            let mut burst = Vec::new();
            let mut n = 6;
            while n < PACKETS {
                let mut side = seal_a.lock().unwrap();
                // Backpressure while no SA is installed: never more queued than a queue keeps.
                if side.plane.queued_packets() >= 6 || !started.load(Ordering::Acquire) {
                    drop(side);
                    if !burst.is_empty() {
                        sent.fetch_add(burst.len(), Ordering::AcqRel);
                        bursts.send(std::mem::take(&mut burst)).unwrap();
                    }
                    std::thread::yield_now();
                    continue;
                }
                let mut sends = Vec::new();
                if let Some(sealed) = seal(&mut side.plane, n) {
                    sends.push(sealed);
                }
                while let Some(outcome) = side.plane.poll_queued(&mut out) {
                    match outcome {
                        Outbound::Send(send) => sends.push((send.spi, send.datagram.to_vec())),
                        other => panic!("released packet: {other:?}"),
                    }
                }
                for (spi, _) in &sends {
                    assert!(!side.deleted.contains(spi), "sealed on SA {spi} after it was deleted");
                }
                side.sealed += sends.len();
                drop(side);
                n += 1;
                burst.extend(sends);
                if burst.len() >= BURST {
                    sent.fetch_add(burst.len(), Ordering::AcqRel);
                    bursts.send(std::mem::take(&mut burst)).unwrap();
                }
            }
            // The last packets, and whatever is still queued, once an SA releases them.
            loop {
                let mut side = seal_a.lock().unwrap();
                while let Some(outcome) = side.plane.poll_queued(&mut out) {
                    if let Outbound::Send(send) = outcome {
                        burst.push((send.spi, send.datagram.to_vec()));
                    }
                }
                if side.plane.queued_packets() == 0 {
                    break;
                }
                drop(side);
                std::thread::yield_now();
            }
            sent.fetch_add(burst.len(), Ordering::AcqRel);
            bursts.send(burst).unwrap();
        })
    };

    let opener = {
        let (open_b, opened) = (open_b.clone(), opened.clone());
        std::thread::spawn(move || {
            let mut rng = Seeded(0xb0b);
            let (mut delivered, mut copies, mut replays) = (vec![0u32; PACKETS as usize], 0, 0);
            for mut burst in arrive {
                let received = burst.len();
                for _ in 0..burst.len() / 8 {
                    let copy = burst[rng.below(burst.len())].clone();
                    burst.push(copy);
                    copies += 1;
                }
                rng.shuffle(&mut burst);
                // One lock per batch, as the opening thread takes it.
                let mut plane = open_b.lock().unwrap();
                for (_, datagram) in &burst {
                    match open(&mut plane, datagram) {
                        Ok(n) => delivered[n as usize] += 1,
                        Err(DropReason::Open(OpenError::Replay(_))) => replays += 1,
                        Err(other) => panic!("dropped for another reason: {other:?}"),
                    }
                }
                drop(plane);
                opened.fetch_add(received, Ordering::AcqRel);
            }
            (delivered, copies, replays)
        })
    };

    // Waits until the opening thread has taken the first `target` datagrams sealed.
    let drained = |target: usize| {
        while opened.load(Ordering::Acquire) < target {
            std::thread::yield_now();
        }
    };
    let install = |generation: u32, open_a: &mut OpenPlane, rng: &mut Seeded| {
        let (a, b) = pairs(generation, rng);
        open_b.lock().unwrap().install(b).unwrap();
        let half = open_a.install(a).unwrap();
        seal_a.lock().unwrap().plane.install(half);
    };
    let delete = |generation: u32, open_a: &mut OpenPlane| {
        let (ab, ba) = spis(generation);
        let sealed = {
            let mut side = seal_a.lock().unwrap();
            assert!(side.plane.remove_by_inbound_spi(ba), "outbound half of generation {generation}");
            side.deleted.insert(ab);
            side.sealed
        };
        // The peer drops its inbound SA once our packets on it have arrived.
        drained(sealed);
        assert!(open_a.remove_by_inbound_spi(ba));
        assert!(open_b.lock().unwrap().remove_by_inbound_spi(ab));
    };
    let until = |n: usize| {
        while sent.load(Ordering::Acquire) < n {
            std::thread::yield_now();
        }
    };

    install(1, &mut open_a, &mut rng);
    started.store(true, Ordering::Release);
    until(PACKETS as usize / 4);
    install(2, &mut open_a, &mut rng);
    delete(1, &mut open_a);
    until(PACKETS as usize / 2);
    delete(2, &mut open_a);
    // Traffic goes on with no SA: it queues (and raises an acquire) until the third pair.
    while seal_a.lock().unwrap().plane.queued_packets() < 3 {
        std::thread::yield_now();
    }
    install(3, &mut open_a, &mut rng);

    sealer.join().unwrap();
    let (delivered, copies, replays) = opener.join().unwrap();
    let lost: Vec<usize> = (0..delivered.len()).filter(|&n| delivered[n] == 0).collect();
    let twice: Vec<usize> = (0..delivered.len()).filter(|&n| delivered[n] > 1).collect();
    assert!(lost.is_empty(), "lost packets: {lost:?}");
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(replays, copies, "every copy refused as a replay");
    let statistics = *seal_a.lock().unwrap().plane.statistics();
    assert_eq!(statistics.queue_dropped, 0, "no queued packet dropped");
    assert!(statistics.queued >= 6 + 3, "packets queued before the first pair and after the second");
}
