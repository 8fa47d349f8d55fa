//! The displays of a running gateway, from real state: two IKE engines loaded with the
//! reference configurations negotiate in process (as in `reference_negotiation.rs`), and
//! every display and `show-config` is answered from their SA tables, the configuration and
//! data-plane counters, the way the daemon answers the control socket. The layouts themselves
//! are pinned by the golden tests next to the renderers; this checks the facts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crypto::OsRandom;
use ike::{Acquire, Engine, Subnet, TrafficSelector};
use keysteward::control::{Request, Response};
use keysteward::data_path::PairTraffic;
use keysteward::display::live::{respond, Live};
use keysteward::records::Records;

fn load(name: &str) -> vrp::Config {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    vrp::load_file(&path, None).expect("readable example").config.expect("valid example")
}

/// FW_A and FW_B after the first packet from 10.1.1.0/24 to 10.2.2.0/24: one IKE SA and one
/// IPsec SA pair each.
fn negotiated() -> (vrp::Config, Engine, vrp::Config, Engine, Instant) {
    negotiated_with(|_, _| {})
}

/// [`negotiated`] with the engine configurations of A and B adjusted first.
fn negotiated_with(
    adjust: impl FnOnce(&mut ike::Config, &mut ike::Config),
) -> (vrp::Config, Engine, vrp::Config, Engine, Instant) {
    let (vrp_a, vrp_b) = (load("fw_a.cfg"), load("fw_b.cfg"));
    let mut config_a = keysteward::engine_config::engine_config(&vrp_a).unwrap();
    let mut config_b = keysteward::engine_config::engine_config(&vrp_b).unwrap();
    adjust(&mut config_a, &mut config_b);
    let flow = TrafficSelector::between(
        Subnet::new(Ipv4Addr::new(10, 1, 1, 0), 24),
        Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
    );
    let mut a = Engine::new(config_a, Box::new(OsRandom));
    let mut b = Engine::new(config_b, Box::new(OsRandom));
    let now = Instant::now();
    a.handle_acquire(now, Acquire { policy: 0, selector: flow });
    for _ in 0..20 {
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        while a.poll_event().is_some() {}
        while b.poll_event().is_some() {}
    }
    assert_eq!(a.ipsec_sas(now).count(), 1);
    assert_eq!(b.ipsec_sas(now).count(), 1);
    (vrp_a, a, vrp_b, b, now)
}

/// What the data plane would report after `sent` pings of 84 bytes each way.
fn traffic(engine: &Engine, now: Instant, sent: u64) -> Vec<PairTraffic> {
    engine
        .ipsec_sas(now)
        .map(|p| PairTraffic {
            inbound_spi: p.inbound_spi,
            outbound_spi: p.outbound_spi,
            local: SocketAddr::new(p.local.ip(), 0),
            remote: SocketAddr::new(p.remote.ip(), 0),
            udp_encapsulated: false,
            inbound: esp::Counters { packets: sent, bytes: 84 * sent },
            outbound: esp::Counters { packets: sent + 1, bytes: 84 * (sent + 1) },
            sent_sequence: (sent + 1) as u32,
            received_sequence: sent as u32,
            replay_window: 1024,
        })
        .collect()
}

fn ask(
    engine: &Engine,
    config: &vrp::Config,
    traffic: &[PairTraffic],
    now: Instant,
    request: Request,
) -> (String, serde_json::Value) {
    let records = Records::default();
    let pair_traffic = |spi: u32| traffic.iter().find(|t| t.inbound_spi == spi).copied();
    let live = Live {
        engine,
        config,
        traffic,
        pair_traffic: &pair_traffic,
        inner_flows: &[],
        records: &records,
        now,
    };
    match respond(&live, &request) {
        Some(Response::Ok { text, json }) => (text, json),
        other => panic!("{request:?}: {other:?}"),
    }
}

