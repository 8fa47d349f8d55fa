//! Criterion benchmarks of the ESP data path: seal and open of a 1400-byte inner packet
//! with AES-GCM-16-128 and with AES-CBC-128 + HMAC-SHA2-256-128, per SA and through the
//! data plane (SPD lookup and SA selection included). The "crypto only" group repeats the
//! primitives of `crates/crypto/benches` ("esp 1400 bytes") in the same run, because timings
//! on the shared machine vary by ±30 % between runs and only side-by-side ratios mean much.
//!
//! The "ah sa" group does the same for AH (HMAC-SHA2-256-128) alone.
//!
//! `cargo bench -p keysteward-esp -- --warm-up-time 1 --measurement-time 3`
// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use crypto::{CipherKey, EspCipher, Integrity, IntegrityKey, SecureRandom};
use esp::{
    Action, DataPlane, DataPlaneConfig, InboundSa, Outbound, OutboundSa, PolicyIndex, Prefix, Rule, SaKeys,
    SaPair, SaParams, Selector, Spd, Spi, MAX_HEADROOM, MAX_TAILROOM,
};

const PACKET_LEN: usize = 1400;

/// Benchmarks need no real randomness (it only keys the CBC IV generator), and the crate's
/// lint rules keep the OS generator out.
struct CounterRandom(u8);

impl SecureRandom for CounterRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(97);
            *b = self.0;
        }
    }
}

fn packet() -> Vec<u8> {
    let mut p = vec![0u8; PACKET_LEN];
    p[..20].copy_from_slice(&[0x45, 0, 0x05, 0x78, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 1, 1, 2, 10, 2, 2, 2]);
    p
}

