//! keysteward against strongSwan 5.9 (Debian's charon with userspace ESP, kernel-libipsec) as
//! the other gateway, in network namespaces (root only; CI runs as root and the README test
//! command installs strongSwan). Interop scenario 1 of the interop issue, IKE part: main mode,
//! pre-shared key, IPv4 identities, aes128-sha256-modp2048, ESP aes128-sha256, in both
//! directions (keysteward initiates; strongSwan initiates with `swanctl --initiate`); and
//! scenarios 2 (FQDN identities), 3 (aggressive mode), 4, 5 and 8 of the issue.
//!
//! ```text
//!   namespace ks<pid>a (keysteward)        namespace ks<pid>b (charon)
//!   FW_A 192.0.2.1/24  ── veth pair ──   192.0.2.2/24 FW_B
//! ```
//!
//! strongSwan with kernel-libipsec fakes its NAT-D payloads (reference strongswan-peer.md), so
//! this also drives keysteward's NAT-T float to UDP 4500 and the non-ESP marker. Asserted on
//! both sides: keysteward's `display ike sa --json` shows phase 1 and phase 2 ready, and
//! `swanctl --list-sas` shows the IKE SA ESTABLISHED and the CHILD_SA INSTALLED with the
//! negotiated algorithms. Namespaces and processes (by PID) are removed even on failure.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ip, is_root, public_link, ready, start_charon, swanctl, Cleanup, CHARON};

const PSK: &str = "interop-Secret-0123456789";

/// `keysteward display ike <what…> --control CONTROL` in namespace `ns`.
fn display(ns: &str, control: &Path, what: &[&str]) -> String {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward"), "display", "ike"])
        .args(what)
        .arg("--control")
        .arg(control)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn strongswan_conf(run: &Path, s: &Scenario) -> String {
    // charon refuses aggressive mode with a pre-shared key as responder (and as initiator
    // sends nothing) unless told it does not care (strongswan-peer.md).
    let aggressive =
        if s.aggressive { "  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n" } else { "" };
    format!(
        "charon {{
  load = aes sha2 sha1 md5 random nonce openssl gmp curve25519 hmac kdf pem pkcs1 pkcs8 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
  install_virtual_ip = no
{aggressive}  filelog {{
    log {{
      path = {run}/charon.log
      time_format = %T
      default = 1
      ike = 2
      cfg = 2
      flush_line = yes
    }}
  }}
  plugins {{
    vici {{
      socket = unix://{run}/charon.vici
    }}
  }}
}}
",
        run = run.display()
    )
}

/// One interop scenario: both sides' settings and what each must end up showing.
struct Scenario {
    /// keysteward: `ike proposal` lines.
    ike: &'static str,
    /// keysteward: `ipsec proposal` lines.
    esp: &'static str,
    /// keysteward: extra `ipsec policy` lines (e.g. `pfs`).
    policy: &'static str,
    /// keysteward: extra `ike peer` lines (identities).
    peer: &'static str,
    /// strongSwan: `proposals`.
    proposals: &'static str,
    /// strongSwan: `esp_proposals`.
    esp_proposals: &'static str,
    /// strongSwan: local and remote identities.
    ids: (&'static str, &'static str),
    /// strongSwan's secret (keysteward always uses [`PSK`]).
    secret: &'static str,
    /// What `swanctl --list-sas` shows for the IKE SA and the CHILD_SA, or `None` when the
    /// negotiation must fail.
    expect: Option<(&'static str, &'static str)>,
    /// For a failure: what keysteward's `display ike error-info` must say.
    error: &'static str,
    /// Aggressive mode: `aggressive = yes` and the PSK knob on strongSwan's side,
    /// `exchange-mode aggressive` (which also lets keysteward answer it) on ours.
    aggressive: bool,
    /// After the tunnel is up, one side shuts down and the other must drop its SAs.
    shutdown: Option<Shutdown>,
}

/// Which side shuts down once the tunnel is up (scenario 7: deletes honoured on both sides).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// SIGTERM to the keysteward daemon: it sends Deletes before exiting.
    Keysteward,
    /// `swanctl --terminate --ike s2s`: strongSwan sends Deletes.
    StrongSwan,
    /// charon is killed (SIGKILL): no Deletes; keysteward's DPD must find the peer dead.
    StrongSwanKilled,
}

const BASE: Scenario = Scenario {
    ike: " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group14\n",
    esp: " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-128\n",
    policy: "",
    peer: "",
    proposals: "aes128-sha256-modp2048",
    esp_proposals: "aes128-sha256",
    ids: ("192.0.2.2", "192.0.2.1"),
    secret: PSK,
    expect: Some((
        "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        "ESP:AES_CBC-128/HMAC_SHA2_256_128",
    )),
    error: "",
    aggressive: false,
    shutdown: None,
};

