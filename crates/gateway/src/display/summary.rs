//! The displays answered from the daemon's own records and the data plane's counters rather
//! than from the configuration: `display ipsec statistics`, `display ike statistics`, `display
//! ike sa`, `display ike error-info` and `display ipsec sa brief`.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Instant, SystemTime};

use serde_json::json;

use super::page::PairKey;
use super::{
    ah_algorithm_column, algorithm_column, ike_sa_key, ike_sa_text, ipsec_sa_brief_text, IkeSaRow, IpsecSaRow,
};
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

/// The facts of `display ipsec statistics` since the daemon started (crate statistics: the
/// data plane's packets, bytes and drops by reason, the quick modes, the clear packets
/// dropped from the TUN, the full send buffers, what the engine did about unknown SPIs and
/// cookies) and what the branches of each policy template hold against its caps (`sa max …`).
pub fn ipsec_statistics_json(
    s: &esp::Statistics,
    (bypass, fragments): (u64, reassembly::Counters),
    drops: &SendDrops,
    ike: (&ike::Statistics, &ike::ExchangeCounts),
    templates: &[TemplateUsage],
) -> serde_json::Value {
    let gateway = statistics::ipsec::Gateway {
        bypass_dropped: bypass,
        reassembled: fragments.reassembled,
        reassembly_dropped: fragments.dropped(),
        esp_send_buffer_full: drops.esp.load(Relaxed),
        ike_send_buffer_full: drops.ike.load(Relaxed),
    };
    let mut json = statistics::ipsec::json(s, &gateway, ike.0, ike.1);
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
    json["templates"] = templates.into();
    json
}

/// `display ipsec statistics` of `view` (the JSON of [`ipsec_statistics_json`] after any
/// `reset ipsec statistics`): the counters, then each template's usage against its caps.
pub fn ipsec_statistics(view: serde_json::Value) -> Response {
    let mut text = statistics::ipsec::text(&view);
    let count = |v: &serde_json::Value, key: &str| v[key].as_u64().unwrap_or(0);
    for t in view["templates"].as_array().into_iter().flatten() {
        let m = &t["max"];
        text.push_str(&format!(
            "template policy {}: {} peer(s); IKE SAs {} of {} (per peer {}), IPsec SA pairs {} of {} \
             (per peer {}), flows {} of {} (per peer {})\n",
            t["policy"].as_str().unwrap_or_default(),
            count(t, "peers"),
            count(t, "ike_sas"),
            count(m, "ike_sa"),
            count(m, "per_peer_ike_sa"),
            count(t, "ipsec_sas"),
            count(m, "ipsec_sa"),
            count(m, "per_peer_ipsec_sa"),
            count(t, "flows"),
            count(m, "flow"),
            count(m, "per_peer_flow")
        ));
    }
    Response::Ok { text, json: view }
}

/// The facts of `display ike statistics` since the engine started (crate statistics).
pub fn ike_statistics_json(engine: &ike::Engine, now: Instant) -> serde_json::Value {
    let (stats, exchanges) = (engine.statistics(), engine.exchange_counts());
    statistics::ike::json(&stats, &exchanges, &engine.half_open(), &engine.sa_counts(now))
}

/// `display ike statistics` of `view` (after any `reset ike statistics`).
pub fn ike_statistics(view: serde_json::Value) -> Response {
    Response::Ok { text: statistics::ike::text(&view), json: view }
}

/// `display ike sa`: the phase-2 lines of the recorded pairs, newest first, then the
/// engine's phase-1 SAs by conn-id.
pub fn ike_sa(engine: &ike::Engine, records: &Records) -> Response {
    let mut rows: Vec<IkeSaRow> = ike_sa_rows(engine, records, None).collect();
    rows.sort_by_key(ike_sa_key);
    Response::Ok { text: ike_sa_text(&rows), json: json!({ "sas": rows }) }
}

