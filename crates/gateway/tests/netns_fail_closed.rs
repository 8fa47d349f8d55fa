//! Fail closed (issue 13): when the daemon is gone, protected traffic does not leave in clear
//! (root only; CI runs as root).
//!
//! ```text
//!  ks<pid>fcpa        ks<pid>fcfa                      ks<pid>fcfb         ks<pid>fcpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! Both firewalls run the unchanged examples. FW_A also has the operator's route toward the
//! peer for PC_B's network (`10.2.2.0/24 via 192.0.2.2 metric 100`, what the example's
//! `ip route-static` says): before fail-closed routes, that is the path PC_A's pings took in
//! clear the moment FW_A's daemon died and its TUN with it. Namespaces (with their TUN
//! devices and routes), captures and daemons are removed even when a test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    count_frames, in_ns, ip, output_text, ping, reference_topology, skip_unless_root, start_capture,
    start_reference_daemons, stop_capture, wait_for_socket, wait_until, Cleanup, Reference,
};

/// The routes of keysteward's protocol in `ns`, one per line, trimmed.
fn ours(ns: &str) -> Vec<String> {
    let out = in_ns(ns, &["ip", "route", "show", "table", "all", "proto", "245"]);
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_owned()).collect()
}

fn route_get(ns: &str, target: &str) -> String {
    output_text(&in_ns(ns, &["ip", "route", "get", target]))
}

fn log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// The reference topology under `suffix` with the operator's route on FW_A, both daemons
/// started (FW_A with `config_a`), and a first ping that brings the tunnel up.
fn up(suffix: &str, config_a: &str) -> (Cleanup, Reference, PathBuf, PathBuf) {
    let tag = format!("ks{}{suffix}", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-fail-closed-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    ip(&["-n", &net.fw_a, "route", "add", "10.2.2.0/24", "via", "192.0.2.2", "metric", "100"]);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let config_b = std::fs::read_to_string(examples.join("fw_b.cfg")).unwrap();
    let (control_a, _) =
        start_reference_daemons(&mut cleanup, &dir, &net, config_a, &config_b, Duration::from_secs(10));
    let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 4, "{replies} of 5 pings answered\n{text}\nFW_A log:\n{}", log(&dir, "a.log"));
    (cleanup, net, dir, control_a)
}

fn example_a() -> String {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap()
}

/// FW_A's daemon: the second process the guard holds (FW_B's starts first).
fn daemon_a_pid(cleanup: &Cleanup) -> u32 {
    cleanup.children[1].id()
}

/// Sends `signal` to `pid` and waits up to 10 s for the process to end (reaping it if the
/// guard holds it).
fn signal_and_wait(cleanup: &mut Cleanup, pid: u32, signal: &str) {
    let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
    if let Some(position) = cleanup.children.iter().position(|c| c.id() == pid) {
        let mut child = cleanup.children.remove(position);
        let ended = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            child.try_wait().ok().flatten().is_some()
        });
        assert!(ended, "process {pid} still runs 10 s after {signal}");
    }
}

