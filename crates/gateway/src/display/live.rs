//! The displays of a running daemon: the views of `display::ike`, `display::ipsec` and
//! `display::session` built from the engine's SA tables, the data plane's counters and the
//! configuration in force, and `show-config`. The daemon hands a [`Live`] snapshot to
//! [`respond`] for every request it does not answer itself.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use serde_json::json;

use super::ike::{
    cookie_text, dh_group_name, hash_name, ike_peer_brief_text, ike_peer_text, ike_peers, ike_proposal_text,
    ike_proposals, ike_sa_verbose_text, phase1_cipher_name, IkeSaDetail, PeerCertificateDetail,
};
use super::ipsec::{
    ah_proposal_text, esp_proposal_text, flow_text, ipsec_policies, ipsec_policy_text,
    ipsec_proposal_brief_text, ipsec_proposal_text, ipsec_proposals, ipsec_sa_text, IpsecSaDetail,
    IpsecSaKey, SaDirection,
};
use super::session::{session_table_text, SessionRow, Traffic};
use crate::control::{Request, Response};
use crate::data_path::PairTraffic;

/// What the displays read from a running daemon, at one instant.
pub struct Live<'a> {
    /// The IKE engine.
    pub engine: &'a ike::Engine,
    /// The configuration in force.
    pub config: &'a vrp::Config,
    /// The data plane's counters of every installed pair (only read for `display firewall
    /// session table`).
    pub traffic: &'a [PairTraffic],
    /// The data plane's counters of one pair, by our SPI (`display ipsec sa`).
    pub pair_traffic: &'a dyn Fn(u32) -> Option<PairTraffic>,
    /// The protected inner flows (only read for `display firewall session table`).
    pub inner_flows: &'a [inner_flows::FlowRow],
    /// The daemon's records, which hold the conn-ids of `display ike sa`'s `v1:2` lines.
    pub records: &'a crate::records::Records,
    /// Now, for holding times and remaining lifetimes.
    pub now: Instant,
}

/// The flags of a phase-1 SA, as `display ike sa` prints them (vrp-cli.md §5.4): RD once
/// established (NEG before), ST when we initiated, RL once a newer SA replaced it.
pub fn ike_sa_flags(sa: &ike::IkeSaView) -> Vec<&'static str> {
    let mut flags = vec![if sa.state == "established" { "RD" } else { "NEG" }];
    if sa.initiator {
        flags.push("ST");
    }
    if sa.replaced {
        flags.push("RL");
    }
    flags
}

