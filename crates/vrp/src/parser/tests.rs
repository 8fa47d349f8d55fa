//! Parser tests: every command of every view with its `undo` form and aliases, the view
//! rules, and every syntax error class.

use std::net::Ipv4Addr;

use super::*;
use crate::algorithm::*;
use crate::model::*;

fn ok(text: &str) -> Parsed {
    parse("t.cfg", text).unwrap_or_else(|e| panic!("unexpected errors:\n{e}"))
}

fn config(text: &str) -> Config {
    ok(text).config
}

/// The only error of `text`.
fn error(text: &str) -> Diagnostic {
    let all = parse("t.cfg", text).expect_err("expected an error").0;
    let errors: Vec<_> = all.into_iter().filter(Diagnostic::is_error).collect();
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.into_iter().next().unwrap()
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

#[test]
fn sysname_and_undo() {
    assert_eq!(config("sysname FW_A").sysname.as_deref(), Some("FW_A"));
    assert_eq!(config("sysname FW_A\nundo sysname").sysname, None);
}

#[test]
fn ike_proposal_defaults() {
    let c = config("ike proposal 10");
    assert_eq!(c.ike_proposals[&10], IkeProposal::default());
    let d = IkeProposal::default();
    assert_eq!(d.encryption, Phase1Cipher::Aes256);
    assert_eq!(d.authentication, HashAlgorithm::Sha256);
    assert_eq!(d.method, AuthenticationMethod::PreShare);
    assert_eq!(d.dh, DhGroup::Modp2048);
    assert_eq!(d.sa_duration, 86_400);
}

#[test]
fn ike_proposal_commands() {
    let c = config(
        "ike proposal 5\n encryption-algorithm 3des\n authentication-algorithm sha1\n \
         authentication-method rsa-signature\n dh group2\n sa duration 3600",
    );
    let p = c.ike_proposals[&5];
    assert_eq!(p.encryption, Phase1Cipher::TripleDes);
    assert_eq!(p.authentication, HashAlgorithm::Sha1);
    assert_eq!(p.method, AuthenticationMethod::RsaSignature);
    assert_eq!(p.dh, DhGroup::Modp1024);
    assert_eq!(p.sa_duration, 3600);
    let c = config(
        "ike proposal 5\n encryption-algorithm des\n authentication-algorithm md5\n dh group1\n sa duration 60\n \
         undo encryption-algorithm\n undo authentication-algorithm\n undo authentication-method\n undo dh\n \
         undo sa duration",
    );
    assert_eq!(c.ike_proposals[&5], IkeProposal::default());
    assert!(config("ike proposal 5\nundo ike proposal 5").ike_proposals.is_empty());
}

#[test]
fn ike_proposal_aliases() {
    for (text, want) in [
        ("aes-cbc-128", Phase1Cipher::Aes128),
        ("aes-cbc 192", Phase1Cipher::Aes192),
        ("aes 256", Phase1Cipher::Aes256),
        ("des-cbc", Phase1Cipher::Des),
        ("3des-cbc", Phase1Cipher::TripleDes),
        ("AES-192", Phase1Cipher::Aes192),
    ] {
        let c = config(&format!("ike proposal 1\n encryption-algorithm {text}"));
        assert_eq!(c.ike_proposals[&1].encryption, want, "{text}");
    }
    for (text, want) in
        [("sha", HashAlgorithm::Sha1), ("sha256", HashAlgorithm::Sha256), ("sha2_512", HashAlgorithm::Sha512)]
    {
        let c = config(&format!("ike proposal 1\n authentication-algorithm {text}"));
        assert_eq!(c.ike_proposals[&1].authentication, want, "{text}");
    }
    let c = config("ike proposal 1\n authentication-method rsa-sig\n dh Group14");
    assert_eq!(c.ike_proposals[&1].method, AuthenticationMethod::RsaSignature);
}

#[test]
fn ike_proposal_ikev2_only_commands_are_ignored_with_a_note() {
    let parsed = ok("ike proposal 1\n integrity-algorithm hmac-sha2-256\n prf hmac-sha2-256");
    assert_eq!(parsed.config.ike_proposals[&1], IkeProposal::default());
    assert_eq!(parsed.warnings.len(), 2);
    assert!(parsed.warnings.iter().all(|w| w.kind == DiagnosticKind::Ignored && w.line > 1));
}

#[test]
fn ike_peer_defaults() {
    let p = &config("ike peer b").ike_peers["b"];
    assert_eq!(p, &IkePeer::default());
    assert_eq!(p.versions, IkeVersions { v1: true, v2: true });
    assert_eq!(p.exchange_mode, ExchangeMode::Main);
    assert!(p.nat_traversal);
    assert_eq!(p.local_id_type, IdType::Ip);
}

/// `nat traversal force-encapsulation` turns NAT-T on and forces UDP encapsulation;
/// `undo nat traversal force-encapsulation` stops forcing and keeps NAT-T; `undo nat
/// traversal` turns both off.
#[test]
fn nat_traversal_force_encapsulation() {
    let forced =
        &config("ike peer b\n undo nat traversal\n nat traversal force-encapsulation").ike_peers["b"];
    assert!(forced.nat_traversal && forced.nat_traversal_force);
    let unforced =
        &config("ike peer b\n nat traversal force-encapsulation\n undo nat traversal force-encapsulation")
            .ike_peers["b"];
    assert!(unforced.nat_traversal && !unforced.nat_traversal_force);
    let off = &config("ike peer b\n nat traversal force-encapsulation\n undo nat traversal").ike_peers["b"];
    assert!(!off.nat_traversal && !off.nat_traversal_force);
}

#[test]
fn ike_peer_commands() {
    let c = config(
        "ike peer b\n ike-proposal 10\n undo version 2\n exchange-mode aggressive\n pre-shared-key tiandihui2\n \
         remote-address 192.0.2.2\n remote-address authentication-address 10.0.0.2\n remote-id rtb\n \
         remote-id-type fqdn\n local-id-type fqdn\n local-id rta\n undo nat traversal\n dpd type periodic\n \
         dpd idle-time 30\n dpd retransmit-interval 15\n dpd retry-limit 3\n dpd msg seq-hash-notify",
    );
    let p = &c.ike_peers["b"];
    assert_eq!(p.ike_proposal, Some(10));
    assert_eq!(p.versions, IkeVersions { v1: true, v2: false });
    assert_eq!(p.exchange_mode, ExchangeMode::Aggressive);
    assert_eq!(p.pre_shared_key.as_ref().map(PreSharedKeyExt::text), Some("tiandihui2"));
    assert_eq!(p.remote_address, Some(ip(192, 0, 2, 2)));
    assert_eq!(p.authentication_address, Some(ip(10, 0, 0, 2)));
    assert_eq!(p.remote_id.as_deref(), Some("rtb"));
    assert_eq!(p.remote_id_type, Some(IdType::Fqdn));
    assert_eq!(p.local_id_type, IdType::Fqdn);
    assert_eq!(p.local_id.as_deref(), Some("rta"));
    assert!(!p.nat_traversal);
    assert_eq!(
        p.dpd,
        PeerDpd {
            dpd_type: Some(DpdType::Periodic),
            idle_time: Some(30),
            retransmit_interval: Some(15),
            retry_limit: Some(3),
            message_order: Some(DpdMessageOrder::SeqHashNotify),
        }
    );
    let undone = config(
        "ike peer b\n ike-proposal 10\n exchange-mode aggressive\n pre-shared-key k\n remote-address 1.1.1.1\n \
         remote-address authentication-address 1.1.1.2\n remote-id x\n remote-id-type ip\n local-id-type fqdn\n \
         local-id y\n dpd type on-demand\n dpd idle-time 20\n dpd retransmit-interval 5\n dpd retry-limit 4\n \
         dpd msg seq-notify-hash\n undo ike-proposal\n undo exchange-mode\n undo pre-shared-key\n \
         undo remote-address\n undo remote-address authentication-address\n undo remote-id\n undo remote-id-type\n \
         undo local-id-type\n undo local-id\n undo dpd type\n undo dpd idle-time\n undo dpd retransmit-interval\n \
         undo dpd retry-limit\n undo dpd msg\n undo nat traversal\n nat traversal",
    );
    assert_eq!(undone.ike_peers["b"], IkePeer::default());
}

/// Test-only access to the key text.
trait PreSharedKeyExt {
    fn text(&self) -> &str;
}

impl PreSharedKeyExt for crate::secret::PreSharedKey {
    fn text(&self) -> &str {
        self.expose()
    }
}

#[test]
fn ike_peer_versions_and_v1_alias() {
    let v = |t: &str| config(t).ike_peers["b"].versions;
    assert_eq!(v("ike peer b v1"), IkeVersions { v1: true, v2: false });
    assert_eq!(v("ike peer b\n undo version 1"), IkeVersions { v1: false, v2: true });
    assert_eq!(v("ike peer b\n undo version 2\n version 2"), IkeVersions { v1: true, v2: true });
    assert_eq!(v("ike peer b\n undo version 1\n version 1"), IkeVersions { v1: true, v2: true });
    let e = error("ike peer b v2");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::Unsupported, 1, 12));
}

