//! One spoofed datagram must not keep a tunnel down (issue 13, finding 1; root only): an MM1
//! with FW_B's address and another source port reaches FW_A before any traffic, leaving a
//! half-open responder IKE SA for FW_B there. Then PC_A pings PC_B: FW_A's own initiation to
//! FW_B must start at once beside the half-open SA, and the pings get through within ping's
//! own deadline of a few seconds — before the fix they waited for the half-open SA's 60 s
//! lifetime. `display ike statistics` shows the half-open SA, which stays harmless.
//!
//! ```text
//!  ks<pid>hpa          ks<pid>hfa                        ks<pid>hfb           ks<pid>hpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//!                                                 └ UDP 192.0.2.2:40500 → 192.0.2.1:500: MM1
//! ```
//!
//! Namespaces and daemons are removed even when the test fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crypto::OsRandom;
use ike::{Acquire, Engine};

mod common;
use common::{
    in_ns, keysteward_stdout, listed_namespaces, output_text, ping, reference_topology, skip_unless_root,
    start_reference_daemons, wait_until, Cleanup,
};

/// An MM1 as FW_B (examples/fw_b.cfg) sends it: a fresh initiator's first message.
fn mm1_of_fw_b(examples: &Path) -> Vec<u8> {
    let checked = vrp::load_file(&examples.join("fw_b.cfg"), None).expect("readable example");
    let config = checked.config.unwrap_or_else(|| panic!("fw_b.cfg: {:?}", checked.diagnostics));
    let config = keysteward::engine_config::engine_config(&config).expect("runnable by the engine");
    let selector = config.policies[0].selectors[0];
    let mut engine = Engine::new(config, Box::new(OsRandom));
    #[allow(clippy::disallowed_methods)] // the engine needs some instant; nothing is timed here
    let now = Instant::now();
    engine.handle_acquire(now, Acquire { policy: 0, selector });
    engine.poll_transmit().expect("MM1").payload
}

fn ike_statistics(ns: &str, control: &Path) -> serde_json::Value {
    let text = keysteward_stdout(ns, &["display", "ike", "statistics", "--json"], control);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("display ike statistics: {e}: {text}"))
}

#[test]
fn netns_a_spoofed_mm1_from_the_peer_address_does_not_keep_the_tunnel_down() {
    if skip_unless_root() {
        return;
    }
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mm1 = mm1_of_fw_b(&examples);
    let read = |name: &str| std::fs::read_to_string(examples.join(name)).unwrap();
    let tag = format!("ks{}h", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-spoof-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let (control_a, _control_b) = start_reference_daemons(
        &mut cleanup,
        &dir,
        &net,
        &read("fw_a.cfg"),
        &read("fw_b.cfg"),
        Duration::from_secs(10),
    );
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    // The forged MM1, from FW_B's address and port 40500 (FW_B's daemon holds 500 and 4500).
    const SEND: &str = "import socket, sys\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
s.bind(('192.0.2.2', 40500))\n\
s.sendto(bytes.fromhex(sys.argv[1]), ('192.0.2.1', 500))\n";
    let hex: String = mm1.iter().map(|b| format!("{b:02x}")).collect();
    let sent = in_ns(&net.fw_b, &["python3", "-c", SEND, &hex]);
    assert!(sent.status.success(), "{}", output_text(&sent));
    let half_open = || ike_statistics(&net.fw_a, &control_a)["half_open"].as_u64().unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || half_open() == 1),
        "FW_A did not answer the MM1: {}\nFW_A log:\n{}",
        ike_statistics(&net.fw_a, &control_a),
        logs("a.log")
    );

    // Pings 0.2 s apart until three replies or ping's own deadline of 5 s (-w); the first
    // packet raises the acquire and may be lost.
    let text = output_text(&in_ns(&net.pc_a, &["ping", "-c", "3", "-i", "0.2", "-w", "5", "10.2.2.2"]));
    let replies = text.matches("bytes from 10.2.2.2").count();
    assert!(
        replies >= 2,
        "{replies} replies within ping's 5 s deadline\n{text}\nFW_A log:\n{}\nFW_B log:\n{}",
        logs("a.log"),
        logs("b.log")
    );
    // FW_A initiated beside the half-open SA, which is still there (it lives out its lifetime).
    assert!(logs("a.log").contains("established as initiator"), "{}", logs("a.log"));
    assert_eq!(half_open(), 1, "{}", ike_statistics(&net.fw_a, &control_a));
    let (replies, text) = ping(&net.pc_a, 2, "0.2", "1", "10.2.2.2");
    assert_eq!(replies, 2, "{text}");

    drop(cleanup);
    let (ours, listed) = listed_namespaces(|n| n.len() == tag.len() + 2 && n.starts_with(&tag));
    assert_eq!(ours, 0, "namespaces removed: {listed}");
}
