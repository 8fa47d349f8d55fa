//! The engine's counts of what the exchanges did (`display ike statistics`, the metrics):
//! started, established, failed by reason, rekeys, DPD, and the SAs by state.

use std::time::Duration;

use crypto::{DhGroup, HashAlgorithm, Phase1Cipher};

use super::util::{ike, tunnel_up, Gateway, Pair};
use crate::{DpdConfig, Exchange, IkeProposal, SaCounts};

#[test]
fn tally_tunnel_up_counts_one_main_mode_and_one_quick_mode_on_each_side() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 71);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    for side in [&pair.a, &pair.b] {
        let counts = side.engine.exchange_counts();
        assert_eq!(counts.started_of(Exchange::MainMode), 1);
        assert_eq!(counts.established_of(Exchange::MainMode), 1);
        assert_eq!(counts.started_of(Exchange::QuickMode), 1);
        assert_eq!(counts.established_of(Exchange::QuickMode), 1);
        assert_eq!(counts.started_of(Exchange::AggressiveMode), 0);
        assert_eq!(counts.failed, [[0; 7]; 4]);
        let sas = side.engine.sa_counts(pair.now);
        assert_eq!(sas, SaCounts { ike_established: 1, ipsec_ready: 1, ..SaCounts::default() });
    }
}

#[test]
fn tally_proposal_mismatch_counts_the_reason_on_each_side() {
    let a = Gateway {
        ike: vec![ike(Phase1Cipher::Aes128, HashAlgorithm::Sha1, DhGroup::Modp1024)],
        ..Gateway::fw_a()
    };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 72);
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(120));
    let (on_a, on_b) = (pair.a.engine.exchange_counts(), pair.b.engine.exchange_counts());
    // A's main mode fails once, on the peer's NO-PROPOSAL-CHOSEN; B refuses each MM1 it
    // gets (A's retransmissions included), each a main mode started and failed.
    assert_eq!(on_a.started_of(Exchange::MainMode), 1);
    assert_eq!(on_a.failed_with(Exchange::MainMode, "peer_notified"), 1);
    let answered = on_b.started_of(Exchange::MainMode);
    assert!(answered >= 1);
    assert_eq!(on_b.failed_with(Exchange::MainMode, "no_proposal_chosen"), answered);
    assert_eq!(on_a.established_of(Exchange::MainMode), 0);
    assert_eq!(pair.a.engine.sa_counts(pair.now), SaCounts::default());
}

#[test]
fn tally_dpd_probes_and_a_dead_peer() {
    let dpd = DpdConfig {
        idle_time: Duration::from_secs(10),
        retransmit_interval: Duration::from_secs(5),
        retry_limit: 3,
    };
    let a = Gateway { dpd: Some(dpd), ..Gateway::fw_a() };
    let b = Gateway::fw_b();
    let mut pair = Pair::new(&a, &b, 73);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.b_alive = false;
    pair.advance(Duration::from_secs(31));
    let counts = pair.a.engine.exchange_counts();
    assert_eq!((counts.dpd_sent, counts.dpd_timeouts), (4, 1));
    assert_eq!(pair.a.engine.sa_counts(pair.now), SaCounts::default(), "nothing is left");
}

#[test]
fn tally_rekeys_of_ipsec_and_ike_sas() {
    let ike_60s = vec![IkeProposal { lifetime: Duration::from_secs(60), ..IkeProposal::recommended() }];
    let a = Gateway { lifetime: Duration::from_secs(30), ike: ike_60s.clone(), ..Gateway::fw_a() };
    let b = Gateway { lifetime: Duration::from_secs(30), ike: ike_60s, ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 74);
    pair.acquire_on_a(a.selector());
    assert!(pair.drive_until(100, tunnel_up));
    pair.advance(Duration::from_secs(58));
    let counts = pair.a.engine.exchange_counts();
    let both = counts.ipsec_rekeys + pair.b.engine.exchange_counts().ipsec_rekeys;
    assert!(both >= 1, "the 30 s pair was rekeyed: {counts:?}");
    assert!(counts.established_of(Exchange::QuickMode) >= 2, "{counts:?}");
    let ike_rekeys = counts.ike_rekeys + pair.b.engine.exchange_counts().ike_rekeys;
    assert!(ike_rekeys >= 1, "the 60 s IKE SA was renewed before it expired: {counts:?}");
    let sas = pair.a.engine.sa_counts(pair.now);
    assert!(sas.ike_established >= 1 && sas.ipsec_ready >= 1, "{sas:?}");
}
