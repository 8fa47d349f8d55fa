//! Criterion benchmarks of the crypto crate's hot paths: the DH work of one IKE exchange
//! (groups 14, 19, 31), RSA-2048 signing and verification, and ESP packet protection of a
//! 1400-byte payload (AES-GCM-16-128, and AES-CBC-128 with HMAC-SHA2-256-128; the HMAC
//! alone against aws-lc-rs's at 64 and 1400 bytes), and the
//! X.509 check of a peer certificate in a phase 1 with signatures (chain to the CA, validity,
//! key usage; with and without a CRL) for RSA-2048 and ECDSA P-256 certificates.
//!
//! Kept short (small sample sizes) because the build machine is shared:
//! `cargo bench -p keysteward-crypto`.
// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

#[path = "../tests/support/test_pki.rs"]
mod test_pki;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use crypto::{
    CipherKey, DhGroup, DhPrivate, EspCipher, HashAlgorithm, HashFunction, Integrity, IntegrityKey, OsRandom,
    SigningKey, VerifyingKey,
};

const PAYLOAD_LEN: usize = 1400;

fn diffie_hellman(c: &mut Criterion) {
    let mut group = c.benchmark_group("dh keygen+shared");
    group.sample_size(20);
    for dh_group in [DhGroup::Modp2048, DhGroup::Ecp256, DhGroup::Curve25519] {
        let peer = DhPrivate::generate(dh_group, &mut OsRandom).expect("peer key");
        group.bench_function(dh_group.to_string(), |b| {
            b.iter(|| {
                let ours = DhPrivate::generate(dh_group, &mut OsRandom).expect("our key");
                black_box(ours.shared_secret(black_box(peer.public_value())).expect("shared secret"))
            })
        });
    }
    group.finish();
}

fn rsa(c: &mut Criterion) {
    let signer = SigningKey::from_pkcs8_der(include_bytes!("../tests/data/rsa2048.pk8.der")).expect("key");
    let verifier =
        VerifyingKey::from_spki_der(include_bytes!("../tests/data/rsa2048.spki.der")).expect("key");
    let hash = HashAlgorithm::Sha256.digest(&[b"HASH_I"]);
    let signature = signer.sign(&hash).expect("sign");
    let mut group = c.benchmark_group("rsa-2048");
    group.sample_size(20);
    group.bench_function("sign", |b| b.iter(|| black_box(signer.sign(black_box(&hash)).expect("sign"))));
    group.bench_function("verify", |b| {
        b.iter(|| black_box(verifier.verify(black_box(&hash), black_box(&signature)).is_ok()))
    });
    group.finish();
}

fn x509(c: &mut Criterion) {
    use test_pki::{Ca, KeyKind, LeafSpec, NOW};
    let mut group = c.benchmark_group("x509 peer certificate");
    group.sample_size(20);
    for (name, kind) in [("rsa-2048", KeyKind::Rsa2048), ("ecdsa-p256", KeyKind::P256)] {
        let ca = Ca::new("bench", kind);
        let leaf = ca.issue(&LeafSpec::new("fw-b", kind));
        let plain = crypto::TrustStore::new(vec![ca.der.clone()], &[]).expect("trust");
        let revoked: Vec<u64> = (1000..1100).collect();
        let with_crl = crypto::TrustStore::new(vec![ca.der.clone()], &[ca.crl(&revoked)]).expect("trust");
        for (label, trust) in [("verify", &plain), ("verify with 100-entry CRL", &with_crl)] {
            group.bench_function(format!("{name} {label}"), |b| {
                b.iter(|| black_box(trust.verify(black_box(&leaf.der), &[], NOW as u64).expect("verifies")))
            });
        }
    }
    group.finish();
}

fn esp(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp 1400 bytes");
    group.throughput(Throughput::Bytes(PAYLOAD_LEN as u64));

    let gcm = CipherKey::new(EspCipher::AesGcm128, &[0x11; 20]).expect("key");
    let aad = [0x22u8; 8];
    let mut data = vec![0u8; PAYLOAD_LEN];
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
    // 1400 bytes plus the 2-byte ESP trailer, padded to the 16-byte block (RFC 4303 §2.4).
    let mut padded = vec![0u8; (PAYLOAD_LEN + 2).div_ceil(16) * 16];
    group.bench_function("aes-cbc-128 + hmac-sha2-256-128", |b| {
        b.iter(|| {
            cbc.encrypt_in_place(&iv, &mut padded).expect("encrypt");
            black_box(integrity.compute(&[&aad, &iv, &padded]).expect("icv"))
        })
    });
    group.finish();
}

/// The ESP HMAC per packet: ours (the key's two precomputed hash states, copied per packet)
/// against aws-lc-rs's `hmac::Context` (an `HMAC_CTX` copied per packet), which it replaced
/// (issue 16: memory per SA), at a full and a small packet.
fn esp_hmac(c: &mut Criterion) {
    let mut group = c.benchmark_group("esp hmac-sha2-256");
    let ours = IntegrityKey::new(Integrity::HmacSha256_128, &[0x44; 32]).expect("key");
    let theirs = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &[0x44; 32]);
    for len in [64, PAYLOAD_LEN] {
        let data = vec![0x5au8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("{len} bytes, precomputed states"), |b| {
            b.iter(|| black_box(ours.compute(&[&data[..8], &data[8..]]).expect("icv")))
        });
        group.bench_function(format!("{len} bytes, aws-lc-rs hmac::Context"), |b| {
            b.iter(|| {
                let mut context = aws_lc_rs::hmac::Context::with_key(&theirs);
                context.update(&data[..8]);
                context.update(&data[8..]);
                black_box(context.sign())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, diffie_hellman, rsa, esp, esp_hmac, x509);
criterion_main!(benches);
