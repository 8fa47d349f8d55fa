//! The key log switch ([`crate::Engine::set_key_log`]): phase-1 keys leave the engine only
//! when the driver asked for them, and then they are the keys both sides really use.

use crypto::{DhGroup, HashAlgorithm, Phase1Cipher};

use super::util::{ike, Gateway, Pair};
use super::{established, tunnel_up};
use crate::{Event, Phase1KeyLog};

fn key_logs(events: &[Event]) -> Vec<Option<&Phase1KeyLog>> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IkeSaEstablished { key_log, .. } => Some(key_log.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn key_log_off_by_default_events_carry_no_phase1_keys() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 7);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    assert!(established(&pair));
    for side in [&pair.a, &pair.b] {
        let logs = key_logs(&side.events);
        assert!(logs.len() == 1 && logs[0].is_none(), "{logs:?}");
    }
}

#[test]
fn key_log_on_both_sides_report_the_same_cookie_and_ka() {
    // 3DES with SHA-1: SKEYID_e (20 bytes) is shorter than the key, so Ka is its Appendix-B
    // expansion, which is what Wireshark wants (and what a wrong implementation would miss).
    let mut a = Gateway::fw_a();
    a.ike = vec![ike(Phase1Cipher::TripleDes, HashAlgorithm::Sha1, DhGroup::Modp1024)];
    let b = Gateway { ike: a.ike.clone(), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 7);
    pair.a.engine.set_key_log(true);
    pair.b.engine.set_key_log(true);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    let (on_a, on_b) = (key_logs(&pair.a.events), key_logs(&pair.b.events));
    let (Some(on_a), Some(on_b)) = (on_a[0], on_b[0]) else { panic!("no key log: {on_a:?} {on_b:?}") };
    // CKY-I is the first 8 bytes of MM1's header, the cookie Wireshark keys its table on.
    assert_eq!(&on_a.cookie_i[..], &pair.a.sent[0][..8]);
    assert_eq!((on_a.cookie_i, on_a.cookie_r), (on_b.cookie_i, on_b.cookie_r));
    assert_eq!(on_a.ka.expose(), on_b.ka.expose());
    assert_eq!(on_a.ka.len(), 24, "the 3DES key, not SKEYID_e");
    // A record logged by mistake shows no key bytes.
    let shown = format!("{:?}", pair.a.events);
    let ka_hex: String = on_a.ka.expose().iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.contains(&ka_hex) && shown.contains("redacted"), "{shown}");
}
