//! `display ipsec statistics`: the data plane's packets and bytes in and out and its drops by
//! reason, in the VRP8 layout of the reference, then the quick modes started, completed and
//! failed by reason, and keysteward's own counters (queue, acquires, full send buffers, what
//! the engine answered to unknown SPIs and cookies).

use ike::{ExchangeCounts, Statistics as IkeStatistics, REASONS};
use serde_json::{json, Map, Value};

use crate::count;

/// The keys of [`json()`] that are gauges, left alone by a baseline (the gateway adds
/// `templates`, each template's usage against its caps).
pub const GAUGES: &[&str] = &["templates"];

/// What the data plane counts next to [`esp::Statistics`]: clear packets from the TUN that
/// policy lets pass (the kernel's to forward) and datagrams dropped on a full send buffer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gateway {
    /// Clear packets from the TUN dropped.
    pub bypass_dropped: u64,
    /// Inner datagrams reassembled from fragments that rules with ports carry.
    pub reassembled: u64,
    /// Such fragments (or their datagrams) dropped: overlaps, bounds, timeouts.
    pub reassembly_dropped: u64,
    /// ESP/AH datagrams dropped, send buffer full.
    pub esp_send_buffer_full: u64,
    /// IKE datagrams dropped, send buffer full.
    pub ike_send_buffer_full: u64,
}

/// The reasons of `dropped` in [`json()`], the `reason` label of the drops metric.
pub const DROP_REASONS: [&str; 9] =
    ["replay", "integrity", "no_sa", "policy", "mtu", "queue", "malformed", "expired", "other"];

/// Packets dropped, by reason ([`DROP_REASONS`]); inbound and outbound together.
fn dropped(s: &esp::Statistics) -> [u64; 9] {
    let i = &s.inbound;
    [
        i.replayed,
        i.authentication,
        i.unknown_spi,
        i.policy_mismatch + s.outbound_policy_discards + s.inbound_clear_refused,
        s.too_big,
        s.queue_dropped,
        i.malformed + i.trailer + i.inner + i.dummy + s.outbound_malformed,
        i.expired,
        i.other + s.outbound_seal_errors,
    ]
}

/// The facts of the display (counters since the daemon started).
pub fn json(s: &esp::Statistics, g: &Gateway, ike: &IkeStatistics, exchanges: &ExchangeCounts) -> Value {
    let i = &s.inbound;
    let dropped: Map<String, Value> =
        DROP_REASONS.iter().zip(dropped(s)).map(|(r, n)| ((*r).to_owned(), Value::from(n))).collect();
    let quick = ike::Exchange::QuickMode;
    let failed: Map<String, Value> =
        REASONS.iter().map(|&r| (r.to_owned(), Value::from(exchanges.failed_with(quick, r)))).collect();
    let inbound_dropped = i.unknown_spi
        + i.malformed
        + i.replayed
        + i.authentication
        + i.trailer
        + i.dummy
        + i.inner
        + i.expired
        + i.policy_mismatch
        + i.other;
    let outbound_dropped = s.outbound_malformed
        + s.outbound_policy_discards
        + s.outbound_seal_errors
        + s.too_big
        + s.queue_dropped;
    json!({
        "sealed": s.sealed,
        "opened": s.opened,
        "sealed_bytes": s.sealed_bytes,
        "opened_bytes": s.opened_bytes,
        "inbound_dropped": inbound_dropped,
        "outbound_dropped": outbound_dropped,
        "dropped": dropped,
        "quick_mode": {
            "started": exchanges.started_of(quick),
            "established": exchanges.established_of(quick),
            "failed": failed,
        },
        "rekeys": exchanges.ipsec_rekeys,
        "queued": s.queued,
        "acquires": s.acquires,
        "fragmented": s.fragmented,
        "queue_dropped": s.queue_dropped,
        "bypass_dropped": g.bypass_dropped,
        "reassembled": g.reassembled,
        "reassembly_dropped": g.reassembly_dropped,
        "inbound_clear_refused": s.inbound_clear_refused,
        "inbound_unknown_spi": i.unknown_spi,
        "inbound_authentication": i.authentication,
        "inbound_replayed": i.replayed,
        "esp_send_buffer_full": g.esp_send_buffer_full,
        "ike_send_buffer_full": g.ike_send_buffer_full,
        "unknown_spi_reported": ike.unknown_spi_reported,
        "invalid_spi_sent": ike.invalid_spi_sent,
        "invalid_cookie_sent": ike.invalid_cookie_sent,
        "recoveries_started": ike.recoveries_started,
        "answers_rate_limited": ike.answers_rate_limited,
    })
}

