//! Recovery after a restart (issue 13), against strongSwan 5.9 (charon with kernel-libipsec)
//! in network namespaces (root only; CI runs as root). The tunnel is up and pinging; the
//! keysteward daemon is killed with SIGKILL (no Deletes: every SA dies with it, strongSwan
//! keeps its own) and started again with the same configuration. Neither side runs DPD, so
//! nothing but keysteward's recovery brings the tunnel back:
//!
//! - strongSwan's side sends first: its ESP arrives on an SPI the new daemon does not know;
//!   keysteward starts a new IKE SA with INITIAL-CONTACT and negotiates its policy's flow;
//! - keysteward's side sends first: the acquire starts the new IKE SA, which carries
//!   INITIAL-CONTACT as every first IKE SA with a peer does.
//!
//! Either way PC_A and PC_B must ping each other again within 10 s of the restart (a polling
//! loop with a deadline, not a benchmark), and strongSwan must have dropped the SAs keysteward
//! lost (INITIAL-CONTACT). The restarted daemon may find routes its predecessor left (the
//! fail-closed routes of issue 13); the test does not care which, and the namespaces take
//! everything with them.
//!
//! ```text
//!   PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ══ veth ══ 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//!   namespace ks<pid>rs?p  ks<pid>rs?a (keysteward) ks<pid>rs?b (charon)      ks<pid>rs?q
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{
    assert_strongswan_tunnel, in_ns, keysteward_stdout, public_link, skip_unless_root, spawn_keysteward,
    start_charon, swanctl, wait_for_socket, Cleanup, SwanConnection, CHARON,
};

const PSK: &str = "restart-Secret-0123456789";

/// Which side sends first after the restart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstSender {
    /// PC_B, behind strongSwan: recovery needs keysteward to act on ESP with unknown SPIs.
    StrongSwanSide,
    /// PC_A, behind keysteward: an acquire, as at any start.
    KeystewardSide,
}

#[test]
fn netns_strongswan_restart_recovers_when_strongswan_side_sends_first() {
    restart(FirstSender::StrongSwanSide, "rs1");
}

#[test]
fn netns_strongswan_restart_recovers_when_keysteward_side_sends_first() {
    restart(FirstSender::KeystewardSide, "rs2");
}

/// One ping from `ns` to `target`, waiting at most a second; whether it was answered.
fn ping_once(ns: &str, target: &str) -> bool {
    in_ns(ns, &["ping", "-c", "1", "-W", "1", target]).status.success()
}

/// Pings from `ns` to `target` until one is answered or `limit` has passed since `since`;
/// whether one was.
fn ping_until(ns: &str, target: &str, since: Instant, limit: Duration) -> bool {
    while since.elapsed() < limit {
        if ping_once(ns, target) {
            return true;
        }
    }
    false
}