fn error(engine: &Engine, config: &vrp::Config, request: Request) -> String {
    let records = Records::default();
    let live = Live {
        engine,
        config,
        traffic: &[],
        pair_traffic: &|_| None,
        inner_flows: &[],
        records: &records,
        now: Instant::now(),
    };
    match respond(&live, &request) {
        Some(Response::Error(e)) => e,
        other => panic!("{request:?}: {other:?}"),
    }
}

const PEER_B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

#[test]
fn ike_sa_verbose_shows_the_negotiated_phase_1() {
    let (vrp_a, a, vrp_b, b, now) = negotiated();
    let later = now + Duration::from_secs(13);
    let (text, json) =
        ask(&a, &vrp_a, &[], later, Request::DisplayIkeSaVerbose { remote: None, conn_id: None });
    let sa = &json["sas"][0];
    assert_eq!(json["sas"].as_array().unwrap().len(), 1, "{json}");
    assert_eq!(sa["peer"], "192.0.2.2:500");
    assert_eq!(sa["flags"], serde_json::json!(["RD", "ST"]));
    assert_eq!(sa["exchange_mode"], "Main");
    assert_eq!(sa["authentication_method"], "PRE-SHARED-KEY");
    // fw_a.cfg's `ike proposal 10` is all defaults: AES-256, SHA2-256, group 14, 86400 s.
    assert_eq!(sa["encryption_algorithm"], "AES-CBC-256");
    assert_eq!(sa["authentication_algorithm"], "SHA2-256");
    assert_eq!(sa["dh_group"], "MODP-2048");
    assert_eq!(sa["life_seconds"], 86400);
    assert_eq!(sa["remaining_seconds"], 86400 - 13);
    assert_eq!((sa["local_id_type"].as_str(), sa["local_id"].as_str()), (Some("IP"), Some("192.0.2.1")));
    assert_eq!((sa["remote_id_type"].as_str(), sa["remote_id"].as_str()), (Some("IP"), Some("192.0.2.2")));
    assert_eq!(sa["nat_traversal"], "Not detected");
    // Both cookies are set and the same on both sides.
    let (_, json_b) =
        ask(&b, &vrp_b, &[], later, Request::DisplayIkeSaVerbose { remote: None, conn_id: None });
    let sa_b = &json_b["sas"][0];
    for cookie in ["initiator_cookie", "responder_cookie"] {
        assert_ne!(sa[cookie], "0x0000000000000000", "{cookie}");
        assert_eq!(sa[cookie], sa_b[cookie], "{cookie}");
    }
    assert_eq!(sa_b["flags"], serde_json::json!(["RD"]));
    assert_eq!(sa_b["remote_id"], "192.0.2.1");
    assert!(text
        .contains(&format!("   Initiator cookie        : {}\n", sa["initiator_cookie"].as_str().unwrap())));
    assert!(text.contains("   Remote ID               : 192.0.2.2\n"), "{text}");
    // Filters.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let (_, none) =
        ask(&a, &vrp_a, &[], later, Request::DisplayIkeSaVerbose { remote: Some(other), conn_id: None });
    assert_eq!(none["sas"], serde_json::json!([]));
    let (_, one) =
        ask(&a, &vrp_a, &[], later, Request::DisplayIkeSaVerbose { remote: Some(PEER_B), conn_id: None });
    assert_eq!(one["sas"].as_array().unwrap().len(), 1);
    let conn = sa["conn_id"].as_u64().unwrap();
    let (_, none) =
        ask(&a, &vrp_a, &[], later, Request::DisplayIkeSaVerbose { remote: None, conn_id: Some(conn + 1) });
    assert_eq!(none["sas"], serde_json::json!([]));
}

