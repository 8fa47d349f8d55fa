//! The displays answered from the daemon's own records and the data plane's counters rather
//! than from the configuration: `display ipsec statistics`, `display ike statistics`, `display
//! ike sa`, `display ike error-info` and `display ipsec sa brief`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

use serde_json::json;

use super::{ah_algorithm_column, algorithm_column, ike_sa_text, ipsec_sa_brief_text, IkeSaRow, IpsecSaRow};
use crate::control::Response;
use crate::data_path::SendDrops;
use crate::records::{Records, PHASE2_CONN_ID_BASE};

/// `display ipsec statistics`: the data plane's counters, the clear packets dropped from
/// the TUN, the datagrams dropped because a socket's send buffer was full, and what the
/// engine did about packets on unknown SPIs and IKE for unknown cookies (`ike`: recovery
/// after a restart).
pub fn ipsec_statistics(
    s: &esp::Statistics,
    bypass: u64,
    drops: &SendDrops,
    ike: &ike::Statistics,
) -> Response {
    let (esp_full, ike_full) = (drops.esp.load(Relaxed), drops.ike.load(Relaxed));
    let text = format!(
        "packets sealed: {}\npackets opened: {}\npackets queued: {}\nacquires: {}\n\
         queued packets dropped: {}\nclear packets from the TUN dropped: {}\n\
         inbound unknown SPI: {}\ninbound authentication failures: {}\ninbound replayed: {}\n\
         ESP/AH datagrams dropped, send buffer full: {}\nIKE datagrams dropped, send buffer full: {}\n\
         unknown SPIs from peers reported: {}\nINVALID-SPI sent: {}\nINVALID-COOKIE sent: {}\n\
         IKE SAs started to recover: {}\nanswers held back by rate limits: {}\n",
        s.sealed,
        s.opened,
        s.queued,
        s.acquires,
        s.queue_dropped,
        bypass,
        s.inbound.unknown_spi,
        s.inbound.authentication,
        s.inbound.replayed,
        esp_full,
        ike_full,
        ike.unknown_spi_reported,
        ike.invalid_spi_sent,
        ike.invalid_cookie_sent,
        ike.recoveries_started,
        ike.answers_rate_limited,
    );
    let json = json!({
        "sealed": s.sealed,
        "opened": s.opened,
        "queued": s.queued,
        "acquires": s.acquires,
        "queue_dropped": s.queue_dropped,
        "bypass_dropped": bypass,
        "inbound_unknown_spi": s.inbound.unknown_spi,
        "inbound_authentication": s.inbound.authentication,
        "inbound_replayed": s.inbound.replayed,
        "esp_send_buffer_full": esp_full,
        "ike_send_buffer_full": ike_full,
        "unknown_spi_reported": ike.unknown_spi_reported,
        "invalid_spi_sent": ike.invalid_spi_sent,
        "invalid_cookie_sent": ike.invalid_cookie_sent,
        "recoveries_started": ike.recoveries_started,
        "answers_rate_limited": ike.answers_rate_limited,
    });
    Response::Ok { text, json }
}

/// `display ike statistics`: the IKE engine's counters, and the half-open IKE SAs (responder
/// SAs whose peer has not authenticated yet) against their memory budget. Evictions that keep
/// rising mean a flood of first messages, spoofed most likely.
pub fn ike_statistics(s: &ike::Statistics, half_open: &ike::HalfOpenUsage) -> Response {
    let lines = [
        format!(
            "half-open IKE SAs: {} ({} of {} KiB budget)",
            half_open.entries,
            half_open.bytes.div_ceil(1024),
            half_open.budget / 1024
        ),
        format!("half-open IKE SAs evicted (oldest first): {}", s.half_open_evicted),
        format!("first messages with an oversized SA payload: {}", s.oversized_sa_payloads),
        format!("aggressive-mode requests over the rate limit: {}", s.aggressive_mode_rate_limited),
        format!("unauthenticated messages dropped: {}", s.unauthenticated_dropped),
        format!("malformed datagrams: {}", s.malformed),
        format!("datagrams for no IKE SA: {}", s.unknown_sa),
        format!("fragments discarded: {}", s.fragments_discarded),
        format!("replays dropped: {}", s.replays_dropped),
        format!("message IDs forgotten: {}", s.message_ids_forgotten),
    ];
    let json = json!({
        "half_open": half_open.entries,
        "half_open_bytes": half_open.bytes,
        "half_open_budget": half_open.budget,
        "half_open_evicted": s.half_open_evicted,
        "oversized_sa_payloads": s.oversized_sa_payloads,
        "aggressive_mode_rate_limited": s.aggressive_mode_rate_limited,
        "unauthenticated_dropped": s.unauthenticated_dropped,
        "malformed": s.malformed,
        "unknown_sa": s.unknown_sa,
        "fragments_discarded": s.fragments_discarded,
        "replays_dropped": s.replays_dropped,
        "message_ids_forgotten": s.message_ids_forgotten,
    });
    Response::Ok { text: lines.join("\n") + "\n", json }
}

