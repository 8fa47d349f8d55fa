//! The reference configurations of `examples/` (the article's Table 1-1 on the reference
//! topology) load with the DES and MD5 warnings and no error, and render canonically.

use std::path::Path;

use vrp::{load_file, render, DiagnosticKind, KeyDisplay, Severity};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

#[test]
fn both_examples_load_with_des_and_md5_warnings() {
    for (file, proposal) in [("fw_a.cfg", "a"), ("fw_b.cfg", "b")] {
        let checked = load_file(&example(file), None).unwrap();
        assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
        assert!(checked.config.is_some());
        let weak: Vec<&str> = checked
            .diagnostics
            .iter()
            .filter(|d| d.kind == DiagnosticKind::WeakAlgorithm)
            .map(|d| d.message.as_str())
            .collect();
        assert!(weak.iter().any(|m| m.contains(" des:")), "{file}: {weak:?}");
        assert!(weak.iter().any(|m| m.contains(" md5:")), "{file}: {weak:?}");
        assert!(weak.iter().all(|m| m.contains(&format!("ipsec proposal {proposal}"))), "{weak:?}");
        assert!(checked.diagnostics.iter().all(|d| d.severity == Severity::Warning));
        assert!(checked.diagnostics.iter().all(|d| d.file.ends_with(file) && d.line > 0));
    }
}

#[test]
fn fw_a_is_the_articles_table() {
    let config = load_file(&example("fw_a.cfg"), None).unwrap().config.unwrap();
    let peer = &config.ike_peers["b"];
    assert_eq!(peer.remote_address, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(peer.pre_shared_key.as_ref().map(|k| k.expose()), Some("tiandihui2"));
    assert!(peer.versions.v1 && !peer.versions.v2);
    assert_eq!(config.interfaces["GigabitEthernet0/0/2"].ipsec_policy.as_deref(), Some("policy1"));
    assert_eq!(config.routes[0].next_hop, "192.0.2.2".parse::<std::net::Ipv4Addr>().unwrap());
}

#[test]
fn fw_a_renders_canonically_with_the_key_masked() {
    let config = load_file(&example("fw_a.cfg"), None).unwrap().config.unwrap();
    let masked = render(&config, KeyDisplay::Masked);
    assert_eq!(
        masked,
        "\
#
ike proposal 10
#
ike peer b
 ike-proposal 10
 undo version 2
 pre-shared-key cipher %^%#********%^%#
 remote-address 192.0.2.2
#
acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
#
ipsec proposal a
 esp authentication-algorithm md5
 esp encryption-algorithm des
#
ipsec policy policy1 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
#
interface GigabitEthernet0/0/2
 ip address 192.0.2.1 255.255.255.0
 ipsec policy policy1
#
ip route-static 10.2.2.0 255.255.255.0 192.0.2.2
#
return
"
    );
    assert!(!masked.contains("tiandihui2"));
    let clear = render(&config, KeyDisplay::Clear);
    assert!(clear.contains(" pre-shared-key tiandihui2\n"));
    assert_eq!(vrp::parse("clear.cfg", &clear).unwrap().config, config);
}