fn restart(first: FirstSender, suffix: &str) {
    if skip_unless_root() {
        return;
    }
    assert!(Path::new(CHARON).exists(), "{CHARON} is missing: ./scripts/test installs strongSwan");
    let tag = format!("ks{}{suffix}", std::process::id());
    let [ns_a, ns_b, pc_a, pc_b] = ["a", "b", "p", "q"].map(|n| format!("{tag}{n}"));
    let dir = std::env::temp_dir().join(format!("keysteward-{tag}"));
    let run = dir.join("fwb");
    let mut cleanup = Cleanup::new(dir.clone());
    std::fs::create_dir_all(run.join("swanctl")).unwrap();
    cleanup.add_namespaces(&[&ns_a, &ns_b, &pc_a, &pc_b]);
    public_link(&ns_a, &ns_b);
    inside_link(&ns_a, "10.1.1.1", &pc_a, "10.1.1.2");
    inside_link(&ns_b, "10.2.2.1", &pc_b, "10.2.2.2");

    // strongSwan: no DPD, no trap, no reauthentication: it keeps its SAs until told otherwise.
    std::fs::write(run.join("strongswan.conf"), common::strongswan_conf(&run, "", "", "")).unwrap();
    let swan = common::swanctl_conf(&SwanConnection {
        proposals: "aes128-sha256-modp2048",
        aggressive: false,
        ike_extra: "",
        auth: "psk",
        certs: None,
        local_id: "192.0.2.2",
        remote_id: "192.0.2.1",
        secret: Some(PSK),
        ts: ("10.2.2.0/24", "10.1.1.0/24"),
        esp_proposals: "aes128-sha256",
        child_extra: "",
    });
    std::fs::write(run.join("swanctl/swanctl.conf"), swan).unwrap();
    start_charon(&mut cleanup, &ns_b, &run);
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    // keysteward: traffic-triggered (no `sa trigger-mode auto`: at the restart nothing but
    // the traffic and the recovery may start the new IKE SA), no DPD.
    let ike = " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group14\n";
    let peer = format!(" exchange-mode main\n remote-address 192.0.2.2\n pre-shared-key {PSK}\n");
    let esp = " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-128\n";
    std::fs::write(dir.join("fw_a.cfg"), common::fw_a_conf(ike, &peer, esp, "")).unwrap();
    let (config, control) = (dir.join("fw_a.cfg"), dir.join("a.sock"));
    let extra = ["--log-level", "debug"];
    spawn_keysteward(&mut cleanup, &ns_a, &config, &control, &dir.join("before.log"), &extra);
    assert!(wait_for_socket(&control, Duration::from_secs(10)), "{}", logs("before.log"));

    // The tunnel comes up on PC_A's traffic and carries pings both ways.
    assert!(ping_until(&pc_a, "10.2.2.2", Instant::now(), Duration::from_secs(20)), "{}", logs("before.log"));
    assert_strongswan_tunnel(&ns_a, &control, &dir.join("before.log"), &ns_b, &run);
    assert!(ping_once(&pc_b, "10.1.1.2") && ping_once(&pc_a, "10.2.2.2"));
    let before = swanctl(&ns_b, &run, &["--list-sas"]);

    // kill -9: no Deletes, every SA gone with the process; strongSwan keeps its own.
    let daemon = cleanup.children.len() - 1;
    cleanup.children[daemon].kill().unwrap();
    let _ = cleanup.children[daemon].wait();
    let _ = std::fs::remove_file(&control); // left by the killed daemon; the new one makes its own
    assert!(swanctl(&ns_b, &run, &["--list-sas"]).contains("INSTALLED"), "strongSwan still has its SAs");

    let restarted = Instant::now();
    spawn_keysteward(&mut cleanup, &ns_a, &config, &control, &dir.join("after.log"), &extra);
    assert!(wait_for_socket(&control, Duration::from_secs(10)), "{}", logs("after.log"));
    let (sender, target) = match first {
        FirstSender::StrongSwanSide => (&pc_b, "10.1.1.2"),
        FirstSender::KeystewardSide => (&pc_a, "10.2.2.2"),
    };
    let back = ping_until(sender, target, restarted, Duration::from_secs(10));
    let after = swanctl(&ns_b, &run, &["--list-sas"]);
    assert!(
        back,
        "no ping answered within 10 s of the restart\nstrongSwan before: {before}\nafter: {after}\n\
         keysteward log after the restart:\n{}\ncharon log:\n{}",
        logs("after.log"),
        logs("fwb/charon.log")
    );
    // Both ways, and on SAs both sides know: strongSwan dropped the ones keysteward lost.
    assert!(ping_once(&pc_a, "10.2.2.2") && ping_once(&pc_b, "10.1.1.2"), "{after}");
    let log = logs("after.log");
    if first == FirstSender::StrongSwanSide {
        assert!(log.contains("negotiating a new one with INITIAL-CONTACT"), "{log}");
        let json = keysteward_stdout(&ns_a, &["display", "ipsec", "statistics", "--json"], &control);
        let statistics: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert!(statistics["unknown_spi_reported"].as_u64() >= Some(1), "{json}");
        assert_eq!(statistics["recoveries_started"].as_u64(), Some(1), "{json}");
    }
    let charon = logs("fwb/charon.log");
    assert!(charon.contains("INITIAL_CONTACT"), "strongSwan got INITIAL-CONTACT:\n{charon}");
    let after = swanctl(&ns_b, &run, &["--list-sas"]);
    assert_eq!(after.matches("ESTABLISHED").count(), 1, "the old IKE SA is gone on strongSwan: {after}");
    assert_eq!(after.matches("INSTALLED").count(), 1, "the old CHILD_SA is gone on strongSwan: {after}");
    drop(cleanup);
}

/// A veth pair between gateway namespace `gw` (`in0`, `gw_address`/24, forwarding on) and a PC
/// namespace `pc` (`eth0`, `pc_address`/24, default route via the gateway).
fn inside_link(gw: &str, gw_address: &str, pc: &str, pc_address: &str) {
    common::veth(gw, "in0", Some(&format!("{gw_address}/24")), pc, "eth0", &format!("{pc_address}/24"));
    common::ip(&["-n", pc, "route", "add", "default", "via", gw_address]);
    let forwarding = in_ns(gw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(forwarding.status.success(), "ip_forward in {gw}");
}
