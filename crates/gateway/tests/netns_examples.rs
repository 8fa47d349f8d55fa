//! The example pairs of `examples/` carry traffic on the reference topology (root only; CI runs
//! as root), run unchanged with their `GigabitEthernet0/0/2` mapped to the public veth ends:
//! aggressive mode with FQDN identities (`examples/aggressive-fqdn/`), and certificates
//! (`examples/certificates/`, with the test PKI its `make-pki` script makes). The hub example
//! runs in `netns_hub.rs`.
//!
//! ```text
//!  ks<pid>Xpa         ks<pid>Xfa                       ks<pid>Xfb          ks<pid>Xpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! PC_A pings PC_B: the first packet triggers the negotiation (at most it is lost), the others
//! must be answered, and FW_A's log must show what the example is about. Namespaces and
//! daemons are removed even when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    keysteward, listed_namespaces, ping, reference_topology, skip_unless_root, start_reference_daemons,
    Cleanup,
};

fn example(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(dir)
}

/// Brings up `examples/DIR/fw_a.cfg` and `fw_b.cfg` (after `make-pki`, when the directory has
/// it), pings PC_B from PC_A, and checks that FW_A's log holds each of `logged`.
fn run_pair(suffix: &str, dir: &str, logged: &[&str]) {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}{suffix}", std::process::id());
    let scratch = std::env::temp_dir().join(format!("keysteward-examples-{tag}"));
    let mut cleanup = Cleanup::new(scratch.clone());
    let script = example(dir).join("make-pki");
    if script.exists() {
        let out = Command::new(&script).arg(&scratch).output().unwrap();
        assert!(out.status.success(), "make-pki: {}", String::from_utf8_lossy(&out.stderr));
    }
    let read = |file: &str| std::fs::read_to_string(example(dir).join(file)).unwrap();
    let net = reference_topology(&mut cleanup, &tag);
    let limit = Duration::from_secs(15);
    let (control_a, _) =
        start_reference_daemons(&mut cleanup, &scratch, &net, &read("fw_a.cfg"), &read("fw_b.cfg"), limit);
    let logs = || {
        let log = |name: &str| std::fs::read_to_string(scratch.join(name)).unwrap_or_default();
        format!("FW_A log:\n{}\nFW_B log:\n{}", log("a.log"), log("b.log"))
    };
    let (replies, text) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert!(replies >= 4, "{dir}: {replies} of 5 pings answered\n{text}\n{}", logs());
    let ike = keysteward(&net.fw_a, &["display", "ike", "sa"], &control_a);
    assert!(ike.contains("192.0.2.2") && ike.contains("RD"), "{dir}: {ike}");
    let log_a = std::fs::read_to_string(scratch.join("a.log")).unwrap_or_default();
    for wanted in logged {
        assert!(log_a.contains(wanted), "{dir}: `{wanted}` not in FW_A's log\n{}", logs());
    }
    let names = [&net.pc_a, &net.fw_a, &net.fw_b, &net.pc_b].map(|n| n.to_string());
    drop(cleanup);
    let (ours, listed) = listed_namespaces(|n| names.iter().any(|a| a == n));
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}

#[test]
fn netns_example_aggressive_mode_with_fqdn_identities_carries_traffic() {
    run_pair("xg", "aggressive-fqdn", &["aggressive mode", "fwb.example.net"]);
}

#[test]
fn netns_example_certificates_carry_traffic() {
    run_pair("xc", "certificates", &["peer certificate subject 'C=CN, O=keysteward example, CN=fw-b'"]);
}
