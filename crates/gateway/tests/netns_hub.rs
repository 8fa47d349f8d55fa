//! A hub with a policy template and three branches the hub's configuration does not list
//! (root only; CI runs as root). Issue 5's hub scenario.
//!
//! ```text
//!                                   ┌ 192.0.2.11 BR1 10.2.1.1 ── 10.2.1.2 PC1
//!  PC_H 10.1.1.2 ── 10.1.1.1 HUB 192.0.2.1 ── bridge ┼ 192.0.2.12 BR2 10.2.2.1 ── 10.2.2.2 PC2
//!                                   └ 192.0.2.13 BR3 10.2.3.1 ── 10.2.3.2 PC3
//! ```
//!
//! The hub and the branches run the unchanged `examples/hub/` files: the hub runs `ipsec
//! policy hub 10 isakmp template branches` with an `ike peer` that has no `remote-address`;
//! each branch runs an ordinary isakmp policy toward 192.0.2.1. Each
//! branch's PC pings the hub's PC (the branch triggers; at most the first ping is lost); the
//! hub's `display ike sa --json` then shows three peers, its routing table a route into its
//! TUN for each branch's network (added when the SAs came up), a capture of the hub's public
//! link no clear ICMP, and the hub never raised an acquire (a template only responds). After
//! `reset ipsec sa` on the hub the routes are gone, and a branch's next ping brings its
//! tunnel back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::{
    count_frames, in_ns, ip, keysteward, listed_namespaces, output_text, skip_unless_root, spawn_keysteward,
    start_capture, stop_capture, veth, wait_for_socket, Cleanup,
};

/// The hub example and its branches (`examples/hub/`), run unchanged: their public interface,
/// `GigabitEthernet0/0/1`, is mapped to the namespace's veth end with `--interface-map`.
fn example(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hub").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Starts a daemon in `ns` with `config`, its `GigabitEthernet0/0/1` mapped to `public`,
/// logging to `name.log`; waits for its control socket.
fn start(cleanup: &mut Cleanup, dir: &Path, ns: &str, name: &str, config: &str, public: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(&cfg, config).unwrap();
    let control = dir.join(format!("{name}.sock"));
    let log = dir.join(format!("{name}.log"));
    let map = format!("GigabitEthernet0/0/1={public}");
    spawn_keysteward(cleanup, ns, &cfg, &control, &log, &["--log-level", "debug", "--interface-map", &map]);
    assert!(wait_for_socket(&control, Duration::from_secs(10)), "daemon {name} in {ns} did not start");
    control
}

/// Pings the hub's PC from `ns` five times; returns the number of replies and the output.
fn ping_hub(ns: &str) -> (usize, String) {
    common::ping(ns, 5, "0.2", "2", "10.1.1.2")
}

fn hub_routes(ns: &str) -> String {
    output_text(&in_ns(ns, &["ip", "route", "show", "dev", "ks0"]))
}

/// The namespaces of a test run (their names start with `tag`).
struct Topology {
    /// The hub's namespace.
    hub: String,
    /// The hub's public interface (mapped to `GigabitEthernet0/0/1`).
    hub_public: String,
    /// Each branch: its number, its gateway's namespace and its PC's namespace.
    branches: Vec<(u8, String, String)>,
    /// Every namespace made, for the check that none is left.
    all: Vec<String>,
}

/// Builds the topology of the module doc with `count` branches, the namespaces registered
/// with `cleanup`; branch `n`'s public interface is `{tag}u{n}`.
fn topology(cleanup: &mut Cleanup, tag: &str, count: u8) -> Topology {
    let ns = |suffix: &str| format!("{tag}{suffix}");
    let (pc_h, hub, switch) = (ns("ph"), ns("fh"), ns("sw"));
    let branches: Vec<(u8, String, String)> =
        (1..=count).map(|n| (n, ns(&format!("f{n}")), ns(&format!("p{n}")))).collect();
    let mut all = vec![pc_h.clone(), hub.clone(), switch.clone()];
    all.extend(branches.iter().flat_map(|(_, fw, pc)| [fw.clone(), pc.clone()]));
    cleanup.add_namespaces(&all);

    // The public network: a bridge in its own namespace, the hub and the branches on it.
    ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &switch, "link", "set", "br0", "up"]);
    let hub_public = ns("hu");
    veth(&switch, &ns("s0"), None, &hub, &hub_public, "192.0.2.1/24");
    ip(&["-n", &switch, "link", "set", &ns("s0"), "master", "br0"]);
    veth(&pc_h, &ns("hp"), Some("10.1.1.2/24"), &hub, &ns("hi"), "10.1.1.1/24");
    ip(&["-n", &pc_h, "route", "add", "default", "via", "10.1.1.1"]);
    for (n, fw, pc) in &branches {
        let port = ns(&format!("s{n}"));
        veth(&switch, &port, None, fw, &ns(&format!("u{n}")), &format!("192.0.2.1{n}/24"));
        ip(&["-n", &switch, "link", "set", &port, "master", "br0"]);
        veth(
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
        assert!(out.status.success(), "ip_forward in {fw}: {}", output_text(&out));
    }
    Topology { hub, hub_public, branches, all }
}