/// The lines of `display ike sa` in its order ([`ike_sa_key`]) after the cursor `after`,
/// walking only those it yields: the phase-2 lines newest first (the records are in conn-id
/// order: one binary search to the cursor), then the phase-1 SAs from the engine's index by
/// conn-id.
pub fn ike_sa_rows<'a>(
    engine: &'a ike::Engine,
    records: &'a Records,
    after: Option<(u8, u64)>,
) -> impl Iterator<Item = IkeSaRow> + 'a {
    // The phase-2 lines below display number `phase2_below`, then phase 1 after the cursor.
    let (phase2_below, phase1_after) = match after {
        None => (u64::MAX, None),
        Some((0, reversed)) => ((u64::MAX - reversed).saturating_sub(PHASE2_CONN_ID_BASE), None),
        Some((_, conn_id)) => (0, Some(ike::ConnectionId(conn_id))),
    };
    let phase2 = records.installed_before(phase2_below).map(|p| IkeSaRow {
        conn_id: p.display_id + PHASE2_CONN_ID_BASE,
        peer: p.remote.ip().to_string(),
        flags: if p.initiator { vec!["RD", "ST"] } else { vec!["RD"] },
        phase: "v1:2",
        vpn: "public",
    });
    phase2.chain(engine.ike_sas_after(phase1_after).map(|sa| IkeSaRow {
        conn_id: sa.connection.0,
        peer: sa.remote.ip().to_string(),
        flags: super::live::ike_sa_flags(&sa),
        phase: "v1:1",
        vpn: "public",
    }))
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

/// `display ipsec sa brief`: one line per SA and direction (AH before ESP in an AH+ESP pair),
/// the pairs by conn-id and inbound SPI.
pub fn ipsec_sa_brief(engine: &ike::Engine, now: Instant) -> Response {
    let mut pairs: Vec<(PairKey, Vec<IpsecSaRow>)> = ipsec_sa_brief_pairs(engine, now, None).collect();
    pairs.sort_by_key(|p| p.0);
    let tunnels = pairs.len();
    let rows: Vec<IpsecSaRow> = pairs.into_iter().flat_map(|p| p.1).collect();
    Response::Ok {
        text: ipsec_sa_brief_text(&rows, tunnels),
        json: json!({ "sas": rows, "tunnels": tunnels }),
    }
}

/// Each IPsec SA pair's key and its lines of `display ipsec sa brief`, in key order after
/// the cursor `after`, from the engine's index by conn-id.
pub fn ipsec_sa_brief_pairs(
    engine: &ike::Engine,
    now: Instant,
    after: Option<PairKey>,
) -> impl Iterator<Item = (PairKey, Vec<IpsecSaRow>)> + '_ {
    let after = after.map(|(conn_id, spi)| (ike::ConnectionId(conn_id), spi));
    engine.ipsec_sas_after(now, after).map(|p| ((p.connection.0, p.inbound_spi), ipsec_sa_brief_lines(&p)))
}

fn ipsec_sa_brief_lines(p: &ike::IpsecSaView) -> Vec<IpsecSaRow> {
    let mut rows = Vec::new();
    let (local, remote) = (p.local.ip().to_string(), p.remote.ip().to_string());
    let mut both = |protocol: &'static str, algorithm: String, (inbound, outbound): (u32, u32)| {
        rows.push(IpsecSaRow {
            src: local.clone(),
            dst: remote.clone(),
            spi: outbound,
            protocol,
            algorithm: algorithm.clone(),
        });
        rows.push(IpsecSaRow { src: remote.clone(), dst: local.clone(), spi: inbound, protocol, algorithm });
    };
    if let (Some(integrity), Some(spis)) = (p.suite.proposal.protocols.ah(), p.ah_spis) {
        both("AH", ah_algorithm_column(integrity), spis);
    }
    if let Some((encryption, integrity)) = p.suite.proposal.protocols.esp() {
        both("ESP", algorithm_column(encryption, integrity), (p.inbound_spi, p.outbound_spi));
    }
    rows
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
        let facts = statistics::ike::json(&stats, &Default::default(), &usage, &Default::default());
        let Response::Ok { text, json } = ike_statistics(facts) else { panic!("an answer") };
        assert!(text.contains("\n  half-open IKE SAs: 1000 (1571 of 1757 KiB budget)\n"), "{text}");
        assert!(text.contains("\n  half-open IKE SAs evicted (oldest first): 4000\n"), "{text}");
        assert!(text.contains("\n  first messages with an oversized SA payload: 1\n"), "{text}");
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
        let engine = (&ike::Statistics::default(), &ike::ExchangeCounts::default());
        let facts = ipsec_statistics_json(
            &esp::Statistics::default(),
            (0, Default::default()),
            &SendDrops::default(),
            engine,
            &[usage],
        );
        let Response::Ok { text, json } = ipsec_statistics(facts) else { panic!("not ok") };
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
        let facts = ipsec_statistics_json(
            &esp::Statistics::default(),
            (0, Default::default()),
            &SendDrops::default(),
            engine,
            &[],
        );
        let Response::Ok { text, .. } = ipsec_statistics(facts) else { panic!() };
        assert!(!text.contains("template"), "{text}");
    }
}
