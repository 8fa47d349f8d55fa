//! Reload of a running gateway (root only; CI runs as root), in the reference topology of
//! `netns_reference_ping.rs`:
//!
//! ```text
//!  ks<pid>lpa         ks<pid>lfa                       ks<pid>lfb          ks<pid>lpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! Both firewalls start with the unchanged examples (`GigabitEthernet0/0/2` mapped to the
//! public veth end with `--interface-map`) and carry a ping. Then:
//! 1. FW_A reloads an equivalent file plus an unrelated new policy entry: the same SPIs in
//!    `display ipsec sa brief --json`, a ping running across the reload loses nothing, and
//!    the new entry's destination is routed into the TUN;
//! 2. FW_A reloads a file with an error: `keysteward reload` exits 1 naming
//!    `file:line:column`, and nothing changed (same SPIs, pings pass);
//! 3. both reload a changed `ipsec proposal` (AES-128 / SHA2-256): the old SAs are deleted and
//!    the next ping negotiates new ones with the new algorithms;
//! 4. SIGHUP does what `reload` does: an invalid file is refused (logged), a valid one with a
//!    further policy entry is applied without touching the SAs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    in_ns, keysteward_output, output_text, reference_topology, skip_unless_root, spawn_keysteward,
    wait_for_socket, Cleanup,
};

