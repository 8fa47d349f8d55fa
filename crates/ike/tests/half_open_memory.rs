//! The half-open table charges each SA what it really holds (issue 13, admission by memory):
//! with a counting allocator, the heap a flood of spoofed MM1s makes the engine allocate stays
//! within what the table charged, a minimal main-mode half-open SA stays small (the parts of
//! an IKE SA it does not use are boxed or allocated on first use), and the default budget
//! holds 19,000 of them.
// A counting allocator needs `unsafe` to implement `GlobalAlloc`; nothing else here does.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crypto::{EspCipher, Integrity, SecretBytes, SecureRandom};
use ike::{
    Acquire, Config, EncapsulationMode, Engine, ExchangeMode, IkeProposal, IpsecProposal, IpsecProtocols,
    Limits, PeerConfig, PolicyConfig, PolicyId, Subnet, TrafficSelector,
};

/// Counts the live heap bytes of the whole process.
struct Counting;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only updates a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as i64, Relaxed);
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
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A deterministic generator (SplitMix64); tests only.
struct TestRng(u64);

impl SecureRandom for TestRng {
    fn fill(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes()[..chunk.len()]);
        }
    }
}

const HUB: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const BRANCH: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// One gateway: `remote` None makes it a hub that answers any address (a template peer).
fn config(local: Ipv4Addr, remote: Option<Ipv4Addr>, limits: Limits) -> Config {
    let selector = TrafficSelector::between(
        Subnet::new(Ipv4Addr::new(10, 1, 1, 0), 24),
        Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
    );
    Config {
        peers: vec![PeerConfig {
            name: "peer".into(),
            local_address: IpAddr::V4(local),
            remote_address: remote.map(IpAddr::V4),
            exchange_mode: ExchangeMode::Main,
            proposals: vec![IkeProposal::recommended()],
            pre_shared_key: SecretBytes::from_slice(b"tiandihui2"),
            site_keys: Vec::new(),
            local_id: None,
            remote_id: None,
            nat_traversal: true,
            force_encapsulation: false,
            dpd: None,
            accept_aggressive_mode: false,
            certificate: None,
        }],
        policies: vec![PolicyConfig {
            id: PolicyId { name: "policy1".into(), sequence: 1 },
            peer: 0,
            selectors: vec![selector],
            proposals: vec![IpsecProposal {
                protocols: IpsecProtocols::Esp {
                    encryption: EspCipher::AesCbc128,
                    integrity: Some(Integrity::HmacSha256_128),
                },
                mode: EncapsulationMode::Tunnel,
            }],
            pfs: None,
            lifetime: Duration::from_secs(3600),
            lifetime_kilobytes: None,
            template: None,
        }],
        limits,
        own_addresses: Vec::new(),
        sha2_256_truncation_96: false,
    }
}

#[test]
fn half_open_charges_cover_the_heap_and_the_default_budget_holds_nineteen_thousand_of_them() {
    #[allow(clippy::disallowed_methods)] // the test's clock origin; the engine never reads one
    let now = Instant::now();
    let mut branch = Engine::new(config(BRANCH, Some(HUB), Limits::default()), Box::new(TestRng(1)));
    let selector = branch.config().policies[0].selectors[0];
    branch.handle_acquire(now, Acquire { policy: 0, selector });
    let mm1 = branch.poll_transmit().expect("MM1").payload;
    // 50,000 in a budget large enough to hold them all: per-SA figures with the tables' spare
    // capacity (they grow by doubling) a small share of the whole.
    let roomy = Limits { half_open_memory_budget: 64 * 1024 * 1024, ..Limits::default() };
    let mut hub = Engine::new(config(HUB, None, roomy), Box::new(TestRng(2)));
    let to = SocketAddr::new(IpAddr::V4(HUB), 500);
    const N: u32 = 50_000;
    let before = LIVE_BYTES.load(Relaxed);
    for i in 0..N {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x6440_0000 + i)), 500);
        hub.handle_datagram(now, to, from, &mm1);
        while hub.poll_transmit().is_some() {}
        while hub.poll_event().is_some() {}
    }
    let grown = usize::try_from(LIVE_BYTES.load(Relaxed) - before).expect("the heap grew");
    let usage = hub.half_open();
    println!(
        "{N} half-open SAs: charged {} bytes ({} each), heap grew {grown} bytes ({} each), budget {}",
        usage.bytes,
        usage.bytes / N as usize,
        grown / N as usize,
        usage.budget
    );
    assert_eq!(usage.entries, N as usize);
    assert_eq!(hub.statistics().half_open_evicted, 0, "64 MiB holds {N}");
    let default_holds = Limits::default().half_open_memory_budget / (usage.bytes / N as usize);
    assert!(default_holds >= 19_000, "the default budget holds only {default_holds}");
    assert!(usage.bytes <= usage.budget);
    // Small: before the unused parts of an IKE SA were boxed a minimal half-open SA was
    // charged 1,736 bytes (1,988 allocated) and 50,000 did not fit in 64 MiB;
    // 22 MiB, the default, held only 13,000.
    assert!(usage.bytes / N as usize <= 1_250, "charged {} each", usage.bytes / N as usize);
    assert!(grown / N as usize <= 1_350, "allocated {} each", grown / N as usize);
    // Honest: what the engine really allocated for them is close to what they were charged
    // (measured: 1,275 bytes a minimal half-open SA against 1,192 charged). The difference is
    // the spare capacity of the engine's tables, which grow by doubling: memory the table
    // may fill, not memory a half-open SA holds.
    assert!(grown <= usage.bytes * 5 / 4, "heap {grown} > 1.25 × charged {}", usage.bytes);
    assert!(grown >= usage.bytes * 3 / 4, "heap {grown} < 0.75 × charged {}", usage.bytes);
}