/// `display ike sa verbose`'s view of one phase-1 SA.
pub fn ike_sa_detail(sa: &ike::IkeSaView, engine: &ike::Config, now: Instant) -> IkeSaDetail {
    let peer = engine.peers.iter().find(|p| p.name == sa.peer);
    let (local_id_type, local_id) = match peer.and_then(|p| p.local_id.as_ref()) {
        Some(ike::IdentityConfig::Address(a)) => ("IP", a.to_string()),
        Some(ike::IdentityConfig::Fqdn(n)) => ("FQDN", n.clone()),
        Some(ike::IdentityConfig::UserFqdn(n)) => ("USER-FQDN", n.clone()),
        Some(ike::IdentityConfig::Dn(n)) => ("DN", n.clone()),
        None => ("IP", sa.local.ip().to_string()),
    };
    let (remote_id_type, remote_id) =
        sa.remote_identity.as_ref().map(|i| (i.kind.clone(), i.value.clone())).unwrap_or_default();
    IkeSaDetail {
        conn_id: sa.connection.0,
        version: "v1",
        peer: sa.remote.to_string(),
        vpn: "public",
        phase: 1,
        flags: ike_sa_flags(sa),
        initiator_cookie: cookie_text(sa.cookies.0 .0),
        responder_cookie: cookie_text(sa.cookies.1 .0),
        exchange_mode: match sa.exchange_mode {
            ike::ExchangeMode::Main => "Main",
            ike::ExchangeMode::Aggressive => "Aggressive",
        },
        authentication_method: sa
            .suite
            .map(|s| match s.auth_method {
                ike::AuthMethod::PreSharedKey => "PRE-SHARED-KEY",
                ike::AuthMethod::RsaSignature => "RSA-SIGNATURE",
                ike::AuthMethod::EcdsaP256 | ike::AuthMethod::EcdsaP384 | ike::AuthMethod::EcdsaP521 => {
                    "ECDSA-SIGNATURE"
                }
            })
            .unwrap_or_default(),
        authentication_algorithm: sa.suite.map(|s| hash_name(s.hash)).unwrap_or_default(),
        encryption_algorithm: sa.suite.map(|s| phase1_cipher_name(s.encryption)).unwrap_or_default(),
        dh_group: sa.suite.map(|s| dh_group_name(s.group)).unwrap_or_default(),
        life_seconds: sa.suite.map_or(0, |s| s.lifetime.as_secs()),
        remaining_seconds: sa.expires_at.map_or(0, |at| at.saturating_duration_since(now).as_secs()),
        local_id_type: local_id_type.to_owned(),
        local_id,
        remote_id_type,
        remote_id,
        nat_traversal: match (sa.nat_traversal.is_some(), sa.local_behind_nat, sa.remote_behind_nat) {
            (false, ..) => "Not negotiated",
            (true, false, false) => "Not detected",
            (true, true, false) => "Detected (local behind NAT)",
            (true, false, true) => "Detected (peer behind NAT)",
            (true, true, true) => "Detected (both behind NAT)",
        },
        dpd: if sa.dpd { "Enable" } else { "Disable" },
        peer_certificate: sa.peer_certificate.as_ref().map(PeerCertificateDetail::from),
        replays_dropped: sa.replays_dropped,
        message_ids_forgotten: sa.message_ids_forgotten,
    }
}

/// `display ipsec sa`'s view of one pair. `traffic` is the data plane's record of its ESP
/// SAs (absent when the data plane did not install the pair: its counters are then zero).
/// The data plane keeps no AH counters, so the AH blocks of an AH or AH+ESP pair show the
/// negotiated SPIs and lifetimes with zero packets and no anti-replay line.
pub fn ipsec_sa_detail(
    pair: &ike::IpsecSaView,
    traffic: Option<&PairTraffic>,
    conn_id: u64,
    config: &vrp::Config,
    engine: &ike::Config,
    now: Instant,
) -> IpsecSaDetail {
    let interface = config
        .interfaces
        .iter()
        .find(|(_, i)| i.ipsec_policy.as_deref() == Some(pair.policy.name.as_str()))
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    let acl = match config.ipsec_policies.get(&pair.policy.name).and_then(|e| e.get(&pair.policy.sequence)) {
        Some(vrp::model::PolicyEntry::Isakmp(s)) => s.acl,
        _ => None,
    };
    let acl_rule = acl_rule(pair, acl, config, engine);
    let (outbound, inbound) = sa_directions(pair, traffic);
    let selector = &pair.selector;
    IpsecSaDetail {
        interface,
        policy: pair.policy.name.clone(),
        sequence: pair.policy.sequence,
        acl,
        acl_rule,
        mode: "ISAKMP",
        connection_id: conn_id,
        encapsulation: match pair.suite.proposal.mode {
            ike::EncapsulationMode::Tunnel => "Tunnel",
            ike::EncapsulationMode::Transport => "Transport",
        },
        holding_seconds: now.saturating_duration_since(pair.installed_at).as_secs(),
        tunnel_local: pair.local.to_string(),
        tunnel_remote: pair.remote.to_string(),
        flow_source: flow_text(&selector.local, selector.protocol, selector.local_port),
        flow_destination: flow_text(&selector.remote, selector.protocol, selector.remote_port),
        outbound,
        inbound,
    }
}

/// The number of the ACL rule a pair's flow came from: the engine's selectors are the ACL's
/// permit rules in order (engine_config.rs).
fn acl_rule(
    pair: &ike::IpsecSaView,
    acl: Option<u16>,
    config: &vrp::Config,
    engine: &ike::Config,
) -> Option<u32> {
    engine
        .policies
        .iter()
        .find(|p| p.id == pair.policy)
        .and_then(|p| p.selectors.iter().position(|s| *s == pair.selector))
        .and_then(|index| {
            let rules = &config.acls.get(&acl?)?.rules;
            rules
                .iter()
                .filter(|(_, r)| r.action == vrp::model::AclAction::Permit)
                .nth(index)
                .map(|(number, _)| *number)
        })
}

