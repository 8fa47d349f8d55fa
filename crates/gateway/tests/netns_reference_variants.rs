//! Issue 5's variants of the reference scenario, end to end through the data plane (root
//! only; CI runs as root): aggressive mode, FQDN identities, PFS, AES-GCM, AH+ESP, AH alone,
//! transport mode between the gateways' own addresses, and path-MTU handling.
//!
//! ```text
//!  ks<pid><v>pa       ks<pid><v>fa                     ks<pid><v>fb        ks<pid><v>pb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! Each variant builds its own four namespaces (a distinct suffix `<v>` per variant, so they
//! run at the same time), runs `examples/fw_a.cfg` and `examples/fw_b.cfg` with a few lines
//! changed, pings through the tunnel (at most the first ping lost: it triggers the
//! negotiation), captures the public link with tshark and checks it carries no clear ICMP
//! between the protected endpoints and the expected IPsec protocols (ESP 50, AH 51), and
//! checks `display ipsec sa brief --json` names the negotiated algorithms. Everything a
//! variant made is removed by its `Cleanup` guard, even when it fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::{
    count_frames, in_ns, keysteward, output_text, reference_topology, skip_unless_root, start_capture,
    start_reference_daemons, stop_capture, Cleanup,
};

/// One variant's topology, daemons and capture.
struct Net {
    cleanup: Cleanup,
    pc_a: String,
    fw_a: String,
    dir: PathBuf,
    control_a: PathBuf,
    capture: PathBuf,
    capture_pid: u32,
}

impl Net {
    fn logs(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!("FW_A log:\n{}\nFW_B log:\n{}", read("a.log"), read("b.log"))
    }

    /// Stops the capture (SIGINT so tshark flushes) and returns a counter of the frames
    /// that match a display filter.
    fn stop_capture(&mut self) -> impl Fn(&str) -> usize + '_ {
        std::thread::sleep(Duration::from_millis(500));
        stop_capture(&mut self.cleanup, self.capture_pid);
        |filter: &str| count_frames(&self.capture, filter)
    }
}

