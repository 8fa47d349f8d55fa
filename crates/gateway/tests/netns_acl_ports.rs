//! Issue 15, advanced ACLs with protocol and ports, between two keysteward gateways in the
//! reference topology (root only): the article's FW_A and FW_B with their ACLs narrowed to
//! L2TP — FW_A `rule 5 permit udp … destination-port eq 1701`, FW_B the mirror with
//! `source-port eq 1701` — and the article's `ip route-static` toward each other, which the
//! daemons install (a rule for UDP does not supersede them): the clear path.
//!
//! PC_B echoes every UDP datagram back. Asserted as PC_A sees it: a datagram from port 1701 to
//! PC_B's 1701 comes back, and so does one of 3,000 bytes, which both PCs send in fragments
//! (the later ones carry no ports): each gateway reassembles them and seals the datagram whole,
//! so FW_A's data plane sealed one ESP packet for it and opened one. A datagram to PC_B's port 9999 comes back
//! too, and a ping is answered, both in clear: FW_A's SA counted none of them.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{in_ns, keysteward_stdout, output_text, ready, reference_topology, skip_unless_root, Cleanup};

const L2TP_A: &str =
    " rule 5 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 1701";
const L2TP_B: &str =
    " rule 5 permit udp source 10.2.2.0 0.0.0.255 source-port eq 1701 destination 10.1.1.0 0.0.0.255";

#[test]
fn netns_acl_udp_1701_goes_through_esp_and_the_rest_in_clear() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}ap", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-acl-ports-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let net = reference_topology(&mut cleanup, &tag);
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let read = |name: &str, rule: &str, l2tp: &str| {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        assert!(text.contains(rule), "{name} has `{rule}`");
        text.replace(rule, l2tp)
    };
    let config_a = read(
        "fw_a.cfg",
        " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
        L2TP_A,
    );
    let config_b = read(
        "fw_b.cfg",
        " rule 5 permit ip source 10.2.2.0 0.0.0.255 destination 10.1.1.0 0.0.0.255",
        L2TP_B,
    );
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

    // PC_B echoes every datagram on 1701 and 9999 back to its sender.
    let echo = Command::new("ip")
        .args(["netns", "exec", &net.pc_b, "python3", "-c"])
        .arg(
            "import socket, select\nsocks = []\nfor port in (1701, 9999):\n    \
             s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    s.bind(('10.2.2.2', port))\n    \
             socks.append(s)\nwhile True:\n    for s in select.select(socks, [], [])[0]:\n        \
             data, peer = s.recvfrom(65535)\n        s.sendto(data, peer)\n",
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 echoes");
    cleanup.children.push(echo);
    std::thread::sleep(Duration::from_millis(500));

    // The first datagram starts the negotiation (it waits in FW_A's queue); once the SAs are
    // up, the exchanges count.
    let first = exchange(&net.pc_a, 1701, 1701, 100);
    let up = common::wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        ready(&keysteward_stdout(&net.fw_a, &["display", "ike", "sa", "--json"], &control_a), "v1:2")
    });
    assert!(up, "no IPsec SA: first exchange {first:?}\n{}", logs());
    let sa = keysteward_stdout(&net.fw_a, &["display", "ipsec", "sa"], &control_a);
    assert!(sa.contains("10.2.2.0/255.255.255.0 17/1701"), "{sa}");

    let counts = || {
        let stats: serde_json::Value = serde_json::from_str(&keysteward_stdout(
            &net.fw_a,
            &["display", "ipsec", "statistics", "--json"],
            &control_a,
        ))
        .unwrap_or_default();
        (stats["sealed"].as_u64().unwrap_or(0), stats["opened"].as_u64().unwrap_or(0))
    };
    let before = counts();
    assert_eq!(exchange(&net.pc_a, 1701, 1701, 100), Some(100), "L2TP's port, both ways\n{}", logs());
    let small = counts();
    assert_eq!(exchange(&net.pc_a, 1701, 1701, 3000), Some(3000), "in fragments both ways\n{}", logs());
    let big = counts();
    assert_eq!(exchange(&net.pc_a, 5555, 9999, 100), Some(100), "another port, in clear\n{}", logs());
    let (replies, text) = common::ping(&net.pc_a, 2, "0.2", "1", "10.2.2.2");
    assert_eq!(replies, 2, "ICMP in clear: {text}\n{}", logs());
    let after = counts();

    assert_eq!((small.0 - before.0, small.1 - before.1), (1, 1), "{before:?} {small:?}");
    let (sealed, opened) = (big.0 - small.0, big.1 - small.1);
    assert_eq!((sealed, opened), (1, 1), "the datagram through the SA whole, both ways");
    assert_eq!(after, big, "port 9999 and ICMP went into no SA");
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