/// A peer whose FQDN would forge a log line, clear the screen and ring the bell: `display ike
/// sa verbose` shows it escaped on its one line, in text and JSON alike.
#[test]
fn ike_sa_verbose_shows_a_forged_peer_identity_escaped() {
    let forged = "fw-a\n2026-12-07T08:00:00Z INFO keysteward: IKE SA up\x1b[2J\x07";
    let (_, _, vrp_b, b, now) = negotiated_with(|a, _| {
        a.peers[0].local_id = Some(ike::IdentityConfig::Fqdn(forged.into()));
    });
    let (text, json) =
        ask(&b, &vrp_b, &[], now, Request::DisplayIkeSaVerbose { remote: None, conn_id: None });
    let escaped = "fw-a\\x0a2026-12-07T08:00:00Z INFO keysteward: IKE SA up\\x1b[2J\\x07";
    assert!(text.contains("   Remote ID type          : FQDN\n"), "{text}");
    assert!(text.contains(&format!("   Remote ID               : {escaped}\n")), "{text}");
    assert!(!text.contains("\n2026-12-07") && !text.contains('\x1b') && !text.contains('\x07'), "{text}");
    assert_eq!(json["sas"][0]["remote_id"], escaped);
}

#[test]
fn ipsec_sa_shows_both_spis_the_acl_rule_and_the_counters() {
    let (vrp_a, a, _, b, now) = negotiated();
    let pair = a.ipsec_sas(now).next().unwrap();
    let counted = traffic(&a, now, 4);
    let later = now + Duration::from_secs(130);
    let (text, json) = ask(&a, &vrp_a, &counted, later, Request::DisplayIpsecSa { remote: None });
    let sa = &json["sas"][0];
    assert_eq!(sa["interface"], "GigabitEthernet0/0/2");
    assert_eq!(sa["policy"], "policy1");
    assert_eq!(sa["acl"], 3001);
    assert_eq!(sa["acl_rule"], 5);
    assert_eq!(sa["tunnel_remote"], "192.0.2.2:500");
    assert_eq!(sa["flow_source"], "10.1.1.0/255.255.255.0 0/0-65535");
    assert_eq!(sa["flow_destination"], "10.2.2.0/255.255.255.0 0/0-65535");
    assert_eq!(sa["outbound"][0]["spi"], pair.outbound_spi);
    assert_eq!(sa["inbound"][0]["spi"], pair.inbound_spi);
    assert_eq!(sa["outbound"][0]["proposal"], "ESP-ENCRYPT-DES ESP-AUTH-MD5");
    assert_eq!(sa["outbound"][0]["packets"], 5);
    assert_eq!(sa["inbound"][0]["bytes"], 336);
    assert_eq!(sa["inbound"][0]["sequence"], 4);
    assert_eq!(sa["outbound"][0]["remaining_seconds"], 3600 - 130);
    assert!(text.contains("    Holding time      : 0d 0h 2m 10s\n"), "{text}");
    assert!(text.contains(&format!("      SPI: {} (0x{:08x})\n", pair.outbound_spi, pair.outbound_spi)));
    assert!(text.contains("      SA decrypted packets (number/bytes): 4/336\n"), "{text}");
    // FW_B's inbound SA is FW_A's outbound one.
    let (_, json_b) = ask(&b, &load("fw_b.cfg"), &[], now, Request::DisplayIpsecSa { remote: None });
    assert_eq!(json_b["sas"][0]["inbound"][0]["spi"], pair.outbound_spi);
    assert_eq!(json_b["sas"][0]["acl"], 3000);
    // The remote filter.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    let (text, json) = ask(&a, &vrp_a, &counted, later, Request::DisplayIpsecSa { remote: Some(other) });
    assert_eq!((text.as_str(), &json["sas"]), ("ipsec sa information:\n", &serde_json::json!([])));
}

