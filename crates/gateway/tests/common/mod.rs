//! Helpers shared by the namespace tests (`netns_*`), so that each test file says only what
//! it checks:
//! - the [`Cleanup`] guard, which removes what a test made (processes by PID, namespaces, the
//!   scratch directory) even when it fails; every helper that makes something hands it to the
//!   guard at once, and namespace names carry the test process's PID and a per-test suffix;
//! - topology: `ip(8)`, [`veth`], [`reference_topology`] (PC_A—FW_A—FW_B—PC_B), the public
//!   link of the two-gateway strongSwan tests, an inside address without a PC;
//! - keysteward: daemons started in a namespace and waited for by their control socket,
//!   `keysteward …` in a namespace, the readiness test on `display ike sa --json`;
//! - traffic: pings counted, tshark captures started, stopped and counted;
//! - strongSwan: charon's and swanctl's configurations, charon started, `swanctl`, and the
//!   waits for a tunnel or an error on both sides.
// Each test file is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

/// The opening of every namespace test: true (after saying why) when not root, and the test
/// should return at once and pass; CI runs the tests as root.
pub(crate) fn skip_unless_root() -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: needs root for network namespaces (CI runs it as root)");
    true
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

impl Cleanup {
    /// A guard that owns the scratch directory `dir` (created here) and, so far, nothing else;
    /// the test registers each namespace and process with it as soon as it exists, so a
    /// failure at any later step still removes it.
    pub(crate) fn new(dir: PathBuf) -> Cleanup {
        std::fs::create_dir_all(&dir).unwrap();
        Cleanup { namespaces: Vec::new(), children: Vec::new(), dir }
    }

    /// Creates the namespaces `names` (registered with the guard before anything is put in
    /// them) with their loopback up.
    pub(crate) fn add_namespaces<S: AsRef<str>>(&mut self, names: &[S]) {
        for ns in names {
            let ns = ns.as_ref();
            ip(&["netns", "add", ns]);
            self.namespaces.push(ns.to_owned());
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
    }
}

/// Standard output then standard error of a finished command, as text.
pub(crate) fn output_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs `ARGS` in namespace `ns` (`ip netns exec`) and waits for it.
pub(crate) fn in_ns(ns: &str, args: &[&str]) -> Output {
    Command::new("ip").args(["netns", "exec", ns]).args(args).output().expect("ip netns exec runs")
}

/// A veth pair: `a` in `ns_a` (with address `addr_a`, if any) and `b` in `ns_b` (address
/// `addr_b`), both up. The pair goes with its namespaces.
pub(crate) fn veth(ns_a: &str, a: &str, addr_a: Option<&str>, ns_b: &str, b: &str, addr_b: &str) {
    ip(&["link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b]);
    if let Some(addr) = addr_a {
        ip(&["-n", ns_a, "addr", "add", addr, "dev", a]);
    }
    ip(&["-n", ns_a, "link", "set", a, "up"]);
    ip(&["-n", ns_b, "addr", "add", addr_b, "dev", b]);
    ip(&["-n", ns_b, "link", "set", b, "up"]);
}

/// `keysteward ARGS --control CONTROL` in namespace `ns`, finished.
pub(crate) fn keysteward_output(ns: &str, args: &[&str], control: &Path) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward")])
        .args(args)
        .arg("--control")
        .arg(control)
        .output()
        .expect("keysteward runs")
}

/// `keysteward ARGS --control CONTROL` in namespace `ns`: standard output and error together
/// (an error message is what a failing assertion should show).
pub(crate) fn keysteward(ns: &str, args: &[&str], control: &Path) -> String {
    output_text(&keysteward_output(ns, args, control))
}

/// `keysteward ARGS --control CONTROL` in namespace `ns`: standard output alone, for JSON
/// that must parse and for text compared without the warnings on standard error.
pub(crate) fn keysteward_stdout(ns: &str, args: &[&str], control: &Path) -> String {
    String::from_utf8_lossy(&keysteward_output(ns, args, control).stdout).into_owned()
}

/// Polls `done` every `every` until it holds or `limit` has passed; whether it held.
pub(crate) fn wait_until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(every);
    }
    done()
}

/// Starts `keysteward run --config CONFIG --control CONTROL EXTRA…` in namespace `ns`, its
/// standard error (the log) written to `log`, and hands the process to the guard. Returns
/// its PID, which is the daemon's (`ip netns exec` execs it), for signals. Does not wait:
/// see [`wait_for_socket`].
pub(crate) fn spawn_keysteward(
    cleanup: &mut Cleanup,
    ns: &str,
    config: &Path,
    control: &Path,
    log: &Path,
    extra: &[&str],
) -> u32 {
    let log = std::fs::File::create(log).unwrap();
    // A file with a pre-shared key must be the owner's alone, or the daemon refuses it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_keysteward"), "run", "--config"])
        .arg(config)
        .arg("--control")
        .arg(control)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("daemon starts");
    let pid = child.id();
    cleanup.children.push(child);
    pid
}

