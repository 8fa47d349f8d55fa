//! The running configuration changed over the control socket, as `keysteward shell` does it
//! (root only; CI runs as root), in the reference topology:
//!
//! ```text
//!  ks<pid>wpa         ks<pid>wfa                       ks<pid>wfb          ks<pid>wpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```
//!
//! 1. FW_A starts with an empty file; the article's configuration is typed line by line but
//!    for the key, which leaves peer b, its policy and its interface inert (noted in the
//!    answers and in `display this`); the `pre-shared-key` line completes them, and the
//!    tunnel comes up against FW_B on traffic.
//! 2. An unrelated change keeps the tunnel's SAs; a refused one changes nothing.
//! 3. `save` writes the file (previous kept as `.bak`, mode 0600); the daemon restarted on
//!    it shows the same `display current-configuration` and carries traffic again.
//! 4. `reload` replaces an unsaved change by the saved file and says it was discarded.
//!    Every change is in the log with the user and the command, never the key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keysteward::control::{call, Request, Response};

mod common;
use common::{
    keysteward_stdout, output_text, reference_topology, skip_unless_root, spawn_keysteward, wait_for_socket,
    wait_until, Cleanup,
};

fn ask(control: &Path, request: &Request) -> Result<String, String> {
    match call(control, request).unwrap_or_else(|e| panic!("{request:?}: {e}")) {
        Response::Ok { text, .. } => Ok(text),
        Response::Error(e) => Err(e),
    }
}

fn configure(control: &Path, views: &[&str], line: &str) -> Result<String, String> {
    let views = views.iter().map(|v| (*v).to_owned()).collect();
    ask(control, &Request::Configure { views, line: line.to_owned() })
}

/// Types `text` as an operator at the console would: an unindented line in the system view
/// (entering the view it opens), an indented one in the view entered last. Returns the notes.
fn type_lines(control: &Path, text: &str) -> String {
    let mut view: Option<String> = None;
    let mut notes = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let indented = line.starts_with(' ');
        let views: Vec<&str> = if indented { view.as_deref().into_iter().collect() } else { Vec::new() };
        let views: Vec<String> = views.into_iter().map(str::to_owned).collect();
        let request = Request::Configure { views, line: line.trim().to_owned() };
        match call(control, &request).unwrap() {
            Response::Ok { text, json } => {
                notes.push_str(&text);
                if !indented {
                    view = (json["opened_view"] == true).then(|| line.to_owned());
                }
            }
            Response::Error(e) => panic!("{line}: {e}"),
        }
    }
    notes
}

fn current(control: &Path) -> String {
    ask(control, &Request::DisplayCurrentConfiguration).unwrap()
}

