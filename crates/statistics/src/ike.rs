//! `display ike statistics`: what the IKE engine did since it started (or since `reset ike
//! statistics`): exchanges started, completed and failed by reason, rekeys, DPD, what it
//! refused or dropped; and at this moment the IKE SAs by state and the half-open SAs against
//! their memory budget.

use ike::{exchange_label, ExchangeCounts, HalfOpenUsage, SaCounts, Statistics, EXCHANGES, REASONS};
use serde_json::{json, Map, Value};

use crate::count;

/// The keys of [`json()`] that are gauges (a state at one moment): a baseline leaves them be.
pub const GAUGES: &[&str] =
    &["half_open", "half_open_bytes", "half_open_budget", "ike_sas", "ipsec_sa_pairs"];

/// How each failure reason label ([`ike::REASONS`]) reads in the display.
pub fn reason_text(reason: &str) -> &'static str {
    match reason {
        "no_proposal_chosen" => "no proposal chosen",
        "authentication_failed" => "authentication failed",
        "identity_mismatch" => "identity mismatch",
        "peer_notified" => "error notified by the peer",
        "timeout" => "timeout",
        "malformed" => "malformed or undecryptable message",
        _ => "refused by policy or limits",
    }
}

/// The facts of the display (counters since the engine started; gauges now).
pub fn json(s: &Statistics, exchanges: &ExchangeCounts, half_open: &HalfOpenUsage, sas: &SaCounts) -> Value {
    let mut by_exchange = Map::new();
    for exchange in EXCHANGES {
        let failed: Map<String, Value> = REASONS
            .iter()
            .map(|&reason| (reason.to_owned(), Value::from(exchanges.failed_with(exchange, reason))))
            .collect();
        by_exchange.insert(
            exchange_label(exchange).to_owned(),
            json!({
                "started": exchanges.started_of(exchange),
                "established": exchanges.established_of(exchange),
                "failed": failed,
            }),
        );
    }
    json!({
        "ike_sas": { "established": sas.ike_established, "negotiating": sas.ike_negotiating },
        "ipsec_sa_pairs": {
            "ready": sas.ipsec_ready, "rekeying": sas.ipsec_rekeying, "replaced": sas.ipsec_replaced,
        },
        "half_open": half_open.entries,
        "half_open_bytes": half_open.bytes,
        "half_open_budget": half_open.budget,
        "exchanges": by_exchange,
        "refused": exchanges.refused,
        "ike_rekeys": exchanges.ike_rekeys,
        "ipsec_rekeys": exchanges.ipsec_rekeys,
        "dpd_sent": exchanges.dpd_sent,
        "dpd_timeouts": exchanges.dpd_timeouts,
        "half_open_evicted": s.half_open_evicted,
        "oversized_sa_payloads": s.oversized_sa_payloads,
        "aggressive_mode_rate_limited": s.aggressive_mode_rate_limited,
        "unauthenticated_dropped": s.unauthenticated_dropped,
        "malformed": s.malformed,
        "unknown_sa": s.unknown_sa,
        "fragments_discarded": s.fragments_discarded,
        "replays_dropped": s.replays_dropped,
        "message_ids_forgotten": s.message_ids_forgotten,
    })
}

/// The display's text, from its JSON (after any baseline).
pub fn text(j: &Value) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(" IKE SA statistics:".into());
    line(format!(
        "  IKE SAs: {} established, {} negotiating",
        count(&j["ike_sas"], "established"),
        count(&j["ike_sas"], "negotiating")
    ));
    let pairs = &j["ipsec_sa_pairs"];
    line(format!(
        "  IPsec SA pairs: {} ready, {} rekeying, {} replaced",
        count(pairs, "ready"),
        count(pairs, "rekeying"),
        count(pairs, "replaced")
    ));
    line(format!(
        "  half-open IKE SAs: {} ({} of {} KiB budget)",
        count(j, "half_open"),
        count(j, "half_open_bytes").div_ceil(1024),
        count(j, "half_open_budget") / 1024
    ));
    line(" Exchange statistics:".into());
    line(format!("  {:<16}{:>10}{:>13}{:>9}", "exchange", "started", "established", "failed"));
    let mut failures = [0u64; REASONS.len()];
    for exchange in EXCHANGES {
        let e = &j["exchanges"][exchange_label(exchange)];
        let failed: Vec<u64> = REASONS.iter().map(|r| count(&e["failed"], r)).collect();
        for (total, n) in failures.iter_mut().zip(&failed) {
            *total += n;
        }
        let name = format!("{exchange}");
        line(format!(
            "  {name:<16}{:>10}{:>13}{:>9}",
            count(e, "started"),
            count(e, "established"),
            failed.iter().sum::<u64>()
        ));
    }
    line(" Failures by reason:".into());
    for (reason, n) in REASONS.iter().zip(failures) {
        line(format!("  {}: {n}", reason_text(reason)));
    }
    line(format!("  first messages refused: {}", count(j, "refused")));
    line(format!("  rekeys: IKE {}, IPsec {}", count(j, "ike_rekeys"), count(j, "ipsec_rekeys")));
    line(format!(
        "  DPD: R-U-THERE sent {}, peers declared dead {}",
        count(j, "dpd_sent"),
        count(j, "dpd_timeouts")
    ));
    for (key, text) in [
        ("half_open_evicted", "half-open IKE SAs evicted (oldest first)"),
        ("oversized_sa_payloads", "first messages with an oversized SA payload"),
        ("aggressive_mode_rate_limited", "aggressive-mode requests over the rate limit"),
        ("unauthenticated_dropped", "unauthenticated messages dropped"),
        ("malformed", "malformed datagrams"),
        ("unknown_sa", "datagrams for no IKE SA"),
        ("fragments_discarded", "fragments discarded"),
        ("replays_dropped", "replays dropped"),
        ("message_ids_forgotten", "message IDs forgotten"),
    ] {
        line(format!("  {text}: {}", count(j, key)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Baselines;

    fn counts(main_started: u64, timeouts: u64) -> ExchangeCounts {
        let mut c = ExchangeCounts::default();
        c.started[0] = main_started;
        c.established[0] = main_started - timeouts;
        c.failed[0][4] = timeouts;
        c
    }

    /// After `reset ike statistics` the display counts from zero; gauges stay what they are.
    #[test]
    fn reset_counts_from_zero_and_keeps_the_sa_gauges() {
        let sas = SaCounts { ike_established: 2, ..SaCounts::default() };
        let usage = HalfOpenUsage { entries: 1, bytes: 2048, budget: 1 << 20 };
        let stats = Statistics { malformed: 4, ..Statistics::default() };
        let before = json(&stats, &counts(3, 1), &usage, &sas);
        let baselines = Baselines { ike: Some(before.clone()), ..Baselines::default() };
        let stats = Statistics { malformed: 6, ..Statistics::default() };
        let after = json(&stats, &counts(5, 2), &usage, &sas);
        let view = baselines.ike_view(&after);
        assert_eq!(view["exchanges"]["main"]["started"], 2);
        assert_eq!(view["exchanges"]["main"]["failed"]["timeout"], 1);
        assert_eq!(view["malformed"], 2);
        assert_eq!(view["ike_sas"]["established"], 2, "a gauge");
        assert_eq!(view["half_open"], 1, "a gauge");
        let text = text(&view);
        assert!(text.contains("  main mode                2            1        1\n"), "{text}");
        assert!(text.contains("  timeout: 1\n"), "{text}");
        assert!(text.contains("  IKE SAs: 2 established, 0 negotiating\n"), "{text}");
        assert!(text.contains("  malformed datagrams: 2\n"), "{text}");
    }
}