/// Waits up to `limit` for a daemon's control socket `control` to appear (the daemon has
/// bound its IKE sockets by then); whether it did.
pub(crate) fn wait_for_socket(control: &Path, limit: Duration) -> bool {
    wait_until(limit, Duration::from_millis(50), || control.exists())
}

/// The reference topology's namespaces and the Linux names of the firewalls' public ends.
///
/// ```text
///  TAGpa              TAGfa                            TAGfb               TAGpb
///  PC_A 10.1.1.2 ── 10.1.1.1 FW_A 192.0.2.1 ── 192.0.2.2 FW_B 10.2.2.1 ── 10.2.2.2 PC_B
/// ```
pub(crate) struct Reference {
    pub(crate) pc_a: String,
    pub(crate) fw_a: String,
    pub(crate) fw_b: String,
    pub(crate) pc_b: String,
    /// FW_A's public veth end (`TAGab`); FW_A's inside end is `TAGai`.
    pub(crate) public_a: String,
    /// FW_B's public veth end (`TAGba`); FW_B's inside end is `TAGbi`.
    pub(crate) public_b: String,
}

/// Builds the reference topology under `tag` (the test's `ks<pid><suffix>`, so tests running
/// at the same time stay apart): four namespaces registered with `cleanup`, the three links,
/// the PCs' default routes via their firewall, and forwarding on the firewalls.
pub(crate) fn reference_topology(cleanup: &mut Cleanup, tag: &str) -> Reference {
    let [pc_a, fw_a, fw_b, pc_b] = ["pa", "fa", "fb", "pb"].map(|n| format!("{tag}{n}"));
    cleanup.add_namespaces(&[&pc_a, &fw_a, &fw_b, &pc_b]);
    let (public_a, public_b) = (format!("{tag}ab"), format!("{tag}ba"));
    veth(&pc_a, &format!("{tag}pa"), Some("10.1.1.2/24"), &fw_a, &format!("{tag}ai"), "10.1.1.1/24");
    veth(&fw_a, &public_a, Some("192.0.2.1/24"), &fw_b, &public_b, "192.0.2.2/24");
    veth(&fw_b, &format!("{tag}bi"), Some("10.2.2.1/24"), &pc_b, &format!("{tag}pb"), "10.2.2.2/24");
    ip(&["-n", &pc_a, "route", "add", "default", "via", "10.1.1.1"]);
    ip(&["-n", &pc_b, "route", "add", "default", "via", "10.2.2.1"]);
    for ns in [&fw_a, &fw_b] {
        let out = in_ns(ns, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        assert!(out.status.success(), "ip_forward in {ns}: {}", output_text(&out));
    }
    Reference { pc_a, fw_a, fw_b, pc_b, public_a, public_b }
}

/// Starts a tshark capture of `dev` in namespace `ns` into `pcap`, handed to the guard;
/// waits up to `limit` for the file and half a second more for tshark to capture. Returns
/// its PID for [`stop_capture`].
pub(crate) fn start_capture(cleanup: &mut Cleanup, ns: &str, dev: &str, pcap: &Path, limit: Duration) -> u32 {
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "tshark", "-q", "-i", dev, "-w"])
        .arg(pcap)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tshark starts");
    let pid = child.id();
    cleanup.children.push(child);
    wait_until(limit, Duration::from_millis(100), || pcap.exists());
    std::thread::sleep(Duration::from_millis(500));
    pid
}

/// Stops the capture `pid` with SIGINT (so tshark completes the file) and waits for it; the
/// guard no longer holds it.
pub(crate) fn stop_capture(cleanup: &mut Cleanup, pid: u32) {
    let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
    if let Some(position) = cleanup.children.iter().position(|c| c.id() == pid) {
        let _ = cleanup.children.remove(position).wait();
    }
}

