//! Issue 13, "never block": one slow path must not stall the daemon (root only; CI runs as
//! root).
//!
//! ```text
//!   HUB 192.0.2.1 ── tbf 8 kbit/s ── 192.0.2.9 attacker, spoofing 198.18.0.0/15
//! ```
//!
//! The hub answers main mode from any address (a template peer). An attacker spoofs MM1s
//! from thousands of addresses routed back through a link that drains at 8 kbit/s, so the
//! hub's MM2s pile up in the queue and its UDP 500 socket's send buffer fills. The daemon
//! used to await `send_to` there: the IKE loop, which also serves every other peer and the
//! control socket, stopped for minutes (until half the buffer had drained). Now a send that
//! would block is dropped and counted: the control socket answers at once and `display
//! ipsec statistics` shows the drops.
//!
//! The data path alike: with the tunnel of the reference topology up, FW_A's public link is
//! slowed to 8 kbit/s and PC_A floods PC_B, so FW_A's raw ESP socket's send buffer fills.
//! The data-plane thread used to retry that send until room came (minutes, here), and read
//! nothing meanwhile: PC_B's datagrams to PC_A, which need only FW_A's inbound path, were
//! lost. Now what does not fit is dropped and counted, and the inbound path keeps going.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
#[path = "common/flood.rs"]
mod flood;
use common::{
    in_ns, ip, output_text, ping, reference_topology, skip_unless_root, spawn_keysteward,
    start_reference_daemons, veth, wait_for_socket, wait_until, Cleanup,
};

const HUB: &str = "\
ike proposal 10
ike peer branches
 ike-proposal 10
 undo version 2
 pre-shared-key never-block-13
acl number 3002
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.0.0 0.0.255.255
ipsec proposal a
ipsec policy-template branches 1
 security acl 3002
 proposal a
 ike-peer branches
ipsec policy hub 10 isakmp template branches
interface HUB_PUBLIC
 ip address 192.0.2.1 255.255.255.0
 ipsec policy hub
";

/// A branch of that hub: its MM1 is what the attacker replays with fresh cookies.
const BRANCH: &str = "\
ike proposal 10
ike peer hub
 ike-proposal 10
 undo version 2
 remote-address 192.0.2.1
 pre-shared-key never-block-13
acl number 3001
 rule 5 permit ip source 10.2.1.0 0.0.0.255 destination 10.1.1.0 0.0.0.255
ipsec proposal a
ipsec policy branch 1 isakmp
 security acl 3001
 proposal a
 ike-peer hub
interface eth0
 ip address 192.0.2.11 255.255.255.0
 ipsec policy branch
";

/// `keysteward display ipsec statistics --json` in `ns`, given at most 5 s: `None` when the
/// daemon did not answer in time (its loop is stalled).
fn statistics(ns: &str, control: &Path) -> Option<serde_json::Value> {
    let out = Command::new("timeout")
        .args(["5", "ip", "netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward")])
        .args(["display", "ipsec", "statistics", "--json", "--control"])
        .arg(control)
        .output()
        .expect("keysteward runs");
    out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("statistics are JSON"))
}

/// A raw sender opened in namespace `ns` (a thread enters it; the socket stays there).
fn raw_sender_in(ns: &str) -> socket2::Socket {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let namespace = std::fs::File::open(&path).expect("the attacker's namespace");
        nix::sched::setns(namespace.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        flood::raw_sender().expect("raw socket (root)")
    })
    .join()
    .expect("the sender thread")
}

/// Slows everything `ns` sends on `dev` to 8 kbit/s, queued (up to 100 MB) rather than
/// dropped: each datagram keeps its share of its socket's send buffer until it leaves.
fn slow_link(ns: &str, dev: &str) {
    let tc = Command::new("tc")
        .args(["-n", ns, "qdisc", "add", "dev", dev, "root", "tbf"])
        .args(["rate", "8kbit", "burst", "1600", "limit", "100mb"])
        .output()
        .expect("tc runs");
    assert!(tc.status.success(), "tc: {}", output_text(&tc));
}