/// Builds the reference topology under `ks<pid><suffix>`, starts FW_B then FW_A with the
/// two configurations and a capture of FW_A's public link.
fn build(suffix: &str, config_a: &str, config_b: &str) -> Net {
    let tag = format!("ks{}{suffix}", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-variants-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let limit = Duration::from_secs(15);
    let (control_a, _) = start_reference_daemons(&mut cleanup, &dir, &net, config_a, config_b, limit);
    let capture = dir.join("public.pcap");
    let capture_pid = start_capture(&mut cleanup, &net.fw_a, &net.public_a, &capture, limit);
    Net { cleanup, pc_a: net.pc_a, fw_a: net.fw_a, dir, control_a, capture, capture_pid }
}

/// The example configurations with `edits` applied to both: (old, new for FW_A, new for FW_B).
fn configs(edits: &[(&str, &str, &str)]) -> (String, String) {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut a = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap();
    let mut b = std::fs::read_to_string(examples.join("fw_b.cfg")).unwrap();
    for (old, new_a, new_b) in edits {
        assert!(a.contains(old) && b.contains(old), "{old}");
        a = a.replacen(old, new_a, 1);
        b = b.replacen(old, new_b, 1);
    }
    (a, b)
}

/// Pings `target` five times from `ns`; returns the number of replies and the output.
fn ping(ns: &str, target: &str) -> (usize, String) {
    common::ping(ns, 5, "0.3", "2", target)
}

/// One ping that triggers the negotiation (it may be lost: it raises the acquire), a wait
/// until FW_A shows its phase-2 SA ready, then five pings; returns the replies to those five.
/// For tests about something else than the start of the tunnel.
fn trigger_then_ping(net: &Net, from: &str, target: &str) -> (usize, String) {
    let first = output_text(&in_ns(from, &["ping", "-c", "1", "-W", "3", target]));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let sas = keysteward(&net.fw_a, &["display", "ike", "sa", "--json"], &net.control_a);
        if common::ready(&sas, "v1:2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (replies, text) = ping(from, target);
    (replies, format!("trigger:\n{first}\nthen:\n{text}"))
}

/// `display ipsec sa brief --json` rows as (protocol, algorithm).
fn brief(net: &Net) -> Vec<(String, String)> {
    let text = keysteward(&net.fw_a, &["display", "ipsec", "sa", "brief", "--json"], &net.control_a);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    value["sas"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap_or("").to_owned(),
                r["algorithm"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// What one variant expects to see.
struct Variant {
    name: &'static str,
    suffix: &'static str,
    edits: Vec<(&'static str, &'static str, &'static str)>,
    /// (protocol, algorithm) rows of `display ipsec sa brief`, each expected twice (in, out).
    sas: Vec<(&'static str, &'static str)>,
    /// Ping from FW_A to FW_B's public address (transport mode) instead of PC_A to PC_B.
    transport: bool,
    /// Whether the public link must carry AH (51) and ESP (50) frames.
    ah: bool,
    esp: bool,
    /// Text FW_A's log must contain (the negotiated suite).
    log: &'static str,
    /// Strings some frame of the public capture must contain (identities sent in clear).
    on_the_wire: Vec<&'static str>,
}

fn run(v: &Variant) -> Result<(), String> {
    let (config_a, config_b) = configs(&v.edits);
    let mut net = build(v.suffix, &config_a, &config_b);
    let (from, target) =
        if v.transport { (net.fw_a.clone(), "192.0.2.2") } else { (net.pc_a.clone(), "10.2.2.2") };
    // The first ping triggers the negotiation; it alone may be lost.
    let (replies, text) = ping(&from, target);
    let fail = |net: &Net, what: String| Err(format!("[{}] {what}\n{}", v.name, net.logs()));
    if replies < 4 {
        return fail(&net, format!("{replies} of 5 pings answered (at most the first may be lost)\n{text}"));
    }
    let mut rows = brief(&net);
    rows.sort();
    let mut expected: Vec<(String, String)> =
        v.sas.iter().flat_map(|(p, a)| [(*p, *a); 2]).map(|(p, a)| (p.to_owned(), a.to_owned())).collect();
    expected.sort();
    if rows != expected {
        return fail(&net, format!("display ipsec sa brief: {rows:?}, expected {expected:?}"));
    }
    // The other SA displays answer for every variant (AH pairs included) and list its SPIs.
    for display in [&["display", "ipsec", "sa"][..], &["display", "firewall", "session", "table"][..]] {
        let text = keysteward(&net.fw_a, display, &net.control_a);
        if text.trim().is_empty() || text.to_lowercase().contains("error") {
            return fail(&net, format!("{}: {text:?}", display.join(" ")));
        }
    }
    let log = std::fs::read_to_string(net.dir.join("a.log")).unwrap_or_default();
    if !log.contains(v.log) {
        return fail(&net, format!("FW_A's log does not mention {:?}", v.log));
    }
    let (icmp_clear, ah, esp, all) = {
        let count = net.stop_capture();
        // ICMP outside any IPsec header between the protected endpoints (AH alone carries
        // it authenticated but readable; it must still be inside AH).
        let endpoints = if v.transport { "192.0.2.2" } else { "10.2.2.2" };
        let clear = count(&format!("icmp && ip.addr == {endpoints} && !ah && !esp"));
        (clear, count("ip.proto == 51"), count("ip.proto == 50"), count("frame"))
    };
    let summary = format!("{all} frames: {icmp_clear} clear ICMP, {ah} AH, {esp} ESP");
    for text in &v.on_the_wire {
        if count_frames(&net.capture, &format!("udp.port == 500 && frame contains \"{text}\"")) == 0 {
            return fail(&net, format!("no IKE frame carries {text:?}: {summary}"));
        }
    }
    if icmp_clear != 0 {
        return fail(&net, format!("clear ICMP on the public link: {summary}"));
    }
    let wanted = 2 * replies;
    let (ah_ok, esp_ok) = if v.ah { (ah >= wanted, esp == 0) } else { (ah == 0, esp >= wanted) };
    // AH+ESP: the outer protocol is AH; ESP travels inside it, so IP protocol 50 never shows.
    if !(ah_ok && esp_ok && (v.esp || !v.ah || esp == 0)) {
        return fail(&net, format!("unexpected protocols on the public link: {summary}"));
    }
    if v.ah && v.esp {
        let nested = count_frames(&net.capture, "ah && esp");
        if nested < wanted {
            return fail(&net, format!("{nested} AH frames carry ESP: {summary}"));
        }
    }
    drop(net);
    Ok(())
}

fn variants() -> Vec<Variant> {
    const ESP_DES_MD5: (&str, &str) = ("ESP", "E:DES;A:HMAC-MD5-96;");
    let mode = " exchange-mode main\n";
    vec![
        Variant {
            name: "exchange-mode aggressive",
            suffix: "ag",
            edits: vec![(mode, " exchange-mode aggressive\n", " exchange-mode aggressive\n")],
            sas: vec![ESP_DES_MD5],
            transport: false,
            ah: false,
            esp: true,
            log: "aggressive",
            on_the_wire: vec![],
        },
        Variant {
            name: "FQDN identities",
            suffix: "fq",
            edits: vec![
                ("ike proposal 10\n", "ike local-name fwa.example\nike proposal 10\n", "ike local-name fwb.example\nike proposal 10\n"),
                // Aggressive mode, as vrp-cli.md's FQDN example: the identities travel in clear
                // in AM1/AM2, so the capture shows them, and each side checks `remote-id`.
                (
                    mode,
                    " exchange-mode aggressive\n local-id-type fqdn\n remote-id fwb.example\n",
                    " exchange-mode aggressive\n local-id-type fqdn\n remote-id fwa.example\n",
                ),
            ],
            sas: vec![ESP_DES_MD5],
            transport: false,
            ah: false,
            esp: true,
            log: "established as initiator",
            on_the_wire: vec!["fwa.example", "fwb.example"],
        },
        Variant {
            name: "PFS",
            suffix: "pf",
            edits: vec![(" ike-peer ", " pfs dh-group14\n ike-peer ", " pfs dh-group14\n ike-peer ")],
            sas: vec![ESP_DES_MD5],
            transport: false,
            ah: false,
            esp: true,
            log: "pfs-group14",
            on_the_wire: vec![],
        },
        Variant {
            name: "AES-GCM",
            suffix: "gc",
            edits: vec![(
                " esp encryption-algorithm des\n",
                " esp encryption-algorithm aes-128-gcm-128\n",
                " esp encryption-algorithm aes-128-gcm-128\n",
            )],
            sas: vec![("ESP", "E:AES-GCM-128;")],
            transport: false,
            ah: false,
            esp: true,
            log: "esp-aes-gcm-16-128/tunnel",
            on_the_wire: vec![],
        },
        Variant {
            name: "AH+ESP",
            suffix: "ae",
            edits: vec![(
                " transform esp\n",
                " transform ah-esp\n ah authentication-algorithm sha2-256\n",
                " transform ah-esp\n ah authentication-algorithm sha2-256\n",
            )],
            sas: vec![("AH", "A:HMAC-SHA2-256-128;"), ESP_DES_MD5],
            transport: false,
            ah: true,
            esp: true,
            log: "ah-hmac-sha2-256-128+esp-des",
            on_the_wire: vec![],
        },
        Variant {
            name: "AH",
            suffix: "ah",
            edits: vec![(
                " transform esp\n",
                " transform ah\n ah authentication-algorithm sha2-512\n",
                " transform ah\n ah authentication-algorithm sha2-512\n",
            )],
            sas: vec![("AH", "A:HMAC-SHA2-512-256;")],
            transport: false,
            ah: true,
            esp: false,
            log: "ah-hmac-sha2-512-256/tunnel",
            on_the_wire: vec![],
        },
        Variant {
            name: "transport mode between the gateways",
            suffix: "tr",
            edits: vec![
                (
                    " rule 5 permit ip source 10.",
                    " rule 5 permit icmp source 192.0.2.1 0 destination 192.0.2.2 0\n rule 6 deny ip source 10.",
                    " rule 5 permit icmp source 192.0.2.2 0 destination 192.0.2.1 0\n rule 6 deny ip source 10.",
                ),
                (" encapsulation-mode tunnel\n", " encapsulation-mode transport\n", " encapsulation-mode transport\n"),
                (
                    " esp encryption-algorithm des\n",
                    " esp encryption-algorithm aes-256\n",
                    " esp encryption-algorithm aes-256\n",
                ),
                (
                    " esp authentication-algorithm md5\n",
                    " esp authentication-algorithm sha2-256\n",
                    " esp authentication-algorithm sha2-256\n",
                ),
            ],
            sas: vec![("ESP", "E:AES-256;A:HMAC-SHA2-256-128;")],
            transport: true,
            ah: false,
            esp: true,
            log: "/transport",
            on_the_wire: vec![],
        },
        Variant {
            name: "AH in transport mode between the gateways",
            suffix: "at",
            edits: vec![
                (
                    " rule 5 permit ip source 10.",
                    " rule 5 permit icmp source 192.0.2.1 0 destination 192.0.2.2 0\n rule 6 deny ip source 10.",
                    " rule 5 permit icmp source 192.0.2.2 0 destination 192.0.2.1 0\n rule 6 deny ip source 10.",
                ),
                (" encapsulation-mode tunnel\n", " encapsulation-mode transport\n", " encapsulation-mode transport\n"),
                (
                    " transform esp\n",
                    " transform ah\n ah authentication-algorithm sha1\n",
                    " transform ah\n ah authentication-algorithm sha1\n",
                ),
            ],
            sas: vec![("AH", "A:HMAC-SHA1-96;")],
            transport: true,
            ah: true,
            esp: false,
            log: "ah-hmac-sha1-96/transport",
            on_the_wire: vec![],
        },
    ]
}

/// Every variant at once (each in its own namespaces); the failures are reported together.
#[test]
fn netns_reference_variants_carry_traffic() {
    if skip_unless_root() {
        return;
    }
    let variants = variants();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = variants
            .iter()
            .map(|v| {
                let handle = scope.spawn(move || run(v));
                std::thread::sleep(Duration::from_millis(300));
                handle
            })
            .collect();
        handles
            .into_iter()
            .zip(&variants)
            .filter_map(|(h, v)| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(format!("[{}] panicked", v.name)),
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} variants failed:\n{}",
        failures.len(),
        variants.len(),
        failures.join("\n\n")
    );
}

/// Path MTU through the tunnel, with AH (HMAC-SHA2-512-256) outside ESP (AES-256,
/// HMAC-SHA2-512-256), whose overhead is larger than the 100 bytes the TUN's MTU (1400)
/// leaves, so both limits show:
/// - a 1500-byte DF ping stops at FW_A's TUN: the kernel answers "fragmentation needed",
///   MTU 1400;
/// - a 1400-byte DF ping enters the TUN but does not fit the path after encapsulation:
///   FW_A's data plane answers "fragmentation needed" from 192.0.2.1 with MTU 1374
///   (1500 − 20 outer IPv4 − 44 AH = 1436 for ESP; 1436 − 8 header − 16 IV − 32 ICV = 1380,
///   rounded down to whole AES blocks 1376, minus the 2 trailer bytes);
/// - a 3000-byte ping without DF is fragmented (by the kernel to the TUN's MTU, then by the
///   data plane before encryption) and answered;
/// - nothing bigger than the public link's MTU (1500) leaves FW_A.
#[test]
fn netns_path_mtu_through_the_tunnel() {
    if skip_unless_root() {
        return;
    }
    let both = |s: &'static str| (s, s);
    let edits: Vec<(&str, &str, &str)> = [
        (" transform esp\n", both(" transform ah-esp\n ah authentication-algorithm sha2-512\n")),
        (" esp encryption-algorithm des\n", both(" esp encryption-algorithm aes-256\n")),
        (" esp authentication-algorithm md5\n", both(" esp authentication-algorithm sha2-512\n")),
    ]
    .into_iter()
    .map(|(old, (a, b))| (old, a, b))
    .collect();
    let (config_a, config_b) = configs(&edits);
    let mut net = build("mt", &config_a, &config_b);
    let pc_a = net.pc_a.clone();
    let (replies, text) = trigger_then_ping(&net, &pc_a, "10.2.2.2");
    assert!(replies >= 5, "{replies} of 5 pings answered\n{text}\n{}", net.logs());

    let ping_df = |size: &str| {
        output_text(&in_ns(
            &pc_a,
            &["ping", "-c", "2", "-i", "0.3", "-W", "2", "-M", "do", "-s", size, "10.2.2.2"],
        ))
    };
    let kernel = ping_df("1472");
    assert!(!kernel.contains("bytes from 10.2.2.2"), "a 1500-byte DF ping cannot pass:\n{kernel}");
    assert!(
        kernel.contains("From 10.1.1.1") && kernel.contains("Frag needed") && kernel.contains("mtu = 1400"),
        "FW_A's kernel refuses it at the TUN:\n{kernel}"
    );
    let data_plane = ping_df("1372");
    assert!(!data_plane.contains("bytes from 10.2.2.2"), "a 1400-byte DF ping cannot pass:\n{data_plane}");
    assert!(
        data_plane.contains("From 192.0.2.1")
            && data_plane.contains("Frag needed")
            && data_plane.contains("mtu = 1374"),
        "FW_A's data plane answers with the tunnel's MTU:\n{data_plane}\n{}",
        net.logs()
    );
    let fits = ping_df("1346");
    assert_eq!(fits.matches("1354 bytes from 10.2.2.2").count(), 2, "a 1374-byte DF ping fits:\n{fits}");

    let big = output_text(&in_ns(
        &pc_a,
        &["ping", "-c", "3", "-i", "0.3", "-W", "2", "-M", "dont", "-s", "3000", "10.2.2.2"],
    ));
    let answered = big.matches("3008 bytes from 10.2.2.2").count();
    assert!(answered >= 3, "{answered} of 3 big pings answered:\n{big}\n{}", net.logs());

    let count = net.stop_capture();
    let (too_big, ah, clear) =
        (count("ip.len > 1500"), count("ip.proto == 51"), count("icmp && ip.addr == 10.2.2.2 && !ah"));
    assert_eq!(too_big, 0, "packets above the public MTU left FW_A");
    assert_eq!(clear, 0, "clear ICMP on the public link");
    // Each 3028-byte datagram is three fragments at the TUN, and the 1400-byte ones two
    // each after the data plane: at least five AH packets per datagram each way.
    assert!(ah >= 2 * 3 * 5 + 2 * 2 + 2 * replies, "{ah} AH frames");
}
