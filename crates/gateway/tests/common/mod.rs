//! Helpers shared by the namespace tests (`netns_*`): the cleanup guard that removes what a
//! test made even when it fails, `ip(8)`, the root check, and the readiness test on
//! `display ike sa --json`.
// Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// strongSwan's IKE daemon, from Debian's strongswan-charon.
pub(crate) const CHARON: &str = "/usr/lib/ipsec/charon";

/// What a test made: processes (killed by their PID), namespaces and a scratch directory
/// (kept when KEYSTEWARD_KEEP_TEST_DIR is set, for debugging). Dropped on every path out.
pub(crate) struct Cleanup {
    pub(crate) namespaces: Vec<String>,
    pub(crate) children: Vec<Child>,
    pub(crate) dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("KEYSTEWARD_KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `ip ARGS` and fails the test if it fails.
pub(crate) fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip(8) runs");
    assert!(status.success(), "ip {}", args.join(" "));
}

/// Namespace tests need root; as another user they say so and pass.
pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// True when `display ike sa --json` output shows an SA of `phase` (`v1:1` / `v1:2`) as RD.
pub(crate) fn ready(json: &str, phase: &str) -> bool {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    value["sas"].as_array().is_some_and(|sas| {
        sas.iter().any(|sa| {
            sa["phase"] == phase && sa["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "RD"))
        })
    })
}

/// `swanctl ARGS --uri unix://RUN/charon.vici` in namespace `ns`, with strongSwan's
/// configuration directory under RUN; standard output and error together.
pub(crate) fn swanctl(ns: &str, run: &Path, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "swanctl"])
        .args(args)
        .arg("--uri")
        .arg(format!("unix://{}/charon.vici", run.display()))
        .env("SWANCTL_DIR", run.join("swanctl"))
        .output()
        .expect("swanctl runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The public link of the two-gateway topologies: `out0` in `ns_a` (192.0.2.1/24) and in
/// `ns_b` (192.0.2.2/24), joined by a veth pair.
pub(crate) fn public_link(ns_a: &str, ns_b: &str) {
    ip(&["link", "add", "out0", "netns", ns_a, "type", "veth", "peer", "name", "out0", "netns", ns_b]);
    ip(&["-n", ns_a, "addr", "add", "192.0.2.1/24", "dev", "out0"]);
    ip(&["-n", ns_b, "addr", "add", "192.0.2.2/24", "dev", "out0"]);
    ip(&["-n", ns_a, "link", "set", "out0", "up"]);
    ip(&["-n", ns_b, "link", "set", "out0", "up"]);
}

/// Starts charon in namespace `ns` with the `strongswan.conf` and `swanctl/swanctl.conf`
/// already written under `run`, waits for its VICI socket and loads the connection `s2s`.
/// charon insists on /run/charon.pid, so it gets a private mount namespace with `run` as /run.
/// The guard kills it by PID.
pub(crate) fn start_charon(cleanup: &mut Cleanup, ns: &str, run: &Path) {
    let charon = Command::new("ip")
        .args(["netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c"])
        .arg(format!("mount --bind \"$0\" /run && exec {CHARON}"))
        .arg(run)
        .env("STRONGSWAN_CONF", run.join("strongswan.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("charon starts");
    cleanup.children.push(charon);
    let vici = run.join("charon.vici");
    let start = Instant::now();
    while !vici.exists() && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(run.join("charon.log")).unwrap_or_default();
    assert!(vici.exists(), "charon did not start:\n{log}");
    let loaded = swanctl(ns, run, &["--load-all"]);
    assert!(loaded.contains("loaded connection 's2s'"), "{loaded}");
}
