//! The article's configuration as printed (Dr.WoW "IPsec with IKE", Table 1-1): the `//`
//! annotations after the commands, glued to a keyword or after a blank, keywords in the case
//! Huawei's guides use, any leading whitespace. It must read as the same configuration as
//! `examples/fw_a.cfg` and `examples/fw_b.cfg` (issue 15, "the article's text as written").
//! The addresses are the examples' (the article's 1.1.1.1/2.2.3.2 renumbered into the
//! documentation range), everything else is the table's text.

use std::path::Path;

use vrp::{check, load_file, Config};

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let checked = load_file(&path, None).unwrap();
    checked.config.unwrap_or_else(|| panic!("{name}: {:#?}", checked.diagnostics))
}

fn article(text: &str) -> Config {
    let checked = check("article.cfg", text, None);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    checked.config.unwrap()
}

/// FW_A's column of Table 1-1, annotations included.
const FW_A: &str = "\
IKE proposal 10                           //IKE proposal: default parameters
ike peer b
 ike-proposal 10
 undo version 2 //IKEv1
 exchange-mode main//main mode (default)
 remote-address 192.0.2.2 //the peer's public address
 pre-shared-key tiandihui2 //the key, the same on FW_B
acl number 3001   //the data flow to protect
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
IPsec proposal a
 transform ESP
 encapsulation-mode Tunnel //tunnel mode (default)
 esp authentication-algorithm MD5
 esp encryption-algorithm DES//DES
ipsec policy policy1 1 isakmp //IPsec policy created by IKE
 security acl 3001
 proposal a
 ike-peer b
\t
interface GigabitEthernet0/0/2
\tip address 192.0.2.1 255.255.255.0
   ipsec policy policy1 //applied to the interface toward FW_B
ip route-static 10.2.2.0 255.255.255.0 192.0.2.2 //route to PC_B's network, next hop toward FW_B
";

/// FW_B's column, the mirror.
const FW_B: &str = "\
ike proposal 10
Ike Peer a
   ike-proposal 10
   undo version 2//IKEv1
   exchange-mode main//main mode (default)
   remote-address 192.0.2.1
   pre-shared-key tiandihui2
acl number 3000
 rule 5 permit ip source 10.2.2.0 0.0.0.255 destination 10.1.1.0 0.0.0.255 //mirror of FW_A's acl 3001
ipsec proposal b
 transform esp
 encapsulation-mode tunnel
 esp authentication-algorithm md5
 esp encryption-algorithm des
IPSEC POLICY policy1 1 ISAKMP
 security acl 3000
 proposal b
 ike-peer a
interface GigabitEthernet0/0/2
 ip address 192.0.2.2 255.255.255.0
 ipsec policy policy1
ip route-static 10.1.1.0 255.255.255.0 192.0.2.1//route to PC_A's network
";

#[test]
fn the_articles_fw_a_is_examples_fw_a() {
    assert_eq!(article(FW_A), example("fw_a.cfg"));
}

#[test]
fn the_articles_fw_b_is_examples_fw_b() {
    assert_eq!(article(FW_B), example("fw_b.cfg"));
}

/// Inside a free value `//` starts a note only after a blank: a key, a name or an ID that
/// contains `//` is kept whole, and a note after it is still one.
#[test]
fn a_key_containing_slashes_is_kept_whole() {
    let text = FW_A.replace("pre-shared-key tiandihui2 //the key", "pre-shared-key tian//dihui2 //the key");
    let config = article(&text);
    assert_eq!(config.ike_peers["b"].pre_shared_key.as_ref().map(|k| k.expose()), Some("tian//dihui2"));
    let text = FW_A.replace(
        " pre-shared-key tiandihui2",
        " local-id-type fqdn//FQDN\n local-id fw//a //name\n pre-shared-key tiandihui2",
    );
    let config = article(&text);
    assert_eq!(config.ike_peers["b"].local_id.as_deref(), Some("fw//a"));
}

/// What the issue quoted as refused before: each line alone.
#[test]
fn the_quoted_lines_parse() {
    let peer = "ike peer b\n remote-address 192.0.2.2\n pre-shared-key 0123456789abcdef\n";
    for line in [" undo version 2 //IKEv1", " exchange-mode main//main mode (default)"] {
        let checked = check("t.cfg", &format!("{peer}{line}\n"), None);
        assert!(!checked.has_errors(), "{line}: {:#?}", checked.diagnostics);
    }
    let checked = check("t.cfg", "ip route-static 10.2.2.0 24 192.0.2.2//to FW_B\n", None);
    assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
    let route = &checked.config.unwrap().routes[0];
    assert_eq!((route.prefix_len, route.next_hop.to_string()), (24, "192.0.2.2".to_owned()));
}