#[test]
fn pre_shared_key_forms() {
    let key = |t: &str| config(t).ike_peers["b"].pre_shared_key.as_ref().map(|k| k.expose().to_string());
    assert_eq!(key("ike peer b\n pre-shared-key cipher secret"), Some("secret".into()));
    assert_eq!(key("ike peer b\n pre-shared-key simple secret"), Some("secret".into()));
    assert_eq!(key("ike peer b\n pre-shared-key \"two words\""), Some("two words".into()));
    // A one-token key that looks like the keyword is the key.
    assert_eq!(key("ike peer b\n pre-shared-key cipher"), Some("cipher".into()));
    let e = error("ike peer b\n pre-shared-key cipher %^%#abcdefgh%^%#");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::Unsupported, 2, 24));
    let long = "k".repeat(129);
    assert_eq!(error(&format!("ike peer b\n pre-shared-key {long}")).kind, DiagnosticKind::InvalidValue);
}

#[test]
fn ike_peer_id_aliases() {
    let c = config("ike peer b\n remote-name rtb\n local-id-type name");
    assert_eq!(c.ike_peers["b"].remote_id.as_deref(), Some("rtb"));
    assert_eq!(c.ike_peers["b"].local_id_type, IdType::Fqdn);
    assert_eq!(error("ike peer b\n local-id-type any").kind, DiagnosticKind::InvalidValue);
}

