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

/// What the branches of one policy template hold against its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUsage {
    /// The template's policy entry.
    pub policy: ike::PolicyId,
    /// Its caps.
    pub limits: ike::HubLimits,
    /// Established IKE SAs of its peer.
    pub ike_sas: usize,
    /// Installed IPsec SA pairs under it.
    pub ipsec_sas: usize,
    /// Flows under it (pairs not replaced by a rekey).
    pub flows: usize,
    /// Distinct branches (identities, else addresses) with an established IKE SA.
    pub peers: usize,
}

/// The usage of every policy template of `engine`, in policy order, from its views.
pub fn template_usage(engine: &ike::Engine, now: Instant) -> Vec<TemplateUsage> {
    let config = engine.config();
    let templates = config.policies.iter().filter_map(|p| Some((p, p.template.as_ref()?.limits)));
    templates
        .map(|(policy, limits)| {
            let name = config.peers.get(policy.peer).map(|p| p.name.as_str());
            let ike: Vec<ike::IkeSaView> = engine
                .ike_sas()
                .filter(|sa| Some(sa.peer.as_str()) == name && sa.expires_at.is_some())
                .collect();
            let mut peers: Vec<String> = ike
                .iter()
                .map(|sa| match &sa.remote_identity {
                    Some(id) => format!("{} {}", id.kind, id.value),
                    None => sa.remote.ip().to_string(),
                })
                .collect();
            peers.sort_unstable();
            peers.dedup();
            let pairs: Vec<ike::IpsecSaView> =
                engine.ipsec_sas(now).filter(|p| p.policy == policy.id).collect();
            let flows = pairs.iter().filter(|p| p.state != ike::IpsecSaState::Replaced).count();
            TemplateUsage {
                policy: policy.id.clone(),
                limits,
                ike_sas: ike.len(),
                ipsec_sas: pairs.len(),
                flows,
                peers: peers.len(),
            }
        })
        .collect()
}

/// `display ipsec statistics`: the data plane's counters, the clear packets dropped from
/// the TUN (`bypass`), the datagrams dropped because a socket's send buffer was full, what
/// the engine did about packets on unknown SPIs and IKE for unknown cookies (`ike`: recovery
/// after a restart), and what the branches of each policy template hold against its caps
/// (`sa max …`).
pub fn ipsec_statistics(
    s: &esp::Statistics,
    bypass: u64,
    drops: &SendDrops,
    ike: &ike::Statistics,
    templates: &[TemplateUsage],
) -> Response {
    let (esp_full, ike_full) = (drops.esp.load(Relaxed), drops.ike.load(Relaxed));
    let mut text = format!(
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
    for t in templates {
        let l = &t.limits;
        text.push_str(&format!(
            "template policy {}: {} peer(s); IKE SAs {} of {} (per peer {}), IPsec SA pairs {} of {} \
             (per peer {}), flows {} of {} (per peer {})\n",
            t.policy,
            t.peers,
            t.ike_sas,
            l.ike_sas,
            l.per_peer_ike_sas,
            t.ipsec_sas,
            l.ipsec_sas,
            l.per_peer_ipsec_sas,
            t.flows,
            l.flows,
            l.per_peer_flows
        ));
    }
    let templates: Vec<serde_json::Value> = templates
        .iter()
        .map(|t| {
            let l = &t.limits;
            json!({
                "policy": t.policy.to_string(), "peers": t.peers, "ike_sas": t.ike_sas,
                "ipsec_sas": t.ipsec_sas, "flows": t.flows,
                "max": { "ike_sa": l.ike_sas, "ipsec_sa": l.ipsec_sas, "flow": l.flows,
                    "per_peer_ike_sa": l.per_peer_ike_sas, "per_peer_ipsec_sa": l.per_peer_ipsec_sas,
                    "per_peer_flow": l.per_peer_flows },
            })
        })
        .collect();
    let json = json!({
        "templates": templates,
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

/// `display ip routing-table`: the configuration's static routes, `RD` when installed.
pub fn ip_routing_table(
    routes: &[(crate::os::static_routes::StaticRoute, crate::os::static_routes::State)],
) -> Response {
    use crate::os::static_routes::State;
    let rows: Vec<super::routing::RouteRow> = routes
        .iter()
        .map(|(route, state)| {
            let reason = match state {
                State::Installed(_) => String::new(),
                State::NotInstalled(why) => why.clone(),
            };
            super::routing::RouteRow {
                destination: route.destination.to_string(),
                proto: "Static",
                preference: route.preference,
                cost: 0,
                flags: if reason.is_empty() { "RD" } else { "R" },
                next_hop: route.next_hop.to_string(),
                interface: route.interface.clone(),
                installed: reason.is_empty(),
                reason,
            }
        })
        .collect();
    Response::Ok { text: super::routing::routing_table_text(&rows), json: json!({ "routes": rows }) }
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

    /// `display ipsec statistics` on a hub: each template's usage against its caps, in the
    /// configuration's words, and the same in the JSON.
    #[test]
    fn ipsec_statistics_show_the_template_caps() {
        let usage = TemplateUsage {
            policy: ike::PolicyId { name: "hub".into(), sequence: 10 },
            limits: ike::HubLimits { flows: 300, ..ike::HubLimits::default() },
            ike_sas: 3,
            ipsec_sas: 5,
            flows: 4,
            peers: 3,
        };
        let Response::Ok { text, json } = ipsec_statistics(
            &esp::Statistics::default(),
            0,
            &SendDrops::default(),
            &ike::Statistics::default(),
            &[usage],
        ) else {
            panic!("not ok")
        };
        assert!(
            text.ends_with(
                "template policy hub-10: 3 peer(s); IKE SAs 3 of 20000 (per peer 4), IPsec SA pairs 5 of \
                 100000 (per peer 64), flows 4 of 300 (per peer 32)\n"
            ),
            "{text}"
        );
        assert_eq!(json["templates"][0]["policy"], "hub-10");
        assert_eq!(json["templates"][0]["flows"], 4);
        assert_eq!(json["templates"][0]["max"]["flow"], 300);
        assert_eq!(json["templates"][0]["max"]["per_peer_ike_sa"], 4);
        let Response::Ok { text, .. } = ipsec_statistics(
            &esp::Statistics::default(),
            0,
            &SendDrops::default(),
            &ike::Statistics::default(),
            &[],
        ) else {
            panic!()
        };
        assert!(!text.contains("template"), "{text}");
    }
}
