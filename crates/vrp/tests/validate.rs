//! Validation tests: every semantic error and every warning of `vrp::check`, with the line
//! it points at.

use std::net::Ipv4Addr;

use vrp::{check, validate, DiagnosticKind as K, Severity};

/// A strong, complete configuration: no finding at all.
const CLEAN: &str = "\
ike proposal 10
ike peer b
 ike-proposal 10
 undo version 2
 remote-address 192.0.2.2
 pre-shared-key a-long-enough-key-123
acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
ipsec proposal a
ipsec policy policy1 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
interface GigabitEthernet0/0/2
 ip address 192.0.2.1 255.255.255.0
 ipsec policy policy1
";

/// (severity, kind, line) of every finding.
fn findings(text: &str) -> Vec<(Severity, K, u32)> {
    check("t.cfg", text, None).diagnostics.iter().map(|d| (d.severity, d.kind, d.line)).collect()
}

fn with(old: &str, new: &str) -> String {
    assert!(CLEAN.contains(old), "{old}");
    CLEAN.replacen(old, new, 1)
}

#[test]
fn clean_configuration_has_no_finding() {
    let checked = check("t.cfg", CLEAN, None);
    assert_eq!(checked.diagnostics, vec![]);
    assert!(checked.config.is_some());
}

#[test]
fn missing_ike_proposal() {
    assert_eq!(
        findings(&with(" ike-proposal 10", " ike-proposal 11")),
        vec![(Severity::Error, K::MissingReference, 3)]
    );
}

#[test]
fn missing_acl_proposal_peer() {
    assert_eq!(
        findings(&with(" security acl 3001", " security acl 3002")),
        vec![(Severity::Error, K::MissingReference, 11)]
    );
    assert_eq!(
        findings(&with("\n proposal a\n", "\n proposal a z\n")),
        vec![(Severity::Error, K::MissingReference, 12)]
    );
    let text = with(" ike-peer b", " ike-peer c");
    assert_eq!(findings(&text), vec![(Severity::Error, K::MissingReference, 13)]);
    let d = &check("t.cfg", &text, None).diagnostics[0];
    assert_eq!(
        d.to_string(),
        "t.cfg:13:2: error: ipsec policy policy1 1 refers to ike peer c, which is not defined"
    );
}

/// Issue 15, "nothing silently ignored": what is accepted and has no effect is said.
#[test]
fn what_has_no_effect_is_said() {
    let said = |text: &str| -> Vec<(u32, String)> {
        check("t.cfg", text, None)
            .diagnostics
            .into_iter()
            .filter(|d| d.kind == K::Ignored)
            .map(|d| (d.line, d.message))
            .collect()
    };
    assert_eq!(said(CLEAN), vec![], "the clean configuration has nothing inert");
    let unbound = with(" ipsec policy policy1\n", "\n");
    let found = said(&unbound);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.starts_with("ipsec policy policy1 is applied to no interface"), "{found:?}");
    let route = format!(
        "{CLEAN}ip route-static 10.2.2.128 25 192.0.2.2\nip route-static 198.51.100.0 24 192.0.2.2\n"
    );
    let found = said(&route);
    assert_eq!(found.len(), 1, "only the route inside the protected 10.2.2.0/24: {found:?}");
    assert_eq!(found[0].0, 17);
    assert!(found[0].1.contains("protected by ipsec policy policy1 1"), "{found:?}");
    assert!(found[0].1.contains("not installed"), "{found:?}");
    let wider = format!("{CLEAN}ip route-static 10.2.0.0 16 192.0.2.2\n");
    assert_eq!(said(&wider), vec![], "a wider route leaves the protected /24 to the TUN route");
    let overridden = with(
        " pre-shared-key",
        " remote-id fwb\n remote-address authentication-address 10.9.9.9\n pre-shared-key",
    );
    let found = said(&overridden);
    assert!(
        found.len() == 1 && found[0].1.contains("authentication-address 10.9.9.9 has no effect"),
        "{found:?}"
    );
    let shut = format!("{CLEAN}interface GigabitEthernet0/0/2\n undo shutdown\n");
    assert_eq!(said(&shut).len(), 1);
}

