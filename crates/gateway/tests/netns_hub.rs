//! A hub with a policy template and three branches the hub's configuration does not list
//! (root only; CI runs as root). Issue 5's hub scenario.
//!
//! ```text
//!                                   ┌ 192.0.2.11 BR1 10.2.1.1 ── 10.2.1.2 PC1
//!  PC_H 10.1.1.2 ── 10.1.1.1 HUB 192.0.2.1 ── bridge ┼ 192.0.2.12 BR2 10.2.2.1 ── 10.2.2.2 PC2
//!                                   └ 192.0.2.13 BR3 10.2.3.1 ── 10.2.3.2 PC3
//! ```
//!
//! The hub runs `ipsec policy hub 10 isakmp template branches` with an `ike peer` that has no
//! `remote-address`; each branch runs an ordinary isakmp policy toward 192.0.2.1. Each
//! branch's PC pings the hub's PC (the branch triggers; at most the first ping is lost); the
//! hub's `display ike sa --json` then shows three peers, its routing table a route into its
//! TUN for each branch's network (added when the SAs came up), a capture of the hub's public
//! link no clear ICMP, and the hub never raised an acquire (a template only responds). After
//! `reset ipsec sa` on the hub the routes are gone, and a branch's next ping brings its
//! tunnel back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ip, is_root, Cleanup};

const HUB: &str = "\
ike proposal 10
ike peer branches
 ike-proposal 10
 undo version 2
 pre-shared-key hub-and-spoke-2
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

/// Branch `n`'s configuration; `public` is the Linux name of its public interface.
fn branch_config(n: u8, public: &str) -> String {
    format!(
        "\
ike proposal 10
ike peer hub
 ike-proposal 10
 undo version 2
 remote-address 192.0.2.1
 pre-shared-key hub-and-spoke-2
acl number 3001
 rule 5 permit ip source 10.2.{n}.0 0.0.0.255 destination 10.1.1.0 0.0.0.255
ipsec proposal a
ipsec policy branch 1 isakmp
 security acl 3001
 proposal a
 ike-peer hub
interface {public}
 ip address 192.0.2.1{n} 255.255.255.0
 ipsec policy branch
"
    )
}

fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip").args(["netns", "exec", ns]).args(args).output().expect("ip netns exec runs")
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `keysteward ARGS --control CONTROL` in namespace `ns` and returns its output.
fn keysteward(ns: &str, args: &[&str], control: &Path) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward")])
        .args(args)
        .arg("--control")
        .arg(control)
        .output()
        .expect("keysteward runs");
    text(&out)
}

