//! Load benchmark of the IKEv1 engine: many initiator engines against ONE responder engine, in
//! process, main mode with pre-shared keys + quick mode (aes128/sha256, ESP aes128-sha256).
//!
//! Reports, per DH group:
//! - handshakes per second of the whole simulation (both sides on one core) and the responder's
//!   own capacity (1 / responder CPU per handshake);
//! - the responder's CPU time per handshake, measured apart from the initiators' by reading the
//!   thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`) around every responder `handle_*` call and
//!   the `poll_*` drain after it. The engine is sans-IO and the bench single-threaded, so that
//!   is exactly the responder's CPU time; `Instant` would also count the time the scheduler
//!   hands to the other users of this shared 2-vCPU machine (measured: 30 % of wall time);
//! - the crypto floor measured in the same run with crypto's public API: one DH key generation
//!   and one shared-secret computation (the responder's 2 DH operations without PFS) plus 20
//!   HMACs over 300 bytes with a fresh key (the PRF calls of main mode + quick mode), and the
//!   ratio responder CPU / floor;
//! - the responder's live heap bytes per established IKE SA + IPsec SA pair at 10,000 pairs
//!   (counting global allocator: live bytes of the process with only the responder alive,
//!   minus the same figure before the first handshake), and the responder's per-handshake cost
//!   at 100 and at 10,000 established SAs.
//!
//! Randomness comes from a seeded SplitMix64 generator, NOT a secure one: fast and
//! deterministic, fine for a benchmark, never for a gateway.
//!
//! `cargo bench -p keysteward-ike --bench handshakes` (optional arguments after `--`:
//! `--handshakes N` per group, `--sas N` for the memory/flatness run, `--only throughput|memory`).
// A benchmark measures wall-clock time around the engine; the engine itself never reads the
// clock (the sans-IO ban in crates/ike/clippy.toml), so the bench may.
#![allow(clippy::disallowed_methods)]
// The bench is its own crate: `unsafe` is needed only to implement `GlobalAlloc`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crypto::{
    DhGroup, DhPrivate, EspCipher, HashAlgorithm, HashFunction, Integrity, Phase1Cipher, SecretBytes,
    SecureRandom,
};
use ike::{
    Acquire, AuthMethod, Config, EncapsulationMode, Engine, Event, ExchangeMode, IkeProposal, IpsecProposal,
    IpsecProtocols, Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector, Transmit,
};

// ---------------------------------------------------------------------------------------------
// Counting allocator

/// Counts live bytes and allocation calls of the whole process (single-threaded bench).
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only updates counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Relaxed)
}

/// CPU time this thread has consumed (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`). Unlike wall
/// time it does not count the time the scheduler gives to the other processes of the shared
/// machine, and its cost (one system call, measured and printed) is far below a handshake's.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one `thread_cpu()` reading costs, to judge its overhead per timed call.
fn thread_cpu_cost() -> Duration {
    let n = 10_000u32;
    let start = thread_cpu();
    for _ in 0..n {
        black_box(thread_cpu());
    }
    (thread_cpu() - start) / n
}

// ---------------------------------------------------------------------------------------------
// Deterministic generator

/// SplitMix64: fast and reproducible. NOT cryptographically secure — benchmark only.
struct BenchRng(u64);

impl SecureRandom for BenchRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configurations

const RESPONDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The responder's protected network.
const FAR: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 0);
/// Initiator `i` is 198.18.0.0 + i + 1 (198.18.0.0/15, RFC 2544 benchmarking space).
const INITIATOR_BASE: u32 = 0xC612_0000;

fn initiator_address(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(INITIATOR_BASE + 1 + i as u32)
}

fn initiator_index(address: IpAddr) -> Option<usize> {
    match address {
        IpAddr::V4(v4) => u32::from(v4).checked_sub(INITIATOR_BASE + 1).map(|i| i as usize),
        IpAddr::V6(_) => None,
    }
}

/// Initiator `i` protects 10.0.0.0 + i·256 /24.
fn initiator_inside(i: usize) -> Subnet {
    Subnet::new(Ipv4Addr::from(0x0A00_0000 + ((i as u32) << 8)), 24)
}

fn ike_proposal(group: DhGroup) -> IkeProposal {
    IkeProposal {
        encryption: Phase1Cipher::Aes128,
        hash: HashAlgorithm::Sha256,
        auth_method: AuthMethod::PreSharedKey,
        group,
        lifetime: Duration::from_secs(86_400),
    }
}

