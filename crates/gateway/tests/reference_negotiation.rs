//! The reference scenario's configurations (`examples/fw_a.cfg`, `examples/fw_b.cfg`), loaded
//! as an operator writes them, drive two IKE engines in process: traffic from PC_A's network
//! to PC_B's triggers main mode and quick mode, and both gateways end up with the article's
//! SA (ESP, DES, HMAC-MD5-96, tunnel) under matching keys.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Instant;

use crypto::{EspCipher, Integrity, OsRandom};
use ike::{Acquire, Engine, Event, IpsecProtocols, Subnet, TrafficSelector};

fn load(name: &str) -> ike::Config {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let checked = vrp::load_file(&path, None).expect("readable example");
    let config = checked.config.unwrap_or_else(|| panic!("{name}: {:?}", checked.diagnostics));
    keysteward::engine_config::engine_config(&config).expect("runnable by the engine")
}

#[test]
fn reference_configurations_negotiate_the_article_sa() {
    let (config_a, config_b) = (load("fw_a.cfg"), load("fw_b.cfg"));
    assert_eq!(config_a.peers[0].local_address, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(config_a.peers[0].remote_address, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
    let flow = TrafficSelector::between(
        Subnet::new(Ipv4Addr::new(10, 1, 1, 0), 24),
        Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24),
    );
    assert_eq!(config_a.policies[0].selectors, vec![flow]);

    let mut a = Engine::new(config_a, Box::new(OsRandom));
    let mut b = Engine::new(config_b, Box::new(OsRandom));
    let now = Instant::now();
    a.handle_acquire(now, Acquire { policy: 0, selector: flow });
    let (mut events_a, mut events_b) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        while let Some(t) = a.poll_transmit() {
            b.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        while let Some(t) = b.poll_transmit() {
            a.handle_datagram(now, t.remote, t.local, &t.payload);
        }
        events_a.extend(std::iter::from_fn(|| a.poll_event()));
        events_b.extend(std::iter::from_fn(|| b.poll_event()));
    }
    let (on_a, on_b) = (installed(&events_a), installed(&events_b));
    assert_eq!(on_a.len(), 1, "FW_A events: {events_a:?}");
    assert_eq!(on_b.len(), 1, "FW_B events: {events_b:?}");
    let (sa_a, sa_b) = (on_a[0], on_b[0]);
    assert_eq!(
        sa_a.suite.proposal.protocols,
        IpsecProtocols::Esp { encryption: EspCipher::Des, integrity: Some(Integrity::HmacMd5_96) }
    );
    assert_eq!(sa_a.suite.proposal.mode, ike::EncapsulationMode::Tunnel);
    assert_eq!(sa_a.policy.name, "policy1");
    assert_eq!(sa_a.remote, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 500));
    assert_eq!(sa_b.selector.local, flow.remote, "FW_B protects 10.2.2.0/24 towards 10.1.1.0/24");
    assert_eq!(sa_a.outbound.spi(), sa_b.inbound.spi());
    assert_eq!(sa_a.outbound.encryption_key(), sa_b.inbound.encryption_key());
    assert_eq!(sa_a.inbound.integrity_key(), sa_b.outbound.integrity_key());
    let ike_a: Vec<_> = a.ike_sas().collect();
    assert_eq!(ike_a.len(), 1);
    assert_eq!(ike_a[0].peer, "b");
    assert_eq!(ike_a[0].state, "established");
}

fn installed(events: &[Event]) -> Vec<&ike::IpsecSaPair> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::IpsecSaInstalled(p) => Some(&**p),
            _ => None,
        })
        .collect()
}