/// The SPIs of `display ipsec sa brief --json`, sorted.
fn spis(ns: &str, control: &Path) -> Vec<u64> {
    let text = keysteward_stdout(ns, &["display", "ipsec", "sa", "brief", "--json"], control);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut out: Vec<u64> = value["sas"]
        .as_array()
        .map(|r| r.iter().filter_map(|s| s["spi"].as_u64()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

fn ping(pc_a: &str, count: u32) -> usize {
    common::ping(pc_a, count, "0.2", "1", "10.2.2.2").0
}

#[test]
fn netns_console_completes_an_inert_peer_saves_restarts_and_reload_discards() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}w", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-console-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let example_a = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap();
    let (file_a, file_b) = (dir.join("fw_a.cfg"), dir.join("fw_b.cfg"));
    std::fs::write(&file_a, "").unwrap();
    std::fs::copy(examples.join("fw_b.cfg"), &file_b).unwrap();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    let (map_a, map_b) =
        (format!("GigabitEthernet0/0/2={}", net.public_a), format!("GigabitEthernet0/0/2={}", net.public_b));
    // One log per start of FW_A (a start truncates its log).
    let logs_a = [dir.join("a.log"), dir.join("a-restarted.log")];
    let start_a = |cleanup: &mut Cleanup, log: &Path| {
        let pid =
            spawn_keysteward(cleanup, &net.fw_a, &file_a, &control_a, log, &["--interface-map", &map_a]);
        assert!(wait_for_socket(&control_a, Duration::from_secs(10)), "FW_A did not start");
        pid
    };
    spawn_keysteward(
        &mut cleanup,
        &net.fw_b,
        &file_b,
        &control_b,
        &dir.join("b.log"),
        &["--interface-map", &map_b],
    );
    assert!(wait_for_socket(&control_b, Duration::from_secs(10)), "FW_B did not start");
    let pid_a = start_a(&mut cleanup, &logs_a[0]);
    let log = || logs_a.iter().map(|l| std::fs::read_to_string(l).unwrap_or_default()).collect::<String>();

    // 1. The article's configuration typed line by line into a daemon started with an empty
    //    file, all but the key: peer b waits, inert, with what depends on it.
    let without_key = example_a.replace(" pre-shared-key tiandihui2\n", "");
    let notes = type_lines(&control_a, &without_key);
    assert!(notes.contains("Info: ike peer b stays inert until it is complete"), "{notes}");
    assert!(notes.contains("Info: ipsec policy policy1 1 stays inert"), "{notes}");
    assert!(notes.contains("Info: interface GigabitEthernet0/0/2 stays inert"), "{notes}");
    let this = ask(&control_a, &Request::DisplayThis { views: vec!["ike peer b".into()] }).unwrap();
    assert!(
        this.starts_with(
            "#\nike peer b\n ike-proposal 10\n undo version 2\n remote-address 192.0.2.2\n#\nreturn\n"
        ),
        "{this}"
    );
    assert!(this.contains("has no `pre-shared-key`"), "{this}");
    let in_force = ask(&control_a, &Request::ShowConfig).unwrap();
    assert!(!in_force.contains("ike peer b") && !in_force.contains("ipsec policy"), "{in_force}");
    let e = ask(&control_a, &Request::Save).unwrap_err();
    assert!(e.starts_with("Error: the configuration has incomplete objects and was not saved"), "{e}");

    // The key typed: complete, applied, and the tunnel comes up on traffic.
    let text = configure(&control_a, &["ike peer b"], "pre-shared-key tiandihui2").unwrap();
    assert!(text.contains("Info: ike peer b is complete and applied."), "{text}");
    let answered = ping(&net.pc_a, 5);
    assert!(answered >= 3, "{answered} of 5\nFW_A:\n{}", log());
    let sas = spis(&net.fw_a, &control_a);
    assert_eq!(sas.len(), 2, "{sas:?}");

    // 2. An unrelated change keeps the SAs; a refused one changes nothing.
    configure(&control_a, &[], "sysname FW_A").unwrap();
    configure(&control_a, &[], "acl number 3099").unwrap();
    let rule = "rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.9.9.0 0.0.0.255";
    configure(&control_a, &["acl number 3099"], rule).unwrap();
    assert_eq!(spis(&net.fw_a, &control_a), sas, "the tunnel stays up");
    // A change to the tunnel's proposal deletes its SAs, and says so; undone, traffic
    // negotiates again.
    let text = configure(&control_a, &["ipsec proposal a"], "esp encryption-algorithm aes-128").unwrap();
    assert!(text.contains("Info: 0 IKE SA(s) and 1 IPsec SA pair(s) deleted"), "{text}");
    configure(&control_a, &["ipsec proposal a"], "esp encryption-algorithm des").unwrap();
    assert!(ping(&net.pc_a, 5) >= 3, "renegotiated\nFW_A:\n{}", log());
    let sas = spis(&net.fw_a, &control_a);
    assert_eq!(sas.len(), 2, "{sas:?}");
    let before = current(&control_a);
    let e = configure(&control_a, &["ike peer b"], "undo version 1").unwrap_err();
    assert!(e.starts_with("Error: ike peer b has IKEv1 disabled"), "{e}");
    assert_eq!(current(&control_a), before);
    assert!(before.starts_with("#\nsysname FW_A\n#\n"), "{before}");
    let saved = ask(&control_a, &Request::DisplaySavedConfiguration).unwrap();
    assert_eq!(saved, "#\nreturn\n", "the empty file FW_A started with, until `save`");

    // 3. save, then the daemon restarted on the saved file.
    let text = ask(&control_a, &Request::Save).unwrap();
    assert!(text.ends_with("Save the configuration successfully.\n"), "{text}");
    assert_eq!(std::fs::read_to_string(dir.join("fw_a.cfg.bak")).unwrap(), "", "the file it started with");
    assert_eq!(std::fs::metadata(&file_a).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(ask(&control_a, &Request::DisplaySavedConfiguration).unwrap(), before);
    let check = Command::new(env!("CARGO_BIN_EXE_keysteward")).arg("check").arg(&file_a).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(Command::new("kill").args(["-TERM", &pid_a.to_string()]).status().unwrap().success());
    // Waited for to the end, so its sockets and TUN device are gone before the restart.
    if let Some(position) = cleanup.children.iter().position(|c| c.id() == pid_a) {
        let _ = cleanup.children.remove(position).wait();
    }
    assert!(!control_a.exists(), "an orderly stop removes the control socket");
    let pid_a = start_a(&mut cleanup, &logs_a[1]);
    assert_eq!(current(&control_a), before, "the saved file gives the same running configuration");
    let answered = ping(&net.pc_a, 5);
    assert!(answered >= 3, "{answered} of 5 after the restart\nFW_A:\n{}", log());

    // 4. An unsaved change, then reload: the saved file again, the change discarded.
    configure(&control_a, &[], "sysname FW_X").unwrap();
    assert!(current(&control_a).starts_with("#\nsysname FW_X\n"));
    let text = ask(&control_a, &Request::Reload).unwrap();
    assert!(text.contains("1 unsaved console change(s) discarded"), "{text}");
    assert_eq!(current(&control_a), before);
    configure(&control_a, &[], "sysname FW_Y").unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid_a.to_string()]).status().unwrap().success());
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(100), || current(&control_a) == before),
        "SIGHUP discards the change too"
    );

    let log = log();
    assert!(
        log.contains("configuration changed by root (uid 0): [ike peer b] pre-shared-key %^%#********%^%#"),
        "{log}"
    );
    assert!(log.contains("configuration changed by root (uid 0): sysname FW_A"), "{log}");
    assert!(
        log.contains("configuration change by root (uid 0) refused: Error: ike peer b has IKEv1 disabled"),
        "{log}"
    );
    assert!(log.contains("configuration saved to"), "{log}");
    assert_eq!(log.matches("unsaved console change(s) discarded").count(), 2, "{log}");
    assert!(!log.contains("tiandihui2"), "the key never reaches the log");
    drop(cleanup);
}