/// `display ike sa`: the phase-2 lines of the recorded pairs, newest first, then the
/// engine's phase-1 SAs.
pub fn ike_sa(engine: &ike::Engine, records: &Records) -> Response {
    let mut rows: Vec<IkeSaRow> = records
        .installed
        .iter()
        .rev()
        .map(|p| IkeSaRow {
            conn_id: p.display_id + PHASE2_CONN_ID_BASE,
            peer: p.remote.ip().to_string(),
            flags: if p.initiator { vec!["RD", "ST"] } else { vec!["RD"] },
            phase: "v1:2",
            vpn: "public",
        })
        .collect();
    rows.extend(engine.ike_sas().map(|sa| IkeSaRow {
        conn_id: sa.connection.0,
        peer: sa.remote.ip().to_string(),
        flags: super::live::ike_sa_flags(&sa),
        phase: "v1:1",
        vpn: "public",
    }));
    Response::Ok { text: ike_sa_text(&rows), json: json!({ "sas": rows }) }
}

/// `display ike error-info`: the recorded failures, oldest first, each with its Unix time.
pub fn ike_error_info(records: &Records) -> Response {
    let mut text = String::new();
    let mut entries = Vec::new();
    for (at, reason) in &records.failures {
        let secs = at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        text.push_str(&format!("{secs} {reason}\n"));
        entries.push(json!({ "unix_time": secs, "reason": reason }));
    }
    Response::Ok { text, json: json!({ "errors": entries }) }
}

/// `display ipsec sa brief`: one line per SA and direction (AH before ESP in an AH+ESP pair).
pub fn ipsec_sa_brief(engine: &ike::Engine, now: Instant) -> Response {
    let pairs: Vec<ike::IpsecSaView> = engine.ipsec_sas(now).collect();
    let mut rows = Vec::new();
    for p in &pairs {
        let (local, remote) = (p.local.ip().to_string(), p.remote.ip().to_string());
        let mut both = |protocol: &'static str, algorithm: String, (inbound, outbound): (u32, u32)| {
            rows.push(IpsecSaRow {
                src: local.clone(),
                dst: remote.clone(),
                spi: outbound,
                protocol,
                algorithm: algorithm.clone(),
            });
            rows.push(IpsecSaRow {
                src: remote.clone(),
                dst: local.clone(),
                spi: inbound,
                protocol,
                algorithm,
            });
        };
        if let (Some(integrity), Some(spis)) = (p.suite.proposal.protocols.ah(), p.ah_spis) {
            both("AH", ah_algorithm_column(integrity), spis);
        }
        if let Some((encryption, integrity)) = p.suite.proposal.protocols.esp() {
            both("ESP", algorithm_column(encryption, integrity), (p.inbound_spi, p.outbound_spi));
        }
    }
    Response::Ok {
        text: ipsec_sa_brief_text(&rows, pairs.len()),
        json: json!({ "sas": rows, "tunnels": pairs.len() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_statistics_show_the_half_open_sas_against_their_budget() {
        let stats =
            ike::Statistics { half_open_evicted: 4_000, oversized_sa_payloads: 1, ..Default::default() };
        let usage = ike::HalfOpenUsage { entries: 1_000, bytes: 1_608_000, budget: 1_800_000 };
        let Response::Ok { text, json } = ike_statistics(&stats, &usage) else { panic!("an answer") };
        assert!(text.starts_with("half-open IKE SAs: 1000 (1571 of 1757 KiB budget)\n"), "{text}");
        assert!(text.contains("\nhalf-open IKE SAs evicted (oldest first): 4000\n"), "{text}");
        assert!(text.contains("\nfirst messages with an oversized SA payload: 1\n"), "{text}");
        assert_eq!(text.lines().count(), 10, "{text}");
        assert_eq!(
            (json["half_open"].as_u64(), json["half_open_evicted"].as_u64()),
            (Some(1_000), Some(4_000))
        );
    }
}