#[test]
fn ike_local_name_and_global_dpd() {
    let c = config(
        "ike local-name rta\nike dpd type on-demand\nike dpd idle-time 60\nike dpd retransmit-interval 10\n\
         ike dpd retry-limit 5",
    );
    assert_eq!(c.ike_local_name.as_deref(), Some("rta"));
    assert_eq!(
        c.ike_dpd,
        GlobalDpd {
            dpd_type: Some(DpdType::OnDemand),
            idle_time: 60,
            retransmit_interval: 10,
            retry_limit: 5
        }
    );
    let c = config(
        "ike local-name rta\nike dpd type on-demand\nike dpd idle-time 60\nundo ike local-name\nundo ike dpd type\n\
         undo ike dpd idle-time\nundo ike dpd retransmit-interval\nundo ike dpd retry-limit",
    );
    assert_eq!(c.ike_local_name, None);
    assert_eq!(c.ike_dpd, GlobalDpd::default());
}

#[test]
fn ike_fragmentation_on_by_default_sized_and_off() {
    use crate::model::IkeFragmentation;
    assert_eq!(config("ike local-name rta").ike_fragmentation, IkeFragmentation::default());
    assert_eq!(
        config("ike fragmentation max-size 1400").ike_fragmentation,
        IkeFragmentation { enabled: true, max_size: 1400 }
    );
    assert!(!config("undo ike fragmentation").ike_fragmentation.enabled);
    let c = config("ike fragmentation max-size 1400\nundo ike fragmentation max-size");
    assert_eq!(c.ike_fragmentation, IkeFragmentation::default());
    assert_eq!(error("ike fragmentation max-size 100").kind, DiagnosticKind::InvalidValue);
    let rendered = crate::render(&config("ike fragmentation max-size 1400"), crate::KeyDisplay::Clear);
    assert!(rendered.contains("ike fragmentation max-size 1400\n"), "{rendered}");
    let rendered = crate::render(&config("undo ike fragmentation"), crate::KeyDisplay::Clear);
    assert!(rendered.contains("undo ike fragmentation\n"), "{rendered}");
    assert!(!config(&rendered).ike_fragmentation.enabled);
}

#[test]
fn acl_headers() {
    assert!(config("acl 3001").acls.contains_key(&3001));
    assert!(config("acl number 3999").acls.contains_key(&3999));
    assert!(config("acl num 3000\nundo acl number 3000").acls.is_empty());
    let e = error("acl number 2000");
    assert_eq!((e.kind, e.column), (DiagnosticKind::Unsupported, 12));
    assert_eq!(error("acl 5000").kind, DiagnosticKind::InvalidValue);
}

#[test]
fn acl_rules() {
    let c = config(
        "acl number 3001\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\n \
         rule permit tcp source 10.1.1.7 0 destination any destination-port eq 80\n \
         rule 12 deny udp source-port range 500 4500 destination-port lt 1024\n rule permit 50\n \
         rule permit icmp\n rule permit 6 source-port gt 1023\n rule permit gre",
    );
    let rules = &c.acls[&3001].rules;
    assert_eq!(rules.keys().copied().collect::<Vec<_>>(), vec![5, 10, 12, 15, 20, 25, 30]);
    let net = |a, w| AddressMatch::Wildcard { address: a, wildcard: w };
    assert_eq!(
        rules[&5],
        AclRule {
            action: AclAction::Permit,
            protocol: AclProtocol::Ip,
            source: net(ip(10, 1, 1, 0), ip(0, 0, 0, 255)),
            destination: net(ip(10, 2, 2, 0), ip(0, 0, 0, 255)),
            source_port: None,
            destination_port: None,
        }
    );
    assert_eq!(rules[&10].source, net(ip(10, 1, 1, 7), Ipv4Addr::UNSPECIFIED));
    assert_eq!(rules[&10].destination, AddressMatch::Any);
    assert_eq!(rules[&10].destination_port, Some(PortMatch::Eq(80)));
    assert_eq!(rules[&12].action, AclAction::Deny);
    assert_eq!(rules[&12].source_port, Some(PortMatch::Range(500, 4500)));
    assert_eq!(rules[&12].destination_port, Some(PortMatch::Lt(1024)));
    assert_eq!(rules[&15].protocol, AclProtocol::Number(50));
    assert_eq!(rules[&20].protocol, AclProtocol::Icmp);
    assert_eq!(rules[&25].protocol, AclProtocol::Tcp);
    assert_eq!(rules[&25].source_port, Some(PortMatch::Gt(1023)));
    assert_eq!(rules[&30].protocol, AclProtocol::Gre);
    let c = config("acl 3001\n rule 5 permit ip\n undo rule 5");
    assert!(c.acls[&3001].rules.is_empty());
}

#[test]
fn acl_rule_errors() {
    let e = error("acl 3001\n rule 5 permit ip\n rule 5 deny ip");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::DuplicateSequence, 3, 7));
    assert_eq!(error("acl 3001\n rule permit ip destination-port eq 80").kind, DiagnosticKind::InvalidValue);
    assert_eq!(
        error("acl 3001\n rule permit udp destination-port range 9 8").kind,
        DiagnosticKind::InvalidValue
    );
    assert_eq!(error("acl 3001\n rule permit ip source any source any").kind, DiagnosticKind::InvalidValue);
    // `icmp-type` (and its abbreviation) is refused with a reason, not taken for an unknown word.
    for line in ["rule 5 permit icmp source 10.1.1.0 0.0.0.255 icmp-type echo", "rule permit icmp icmp-t 8 0"]
    {
        let e = error(&format!("acl 3001\n {line}"));
        assert_eq!(e.kind, DiagnosticKind::Unsupported, "{line}");
        assert!(e.message.contains("`icmp-type`") && e.message.contains("every ICMP type"), "{}", e.message);
    }
    assert_eq!(error("acl 3001\n rule permit ip source 10.0.0.0 0.0.0.x").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("acl 3001\n rule permit ip source 10.0.0.0").kind, DiagnosticKind::MissingArgument);
    assert_eq!(error("acl 3001\n rule permit 256").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("acl 3001\n rule allow ip").kind, DiagnosticKind::UnknownKeyword);
}

