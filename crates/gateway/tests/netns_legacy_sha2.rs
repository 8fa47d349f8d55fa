//! `undo ipsec sha2 compatible enable` (issue 15): HMAC-SHA2-256 truncated to 96 bits, as older
//! Huawei firmware does, checked on the wire by an implementation that is not ours (root only;
//! namespaces).
//!
//! strongSwan would be the natural peer (`sha256_96 = yes` on the child SA), but on this machine
//! it has only its userspace ESP (kernel-libipsec: the kernel has no ESP), which refuses the
//! algorithm (`failed to create ESP context: unsupported integrity algorithm
//! HMAC_SHA2_256_96`); `netns_strongswan_interop.rs` still runs the mismatch against it. Here
//! two keysteward gateways run the article's configuration with ESP `sha2-256` and the legacy
//! truncation on both sides: PC_A's pings are answered, `display ipsec sa brief` shows
//! `A:HMAC-SHA2-256-96;`, and Wireshark, given FW_A's key log (`HMAC-SHA-256-96
//! [draft-ietf-ipsec-ciph-sha-256-00]`), decrypts every ESP packet of both directions and finds
//! each 12-byte ICV good.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    keysteward, ping, reference_topology, skip_unless_root, spawn_keysteward, start_capture, stop_capture,
    wait_for_socket, Cleanup,
};

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(" esp authentication-algorithm md5\n"), "{text}");
    let text =
        text.replace(" esp authentication-algorithm md5\n", " esp authentication-algorithm sha2-256\n");
    format!("undo ipsec sha2 compatible enable\n{text}")
}

fn start(cleanup: &mut Cleanup, dir: &Path, ns: &str, name: &str, public: &str, extra: &[&str]) -> PathBuf {
    let config = dir.join(format!("fw_{name}.cfg"));
    std::fs::write(&config, example(&format!("fw_{name}.cfg"))).unwrap();
    let control = dir.join(format!("{name}.sock"));
    let log = dir.join(format!("{name}.log"));
    let map = format!("GigabitEthernet0/0/2={public}");
    let mut args = vec!["--interface-map", &map, "--log-level", "debug"];
    args.extend_from_slice(extra);
    spawn_keysteward(cleanup, ns, &config, &control, &log, &args);
    assert!(
        wait_for_socket(&control, Duration::from_secs(10)),
        "daemon {name} did not start:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    control
}

#[test]
fn netns_legacy_sha2_96_carries_pings_and_wireshark_finds_every_icv_good() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}s96", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-sha96-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let key_log = dir.join("keys.log");
    let _control_b = start(&mut cleanup, &dir, &net.fw_b, "b", &net.public_b, &[]);
    let control_a =
        start(&mut cleanup, &dir, &net.fw_a, "a", &net.public_a, &["--key-log", key_log.to_str().unwrap()]);
    let logs = || {
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap_or_default();
        format!("--- a.log\n{}\n--- b.log\n{}", read("a.log"), read("b.log"))
    };
    let pcap = dir.join("public.pcap");
    let capture = start_capture(&mut cleanup, &net.fw_a, &net.public_a, &pcap, Duration::from_secs(10));

    // The first ping starts the negotiation and may be lost; the next five must all come back.
    let _ = ping(&net.pc_a, 2, "0.5", "2", "10.2.2.2");
    let (replies, out) = ping(&net.pc_a, 5, "0.2", "2", "10.2.2.2");
    assert_eq!(replies, 5, "{out}\n{}", logs());
    let brief = keysteward(&net.fw_a, &["display", "ipsec", "sa", "brief"], &control_a);
    assert!(brief.contains("A:HMAC-SHA2-256-96;"), "{brief}");
    std::thread::sleep(Duration::from_millis(500));
    stop_capture(&mut cleanup, capture);

    // Wireshark with FW_A's two ESP records: every ESP packet decrypts, and its ICV is good.
    let records: Vec<String> = std::fs::read_to_string(&key_log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("uat:esp_sa:"))
        .map(str::to_owned)
        .collect();
    assert!(records.len() >= 2, "{records:?}");
    assert!(records.iter().all(|r| r.contains("\"HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]\"")));
    let mut check = Command::new("tshark");
    check.arg("-r").arg(&pcap).args(["-o", "esp.enable_encryption_decode:TRUE"]);
    check.args(["-o", "esp.enable_authentication_check:TRUE"]);
    for record in &records {
        check.args(["-o", record.as_str()]);
    }
    check.args(["-Y", "esp", "-T", "fields", "-E", "separator=;", "-e", "ip.src", "-e", "icmp.type"]);
    check.args(["-e", "esp.icv_good"]);
    let checked = check.output().expect("tshark runs");
    let complaints = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(checked.status.success() && !complaints.contains("nvalid"), "tshark refused: {complaints}");
    let table = String::from_utf8_lossy(&checked.stdout).into_owned();
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split(';').collect()).collect();
    for (src, icmp) in [("192.0.2.1", "8"), ("192.0.2.2", "0")] {
        let sent: Vec<_> =
            rows.iter().filter(|r| r.first().and_then(|s| s.split(',').next()) == Some(src)).collect();
        assert!(sent.len() >= 5, "ESP from {src}:\n{table}");
        for row in sent {
            assert!(row.get(1).is_some_and(|t| t.split(',').next() == Some(icmp)), "not decrypted:\n{table}");
            assert!(row.get(2).is_some_and(|g| g.contains('1') || g.contains("True")), "ICV:\n{table}");
        }
    }
    drop(cleanup);
}