/// Review finding: a deny rule whose wildcard is not contiguous cannot be exempted; `check`
/// says so instead of leaving it silently without effect.
#[test]
fn a_deny_rule_with_a_non_contiguous_wildcard_is_said() {
    let permit = " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\n";
    let odd = with(
        permit,
        &format!(" rule 1 deny ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.255.0\n{permit}"),
    );
    let found: Vec<String> = check("t.cfg", &odd, None)
        .diagnostics
        .into_iter()
        .filter(|d| d.kind == K::Ignored)
        .map(|d| d.message)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("acl 3001 rule 1 deny has no effect: its wildcard is not contiguous"),
        "{found:?}"
    );
    let contiguous = with(
        permit,
        &format!(" rule 1 deny ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.127\n{permit}"),
    );
    assert!(check("t.cfg", &contiguous, None).diagnostics.iter().all(|d| d.kind != K::Ignored));
}

#[test]
fn missing_policy_on_interface() {
    assert_eq!(
        findings(&with(" ipsec policy policy1", " ipsec policy other")),
        vec![(Severity::Error, K::MissingReference, 16)]
    );
}

#[test]
fn incomplete_policy_entries_and_peers() {
    assert_eq!(findings(&with(" security acl 3001\n", "")), vec![(Severity::Error, K::Incomplete, 10)]);
    assert_eq!(findings(&with("\n proposal a\n", "\n")), vec![(Severity::Error, K::Incomplete, 10)]);
    assert_eq!(findings(&with(" ike-peer b\n", "")), vec![(Severity::Error, K::Incomplete, 10)]);
    assert_eq!(
        findings(&with(" pre-shared-key a-long-enough-key-123\n", "")),
        vec![(Severity::Error, K::Incomplete, 2)]
    );
    assert_eq!(
        findings(&with(" remote-address 192.0.2.2\n", "")),
        vec![(Severity::Error, K::Incomplete, 12)]
    );
}

#[test]
fn templates() {
    let hub = format!(
        "{CLEAN}ipsec policy-template t 1\n proposal a\n ike-peer b\nipsec policy policy1 100 isakmp template t\n"
    );
    assert_eq!(findings(&hub), vec![]);
    let not_last = hub.replace("policy1 100 isakmp template t", "policy1 0 isakmp template t");
    assert!(check("t.cfg", &not_last, None).has_errors(), "seq 0 is out of range");
    let before = format!(
        "{}ipsec policy-template t 1\n proposal a\n ike-peer b\nipsec policy policy1 2 isakmp template t\n\
         ipsec policy policy1 3 isakmp\n security acl 3001\n proposal a\n ike-peer b\n",
        CLEAN.replace(
            " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
            " rule 5 permit ip"
        )
    );
    let f = findings(&before);
    assert!(f.contains(&(Severity::Error, K::OverlappingPolicy, 20)), "{f:?}");
    let missing = format!("{CLEAN}ipsec policy policy1 100 isakmp template nope\n");
    assert_eq!(findings(&missing), vec![(Severity::Error, K::MissingReference, 17)]);
    let incomplete = format!("{CLEAN}ipsec policy-template t 1\n");
    assert_eq!(
        findings(&incomplete),
        vec![(Severity::Error, K::Incomplete, 17), (Severity::Error, K::Incomplete, 17)]
    );
}