/// The outbound and inbound SA blocks of `display ipsec sa` for one pair: AH first (with
/// zero counters: the data plane keeps none for AH), then ESP with the data plane's counters.
fn sa_directions(
    pair: &ike::IpsecSaView,
    traffic: Option<&PairTraffic>,
) -> (Vec<SaDirection>, Vec<SaDirection>) {
    let remaining_seconds = pair.remaining.as_secs();
    let udp_encapsulated = traffic.is_some_and(|t| t.udp_encapsulated);
    let mut outbound = Vec::new();
    let mut inbound = Vec::new();
    if let (Some(integrity), Some((ah_in, ah_out))) = (pair.suite.proposal.protocols.ah(), pair.ah_spis) {
        let ah = |spi: u32, anti_replay_window: Option<u32>| SaDirection {
            protocol: "AH",
            spi,
            proposal: ah_proposal_text(integrity),
            remaining_kilobytes: pair.remaining_kilobytes,
            remaining_seconds,
            sequence: 0,
            udp_encapsulated: false,
            packets: 0,
            bytes: 0,
            anti_replay_window,
        };
        outbound.push(ah(ah_out, None));
        inbound.push(ah(ah_in, None));
    }
    if let Some((encryption, integrity)) = pair.suite.proposal.protocols.esp() {
        let proposal = esp_proposal_text(encryption, integrity);
        let counters = |c: Option<esp::Counters>| c.unwrap_or_default();
        let out = counters(traffic.map(|t| t.outbound));
        let inc = counters(traffic.map(|t| t.inbound));
        outbound.push(SaDirection {
            protocol: "ESP",
            spi: pair.outbound_spi,
            proposal: proposal.clone(),
            remaining_kilobytes: pair.remaining_kilobytes,
            remaining_seconds,
            sequence: u64::from(traffic.map_or(0, |t| t.sent_sequence)),
            udp_encapsulated,
            packets: out.packets,
            bytes: out.bytes,
            anti_replay_window: None,
        });
        inbound.push(SaDirection {
            protocol: "ESP",
            spi: pair.inbound_spi,
            proposal,
            remaining_kilobytes: pair.remaining_kilobytes,
            remaining_seconds,
            sequence: u64::from(traffic.map_or(0, |t| t.received_sequence)),
            udp_encapsulated,
            packets: inc.packets,
            bytes: inc.bytes,
            anti_replay_window: Some(traffic.map_or(0, |t| t.replay_window)),
        });
    }
    (outbound, inbound)
}