/// Links `a` in `ns_a` (address `addr_a`, if any) and `b` in `ns_b` (address `addr_b`).
fn link(ns_a: &str, a: &str, addr_a: Option<&str>, ns_b: &str, b: &str, addr_b: &str) {
    ip(&["link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b]);
    if let Some(addr) = addr_a {
        ip(&["-n", ns_a, "addr", "add", addr, "dev", a]);
    }
    ip(&["-n", ns_a, "link", "set", a, "up"]);
    ip(&["-n", ns_b, "addr", "add", addr_b, "dev", b]);
    ip(&["-n", ns_b, "link", "set", b, "up"]);
}

/// Starts a daemon in `ns` with `config`, logging to `name.log`; waits for its control socket.
fn start(cleanup: &mut Cleanup, dir: &Path, ns: &str, name: &str, config: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(&cfg, config).unwrap();
    let control = dir.join(format!("{name}.sock"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward"), "run", "--config"])
        .arg(&cfg)
        .arg("--control")
        .arg(&control)
        .args(["--log-level", "debug"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon starts");
    cleanup.children.push(child);
    let start = Instant::now();
    while !control.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(control.exists(), "daemon {name} in {ns} did not start");
    control
}

/// Pings the hub's PC from `ns` five times; returns the number of replies and the output.
fn ping_hub(ns: &str) -> (usize, String) {
    let out = text(&in_ns(ns, &["ping", "-c", "5", "-i", "0.2", "-W", "2", "10.1.1.2"]));
    (out.matches("bytes from 10.1.1.2").count(), out)
}

fn hub_routes(ns: &str) -> String {
    text(&in_ns(ns, &["ip", "route", "show", "dev", "ks0"]))
}

#[test]
fn netns_hub_answers_three_branches_it_does_not_know() {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces (CI runs it as root)");
        return;
    }
    let tag = format!("ks{}h", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-hub-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cleanup = Cleanup { namespaces: Vec::new(), children: Vec::new(), dir: dir.clone() };
    let ns = |suffix: &str| format!("{tag}{suffix}");
    let (pc_h, hub, switch) = (ns("ph"), ns("fh"), ns("sw"));
    let branches: Vec<(u8, String, String)> =
        (1..=3).map(|n| (n, ns(&format!("f{n}")), ns(&format!("p{n}")))).collect();
    let mut all = vec![pc_h.clone(), hub.clone(), switch.clone()];
    all.extend(branches.iter().flat_map(|(_, fw, pc)| [fw.clone(), pc.clone()]));
    for ns in &all {
        ip(&["netns", "add", ns]);
        cleanup.namespaces.push(ns.clone());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    // The public network: a bridge in its own namespace, the hub and the branches on it.
    ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &switch, "link", "set", "br0", "up"]);
    let hub_public = ns("hu");
    link(&switch, &ns("s0"), None, &hub, &hub_public, "192.0.2.1/24");
    ip(&["-n", &switch, "link", "set", &ns("s0"), "master", "br0"]);
    link(&pc_h, &ns("hp"), Some("10.1.1.2/24"), &hub, &ns("hi"), "10.1.1.1/24");
    ip(&["-n", &pc_h, "route", "add", "default", "via", "10.1.1.1"]);
    for (n, fw, pc) in &branches {
        let port = ns(&format!("s{n}"));
        link(&switch, &port, None, fw, &ns(&format!("u{n}")), &format!("192.0.2.1{n}/24"));
        ip(&["-n", &switch, "link", "set", &port, "master", "br0"]);
        link(
            pc,
            &ns(&format!("c{n}")),
            Some(&format!("10.2.{n}.2/24")),
            fw,
            &ns(&format!("i{n}")),
            &format!("10.2.{n}.1/24"),
        );
        ip(&["-n", pc, "route", "add", "default", "via", &format!("10.2.{n}.1")]);
    }
    for fw in std::iter::once(&hub).chain(branches.iter().map(|(_, fw, _)| fw)) {
        let out = in_ns(fw, &["sysctl", "-w", "net.ipv4.ip_forward=1"]);
        assert!(out.status.success(), "ip_forward in {fw}: {}", text(&out));
    }

    let hub_control = start(&mut cleanup, &dir, &hub, "hub", &HUB.replace("HUB_PUBLIC", &hub_public));
    let branch_controls: Vec<PathBuf> = branches
        .iter()
        .map(|(n, fw, _)| {
            let config = branch_config(*n, &ns(&format!("u{n}")));
            start(&mut cleanup, &dir, fw, &format!("branch{n}"), &config)
        })
        .collect();
    let logs = || {
        let mut all = String::new();
        for name in ["hub", "branch1", "branch2", "branch3"] {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            all.push_str(&format!("--- {name} log:\n{log}\n"));
        }
        all
    };

    // A capture of the hub's public link.
    let capture = dir.join("public.pcap");
    let capture_child = Command::new("ip")
        .args(["netns", "exec", &hub, "tshark", "-q", "-i", &hub_public, "-w"])
        .arg(&capture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark starts");
    let capture_pid = capture_child.id();
    cleanup.children.push(capture_child);
    let start_capture = Instant::now();
    while !capture.exists() && start_capture.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Routes into the hub's TUN exist only for negotiated flows: none yet.
    assert_eq!(hub_routes(&hub).trim(), "", "no branch route before any branch negotiated");

    // The three branches ping at the same time.
    let pings: Vec<std::thread::JoinHandle<(usize, String)>> = branches
        .iter()
        .map(|(_, _, pc)| {
            let pc = pc.clone();
            std::thread::spawn(move || ping_hub(&pc))
        })
        .collect();
    for (handle, (n, _, _)) in pings.into_iter().zip(&branches) {
        let (replies, out) = handle.join().unwrap();
        assert!(replies >= 4, "branch {n}: {replies} of 5 pings answered\n{out}\n{}", logs());
    }

    // Three peers on the hub, phase 1 and phase 2, none of them in its configuration.
    let json = keysteward(&hub, &["display", "ike", "sa", "--json"], &hub_control);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let peers = |phase: &str| {
        let mut peers: Vec<String> = value["sas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|sa| sa["phase"] == phase)
            .filter_map(|sa| sa["peer"].as_str().map(str::to_owned))
            .collect();
        peers.sort();
        peers.dedup();
        peers
    };
    let expected = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    assert_eq!(peers("v1:1"), expected, "{json}");
    assert_eq!(peers("v1:2"), expected, "{json}");

    // One route into the TUN per branch network, added when its SAs came up.
    let routes = hub_routes(&hub);
    for n in 1..=3 {
        assert!(routes.contains(&format!("10.2.{n}.0/24")), "route to branch {n}: {routes}");
    }
    let stats = keysteward(&hub, &["display", "ipsec", "statistics", "--json"], &hub_control);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap_or_else(|e| panic!("{e}: {stats}"));
    assert_eq!(stats["acquires"], 0, "a template never initiates: {stats}");
    assert!(stats["sealed"].as_u64().unwrap_or(0) >= 12, "replies sealed on the hub: {stats}");
    assert!(stats["opened"].as_u64().unwrap_or(0) >= 12, "requests opened on the hub: {stats}");

    // No clear ICMP on the hub's public link; ESP from and to every branch.
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill").args(["-INT", &capture_pid.to_string()]).status();
    if let Some(position) = cleanup.children.iter().position(|c| c.id() == capture_pid) {
        let _ = cleanup.children.remove(position).wait();
    }
    let count = |filter: &str| {
        let out = Command::new("tshark").arg("-r").arg(&capture).args(["-Y", filter]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert_eq!(count("icmp"), 0, "clear ICMP on the hub's public link ({} frames)", count("frame"));
    for n in 1..=3 {
        let esp = count(&format!("esp && ip.addr == 192.0.2.1{n}"));
        assert!(esp >= 8, "{esp} ESP packets with branch {n}");
    }

    // The SAs go: so do the routes. The branch then brings its tunnel back by itself.
    let reset = keysteward(&hub, &["reset", "ipsec", "sa"], &hub_control);
    assert!(reset.contains("3 IPsec SA pair(s) reset"), "{reset}");
    let gone = Instant::now();
    while !hub_routes(&hub).trim().is_empty() && gone.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(hub_routes(&hub).trim(), "", "routes removed with the SAs\n{}", logs());
    let (replies, out) = ping_hub(&branches[0].2);
    assert!(replies >= 4, "branch 1 after reset: {replies} of 5\n{out}\n{}", logs());
    assert!(hub_routes(&hub).contains("10.2.1.0/24"), "route back with the new SAs");
    let _ = &branch_controls;

    drop(cleanup);
    let listed = text(&Command::new("ip").args(["netns", "list"]).output().unwrap());
    let ours = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| all.iter().any(|a| a == n))
        .count();
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}
