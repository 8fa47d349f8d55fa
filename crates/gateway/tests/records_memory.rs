//! Memory per installed pair in the daemon's own records (issue 16: ≤ 4 kB per IKE SA + IPsec
//! pair in the running daemon, of which this is the gateway's display records: the pair list and
//! its three indexes by our SPI, by the peer's SPI and by IKE SA). A counting allocator
//! measures the heap that recording `PAIRS` pairs takes, per pair, and holds it under
//! [`BYTES_PER_PAIR`]; with a `BTreeSet` per index key (a node of about 100 bytes for each of a
//! pair's three keys) it was 667 bytes.
// A counting allocator needs `unsafe` to implement `GlobalAlloc`; nothing else here does.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use crypto::key_schedule::{EspKeyLengths, KeymatInput, Skeyid, Spi};
use crypto::{EspCipher, HashAlgorithm, Integrity};
use ike::{
    ConnectionId, EncapsulationMode, Event, IpsecProposal, IpsecProtocols, IpsecSaPair, IpsecSuite, PolicyId,
    Subnet, TrafficSelector,
};
use keysteward::records::Records;

const PAIRS: u32 = 2000;
const BYTES_PER_PAIR: isize = 320;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Branch `n`'s pair as the engine reports it to a hub: its own IKE SA, its own SPIs.
fn installed(n: u32) -> Event {
    let skeyid = Skeyid::for_pre_shared_key(HashAlgorithm::Sha256, b"psk", b"ni", b"nr");
    let d = skeyid.derive_phase1_keys(b"g^xy", &[1; 8], &[2; 8]).skeyid_d;
    let input = KeymatInput { pfs_shared_secret: None, protocol: 3, ni_b: b"NI", nr_b: b"NR" };
    let lengths = EspKeyLengths { encryption_key_len: 16, salt_len: 0, integrity_key_len: 32 };
    let keys = d.ipsec_sa_keys(&input, Spi(0x1000 + n), Spi(0x8000_0000 + n), lengths).unwrap();
    let net = |a: [u8; 4]| Subnet::new(a.into(), 24);
    Event::IpsecSaInstalled(Box::new(IpsecSaPair {
        connection: ConnectionId(u64::from(n) + 1),
        peer: "hub".into(),
        policy: PolicyId { name: "hub".into(), sequence: 10 },
        local: "100.64.0.1:500".parse().unwrap(),
        remote: std::net::SocketAddr::from(([198, 18, (n >> 8) as u8, n as u8], 500)),
        selector: TrafficSelector::between(net([172, 16, 0, 0]), net([10, 0, (n >> 8) as u8, n as u8])),
        suite: IpsecSuite {
            proposal: IpsecProposal {
                protocols: IpsecProtocols::Esp {
                    encryption: EspCipher::AesCbc128,
                    integrity: Some(Integrity::HmacSha256_128),
                },
                mode: EncapsulationMode::Tunnel,
            },
            pfs: None,
            lifetime: std::time::Duration::from_secs(3600),
            lifetime_kilobytes: None,
        },
        inbound: keys.inbound,
        outbound: keys.outbound,
        ah: None,
        initiator: false,
        udp_encapsulation: None,
    }))
}

#[test]
fn a_recorded_pair_costs_the_records_under_320_bytes() {
    let events: Vec<Event> = (0..=PAIRS).map(installed).collect();
    let mut records = Records::default();
    // One pair first, so that the tables' first allocations are not charged to the rest.
    records.observe(&events[0]);
    let before = LIVE.load(Relaxed);
    for event in &events[1..] {
        records.observe(event);
    }
    let per_pair = (LIVE.load(Relaxed) - before) / PAIRS as isize;
    eprintln!("records heap per installed pair: {per_pair} bytes");
    assert_eq!(records.installed_len(), PAIRS as usize + 1);
    assert!(per_pair <= BYTES_PER_PAIR, "{per_pair} bytes per pair (bound {BYTES_PER_PAIR})");
}
