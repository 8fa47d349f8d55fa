//! Issue 15, deny rules in an IPsec policy's ACL, between two keysteward gateways in the
//! reference topology (root only). FW_A's ACL 3001 is the reference's with a deny rule in
//! front (`rule 1 deny udp … destination-port eq 9999`, then `rule 5 permit ip …`); FW_B's is
//! its mirror. On USG a deny rule means "not protected by this policy": UDP to PC_B's port
//! 9999 and its answer leave in clear both ways, are not negotiated, and a ping between the
//! same sites goes through ESP. A capture of FW_A's public link shows it: UDP port 9999 in
//! clear both ways, the ping only as ESP. `check` says nothing about the deny rules.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{in_ns, keysteward_stdout, output_text, ready, reference_topology, skip_unless_root, Cleanup};

const PERMIT_A: &str = " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255";
const PERMIT_B: &str = " rule 5 permit ip source 10.2.2.0 0.0.0.255 destination 10.1.1.0 0.0.0.255";
const DENY_A: &str =
    " rule 1 deny udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 9999\n";
const DENY_B: &str =
    " rule 1 deny udp source 10.2.2.0 0.0.0.255 source-port eq 9999 destination 10.1.1.0 0.0.0.255\n";

#[test]
fn netns_acl_deny_rule_leaves_in_clear_and_the_rest_is_encrypted() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}dn", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-acl-deny-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let net = reference_topology(&mut cleanup, &tag);
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let read = |name: &str, permit: &str, deny: &str| {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        assert!(text.contains(permit), "{name} has `{permit}`");
        text.replace(permit, &format!("{deny}{permit}"))
    };
    let (config_a, config_b) = (read("fw_a.cfg", PERMIT_A, DENY_A), read("fw_b.cfg", PERMIT_B, DENY_B));
    for (name, config) in [("fw_a.cfg", &config_a), ("fw_b.cfg", &config_b)] {
        let checked = vrp::check(name, config, None);
        let deny = checked.diagnostics.iter().map(ToString::to_string).find(|d| d.contains("deny"));
        assert_eq!(deny, None, "check says nothing about a deny rule");
    }
    let (control_a, _) = common::start_reference_daemons(
        &mut cleanup,
        &dir,
        &net,
        &config_a,
        &config_b,
        Duration::from_secs(10),
    );
    let logs = || {
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
        format!("FW_A log:\n{}\nFW_B log:\n{}", read("a.log"), read("b.log"))
    };

    // PC_B echoes every datagram on 9999 back to its sender.
    let echo = Command::new("ip")
        .args(["netns", "exec", &net.pc_b, "python3", "-c"])
        .arg(
            "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('10.2.2.2', 9999))\nwhile True:\n    data, peer = s.recvfrom(65535)\n    \
             s.sendto(data, peer)\n",
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 echoes");
    cleanup.children.push(echo);
    std::thread::sleep(Duration::from_millis(500));

    // A ping starts the negotiation; the tunnel comes up.
    let _ = common::ping(&net.pc_a, 1, "0.2", "1", "10.2.2.2");
    let up = common::wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        ready(&keysteward_stdout(&net.fw_a, &["display", "ike", "sa", "--json"], &control_a), "v1:2")
    });
    assert!(up, "no IPsec SA\n{}", logs());

    let pcap = dir.join("public.pcap");
    let capture =
        common::start_capture(&mut cleanup, &net.fw_a, &net.public_a, &pcap, Duration::from_secs(10));
    assert_eq!(exchange(&net.pc_a, 5555, 9999, 100), Some(100), "the denied flow, both ways\n{}", logs());
    let (replies, text) = common::ping(&net.pc_a, 3, "0.2", "1", "10.2.2.2");
    assert_eq!(replies, 3, "the permitted flow: {text}\n{}", logs());
    std::thread::sleep(Duration::from_millis(300));
    common::stop_capture(&mut cleanup, capture);

    let frames = |filter: &str| common::count_frames(&pcap, filter);
    assert_eq!(frames("udp.dstport == 9999 && ip.dst == 10.2.2.2"), 1, "UDP to 9999 left FW_A in clear");
    assert_eq!(frames("udp.srcport == 9999 && ip.src == 10.2.2.2"), 1, "its answer came in clear");
    assert_eq!(frames("icmp"), 0, "no ping in clear");
    assert!(frames("esp") >= 6, "the pings went through ESP both ways: {} ESP frames", frames("esp"));
    // Not negotiated: one pair of SAs, for the permit rule.
    let sa = keysteward_stdout(&net.fw_a, &["display", "ipsec", "sa", "brief"], &control_a);
    assert!(!sa.contains("9999"), "{sa}");
    let stats: serde_json::Value = serde_json::from_str(&keysteward_stdout(
        &net.fw_a,
        &["display", "ipsec", "statistics", "--json"],
        &control_a,
    ))
    .unwrap();
    assert_eq!(stats["quick_mode"]["established"].as_u64(), Some(1), "{stats}");
    drop(cleanup);
}

/// From PC_A (`ns`, UDP port `from`) to PC_B's port `to`, `size` bytes; the size of the echo
/// that came back within 3 s, if one did.
fn exchange(ns: &str, from: u16, to: u16, size: usize) -> Option<usize> {
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('10.1.1.2', {from}))\ns.settimeout(3)\ns.sendto(b'x' * {size}, ('10.2.2.2', {to}))\n\
         try:\n    print(len(s.recv(65535)))\nexcept socket.timeout:\n    print('none')\n"
    );
    let out = in_ns(ns, &["python3", "-c", &script]);
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