#[test]
fn netns_hub_answers_three_branches_it_does_not_know() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}h", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-hub-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let ns = |suffix: &str| format!("{tag}{suffix}");
    let Topology { hub, hub_public, branches, all } = topology(&mut cleanup, &tag, 3);

    let hub_control = start(&mut cleanup, &dir, &hub, "hub", &example("hub.cfg"), &hub_public);
    let branch_controls: Vec<PathBuf> = branches
        .iter()
        .map(|(n, fw, _)| {
            let config = example(&format!("branch{n}.cfg"));
            start(&mut cleanup, &dir, fw, &format!("branch{n}"), &config, &ns(&format!("u{n}")))
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
    let capture_pid = start_capture(&mut cleanup, &hub, &hub_public, &capture, Duration::from_secs(10));

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

    // Read a row at a time, the SA displays of the real daemon are the unpaged ones.
    {
        use keysteward::control::{call, pages, Request, Response};
        for display in [
            Request::DisplayIkeSa,
            Request::DisplayIpsecSaBrief,
            Request::DisplayIpsecSa { remote: None },
            Request::DisplayIkeSaVerbose { remote: None, conn_id: None },
            Request::DisplayFirewallSessionTable { verbose: false },
            Request::DisplayIkeProposal,
        ] {
            let Ok(Response::Ok { text: whole, .. }) = call(&hub_control, &display) else {
                panic!("{display:?}")
            };
            let paged: Vec<_> = pages(&hub_control, &display, 1).collect::<Result<_, _>>().unwrap();
            let text: String = paged.iter().map(|p| p.text.as_str()).collect();
            assert_eq!(text, whole, "{display:?} in pages of one row");
            assert!(paged.len() >= 3, "{display:?}: {} page(s)", paged.len());
        }
    }

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
    stop_capture(&mut cleanup, capture_pid);
    let count = |filter: &str| count_frames(&capture, filter);
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
    let (ours, listed) = listed_namespaces(|n| all.iter().any(|a| a == n));
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}

/// Issue 13, finding 8: a branch proposing 0.0.0.0/0 as its network made the hub run
/// `ip route replace 0.0.0.0/0` into its TUN, taking the hub's default route. With a template
/// ACL that says `destination any`, the hub now refuses that flow (INVALID-ID-INFORMATION,
/// the reason in `display ike error-info`), its default route stays where the operator put
/// it, and an honest branch on the same hub still gets in.
#[test]
fn netns_hub_refuses_a_branch_proposing_the_default_route() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}d", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-hubdef-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let ns = |suffix: &str| format!("{tag}{suffix}");
    let Topology { hub, hub_public, branches, all } = topology(&mut cleanup, &tag, 2);
    // The hub's own default route, toward an upstream router on its public link.
    ip(&["-n", &hub, "route", "add", "default", "via", "192.0.2.254"]);

    // The hub example, with a template ACL that takes whatever the branches have:
    // `destination any`.
    let hub_config = example("hub.cfg").replace("destination 10.2.0.0 0.0.255.255", "destination any");
    let hub_control = start(&mut cleanup, &dir, &hub, "hub", &hub_config, &hub_public);
    // Branch 1 claims every address as its network; branch 2 is honest.
    let rogue =
        example("branch1.cfg").replace("source 10.2.1.0 0.0.0.255 destination", "source any destination");
    assert!(rogue.contains("source any destination 10.1.1.0"), "{rogue}");
    let rogue_control = start(&mut cleanup, &dir, &branches[0].1, "branch1", &rogue, &ns("u1"));
    let _honest = start(&mut cleanup, &dir, &branches[1].1, "branch2", &example("branch2.cfg"), &ns("u2"));
    let logs = || {
        let mut all = String::new();
        for name in ["hub", "branch1", "branch2"] {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            all.push_str(&format!("--- {name} log:\n{log}\n"));
        }
        all
    };

    // The rogue branch tries; its pings go unanswered, and the hub says why.
    let (replies, _) = ping_hub(&branches[0].2);
    assert_eq!(replies, 0, "the rogue branch got a tunnel\n{}", logs());
    let errors = common::wait_for_error_info(&hub, &hub_control, "it covers the default route 0.0.0.0/0");
    assert!(
        errors.contains(
            "flow 10.1.1.0/24 -> 0.0.0.0/0 proposed by peer branches (ip 192.0.2.11 at 192.0.2.11)"
        ),
        "{errors}\n{}",
        logs()
    );
    let branch_errors = common::wait_for_error_info(&branches[0].1, &rogue_control, "INVALID-ID-INFORMATION");
    assert!(branch_errors.contains("INVALID-ID-INFORMATION"), "{branch_errors}");

    // The hub's default route is still the operator's; nothing of the rogue's is in the TUN.
    let default = output_text(&in_ns(&hub, &["ip", "route", "show", "default"]));
    assert!(default.contains("default via 192.0.2.254"), "hub default route: {default}\n{}", logs());
    assert!(!default.contains("ks0"), "default route into the TUN: {default}");
    assert_eq!(hub_routes(&hub).trim(), "", "no route into the TUN for the rogue");

    // The honest branch gets in, with its own route.
    let (replies, out) = ping_hub(&branches[1].2);
    assert!(replies >= 4, "honest branch: {replies} of 5\n{out}\n{}", logs());
    let routes = hub_routes(&hub);
    assert!(routes.contains("10.2.2.0/24") && !routes.contains("default"), "{routes}");

    drop(cleanup);
    let (ours, listed) = listed_namespaces(|n| all.iter().any(|a| a == n));
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}