/// The kernel's routes for 10.2.2.0/24 (and within it) in namespace `ns`, all protocols.
fn routes_to_b(ns: &str) -> String {
    let out =
        Command::new("ip").args(["-n", ns, "-4", "route", "show", "root", "10.2.2.0/24"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `undo pre-shared-key` on the applied peer leaves it, its policy entry and the interface
/// inert: the protected prefix stays fail-closed (the unreachable route of protocol 245, no
/// TUN route), the article's `ip route-static` toward it stays held back, so the traffic is
/// dropped and never leaves in clear; the key typed again routes it into the TUN again.
#[test]
fn netns_console_undo_on_an_applied_peer_keeps_its_traffic_fail_closed() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}u", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-console-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let file_a = dir.join("fw_a.cfg");
    std::fs::copy(examples.join("fw_a.cfg"), &file_a).unwrap();
    let control_a = dir.join("a.sock");
    let map_a = format!("GigabitEthernet0/0/2={}", net.public_a);
    spawn_keysteward(
        &mut cleanup,
        &net.fw_a,
        &file_a,
        &control_a,
        &dir.join("a.log"),
        &["--interface-map", &map_a],
    );
    assert!(wait_for_socket(&control_a, Duration::from_secs(10)), "FW_A did not start");
    let before = routes_to_b(&net.fw_a);
    assert!(before.contains("unreachable 10.2.2.0/24 proto 245 metric 1"), "{before}");
    assert!(!before.contains("via 192.0.2.2"), "{before}");

    let text = configure(&control_a, &["ike peer b"], "undo pre-shared-key").unwrap();
    assert!(text.contains("Info: ike peer b stays inert until it is complete"), "{text}");
    assert!(
        text.contains(
            "Info: traffic to 10.2.2.0/24 (ipsec policy policy1 1) is dropped until it is complete"
        ),
        "{text}"
    );
    let inert = routes_to_b(&net.fw_a);
    assert!(inert.contains("unreachable 10.2.2.0/24 proto 245 metric 1"), "fail-closed stays:\n{inert}");
    assert!(!inert.contains("via 192.0.2.2"), "the static route stays held back:\n{inert}");
    assert!(!inert.contains(" dev "), "no TUN route while the policy is incomplete:\n{inert}");
    let get = Command::new("ip").args(["-n", &net.fw_a, "route", "get", "10.2.2.2"]).output().unwrap();
    assert!(!get.status.success() || !output_text(&get).contains("via"), "{}", output_text(&get));

    let text = configure(&control_a, &["ike peer b"], "pre-shared-key tiandihui2").unwrap();
    assert!(text.contains("Info: ike peer b is complete and applied."), "{text}");
    let after = routes_to_b(&net.fw_a);
    assert!(after.contains("10.2.2.0/24 dev "), "the TUN route is back:\n{after}");
    assert!(after.contains("unreachable 10.2.2.0/24 proto 245 metric 1"), "{after}");
    assert!(!after.contains("via 192.0.2.2"), "{after}");
    drop(cleanup);
}

/// Issue 15: an entry whose ACL has only a rule with a protocol (L2TP, `permit udp …
/// destination-port eq 1701`) is policy-routed by its protocol, and the article's static route
/// toward the prefix is the clear path of everything else. `undo pre-shared-key` makes the
/// entry inert: its policy rule stays, so UDP to the prefix still goes into the TUN, where no
/// rule protects it and it is dropped, instead of taking the static route in clear.
#[test]
fn netns_console_undo_on_a_protocol_rule_entry_keeps_its_policy_rule() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}l", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-console-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let file_a = dir.join("fw_a.cfg");
    let text = std::fs::read_to_string(examples.join("fw_a.cfg")).unwrap().replace(
        " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
        " rule 5 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 1701",
    );
    std::fs::write(&file_a, text).unwrap();
    let control_a = dir.join("a.sock");
    let map_a = format!("GigabitEthernet0/0/2={}", net.public_a);
    spawn_keysteward(
        &mut cleanup,
        &net.fw_a,
        &file_a,
        &control_a,
        &dir.join("a.log"),
        &["--interface-map", &map_a],
    );
    assert!(wait_for_socket(&control_a, Duration::from_secs(10)), "FW_A did not start");
    let rules = || {
        let out = Command::new("ip").args(["-n", &net.fw_a, "rule", "show"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Where FW_A forwards UDP from PC_A to PC_B's port 1701.
    let udp_route = || {
        let inside = format!("{tag}ai");
        let args = ["-n", &net.fw_a, "route", "get", "10.2.2.2", "from", "10.1.1.2", "iif", &inside];
        let out = Command::new("ip").args(args).args(["ipproto", "udp", "dport", "1701"]).output().unwrap();
        output_text(&out)
    };
    let rule = "to 10.2.2.0/24 ipproto udp lookup 4500";
    assert!(rules().contains(rule), "{}", rules());
    assert!(!udp_route().contains("via 192.0.2.2"), "{}", udp_route());

    let text = configure(&control_a, &["ike peer b"], "undo pre-shared-key").unwrap();
    assert!(text.contains("Info: ike peer b stays inert until it is complete"), "{text}");
    assert!(rules().contains(rule), "the policy rule stays while the entry is inert:\n{}", rules());
    assert!(!udp_route().contains("via 192.0.2.2"), "never the clear path: {}", udp_route());

    let text = configure(&control_a, &["ike peer b"], "pre-shared-key tiandihui2").unwrap();
    assert!(text.contains("Info: ike peer b is complete and applied."), "{text}");
    assert!(rules().contains(rule), "{}", rules());
    drop(cleanup);
}
