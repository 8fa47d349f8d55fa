//! `keysteward demo` (root): the README's first command brings the reference scenario up in
//! namespaces, pings through the tunnel, prints the IKE message flow as both gateways traced
//! it and both gateways' displays, and leaves nothing behind; `--aggressive` and `--pfs` show
//! the variants; without root it refuses with what it needs.

use std::process::{Command, Stdio};

mod common;
use common::{is_root, skip_unless_root};

/// Runs `keysteward demo ARGS`; returns its success, stdout+stderr, and namespace tag.
fn demo(args: &[&str]) -> (bool, String, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let tag = format!("ksd{}", child.id());
    let out = child.wait_with_output().expect("demo ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, tag)
}

/// The flow lines: (sender, receiver, step, payloads), in the order printed.
fn flow(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter(|l| l.starts_with("FW_A -> FW_B  ") || l.starts_with("FW_B -> FW_A  "))
        .map(|l| {
            let mut words = l.split_whitespace();
            let from = words.next().unwrap_or_default().to_string();
            words.next();
            let to = words.next().unwrap_or_default().to_string();
            let step = words.next().unwrap_or_default().to_string();
            let payloads = words.collect::<Vec<_>>().join(" ");
            (from, to, step, payloads)
        })
        .collect()
}

fn senders_and_steps(flow: &[(String, String, String, String)]) -> Vec<String> {
    flow.iter().map(|(from, to, step, _)| format!("{from}>{to} {step}")).collect()
}

fn payloads<'f>(flow: &'f [(String, String, String, String)], step: &str) -> &'f str {
    flow.iter().find(|f| f.2 == step).map(|f| f.3.as_str()).unwrap_or_else(|| panic!("no {step}: {flow:?}"))
}

