//! keysteward against strongSwan 5.9 with certificates (root only; CI runs as root): phase 1
//! authenticated by RSA signatures (and ECDSA P-256, RFC 4754) in both roles, identities as
//! subject DNs, certificates made by this test with rcgen (one CA, one certificate per
//! gateway), valid around the current time. The topology is that of
//! `netns_strongswan_interop.rs`:
//!
//! ```text
//!   namespace ks<pid>XXa (keysteward)        namespace ks<pid>XXb (charon)
//!   FW_A 192.0.2.1/24  ── veth pair ──   192.0.2.2/24 FW_B
//! ```
//!
//! With RSA-3072 certificates MM5 and MM6 exceed the fragment size, and both sides use IKE
//! fragmentation (Cisco format, payload 132) in both directions.
//!
//! Asserted: keysteward shows phase 1 and 2 ready, strongSwan shows the IKE SA ESTABLISHED
//! with the peer's DN and the CHILD_SA INSTALLED, charon's log shows it authenticated us by
//! the signature method; and a certificate from a CA keysteward does not trust is refused
//! with that reason in `display ike error-info`.

#[path = "../../crypto/tests/support/test_pki.rs"]
mod test_pki;

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{
    assert_strongswan_tunnel, keysteward_stdout, public_link, ready, skip_unless_root, spawn_keysteward,
    start_charon, swanctl, wait_for_error_info, wait_for_socket, Cleanup, SwanConnection, CHARON,
};
use test_pki::{Ca, KeyKind, LeafSpec, DAY};

const DN_A: &str = "C=CN, O=keysteward test, CN=fw-a";
const DN_B: &str = "C=CN, O=keysteward test, CN=fw-b";

/// `keysteward display ike <what…> --control CONTROL` in namespace `ns`: standard output.
fn display(ns: &str, control: &Path, what: &[&str]) -> String {
    keysteward_stdout(ns, &[&["display", "ike"], what].concat(), control)
}

/// charon's configuration, with the plugins that check certificates.
fn strongswan_conf(run: &Path) -> String {
    common::strongswan_conf(run, "revocation constraints ", "", "")
}

fn swanctl_conf(aggressive: bool) -> String {
    common::swanctl_conf(&SwanConnection {
        proposals: "aes128-sha256-modp2048",
        aggressive,
        ike_extra: "",
        auth: "pubkey",
        certs: Some("fw_b.crt"),
        local_id: &format!("\"{DN_B}\""),
        remote_id: &format!("\"{DN_A}\""),
        secret: None,
        ts: ("10.2.2.0/24", "10.1.1.0/24"),
        esp_proposals: "aes128-sha256",
        child_extra: "",
    })
}

fn keysteward_conf(method: &str, initiate: bool, aggressive: bool) -> String {
    let trigger = if initiate { " sa trigger-mode auto\n" } else { "" };
    let mode = if aggressive { "aggressive" } else { "main" };
    common::fw_a_conf(
        &format!(
            " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group14\n \
             authentication-method {method}\n"
        ),
        &format!(
            " exchange-mode {mode}\n remote-address 192.0.2.2\n certificate local-filename fw_a.crt\n \
             certificate local-key-filename fw_a.key\n certificate ca-filename ca.pem\n local-id-type dn\n \
             remote-id-type dn\n remote-id \"{DN_B}\"\n"
        ),
        " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-128\n",
        trigger,
    )
}

struct Case {
    /// keysteward's `authentication-method`.
    method: &'static str,
    key: KeyKind,
    keysteward_initiates: bool,
    aggressive: bool,
    /// strongSwan's certificate comes from a CA keysteward does not trust.
    rogue_peer: bool,
    suffix: &'static str,
}

#[test]
fn netns_strongswan_certs_responder_rsa_main_mode() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa2048,
        keysteward_initiates: true,
        aggressive: false,
        rogue_peer: false,
        suffix: "cr",
    });
}

#[test]
fn netns_strongswan_certs_initiator_rsa_main_mode() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa2048,
        keysteward_initiates: false,
        aggressive: false,
        rogue_peer: false,
        suffix: "ci",
    });
}

#[test]
fn netns_strongswan_certs_responder_ecdsa_p256_main_mode() {
    run(&Case {
        method: "ecdsa-signature",
        key: KeyKind::P256,
        keysteward_initiates: true,
        aggressive: false,
        rogue_peer: false,
        suffix: "ce",
    });
}

#[test]
fn netns_strongswan_certs_responder_rsa_aggressive_mode() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa2048,
        keysteward_initiates: true,
        aggressive: true,
        rogue_peer: false,
        suffix: "ca",
    });
}

#[test]
fn netns_strongswan_certs_initiator_rsa_aggressive_mode() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa2048,
        keysteward_initiates: false,
        aggressive: true,
        rogue_peer: false,
        suffix: "cb",
    });
}

#[test]
fn netns_strongswan_certs_initiator_ecdsa_p256_main_mode() {
    run(&Case {
        method: "ecdsa-signature",
        key: KeyKind::P256,
        keysteward_initiates: false,
        aggressive: false,
        rogue_peer: false,
        suffix: "cf",
    });
}

// RSA-3072 certificates make MM5 and MM6 larger than both sides' fragment size: both sides
// announce IKE fragmentation, so each sends them in fragments and reassembles the other's.
#[test]
fn netns_strongswan_certs_responder_rsa3072_fragmented() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa3072,
        keysteward_initiates: true,
        aggressive: false,
        rogue_peer: false,
        suffix: "cg",
    });
}

#[test]
fn netns_strongswan_certs_initiator_rsa3072_fragmented() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa3072,
        keysteward_initiates: false,
        aggressive: false,
        rogue_peer: false,
        suffix: "ch",
    });
}