/// Issue 15: the inner flows the data plane published follow the IKE and ESP sessions, in the
/// article's form (§5.12: `icmp  VPN:public --> public 172.16.2.2:7264-->192.168.0.2:2048`).
#[test]
fn session_table_lists_the_protected_inner_flows_after_the_ike_and_esp_sessions() {
    let (vrp_a, a, _, _, now) = negotiated();
    let counted = traffic(&a, now, 4);
    let mut table = inner_flows::FlowTable::default();
    let published = inner_flows::Published::default();
    table.tick(now, &published);
    let echo = |kind: u8, from: [u8; 4], to: [u8; 4]| {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0];
        p.extend_from_slice(&from);
        p.extend_from_slice(&to);
        p.extend_from_slice(&[kind, 0, 0, 0, 0x1c, 0x60, 0, 1]);
        p
    };
    for _ in 0..3 {
        table.observe(&echo(8, [172, 16, 2, 2], [192, 168, 0, 2]));
        table.observe(&echo(0, [192, 168, 0, 2], [172, 16, 2, 2]));
    }
    table.tick(now + Duration::from_secs(1), &published);
    let flows = published.rows(now + Duration::from_secs(1));
    let records = Records::default();
    let live = Live {
        engine: &a,
        config: &vrp_a,
        traffic: &counted,
        pair_traffic: &|_| None,
        inner_flows: &flows,
        records: &records,
        now,
    };
    let Some(Response::Ok { text, json }) =
        respond(&live, &Request::DisplayFirewallSessionTable { verbose: true })
    else {
        panic!("no answer")
    };
    let expected = " Current Total Sessions : 3
  udp  VPN:public --> public 192.0.2.1:500-->192.0.2.2:500
  esp  VPN:public --> public 192.0.2.1:0-->192.0.2.2:0
  <--packets:4 bytes:336   -->packets:5 bytes:420
  icmp  VPN:public --> public 172.16.2.2:7264-->192.168.0.2:2048
  <--packets:3 bytes:84   -->packets:3 bytes:84
";
    assert_eq!(text, expected);
    assert_eq!(json["sessions"][2]["protocol"], "icmp");
    assert_eq!(json["sessions"][2]["reverse"]["packets"], 3);
}

#[test]
fn session_table_shows_ike_and_esp_sessions_with_counters() {
    let (vrp_a, a, vrp_b, b, now) = negotiated();
    let counted = traffic(&a, now, 4);
    let (text, json) = ask(&a, &vrp_a, &counted, now, Request::DisplayFirewallSessionTable { verbose: true });
    let expected = " Current Total Sessions : 2
  udp  VPN:public --> public 192.0.2.1:500-->192.0.2.2:500
  esp  VPN:public --> public 192.0.2.1:0-->192.0.2.2:0
  <--packets:4 bytes:336   -->packets:5 bytes:420
";
    assert_eq!(text, expected);
    assert_eq!(json["sessions"][1]["forward"]["packets"], 5);
    assert_eq!(json["sessions"][0]["forward"], serde_json::Value::Null);
    // The responder sees the same sessions, opened by FW_A.
    let counted_b = traffic(&b, now, 4);
    let (text, _) = ask(&b, &vrp_b, &counted_b, now, Request::DisplayFirewallSessionTable { verbose: false });
    assert_eq!(
        text,
        " Current Total Sessions : 2
  udp  VPN:public --> public 192.0.2.1:500-->192.0.2.2:500
  esp  VPN:public --> public 192.0.2.1:0-->192.0.2.2:0
"
    );
}

