//! A quick-mode responder installs its inbound SA when it sends QM2 and lets the outbound
//! seal only after QM3 (RFC 2409 §5.5), so that the initiator, which sends on the new pair as
//! soon as QM2 reaches it, never hits an SPI the responder does not have yet (issue 16: 1,102
//! unknown-SPI drops over rekeys under a ping flood with forced encapsulation).

use std::collections::HashSet;
use std::time::Duration;

use isakmp::{ExchangeType, Message};

use super::util::{failures, installed, Gateway, Pair, Side};
use crate::{Acquire, Event, IpsecSaEnd};

/// The inbound SPIs the data plane of `side` takes packets on (installed whole, or inbound
/// first), with those taken back removed.
fn receiving(side: &Side) -> HashSet<u32> {
    let mut spis = HashSet::new();
    for event in &side.events {
        match event {
            Event::IpsecSaInbound(p) | Event::IpsecSaInstalled(p) => {
                spis.insert(p.inbound.spi().0);
            }
            Event::IpsecSaExpired { inbound_spi, .. } => {
                spis.remove(inbound_spi);
            }
            _ => {}
        }
    }
    spis
}

/// Every pair `sender` may seal with: its installed pairs' outbound SPIs.
fn sending(side: &Side) -> Vec<u32> {
    installed(side).iter().map(|p| p.outbound.spi().0).collect()
}

#[test]
fn quick_mode_responder_receives_on_the_new_pair_before_the_initiator_sends_on_it() {
    let a = Gateway { lifetime: Duration::from_secs(30), ..Gateway::fw_a() };
    let b = Gateway { lifetime: Duration::from_secs(30), ..Gateway::fw_b() };
    let mut pair = Pair::new(&a, &b, 61);
    let end = pair.now + Duration::from_secs(120);
    let mut next_acquire = pair.now;
    while pair.now < end {
        if pair.now >= next_acquire {
            pair.acquire_on_a(a.selector());
            if !installed(&pair.b).is_empty() {
                pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
            }
            next_acquire += Duration::from_secs(1);
        }
        assert!(pair.step(), "timers keep running");
        // At every instant, whatever pair one side may seal with, the other has opened with
        // since before (taking old pairs down is the Deletes' business, not this test's).
        let (to_b, to_a) = (ever_received(&pair.b), ever_received(&pair.a));
        for spi in sending(&pair.a) {
            assert!(to_b.contains(&spi), "A seals on {spi:08x}, which B does not have yet");
        }
        for spi in sending(&pair.b) {
            assert!(to_a.contains(&spi), "B seals on {spi:08x}, which A does not have yet");
        }
    }
    assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
    // Rekeys happened, and on the responder each pair came inbound-first, then whole, with
    // the same SPIs and keys, in that order.
    let responded: Vec<_> = pair.b.events.iter().filter(|e| matches!(e, Event::IpsecSaInbound(_))).collect();
    assert!(responded.len() >= 4, "{} quick modes answered by B", responded.len());
    for (index, event) in pair.b.events.iter().enumerate() {
        let Event::IpsecSaInbound(first) = event else { continue };
        let whole = pair.b.events[index..]
            .iter()
            .find_map(|e| match e {
                Event::IpsecSaInstalled(p) if p.inbound.spi() == first.inbound.spi() => Some(p),
                _ => None,
            })
            .expect("QM3 followed");
        assert_eq!(whole.outbound.spi(), first.outbound.spi());
        assert_eq!(whole.inbound.encryption_key_with_salt(), first.inbound.encryption_key_with_salt());
        assert_eq!(whole.outbound.integrity_key(), first.outbound.integrity_key());
        assert!(!whole.initiator && !first.initiator);
    }
    // The initiator never gets an inbound-first event: it installs whole on QM2.
    let initiated_by_a = pair.a.events.iter().filter(|e| matches!(e, Event::IpsecSaInbound(_))).count();
    assert!(installed(&pair.a).iter().any(|p| p.initiator));
    assert!(initiated_by_a == 0 || installed(&pair.a).iter().any(|p| !p.initiator));
}

/// Every inbound SPI the data plane of `side` was given, taken back or not.
fn ever_received(side: &Side) -> HashSet<u32> {
    side.events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaInbound(p) | Event::IpsecSaInstalled(p) => Some(p.inbound.spi().0),
            _ => None,
        })
        .collect()
}

/// A quick mode whose QM3 never arrives: the pair the responder installed inbound-first with
/// QM2 is taken back, named by its SPIs, once the exchange gives up.
#[test]
fn quick_mode_responder_takes_back_its_inbound_sa_when_qm3_never_comes() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 62);
    // Every QM3 (the initiator's only quick-mode message after its first) is lost.
    let mut quick_modes_from_a = 0;
    pair.alter = Some(Box::new(move |to_b, t| {
        let quick =
            Message::parse(&t.payload).is_ok_and(|m| m.header.exchange_type == ExchangeType::QuickMode);
        if to_b && quick {
            quick_modes_from_a += 1;
            return quick_modes_from_a == 1;
        }
        true
    }));
    pair.acquire_on_a(a.selector());
    pair.drive_for(Duration::from_secs(300));
    let Some(Event::IpsecSaInbound(first)) =
        pair.b.events.iter().find(|e| matches!(e, Event::IpsecSaInbound(_)))
    else {
        panic!("B answered QM1 with QM2 and installed inbound first: {:?}", pair.b.events)
    };
    assert!(installed(&pair.b).is_empty(), "no QM3, so never whole");
    let taken_back: Vec<_> = pair
        .b
        .events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaExpired { inbound_spi, outbound_spi, reason, peer, .. } => {
                Some((*inbound_spi, *outbound_spi, *reason, peer.clone()))
            }
            _ => None,
        })
        .collect();
    let expected =
        (first.inbound.spi().0, first.outbound.spi().0, IpsecSaEnd::Unconfirmed, first.peer.clone());
    assert_eq!(taken_back, [expected]);
    assert!(receiving(&pair.b).is_empty());
}

/// The responder opens the initiator's packets from QM2 on, so the answers to them can reach
/// its data plane before QM3 does: with no outbound SA yet they raise an acquire for the same
/// flow. It must wait for QM3, not start a second quick mode (which made two pairs where one
/// was asked for: `netns_console` saw four SPIs).
#[test]
fn quick_mode_responder_waiting_for_qm3_starts_nothing_for_the_same_flow() {
    let (a, b) = (Gateway::fw_a(), Gateway::fw_b());
    let mut pair = Pair::new(&a, &b, 63);
    pair.acquire_on_a(a.selector());
    let inbound_first = |pair: &Pair| pair.b.events.iter().any(|e| matches!(e, Event::IpsecSaInbound(_)));
    assert!(pair.drive_until(100, inbound_first));
    assert!(installed(&pair.b).is_empty(), "QM3 has not arrived yet");
    // Traffic back to A arrives before QM3.
    pair.b.engine.handle_acquire(pair.now, Acquire { policy: 0, selector: b.selector() });
    pair.drive_for(Duration::from_secs(60));
    assert_eq!((installed(&pair.a).len(), installed(&pair.b).len()), (1, 1), "one pair, not two");
    assert!(failures(&pair.a).is_empty() && failures(&pair.b).is_empty());
}
