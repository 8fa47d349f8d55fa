//! Fuzz the ESP receive path: `esp::DataPlane::open` and `open_in_place` on arbitrary bytes,
//! with three inbound SAs installed: strongSwan's AES-CBC-128/HMAC-SHA2-256-128 and
//! 3DES/HMAC-MD5-96 SAs from `vectors/` (so the seeds, real packets, get past the ICV and
//! exercise decryption, trailer and policy checks) and an AES-GCM-16-128 SA.
//!
//! It also opens the input as an IPv4 packet with AH (`open_ah`, `open_ah_in_place`) on an
//! AH+ESP and an AH-only SA.
//!
//! For any input:
//! * neither call panics;
//! * a delivered packet lies inside the input's length and came on a known SPI;
//! * both calls agree on deliver versus drop (fresh data planes, so replay state is equal).
//!
//! Seeds: fuzz/corpus/esp_open/ (the first ESP packet of each direction of two captures).
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};

use esp::{
    Action, DataPlane, DataPlaneConfig, EspCipher, Inbound, Integrity, PolicyIndex, Prefix, Rule, SaKeys, SaPair,
    SaParams, SecureRandom, Selector, Spd, Spi,
};
use libfuzzer_sys::fuzz_target;

/// Deterministic bytes for the CBC IV key (outbound only; never used when opening). Not
/// constant: a 3DES key of three equal parts would be refused as degenerate.
struct Fixed(u8);

impl SecureRandom for Fixed {
    fn fill(&mut self, dest: &mut [u8]) {
        for byte in dest {
            self.0 = self.0.wrapping_add(97);
            *byte = self.0;
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// (SPI, cipher, integrity, cipher key, integrity key) — the first two from
/// vectors/mm-psk-modp2048.vectors.txt and vectors/mm-psk-sha1-modp1024-3des.vectors.txt
/// ([esp-in] and [esp-out] of each).
const SAS: [(u32, EspCipher, Option<Integrity>, &str, &str); 5] = [
    (
        0xc604fa79,
        EspCipher::AesCbc128,
        Some(Integrity::HmacSha256_128),
        "94e2f317e427e042e3787770ef54e1e5",
        "58223785f979bb6012c2ee9495ecd756a40f4452dedc4291a6c67355e3206c52",
    ),
    (
        0xb0a38df4,
        EspCipher::AesCbc128,
        Some(Integrity::HmacSha256_128),
        "c09da9ec4139b104b1183fab26716929",
        "f320de8ea8b6ddfe7e2e91407ab146f768350968153cb6c196a96c261bf30cd0",
    ),
    (
        0xf30a1ada,
        EspCipher::TripleDes,
        Some(Integrity::HmacMd5_96),
        "f92a444484c6607c2ad888a1f488e76fe198a7ad48b886a3",
        "bd0b9ffa16f75db17b0e68723f38b510",
    ),
    (
        0x1eb0a150,
        EspCipher::TripleDes,
        Some(Integrity::HmacMd5_96),
        "4a96e54c944785d25156b222c7d58eec8d61064594879548",
        "fd2e4f8ccc5dbd05812ac215bf6f4c2c",
    ),
    (0x00001000, EspCipher::AesGcm128, None, "000102030405060708090a0b0c0d0e0f10111213", ""),
];

fn plane() -> DataPlane {
    let inside = Selector::between(
        Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8),
        Prefix::new(Ipv4Addr::new(10, 0, 0, 0), 8),
    );
    let spd = Spd::new(vec![Rule { selector: inside, action: Action::Protect(PolicyIndex(0)) }], Action::Bypass);
    let mut plane = DataPlane::new(spd, DataPlaneConfig::default());
    for (i, (spi, cipher, integrity, cipher_key, integrity_key)) in SAS.into_iter().enumerate() {
        let (cipher_key, integrity_key) = (hex(cipher_key), hex(integrity_key));
        let inbound = SaKeys { spi: Spi(spi), cipher_key: &cipher_key, integrity_key: &integrity_key };
        let outbound = SaKeys { spi: Spi(0x10_0000 + i as u32), ..inbound };
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector: inside,
            params: SaParams { udp_encapsulated: true, ..SaParams::new(cipher, integrity) },
            local: SocketAddr::from(([192, 0, 2, 1], 4500)),
            remote: SocketAddr::from(([192, 0, 2, 2], 4500)),
            inbound,
            outbound,
            protocols: esp::Protocols::Esp,
        };
        plane.install(pair, &mut Fixed(1)).expect("fixed SA");
    }
    // AH+ESP (AH SPI 0x3000) and AH alone (SPI 0x4000), raw IP: for `open_ah`.
    let (esp_key, ah_key) = (hex(SAS[4].3), [7u8; 64]);
    let raw = |last| SocketAddr::from(([192, 0, 2, last], 0));
    for (spi, protocols) in [
        (
            0x2000,
            esp::Protocols::AhEsp {
                integrity: Integrity::HmacSha256_128,
                inbound: SaKeys { spi: Spi(0x3000), cipher_key: &[], integrity_key: &ah_key[..32] },
                outbound: SaKeys { spi: Spi(0x3001), cipher_key: &[], integrity_key: &ah_key[..32] },
            },
        ),
        (0x4000, esp::Protocols::Ah(Integrity::HmacSha512_256)),
    ] {
        let (cipher, integrity_key): (&[u8], &[u8]) =
            if spi == 0x4000 { (&[], &ah_key[..]) } else { (&esp_key, &[]) };
        let inbound = SaKeys { spi: Spi(spi), cipher_key: cipher, integrity_key };
        let pair = SaPair {
            policy: PolicyIndex(0),
            selector: inside,
            params: SaParams::new(EspCipher::AesGcm128, None),
            local: raw(1),
            remote: raw(2),
            inbound,
            outbound: SaKeys { spi: Spi(spi + 1), ..inbound },
            protocols,
        };
        plane.install(pair, &mut Fixed(1)).expect("fixed AH SA");
    }
    plane
}

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; data.len()];
    let copied = match plane().open(data, &mut out) {
        Inbound::Deliver { packet, spi, .. } => {
            assert!(packet.len() <= data.len());
            assert!(SAS.iter().any(|sa| Spi(sa.0) == spi));
            true
        }
        Inbound::Drop(_) => false,
    };
    let mut buf = data.to_vec();
    let in_place = matches!(plane().open_in_place(&mut buf), Inbound::Deliver { .. });
    assert_eq!(copied, in_place);
    // The same bytes as an IPv4 packet carrying AH.
    let ah = match plane().open_ah(data, &mut out) {
        Inbound::Deliver { packet, .. } => {
            assert!(packet.len() <= data.len());
            true
        }
        Inbound::Drop(_) => false,
    };
    let mut buf = data.to_vec();
    assert_eq!(ah, matches!(plane().open_ah_in_place(&mut buf), Inbound::Deliver { .. }));
});