#[test]
fn overlapping_policies_on_one_interface() {
    let second = "ipsec policy policy1 2 isakmp\n security acl 3002\n proposal a\n ike-peer b\n";
    let overlapping = format!(
        "{CLEAN}acl 3002\n rule 5 permit tcp source 10.1.1.7 0 destination 10.2.2.0 0.0.0.255\n{second}"
    );
    assert_eq!(findings(&overlapping), vec![(Severity::Error, K::OverlappingPolicy, 20)]);
    let disjoint = overlapping
        .replace("10.2.2.0 0.0.0.255\nipsec policy policy1 2", "10.3.3.0 0.0.0.255\nipsec policy policy1 2");
    assert_eq!(findings(&disjoint), vec![]);
    let same_acl = format!("{CLEAN}{}", second.replace("3002", "3001"));
    assert_eq!(findings(&same_acl), vec![(Severity::Error, K::OverlappingPolicy, 18)]);
    let two_interfaces = format!("{CLEAN}interface GigabitEthernet0/0/3\n ipsec policy policy1\n");
    assert_eq!(findings(&two_interfaces), vec![(Severity::Error, K::OverlappingPolicy, 18)]);
}

#[test]
fn unsupported_settings() {
    assert_eq!(
        findings(&with(" undo version 2", " undo version 1")),
        vec![(Severity::Error, K::Unsupported, 4)]
    );
    // AH is implemented: `transform ah` and `ah-esp` are clean; a weak AH hash is warned
    // about on its line, as ESP's is.
    assert_eq!(findings(&with("ipsec proposal a\n", "ipsec proposal a\n transform ah\n")), vec![]);
    assert_eq!(
        findings(&with(
            "ipsec proposal a\n",
            "ipsec proposal a\n transform ah-esp\n ah authentication-algorithm md5\n"
        )),
        vec![(Severity::Warning, K::WeakAlgorithm, 11)]
    );
    // Signatures are supported now; a signature peer without its certificate files is not.
    assert_eq!(
        findings(&with("ike proposal 10\n", "ike proposal 10\n authentication-method rsa-signature\n")),
        vec![(Severity::Error, K::Incomplete, 3)]
    );
    let null = with(
        "ipsec proposal a\n",
        "ipsec proposal a\n undo esp encryption-algorithm\n undo esp authentication-algorithm\n",
    );
    assert_eq!(findings(&null), vec![(Severity::Error, K::Incomplete, 10)]);
    // With AH alone the ESP algorithms do not matter.
    let ah = null.replace("ipsec proposal a\n", "ipsec proposal a\n transform ah\n");
    assert_eq!(findings(&ah), vec![]);
}

#[test]
fn weak_algorithm_warnings() {
    let weak = with(
        "ike proposal 10\n",
        "ike proposal 10\n encryption-algorithm 3des\n authentication-algorithm md5\n dh group5\n",
    );
    let weak = weak.replace(
        "ipsec proposal a\n",
        "ipsec proposal a\n esp encryption-algorithm des\n esp authentication-algorithm md5\n",
    );
    let weak = weak.replace(" ike-peer b\n", " ike-peer b\n pfs dh-group1\n");
    let w = |line| (Severity::Warning, K::WeakAlgorithm, line);
    assert_eq!(findings(&weak), vec![w(2), w(3), w(4), w(13), w(14), w(19)]);
    for group in ["group1", "group2", "group5"] {
        let text = with("ike proposal 10\n", &format!("ike proposal 10\n dh {group}\n"));
        assert_eq!(findings(&text), vec![w(2)], "{group}");
    }
    let checked = check("t.cfg", &weak, None);
    assert!(checked.config.is_some(), "warnings do not stop a load");
}

#[test]
fn peer_warnings() {
    assert_eq!(
        findings(&with(" remote-address", " exchange-mode aggressive\n remote-address")),
        vec![(Severity::Warning, K::AggressiveModePsk, 5)]
    );
    // `auto` answers aggressive mode as responder: the same risk for the key.
    assert_eq!(
        findings(&with(" remote-address", " exchange-mode auto\n remote-address")),
        vec![(Severity::Warning, K::AggressiveModePsk, 5)]
    );
    assert_eq!(
        findings(&with("a-long-enough-key-123", "fifteen-chars-x")),
        vec![(Severity::Warning, K::ShortPreSharedKey, 6)]
    );
    assert_eq!(findings(&with("a-long-enough-key-123", "sixteen-chars-xx")), vec![]);
    assert_eq!(findings(&with(" undo version 2\n", "")), vec![(Severity::Warning, K::IkeVersion, 2)]);
}