#[test]
fn ipsec_proposal_commands() {
    assert_eq!(config("ipsec proposal a").ipsec_proposals["a"], IpsecProposal::default());
    let c = config(
        "ipsec proposal a\n transform ah-esp\n encapsulation-mode transport\n esp authentication-algorithm md5\n \
         esp encryption-algorithm des\n ah authentication-algorithm sha1",
    );
    assert_eq!(
        c.ipsec_proposals["a"],
        IpsecProposal {
            transform: Transform::AhEsp,
            encapsulation: EncapsulationMode::Transport,
            esp_authentication: Some(Integrity::HmacMd5_96),
            esp_encryption: Some(EspCipher::Des),
            ah_authentication: Integrity::HmacSha1_96,
        }
    );
    let c = config(
        "ipsec proposal a\n transform ah\n encapsulation-mode auto\n ah authentication-algorithm md5\n \
         undo transform\n undo encapsulation-mode\n undo ah authentication-algorithm\n \
         undo esp authentication-algorithm\n undo esp encryption-algorithm",
    );
    let p = c.ipsec_proposals["a"];
    assert_eq!((p.esp_authentication, p.esp_encryption), (None, None));
    assert_eq!(p.transform, Transform::Esp);
    let enc =
        |t: &str| config(&format!("ipsec proposal a\n esp encryption-algorithm {t}")).ipsec_proposals["a"];
    assert_eq!(enc("aes").esp_encryption, Some(EspCipher::AesCbc128));
    assert_eq!(enc("aes 192").esp_encryption, Some(EspCipher::AesCbc192));
    assert_eq!(enc("3des").esp_encryption, Some(EspCipher::TripleDes));
    let e = error("ipsec proposal a\n esp encryption-algorithm sm4");
    assert_eq!((e.kind, e.column), (DiagnosticKind::Unsupported, 27));
    assert_eq!(
        error("ipsec proposal a\n esp encryption-algorithm aes 100").kind,
        DiagnosticKind::InvalidValue
    );
    assert!(config("ipsec proposal a\nundo ipsec proposal a").ipsec_proposals.is_empty());
}

#[test]
fn ipsec_policy_commands() {
    let c = config(
        "ipsec policy p 1 isakmp\n security acl 3001\n proposal a b\n ike-peer peer1\n pfs dh-group14\n \
         sa duration time-based 7200\n sa duration traffic-based 0\n sa trigger-mode auto\n tunnel local 192.0.2.1",
    );
    let PolicyEntry::Isakmp(s) = &c.ipsec_policies["p"][&1] else { panic!("not isakmp") };
    assert_eq!(
        s,
        &PolicySettings {
            acl: Some(3001),
            proposals: vec!["a".into(), "b".into()],
            ike_peer: Some("peer1".into()),
            pfs: Some(PfsGroup(DhGroup::Modp2048)),
            sa_seconds: Some(7200),
            sa_kilobytes: Some(0),
            trigger_mode: Some(TriggerMode::Auto),
            tunnel_local: Some(TunnelLocal::Address(ip(192, 0, 2, 1))),
            sa_max: SaMax::default(),
        }
    );
    let c = config(
        "ipsec policy p 1 isakmp\n security acl 3001\n proposal a\n ike-peer x\n pfs dh-group2\n \
         sa duration time-based 7200\n sa duration traffic-based 10\n sa trigger-mode auto\n \
         tunnel local applied-interface\n undo security acl\n undo proposal\n undo ike-peer\n undo pfs\n \
         undo sa duration time-based\n undo sa duration traffic-based\n undo sa trigger-mode\n undo tunnel local",
    );
    assert_eq!(c.ipsec_policies["p"][&1], PolicyEntry::Isakmp(PolicySettings::default()));
    let c = config("ipsec policy p 1 isakmp\n tunnel local applied-interface");
    let PolicyEntry::Isakmp(s) = &c.ipsec_policies["p"][&1] else { panic!() };
    assert_eq!(s.tunnel_local, Some(TunnelLocal::AppliedInterface));
    let parsed = ok("ipsec policy p 1 isakmp\n route inject dynamic");
    assert_eq!(parsed.warnings[0].kind, DiagnosticKind::Ignored);
}

#[test]
fn ipsec_policy_lists_and_removal() {
    let many = (0..13).map(|i| format!("p{i}")).collect::<Vec<_>>().join(" ");
    let e = error(&format!("ipsec policy p 1 isakmp\n proposal {many}"));
    assert_eq!(e.kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("ipsec policy p 1 isakmp\n proposal a a").kind, DiagnosticKind::InvalidValue);
    let c = config("ipsec policy p 1 isakmp\nipsec policy p 2 isakmp\nundo ipsec policy p 1");
    assert_eq!(c.ipsec_policies["p"].keys().copied().collect::<Vec<_>>(), vec![2]);
    assert!(config("ipsec policy p 1 isakmp\nipsec policy p 2 isakmp\nundo ipsec policy p")
        .ipsec_policies
        .is_empty());
    let e = error("ipsec policy p 1 manual");
    assert_eq!((e.kind, e.column), (DiagnosticKind::Unsupported, 18));
}