/// `keysteward ARGS --control CONTROL` in namespace `ns`: (exit code, stdout + stderr).
fn keysteward(ns: &str, args: &[&str], control: &Path) -> (i32, String) {
    let out = keysteward_output(ns, args, control);
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// The SPIs and algorithms of `display ipsec sa brief --json`, sorted.
fn sas(ns: &str, control: &Path) -> Vec<(u64, String)> {
    let (code, text) = keysteward(ns, &["display", "ipsec", "sa", "brief", "--json"], control);
    assert_eq!(code, 0, "{text}");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut out: Vec<(u64, String)> = value["sas"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| (r["spi"].as_u64().unwrap_or(0), r["algorithm"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Pings PC_B from PC_A `count` times, 0.2 s apart; returns how many were answered.
fn ping(pc_a: &str, count: u32) -> usize {
    common::ping(pc_a, count, "0.2", "1", "10.2.2.2").0
}

/// Polls `done` every 100 ms for up to `limit`.
fn wait_for(limit: Duration, done: impl FnMut() -> bool) -> bool {
    common::wait_until(limit, Duration::from_millis(100), done)
}

/// An unrelated tunnel for FW_A, on its inside interface (the article's
/// GigabitEthernet0/0/1, mapped at start): a new peer, ACL and policy group. The interface's
/// name sorts before GigabitEthernet0/0/2, so the new entry comes first in the engine's
/// policy list and the reference policy moves from index 0 to 1: the reload must renumber
/// the SAs that stay. It also needs IKE and ESP sockets on a new local address (10.1.1.1).
const BRANCH: &str =
    "ike peer c\n undo version 2\n remote-address 10.1.1.77\n pre-shared-key another-long-key-0123\n\
acl number 3002\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.9.9.0 0.0.0.255\n\
ipsec policy branch 1 isakmp\n security acl 3002\n proposal a\n ike-peer c\n\
interface GigabitEthernet0/0/1\n ip address 10.1.1.1 255.255.255.0\n ipsec policy branch\n";

/// An unrelated policy entry for FW_A: its own ACL towards 10.9.9.0/24 under the same group
/// and peer. Appended after the file's last line (an `ip route-static`, system view).
fn with_entry(config: &str, sequence: u32, acl: u16, third_octet: u8) -> String {
    format!(
        "{config}acl number {acl}\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.9.{third_octet}.0 0.0.0.255\n\
         ipsec policy policy1 {sequence} isakmp\n security acl {acl}\n proposal a\n ike-peer b\n"
    )
}

#[test]
fn netns_reload_keeps_unchanged_tunnels_refuses_bad_files_and_renegotiates_changed_ones() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}l", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-reload-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let (pc_a, fw_a, fw_b) = (net.pc_a.clone(), net.fw_a.clone(), net.fw_b.clone());

    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let example_a = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap();
    let example_b = std::fs::read_to_string(examples.join("fw_b.cfg")).unwrap();
    let (file_a, file_b) = (dir.join("fw_a.cfg"), dir.join("fw_b.cfg"));
    std::fs::write(&file_a, &example_a).unwrap();
    std::fs::write(&file_b, &example_b).unwrap();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    let mut pid_a = 0;
    let inside_a = format!("GigabitEthernet0/0/1={tag}ai");
    for (ns, file, control, log, public, inside) in [
        (&fw_b, &file_b, &control_b, "b.log", &net.public_b, None),
        (&fw_a, &file_a, &control_a, "a.log", &net.public_a, Some(&inside_a)),
    ] {
        let public = format!("GigabitEthernet0/0/2={public}");
        let mut extra = vec!["--interface-map", public.as_str()];
        extra.extend(inside.iter().flat_map(|map| ["--interface-map", map.as_str()]));
        // The PID is the daemon's (`ip netns exec` execs it), for SIGHUP.
        pid_a = spawn_keysteward(&mut cleanup, ns, file, control, &dir.join(log), &extra);
        assert!(wait_for_socket(control, Duration::from_secs(10)), "daemon in {ns} did not start");
    }
    let log_a = || std::fs::read_to_string(dir.join("a.log")).unwrap_or_default();
    let log_b = || std::fs::read_to_string(dir.join("b.log")).unwrap_or_default();

    // The tunnel comes up on traffic.
    let answered = ping(&pc_a, 4);
    assert!(answered >= 3, "{answered} of 4\nFW_A:\n{}\nFW_B:\n{}", log_a(), log_b());
    let original = sas(&fw_a, &control_a);
    assert_eq!(original.len(), 2, "{original:?}");
    assert!(original.iter().all(|(_, a)| a == "E:DES;A:HMAC-MD5-96;"), "{original:?}");

    // 1. An equivalent file (comments and blank lines added) plus an unrelated tunnel, with a
    //    ping running across the reload.
    let equivalent = format!("# reloaded\n\n{example_a}{BRANCH}");
    std::fs::write(&file_a, &equivalent).unwrap();
    let running = Command::new("ip")
        .args(["netns", "exec", &pc_a, "ping", "-c", "15", "-i", "0.2", "-W", "1", "10.2.2.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let (code, text) = keysteward(&fw_a, &["reload"], &control_a);
    assert_eq!(code, 0, "{text}\nFW_A:\n{}", log_a());
    assert!(
        text.contains("1 IKE SA(s) and 1 IPsec SA pair(s) kept, 0 IKE SA(s) and 0 IPsec SA pair(s) deleted"),
        "{text}"
    );
    assert!(text.contains("new or changed policy entries: branch-1"), "{text}");
    let out = running.wait_with_output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout).matches("bytes from 10.2.2.2").count();
    assert_eq!(replies, 15, "pings across the reload\n{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(sas(&fw_a, &control_a), original, "same SPIs after the reload");
    assert_eq!(sas(&fw_b, &control_b), original, "and on FW_B");
    let routes =
        String::from_utf8_lossy(&in_ns(&fw_a, &["ip", "route", "show", "dev", "ks0"]).stdout).into_owned();
    assert!(routes.contains("10.9.9.0/24") && routes.contains("10.2.2.0/24"), "{routes}");
    assert!(log_a().contains("listening for IKE on 10.1.1.1:500"), "new local address\n{}", log_a());

    // 2. An invalid file: refused with its location, nothing changes.
    let broken = equivalent.replace(" esp encryption-algorithm des\n", " esp encryption-algorithm dez\n");
    let line = broken.lines().position(|l| l.contains("dez")).unwrap() + 1;
    std::fs::write(&file_a, &broken).unwrap();
    let (code, text) = keysteward(&fw_a, &["reload"], &control_a);
    assert_eq!(code, 1, "{text}");
    let place = format!("{}:{line}:27: error: unknown keyword `dez`", file_a.display());
    assert!(text.contains(&place), "expected {place}\n{text}");
    assert!(log_a().contains("refused, nothing changed"), "logged");
    assert_eq!(sas(&fw_a, &control_a), original, "nothing changed");
    assert_eq!(ping(&pc_a, 3), 3, "traffic flows on");
    let (_, shown) = keysteward(&fw_a, &["show-config"], &control_a);
    assert!(shown.contains(" esp encryption-algorithm des\n"), "show-config: the file in force\n{shown}");

    // 3. A changed ipsec proposal on both sides: deleted, renegotiated with the new algorithms.
    let stronger = |text: &str| {
        text.replace(" esp authentication-algorithm md5\n", " esp authentication-algorithm sha2-256\n")
            .replace(" esp encryption-algorithm des\n", " esp encryption-algorithm aes-128\n")
    };
    std::fs::write(&file_a, stronger(&equivalent)).unwrap();
    std::fs::write(&file_b, stronger(&example_b)).unwrap();
    let (code, text) = keysteward(&fw_a, &["reload"], &control_a);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("1 IKE SA(s) and 0 IPsec SA pair(s) kept, 0 IKE SA(s) and 1 IPsec SA pair(s) deleted"),
        "{text}"
    );
    let (_, shown) = keysteward(&fw_a, &["show-config"], &control_a);
    assert!(shown.contains(" esp encryption-algorithm aes-128\n"), "show-config after the reload\n{shown}");
    let (code, text) = keysteward(&fw_b, &["reload"], &control_b);
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_for(Duration::from_secs(3), || sas(&fw_b, &control_b).is_empty()),
        "FW_A's Delete removed FW_B's SAs: {:?}",
        sas(&fw_b, &control_b)
    );
    let answered = ping(&pc_a, 5);
    assert!(
        answered >= 4,
        "{answered} of 5 after the proposal change\nFW_A:\n{}\nFW_B:\n{}",
        log_a(),
        log_b()
    );
    let renegotiated = sas(&fw_a, &control_a);
    assert_eq!(renegotiated.len(), 2, "{renegotiated:?}");
    assert!(renegotiated.iter().all(|(_, a)| a == "E:AES-128;A:HMAC-SHA2-256-128;"), "{renegotiated:?}");
    assert!(renegotiated.iter().all(|s| !original.contains(s)), "new SPIs: {renegotiated:?}");
    assert_eq!(sas(&fw_b, &control_b), renegotiated);

    // 4. SIGHUP: an invalid file is refused and logged; a valid one is applied, SAs kept.
    let hup = || {
        let status = Command::new("kill").args(["-HUP", &pid_a.to_string()]).status().unwrap();
        assert!(status.success());
    };
    let refusals = log_a().matches("refused, nothing changed").count();
    std::fs::write(&file_a, stronger(&broken)).unwrap();
    hup();
    assert!(
        wait_for(Duration::from_secs(5), || log_a().matches("refused, nothing changed").count() > refusals),
        "SIGHUP with an invalid file is refused in the log\n{}",
        log_a()
    );
    let reloads = log_a().matches("reloaded ").count();
    std::fs::write(&file_a, with_entry(&stronger(&equivalent), 3, 3003, 8)).unwrap();
    hup();
    assert!(
        wait_for(Duration::from_secs(5), || log_a().matches("reloaded ").count() > reloads),
        "SIGHUP reloads\n{}",
        log_a()
    );
    assert!(log_a().contains("new or changed policy entries: policy1-3"), "{}", log_a());
    assert_eq!(sas(&fw_a, &control_a), renegotiated, "SIGHUP kept the SAs");
    assert_eq!(ping(&pc_a, 3), 3, "traffic flows on after SIGHUP");
    let routes =
        String::from_utf8_lossy(&in_ns(&fw_a, &["ip", "route", "show", "dev", "ks0"]).stdout).into_owned();
    assert!(routes.contains("10.9.8.0/24"), "{routes}");

    // 5. Back to the example with the stronger proposal: the branch tunnel and the extra entry
    //    go with their routes; the reference policy moves back to index 0 and keeps its SAs.
    std::fs::write(&file_a, stronger(&example_a)).unwrap();
    let (code, text) = keysteward(&fw_a, &["reload"], &control_a);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(":12:2: warning: ike peer b: pre-shared key"), "the file's warnings: {text}");
    assert!(text.contains("new or changed policy entries: none"), "{text}");
    assert_eq!(sas(&fw_a, &control_a), renegotiated, "the reference SAs stay");
    let routes =
        String::from_utf8_lossy(&in_ns(&fw_a, &["ip", "route", "show", "dev", "ks0"]).stdout).into_owned();
    assert!(!routes.contains("10.9.") && routes.contains("10.2.2.0/24"), "{routes}");
    assert_eq!(ping(&pc_a, 3), 3, "traffic flows on after the renumbering");

    drop(cleanup);
}