fn esp_proposal() -> IpsecProposal {
    IpsecProposal {
        protocols: IpsecProtocols::Esp {
            encryption: EspCipher::AesCbc128,
            integrity: Some(Integrity::HmacSha256_128),
        },
        mode: EncapsulationMode::Tunnel,
    }
}

fn psk(i: usize) -> SecretBytes {
    SecretBytes::from_slice(format!("bench-psk-{i}").as_bytes())
}

/// One peer + one policy for the exchange between initiator `i` and the responder, seen from
/// the responder (`as_responder`) or from the initiator.
fn peer_and_policy(
    i: usize,
    group: DhGroup,
    as_responder: bool,
    peer_index: usize,
) -> (PeerConfig, PolicyConfig) {
    let (me, them) = (initiator_address(i), RESPONDER);
    let (local_addr, remote_addr) = if as_responder { (them, me) } else { (me, them) };
    let far = Subnet::new(FAR, 24);
    let (local, remote) = if as_responder { (far, initiator_inside(i)) } else { (initiator_inside(i), far) };
    let peer = PeerConfig {
        name: format!("peer{i}"),
        local_address: IpAddr::V4(local_addr),
        remote_address: Some(IpAddr::V4(remote_addr)),
        exchange_mode: ExchangeMode::Main,
        proposals: vec![ike_proposal(group)],
        pre_shared_key: psk(i),
        site_keys: Vec::new(),
        local_id: None,
        remote_id: None,
        // As deployed (NAT-T on by default): VIDs and NAT-D are part of the handshake cost.
        nat_traversal: true,
        force_encapsulation: false,
        dpd: None,
        accept_aggressive_mode: false,
        certificate: None,
    };
    let policy = PolicyConfig {
        id: PolicyId { name: "bench".into(), sequence: i as u32 + 1 },
        peer: peer_index,
        selectors: vec![TrafficSelector::between(local, remote)],
        proposals: vec![esp_proposal()],
        pfs: None,
        lifetime: Duration::from_secs(3600),
        lifetime_kilobytes: None,
        template: None,
    };
    (peer, policy)
}

fn limits() -> Limits {
    Limits { half_open_memory_budget: 1 << 30, ..Limits::default() }
}

fn responder_config(peers: usize, group: DhGroup) -> Config {
    let (peers, policies) = (0..peers).map(|i| peer_and_policy(i, group, true, i)).unzip();
    Config { peers, policies, limits: limits(), own_addresses: Vec::new(), sha2_256_truncation_96: false }
}