#[test]
fn policy_templates() {
    let c = config(
        "ipsec policy-template t 1\n security acl 3001\n proposal a\n ike-peer any\n pfs dh-group19\n \
         sa duration time-based 600\n tunnel local 192.0.2.1\nipsec policy p 10 isakmp template t",
    );
    assert_eq!(c.policy_templates["t"][&1].acl, Some(3001));
    assert_eq!(c.policy_templates["t"][&1].pfs, Some(PfsGroup(DhGroup::Ecp256)));
    assert_eq!(c.ipsec_policies["p"][&10], PolicyEntry::Template("t".into()));
    assert!(config("ipsec policy-template t 1\nundo ipsec policy-template t 1").policy_templates.is_empty());
    let e = error("ipsec policy-template t 1\n sa trigger-mode auto");
    assert_eq!(e.kind, DiagnosticKind::InvalidValue);
    // A template-bound entry has no settings of its own.
    let e = error("ipsec policy p 10 isakmp template t\n security acl 3001");
    assert_eq!((e.kind, e.line), (DiagnosticKind::InvalidValue, 2));
}

/// The caps of a hub's template (issue 13): `sa max [ per-peer ] { ike-sa | ipsec-sa | flow } N`
/// in the template view, `undo` back to the default, refused in an isakmp entry, and written
/// back as given.
#[test]
fn policy_template_caps() {
    let text = "ipsec policy-template hub 1\n ike-peer branches\n proposal a\n sa max ike-sa 12000\n \
                sa max ipsec-sa 60000\n sa max flow 30000\n sa max per-peer ike-sa 2\n \
                sa max per-peer ipsec-sa 8\n sa max per-peer flow 4";
    let c = config(text);
    let caps = c.policy_templates["hub"][&1].sa_max;
    assert_eq!(
        caps,
        SaMax {
            ike_sa: Some(12_000),
            ipsec_sa: Some(60_000),
            flow: Some(30_000),
            per_peer_ike_sa: Some(2),
            per_peer_ipsec_sa: Some(8),
            per_peer_flow: Some(4),
        }
    );
    assert_eq!(caps.values(), [12_000, 60_000, 30_000, 2, 8, 4]);
    assert_eq!(SaMax::default().values(), SaMax::DEFAULTS);
    let rendered = crate::render(&c, crate::KeyDisplay::Masked);
    assert!(rendered.contains(" sa max ike-sa 12000\n sa max ipsec-sa 60000\n sa max flow 30000\n \
                               sa max per-peer ike-sa 2\n sa max per-peer ipsec-sa 8\n sa max per-peer flow 4\n"),
        "{rendered}");
    assert_eq!(config(&rendered).policy_templates, c.policy_templates);
    let undone = config(&format!("{text}\n undo sa max per-peer flow\n undo sa max ike-sa"));
    let caps = undone.policy_templates["hub"][&1].sa_max;
    assert_eq!((caps.per_peer_flow, caps.ike_sa, caps.flow), (None, None, Some(30_000)));
    assert_eq!(caps.values()[0], 20_000, "the default again");
    // Only templates have branches to cap.
    let e = error("ipsec policy p 1 isakmp\n sa max flow 10");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::InvalidValue, 2, 5));
    assert!(e.message.contains("only in an ipsec policy-template"), "{}", e.message);
    assert_eq!(error("ipsec policy-template t 1\n sa max flow 0").kind, DiagnosticKind::InvalidValue);
    assert_eq!(
        error("ipsec policy-template t 1\n sa max per-peer sa 3").kind,
        DiagnosticKind::UnknownKeyword
    );
    assert_eq!(error("ipsec policy-template t 1\n sa max flow 10000001").kind, DiagnosticKind::InvalidValue);
}

#[test]
fn duplicate_policy_sequence_numbers() {
    let e = error("ipsec policy p 1 isakmp\nipsec policy p 1 isakmp template t");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::DuplicateSequence, 2, 16));
    let e = error("ipsec policy p 1 isakmp template t\nipsec policy p 1 isakmp");
    assert_eq!(e.kind, DiagnosticKind::DuplicateSequence);
    let e = error("ipsec policy p 1 isakmp template t\nipsec policy p 1 isakmp template u");
    assert_eq!(e.kind, DiagnosticKind::DuplicateSequence);
    // Re-entering a view to add settings is allowed, as on the device.
    config("ipsec policy p 1 isakmp\n proposal a\nipsec policy p 1 isakmp\n ike-peer b");
}

/// Fail-closed routes are removed by an orderly shutdown unless `ipsec fail-closed keep`;
/// `undo` restores that, and the setting survives a render and parse.
#[test]
fn fail_closed_keep_is_set_undone_and_rendered() {
    assert!(!config("sysname a").ipsec_fail_closed_keep);
    let c = config("ipsec fail-closed keep");
    assert!(c.ipsec_fail_closed_keep);
    let text = crate::render(&c, crate::KeyDisplay::Clear);
    assert!(text.contains("ipsec fail-closed keep\n"), "{text}");
    assert!(config(&text).ipsec_fail_closed_keep);
    assert!(!config("ipsec fail-closed keep\nundo ipsec fail-closed keep").ipsec_fail_closed_keep);
    assert!(crate::parse("t.cfg", "ipsec fail-closed").is_err());
}