/// The firewall sessions: one UDP session per IKE 5-tuple (rekeyed SAs with a peer share
/// it), opened by the phase-1 initiator; one ESP session per pair of gateway addresses,
/// opened by the side that initiated its first quick mode, with the data plane's counters
/// summed over its SAs. ESP in UDP shares the 4500 session of the IKE SA with that peer, so
/// its counters go there.
pub fn sessions(
    ike_sas: &[ike::IkeSaView],
    pairs: &[ike::IpsecSaView],
    traffic: &[PairTraffic],
) -> Vec<SessionRow> {
    // (protocol, source, destination) → (forward, reverse) counters, in first-seen order.
    // An index of `order`, so that a hub's 10,000s of sessions are found in constant time.
    let mut order: Vec<(&'static str, SocketAddr, SocketAddr)> = Vec::new();
    let mut index: HashMap<(&'static str, SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut counted: BTreeMap<usize, (Traffic, Traffic)> = BTreeMap::new();
    let mut find = |protocol: &'static str, a: SocketAddr, b: SocketAddr, initiator: bool| -> (usize, bool) {
        let forward = index.get(&(protocol, a, b));
        let reverse = index.get(&(protocol, b, a));
        match (forward, reverse) {
            (Some(&i), _) => (i, true),
            (None, Some(&i)) => (i, false),
            (None, None) => {
                let key = if initiator { (protocol, a, b) } else { (protocol, b, a) };
                index.insert(key, order.len());
                order.push(key);
                (order.len() - 1, initiator)
            }
        }
    };
    for sa in ike_sas {
        find("udp", sa.local, sa.remote, sa.initiator);
    }
    let initiators: HashMap<u32, bool> = pairs.iter().map(|p| (p.inbound_spi, p.initiator)).collect();
    for t in traffic {
        let initiator = initiators.get(&t.inbound_spi).copied().unwrap_or(true);
        let protocol = if t.udp_encapsulated { "udp" } else { "esp" };
        let (index, local_is_source) = find(protocol, t.local, t.remote, initiator);
        let entry = counted.entry(index).or_default();
        let (sent, received) = (&t.outbound, &t.inbound);
        let (forward, reverse) = if local_is_source { (sent, received) } else { (received, sent) };
        entry.0.packets += forward.packets;
        entry.0.bytes += forward.bytes;
        entry.1.packets += reverse.packets;
        entry.1.bytes += reverse.bytes;
    }
    order
        .into_iter()
        .enumerate()
        .map(|(index, (protocol, source, destination))| {
            let counters = counted.get(&index);
            SessionRow {
                protocol,
                vpn: "public",
                source: source.to_string(),
                destination: destination.to_string(),
                forward: counters.map(|c| c.0),
                reverse: counters.map(|c| c.1),
            }
        })
        .collect()
}

/// Every row of `display firewall session table`: the IKE and ESP sessions of the SAs,
/// then the protected inner flows. The paged and the unpaged display both read it here, so
/// that they list the same sessions.
pub fn session_rows(live: &Live<'_>) -> Vec<SessionRow> {
    let ike_sas: Vec<ike::IkeSaView> = live.engine.ike_sas().collect();
    let pairs: Vec<ike::IpsecSaView> = live.engine.ipsec_sas(live.now).collect();
    let mut rows = sessions(&ike_sas, &pairs, live.traffic);
    rows.extend(live.inner_flows.iter().map(inner_flow));
    rows
}

/// A protected inner flow as a session (USG: `icmp  VPN:public --> public
/// 172.16.2.2:7264-->192.168.0.2:2048`), with its packets and bytes both ways.
fn inner_flow(flow: &inner_flows::FlowRow) -> SessionRow {
    let traffic = |c: inner_flows::Counters| Some(Traffic { packets: c.packets, bytes: c.bytes });
    SessionRow {
        protocol: flow.protocol_name(),
        vpn: "public",
        source: flow.source.to_string(),
        destination: flow.destination.to_string(),
        forward: traffic(flow.forward),
        reverse: traffic(flow.reverse),
    }
}

fn ok<T: serde::Serialize>(text: String, key: &str, facts: T) -> Response {
    Response::Ok { text, json: json!({ key: facts }) }
}

/// Answers the displays of the running state and `show-config`; `None` for requests the
/// daemon answers itself.
pub fn respond(live: &Live<'_>, request: &Request) -> Option<Response> {
    let engine_config = live.engine.config();
    Some(match request {
        Request::DisplayIkeSaVerbose { remote, conn_id } => {
            let sas: Vec<IkeSaDetail> = live
                .engine
                .ike_sas()
                .filter(|sa| remote.is_none_or(|r| sa.remote.ip() == r))
                .filter(|sa| conn_id.is_none_or(|c| sa.connection.0 == c))
                .map(|sa| ike_sa_detail(&sa, engine_config, live.now))
                .collect();
            ok(ike_sa_verbose_text(&sas), "sas", sas)
        }
        Request::DisplayIkeProposal => {
            let proposals = ike_proposals(live.config);
            ok(ike_proposal_text(&proposals), "proposals", proposals)
        }
        Request::DisplayIkePeer { name } => {
            let peers = ike_peers(live.config);
            match name {
                None => ok(ike_peer_brief_text(&peers), "peers", peers),
                Some(name) => match peers.into_iter().find(|p| &p.name == name) {
                    Some(peer) => ok(ike_peer_text(&peer), "peers", [peer]),
                    None => Response::Error(format!("no ike peer named {name}")),
                },
            }
        }
        Request::DisplayIpsecSa { remote } => ipsec_sa(live, *remote),
        Request::DisplayIpsecProposal { name, brief } => {
            let mut proposals = ipsec_proposals(live.config);
            if let Some(name) = name {
                proposals.retain(|p| &p.name == name);
                if proposals.is_empty() {
                    return Some(Response::Error(format!("no ipsec proposal named {name}")));
                }
            }
            let text =
                if *brief { ipsec_proposal_brief_text(&proposals) } else { ipsec_proposal_text(&proposals) };
            ok(text, "proposals", proposals)
        }
        Request::DisplayIpsecPolicy { name } => {
            let mut policies = ipsec_policies(live.config);
            if let Some(name) = name {
                policies.retain(|p| &p.name == name);
                if policies.is_empty() {
                    return Some(Response::Error(format!("no ipsec policy named {name}")));
                }
            }
            ok(ipsec_policy_text(&policies), "policies", policies)
        }
        Request::DisplayFirewallSessionTable { verbose } => {
            let rows = session_rows(live);
            ok(session_table_text(&rows, *verbose), "sessions", rows)
        }
        Request::ShowConfig => {
            // Masked: the renderer prints every pre-shared key as `%^%#********%^%#`, and the
            // JSON carries the same text, so no form of this answer holds a key.
            let text = vrp::render(live.config, vrp::KeyDisplay::Masked);
            Response::Ok { json: json!({ "config": text }), text }
        }
        _ => return None,
    })
}

/// `display ipsec sa [remote IP]`: every pair in detail, sorted by interface, policy,
/// sequence and conn-id as the device lists them ([`ipsec_sa_key`]).
fn ipsec_sa(live: &Live<'_>, remote: Option<std::net::IpAddr>) -> Response {
    let mut pairs: Vec<(IpsecSaKey, ike::IpsecSaView)> =
        ipsec_sa_pairs(live, remote).map(|p| (ipsec_sa_key(live, &p), p)).collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let details: Vec<IpsecSaDetail> = pairs.into_iter().map(|(_, p)| ipsec_sa_view(live, p)).collect();
    ok(ipsec_sa_text(&details), "sas", details)
}

/// The pairs `display ipsec sa [remote IP]` shows, unsorted.
pub fn ipsec_sa_pairs<'a>(
    live: &'a Live<'_>,
    remote: Option<std::net::IpAddr>,
) -> impl Iterator<Item = ike::IpsecSaView> + 'a {
    live.engine.ipsec_sas(live.now).filter(move |p| remote.is_none_or(|r| p.remote.ip() == r))
}