fn initiator_config(i: usize, group: DhGroup) -> Config {
    let (peer, policy) = peer_and_policy(i, group, false, 0);
    Config {
        peers: vec![peer],
        policies: vec![policy],
        limits: limits(),
        own_addresses: Vec::new(),
        sha2_256_truncation_96: false,
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation

/// Totals of a run of batches.
#[derive(Default, Clone, Copy)]
struct Totals {
    handshakes: usize,
    responder: Duration,
    initiators: Duration,
    responder_allocations: u64,
    wall: Duration,
}

struct Bench {
    group: DhGroup,
    responder: Engine,
    responder_address: SocketAddr,
    /// Initiators created so far (the next one gets this index).
    next_initiator: usize,
    now: Instant,
    seed: u64,
}

impl Bench {
    fn new(group: DhGroup, peers: usize) -> Self {
        Self {
            group,
            responder: Engine::new(responder_config(peers, group), Box::new(BenchRng(0x5eed))),
            responder_address: SocketAddr::new(IpAddr::V4(RESPONDER), 500),
            next_initiator: 0,
            now: Instant::now(),
            seed: 1,
        }
    }

    /// Runs `count` new initiators' handshakes concurrently to completion; the initiators are
    /// dropped afterwards (the responder keeps its SAs). Panics unless all complete on both sides.
    fn batch(&mut self, count: usize, totals: &mut Totals) {
        let wall = Instant::now();
        let first = self.next_initiator;
        self.next_initiator += count;
        let mut initiators: Vec<Engine> = (first..first + count)
            .map(|i| {
                self.seed += 1;
                Engine::new(initiator_config(i, self.group), Box::new(BenchRng(self.seed)))
            })
            .collect();
        let mut initiator_done = vec![false; count];
        let mut responder_done = 0usize;
        let mut queue: VecDeque<Transmit> = VecDeque::new();
        let now = self.now;

        for (offset, engine) in initiators.iter_mut().enumerate() {
            let i = first + offset;
            let selector = TrafficSelector::between(initiator_inside(i), Subnet::new(FAR, 24));
            let start = thread_cpu();
            engine.handle_acquire(now, Acquire { policy: 0, selector });
            while let Some(t) = engine.poll_transmit() {
                queue.push_back(t);
            }
            totals.initiators += thread_cpu() - start;
        }

        while let Some(t) = queue.pop_front() {
            if t.remote == self.responder_address {
                let allocations = ALLOCATIONS.load(Relaxed);
                let start = thread_cpu();
                self.responder.handle_datagram(now, t.remote, t.local, &t.payload);
                drop(t);
                while let Some(reply) = self.responder.poll_transmit() {
                    queue.push_back(reply);
                }
                while let Some(event) = self.responder.poll_event() {
                    match event {
                        Event::IpsecSaInstalled(_) => responder_done += 1,
                        Event::Failed(f) => panic!("responder failure: {f:?}"),
                        _ => {}
                    }
                }
                totals.responder += thread_cpu() - start;
                totals.responder_allocations += ALLOCATIONS.load(Relaxed) - allocations;
            } else {
                let offset =
                    initiator_index(t.remote.ip()).and_then(|i| i.checked_sub(first)).expect("initiator");
                let engine = &mut initiators[offset];
                let start = thread_cpu();
                engine.handle_datagram(now, t.remote, t.local, &t.payload);
                drop(t);
                while let Some(reply) = engine.poll_transmit() {
                    queue.push_back(reply);
                }
                while let Some(event) = engine.poll_event() {
                    match event {
                        Event::IpsecSaInstalled(_) => initiator_done[offset] = true,
                        Event::Failed(f) => panic!("initiator failure: {f:?}"),
                        _ => {}
                    }
                }
                totals.initiators += thread_cpu() - start;
            }
        }
        // Time moves on a little between batches; run the responder's timers (nothing is due).
        self.now += Duration::from_millis(1);
        let start = thread_cpu();
        self.responder.handle_timeout(self.now);
        totals.responder += thread_cpu() - start;

        assert!(initiator_done.iter().all(|&d| d), "every initiator installed its IPsec SAs");
        assert_eq!(responder_done, count, "the responder installed one pair per initiator");
        totals.handshakes += count;
        drop(initiators);
        totals.wall += wall.elapsed();
    }

    fn run(&mut self, handshakes: usize, batch: usize) -> Totals {
        let mut totals = Totals::default();
        let mut left = handshakes;
        while left > 0 {
            let n = left.min(batch);
            self.batch(n, &mut totals);
            left -= n;
        }
        totals
    }
}

// ---------------------------------------------------------------------------------------------
// Crypto floor

/// One side of main mode PSK + quick mode without PFS, crypto only: one DH key generation,
/// one shared secret, 20 HMACs (SKEYID family, HASH_I/HASH_R, quick-mode HASH(1..3), KEYMAT)
/// over 300 bytes with a fresh key each. Returns the time per side.
fn crypto_floor(group: DhGroup, iterations: usize) -> Duration {
    let mut rng = BenchRng(0xf100);
    let peer = DhPrivate::generate(group, &mut rng).expect("peer key");
    let message = [0x5au8; 300];
    let start = thread_cpu();
    for _ in 0..iterations {
        let ours = DhPrivate::generate(group, &mut rng).expect("our key");
        let shared = ours.shared_secret(black_box(peer.public_value())).expect("shared");
        let mut key = HashAlgorithm::Sha256.hmac(shared.expose(), &[&message]);
        for _ in 0..19 {
            key = HashAlgorithm::Sha256.hmac(key.as_ref(), &[&message]);
        }
        black_box(key);
    }
    (thread_cpu() - start) / iterations as u32
}

// ---------------------------------------------------------------------------------------------
// Reports

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn per(d: Duration, n: usize) -> Duration {
    d / n.max(1) as u32
}

fn throughput(group: DhGroup, handshakes: usize) {
    let floor_iterations = if matches!(group, DhGroup::Modp2048) { 200 } else { 2000 };
    let floor_before = crypto_floor(group, floor_iterations);
    // Enough peers for warm-up + measurement; warm-up establishes 100 SAs first.
    let mut bench = Bench::new(group, handshakes + 100);
    bench.run(100, 100);
    let cpu_start = thread_cpu();
    let totals = bench.run(handshakes, 100);
    let cpu = thread_cpu() - cpu_start;
    let floor_after = crypto_floor(group, floor_iterations);
    let floor = (floor_before + floor_after) / 2;

    let responder = per(totals.responder, totals.handshakes);
    let initiator = per(totals.initiators, totals.handshakes);
    println!(
        "== {group}: main mode PSK + quick mode, aes128/sha256, ESP aes128-sha256, {handshakes} handshakes"
    );
    println!(
        "  handshakes/s (both sides, one core):   {:>9.0}",
        totals.handshakes as f64 / totals.wall.as_secs_f64()
    );
    println!("  responder capacity (1 core), hs/s:     {:>9.0}", 1.0 / responder.as_secs_f64());
    println!("  responder CPU per handshake:           {:>9.1} µs", us(responder));
    println!("  initiator CPU per handshake:           {:>9.1} µs", us(initiator));
    println!(
        "  responder allocations per handshake:   {:>9.1}",
        totals.responder_allocations as f64 / totals.handshakes as f64
    );
    println!(
        "  crypto floor per side:                 {:>9.1} µs (before {:.1}, after {:.1})",
        us(floor),
        us(floor_before),
        us(floor_after)
    );
    println!("  ratio responder CPU / floor:           {:>9.2}", us(responder) / us(floor));
    println!(
        "  timed sections {:.1} ms of thread CPU {:.1} ms (wall {:.1} ms; one clock read {:.2} µs)",
        (totals.responder + totals.initiators).as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        totals.wall.as_secs_f64() * 1e3,
        us(thread_cpu_cost())
    );
}

fn memory(group: DhGroup, sas: usize) {
    let probe = 100;
    let floor = crypto_floor(group, 2000);
    let mut bench = Bench::new(group, sas + probe);
    let baseline = live_bytes();

    let early = bench.run(probe, probe);
    let fill = bench.run(sas - probe, 250);
    let established = bench.responder.ike_sas().filter(|sa| sa.state == "established").count();
    let after = live_bytes();
    // Let finished quick modes and stale timers expire (exchange timeout), as a gateway would.
    bench.now += limits().exchange_timeout + Duration::from_secs(1);
    bench.responder.handle_timeout(bench.now);
    let settled = live_bytes();
    let late = bench.run(probe, probe);
    let floor_after = crypto_floor(group, 2000);
    let floor = (floor + floor_after) / 2;

    println!("== {group}: responder memory and cost at {sas} established IKE SA + IPsec SA pairs");
    println!("  established IKE SAs on the responder:  {established:>9}");
    println!(
        "  heap per pair, just established:       {:>9.0} bytes",
        (after - baseline) as f64 / established as f64
    );
    println!(
        "  heap per pair, after {}s of timers:    {:>9.0} bytes",
        limits().exchange_timeout.as_secs() + 1,
        (settled - baseline) as f64 / established as f64
    );
    println!("  responder config (live before SAs):    {:>9} bytes", baseline);
    let early_us = us(per(early.responder, early.handshakes));
    let late_us = us(per(late.responder, late.handshakes));
    println!("  responder CPU/handshake at 0→{probe} SAs:   {early_us:>9.1} µs");
    println!(
        "  responder CPU/handshake at {sas}→{} SAs: {late_us:>9.1} µs (ratio {:.2})",
        sas + probe,
        late_us / early_us
    );
    println!(
        "  responder CPU/handshake over the fill:  {:>9.1} µs; floor {:.1} µs; fill wall {:.2} s",
        us(per(fill.responder, fill.handshakes)),
        us(floor),
        fill.wall.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let handshakes = value("--handshakes");
    let sas = value("--sas").unwrap_or(10_000).max(200);
    if only.as_deref() != Some("memory") {
        throughput(DhGroup::Modp2048, handshakes.unwrap_or(500));
        throughput(DhGroup::Ecp256, handshakes.unwrap_or(2000));
    }
    if only.as_deref() != Some("throughput") {
        memory(DhGroup::Ecp256, sas);
    }
}
