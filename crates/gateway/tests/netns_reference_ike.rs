//! Two `keysteward run` daemons in network namespaces negotiate the reference scenario over a
//! real link (root only; CI runs as root).
//!
//! ```text
//!   namespace ks<pid>a                     namespace ks<pid>b
//!   FW_A 192.0.2.1/24  ── veth pair ──   192.0.2.2/24 FW_B
//! ```
//!
//! FW_A runs `examples/fw_a.cfg` with `sa trigger-mode auto` added (negotiation at start-up,
//! without traffic to raise an acquire; `netns_reference_ping.rs` covers the traffic-triggered
//! path), FW_B `examples/fw_b.cfg` unchanged. The test waits for
//! `display ike sa --json` on both sides to show the phase-1 and phase-2 SAs as ready, and
//! checks the text layouts of `display ike sa` and `display ipsec sa brief`; then `reset ipsec
//! sa` and `reset ike sa` on FW_A delete the SAs on both sides (Deletes sent and honoured).
//! Namespaces and daemons are removed even when the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{
    keysteward, keysteward_output, ready, skip_unless_root, spawn_keysteward, veth, wait_for_socket, Cleanup,
};

fn display(ns: &str, control: &Path, json: bool) -> Option<String> {
    let args: &[&str] = if json { &["display", "ike", "sa", "--json"] } else { &["display", "ike", "sa"] };
    let out = keysteward_output(ns, args, control);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn netns_reference_scenario_negotiates_between_two_daemons() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}", std::process::id());
    let (ns_a, ns_b) = (format!("{tag}a"), format!("{tag}b"));
    let dir = std::env::temp_dir().join(format!("keysteward-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    cleanup.add_namespaces(&[&ns_a, &ns_b]);
    let (veth_a, veth_b) = (format!("{tag}va"), format!("{tag}vb"));
    veth(&ns_a, &veth_a, Some("192.0.2.1/24"), &ns_b, &veth_b, "192.0.2.2/24");

    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let fw_a = std::fs::read_to_string(examples.join("fw_a.cfg"))
        .unwrap()
        .replace(" ike-peer b\n", " ike-peer b\n sa trigger-mode auto\n");
    assert!(fw_a.contains("sa trigger-mode auto"));
    std::fs::write(dir.join("fw_a.cfg"), fw_a).unwrap();
    std::fs::copy(examples.join("fw_b.cfg"), dir.join("fw_b.cfg")).unwrap();

    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    // The examples name the public interface GigabitEthernet0/0/2: map it to the veth ends.
    let (map_a, map_b) = (format!("GigabitEthernet0/0/2={veth_a}"), format!("GigabitEthernet0/0/2={veth_b}"));
    for (ns, cfg, control, log, map) in
        [(&ns_b, "fw_b.cfg", &control_b, "b.log", &map_b), (&ns_a, "fw_a.cfg", &control_a, "a.log", &map_a)]
    {
        spawn_keysteward(
            &mut cleanup,
            ns,
            &dir.join(cfg),
            control,
            &dir.join(log),
            &["--interface-map", map],
        );
        // FW_B must listen before FW_A's first message; give each daemon a moment to bind.
        wait_for_socket(control, Duration::from_secs(10));
    }

    let start = Instant::now();
    let mut last = (String::new(), String::new());
    let up = loop {
        let a = display(&ns_a, &control_a, true).unwrap_or_default();
        let b = display(&ns_b, &control_b, true).unwrap_or_default();
        if ready(&a, "v1:1") && ready(&a, "v1:2") && ready(&b, "v1:1") && ready(&b, "v1:2") {
            break true;
        }
        last = (a, b);
        if start.elapsed() > Duration::from_secs(20) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    assert!(
        up,
        "no tunnel after 20 s\nFW_A: {}\nFW_B: {}\nFW_A log:\n{}\nFW_B log:\n{}",
        last.0,
        last.1,
        logs("a.log"),
        logs("b.log")
    );

    let text = display(&ns_a, &control_a, false).expect("display ike sa");
    assert!(text.starts_with("current ike sa number: 2\n"), "{text}");
    assert!(text.contains("192.0.2.2               RD|ST         v1:2  public"), "{text}");
    assert!(text.contains("192.0.2.2               RD|ST         v1:1  public"), "{text}");
    let text_b = display(&ns_b, &control_b, false).expect("display ike sa");
    assert!(text_b.contains("192.0.2.1               RD            v1:1  public"), "{text_b}");
    let log_a = logs("a.log");
    assert!(log_a.contains("esp-des-cbc/hmac-md5-96/tunnel"), "{log_a}");

    // `display ipsec sa brief`: both directions with the article's algorithm column.
    let brief = keysteward(&ns_a, &["display", "ipsec", "sa", "brief"], &control_a);
    assert!(brief.starts_with("current ipsec sa number: 2\ncurrent ipsec tunnel number: 1\n"), "{brief}");
    assert!(brief.contains("192.0.2.1       192.0.2.2"), "{brief}");
    assert!(brief.contains("192.0.2.2       192.0.2.1"), "{brief}");
    assert_eq!(brief.matches("ESP       E:DES;A:HMAC-MD5-96;").count(), 2, "{brief}");

    // `reset ipsec sa` on FW_A: its Deletes reach FW_B, which drops the pair too; the IKE SA
    // stays. Then `reset ike sa`: both sides end up with nothing.
    let reset = keysteward(&ns_a, &["reset", "ipsec", "sa"], &control_a);
    assert!(reset.contains("1 IPsec SA pair(s) reset"), "{reset}");
    let gone = |ns: &str, control: &Path, phase: &str| {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if !display(ns, control, true).unwrap_or_default().contains(&format!("\"phase\":\"{phase}\"")) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(
        gone(&ns_a, &control_a, "v1:2") && gone(&ns_b, &control_b, "v1:2"),
        "IPsec SAs deleted on both sides\n{}",
        logs("b.log")
    );
    assert!(ready(&display(&ns_b, &control_b, true).unwrap_or_default(), "v1:1"), "the IKE SA stays");
    let reset = keysteward(&ns_a, &["reset", "ike", "sa"], &control_a);
    assert!(reset.contains("1 IKE SA(s) reset"), "{reset}");
    assert!(
        gone(&ns_a, &control_a, "v1:1") && gone(&ns_b, &control_b, "v1:1"),
        "IKE SAs deleted on both sides\n{}",
        logs("b.log")
    );
    drop(cleanup);
    assert!(
        !String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout)
            .contains(&tag),
        "namespaces removed"
    );
}