#[test]
fn global_duration() {
    let c = config("ipsec sa global-duration time-based 7200\nipsec sa global-duration traffic-based 20000");
    assert_eq!(c.ipsec_global_duration, GlobalDuration { seconds: 7200, kilobytes: 20_000 });
    let c = config(
        "ipsec sa global-duration time-based 7200\nipsec sa global-duration traffic-based 20000\n\
         undo ipsec sa global-duration time-based\nundo ipsec sa global-duration traffic-based",
    );
    assert_eq!(c.ipsec_global_duration, GlobalDuration { seconds: 3600, kilobytes: 1_843_200 });
}

#[test]
fn interface_commands() {
    let c = config(
        "interface GigabitEthernet0/0/2\n ip address 192.0.2.1 255.255.255.0\n ipsec policy p1 auto-neg",
    );
    let i = &c.interfaces["GigabitEthernet0/0/2"];
    assert_eq!(i.address, Some(InterfaceAddress { address: ip(192, 0, 2, 1), prefix_len: 24 }));
    assert_eq!(i.ipsec_policy.as_deref(), Some("p1"));
    assert!(i.auto_negotiate);
    let c = config("interface GigabitEthernet 0/0/2\n ip address 192.0.2.1 24\n ipsec policy p1\n undo ip address\n undo ipsec policy\n undo shutdown");
    assert_eq!(c.interfaces["GigabitEthernet0/0/2"], Interface::default());
    let parsed = ok("interface g1\n shutdown");
    assert_eq!(parsed.warnings[0].kind, DiagnosticKind::Ignored);
    assert!(config("interface g1\nundo interface g1").interfaces.is_empty());
    let e = error("interface g1\n ip address 192.0.2.1 255.0.255.0");
    assert_eq!((e.kind, e.column), (DiagnosticKind::InvalidValue, 23));
    let e = error("interface g1\n ipsec policy p1\n ipsec policy p2");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::OverlappingPolicy, 3, 15));
}

/// Names are rendered bare, so a quoted name with blanks would not read back the same
/// (found by the vrp_parse fuzz target: `interface Gig "a b"` rendered as `interface Giga b`).
#[test]
fn names_with_blanks_or_quotes_are_refused() {
    let e = error("ike peer \"a b\"");
    assert_eq!((e.kind, e.column), (DiagnosticKind::InvalidValue, 10));
    assert!(e.message.contains("without blanks or quotes"), "{}", e.message);
    let e = error("interface Gig \"x y\"");
    assert_eq!((e.kind, e.column), (DiagnosticKind::InvalidValue, 15));
    let e = error("interface Gig a\"b");
    assert_eq!(e.kind, DiagnosticKind::InvalidValue);
}

#[test]
fn static_routes() {
    let c = config(
        "ip route-static 10.2.2.0 255.255.255.0 192.0.2.2\nip route-static 10.3.0.0 16 GigabitEthernet0/0/2 192.0.2.3 \
         preference 10\nip route-static 10.2.2.0 24 192.0.2.2",
    );
    assert_eq!(
        c.routes,
        vec![
            StaticRoute {
                destination: ip(10, 3, 0, 0),
                prefix_len: 16,
                interface: Some("GigabitEthernet0/0/2".into()),
                next_hop: ip(192, 0, 2, 3),
                preference: 10,
            },
            StaticRoute {
                destination: ip(10, 2, 2, 0),
                prefix_len: 24,
                interface: None,
                next_hop: ip(192, 0, 2, 2),
                preference: 60,
            },
        ]
    );
    assert!(config("ip route-static 10.2.2.0 24 192.0.2.2\nundo ip route-static 10.2.2.0 24 192.0.2.2")
        .routes
        .is_empty());
    let e = error("ip route-static 10.2.2.1 24 192.0.2.2");
    assert_eq!((e.kind, e.column), (DiagnosticKind::InvalidValue, 17));
    assert_eq!(error("ip route-static 10.2.2.0 24").kind, DiagnosticKind::MissingArgument);
}

#[test]
fn quit_return_and_separators() {
    // Without `quit`, `rule` would be read in the peer view and fail.
    let c = config("ike peer b\n quit\nacl 3001\n rule permit ip\n return\n#\nsysname x");
    assert_eq!(c.sysname.as_deref(), Some("x"));
    assert_eq!(error("ike peer b\nquit\n remote-address 1.1.1.1").kind, DiagnosticKind::UnknownKeyword);
    assert_eq!(error("ike peer b\n quit now").kind, DiagnosticKind::TrailingToken);
}

#[test]
fn case_insensitive_keywords_and_case_sensitive_names() {
    let c = config(
        "IKE PEER Branch\n Remote-Address 1.1.1.1\nIPsec Proposal A\n ESP Encryption-Algorithm AES-256",
    );
    assert!(c.ike_peers.contains_key("Branch"));
    assert!(!c.ike_peers.contains_key("branch"));
    assert!(c.ipsec_proposals.contains_key("A"));
}

#[test]
fn unique_prefix_abbreviations() {
    let c = config(
        "ike pe b\n remote-a 1.1.1.1\n pre cipher k\n ex agg\nipsec policy p 1 isa\n sec acl 3001\n ike 5",
    );
    assert_eq!(c.ike_peers["b"].remote_address, Some(ip(1, 1, 1, 1)));
    assert_eq!(c.ike_peers["b"].exchange_mode, ExchangeMode::Aggressive);
    let PolicyEntry::Isakmp(s) = &c.ipsec_policies["p"][&1] else { panic!() };
    assert_eq!((s.acl, s.ike_peer.as_deref()), (Some(3001), Some("5")));
    let c = config("int g1\n ip a 10.0.0.1 24");
    assert!(c.interfaces["g1"].address.is_some());
}