#[test]
fn netns_a_full_ike_send_buffer_does_not_stall_the_daemon() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}nb", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-never-block-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let (hub, attacker) = (format!("{tag}h"), format!("{tag}x"));
    cleanup.add_namespaces(&[hub.clone(), attacker.clone()]);
    let hub_public = format!("{tag}hx");
    veth(&attacker, &format!("{tag}xh"), Some("192.0.2.9/24"), &hub, &hub_public, "192.0.2.1/24");
    ip(&["-n", &hub, "route", "add", "198.18.0.0/15", "via", "192.0.2.9"]);
    // The slow path: everything the hub sends on its public link queues there.
    slow_link(&hub, &hub_public);

    let cfg = dir.join("hub.cfg");
    std::fs::write(&cfg, HUB.replace("HUB_PUBLIC", &hub_public)).unwrap();
    let control = dir.join("hub.sock");
    spawn_keysteward(&mut cleanup, &hub, &cfg, &control, &dir.join("hub.log"), &["--log-level", "warn"]);
    assert!(wait_for_socket(&control, Duration::from_secs(10)), "the hub did not start");
    let before = statistics(&hub, &control).expect("the hub answers before the flood");
    assert_eq!(before["ike_send_buffer_full"], 0, "{before}");

    // 4,000 MM1s from as many spoofed addresses: the hub answers each with an MM2 (a few
    // hundred bytes; about 280 fill the default 208 KiB buffer), which the link holds.
    let mm1 = flood::mm1(BRANCH);
    let sender = raw_sender_in(&attacker);
    let hub_address = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 500);
    let mut variety = flood::Variety::new(u64::from(std::process::id()));
    for n in 0..4000u32 {
        let from = SocketAddrV4::new(variety.address_in(Ipv4Addr::new(198, 18, 0, 0), 15), 500);
        flood::send(&sender, &flood::spoofed(&mm1, variety.next(), from, hub_address), hub_address)
            .expect("spoofed MM1 sent");
        if n % 200 == 199 {
            // Room for the hub's receive buffer to be read.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // Every request must be answered within 5 s (the old daemon took about 24 s here).
    let mut last = serde_json::Value::Null;
    let mut stalled = false;
    let counted = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
        match statistics(&hub, &control) {
            Some(s) => last = s,
            None => stalled = true,
        }
        stalled || last["ike_send_buffer_full"].as_u64().unwrap_or(0) > 0
    });
    let log = std::fs::read_to_string(dir.join("hub.log")).unwrap_or_default();
    assert!(!stalled, "the hub's control socket did not answer within 5 s: its IKE loop is stalled\n{log}");
    assert!(counted, "no IKE datagram counted as dropped on a full send buffer: {last}\n{log}");
    eprintln!("statistics after the flood: {last}");
    // Still answering while the link stays full.
    let again = statistics(&hub, &control).expect("the hub answers while its send buffer is full");
    assert!(again["ike_send_buffer_full"].as_u64() >= last["ike_send_buffer_full"].as_u64(), "{again}");
    let text = output_text(&common::in_ns(
        &hub,
        &[
            env!("CARGO_BIN_EXE_keysteward"),
            "display",
            "ipsec",
            "statistics",
            "--control",
            control.to_str().unwrap(),
        ],
    ));
    assert!(text.contains("IKE datagrams dropped, send buffer full: "), "{text}");
}

/// A Python one-liner run in `ns`: UDP datagrams of `size` bytes, `count` of them, to
/// `target` port `port`, `gap` seconds apart.
fn udp_sender(ns: &str, target: &str, port: u16, count: u32, size: usize, gap: f64) -> std::process::Output {
    let script = format!(
        "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range({count}):\n    s.sendto(b'x' * {size}, ('{target}', {port}))\n    time.sleep({gap})\n"
    );
    in_ns(ns, &["python3", "-c", &script])
}

#[test]
fn netns_a_full_esp_send_buffer_does_not_stop_the_inbound_path() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}ne", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-never-block-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let read = |name: &str| std::fs::read_to_string(examples.join(name)).unwrap();
    let (control_a, _) = start_reference_daemons(
        &mut cleanup,
        &dir,
        &net,
        &read("fw_a.cfg"),
        &read("fw_b.cfg"),
        Duration::from_secs(10),
    );
    let logs = || std::fs::read_to_string(dir.join("a.log")).unwrap_or_default();
    let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 3, "the tunnel did not come up: {text}\n{}", logs());

    slow_link(&net.fw_a, &net.public_a);
    // PC_A listens for PC_B's datagrams for 8 s, and prints how many came.
    let listener = std::process::Command::new("ip")
        .args(["netns", "exec", &net.pc_a, "python3", "-c"])
        .arg(
            "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             s.bind(('10.1.1.2', 7777))\ns.settimeout(0.2)\nn = 0\nend = time.time() + 8\n\
             while time.time() < end:\n    try:\n        s.recv(2048)\n        n += 1\n    \
             except socket.timeout:\n        pass\nprint(n)\n",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 listens");
    std::thread::sleep(Duration::from_millis(500));
    // The flood PC_A sends fills FW_A's raw ESP socket (its buffer is up to 8 MiB, and
    // drains at 8 kbit/s)...
    let flood = udp_sender(&net.pc_a, "10.2.2.2", 9, 10_000, 1200, 0.0);
    assert!(flood.status.success(), "{}", output_text(&flood));
    // ... while PC_B's datagrams to PC_A need only FW_A's inbound path.
    let inbound = udp_sender(&net.pc_b, "10.1.1.2", 7777, 20, 100, 0.1);
    assert!(inbound.status.success(), "{}", output_text(&inbound));
    let heard = listener.wait_with_output().expect("the listener ends");
    let heard: u32 = String::from_utf8_lossy(&heard.stdout).trim().parse().unwrap_or(0);
    let statistics = statistics(&net.fw_a, &control_a).expect("FW_A answers");
    assert!(
        heard >= 15,
        "PC_A heard {heard} of PC_B's 20 datagrams during the flood: {statistics}\n{}",
        logs()
    );
    assert!(
        statistics["esp_send_buffer_full"].as_u64().unwrap_or(0) > 0,
        "no ESP datagram counted as dropped on a full send buffer: {statistics}\n{}",
        output_text(&in_ns(&net.fw_a, &["tc", "-s", "qdisc", "show", "dev", &net.public_a]))
    );
}