#[test]
fn addresses_the_host_does_not_have() {
    let own = [Ipv4Addr::new(192, 0, 2, 1)];
    assert_eq!(check("t.cfg", CLEAN, Some(&own)).diagnostics, vec![]);
    let other = [Ipv4Addr::new(192, 0, 2, 9)];
    let d = check("t.cfg", CLEAN, Some(&other)).diagnostics;
    assert_eq!(
        d.iter().map(|d| (d.severity, d.kind, d.line)).collect::<Vec<_>>(),
        vec![(Severity::Warning, K::AddressNotOnHost, 15)]
    );
    let tunnel = with(" ike-peer b\n", " ike-peer b\n tunnel local 198.51.100.1\n");
    let d = check("t.cfg", &tunnel, Some(&own)).diagnostics;
    assert_eq!(d.iter().map(|d| (d.kind, d.line)).collect::<Vec<_>>(), vec![(K::AddressNotOnHost, 14)]);
}

#[test]
fn validate_without_source_map_reports_file_only() {
    let parsed = vrp::parse("t.cfg", &with(" ike-proposal 10", " ike-proposal 11")).unwrap();
    let d = validate("t.cfg", &parsed.config, None, None);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].line, 0);
    assert!(d[0].to_string().starts_with("t.cfg: error: ike peer b refers to ike proposal 11"), "{}", d[0]);
}

#[test]
fn errors_withhold_the_configuration() {
    let checked = check("t.cfg", &with(" ike-peer b", " ike-peer c"), None);
    assert!(checked.has_errors());
    assert!(checked.config.is_none());
    let checked = check("t.cfg", "ike proposl 10", None);
    assert!(checked.config.is_none());
    assert_eq!(checked.diagnostics[0].kind, K::UnknownKeyword);
}

/// CLEAN with peer b authenticating by `method` and the given certificate commands.
fn signature_peer(method: &str, commands: &str) -> String {
    let text = with("ike proposal 10\n", &format!("ike proposal 10\n authentication-method {method}\n"));
    text.replacen(" pre-shared-key a-long-enough-key-123\n", commands, 1)
}

#[test]
fn certificate_authentication_needs_certificate_key_and_ca() {
    let complete = " certificate local-filename fw_a.crt\n certificate local-key-filename fw_a.key\n \
                    certificate ca-filename ca.crt\n local-id-type dn\n remote-id-type dn\n \
                    remote-id \"C=CN, O=Example, CN=fw-b\"\n";
    for method in ["rsa-signature", "rsa-sig", "ecdsa-signature"] {
        assert_eq!(findings(&signature_peer(method, complete)), vec![], "{method}");
    }
    // Each missing file is named, at the peer's line.
    let checked =
        check("t.cfg", &signature_peer("rsa-signature", " certificate local-filename a.crt\n"), None);
    assert_eq!(checked.diagnostics.len(), 1);
    let d = &checked.diagnostics[0];
    assert_eq!((d.severity, d.kind, d.line), (Severity::Error, K::Incomplete, 3));
    assert!(
        d.message.contains("`certificate local-key-filename`, `certificate ca-filename`"),
        "{}",
        d.message
    );
    assert!(d.to_string().starts_with("t.cfg:3:1: error"), "{d}");
    // No pre-shared key is needed with signatures; local-id-type dn needs a certificate.
    let psk_dn = with(
        " pre-shared-key a-long-enough-key-123\n",
        " pre-shared-key a-long-enough-key-123\n local-id-type dn\n",
    );
    assert_eq!(findings(&psk_dn), vec![(Severity::Error, K::Incomplete, 7)]);
    // A DN remote-id must look like one.
    let bad_dn = signature_peer("rsa-signature", &complete.replace("\"C=CN, O=Example, CN=fw-b\"", "fw-b"));
    assert_eq!(findings(&bad_dn), vec![(Severity::Error, K::InvalidValue, 12)]);
}