/// What every variant shows: the pings, both gateways' displays with the same SAs seen from
/// each side, no message the receiver did not accept, and no namespace left.
fn assert_common(ok: bool, text: &str, tag: &str) {
    assert!(ok, "demo failed:\n{text}");
    let received: usize = text
        .split(" received,")
        .next()
        .and_then(|head| head.rsplit(", ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(received >= 4, "at most the first ping may be lost:\n{text}");
    assert!(!text.contains("   <- "), "every message was accepted as sent:\n{text}");
    for gateway in ["FW_A", "FW_B"] {
        for display in ["display ike sa", "display ipsec sa brief", "display firewall session table"] {
            assert_eq!(
                text.matches(&format!("<{gateway}> {display}\n")).count(),
                1,
                "{gateway} {display}:\n{text}"
            );
        }
    }
    // FW_A initiated (ST), FW_B answered; both hold phase 1 and phase 2.
    assert!(text.contains("RD|ST         v1:2  public"), "{text}");
    assert!(text.contains("RD|ST         v1:1  public"), "{text}");
    assert!(text.contains("192.0.2.1               RD            v1:2  public"), "{text}");
    assert!(text.contains("192.0.2.1               RD            v1:1  public"), "{text}");
    // Two SAs on each gateway, the same two SPIs seen from both sides.
    let rows: Vec<&str> = text.lines().filter(|l| l.ends_with("ESP       E:DES;A:HMAC-MD5-96;")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    let mut on_a: Vec<&str> =
        rows[..2].iter().map(|r| r.split_whitespace().nth(2).unwrap_or_default()).collect();
    let mut on_b: Vec<&str> =
        rows[2..].iter().map(|r| r.split_whitespace().nth(2).unwrap_or_default()).collect();
    on_a.sort_unstable();
    on_b.sort_unstable();
    assert_eq!(on_a, on_b, "{text}");
    // Both see the IKE session FW_A opened, the ESP flow between them and (issue 15) the
    // protected inner flow: PC_A's pings, as USG shows ICMP echo (identifier → type 8).
    assert_eq!(text.matches(" Current Total Sessions : 3\n").count(), 2, "{text}");
    let icmp: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("  icmp  VPN:public --> public 10.1.1.2:") && l.ends_with("-->10.2.2.2:2048")
        })
        .collect();
    assert_eq!(icmp.len(), 2, "{text}");
    assert_eq!(icmp[0], icmp[1], "the same flow on both gateways: {text}");
    assert_eq!(
        text.matches("  udp  VPN:public --> public 192.0.2.1:500-->192.0.2.2:500\n").count(),
        2,
        "{text}"
    );
    assert_eq!(text.matches("  esp  VPN:public --> public 192.0.2.1:0-->192.0.2.2:0\n").count(), 2, "{text}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    assert!(!String::from_utf8_lossy(&namespaces.stdout).contains(tag), "the demo removed its namespaces");
}

/// `keysteward demo VARIANT` with what every run shows checked, and the output naming what
/// the variant changed (`changed`); returns the output and its flow lines.
fn demo_variant(variant: &str, changed: &str) -> (String, Vec<(String, String, String, String)>) {
    let (ok, text, tag) = demo(&[variant]);
    assert_common(ok, &text, &tag);
    assert!(text.contains(changed), "the output says what it changed:\n{text}");
    let flow = flow(&text);
    (text, flow)
}

#[test]
fn netns_demo_pings_through_the_tunnel_shows_main_mode_and_quick_mode_and_cleans_up() {
    if skip_unless_root() {
        return;
    }
    let (ok, text, tag) = demo(&[]);
    assert_common(ok, &text, &tag);
    let flow = flow(&text);
    assert_eq!(
        senders_and_steps(&flow),
        [
            "FW_A>FW_B MM1",
            "FW_B>FW_A MM2",
            "FW_A>FW_B MM3",
            "FW_B>FW_A MM4",
            "FW_A>FW_B MM5",
            "FW_B>FW_A MM6",
            "FW_A>FW_B QM1",
            "FW_B>FW_A QM2",
            "FW_A>FW_B QM3"
        ],
        "{text}"
    );
    assert!(payloads(&flow, "MM1").starts_with("HDR, SA(1 proposal), VID"), "{text}");
    assert_eq!(payloads(&flow, "MM4"), "HDR, KE, NONCE, NAT-D, NAT-D", "{text}");
    // Encrypted messages, listed by what was inside.
    assert!(payloads(&flow, "MM5").starts_with("HDR*, ID(IPV4 192.0.2.1), HASH_I"), "{text}");
    assert_eq!(payloads(&flow, "MM6"), "HDR*, ID(IPV4 192.0.2.2), HASH_R", "{text}");
    assert_eq!(
        payloads(&flow, "QM1"),
        "HDR*, HASH(1), SA(1 proposal), NONCE, ID(IPV4_SUBNET 10.1.1.0/24), ID(IPV4_SUBNET 10.2.2.0/24)",
        "no PFS: no KE\n{text}"
    );
    assert_eq!(payloads(&flow, "QM3"), "HDR*, HASH(3)", "{text}");
    assert!(!text.contains("variant:"), "{text}");
}

#[test]
fn netns_demo_aggressive_shows_am1_to_am3() {
    if skip_unless_root() {
        return;
    }
    let (text, flow) = demo_variant("--aggressive", "exchange-mode aggressive");
    assert_eq!(
        senders_and_steps(&flow),
        [
            "FW_A>FW_B AM1",
            "FW_B>FW_A AM2",
            "FW_A>FW_B AM3",
            "FW_A>FW_B QM1",
            "FW_B>FW_A QM2",
            "FW_A>FW_B QM3"
        ],
        "{text}"
    );
    assert!(
        payloads(&flow, "AM1").starts_with("HDR, SA(1 proposal), KE, NONCE, ID(IPV4 192.0.2.1)"),
        "{text}"
    );
    assert!(payloads(&flow, "AM2").ends_with("HASH_R"), "{text}");
    assert!(payloads(&flow, "AM3").starts_with("HDR*, HASH_I"), "{text}");
}

#[test]
fn netns_demo_pfs_shows_a_key_exchange_in_qm1_and_qm2() {
    if skip_unless_root() {
        return;
    }
    let (text, flow) = demo_variant("--pfs", "pfs dh-group14");
    let steps: Vec<String> = flow.iter().map(|f| f.2.clone()).collect();
    assert_eq!(steps, ["MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"], "{text}");
    assert!(payloads(&flow, "QM1").starts_with("HDR*, HASH(1), SA(1 proposal), NONCE, KE, ID("), "{text}");
    assert!(payloads(&flow, "QM2").starts_with("HDR*, HASH(2), SA(1 proposal), NONCE, KE, ID("), "{text}");
}

#[test]
fn netns_demo_without_root_says_what_it_needs_and_fails() {
    if !is_root() {
        // Already not root: the plain run is the check.
        let (ok, text, _) = demo(&[]);
        assert!(!ok && text.contains("run it as root"), "{text}");
        return;
    }
    // As root, drop to nobody for this one run (setpriv from util-linux).
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_keysteward"))
        .arg("demo")
        .output()
        .expect("setpriv runs");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("run it as root"), "it says what it needs: {text}");
    assert!(out.stdout.is_empty(), "nothing was started: {}", String::from_utf8_lossy(&out.stdout));
}
