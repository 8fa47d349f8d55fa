//! Property tests: `parse(render(config)) == config` for generated configurations, and the
//! masked rendering never shows a key and never loads.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use vrp::algorithm::*;
use vrp::model::*;
use vrp::{parse, render, KeyDisplay, PreSharedKey};

/// A name; now and then one that starts with `//`, which `render` must quote (unquoted it
/// reads as an annotation and the saved file no longer loads).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[A-Za-z][A-Za-z0-9_.-]{0,14}", 1 => "//[A-Za-z0-9_.-]{0,12}"]
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9@._-]{1,30}"
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[!-~&&[^\"]]{1,40}".prop_filter("not the device's cipher envelope", |k| !k.starts_with("%^%#")),
        "[a-z]{1,8} [a-z0-9 ]{0,8}[a-z]",
    ]
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ike_proposal() -> impl Strategy<Value = IkeProposal> {
    // AES-GCM is refused in IKE proposals (ESP only): it has no IKE cipher row.
    let ike_ciphers: Vec<Phase1Cipher> = Phase1Cipher::all();
    (
        select(ike_ciphers),
        select(HashAlgorithm::all()),
        select(AuthenticationMethod::ALL),
        select(DhGroup::all()),
        60..=604_800u32,
    )
        .prop_map(|(encryption, authentication, method, dh, sa_duration)| IkeProposal {
            encryption,
            authentication,
            method,
            dh,
            sa_duration,
        })
}

fn peer_dpd() -> impl Strategy<Value = PeerDpd> {
    (
        option::of(select(DpdType::ALL)),
        option::of(10..=3600u32),
        option::of(2..=60u32),
        option::of(1..=10u32),
        option::of(select(DpdMessageOrder::ALL)),
    )
        .prop_map(|(dpd_type, idle_time, retransmit_interval, retry_limit, message_order)| PeerDpd {
            dpd_type,
            idle_time,
            retransmit_interval,
            retry_limit,
            message_order,
        })
}

fn ike_peer() -> impl Strategy<Value = IkePeer> {
    let local_types: Vec<IdType> = IdType::ALL.iter().copied().filter(|t| *t != IdType::Any).collect();
    (
        (option::of(1..=1024u32), any::<(bool, bool)>(), select(ExchangeMode::ALL), option::of(key())),
        (option::of(ipv4()), option::of(ipv4()), option::of(id()), option::of(select(IdType::ALL))),
        (select(local_types), option::of(id()), 0..3u8, peer_dpd()),
        (peer_certificate(), option::of(ipv4())),
        option::of(1..=1024u32),
    )
        .prop_map(
            |(
                (ike_proposal, (v1, v2), exchange_mode, psk),
                (ra, aa, rid, rtype),
                (ltype, lid, nat, dpd),
                (certificate, local_address),
                user_table,
            )| {
                IkePeer {
                    ike_proposal,
                    versions: IkeVersions { v1, v2 },
                    exchange_mode,
                    pre_shared_key: psk.map(PreSharedKey::new),
                    remote_address: ra,
                    authentication_address: aa,
                    local_address,
                    remote_id: rid,
                    remote_id_type: rtype,
                    local_id_type: ltype,
                    local_id: lid,
                    // 0: off, 1: on, 2: on and forcing UDP encapsulation.
                    nat_traversal: nat > 0,
                    nat_traversal_force: nat == 2,
                    dpd,
                    certificate,
                    user_table,
                }
            },
        )
}

fn user_table() -> impl Strategy<Value = UserTable> {
    let who = prop_oneof![
        ipv4().prop_map(UserId::Ip),
        id().prop_map(UserId::Fqdn),
        id().prop_map(UserId::UserFqdn),
    ];
    btree_map(1..=65_535u32, (option::of(who), option::of(key())), 0..3).prop_map(|users| UserTable {
        users: users
            .into_iter()
            .map(|(n, (id, key))| (n, TableUser { id, pre_shared_key: key.map(PreSharedKey::new) }))
            .collect(),
    })
}

fn file_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_./-]{1,40}"
}

