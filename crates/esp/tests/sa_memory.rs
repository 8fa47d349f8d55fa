//! Memory per installed ESP SA pair (issue 16: ≤ 4 kB per IKE SA + IPsec pair in the running
//! daemon). A counting global allocator measures the heap that installing pairs into a
//! [`DataPlane`] takes, for each cipher family, and the test prints it with the inline sizes
//! and holds it under a bound so it cannot grow back.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicIsize, Ordering};

use esp::{
    Action, DataPlane, DataPlaneConfig, EspCipher, InboundSa, Integrity, OutboundSa, PolicyIndex, Prefix,
    Protocols, Rule, SaKeys, SaPair, SaParams, SecureRandom, Selector, Spd, Spi,
};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counter is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

struct Fixed(u8);

impl SecureRandom for Fixed {
    fn fill(&mut self, dest: &mut [u8]) {
        for (i, byte) in dest.iter_mut().enumerate() {
            *byte = self.0 ^ (i as u8).wrapping_mul(151).wrapping_add(7);
        }
    }
}

const PAIRS: usize = 1000;

/// Heap bytes per pair of `PAIRS` pairs of `cipher` / `integrity` installed in one data plane
/// (one rule per pair, as a hub holds its branches), the rule's own bytes included.
fn heap_per_pair(cipher: EspCipher, integrity: Option<Integrity>) -> usize {
    let cipher_key: Vec<u8> = (0..cipher.key_len()).map(|i| (i as u8).wrapping_mul(37) ^ 0x5c).collect();
    let integrity_key: Vec<u8> = (0..integrity.map_or(0, Integrity::key_len)).map(|i| i as u8).collect();
    let selector = |n: usize| {
        let third = Ipv4Addr::from(0x0a00_0000 | ((n as u32) << 8));
        Selector::between(Prefix::new(Ipv4Addr::new(10, 255, 0, 0), 24), Prefix::new(third, 24))
    };
    let mut plane = DataPlane::new(Spd::new(Vec::new(), Action::Bypass), DataPlaneConfig::default());
    // One pair first, so that the tables' first allocations are not charged to the rest.
    let install = |plane: &mut DataPlane, n: usize| {
        plane.push_rule(Rule { selector: selector(n), action: Action::Protect(PolicyIndex(0)) });
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector: selector(n),
            params: SaParams::new(cipher, integrity),
            local: SocketAddr::from(([192, 0, 2, 1], 0)),
            remote: SocketAddr::from(([198, 51, 100, (n % 250) as u8 + 1], 0)),
            inbound: SaKeys {
                spi: Spi(0x1000 + n as u32),
                cipher_key: &cipher_key,
                integrity_key: &integrity_key,
            },
            outbound: SaKeys {
                spi: Spi(0x9000 + n as u32),
                cipher_key: &cipher_key,
                integrity_key: &integrity_key,
            },
            protocols: Protocols::Esp,
        };
        plane.install(pair, &mut Fixed(n as u8)).unwrap();
    };
    install(&mut plane, 0);
    let before = LIVE.load(Ordering::Relaxed);
    for n in 1..=PAIRS {
        install(&mut plane, n);
    }
    let after = LIVE.load(Ordering::Relaxed);
    drop(plane);
    ((after - before) as usize) / PAIRS
}

/// Prints the inline sizes and heap per pair, and holds them under bounds so that they
/// cannot grow back (they were 3,440 and 3,464 bytes inline and 15,571 bytes of heap per
/// pair for every suite: both CBC key schedules, a second cipher for the IV generator and
/// the room of an HMAC state and of an AH SA in every SA, used or not).
#[test]
fn esp_sa_pair_memory_is_bounded() {
    let (outbound, inbound) = (size_of::<OutboundSa>(), size_of::<InboundSa>());
    println!("size_of OutboundSa {outbound} bytes, InboundSa {inbound} bytes");
    assert!(outbound <= 320 && inbound <= 320, "an ESP SA is {outbound} / {inbound} bytes inline");
    let suites = [
        ("aes-gcm-128", EspCipher::AesGcm128, None, AEAD_BOUND),
        ("aes-256-gcm-128", EspCipher::AesGcm256, None, AEAD_BOUND),
        ("aes-128 sha2-256", EspCipher::AesCbc128, Some(Integrity::HmacSha256_128), HMAC_BOUND),
        ("aes-256 sha2-512", EspCipher::AesCbc256, Some(Integrity::HmacSha512_256), HMAC_BOUND),
        ("3des sha1", EspCipher::TripleDes, Some(Integrity::HmacSha1_96), HMAC_BOUND),
    ];
    for (name, cipher, integrity, bound) in suites {
        let heap = heap_per_pair(cipher, integrity);
        println!("{name}: {heap} bytes of heap per installed SA pair (bound {bound})");
        assert!(heap <= bound, "{name}: {heap} bytes per SA pair, more than {bound}");
    }
}

/// Heap per AES-GCM pair: both directions' GCM key (aws-lc's AES key and GHASH table), the
/// SA entries and their table slots (2,124 bytes while every entry held an AH SA's room,
/// 1,512 while the inbound table held its entries inline, 1,144 with them boxed).
const AEAD_BOUND: usize = 1_250;
/// Heap per CBC + HMAC pair: as for GCM with one CBC key schedule per direction (a bare
/// `AES_KEY`, 244 bytes) and the HMAC's two precomputed hash states (2 × 112 bytes for
/// SHA-256, 2 × 216 for SHA-512). 5,581 bytes for AES-128 + SHA2-256 with aws-lc's `HMAC_CTX`
/// (1,232 bytes a direction whatever the hash) and aws-lc-rs's CBC keys (both schedules);
/// 2,384 with the inbound table's entries inline (every empty slot an entry's room), 2,016
/// boxed (3DES + SHA-1 2,472, the largest).
const HMAC_BOUND: usize = 2_600;