#[test]
fn configuration_displays_and_unknown_names() {
    let (vrp_a, a, _, _, now) = negotiated();
    let (text, json) = ask(&a, &vrp_a, &[], now, Request::DisplayIkePeer { name: None });
    assert!(
        text.contains("\nb                v1       main            10         IP        192.0.2.2\n"),
        "{text}"
    );
    assert_eq!(json["peers"][0]["name"], "b");
    let (text, _) = ask(&a, &vrp_a, &[], now, Request::DisplayIkePeer { name: Some("b".into()) });
    assert!(text.contains("Peer IP address         : 192.0.2.2\n"), "{text}");
    let (text, json) = ask(&a, &vrp_a, &[], now, Request::DisplayIkeProposal);
    assert!(text.starts_with("Number of IKE Proposals: 1\n"), "{text}");
    assert_eq!(json["proposals"][0]["number"], 10);
    let (text, _) =
        ask(&a, &vrp_a, &[], now, Request::DisplayIpsecProposal { name: Some("a".into()), brief: false });
    assert!(text.contains(" ESP protocol      : Authentication MD5-HMAC-96\n"), "{text}");
    let (text, _) = ask(&a, &vrp_a, &[], now, Request::DisplayIpsecProposal { name: None, brief: true });
    assert!(text.contains("\na                Tunnel               esp-new\n"), "{text}");
    let (text, json) =
        ask(&a, &vrp_a, &[], now, Request::DisplayIpsecPolicy { name: Some("policy1".into()) });
    assert!(text.contains("Using interface: GigabitEthernet0/0/2\n"), "{text}");
    assert_eq!(json["policies"][0]["entries"][0]["ike_peer"], "b");

    assert_eq!(error(&a, &vrp_a, Request::DisplayIkePeer { name: Some("c".into()) }), "no ike peer named c");
    assert_eq!(
        error(&a, &vrp_a, Request::DisplayIpsecProposal { name: Some("z".into()), brief: false }),
        "no ipsec proposal named z"
    );
    assert_eq!(
        error(&a, &vrp_a, Request::DisplayIpsecPolicy { name: Some("policy2".into()) }),
        "no ipsec policy named policy2"
    );
}

/// `show-config` is the canonical configuration with the key masked, in text and in JSON.
#[test]
fn show_config_masks_the_pre_shared_key() {
    let (vrp_a, a, _, _, now) = negotiated();
    let (text, json) = ask(&a, &vrp_a, &[], now, Request::ShowConfig);
    assert!(text.contains(" pre-shared-key cipher %^%#********%^%#\n"), "{text}");
    assert!(!text.contains("tiandihui2"), "{text}");
    assert!(!json.to_string().contains("tiandihui2"), "{json}");
    assert_eq!(json["config"], text);
    assert!(
        text.contains("ipsec policy policy1 1 isakmp\n security acl 3001\n proposal a\n ike-peer b\n"),
        "{text}"
    );
    assert!(text.ends_with("#\nreturn\n"));
    // The masked form cannot be loaded back as a working configuration.
    assert!(vrp::parse("shown.cfg", &text).is_err());
    // Everything else is the configuration in force: with the key put back it parses to it.
    let restored = text.replace("pre-shared-key cipher %^%#********%^%#", "pre-shared-key tiandihui2");
    assert_eq!(vrp::parse("restored.cfg", &restored).unwrap().config, vrp_a);
}

/// Issue 15, displays that scale: a page of `display ipsec sa` asks the data plane for the
/// counters of its own pairs, by SPI, and never reads the copy of every pair's counters (the
/// daemon does not take one for it); the page is the whole display, counters included.
#[test]
fn an_ipsec_sa_page_asks_the_counters_of_its_own_pairs_only() {
    let (vrp_a, a, _, _, now) = negotiated();
    let pair = a.ipsec_sas(now).next().unwrap();
    let counted = traffic(&a, now, 4);
    let display = Request::DisplayIpsecSa { remote: None };
    let (whole, _) = ask(&a, &vrp_a, &counted, now, display.clone());
    let asked = std::cell::RefCell::new(Vec::new());
    let pair_traffic = |spi: u32| {
        asked.borrow_mut().push(spi);
        counted.iter().find(|t| t.inbound_spi == spi).copied()
    };
    let records = Records::default();
    let live = Live {
        engine: &a,
        config: &vrp_a,
        traffic: &[],
        pair_traffic: &pair_traffic,
        inner_flows: &[],
        records: &records,
        now,
    };
    let Some(Response::Ok { text, .. }) =
        keysteward::display::paged::sa_page(&live, &records, &display, None, 1)
    else {
        panic!("no page")
    };
    assert_eq!(text, whole);
    assert!(text.contains("      SA decrypted packets (number/bytes): 4/336\n"), "{text}");
    assert_eq!(*asked.borrow(), [pair.inbound_spi]);
}