/// Issue 13: kill -9 FW_A's daemon while PC_A pings PC_B: no ICMP echo in clear on FW_A's
/// public link (the pings after the kill are refused with "host unreachable" instead of taking
/// the operator's route toward the peer). A restart adopts the fail-closed route and the
/// tunnel comes back, with no program on the daemon's PATH (it spawns none); an orderly stop
/// removes the route and says so.
#[test]
fn netns_kill_9_while_pinging_sends_nothing_in_clear_and_a_restart_adopts_the_routes() {
    if skip_unless_root() {
        return;
    }
    let (mut cleanup, net, dir, control_a) = up("fc", &example_a());
    let before = ours(&net.fw_a);

    let capture = dir.join("public.pcap");
    let capture_pid =
        start_capture(&mut cleanup, &net.fw_a, &net.public_a, &capture, Duration::from_secs(10));
    let pc_a = net.pc_a.clone();
    let pinger = std::thread::spawn(move || {
        Command::new("ip")
            .args(["netns", "exec", &pc_a, "ping", "-c", "25", "-i", "0.2", "-W", "1", "10.2.2.2"])
            .output()
    });
    std::thread::sleep(Duration::from_secs(1));
    let pid = daemon_a_pid(&cleanup);
    signal_and_wait(&mut cleanup, pid, "-KILL");
    let tun_gone = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        !in_ns(&net.fw_a, &["ip", "link", "show", "ks0"]).status.success()
    });
    assert!(tun_gone, "the TUN outlived the daemon");
    let pinged = output_text(&pinger.join().unwrap().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    stop_capture(&mut cleanup, capture_pid);

    let clear = count_frames(&capture, "icmp.type == 8 || icmp.type == 0");
    let esp = count_frames(&capture, "esp");
    assert_eq!(clear, 0, "ICMP echo in clear on the public link after the kill\nping:\n{pinged}");
    assert_eq!(
        before,
        ["10.2.2.0/24 dev ks0 scope link", "unreachable 10.2.2.0/24 metric 1"],
        "the TUN route and, under it, the fail-closed route"
    );
    assert!(esp >= 2, "the pings before the kill went through ESP ({esp} ESP frames)");
    assert!(pinged.contains("Destination Host Unreachable"), "pings after the kill are refused:\n{pinged}");
    assert_eq!(ours(&net.fw_a), ["unreachable 10.2.2.0/24 metric 1"]);

    // A restart adopts the route in place, and the tunnel comes back.
    let map = format!("GigabitEthernet0/0/2={}", net.public_a);
    // The dead daemon's control socket is still there; the new one replaces it.
    std::fs::remove_file(&control_a).unwrap();
    // With no program to run (an empty PATH): the daemon makes its TUN, routes and rules
    // through rtnetlink and spawns nothing (issue 14). `ip netns exec` is named by its path.
    let ip_path = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("ip(8) is installed");
    let daemon = Command::new(ip_path)
        .args(["netns", "exec", &net.fw_a, env!("CARGO_BIN_EXE_keysteward"), "run", "--config"])
        .arg(dir.join("fw_a.cfg"))
        .arg("--control")
        .arg(&control_a)
        .args(["--interface-map", &map])
        .env("PATH", dir.join("no-programs-here"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("a2.log")).unwrap())
        .spawn()
        .expect("daemon starts");
    cleanup.children.push(daemon);
    assert!(wait_for_socket(&control_a, Duration::from_secs(10)), "{}", log(&dir, "a2.log"));
    let started = log(&dir, "a2.log");
    assert!(
        started.contains("fail-closed routes for 1 protected prefixes adopted from an earlier run"),
        "{started}"
    );
    assert_eq!(ours(&net.fw_a), ["10.2.2.0/24 dev ks0 scope link", "unreachable 10.2.2.0/24 metric 1"]);
    let back = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        ping(&net.pc_a, 1, "0.2", "1", "10.2.2.2").0 == 1
    });
    assert!(back, "no tunnel after the restart\nFW_A log:\n{}", log(&dir, "a2.log"));

    // An orderly stop removes them, says so, and leaves the operator's route.
    let pid = cleanup.children.last().unwrap().id();
    signal_and_wait(&mut cleanup, pid, "-TERM");
    let stopped = log(&dir, "a2.log");
    assert!(
        stopped.contains("fail-closed routes for 1 protected prefixes removed (orderly shutdown)"),
        "{stopped}"
    );
    assert!(ours(&net.fw_a).is_empty(), "{:?}", ours(&net.fw_a));
    let get = route_get(&net.fw_a, "10.2.2.2");
    assert!(get.contains("via 192.0.2.2"), "{get}");
}

/// `ipsec fail-closed keep`: an orderly stop keeps the fail-closed route (and says so), so
/// protected traffic stays blocked while the daemon is stopped on purpose too.
#[test]
fn netns_fail_closed_keep_blocks_after_an_orderly_stop() {
    if skip_unless_root() {
        return;
    }
    let config = example_a() + "ipsec fail-closed keep\n";
    let (mut cleanup, net, dir, _) = up("fk", &config);
    let pid = daemon_a_pid(&cleanup);
    signal_and_wait(&mut cleanup, pid, "-TERM");
    let stopped = log(&dir, "a.log");
    assert!(
        stopped.contains("fail-closed routes for 1 protected prefixes kept (ipsec fail-closed keep)"),
        "{stopped}"
    );
    assert_eq!(ours(&net.fw_a), ["unreachable 10.2.2.0/24 metric 1"]);
    let get = route_get(&net.fw_a, "10.2.2.2");
    assert!(!get.contains("via 192.0.2.2"), "protected traffic would leave in clear: {get}");
    let (replies, text) = ping(&net.pc_a, 2, "0.2", "1", "10.2.2.2");
    assert_eq!(replies, 0, "{text}");
    assert!(text.contains("Destination Host Unreachable"), "{text}");
}