/// Issue 15, per-site keys: the hub of `examples/hub-site-keys/` gives branches 1 and 2 a key
/// each from its `ike user-table`, found by their source addresses; branch 3 is in no row. The
/// first two ping the hub's PC through their tunnels; the third gets no answer at all, the
/// hub's log names its address, and neither the log nor `show-config` shows a key.
#[test]
fn netns_hub_gives_each_branch_its_own_key_and_refuses_one_not_in_the_table() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}k", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-hubkeys-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let ns = |suffix: &str| format!("{tag}{suffix}");
    let Topology { hub, hub_public, branches, all } = topology(&mut cleanup, &tag, 3);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hub-site-keys/hub.cfg");
    let hub_config = std::fs::read_to_string(path).unwrap();
    let hub_control = start(&mut cleanup, &dir, &hub, "hub", &hub_config, &hub_public);
    // Branches 1 and 2 with their rows' keys; branch 3 keeps the old shared key.
    let shared = "pre-shared-key hub-and-spoke-example-key";
    for (n, key) in [(1, "branch-one-example-key"), (2, "branch-two-example-key"), (3, "")] {
        let mut config = example(&format!("branch{n}.cfg"));
        assert!(config.contains(shared));
        if !key.is_empty() {
            config = config.replace(shared, &format!("pre-shared-key {key}"));
        }
        start(&mut cleanup, &dir, &branches[n - 1].1, &format!("branch{n}"), &config, &ns(&format!("u{n}")));
    }
    let log = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
    let logs = || format!("--- hub log:\n{}\n--- branch3 log:\n{}", log("hub"), log("branch3"));

    for n in [1, 2] {
        let (replies, out) = ping_hub(&branches[n - 1].2);
        assert!(replies >= 4, "branch {n}: {replies} of 5 pings answered\n{out}\n{}", logs());
    }
    let (replies, _) = ping_hub(&branches[2].2);
    assert_eq!(replies, 0, "branch 3 is in no row of the table\n{}", logs());

    let json = keysteward(&hub, &["display", "ike", "sa", "--json"], &hub_control);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut peers: Vec<&str> = value["sas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|sa| sa["phase"] == "v1:2")
        .filter_map(|sa| sa["peer"].as_str())
        .collect();
    peers.sort_unstable();
    peers.dedup();
    assert_eq!(peers, ["192.0.2.11", "192.0.2.12"], "{json}");
    let hub_log = log("hub");
    assert!(
        hub_log.contains("address 192.0.2.13 is not in the ike user-table of this peer"),
        "the refusal names the branch's address\n{}",
        logs()
    );
    let shown = keysteward(&hub, &["show-config"], &hub_control);
    assert!(shown.contains("user-table 1") && shown.contains("id-type ip 192.0.2.12"), "{shown}");
    for secret in ["branch-one-example-key", "branch-two-example-key"] {
        assert!(!hub_log.contains(secret) && !shown.contains(secret), "key {secret} printed");
    }

    drop(cleanup);
    let (ours, listed) = listed_namespaces(|n| all.iter().any(|a| a == n));
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}
