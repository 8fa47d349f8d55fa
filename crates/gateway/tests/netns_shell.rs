//! Issue 15's "done when", as an operator does it (root only; CI runs as root): in the
//! reference topology, FW_A's daemon starts with an empty configuration file; on a
//! pseudo-terminal `keysteward shell` logs in, the article's FW_A configuration is typed
//! line by line with abbreviations (and two of its `//` annotations), every prompt checked;
//! traffic brings the tunnel up against FW_B; `dis ike sa` and `dis ipsec sa br` show it;
//! `save` (answered `y`); the daemon restarted on the saved file has the same running
//! configuration and carries traffic.
//!
//! ```text
//!  ks<pid>shpa        ks<pid>shfa                      ks<pid>shfb         ks<pid>shpb
//!  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use keysteward::control::{call, Request, Response};

mod common;
#[path = "common/pty.rs"]
mod pty;
use common::{ping, reference_topology, skip_unless_root, spawn_keysteward, wait_for_socket, Cleanup};
use pty::{shell_command, type_line};

/// The article's FW_A configuration as an operator types it (abbreviated), and the prompt
/// each line leads to.
const TYPED: &[(&str, &str)] = &[
    ("sys", "[keysteward]"),
    ("sysname FW_A", "[FW_A]"),
    ("ike pro 10", "[FW_A-ike-proposal-10]"),
    ("ike pe b", "[FW_A-ike-peer-b]"),
    ("ike-pro 10", "[FW_A-ike-peer-b]"),
    ("undo ver 2 //IKEv1", "[FW_A-ike-peer-b]"),
    ("exc main//main mode (default)", "[FW_A-ike-peer-b]"),
    ("remote-ad 192.0.2.2", "[FW_A-ike-peer-b]"),
    ("pre tiandihui2", "[FW_A-ike-peer-b]"),
    ("q", "[FW_A]"),
    ("acl num 3001", "[FW_A-acl-adv-3001]"),
    ("rule 5 per ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255", "[FW_A-acl-adv-3001]"),
    ("ipsec pro a", "[FW_A-ipsec-proposal-a]"),
    ("tr esp", "[FW_A-ipsec-proposal-a]"),
    ("enc tunnel", "[FW_A-ipsec-proposal-a]"),
    ("esp au md5", "[FW_A-ipsec-proposal-a]"),
    ("esp en des", "[FW_A-ipsec-proposal-a]"),
    ("ipsec policy policy1 1 isa", "[FW_A-ipsec-policy-isakmp-policy1-1]"),
    ("sec acl 3001", "[FW_A-ipsec-policy-isakmp-policy1-1]"),
    ("pro a", "[FW_A-ipsec-policy-isakmp-policy1-1]"),
    ("ike-p b", "[FW_A-ipsec-policy-isakmp-policy1-1]"),
    ("int GigabitEthernet0/0/2", "[FW_A-GigabitEthernet0/0/2]"),
    ("ip add 192.0.2.1 255.255.255.0", "[FW_A-GigabitEthernet0/0/2]"),
    ("ipsec pol policy1", "[FW_A-GigabitEthernet0/0/2]"),
    ("q", "[FW_A]"),
    ("ip route-s 10.2.2.0 255.255.255.0 192.0.2.2", "[FW_A]"),
    ("return", "<FW_A>"),
];

fn current(control: &Path) -> String {
    match call(control, &Request::DisplayCurrentConfiguration).unwrap() {
        Response::Ok { text, .. } => text,
        Response::Error(e) => panic!("display current-configuration: {e}"),
    }
}

#[test]
fn netns_shell_types_the_article_brings_the_tunnel_up_saves_and_restarts() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("ks{}sh", std::process::id());
    let dir = std::env::temp_dir().join(format!("keysteward-shell-{tag}"));
    let mut cleanup = Cleanup::new(dir.clone());
    let net = reference_topology(&mut cleanup, &tag);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let (file_a, file_b) = (dir.join("fw_a.cfg"), dir.join("fw_b.cfg"));
    std::fs::write(&file_a, "").unwrap();
    std::fs::copy(examples.join("fw_b.cfg"), &file_b).unwrap();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    let (map_a, map_b) =
        (format!("GigabitEthernet0/0/2={}", net.public_a), format!("GigabitEthernet0/0/2={}", net.public_b));
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

    // Log in and type the configuration; every prompt is the one VRP shows.
    let mut p = pty::spawn(shell_command(&control_a, &dir), "<keysteward>");
    for (line, next) in TYPED {
        let out = type_line(&mut p, line, next);
        assert!(!out.contains("Error"), "{line}: {out}\nFW_A:\n{}", log());
    }

    // Traffic brings the tunnel up; the displays show it.
    let (answered, text) = ping(&net.pc_a, 5, "0.2", "1", "10.2.2.2");
    assert!(answered >= 3, "{answered} of 5: {text}\nFW_A:\n{}", log());
    let ike = type_line(&mut p, "dis ike sa", "<FW_A>");
    assert!(ike.contains("192.0.2.2") && ike.contains("RD"), "{ike}");
    let ipsec = type_line(&mut p, "dis ipsec sa br", "<FW_A>");
    assert!(ipsec.contains("current ipsec sa number: 2"), "{ipsec}");
    assert!(ipsec.contains("192.0.2.1") && ipsec.contains("192.0.2.2"), "{ipsec}");

    // save, answered y.
    p.send_line("save").unwrap();
    p.exp_string("The current configuration will be written to the device. Are you sure to continue?[Y/N]:")
        .unwrap();
    let saved = type_line(&mut p, "y", "<FW_A>");
    assert!(saved.contains("Save the configuration successfully."), "{saved}");
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();
    let before = current(&control_a);
    assert!(before.starts_with("#\nsysname FW_A\n"), "{before}");
    assert!(before.contains("ike peer b\n"), "{before}");
    // The key is in the file (the daemon must read it back), which is the owner's alone.
    let mode = std::fs::metadata(&file_a).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The daemon restarted on the saved file: the same running configuration, and traffic.
    assert!(Command::new("kill").args(["-TERM", &pid_a.to_string()]).status().unwrap().success());
    if let Some(position) = cleanup.children.iter().position(|c| c.id() == pid_a) {
        let _ = cleanup.children.remove(position).wait();
    }
    start_a(&mut cleanup, &logs_a[1]);
    assert_eq!(current(&control_a), before, "the saved file gives the same running configuration");
    let mut p = pty::spawn(shell_command(&control_a, &dir), "<FW_A>");
    p.send_line("quit").unwrap();
    p.exp_eof().unwrap();
    let (answered, text) = ping(&net.pc_a, 5, "0.2", "1", "10.2.2.2");
    assert!(answered >= 3, "{answered} of 5 after the restart: {text}\nFW_A:\n{}", log());
    assert!(!log().contains("tiandihui2"), "the key never reaches the log");
    drop(cleanup);
}
