//! `ip route-static`, `tunnel local` and `remote-address authentication-address` in the
//! reference topology (root only; CI runs as root). Issue 15, "nothing silently ignored".
//!
//! ```text
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//!                                 192.0.2.11 (a second address, FW_A's tunnel local)
//! ```
//!
//! FW_A runs the article's configuration with `tunnel local 192.0.2.11`, `local-id 10.1.1.1`
//! and three static routes: the article's route toward FW_B for the protected 10.2.2.0/24
//! (not installed: FW_A's TUN route takes that traffic, `check` says so), 198.51.100.0/24 via
//! FW_B, 203.0.113.0/24 out of GigabitEthernet0/0/2 (mapped to the veth end) with
//! preference 70, and 100.64.0.0/10, for which the operator has a route of the same metric
//! already (left alone, ours not installed). FW_B names FW_A by its tunnel local address (`remote-address 192.0.2.11`)
//! and by the identity FW_A presents (`remote-address authentication-address 10.1.1.1`).
//! The test sees the tunnel come up from 192.0.2.11, the kernel's routes of protocol 245
//! (`ip route`), `display ip routing-table` in text and JSON, a reload that drops a route, and
//! an orderly stop that removes them. Namespaces and daemons go even when it fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    ip, keysteward, keysteward_stdout, output_text, ping, reference_topology, skip_unless_root,
    start_reference_daemons, wait_until, Cleanup,
};

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The routes of protocol 245 through a next hop in namespace `ns`, as `ip route` prints them.
fn static_routes(ns: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-n", ns, "-4", "route", "show", "proto", "245"]).output().unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" via "))
        .map(|l| l.trim_end().to_owned())
        .collect()
}