fn peer_certificate() -> impl Strategy<Value = PeerCertificate> {
    (
        option::of(file_name()),
        option::of(file_name()),
        proptest::collection::btree_set(file_name(), 0..3),
        proptest::collection::btree_set(file_name(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(local, key, cas, crls, when_asked)| PeerCertificate {
            local_filename: local,
            local_key_filename: key,
            ca_filenames: cas.into_iter().collect(),
            crl_filenames: crls.into_iter().collect(),
            send: if when_asked { CertificateSend::WhenAsked } else { CertificateSend::Always },
        })
}

fn address_match() -> impl Strategy<Value = AddressMatch> {
    prop_oneof![
        Just(AddressMatch::Any),
        (ipv4(), prop_oneof![Just(Ipv4Addr::UNSPECIFIED), ipv4()])
            .prop_map(|(address, wildcard)| AddressMatch::Wildcard { address, wildcard }),
    ]
}

fn port_match() -> impl Strategy<Value = PortMatch> {
    prop_oneof![
        any::<u16>().prop_map(PortMatch::Eq),
        any::<u16>().prop_map(PortMatch::Lt),
        any::<u16>().prop_map(PortMatch::Gt),
        any::<(u16, u16)>().prop_map(|(a, b)| PortMatch::Range(a.min(b), a.max(b))),
    ]
}

fn acl_rule() -> impl Strategy<Value = AclRule> {
    let protocol = prop_oneof![
        Just(AclProtocol::Ip),
        Just(AclProtocol::Icmp),
        Just(AclProtocol::Tcp),
        Just(AclProtocol::Udp),
        Just(AclProtocol::Gre),
        any::<u8>().prop_map(AclProtocol::from_number),
    ];
    (
        any::<bool>(),
        protocol,
        address_match(),
        address_match(),
        option::of(port_match()),
        option::of(port_match()),
    )
        .prop_map(|(permit, protocol, source, destination, sp, dp)| AclRule {
            action: if permit { AclAction::Permit } else { AclAction::Deny },
            protocol,
            source,
            destination,
            source_port: sp.filter(|_| protocol.has_ports()),
            destination_port: dp.filter(|_| protocol.has_ports()),
        })
}

fn ipsec_proposal() -> impl Strategy<Value = IpsecProposal> {
    (
        select(Transform::ALL),
        select(EncapsulationMode::ALL),
        option::of(select(Integrity::all())),
        option::of(select(EspCipher::all())),
        select(Integrity::all()),
    )
        .prop_map(|(transform, encapsulation, esp_authentication, esp_encryption, ah_authentication)| {
            IpsecProposal { transform, encapsulation, esp_authentication, esp_encryption, ah_authentication }
        })
}

fn policy_settings(template: bool) -> impl Strategy<Value = PolicySettings> {
    let tunnel_local =
        option::of(prop_oneof![Just(TunnelLocal::AppliedInterface), ipv4().prop_map(TunnelLocal::Address)]);
    (
        (
            option::of(3000..=3999u16),
            vec(name(), 0..4),
            option::of(name()),
            option::of(select(PfsGroup::all())),
        ),
        (option::of(60..=604_800u32), option::of(0..=u64::from(u32::MAX))),
        (option::of(select(TriggerMode::ALL)), tunnel_local),
        vec(option::of(1..=10_000_000u32), 6),
    )
        .prop_map(
            move |(
                (acl, mut proposals, ike_peer, pfs),
                (sa_seconds, sa_kilobytes),
                (trigger, tunnel_local),
                caps,
            )| {
                let mut seen = Vec::new();
                proposals.retain(|p| {
                    let fresh = !seen.contains(p);
                    seen.push(p.clone());
                    fresh
                });
                PolicySettings {
                    acl,
                    proposals,
                    ike_peer,
                    pfs,
                    sa_seconds,
                    sa_kilobytes,
                    trigger_mode: if template { None } else { trigger },
                    tunnel_local,
                    // `sa max` exists in templates only.
                    sa_max: if template {
                        SaMax {
                            ike_sa: caps[0],
                            ipsec_sa: caps[1],
                            flow: caps[2],
                            per_peer_ike_sa: caps[3],
                            per_peer_ipsec_sa: caps[4],
                            per_peer_flow: caps[5],
                        }
                    } else {
                        SaMax::default()
                    },
                }
            },
        )
}

fn policy_entry() -> impl Strategy<Value = PolicyEntry> {
    prop_oneof![policy_settings(false).prop_map(PolicyEntry::Isakmp), name().prop_map(PolicyEntry::Template)]
}

fn interface() -> impl Strategy<Value = Interface> {
    (option::of((ipv4(), 0..=32u8)), option::of(name()), any::<bool>()).prop_map(|(address, policy, auto)| {
        Interface {
            address: address.map(|(address, prefix_len)| InterfaceAddress { address, prefix_len }),
            auto_negotiate: auto && policy.is_some(),
            ipsec_policy: policy,
        }
    })
}

fn routes() -> impl Strategy<Value = Vec<StaticRoute>> {
    let route = (ipv4(), 0..=32u8, option::of("(//)?[A-Za-z][A-Za-z0-9/]{0,10}"), ipv4(), 1..=255u8)
        .prop_map(|(dst, prefix_len, interface, next_hop, preference)| StaticRoute {
            destination: Ipv4Addr::from(u32::from(dst) & u32::from(prefix_to_mask(prefix_len))),
            prefix_len,
            interface,
            next_hop,
            preference,
        });
    vec(route, 0..4).prop_map(|mut routes| {
        let mut kept: Vec<StaticRoute> = Vec::new();
        for r in routes.drain(..) {
            let same = |k: &StaticRoute| {
                (k.destination, k.prefix_len, &k.interface, k.next_hop)
                    == (r.destination, r.prefix_len, &r.interface, r.next_hop)
            };
            if !kept.iter().any(same) {
                kept.push(r);
            }
        }
        kept
    })
}

fn config() -> impl Strategy<Value = Config> {
    let global_dpd = (option::of(select(DpdType::ALL)), 10..=3600u32, 2..=60u32, 1..=10u32).prop_map(
        |(dpd_type, idle_time, retransmit_interval, retry_limit)| GlobalDpd {
            dpd_type,
            idle_time,
            retransmit_interval,
            retry_limit,
        },
    );
    let global_duration = (60..=604_800u32, 0..=u64::from(u32::MAX))
        .prop_map(|(seconds, kilobytes)| GlobalDuration { seconds, kilobytes });
    (
        (option::of(name()), option::of(id()), global_dpd, btree_map(1..=1024u32, ike_proposal(), 0..3)),
        (
            btree_map(name(), ike_peer(), 0..3),
            btree_map(3000..=3999u16, btree_map(0..=1000u32, acl_rule(), 0..4), 0..3),
            btree_map(1..=1024u32, user_table(), 0..2),
        ),
        (
            btree_map(name(), ipsec_proposal(), 0..3),
            btree_map(name(), btree_map(1..=10_000u32, policy_settings(true), 1..3), 0..2),
            btree_map(name(), btree_map(1..=10_000u32, policy_entry(), 1..3), 0..3),
        ),
        (
            global_duration,
            any::<bool>(),
            btree_map("(//)?[A-Za-z]{1,12}[0-9]/[0-9]/[0-9]", interface(), 0..3),
            routes(),
            any::<bool>(),
            option::of((any::<[u8; 4]>(), 1..=65_535u16)),
        ),
    )
        .prop_map(
            |(
                (sysname, ike_local_name, ike_dpd, ike_proposals),
                (ike_peers, acls, ike_user_tables),
                (ipsec_proposals, policy_templates, ipsec_policies),
                (
                    ipsec_global_duration,
                    ipsec_fail_closed_keep,
                    interfaces,
                    routes,
                    ipsec_sha2_truncate_96,
                    metrics,
                ),
            )| Config {
                sysname,
                ike_local_name,
                ike_dpd,
                ike_fragmentation: IkeFragmentation::default(),
                ike_proposals,
                ike_peers,
                ike_user_tables,
                acls: acls.into_iter().map(|(n, rules)| (n, Acl { rules })).collect::<BTreeMap<_, _>>(),
                ipsec_proposals,
                policy_templates,
                ipsec_policies,
                ipsec_global_duration,
                ipsec_fail_closed_keep,
                ipsec_sha2_truncate_96,
                interfaces,
                routes,
                metrics: metrics.map(|(ip, port)| std::net::SocketAddrV4::new(ip.into(), port)),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_render_is_identity(config in config()) {
        let text = render(&config, KeyDisplay::Clear);
        let parsed = parse("generated.cfg", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed.config, &config, "{}", text);
        // Canonical: rendering again gives the same text.
        prop_assert_eq!(render(&parsed.config, KeyDisplay::Clear), text);
    }

    #[test]
    fn masked_rendering_hides_keys_and_does_not_load(config in config()) {
        let text = render(&config, KeyDisplay::Masked);
        let mut any_key = false;
        for peer in config.ike_peers.values() {
            if let Some(k) = &peer.pre_shared_key {
                any_key = true;
                let plain = format!(" pre-shared-key {}", k.expose());
                let quoted = format!(" pre-shared-key \"{}\"", k.expose());
                prop_assert!(!text.lines().any(|l| l == plain || l == quoted), "key shown in clear");
            }
        }
        for user in config.ike_user_tables.values().flat_map(|t| t.users.values()) {
            if let Some(k) = &user.pre_shared_key {
                any_key = true;
                let plain = format!("  pre-shared-key {}", k.expose());
                let quoted = format!("  pre-shared-key \"{}\"", k.expose());
                prop_assert!(!text.lines().any(|l| l == plain || l == quoted), "site key shown in clear");
            }
        }
        prop_assert_eq!(parse("masked.cfg", &text).is_ok(), !any_key);
    }
}

/// Names that start with `//` (quoted where typed) are quoted where `save` writes them: the
/// saved file loads as the same configuration.
#[test]
fn names_starting_with_slashes_survive_a_save() {
    let text = "\
ike proposal 10
ike peer \"//b\"
 ike-proposal 10
 remote-address 192.0.2.2
 pre-shared-key \"//key\"
acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
ipsec proposal \"//a\"
ipsec policy-template \"//t\" 1
 security acl 3001
 proposal \"//a\"
 ike-peer \"//b\"
ipsec policy \"//p\" 1 isakmp
 security acl 3001
 proposal \"//a\"
 ike-peer \"//b\"
ipsec policy \"//p\" 2 isakmp template \"//t\"
";
    let config = parse("t.cfg", text).unwrap().config;
    assert!(config.ike_peers.contains_key("//b") && config.ipsec_policies.contains_key("//p"));
    let saved = render(&config, KeyDisplay::Clear);
    assert!(saved.contains("ike peer \"//b\"\n") && saved.contains(" proposal \"//a\"\n"), "{saved}");
    let loaded = parse("saved.cfg", &saved).unwrap_or_else(|e| panic!("{e:?}\n{saved}"));
    assert_eq!(loaded.config, config, "{saved}");
}