/// How many frames of the capture `pcap` match the display filter `filter`.
pub(crate) fn count_frames(pcap: &Path, filter: &str) -> usize {
    let out = Command::new("tshark").arg("-r").arg(pcap).args(["-Y", filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// charon's `strongswan.conf` for a peer whose files live under `run`: userspace ESP
/// (kernel-libipsec), the VICI socket and a log at `run/charon.log` (IKE and config at level 2).
/// `plugins` adds to the load list after x509 (e.g. `revocation constraints `), `options`
/// adds lines to the `charon` section, `levels` adds log levels (e.g. `      chd = 4\n`).
pub(crate) fn strongswan_conf(run: &Path, plugins: &str, options: &str, levels: &str) -> String {
    format!(
        "charon {{
  load = aes sha2 sha1 md5 random nonce openssl gmp curve25519 hmac kdf pem pkcs1 pkcs8 x509 {plugins}pubkey kernel-libipsec kernel-netlink socket-default vici
  install_virtual_ip = no
{options}  filelog {{
    log {{
      path = {run}/charon.log
      time_format = %T
      default = 1
      ike = 2
      cfg = 2
{levels}      flush_line = yes
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

/// Polls keysteward in `ns_a` (`display ike sa --json`) and strongSwan in `ns_b` (`swanctl
/// --list-sas`) every 200 ms for up to 30 s until keysteward shows phase 1 and 2 ready and
/// strongSwan a CHILD_SA INSTALLED; fails the test otherwise, with both answers, keysteward's
/// log `keysteward_log` and charon's (`run/charon.log`). Returns strongSwan's last answer.
pub(crate) fn assert_strongswan_tunnel(
    ns_a: &str,
    control: &Path,
    keysteward_log: &Path,
    ns_b: &str,
    run: &Path,
) -> String {
    let start = Instant::now();
    let (up, ours, theirs) = loop {
        let ours = keysteward_stdout(ns_a, &["display", "ike", "sa", "--json"], control);
        let theirs = swanctl(ns_b, run, &["--list-sas"]);
        if ready(&ours, "v1:1") && ready(&ours, "v1:2") && theirs.contains("INSTALLED") {
            break (true, ours, theirs);
        }
        if start.elapsed() > Duration::from_secs(30) {
            break (false, ours, theirs);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        up,
        "no tunnel after 30 s\nkeysteward: {ours}\nswanctl --list-sas: {theirs}\nkeysteward log:\n{}\ncharon log:\n{}",
        log(keysteward_log),
        log(&run.join("charon.log"))
    );
    theirs
}

/// Polls keysteward's `display ike error-info` in `ns` every 200 ms for up to 30 s until it
/// contains `wanted`; returns the last answer.
pub(crate) fn wait_for_error_info(ns: &str, control: &Path, wanted: &str) -> String {
    let start = Instant::now();
    loop {
        let errors = keysteward_stdout(ns, &["display", "ike", "error-info"], control);
        if errors.contains(wanted) || start.elapsed() > Duration::from_secs(30) {
            return errors;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Names of the namespaces listed by `ip netns list` that `ours` accepts (for the check,
/// after the guard is dropped, that a test left none of its own behind).
pub(crate) fn listed_namespaces(ours: impl Fn(&str) -> bool) -> (usize, String) {
    let listed = output_text(&Command::new("ip").args(["netns", "list"]).output().unwrap());
    let count = listed.lines().filter_map(|l| l.split_whitespace().next()).filter(|n| ours(n)).count();
    (count, listed)
}

/// Writes `config_a` and `config_b` to `dir/fw_a.cfg` and `dir/fw_b.cfg` and starts FW_B, then
/// FW_A, in the reference topology `net` (debug logs to `dir/b.log` and `dir/a.log`), each
/// waited for up to `limit`: FW_B must listen before FW_A's first message. The examples keep
/// the article's name for the public interface, GigabitEthernet0/0/2: `--interface-map` names
/// the veth end that plays it. Returns the control sockets (FW_A's, FW_B's).
pub(crate) fn start_reference_daemons(
    cleanup: &mut Cleanup,
    dir: &Path,
    net: &Reference,
    config_a: &str,
    config_b: &str,
    limit: Duration,
) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join("fw_a.cfg"), config_a).unwrap();
    std::fs::write(dir.join("fw_b.cfg"), config_b).unwrap();
    let (control_a, control_b) = (dir.join("a.sock"), dir.join("b.sock"));
    for (ns, name, control, public) in
        [(&net.fw_b, "b", &control_b, &net.public_b), (&net.fw_a, "a", &control_a, &net.public_a)]
    {
        let log = dir.join(format!("{name}.log"));
        let map = format!("GigabitEthernet0/0/2={public}");
        let extra = ["--interface-map", &map, "--log-level", "debug"];
        spawn_keysteward(cleanup, ns, &dir.join(format!("fw_{name}.cfg")), control, &log, &extra);
        assert!(
            wait_for_socket(control, limit),
            "daemon in {ns} did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    (control_a, control_b)
}

/// Pings `target` from namespace `ns` `count` times, `interval` seconds apart, waiting `wait`
/// seconds for each reply. Returns the number of replies and ping's output.
pub(crate) fn ping(ns: &str, count: u32, interval: &str, wait: &str, target: &str) -> (usize, String) {
    let text =
        output_text(&in_ns(ns, &["ping", "-c", &count.to_string(), "-i", interval, "-W", wait, target]));
    (text.matches(&format!("bytes from {target}")).count(), text)
}

/// An inside address `addr` for namespace `ns` with no PC behind it: `in0`, one end of a veth
/// pair whose other end (`in0p`, same namespace) stays down. Enough for the gateway to answer
/// for that address itself.
pub(crate) fn inside_address(ns: &str, addr: &str) {
    ip(&["-n", ns, "link", "add", "in0", "type", "veth", "peer", "name", "in0p"]);
    ip(&["-n", ns, "addr", "add", addr, "dev", "in0"]);
    ip(&["-n", ns, "link", "set", "in0", "up"]);
}

/// strongSwan's side of the two-gateway strongSwan tests: FW_B (192.0.2.2) facing keysteward's
/// FW_A (192.0.2.1) with the IKEv1 connection `s2s` and its tunnel-mode CHILD_SA `net`, which
/// starts only on `swanctl --initiate` or when keysteward asks. See [`swanctl_conf`].
pub(crate) struct SwanConnection<'a> {
    /// IKE `proposals`.
    pub(crate) proposals: &'a str,
    pub(crate) aggressive: bool,
    /// Further lines of the connection, indented by four (e.g. `reauth_time`).
    pub(crate) ike_extra: &'a str,
    /// `psk` or `pubkey`, both ways.
    pub(crate) auth: &'a str,
    /// strongSwan's own certificate (file under `swanctl/x509`), for `pubkey`.
    pub(crate) certs: Option<&'a str>,
    /// Identities as swanctl.conf writes them (quote a DN).
    pub(crate) local_id: &'a str,
    pub(crate) remote_id: &'a str,
    /// The pre-shared key (a `secrets` section for the two identities), for `psk`.
    pub(crate) secret: Option<&'a str>,
    /// The CHILD_SA's local and remote traffic selectors.
    pub(crate) ts: (&'a str, &'a str),
    pub(crate) esp_proposals: &'a str,
    /// Further lines of the CHILD_SA, indented by eight (e.g. `rekey_time`).
    pub(crate) child_extra: &'a str,
}

/// The `swanctl.conf` text of `c`.
pub(crate) fn swanctl_conf(c: &SwanConnection) -> String {
    let certs = c.certs.map(|file| format!("      certs = {file}\n")).unwrap_or_default();
    let secrets = c
        .secret
        .map(|secret| {
            format!(
                "secrets {{\n  ike-s2s {{\n    id-1 = {}\n    id-2 = {}\n    secret = \"{secret}\"\n  }}\n}}\n",
                c.remote_id, c.local_id
            )
        })
        .unwrap_or_default();
    format!(
        "connections {{
  s2s {{
    version = 1
    local_addrs = 192.0.2.2
    remote_addrs = 192.0.2.1
    proposals = {proposals}
    aggressive = {aggressive}
{ike_extra}    local {{
      auth = {auth}
{certs}      id = {local_id}
    }}
    remote {{
      auth = {auth}
      id = {remote_id}
    }}
    children {{
      net {{
        local_ts = {local_ts}
        remote_ts = {remote_ts}
        esp_proposals = {esp}
        mode = tunnel
        start_action = none
{child_extra}      }}
    }}
  }}
}}
{secrets}",
        proposals = c.proposals,
        aggressive = if c.aggressive { "yes" } else { "no" },
        ike_extra = c.ike_extra,
        auth = c.auth,
        local_id = c.local_id,
        remote_id = c.remote_id,
        local_ts = c.ts.0,
        remote_ts = c.ts.1,
        esp = c.esp_proposals,
        child_extra = c.child_extra,
    )
}

/// keysteward's FW_A (192.0.2.1 on `out0`) in the two-gateway strongSwan tests: peer `b` at
/// 192.0.2.2, ACL 3001 for 10.1.1.0/24 → 10.2.2.0/24, tunnel-mode ESP, policy `policy1` on
/// `out0`. Each argument adds lines (one leading space each) to its section: `ike` to
/// `ike proposal 10`, `peer` to `ike peer b` after `undo version 2` (mode, address,
/// authentication), `esp` to `ipsec proposal a`, `policy` to the policy entry.
pub(crate) fn fw_a_conf(ike: &str, peer: &str, esp: &str, policy: &str) -> String {
    format!(
        "ike proposal 10
{ike}ike peer b
 ike-proposal 10
 undo version 2
{peer}acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
ipsec proposal a
 transform esp
 encapsulation-mode tunnel
{esp}ipsec policy policy1 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
{policy}interface out0
 ip address 192.0.2.1 255.255.255.0
 ipsec policy policy1
"
    )
}