#[test]
fn netns_static_routes_and_tunnel_local() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}sr", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-static-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    ip(&["-n", &net.fw_a, "addr", "add", "192.0.2.11/24", "dev", &net.public_a]);
    // The operator's own route, which a configured route of the same prefix and metric must
    // leave alone.
    ip(&["-n", &net.fw_a, "route", "add", "100.64.0.0/10", "via", "192.0.2.2", "metric", "60"]);

    let routes = "ip route-static 198.51.100.0 255.255.255.0 192.0.2.2\n\
                  ip route-static 100.64.0.0 10 192.0.2.2\n\
                  ip route-static 203.0.113.0 24 GigabitEthernet0/0/2 192.0.2.2 preference 70 //the lab\n";
    let config_a = example("fw_a.cfg")
        .replace(" ike-peer b\n", " ike-peer b\n tunnel local 192.0.2.11\n")
        .replace(" pre-shared-key tiandihui2\n", " pre-shared-key tiandihui2\n local-id 10.1.1.1\n")
        + routes;
    let config_b = example("fw_b.cfg").replace(
        " remote-address 192.0.2.1\n",
        " remote-address 192.0.2.11\n remote-address authentication-address 10.1.1.1\n",
    );
    let (control_a, control_b) =
        start_reference_daemons(&mut cleanup, &dir, &net, &config_a, &config_b, Duration::from_secs(10));
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    // `check` says the article's route has no effect here.
    let out = Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .args(["check", "--offline"])
        .arg(dir.join("fw_a.cfg"))
        .output()
        .unwrap();
    let checked = output_text(&out);
    assert!(
        checked.contains("ip route-static 10.2.2.0/24 192.0.2.2: traffic to 10.2.2.0/24 is protected by ipsec policy policy1 1"),
        "{checked}"
    );

    // The tunnel comes up between 192.0.2.11 and 192.0.2.2, FW_A identified as 10.1.1.1.
    let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 4, "{replies} of 5\n{text}\nFW_A:\n{}\nFW_B:\n{}", logs("a.log"), logs("b.log"));
    let ike_b = keysteward(&net.fw_b, &["display", "ike", "sa"], &control_b);
    assert!(ike_b.contains("192.0.2.11              RD            v1:1  public"), "{ike_b}");
    let brief_a = keysteward(&net.fw_a, &["display", "ipsec", "sa", "brief"], &control_a);
    assert!(brief_a.contains("192.0.2.11      192.0.2.2       "), "{brief_a}");
    let verbose_b = keysteward(&net.fw_b, &["display", "ike", "sa", "verbose"], &control_b);
    assert!(verbose_b.contains("Remote ID               : 10.1.1.1"), "{verbose_b}");

    // The kernel has the two routes that are FW_A's to install, and not the article's.
    let kernel = static_routes(&net.fw_a);
    let public = &net.public_a;
    assert!(kernel.contains(&format!("198.51.100.0/24 via 192.0.2.2 dev {public} metric 60")), "{kernel:?}");
    assert!(kernel.contains(&format!("203.0.113.0/24 via 192.0.2.2 dev {public} metric 70")), "{kernel:?}");
    assert_eq!(kernel.len(), 2, "{kernel:?}");
    let clear = Command::new("ip").args(["-n", &net.fw_a, "route", "get", "10.2.2.2"]).output().unwrap();
    assert!(!output_text(&clear).contains("via 192.0.2.2"), "{}", output_text(&clear));

    // `display ip routing-table`, as text and JSON.
    let table = keysteward(&net.fw_a, &["display", "IP", "routing-table"], &control_a);
    for line in [
        "  198.51.100.0/24   Static  60   0          RD   192.0.2.2       GigabitEthernet0/0/2",
        "   203.0.113.0/24   Static  70   0          RD   192.0.2.2       GigabitEthernet0/0/2",
        "      10.2.2.0/24   Static  60   0           R   192.0.2.2       GigabitEthernet0/0/2",
        "  10.2.2.0/24 via 192.0.2.2 not installed: traffic to 10.2.2.0/24 is protected by ipsec policy policy1 1: its TUN route takes it",
        "  100.64.0.0/10 via 192.0.2.2 not installed: a route for 100.64.0.0/10 with metric 60 exists already",
    ] {
        assert!(table.lines().any(|l| l == line), "missing {line:?} in\n{table}");
    }
    assert!(table.contains("Destinations : 4        Routes : 4"), "{table}");
    let json = keysteward_stdout(&net.fw_a, &["display", "ip", "routing-table", "--json"], &control_a);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let installed: Vec<bool> =
        json["routes"].as_array().unwrap().iter().map(|r| r["installed"].as_bool().unwrap()).collect();
    assert_eq!(installed.iter().filter(|i| **i).count(), 2, "{json}");

    // A reload without the 203.0.113.0/24 route removes it from the kernel and the display.
    let without = config_a.replace(
        "ip route-static 203.0.113.0 24 GigabitEthernet0/0/2 192.0.2.2 preference 70 //the lab\n",
        "",
    );
    std::fs::write(dir.join("fw_a.cfg"), without).unwrap();
    let reload = keysteward(&net.fw_a, &["reload"], &control_a);
    assert!(reload.contains("reloaded"), "{reload}");
    let kernel = static_routes(&net.fw_a);
    assert_eq!(kernel, [format!("198.51.100.0/24 via 192.0.2.2 dev {public} metric 60")], "{kernel:?}");
    let table = keysteward(&net.fw_a, &["display", "ip", "routing-table"], &control_a);
    assert!(!table.contains("203.0.113.0"), "{table}");

    // An orderly stop removes the static routes (the daemon is FW_A's, started last).
    let pid = cleanup.children.last().map(std::process::Child::id).unwrap();
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let gone = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        !control_a.exists() && static_routes(&net.fw_a).is_empty()
    });
    assert!(gone, "left after stop: {:?}\n{}", static_routes(&net.fw_a), logs("a.log"));
    let operator =
        Command::new("ip").args(["-n", &net.fw_a, "route", "show", "100.64.0.0/10"]).output().unwrap();
    assert!(
        output_text(&operator).contains("via 192.0.2.2"),
        "the operator's route stays: {}",
        output_text(&operator)
    );
    assert!(
        logs("a.log").contains("static route 198.51.100.0/24 via 192.0.2.2 metric 60 removed"),
        "{}",
        logs("a.log")
    );
}