fn swanctl_conf(s: &Scenario) -> String {
    format!(
        "connections {{
  s2s {{
    version = 1
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = {proposals}
    aggressive = {aggressive}
    local {{
      auth = psk
      id = {local_id}
    }}
    remote {{
      auth = psk
      id = {remote_id}
    }}
    children {{
      net {{
        local_ts = 10.2.2.0/24
        remote_ts = 10.1.1.0/24
        esp_proposals = {esp}
        mode = tunnel
        start_action = none
      }}
    }}
  }}
}}
secrets {{
  ike-interop {{
    id-1 = {remote_id}
    id-2 = {local_id}
    secret = \"{secret}\"
  }}
}}
",
        proposals = s.proposals,
        esp = s.esp_proposals,
        local_id = s.ids.0,
        remote_id = s.ids.1,
        secret = s.secret,
        aggressive = if s.aggressive { "yes" } else { "no" },
    )
}

fn keysteward_conf(s: &Scenario, initiate: bool) -> String {
    let trigger = if initiate { " sa trigger-mode auto\n" } else { "" };
    let mode = if s.aggressive { "aggressive" } else { "main" };
    format!(
        "ike proposal 10
{ike}ike peer b
 ike-proposal 10
 undo version 2
 exchange-mode {mode}
 remote-address 192.0.2.2
 pre-shared-key {PSK}
{peer}acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
ipsec proposal a
 transform esp
 encapsulation-mode tunnel
{esp}ipsec policy policy1 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
{policy}{trigger}interface out0
 ip address 192.0.2.1 255.255.255.0
 ipsec policy policy1
",
        ike = s.ike,
        peer = s.peer,
        esp = s.esp,
        policy = s.policy,
    )
}

// Scenario 1: main mode, PSK, IPv4 identities, aes128-sha256-modp2048, ESP aes128-sha256.
#[test]
fn netns_strongswan_responder_main_mode_psk_aes128_sha256_modp2048() {
    interop(&BASE, true, "r1");
}

#[test]
fn netns_strongswan_initiator_main_mode_psk_aes128_sha256_modp2048() {
    interop(&BASE, false, "i1");
}

// Scenario 2: main mode, PSK, FQDN identities.
const FQDN: Scenario = Scenario {
    peer:
        " local-id-type fqdn\n local-id fwa.example.net\n remote-id-type fqdn\n remote-id fwb.example.net\n",
    ids: ("fwb.example.net", "fwa.example.net"),
    ..BASE
};

#[test]
fn netns_strongswan_responder_main_mode_fqdn_identities() {
    interop(&FQDN, true, "r2");
}

#[test]
fn netns_strongswan_initiator_main_mode_fqdn_identities() {
    interop(&FQDN, false, "i2");
}

// Scenario 3: aggressive mode, PSK, FQDN identities (in clear in AM1/AM2; keysteward as
// responder picks the peer by the FQDN, and answers because that peer is in aggressive mode).
const AGGRESSIVE: Scenario = Scenario { aggressive: true, ..FQDN };

#[test]
fn netns_strongswan_responder_aggressive_mode_fqdn_identities() {
    interop(&AGGRESSIVE, true, "r3");
}

#[test]
fn netns_strongswan_initiator_aggressive_mode_fqdn_identities() {
    interop(&AGGRESSIVE, false, "i3");
}