/// The display's text, from its JSON (after any baseline).
pub fn text(j: &Value) -> String {
    let d = &j["dropped"];
    let q = &j["quick_mode"];
    let failed: Vec<String> = REASONS
        .iter()
        .filter(|r| count(&q["failed"], r) > 0)
        .map(|r| format!("{} {}", crate::ike::reason_text(r), count(&q["failed"], r)))
        .collect();
    let failed_total: u64 = REASONS.iter().map(|r| count(&q["failed"], r)).sum();
    let mut text = format!(
        "  IPv4 security packet statistics:\n\
         \x20   input/output security packets: {}/{}\n\
         \x20   input/output security bytes: {}/{}\n\
         \x20   input/output dropped security packets: {}/{}\n\
         \x20   dropped security packet detail:\n\
         \x20     memory process problem: {}\n\
         \x20     can't find SA: {}\n\
         \x20     queue is full: {}\n\
         \x20     authentication is failed: {}\n\
         \x20     wrong length: {}\n\
         \x20     replay packet: {}\n\
         \x20     too long packet: {}\n\
         \x20     invalid SA: {}\n\
         \x20     policy deny: {}\n\
         \x20 the normal packet statistics:\n\
         \x20   input/output dropped normal packets: {}/{}\n\
         \x20 quick mode: {} started, {} completed, {} failed{}; {} rekeys\n",
        count(j, "opened"),
        count(j, "sealed"),
        count(j, "opened_bytes"),
        count(j, "sealed_bytes"),
        count(j, "inbound_dropped"),
        count(j, "outbound_dropped"),
        count(d, "other"),
        count(d, "no_sa"),
        count(d, "queue"),
        count(d, "integrity"),
        count(d, "malformed"),
        count(d, "replay"),
        count(d, "mtu"),
        count(d, "expired"),
        count(d, "policy"),
        count(j, "inbound_clear_refused"),
        count(j, "bypass_dropped"),
        count(q, "started"),
        count(q, "established"),
        failed_total,
        if failed.is_empty() { String::new() } else { format!(" ({})", failed.join(", ")) },
        count(j, "rekeys"),
    );
    for (key, label) in [
        ("sealed", "packets sealed"),
        ("opened", "packets opened"),
        ("queued", "packets queued"),
        ("acquires", "acquires"),
        ("queue_dropped", "queued packets dropped"),
        ("bypass_dropped", "clear packets from the TUN dropped"),
        ("reassembled", "inner datagrams reassembled before sealing"),
        ("reassembly_dropped", "inner fragments dropped in reassembly"),
        ("inbound_unknown_spi", "inbound unknown SPI"),
        ("inbound_authentication", "inbound authentication failures"),
        ("inbound_replayed", "inbound replayed"),
        ("esp_send_buffer_full", "ESP/AH datagrams dropped, send buffer full"),
        ("ike_send_buffer_full", "IKE datagrams dropped, send buffer full"),
        ("unknown_spi_reported", "unknown SPIs from peers reported"),
        ("invalid_spi_sent", "INVALID-SPI sent"),
        ("invalid_cookie_sent", "INVALID-COOKIE sent"),
        ("recoveries_started", "IKE SAs started to recover"),
        ("answers_rate_limited", "answers held back by rate limits"),
    ] {
        text.push_str(&format!("  {label}: {}\n", count(j, key)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Baselines;

    fn statistics(sealed: u64, replayed: u64) -> esp::Statistics {
        let mut s = esp::Statistics { sealed, sealed_bytes: sealed * 100, too_big: 1, ..Default::default() };
        s.inbound.replayed = replayed;
        s
    }

    #[test]
    fn vrp_layout_with_drops_by_reason_and_a_reset() {
        let mut exchanges = ExchangeCounts::default();
        exchanges.started[2] = 3;
        exchanges.established[2] = 2;
        exchanges.failed[2][0] = 1;
        let g = Gateway::default();
        let first = json(&statistics(5, 2), &g, &IkeStatistics::default(), &exchanges);
        let text = text(&first);
        assert!(text.contains("    input/output security packets: 0/5\n"), "{text}");
        assert!(text.contains("    input/output security bytes: 0/500\n"), "{text}");
        assert!(text.contains("      replay packet: 2\n"), "{text}");
        assert!(text.contains("      too long packet: 1\n"), "{text}");
        assert!(
            text.contains("  quick mode: 3 started, 2 completed, 1 failed (no proposal chosen 1)"),
            "{text}"
        );
        assert!(text.contains("  packets sealed: 5\n"), "{text}");
        assert_eq!(first["dropped"]["replay"], 2);
        assert_eq!(first["dropped"]["mtu"], 1);
        let baselines = Baselines { ipsec: Some(first), ..Baselines::default() };
        let later = json(&statistics(9, 2), &g, &IkeStatistics::default(), &exchanges);
        let view = baselines.ipsec_view(&later);
        assert_eq!((view["sealed"].as_u64(), view["dropped"]["replay"].as_u64()), (Some(4), Some(0)));
        assert!(super::text(&view).contains("    input/output security packets: 0/4\n"));
    }
}
