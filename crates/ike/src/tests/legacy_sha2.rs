//! `undo ipsec sha2 compatible enable` (issue 15): HMAC-SHA2-256 truncated to 96 bits is not
//! negotiated (the wire says HMAC-SHA2-256 either way), so a quick mode completes whatever the
//! two ends chose, and each end's installed pair carries its own truncation.

use crypto::{EspCipher, Integrity};

use super::util::{esp, installed, tunnel_up, Gateway, Pair};

fn legacy(gateway: &Gateway, on: bool) -> crate::Config {
    let mut config = gateway.config();
    config.sha2_256_truncation_96 = on;
    config
}

fn integrity(side: &super::util::Side) -> Option<Integrity> {
    installed(side)[0].suite.proposal.protocols.esp().and_then(|(_, i)| i)
}

#[test]
fn the_truncation_is_each_ends_own_and_never_on_the_wire() {
    let ipsec = vec![esp(EspCipher::AesCbc256, Some(Integrity::HmacSha256_128))];
    let a = Gateway { ipsec: ipsec.clone(), ..Gateway::fw_a() };
    let b = Gateway { ipsec, ..Gateway::fw_b() };
    for (on_a, on_b, seed) in [(true, true, 300), (true, false, 301), (false, false, 302)] {
        let mut pair = Pair::new(&a, &b, seed);
        pair.a.engine = crate::Engine::new(legacy(&a, on_a), Box::new(super::util::TestRng(seed + 10)));
        pair.b.engine = crate::Engine::new(legacy(&b, on_b), Box::new(super::util::TestRng(seed + 20)));
        pair.acquire_on_a(a.selector());
        assert!(pair.drive_until(100, tunnel_up), "{on_a} {on_b}");
        let expect = |on: bool| Some(if on { Integrity::HmacSha256_96 } else { Integrity::HmacSha256_128 });
        assert_eq!(integrity(&pair.a), expect(on_a));
        assert_eq!(integrity(&pair.b), expect(on_b));
        // Same keys either way: 32 bytes of KEYMAT for HMAC-SHA2-256.
        let (x, y) = (installed(&pair.a)[0], installed(&pair.b)[0]);
        assert_eq!(x.outbound.integrity_key(), y.inbound.integrity_key());
        assert_eq!(x.outbound.integrity_key().len(), 32);
    }
}
