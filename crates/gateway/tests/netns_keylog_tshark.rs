//! `keysteward run --key-log FILE` checked by Wireshark itself: interop scenario 1 (keysteward
//! initiates main mode, PSK, aes128-sha256-modp2048, ESP aes128-sha256 against strongSwan 5.9
//! in another network namespace) with a tshark capture of the public link, then tshark reads
//! the capture again with nothing but the records of our key log and must decrypt every
//! encrypted ISAKMP message (MM5, MM6, QM1, QM2, QM3). Root only (namespaces); CI runs it as
//! root and `scripts/test` installs strongSwan and tshark.
//!
//! Once the tunnel is up, pings from 10.1.1.1 (FW_A's inside address) to 10.2.2.1 (FW_B's)
//! cross it as ESP-in-UDP, and tshark with our two `esp_sa` records must decrypt every ESP
//! packet of both directions to an ICMP echo with a good ICV. The records are also checked
//! for direction (the SPI of our outbound record is the one strongSwan receives on) and for
//! the keys themselves against those strongSwan derived (its charon log at `chd` level 4
//! dumps them).
//!
//! Also checked: the key log is mode 0600 and holds exactly one IKE record and two ESP
//! records, the daemon logged the warning, and no key appears in the daemon's (debug) log.
//!
//! A separate file from `netns_strongswan_interop.rs` (whose small helpers it copies) so the
//! scenario suite can change without touching this check. Namespaces and processes (by PID)
//! are removed even on failure.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{
    assert_strongswan_tunnel, in_ns, inside_address, public_link, skip_unless_root, spawn_keysteward,
    start_charon, Cleanup, SwanConnection, CHARON,
};

const PSK: &str = "keylog-Secret-0123456789";

/// charon's configuration; `chd = 4` makes it dump the ESP keys it derives, which this test
/// compares with our key log.
fn strongswan_conf(run: &Path) -> String {
    common::strongswan_conf(run, "", "", "      chd = 4\n")
}

fn swanctl_conf() -> String {
    common::swanctl_conf(&SwanConnection {
        proposals: "aes128-sha256-modp2048",
        aggressive: false,
        ike_extra: "",
        auth: "psk",
        certs: None,
        local_id: "192.0.2.2",
        remote_id: "192.0.2.1",
        secret: Some(PSK),
        ts: ("10.2.2.0/24", "10.1.1.0/24"),
        esp_proposals: "aes128-sha256",
        child_extra: "",
    })
}

fn keysteward_conf() -> String {
    common::fw_a_conf(
        " encryption-algorithm aes-128\n authentication-algorithm sha2-256\n dh group14\n",
        &format!(" exchange-mode main\n remote-address 192.0.2.2\n pre-shared-key {PSK}\n"),
        " esp authentication-algorithm sha2-256\n esp encryption-algorithm aes-128\n",
        " sa trigger-mode auto\n",
    )
}

/// Sends `signal` to `pid` with kill(1): the test stops tshark gently so it finishes the file.
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("kill").args([signal, &pid.to_string()]).status();
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The fields of one `esp_sa` record: `"IPv4","src","dst","0xSPI","enc","0xkey","integ","0xkey"`.
fn esp_fields(record: &str) -> Vec<String> {
    let body = record.strip_prefix("uat:esp_sa:").expect("an esp_sa record");
    body.split("\",\"").map(|f| f.trim_matches('"').to_owned()).collect()
}

/// The bytes strongSwan dumped under `what` (e.g. "encryption initiator key") in its log:
/// a line `… [CHD] what => N bytes @ 0x…` followed by hex-dump lines `   0: C0 9D …  ascii`.
fn charon_key(log: &str, what: &str) -> Option<String> {
    let mut lines = log.lines().skip_while(|l| !l.contains(&format!(" {what} => ")));
    let header = lines.next()?;
    let len: usize = header.split(" => ").nth(1)?.split(' ').next()?.parse().ok()?;
    let mut hex = String::new();
    for line in lines {
        let Some((_, dump)) = line.split_once(": ") else { break };
        let dump = dump.trim_start();
        let bytes = dump.split("  ").next().unwrap_or_default();
        for byte in bytes.split_whitespace() {
            if hex.len() < 2 * len {
                hex.push_str(&byte.to_ascii_lowercase());
            }
        }
        if hex.len() >= 2 * len {
            return Some(hex);
        }
    }
    None
}