#[test]
fn a_system_command_leaves_the_current_view() {
    // The article's file has no `#` or `quit` between blocks.
    let c = config("ike proposal 10\nike peer b\n ike-proposal 10\nacl 3001\n rule permit ip\ninterface g1\n ip address 1.1.1.1 24\nip route-static 10.0.0.0 8 1.1.1.2");
    assert!(c.ike_peers.contains_key("b") && c.acls.contains_key(&3001) && c.routes.len() == 1);
    // `ipsec policy NAME` is an interface command; `ipsec policy NAME SEQ isakmp` a system one.
    let c = config("interface g1\n ipsec policy p\nipsec policy p 1 isakmp\n ike-peer b");
    assert_eq!(c.interfaces["g1"].ipsec_policy.as_deref(), Some("p"));
    assert!(c.ipsec_policies.contains_key("p"));
}

#[test]
fn source_map_points_at_commands() {
    let parsed = ok("ike peer b\n  ike-proposal 10\nacl 3001\n rule 5 permit ip");
    assert_eq!(parsed.source_map.get("ike peer b"), Some(Location { line: 1, column: 1 }));
    assert_eq!(parsed.source_map.get("ike peer b/ike-proposal"), Some(Location { line: 2, column: 3 }));
    assert_eq!(parsed.source_map.get("acl 3001/rule 5"), Some(Location { line: 4, column: 2 }));
}

#[test]
fn error_unknown_keyword_names_token_expected_and_suggestion() {
    let e = error("ike peer b\n ike-proposl 10");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::UnknownKeyword, 2, 2));
    let text = e.to_string();
    assert!(text.starts_with("t.cfg:2:2: error: unknown keyword `ike-proposl`"), "{text}");
    assert!(text.contains("did you mean `ike-proposal`?"), "{text}");
    assert!(text.contains("in view `ike peer b`"), "{text}");
    let e = error("ipsec proposal a\n esp encryption-algorithm aes-265");
    assert!(e.message.contains("did you mean `aes-256`?"), "{}", e.message);
    let e = error("ike peer b\nipsec pol p 1 isakmp");
    assert_eq!((e.kind, e.column), (DiagnosticKind::AmbiguousKeyword, 7));
    assert!(!e.message.contains("in view"), "system-view errors do not name the peer view: {}", e.message);
}

#[test]
fn error_ambiguous_keyword() {
    let e = error("i proposal 1");
    assert_eq!((e.kind, e.column), (DiagnosticKind::AmbiguousKeyword, 1));
    assert!(e.message.contains("`ike`") && e.message.contains("`ipsec`"), "{}", e.message);
    assert_eq!(error("ike peer b\n remote-i x").kind, DiagnosticKind::AmbiguousKeyword);
}

#[test]
fn error_missing_argument_points_past_the_line() {
    let e = error("ike proposal");
    assert_eq!((e.kind, e.column), (DiagnosticKind::MissingArgument, 13));
    assert!(e.message.contains("IKE proposal number"), "{}", e.message);
}

#[test]
fn error_invalid_values() {
    assert_eq!(error("ike proposal 0").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("ike proposal 10\n sa duration 10").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("ike peer b\n remote-address 300.1.1.1").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("ike peer abcdefghijklmnop").kind, DiagnosticKind::InvalidValue);
    assert_eq!(error("ike peer b\n dpd idle-time 5").kind, DiagnosticKind::InvalidValue);
}

#[test]
fn error_trailing_token() {
    let e = error("ike proposal 10 extra");
    assert_eq!((e.kind, e.column), (DiagnosticKind::TrailingToken, 17));
    assert!(e.message.contains("`extra`"));
}

#[test]
fn error_unsupported() {
    assert_eq!(error("ike proposal 1\n authentication-algorithm sm3").kind, DiagnosticKind::Unsupported);
    assert_eq!(
        error("ike proposal 1\n authentication-method digital-envelope").kind,
        DiagnosticKind::Unsupported
    );
}

#[test]
fn error_lexical() {
    let e = error("ike peer b\n pre-shared-key \"unterminated");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::Lexical, 2, 17));
}

#[test]
fn follow_on_errors_of_a_broken_view_are_suppressed() {
    let all = parse(
        "t.cfg",
        "ike peerr b\n ike-proposal 10\n remote-address 1.1.1.1\nacl 3001\n rule permit ip\n rule bogus",
    )
    .unwrap_err()
    .0;
    let lines: Vec<u32> = all.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![1, 6], "{all:#?}");
}

#[test]
fn failed_lines_change_nothing() {
    let mut parser = Parser {
        file: "t.cfg",
        config: Config::default(),
        source_map: SourceMap::default(),
        diagnostics: Vec::new(),
        view: View::System,
    };
    let text =
        "ike peer b\n remote-address 1.1.1.1\n remote-address 2.2.2.2 extra\n exchange-mode aggressive 1";
    for lexed in lex(text) {
        if let Ok(LexedLine::Command(line)) = lexed {
            parser.line(&line);
        }
    }
    assert_eq!(parser.diagnostics.len(), 2);
    assert_eq!(
        parser.config.ike_peers["b"],
        IkePeer { remote_address: Some(ip(1, 1, 1, 1)), ..IkePeer::default() }
    );
}

