//! A reload whose new sockets cannot be opened changes nothing (issue 13, finding 13), root
//! only, in the reference topology of `netns_reference_ping.rs` (FW_A alone runs):
//! 1. the new file needs IKE on 10.1.1.1:500, which another process holds: `keysteward
//!    reload` exits 1 naming the address, and the file in force stays the old one;
//! 2. the daemon may open only a few more descriptors (`prlimit`): each refused reload, at
//!    every limit up to the one that lets it through, leaves no socket of the new file open
//!    and no reader started (before, the UDP 4500 handle for the data-plane thread was made
//!    after the new UDP 500 socket was already listening, so a refusal there left it open);
//!    then the reload goes through and the new address listens.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    in_ns, keysteward_output, output_text, reference_topology, skip_unless_root, spawn_keysteward, Cleanup,
};

/// A tunnel on FW_A's inside interface, which needs IKE and ESP sockets on a new local
/// address (10.1.1.1).
const BRANCH: &str =
    "ike peer c\n undo version 2\n remote-address 10.1.1.77\n pre-shared-key another-long-key-0123\n\
acl number 3002\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.9.9.0 0.0.0.255\n\
ipsec policy branch 1 isakmp\n security acl 3002\n proposal a\n ike-peer c\n\
interface GigabitEthernet0/0/1\n ip address 10.1.1.1 255.255.255.0\n ipsec policy branch\n";

/// `keysteward ARGS` against FW_A: (exit code, stdout + stderr).
fn keysteward(ns: &str, args: &[&str], control: &Path) -> (i32, String) {
    let out = keysteward_output(ns, args, control);
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// The UDP sockets bound on 10.1.1.1 in `ns` (`ss -uln`), one line each.
fn bound_on_inside(ns: &str) -> Vec<String> {
    let out = in_ns(ns, &["ss", "-Hunl"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("10.1.1.1:"))
        .map(str::to_owned)
        .collect()
}

/// How many descriptors `pid` has open.
fn open_descriptors(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as u64).unwrap_or(0)
}

/// Sets `pid`'s descriptor limit (the soft one: raising a lowered hard limit needs a capability a
/// container may lack).
fn limit_descriptors(pid: u32, limit: u64) {
    let status = Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status()
        .expect("prlimit runs");
    assert!(status.success(), "prlimit --nofile={limit}");
}

#[test]
fn netns_reload_that_cannot_open_its_sockets_changes_nothing() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}s", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-reload-sockets-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let fw_a = net.fw_a.clone();
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let example_a = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap();
    let file = dir.join("fw_a.cfg");
    std::fs::write(&file, &example_a).unwrap();
    let control = dir.join("a.sock");
    let (public, inside) =
        (format!("GigabitEthernet0/0/2={}", net.public_a), format!("GigabitEthernet0/0/1={tag}ai"));
    let extra = ["--interface-map", public.as_str(), "--interface-map", inside.as_str()];
    let log_path = dir.join("a.log");
    let pid = spawn_keysteward(&mut cleanup, &fw_a, &file, &control, &log_path, &extra);
    assert!(common::wait_for_socket(&control, Duration::from_secs(10)), "FW_A did not start");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let in_force = || keysteward(&fw_a, &["show-config"], &control).1;
    let original = in_force();
    std::fs::write(&file, format!("{example_a}{BRANCH}")).unwrap();

    // 1. Port 500 of the new address is held by another process.
    let holder = Command::new("ip")
        .args(["netns", "exec", &fw_a, "python3", "-c"])
        .arg("import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.1.1.1',500))\nprint('bound',flush=True)\ntime.sleep(60)")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    cleanup.children.push(holder);
    assert!(
        common::wait_until(Duration::from_secs(5), Duration::from_millis(50), || bound_on_inside(&fw_a)
            .len()
            == 1),
        "the holder bound 10.1.1.1:500: {:?}",
        bound_on_inside(&fw_a)
    );
    let (code, text) = keysteward(&fw_a, &["reload"], &control);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("10.1.1.1:500"), "the reason names the address: {text}");
    assert_eq!(bound_on_inside(&fw_a).len(), 1, "only the holder's socket: {:?}", bound_on_inside(&fw_a));
    assert_eq!(in_force(), original, "the old file stays in force");
    let mut holder = cleanup.children.pop().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();

    // 2. Too few descriptors: every refusal leaves nothing open, until the reload fits.
    let base = open_descriptors(pid);
    assert!(base > 3, "descriptors of {pid}");
    let mut applied = None;
    for more in 1..=16 {
        limit_descriptors(pid, base + more);
        let (code, text) = keysteward(&fw_a, &["reload"], &control);
        if code == 0 {
            applied = Some(more);
            break;
        }
        assert_eq!(code, 1, "{text}");
        assert_eq!(
            bound_on_inside(&fw_a),
            Vec::<String>::new(),
            "reload refused with {more} spare descriptor(s) ({text}) left sockets of the new file open\n{}",
            log()
        );
        assert!(!log().contains("listening for IKE on 10.1.1.1"), "no reader started\n{}", log());
        assert_eq!(in_force(), original, "the old file stays in force");
    }
    let more = applied.unwrap_or_else(|| panic!("the reload never went through\n{}", log()));
    assert!(more > 1, "the limits tried include refusals");
    assert!(log().contains("listening for IKE on 10.1.1.1:500"), "{}", log());
    assert_eq!(
        bound_on_inside(&fw_a).len(),
        2,
        "UDP 500 and 4500 on the new address: {:?}",
        bound_on_inside(&fw_a)
    );
    assert!(in_force().contains("ike peer c"), "the new file is in force");
}