fn suites() -> [(&'static str, EspCipher, Option<Integrity>); 2] {
    [
        ("aes-gcm-16-128", EspCipher::AesGcm128, None),
        ("aes-cbc-128+hmac-sha2-256-128", EspCipher::AesCbc128, Some(Integrity::HmacSha256_128)),
    ]
}

fn per_sa(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp sa 1400 bytes");
    group.throughput(Throughput::Bytes(PACKET_LEN as u64));
    let packet = packet();
    for (name, cipher, integrity) in suites() {
        let params = SaParams::new(cipher, integrity);
        let (ck, ik) = (vec![0x11; cipher.key_len()], vec![0x22; integrity.map_or(0, Integrity::key_len)]);
        let keys = SaKeys { spi: Spi(0x1234_5678), cipher_key: &ck, integrity_key: &ik };
        let mut sealer = OutboundSa::new(&params, keys, &mut CounterRandom(1)).expect("SA");
        let mut opener = InboundSa::new(&params, keys).expect("SA");
        let mut buf = vec![0u8; PACKET_LEN + MAX_HEADROOM + MAX_TAILROOM];

        group.bench_function(format!("{name} seal"), |b| {
            b.iter(|| sealer.seal_tunnel(black_box(&packet), &mut buf).expect("seal").len())
        });
        group.bench_function(format!("{name} open_in_place"), |b| {
            b.iter_batched(
                || sealer.seal_tunnel(&packet, &mut buf).expect("seal").to_vec(),
                |mut esp| opener.open_in_place(&mut esp).expect("open").payload.len(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The same work as `crates/crypto/benches/crypto.rs` "esp 1400 bytes": the cipher and
/// ICV alone, no ESP framing.
fn crypto_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto only 1400 bytes");
    group.throughput(Throughput::Bytes(PACKET_LEN as u64));
    let gcm = CipherKey::new(EspCipher::AesGcm128, &[0x11; 20]).expect("key");
    let aad = [0x22u8; 8];
    let mut data = vec![0u8; PACKET_LEN];
    let mut seq = 0u64;
    group.bench_function("aes-gcm-16-128 seal", |b| {
        b.iter(|| {
            seq += 1;
            black_box(gcm.seal_in_place(&seq.to_be_bytes(), &aad, &mut data).expect("seal"))
        })
    });
    let cbc = CipherKey::new(EspCipher::AesCbc128, &[0x33; 16]).expect("key");
    let integrity = IntegrityKey::new(Integrity::HmacSha256_128, &[0x44; 32]).expect("key");
    let iv = [0x55u8; 16];
    let mut padded = vec![0u8; (PACKET_LEN + 2).div_ceil(16) * 16];
    group.bench_function("aes-cbc-128+hmac-sha2-256-128 seal", |b| {
        b.iter(|| {
            cbc.encrypt_in_place(&iv, &mut padded).expect("encrypt");
            black_box(integrity.compute(&[&aad, &iv, &padded]).expect("icv"))
        })
    });
    group.finish();
}

fn data_plane(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp data plane 1400 bytes");
    group.throughput(Throughput::Bytes(PACKET_LEN as u64));
    let packet = packet();
    let selector = Selector::between(
        Prefix::new(Ipv4Addr::new(10, 1, 1, 0), 24),
        Prefix::new(Ipv4Addr::new(10, 2, 2, 0), 24),
    );
    for (name, cipher, integrity) in suites() {
        let spd = Spd::new(vec![Rule { selector, action: Action::Protect(PolicyIndex(0)) }], Action::Bypass);
        let mut plane = DataPlane::new(spd, DataPlaneConfig::default());
        let (ck, ik) = (vec![0x11; cipher.key_len()], vec![0x22; integrity.map_or(0, Integrity::key_len)]);
        let keys = SaKeys { spi: Spi(0x1234_5678), cipher_key: &ck, integrity_key: &ik };
        let addr = |last| SocketAddr::from(([192, 0, 2, last], 4500));
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector,
            params: SaParams::new(cipher, integrity),
            local: addr(1),
            remote: addr(2),
            inbound: keys,
            outbound: keys,
            protocols: esp::Protocols::Esp,
        };
        plane.install(pair, &mut CounterRandom(1)).expect("install");
        let mut buf = vec![0u8; PACKET_LEN + MAX_HEADROOM + MAX_TAILROOM];
        group.bench_function(format!("{name} seal"), |b| {
            b.iter(|| match plane.seal(black_box(&packet), &mut buf) {
                Outbound::Send(send) => send.datagram.len(),
                other => panic!("{other:?}"),
            })
        });
    }
    group.finish();
}

/// AH (RFC 4302) with HMAC-SHA2-256-128 per SA: the whole-packet ICV, with the outer
/// header's mutable fields zeroed, is the work; no cipher.
fn ah_per_sa(c: &mut Criterion) {
    let mut group = c.benchmark_group("ah sa 1400 bytes");
    group.throughput(Throughput::Bytes(PACKET_LEN as u64));
    let packet = packet();
    let params = esp::AhParams::new(Integrity::HmacSha256_128);
    let ik = vec![0x22; Integrity::HmacSha256_128.key_len()];
    let keys = SaKeys { spi: Spi(0x1234_5678), cipher_key: &[], integrity_key: &ik };
    let mut sealer = esp::OutboundAh::new(&params, keys).expect("SA");
    let mut opener = esp::InboundAh::new(&params, keys).expect("SA");
    let mut buf = vec![0u8; PACKET_LEN + esp::MAX_AH_HEADROOM];
    let (a, b) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    group.bench_function("hmac-sha2-256-128 seal", |bench| {
        bench.iter(|| sealer.seal(a, b, 4, black_box(&packet), &mut buf).expect("seal").len())
    });
    group.bench_function("hmac-sha2-256-128 open_in_place", |bench| {
        bench.iter_batched(
            || sealer.seal(a, b, 4, &packet, &mut buf).expect("seal").to_vec(),
            |mut ah| opener.open_in_place(&mut ah).expect("open").payload.len(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = crypto_only, per_sa, data_plane, ah_per_sa
}
criterion_main!(benches);