// Scenario 4: 3des-sha1-modp1024 with ESP 3des-md5; aes256-sha384-ecp384.
const TRIPLE_DES: Scenario = Scenario {
    ike: " encryption-algorithm 3des\n authentication-algorithm sha1\n dh group2\n",
    esp: " esp authentication-algorithm md5\n esp encryption-algorithm 3des\n",
    proposals: "3des-sha1-modp1024",
    esp_proposals: "3des-md5",
    expect: Some(("3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "ESP:3DES_CBC/HMAC_MD5_96")),
    ..BASE
};

#[test]
fn netns_strongswan_responder_3des_sha1_modp1024_esp_3des_md5() {
    interop(&TRIPLE_DES, true, "r4a");
}

#[test]
fn netns_strongswan_initiator_3des_sha1_modp1024_esp_3des_md5() {
    interop(&TRIPLE_DES, false, "i4a");
}

const ECP384: Scenario = Scenario {
    ike: " encryption-algorithm aes-256\n authentication-algorithm sha2-384\n dh group20\n",
    esp: " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-256\n",
    proposals: "aes256-sha384-ecp384",
    esp_proposals: "aes256-sha256",
    expect: Some((
        "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384",
        "ESP:AES_CBC-256/HMAC_SHA2_256_128",
    )),
    ..BASE
};

#[test]
fn netns_strongswan_responder_aes256_sha384_ecp384() {
    interop(&ECP384, true, "r4b");
}

#[test]
fn netns_strongswan_initiator_aes256_sha384_ecp384() {
    interop(&ECP384, false, "i4b");
}

// Scenario 4: aes128-sha256-ecp256 with ESP aes128gcm16.
const ECP256_GCM: Scenario = Scenario {
    ike: " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group19\n",
    esp: " esp encryption-algorithm aes-128-gcm-128\n",
    proposals: "aes128-sha256-ecp256",
    esp_proposals: "aes128gcm16",
    expect: Some(("AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "ESP:AES_GCM_16-128")),
    ..BASE
};

#[test]
fn netns_strongswan_responder_aes128_sha256_ecp256_esp_aes128gcm16() {
    interop(&ECP256_GCM, true, "r4c");
}

#[test]
fn netns_strongswan_initiator_aes128_sha256_ecp256_esp_aes128gcm16() {
    interop(&ECP256_GCM, false, "i4c");
}

// Scenario 4: aes256-sha256-curve25519 (group 31, `dh group31`).
const CURVE25519: Scenario = Scenario {
    ike: " encryption-algorithm aes-256\n authentication-algorithm sha2-256\n dh group31\n",
    esp: " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-256\n",
    proposals: "aes256-sha256-curve25519",
    esp_proposals: "aes256-sha256",
    expect: Some((
        "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519",
        "ESP:AES_CBC-256/HMAC_SHA2_256_128",
    )),
    ..BASE
};

#[test]
fn netns_strongswan_responder_aes256_sha256_curve25519() {
    interop(&CURVE25519, true, "r4d");
}

#[test]
fn netns_strongswan_initiator_aes256_sha256_curve25519() {
    interop(&CURVE25519, false, "i4d");
}

// Scenario 6: strongSwan's default proposals (`proposals = default`, `esp_proposals =
// default`) against a keysteward configuration that accepts them. strongSwan 5.9 offers
// AES-CBC-128/SHA2-256/curve25519 plus a transform without encryption and hash (from its AEAD
// default), which keysteward must skip; ESP: AES-CBC-128/HMAC-SHA2-256-128 and AES-GCM-16-128.
const DEFAULTS: Scenario = Scenario {
    ike: " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group31\n",
    proposals: "default",
    esp_proposals: "default",
    expect: Some((
        "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519",
        "ESP:AES_CBC-128/HMAC_SHA2_256_128",
    )),
    ..BASE
};

#[test]
fn netns_strongswan_responder_default_proposals() {
    interop(&DEFAULTS, true, "r6");
}

#[test]
fn netns_strongswan_initiator_default_proposals() {
    interop(&DEFAULTS, false, "i6");
}

// Scenario 5: PFS with modp2048.
const PFS: Scenario = Scenario {
    policy: " pfs dh-group14\n",
    esp_proposals: "aes128-sha256-modp2048",
    expect: Some((
        "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        "ESP:AES_CBC-128/HMAC_SHA2_256_128/MODP_2048",
    )),
    ..BASE
};

#[test]
fn netns_strongswan_responder_pfs_modp2048() {
    interop(&PFS, true, "r5");
}

#[test]
fn netns_strongswan_initiator_pfs_modp2048() {
    interop(&PFS, false, "i5");
}

// Scenario 7 (part): deletes honoured on both sides when either side shuts down.
#[test]
fn netns_strongswan_deletes_honoured_when_keysteward_stops() {
    interop(&Scenario { shutdown: Some(Shutdown::Keysteward), ..BASE }, true, "d1");
}

#[test]
fn netns_strongswan_deletes_honoured_when_strongswan_terminates() {
    interop(&Scenario { shutdown: Some(Shutdown::StrongSwan), ..BASE }, true, "d2");
}

// Scenario 7 (part): DPD detects a stopped peer (charon killed, no Deletes).
#[test]
fn netns_strongswan_dpd_detects_a_stopped_peer() {
    let s = Scenario {
        peer: " dpd type periodic\n dpd idle-time 10\n dpd retransmit-interval 2\n dpd retry-limit 2\n",
        shutdown: Some(Shutdown::StrongSwanKilled),
        ..BASE
    };
    interop(&s, true, "d3");
}

// Scenario 8: failures end with the specific reason in keysteward's error-info, and neither
// side keeps half-made SAs.
const WRONG_PSK: Scenario = Scenario {
    secret: "not-the-interop-secret-0123",
    expect: None,
    error: "pre-shared keys probably differ",
    ..BASE
};

#[test]
fn netns_strongswan_responder_wrong_psk_fails_with_the_reason() {
    interop(&WRONG_PSK, true, "f1");
}

#[test]
fn netns_strongswan_initiator_wrong_psk_fails_with_the_reason() {
    interop(&WRONG_PSK, false, "f2");
}

#[test]
fn netns_strongswan_responder_no_common_proposal_fails_with_its_notify() {
    let s = Scenario {
        proposals: "aes256-sha512-modp4096",
        expect: None,
        error: "peer sent notify NoProposalChosen",
        ..BASE
    };
    interop(&s, true, "f3");
}

#[test]
fn netns_strongswan_initiator_no_common_proposal_fails_naming_both_sides() {
    let s = Scenario {
        proposals: "aes256-sha512-modp4096",
        expect: None,
        error: "IKE proposal mismatch: peer offers aes-256/sha2-512/group16/pre-share, we accept aes-128/sha2-256/group14/pre-share",
        ..BASE
    };
    interop(&s, false, "f4");
}

/// One run of `scenario`: `keysteward_initiates` picks who starts; `suffix` keeps the names
/// of tests running at the same time apart.
fn interop(scenario: &Scenario, keysteward_initiates: bool, suffix: &str) {
    if !is_root() {
        eprintln!("skipped: needs root for network namespaces (CI runs it as root)");
        return;
    }
    assert!(
        Path::new(CHARON).exists(),
        "{CHARON} is missing: ./scripts/test installs strongswan-charon, strongswan-swanctl and libcharon-extra-plugins"
    );
    let tag = format!("ks{}{suffix}", std::process::id());
    let (ns_a, ns_b) = (format!("{tag}a"), format!("{tag}b"));
    let dir = std::env::temp_dir().join(format!("keysteward-{tag}"));
    let run = dir.join("fwb");
    std::fs::create_dir_all(run.join("swanctl")).unwrap();
    let mut cleanup = Cleanup { namespaces: Vec::new(), children: Vec::new(), dir: dir.clone() };

    for ns in [&ns_a, &ns_b] {
        ip(&["netns", "add", ns]);
        cleanup.namespaces.push(ns.clone());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }
    public_link(&ns_a, &ns_b);
    // charon with kernel-libipsec installs routes for the inside network through its TUN.
    ip(&["-n", &ns_b, "link", "add", "in0", "type", "veth", "peer", "name", "in0p"]);
    ip(&["-n", &ns_b, "addr", "add", "10.2.2.1/24", "dev", "in0"]);
    ip(&["-n", &ns_b, "link", "set", "in0", "up"]);

    std::fs::write(run.join("strongswan.conf"), strongswan_conf(&run, scenario)).unwrap();
    std::fs::write(run.join("swanctl/swanctl.conf"), swanctl_conf(scenario)).unwrap();
    start_charon(&mut cleanup, &ns_b, &run);
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    std::fs::write(dir.join("fw_a.cfg"), keysteward_conf(scenario, keysteward_initiates)).unwrap();
    let control = dir.join("a.sock");
    let daemon = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_a,
            env!("CARGO_BIN_EXE_keysteward"),
            "run",
            "--log-level",
            "debug",
            "--config",
        ])
        .arg(dir.join("fw_a.cfg"))
        .arg("--control")
        .arg(&control)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("keysteward.log")).unwrap())
        .spawn()
        .expect("keysteward starts");
    cleanup.children.push(daemon);

    if !keysteward_initiates {
        // Wait for keysteward's control socket (it is listening by then), then let charon start.
        let start = Instant::now();
        while !control.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let initiated = swanctl(&ns_b, &run, &["--initiate", "--child", "net", "--timeout", "20"]);
        assert_eq!(
            initiated.contains("initiate completed successfully"),
            scenario.expect.is_some(),
            "{initiated}\nkeysteward log:\n{}",
            logs("keysteward.log")
        );
    }
    let Some((expect_ike, expect_child)) = scenario.expect else {
        // A failure: keysteward must name the reason, and neither side may keep half-made SAs.
        let start = Instant::now();
        let errors = loop {
            let errors = display(&ns_a, &control, &["error-info"]);
            if errors.contains(scenario.error) || start.elapsed() > Duration::from_secs(30) {
                break errors;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            errors.contains(scenario.error),
            "error-info: {errors}\nkeysteward log:\n{}\ncharon log:\n{}",
            logs("keysteward.log"),
            logs("fwb/charon.log")
        );
        assert!(!ready(&display(&ns_a, &control, &["sa", "--json"]), "v1:2"), "no IPsec SA on keysteward");
        assert!(!swanctl(&ns_b, &run, &["--list-sas"]).contains("INSTALLED"), "no CHILD_SA on strongSwan");
        drop(cleanup);
        return;
    };
    let start = Instant::now();
    let (up, ours, theirs) = loop {
        let ours = display(&ns_a, &control, &["sa", "--json"]);
        let theirs = swanctl(&ns_b, &run, &["--list-sas"]);
        if ready(&ours, "v1:1") && ready(&ours, "v1:2") && theirs.contains("INSTALLED") {
            break (true, ours, theirs);
        }
        if start.elapsed() > Duration::from_secs(30) {
            break (false, ours, theirs);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        up,
        "no tunnel after 30 s\nkeysteward: {ours}\nswanctl --list-sas: {theirs}\nkeysteward log:\n{}\ncharon log:\n{}",
        logs("keysteward.log"),
        logs("fwb/charon.log")
    );
    assert!(theirs.contains("ESTABLISHED"), "{theirs}");
    assert!(theirs.contains(expect_ike), "expected {expect_ike}: {theirs}");
    assert!(
        theirs.contains(&format!("TUNNEL-in-UDP, {expect_child}")),
        "expected {expect_child} over NAT-T: {theirs}"
    );
    assert!(theirs.contains("local  10.2.2.0/24") && theirs.contains("remote 10.1.1.0/24"), "{theirs}");
    assert!(theirs.contains("192.0.2.1[4500]"), "floated to UDP 4500: {theirs}");
    // `--list-sas` does not show the phase-1 mode; charon's log does (ike level 2).
    let exchange = if scenario.aggressive { "AGGRESSIVE re" } else { "ID_PROT re" };
    assert!(logs("fwb/charon.log").contains(exchange), "phase 1 was not {exchange}…");

    match scenario.shutdown {
        None => {}
        Some(Shutdown::Keysteward) => {
            let pid = cleanup.children[1].id().to_string();
            assert!(Command::new("kill").args(["-TERM", &pid]).status().is_ok_and(|s| s.success()));
            let start = Instant::now();
            let theirs = loop {
                let theirs = swanctl(&ns_b, &run, &["--list-sas"]);
                assert!(!theirs.contains("connecting to"), "charon must still answer: {theirs}");
                if !theirs.contains("ESTABLISHED") && !theirs.contains("INSTALLED") {
                    break theirs;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "strongSwan kept SAs after keysteward stopped: {theirs}\nkeysteward log:\n{}",
                    logs("keysteward.log")
                );
                std::thread::sleep(Duration::from_millis(100));
            };
            assert!(logs("keysteward.log").contains("sending Deletes to every peer"), "{theirs}");
        }
        Some(Shutdown::StrongSwanKilled) => {
            let _ = cleanup.children[0].kill();
            let _ = cleanup.children[0].wait();
            // idle-time 10 s, then R-U-THERE every 2 s, 2 retries: about 16 s.
            let start = Instant::now();
            loop {
                let ours = display(&ns_a, &control, &["sa", "--json"]);
                let value: serde_json::Value = serde_json::from_str(&ours).unwrap_or_default();
                if value["sas"].as_array().is_some_and(|sas| sas.is_empty()) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(40),
                    "DPD did not clear the SAs of a stopped peer: {ours}\nkeysteward log:\n{}",
                    logs("keysteward.log")
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            let log = logs("keysteward.log");
            assert!(log.contains("peer dead: "), "the log names the reason:\n{log}");
        }
        Some(Shutdown::StrongSwan) => {
            let terminated = swanctl(&ns_b, &run, &["--terminate", "--ike", "s2s", "--timeout", "10"]);
            let start = Instant::now();
            loop {
                let ours = display(&ns_a, &control, &["sa", "--json"]);
                let value: serde_json::Value = serde_json::from_str(&ours).unwrap_or_default();
                // An answer from the daemon with no SA left (not a daemon that stopped answering).
                if value["sas"].as_array().is_some_and(|sas| sas.is_empty()) {
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "keysteward kept SAs after strongSwan's Deletes: {ours}\n{terminated}\nkeysteward log:\n{}",
                    logs("keysteward.log")
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    drop(cleanup);
}
