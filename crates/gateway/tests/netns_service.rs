//! `keysteward run --user` and the systemd notifications, in the reference topology of
//! `netns_reference_ping.rs` (root only; CI runs as root):
//!
//! ```text
//!  ks<pid>upa         ks<pid>ufa                       ks<pid>ufb          ks<pid>upb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! FW_A is started as root with `--user nobody`, `NOTIFY_SOCKET` naming a socket this test
//! owns (in place of systemd's) and `WATCHDOG_USEC`. The test checks that `READY=1` comes
//! once the TUN device and its routes exist, that `WATCHDOG=1` follows, that the daemon
//! runs as nobody with exactly CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE, that the
//! tunnel carries a ping, and that a reload which adds a route still works after the drop.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    in_ns, output_text, reference_topology, skip_unless_root, spawn_keysteward, wait_for_socket, Cleanup,
};

/// nobody's uid and gid on Debian.
const NOBODY: u32 = 65534;

/// CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13), as /proc shows a set.
const THREE_CAPS: &str = "0000000000003400";

/// The next notification, or `None` after `limit`.
fn next(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    socket.recv(&mut buf).ok().map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// One field of /proc/PID/status, e.g. `CapEff`.
fn status_field(pid: u32, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
}

fn routes(ns: &str) -> String {
    output_text(&in_ns(ns, &["ip", "route", "show", "dev", "ks0"]))
}

#[test]
fn netns_run_user_drops_to_three_capabilities_notifies_systemd_and_still_routes() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}u", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-service-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let net = reference_topology(&mut cleanup, &tag);

    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let example_a = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap();
    let (file_a, file_b) = (dir.join("fw_a.cfg"), dir.join("fw_b.cfg"));
    std::fs::copy(examples.join("fw_b.cfg"), &file_b).unwrap();
    let control_b = dir.join("b.sock");
    let map_b = format!("GigabitEthernet0/0/2={}", net.public_b);
    spawn_keysteward(
        &mut cleanup,
        &net.fw_b,
        &file_b,
        &control_b,
        &dir.join("b.log"),
        &["--interface-map", &map_b],
    );
    assert!(wait_for_socket(&control_b, Duration::from_secs(10)), "FW_B did not start");

    // FW_A's file belongs to nobody, mode 0600; its control socket's directory does not exist
    // yet (the daemon makes it for nobody before the switch).
    std::fs::write(&file_a, &example_a).unwrap();
    std::fs::set_permissions(&file_a, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file_a, Some(NOBODY), Some(NOBODY)).unwrap();
    let control_a = dir.join("run-a").join("a.sock");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let log_a = dir.join("a.log");
    let map_a = format!("GigabitEthernet0/0/2={}", net.public_a);
    let child = Command::new("ip")
        .args(["netns", "exec", &net.fw_a, env!("CARGO_BIN_EXE_keysteward"), "run", "--config"])
        .arg(&file_a)
        .arg("--control")
        .arg(&control_a)
        .args(["--interface-map", &map_a, "--user", "nobody"])
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "300000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_a).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    cleanup.children.push(child);
    let log = || std::fs::read_to_string(&log_a).unwrap_or_default();

    // READY=1 first, and only once the TUN device and the route into it are there.
    let first = next(&notify, Duration::from_secs(20));
    assert_eq!(first.as_deref(), Some("READY=1"), "FW_A:\n{}", log());
    assert!(routes(&net.fw_a).contains("10.2.2.0/24"), "READY before the route: {}", routes(&net.fw_a));
    // Then the watchdog, from the loop, every 150 ms.
    for _ in 0..2 {
        assert_eq!(next(&notify, Duration::from_secs(5)).as_deref(), Some("WATCHDOG=1"), "{}", log());
    }

    // nobody, with the three capabilities and nothing else, for good.
    let uid = status_field(pid, "Uid");
    assert_eq!(uid.split_whitespace().collect::<Vec<_>>(), ["65534"; 4], "Uid: {uid}");
    let gid = status_field(pid, "Gid");
    assert_eq!(gid.split_whitespace().collect::<Vec<_>>(), ["65534"; 4], "Gid: {gid}");
    for set in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(pid, set), THREE_CAPS, "{set}");
    }
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    assert!(log().contains("running as user nobody"), "{}", log());

    // The tunnel comes up and carries traffic.
    let (answered, text) = common::ping(&net.pc_a, 4, "0.2", "1", "10.2.2.2");
    assert!(answered >= 3, "{answered} of 4\n{text}\nFW_A:\n{}", log());

    // A reload that adds a policy entry, and so a route: CAP_NET_ADMIN is still there.
    let extra =
        "acl number 3009\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.9.9.0 0.0.0.255\n\
                 ipsec policy policy1 9 isakmp\n security acl 3009\n proposal a\n ike-peer b\n";
    std::fs::write(&file_a, format!("{example_a}{extra}")).unwrap();
    let reload = reload_as(&control_a, None);
    assert!(reload.status.success(), "{}\nFW_A:\n{}", output_text(&reload), log());
    let shown = routes(&net.fw_a);
    assert!(shown.contains("10.9.9.0/24") && shown.contains("10.2.2.0/24"), "{shown}\nFW_A:\n{}", log());
    // The daemon's own user may ask for changes too.
    let reset = reload_as(&control_a, Some(NOBODY));
    assert!(reset.status.success(), "{}", output_text(&reset));
}

/// `keysteward reload` on `control`, as root or as `uid`.
fn reload_as(control: &Path, uid: Option<u32>) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_keysteward"));
    command.arg("reload").arg("--control").arg(control);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    command.output().unwrap()
}
