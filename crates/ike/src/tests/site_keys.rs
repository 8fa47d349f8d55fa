//! Per-site pre-shared keys on a hub (issue 15, USG's IKE user table): a template peer whose
//! `site_keys` give each branch its own key, found by source address in main mode and by the
//! AM1 identity in aggressive mode; a site missing from the table is refused before any work.

use std::net::Ipv4Addr;
use std::time::Duration;

use crypto::SecretBytes;

use super::util::{failures, installed, tunnel_up, Gateway, Pair, TestRng};
use crate::{
    AuthenticationFailure, Config, Engine, Event, ExchangeMode, FailureReason, IdentityConfig, PolicyFailure,
    SiteKey, Subnet, TrafficSelector,
};

fn site(id: IdentityConfig, key: &str) -> SiteKey {
    SiteKey { id, pre_shared_key: SecretBytes::from_slice(key.as_bytes()) }
}

fn branch(last: u8, psk: &'static str) -> Gateway {
    let inside = Ipv4Addr::new(10, 1, last, 0);
    let mut a = Gateway { local: Ipv4Addr::new(192, 0, 2, last), inside, psk, ..Gateway::fw_a() };
    a.rules = vec![TrafficSelector::between(Subnet::new(inside, 24), Subnet::new(a.far, 24))];
    a
}

fn hub_gateway() -> Gateway {
    Gateway { remote: Ipv4Addr::new(192, 0, 2, 99), psk: "the-template-key-is-unused", ..Gateway::fw_b() }
}

/// The hub: a template peer (no address) for every branch under 10.1.0.0/16, keys from `table`.
fn hub_config(hub: &Gateway, table: Vec<SiteKey>) -> Config {
    let mut config = hub.config();
    config.peers[0].remote_address = None;
    config.peers[0].site_keys = table;
    config.policies[0].selectors[0].remote = Subnet::new(Ipv4Addr::new(10, 1, 0, 0), 16).into();
    config
}

fn address_table() -> Vec<SiteKey> {
    vec![
        site(IdentityConfig::Address(Ipv4Addr::new(192, 0, 2, 11)), "key-of-site-eleven"),
        site(IdentityConfig::Address(Ipv4Addr::new(192, 0, 2, 12)), "key-of-site-twelve"),
    ]
}

/// `branch` meets the hub engine `hub` (taken and given back), for a minute from `now`.
fn meet(hub: &mut Engine, branch: &Gateway, now: std::time::Instant, seed: u64) -> Pair {
    let mut pair = Pair::new(branch, &hub_gateway(), seed);
    pair.now = now;
    std::mem::swap(&mut pair.b.engine, hub);
    pair.acquire_on_a(branch.rules[0]);
    pair.drive_for(Duration::from_secs(60));
    std::mem::swap(&mut pair.b.engine, hub);
    pair
}

/// Whether the hub sent anything to the branch at 192.0.2.`last`.
fn sent_to(pair: &Pair, last: u8) -> bool {
    pair.b.transmits.iter().any(|t| t.remote.ip() == std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
}

#[test]
fn main_mode_hub_finds_each_sites_key_by_address_and_refuses_a_site_not_in_the_table() {
    let mut hub = Engine::new(hub_config(&hub_gateway(), address_table()), Box::new(TestRng(200)));
    let now = super::util::epoch();
    let eleven = meet(&mut hub, &branch(11, "key-of-site-eleven"), now, 201);
    assert!(tunnel_up(&eleven), "{:?}", failures(&eleven.b));
    let twelve = meet(&mut hub, &branch(12, "key-of-site-twelve"), eleven.now, 202);
    assert!(tunnel_up(&twelve), "{:?}", failures(&twelve.b));
    assert_eq!(hub.ike_sas().count(), 2, "both sites, each with its own key");

    // Site 13 is in no row: refused at MM1, nothing sent, nothing kept, the log names it.
    let thirteen = meet(&mut hub, &branch(13, "key-of-site-eleven"), twelve.now, 203);
    assert!(!tunnel_up(&thirteen));
    assert!(!sent_to(&thirteen, 13), "a site not in the table gets no reply");
    assert_eq!(hub.ike_sas().count(), 2);
    let refusal = failures(&thirteen.b)[0];
    assert!(matches!(&refusal.reason, FailureReason::Policy(PolicyFailure::NotInUserTable { .. })));
    let text = refusal.to_string();
    assert!(
        text.contains("address 192.0.2.13 is not in the ike user-table of this peer"),
        "the log names the address: {text}"
    );
    assert!(!text.contains("key-of"), "no key in the log: {text}");
}

#[test]
fn main_mode_site_with_another_sites_key_fails_authentication() {
    let mut hub = Engine::new(hub_config(&hub_gateway(), address_table()), Box::new(TestRng(210)));
    // Site 12 presents site 11's key: the hub uses site 12's row, so the keys differ.
    let pair = meet(&mut hub, &branch(12, "key-of-site-eleven"), super::util::epoch(), 211);
    assert!(!tunnel_up(&pair));
    assert!(installed(&pair.b).is_empty());
    let on_b = failures(&pair.b);
    assert!(
        on_b.iter().any(|f| matches!(
            f.reason,
            FailureReason::Authentication(
                AuthenticationFailure::HashMismatch { .. } | AuthenticationFailure::KeysDiffer { .. }
            )
        )),
        "{:?}",
        on_b.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
}

fn aggressive_branch(last: u8, name: &str, psk: &'static str) -> Gateway {
    Gateway {
        mode: ExchangeMode::Aggressive,
        local_id: Some(IdentityConfig::Fqdn(name.into())),
        ..branch(last, psk)
    }
}

#[test]
fn aggressive_mode_hub_finds_the_key_by_the_identity_in_am1() {
    let hub = Gateway { accept_aggressive_from_peer: true, ..hub_gateway() };
    let table = vec![
        site(IdentityConfig::Fqdn("branch1.example.net".into()), "key-of-branch-one"),
        site(IdentityConfig::Fqdn("branch2.example.net".into()), "key-of-branch-two"),
    ];
    let mut engine = Engine::new(hub_config(&hub, table), Box::new(TestRng(220)));
    // Both branches behind one address (a carrier NAT): only the identity tells them apart.
    let one = meet(
        &mut engine,
        &aggressive_branch(21, "branch1.example.net", "key-of-branch-one"),
        super::util::epoch(),
        221,
    );
    assert!(tunnel_up(&one), "{:?}", failures(&one.b));
    let two =
        meet(&mut engine, &aggressive_branch(22, "Branch2.Example.NET", "key-of-branch-two"), one.now, 222);
    assert!(tunnel_up(&two), "{:?}", failures(&two.b));
    let established = two.b.events.iter().filter(|e| matches!(e, Event::IkeSaEstablished { .. })).count();
    assert_eq!(established, 1);

    // An identity not in the table: refused before any Diffie-Hellman, no AM2.
    let stranger =
        meet(&mut engine, &aggressive_branch(23, "stranger.example.net", "key-of-branch-one"), two.now, 223);
    assert!(!tunnel_up(&stranger));
    assert!(!sent_to(&stranger, 23), "no AM2 for a stranger");
    let text = failures(&stranger.b)[0].to_string();
    assert!(
        text.contains("identity fqdn stranger.example.net is not in the ike user-table"),
        "the log names the identity: {text}"
    );
}

#[test]
fn site_keys_are_never_printed() {
    let table = address_table();
    let text = format!("{:?}", table);
    assert!(!text.contains("key-of-site"), "{text}");
    assert!(text.contains("192.0.2.11"));
}