#[test]
fn firewall_views_are_ignored_with_a_note_and_sha2_compat_is_applied() {
    let parsed = ok("firewall zone trust\n set priority 85\n add interface g1\nsecurity-policy\n rule name a\n  action permit\n\
                     ipsec sha2 compatible enable\nike peer b\n remote-address 1.1.1.1");
    let notes: Vec<(u32, u32, DiagnosticKind)> =
        parsed.warnings.iter().map(|w| (w.line, w.column, w.kind)).collect();
    assert_eq!(notes, vec![(1, 1, DiagnosticKind::Ignored), (4, 1, DiagnosticKind::Ignored)]);
    // `ipsec sha2 compatible enable` selects RFC 4868's truncation (the default) and takes
    // effect; its `undo` selects the legacy 96 bits (crates/vrp/tests/user_table.rs).
    assert!(!parsed.config.ipsec_sha2_truncate_96);
    assert_eq!(parsed.config.ike_peers["b"].remote_address, Some(ip(1, 1, 1, 1)));
    // Unindented lines after an ignored view are read again.
    let e = error("firewall zone trust\nadd interface g1");
    assert_eq!(e.kind, DiagnosticKind::UnknownKeyword);
    assert!(!e.message.contains("in view"), "{}", e.message);
    assert_eq!(error("security-p\n rule name a").kind, DiagnosticKind::UnknownKeyword);
}

/// AES-GCM (USG-E keywords) is accepted for ESP and refused for IKE phase 1.
#[test]
fn aes_gcm_is_for_esp_only() {
    let c = config("ipsec proposal g\n esp encryption-algorithm aes-256-gcm-128");
    assert_eq!(c.ipsec_proposals["g"].esp_encryption, Some(EspCipher::AesGcm256));
    let c = config("ipsec proposal g\n esp encryption-algorithm aes-128-gcm-128");
    assert_eq!(c.ipsec_proposals["g"].esp_encryption, Some(EspCipher::AesGcm128));
    let e = error("ike proposal 1\n encryption-algorithm aes-128-gcm-128");
    assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::InvalidValue, 2, 23));
    assert!(e.message.contains("AES-GCM is for ESP only"), "{}", e.message);
    let e = error("ike proposal 1\n encryption-algorithm aes-265");
    assert!(!e.message.contains("gcm"), "IKE lists only what IKE takes: {}", e.message);
}

/// Curve25519 (group 31), a keysteward extension named in the USG pattern.
#[test]
fn curve25519_group_and_pfs() {
    let c = config("ike proposal 1\n dh group31");
    assert_eq!(c.ike_proposals[&1].dh, DhGroup::Curve25519);
    assert_eq!(DhGroup::Curve25519.id(), 31);
}

/// A key written with blanks and not quoted is an error that says where and what, and never
/// shows the key: diagnostics go to terminals, logs and bug reports.
#[test]
fn pre_shared_key_errors_never_show_the_key() {
    for (text, column) in [
        ("ike peer b\n pre-shared-key simple my secret key", 27),
        ("ike peer b\n pre-shared-key cipher my secret key", 27),
        ("ike peer b\n pre-shared-key my secret key", 20),
        ("ike peer b\n pre-shared-key \"my\" secret key", 22),
        ("ike peer b\n undo pre-shared-key my secret key", 22),
    ] {
        let e = error(text);
        assert_eq!((e.kind, e.line, e.column), (DiagnosticKind::TrailingToken, 2, column), "{text}");
        let shown = e.to_string();
        assert!(!shown.contains("secret") && !shown.contains("`my"), "{text}: {shown}");
        assert!(shown.contains("not shown"), "{text}: {shown}");
    }
}

/// `metrics server ip-address A port N`: set, rendered, undone; a non-loopback address is a
/// warning at its line; the port and the address are checked.
#[test]
fn metrics_server_is_set_rendered_undone_and_validated() {
    assert_eq!(config("sysname a").metrics, None);
    let c = config("metrics server ip-address 127.0.0.1 port 9464");
    assert_eq!(c.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    let text = crate::render(&c, crate::KeyDisplay::Clear);
    assert!(text.contains("metrics server ip-address 127.0.0.1 port 9464\n"), "{text}");
    assert_eq!(config(&text).metrics, c.metrics);
    assert_eq!(config("metrics server ip-address 127.0.0.1 port 1\nundo metrics server").metrics, None);
    assert!(crate::parse("t.cfg", "metrics server ip-address 127.0.0.1 port 0").is_err());
    assert!(crate::parse("t.cfg", "metrics server ip-address 127.0.0.1").is_err());
    assert!(crate::parse("t.cfg", "metrics server ip-address ::1 port 9464").is_err());
    let file = "sysname a\nmetrics server ip-address 192.0.2.1 port 9464\n";
    let parsed = crate::parse("t.cfg", file).unwrap();
    let found = crate::validate("t.cfg", &parsed.config, Some(&parsed.source_map), None);
    let warning = found.iter().find(|d| d.message.contains("no authentication")).expect("a warning");
    assert_eq!((warning.line, warning.severity), (2, crate::Severity::Warning), "{warning}");
    let quiet = crate::parse("t.cfg", "metrics server ip-address 127.0.0.1 port 9464").unwrap();
    assert!(crate::validate("t.cfg", &quiet.config, Some(&quiet.source_map), None).is_empty());
}