/// The conn-id `display ipsec sa` gives a pair: its `v1:2` line's in `display ike sa`.
fn phase2_conn_id(live: &Live<'_>, pair: &ike::IpsecSaView) -> u64 {
    live.records.phase2_conn_id(pair.inbound_spi).unwrap_or(pair.connection.0)
}

/// A pair's place in `display ipsec sa`: interface, policy, sequence, conn-id, inbound SPI.
pub fn ipsec_sa_key(live: &Live<'_>, pair: &ike::IpsecSaView) -> IpsecSaKey {
    let interface = live
        .config
        .interfaces
        .iter()
        .find(|(_, i)| i.ipsec_policy.as_deref() == Some(pair.policy.name.as_str()))
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    let policy = (pair.policy.name.clone(), pair.policy.sequence);
    (interface, policy.0, policy.1, phase2_conn_id(live, pair), pair.inbound_spi)
}

/// `display ipsec sa`'s view of one pair, with the data plane's counters.
pub fn ipsec_sa_view(live: &Live<'_>, pair: ike::IpsecSaView) -> IpsecSaDetail {
    let traffic = (live.pair_traffic)(pair.inbound_spi);
    let conn_id = phase2_conn_id(live, &pair);
    ipsec_sa_detail(&pair, traffic.as_ref(), conn_id, live.config, live.engine.config(), live.now)
}