#[test]
fn netns_strongswan_certs_unknown_ca_is_refused_with_the_reason() {
    run(&Case {
        method: "rsa-signature",
        key: KeyKind::Rsa2048,
        keysteward_initiates: false,
        aggressive: false,
        rogue_peer: true,
        suffix: "cu",
    });
}

fn run(case: &Case) {
    if skip_unless_root() {
        return;
    }
    assert!(Path::new(CHARON).exists(), "{CHARON} is missing: ./scripts/test installs strongSwan");
    let tag = format!("ks{}{}", std::process::id(), case.suffix);
    let (ns_a, ns_b) = (format!("{tag}a"), format!("{tag}b"));
    let dir = std::env::temp_dir().join(format!("keysteward-{tag}"));
    let run = dir.join("fwb");
    for sub in ["swanctl/x509", "swanctl/x509ca", "swanctl/private"] {
        std::fs::create_dir_all(run.join(sub)).unwrap();
    }
    let mut cleanup = Cleanup::new(dir.clone());

    // Certificates valid around the real time (the daemons check against the wall clock).
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ca = Ca::new("keysteward", KeyKind::Rsa2048);
    let rogue = Ca::new("Rogue", KeyKind::Rsa2048);
    let leaf = |ca: &Ca, cn: &str, serial: u64| {
        let mut spec = LeafSpec::new(cn, case.key);
        spec.not_before = now - DAY;
        spec.not_after = now + 30 * DAY;
        spec.serial = serial;
        ca.issue(&spec)
    };
    let fw_a = leaf(&ca, "fw-a", 10);
    let fw_b = leaf(if case.rogue_peer { &rogue } else { &ca }, "fw-b", 11);
    std::fs::write(dir.join("fw_a.crt"), &fw_a.pem).unwrap();
    std::fs::write(dir.join("fw_a.key"), &fw_a.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(run.join("swanctl/x509/fw_b.crt"), &fw_b.pem).unwrap();
    std::fs::write(run.join("swanctl/private/fw_b.key"), &fw_b.key_pem).unwrap();
    std::fs::write(run.join("swanctl/x509ca/ca.crt"), &ca.pem).unwrap();
    if case.rogue_peer {
        std::fs::write(run.join("swanctl/x509ca/rogue.crt"), &rogue.pem).unwrap();
    }

    cleanup.add_namespaces(&[&ns_a, &ns_b]);
    public_link(&ns_a, &ns_b);
    common::inside_address(&ns_b, "10.2.2.1/24");

    std::fs::write(run.join("strongswan.conf"), strongswan_conf(&run)).unwrap();
    std::fs::write(run.join("swanctl/swanctl.conf"), swanctl_conf(case.aggressive)).unwrap();
    start_charon(&mut cleanup, &ns_b, &run);
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    std::fs::write(
        dir.join("fw_a.cfg"),
        keysteward_conf(case.method, case.keysteward_initiates, case.aggressive),
    )
    .unwrap();
    let control = dir.join("a.sock");
    let log = dir.join("keysteward.log");
    spawn_keysteward(&mut cleanup, &ns_a, &dir.join("fw_a.cfg"), &control, &log, &["--log-level", "debug"]);
    assert!(
        wait_for_socket(&control, Duration::from_secs(10)),
        "keysteward did not start:\n{}",
        logs("keysteward.log")
    );

    if !case.keysteward_initiates {
        let initiated = swanctl(&ns_b, &run, &["--initiate", "--child", "net", "--timeout", "20"]);
        assert_eq!(
            initiated.contains("initiate completed successfully"),
            !case.rogue_peer,
            "{initiated}\nkeysteward log:\n{}",
            logs("keysteward.log")
        );
    }
    if case.rogue_peer {
        let wanted = "does not chain to a trusted CA";
        let errors = wait_for_error_info(&ns_a, &control, wanted);
        assert!(
            errors.contains(wanted) && errors.contains("O=Rogue"),
            "error-info: {errors}\nkeysteward log:\n{}\ncharon log:\n{}",
            logs("keysteward.log"),
            logs("fwb/charon.log")
        );
        assert!(!ready(&display(&ns_a, &control, &["sa", "--json"]), "v1:1"), "no IKE SA on keysteward");
        drop(cleanup);
        return;
    }
    let theirs = assert_strongswan_tunnel(&ns_a, &control, &dir.join("keysteward.log"), &ns_b, &run);
    assert!(theirs.contains("ESTABLISHED"), "{theirs}");
    assert!(theirs.contains(DN_A), "strongSwan shows our DN: {theirs}");
    let charon_log = logs("fwb/charon.log");
    let scheme = if case.key == KeyKind::P256 { "ECDSA" } else { "RSA" };
    assert!(
        charon_log.contains(&format!("authentication of '{DN_A}' with {scheme}")),
        "charon authenticated us by {scheme}:\n{charon_log}"
    );
    if case.key == KeyKind::Rsa3072 {
        // MM5 and MM6 exceed the fragment size: each side fragmented and reassembled.
        assert!(
            charon_log.contains("reassembled fragmented IKE message"),
            "charon reassembled ours:\n{charon_log}"
        );
        assert!(charon_log.contains("splitting IKE message"), "charon fragmented its own:\n{charon_log}");
    }
    let exchange = if case.aggressive { "AGGRESSIVE re" } else { "ID_PROT re" };
    assert!(charon_log.contains(exchange), "phase 1 was not {exchange}…");
    let log = logs("keysteward.log");
    assert!(
        log.contains(DN_B) || log.contains("fw-b"),
        "keysteward's log names the peer certificate:\n{log}"
    );
    drop(cleanup);
}