#[test]
fn netns_keylog_tshark_decrypts_every_ike_message_and_esp_packet_of_scenario_1() {
    if skip_unless_root() {
        return;
    }
    assert!(
        Path::new(CHARON).exists(),
        "{CHARON} is missing: ./scripts/test installs strongswan-charon, strongswan-swanctl and libcharon-extra-plugins"
    );
    assert!(
        Command::new("tshark").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "tshark is missing: ./scripts/test installs it"
    );
    let tag = format!("kl{}", std::process::id());
    let (ns_a, ns_b) = (format!("{tag}a"), format!("{tag}b"));
    let dir = std::env::temp_dir().join(format!("keysteward-{tag}"));
    let run = dir.join("fwb");
    let mut cleanup = Cleanup::new(dir.clone());
    std::fs::create_dir_all(run.join("swanctl")).unwrap();
    cleanup.add_namespaces(&[&ns_a, &ns_b]);
    public_link(&ns_a, &ns_b);
    // The inside addresses the pings go between (the other ends stay down: only the local
    // addresses matter, each side answers for its own).
    inside_address(&ns_a, "10.1.1.1/24");
    inside_address(&ns_b, "10.2.2.1/24");

    std::fs::write(run.join("strongswan.conf"), strongswan_conf(&run)).unwrap();
    std::fs::write(run.join("swanctl/swanctl.conf"), swanctl_conf()).unwrap();
    start_charon(&mut cleanup, &ns_b, &run);
    let logs = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    // The capture starts before the daemon, so it holds MM1 onwards.
    let pcap = dir.join("public.pcap");
    let tshark = Command::new("ip")
        .args(["netns", "exec", &ns_a, "tshark", "-i", "out0", "-f", "udp port 500 or udp port 4500", "-w"])
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("tshark-capture.log")).unwrap())
        .spawn()
        .expect("tshark starts");
    let tshark_pid = tshark.id();
    cleanup.children.push(tshark);
    let start = Instant::now();
    while !logs("tshark-capture.log").contains("Capturing on") && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(logs("tshark-capture.log").contains("Capturing on"), "tshark: {}", logs("tshark-capture.log"));

    std::fs::write(dir.join("fw_a.cfg"), keysteward_conf()).unwrap();
    let control = dir.join("a.sock");
    let key_log = dir.join("keys.log");
    let extra = ["--log-level", "debug", "--key-log", key_log.to_str().unwrap()];
    spawn_keysteward(
        &mut cleanup,
        &ns_a,
        &dir.join("fw_a.cfg"),
        &control,
        &dir.join("keysteward.log"),
        &extra,
    );

    assert_strongswan_tunnel(&ns_a, &control, &dir.join("keysteward.log"), &ns_b, &run);
    // ESP both ways: echo requests sealed by us, replies sealed by strongSwan.
    let ping = in_ns(&ns_a, &["ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.1.1.1", "10.2.2.1"]);
    let ping_text = String::from_utf8_lossy(&ping.stdout).into_owned();
    let replies = ping_text.matches("bytes from 10.2.2.1").count();
    assert!(
        replies >= 1,
        "no ping through the tunnel
{ping_text}
keysteward log:
{}
charon log:
{}",
        logs("keysteward.log"),
        logs("fwb/charon.log")
    );
    // Every message is on the wire by now; give the capture a moment to write it, then stop
    // tshark by its PID (SIGINT) so that it completes the file.
    std::thread::sleep(Duration::from_millis(500));
    signal(tshark_pid, "-INT");
    let tshark = cleanup.children.iter_mut().find(|c| c.id() == tshark_pid).unwrap();
    assert!(wait_exit(tshark, Duration::from_secs(10)), "tshark did not stop");

    // The key log: private, one IKE record, two ESP records.
    let mode = std::fs::metadata(&key_log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key log mode");
    let records: Vec<String> = logs("keys.log").lines().map(str::to_owned).collect();
    let ike: Vec<&String> = records.iter().filter(|r| r.starts_with("uat:ikev1_decryption_table:")).collect();
    let esp: Vec<&String> = records.iter().filter(|r| r.starts_with("uat:esp_sa:")).collect();
    assert_eq!((ike.len(), esp.len(), records.len()), (1, 2, 3), "key log: {records:#?}");
    let daemon_log = logs("keysteward.log");
    assert!(daemon_log.contains(&format!("key log enabled: {}", key_log.display())), "{daemon_log}");

    // Secrets never reach the daemon's log, even at debug level.
    let ka = ike[0].rsplit(',').next().unwrap().to_owned();
    let mut secrets = vec![ka.clone()];
    for record in &esp {
        let fields = esp_fields(record);
        secrets.push(fields[5].trim_start_matches("0x").to_owned());
        secrets.push(fields[7].trim_start_matches("0x").to_owned());
    }
    for secret in &secrets {
        assert!(secret.len() >= 32, "a whole key: {secret}");
        let lower = daemon_log.to_ascii_lowercase();
        assert!(!lower.contains(secret.as_str()), "a key is in the daemon's log");
    }

    // tshark with only our records decrypts every encrypted ISAKMP message.
    let fields = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-o", ike[0].as_str(), "-Y", "isakmp", "-T", "fields", "-E", "separator=;"])
        .args([
            "-e",
            "frame.number",
            "-e",
            "isakmp.flag_e",
            "-e",
            "isakmp.messageid",
            "-e",
            "isakmp.typepayload",
        ])
        .output()
        .expect("tshark reads the capture");
    let table = String::from_utf8_lossy(&fields.stdout).into_owned();
    assert!(fields.status.success(), "{}", String::from_utf8_lossy(&fields.stderr));
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split(';').collect()).collect();
    let encrypted: Vec<&Vec<&str>> = rows.iter().filter(|r| r.get(1) == Some(&"1")).collect();
    let context =
        format!("tshark rows (frame/encrypted/message id/payloads):\n{table}\nkey log: {records:#?}");
    for row in &encrypted {
        let payloads: Vec<&str> = row.get(3).unwrap_or(&"").split(',').collect();
        assert!(payloads.contains(&"8"), "frame {} not decrypted (no HASH payload)\n{context}", row[0]);
    }
    // MM5 and MM6: ID and HASH under message ID 0; QM1 and QM2 with SA and Nonce, QM3 HASH
    // alone, all three under one quick-mode message ID.
    let main_mode: Vec<_> = encrypted.iter().filter(|r| r[2] == "0x00000000").collect();
    assert!(main_mode.len() >= 2, "MM5 and MM6\n{context}");
    assert!(main_mode.iter().all(|r| r[3].split(',').any(|p| p == "5")), "ID in MM5/MM6\n{context}");
    let quick_mode: Vec<_> = encrypted.iter().filter(|r| r[2] != "0x00000000").collect();
    assert!(quick_mode.len() >= 3, "QM1, QM2 and QM3\n{context}");
    let with_sa = quick_mode.iter().filter(|r| r[3].split(',').any(|p| p == "1")).count();
    let hash_only = quick_mode.iter().filter(|r| r[3] == "8").count();
    assert!(with_sa >= 2 && hash_only >= 1, "QM1/QM2 carry SA, QM3 only HASH\n{context}");

    // The ESP records: accepted by tshark (a malformed UAT record fails `-o`), and every ESP
    // packet decrypts to ICMP with a good ICV ...
    let mut check = Command::new("tshark");
    check.arg("-r").arg(&pcap).args(["-o", "esp.enable_encryption_decode:TRUE"]);
    check.args(["-o", "esp.enable_authentication_check:TRUE"]);
    for record in &esp {
        check.args(["-o", record.as_str()]);
    }
    check.args(["-Y", "esp", "-T", "fields", "-E", "separator=;"]);
    check.args([
        "-e",
        "frame.number",
        "-e",
        "ip.src",
        "-e",
        "esp.spi",
        "-e",
        "icmp.type",
        "-e",
        "esp.icv_good",
    ]);
    let checked = check.output().expect("tshark runs");
    let complaints = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert!(checked.status.success() && !complaints.contains("nvalid"), "tshark refused: {complaints}");
    let esp_table = String::from_utf8_lossy(&checked.stdout).into_owned();
    let esp_rows: Vec<Vec<&str>> = esp_table.lines().map(|l| l.split(';').collect()).collect();
    let context = format!("ESP rows (frame/src/SPI/ICMP type/ICV good):\n{esp_table}\nkey log: {records:#?}");
    for (src, icmp) in [("192.0.2.1", "8"), ("192.0.2.2", "0")] {
        // ip.src lists the outer header first, then the decrypted inner one.
        let outer = |r: &&Vec<&str>| r.get(1).and_then(|s| s.split(',').next()) == Some(src);
        let sent: Vec<_> = esp_rows.iter().filter(outer).collect();
        assert!(sent.len() >= replies, "ESP from {src}\n{context}");
        for row in sent {
            assert!(
                row.get(3).is_some_and(|t| t.split(',').next() == Some(icmp)),
                "not decrypted\n{context}"
            );
            assert!(row.get(4).is_some_and(|g| g.contains('1') || g.contains("True")), "ICV\n{context}");
        }
    }
    // ... in the right direction (our outbound SPI is the one strongSwan receives on, as its
    // log says: `established with SPIs <in>_i <out>_o`) ...
    let charon_log = logs("fwb/charon.log");
    let outbound = esp_fields(esp.iter().find(|r| esp_fields(r)[1] == "192.0.2.1").expect("outbound record"));
    let inbound = esp_fields(esp.iter().find(|r| esp_fields(r)[1] == "192.0.2.2").expect("inbound record"));
    assert_eq!((outbound[0].as_str(), outbound[2].as_str()), ("IPv4", "192.0.2.2"));
    assert_eq!(
        (outbound[4].as_str(), outbound[6].as_str()),
        ("AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]")
    );
    let spis = format!("{}_i {}_o", &outbound[3][2..], &inbound[3][2..]);
    assert!(charon_log.contains(&format!("established with SPIs {spis}")), "SPIs {spis}\n{charon_log}");
    // ... and with strongSwan's keys: it is the responder, so its "initiator" keys protect
    // what we send and its "responder" keys what we receive.
    for (record, side) in [(&outbound, "initiator"), (&inbound, "responder")] {
        for (field, what) in [(5, "encryption"), (7, "integrity")] {
            let theirs = charon_key(&charon_log, &format!("{what} {side} key"));
            assert_eq!(
                theirs.as_deref(),
                Some(record[field].trim_start_matches("0x")),
                "{what} {side} key differs from strongSwan's"
            );
        }
    }
    drop(cleanup);
}