#[test]
fn certificate_commands_parse_render_and_refuse_remote_filename() {
    let text = signature_peer(
        "rsa-signature",
        " certificate local-filename fw_a.crt\n certificate local-key-filename fw_a.key\n \
         certificate ca-filename ca1.crt\n certificate ca-filename ca2.crt\n certificate crl-filename ca1.crl\n \
         certificate send when-asked\n",
    );
    let checked = check("t.cfg", &text, None);
    let config = checked.config.expect("valid");
    let cert = &config.ike_peers["b"].certificate;
    assert_eq!(cert.ca_filenames, vec!["ca1.crt", "ca2.crt"]);
    assert_eq!(cert.send, vrp::model::CertificateSend::WhenAsked);
    let rendered = vrp::render(&config, vrp::KeyDisplay::Clear);
    assert!(rendered.contains(" certificate ca-filename ca2.crt\n certificate crl-filename ca1.crl\n certificate send when-asked\n"), "{rendered}");
    assert_eq!(vrp::parse("r.cfg", &rendered).expect("re-parses").config, config);
    let parsed = vrp::parse("t.cfg", &text).unwrap();
    assert_eq!(parsed.source_map.certificate_file("b", "ca-filename", "ca2.crt").map(|l| l.line), Some(10));
    let remote = check(
        "t.cfg",
        &text.replace("certificate send when-asked", "certificate remote-filename b.crt"),
        None,
    );
    let d = remote.diagnostics.iter().find(|d| d.is_error()).expect("an error");
    assert_eq!((d.kind, d.line, d.column), (K::Unsupported, 12, 14), "points at `remote-filename`");
    assert!(d.message.contains("certificate ca-filename"), "{}", d.message);
}

/// The policy `validate::protecting_policy` names for `route` in `text`, if any.
fn held_back(text: &str, route: &str) -> Option<String> {
    let text = format!("{text}{route}\n");
    let parsed = vrp::parse("t.cfg", &text).unwrap();
    let r = parsed.config.routes.last().unwrap();
    validate::protecting_policy(&parsed.config, r)
}

/// A rule with a protocol is policy-routed by protocol (`ip rule … ipproto udp`, ahead of the
/// main table): a static route toward its destination cannot take the protected UDP, and
/// stays installed as the clear path of the rest; a `permit ip` rule holds it back.
#[test]
fn only_a_rule_for_every_protocol_holds_back_a_static_route_inside_its_destination() {
    let udp = with(
        " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
        " rule 5 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
    );
    assert_eq!(held_back(&udp, "ip route-static 10.2.2.0 255.255.255.128 192.0.2.254"), None);
    assert_eq!(
        held_back(CLEAN, "ip route-static 10.2.2.0 255.255.255.128 192.0.2.254").as_deref(),
        Some("policy1 1")
    );
}

/// `destination any` never covers the default route nor any other: the TUN never takes /0
/// (bridge routing), so a hub's default route stays installed.
#[test]
fn destination_any_holds_back_no_route() {
    let any = with(
        " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
        " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination any",
    );
    assert_eq!(held_back(&any, "ip route-static 0.0.0.0 0.0.0.0 192.0.2.254"), None);
    assert_eq!(held_back(&any, "ip route-static 198.51.100.0 24 192.0.2.254"), None);
    let found: Vec<_> = check("t.cfg", &format!("{any}ip route-static 0.0.0.0 0.0.0.0 192.0.2.254\n"), None)
        .diagnostics
        .into_iter()
        .filter(|d| d.message.contains("not installed"))
        .collect();
    assert!(found.is_empty(), "{found:?}");
}
