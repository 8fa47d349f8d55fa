//! `keysteward check FILE`: the output lines and the exit code, on the reference examples,
//! on a file with a syntax error, on one with semantic errors, and on a missing file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysteward")).args(args).output().expect("the binary runs")
}

fn check(path: &Path) -> (i32, String) {
    check_with(path, &["--offline"])
}

fn check_with(path: &Path, options: &[&str]) -> (i32, String) {
    let mut args = vec!["check".as_ref(), path.as_os_str()];
    args.extend(options.iter().map(std::ffi::OsStr::new));
    let out = run(&args);
    (out.status.code().expect("exit code"), String::from_utf8(out.stdout).expect("utf-8"))
}

/// Without `--offline`, `check` compares the file with this host: the article's VRP
/// interface name is no Linux interface (Linux names cannot contain `/`) until
/// `--interface-map` maps it, and an address the host lacks is a warning, never an error.
#[test]
fn examples_are_compared_with_this_host() {
    let path = repo("examples/fw_a.cfg");
    let p = path.display().to_string();
    let (code, stdout) = check_with(&path, &[]);
    assert_eq!(code, 0, "warnings only: {stdout}");
    assert!(
        stdout.contains(&format!(
            "{p}:24:1: warning: interface GigabitEthernet0/0/2 is not an interface of this host; \
             map it to one with --interface-map GigabitEthernet0/0/2=LINUXNAME\n"
        )),
        "{stdout}"
    );
    let (code, stdout) = check_with(&path, &["--interface-map", "GigabitEthernet0/0/2=lo"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("is not an interface of this host"), "{stdout}");
    let host = Command::new("ip").args(["-4", "addr", "show"]).output().unwrap();
    if !String::from_utf8_lossy(&host.stdout).contains(" 192.0.2.1/") {
        assert!(
            stdout.contains(&format!(
                "{p}:25:2: warning: interface GigabitEthernet0/0/2 address 192.0.2.1 is not an address of this host\n"
            )),
            "{stdout}"
        );
    }
    let (code, _) = check_with(&path, &["--interface-map", "nonsense"]);
    assert_eq!(code, 1, "a malformed map is refused");
}

#[test]
fn examples_pass_with_warnings() {
    for name in ["examples/fw_a.cfg", "examples/fw_b.cfg"] {
        let path = repo(name);
        let (code, stdout) = check(&path);
        assert_eq!(code, 0, "{stdout}");
        let mut lines: Vec<&str> = stdout.lines().collect();
        let p = path.display().to_string();
        // A checkout's files are usually 0644: the file's mode is warned about first (the
        // example holds a pre-shared key), then come the example's own warnings.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            let advice = format!(
                "{p}: warning: the file holds a pre-shared key and its mode {mode:04o} lets group or \
                 others read or write it; run: chmod 600 {p}"
            );
            assert_eq!(lines.first().copied(), Some(advice.as_str()), "{stdout}");
            lines.remove(0);
        }
        assert_eq!(lines.len(), 4, "{stdout}");
        assert!(lines[0].starts_with(&format!("{p}:12:2: warning: ")), "{stdout}");
        assert!(
            lines[1].starts_with(&format!("{p}:18:2: warning: ")) && lines[1].contains("md5"),
            "{stdout}"
        );
        assert!(
            lines[2].starts_with(&format!("{p}:19:2: warning: ")) && lines[2].contains("des"),
            "{stdout}"
        );
        // The article's static route toward the peer steers traffic into the policy on a USG;
        // here the TUN route does, and `check` says the static route is not installed.
        assert!(
            lines[3].starts_with(&format!("{p}:27:1: warning: ip route-static "))
                && lines[3].contains("has no effect here and is not installed"),
            "{stdout}"
        );
    }
}

#[test]
fn syntax_error_fails_with_location_and_suggestion() {
    let path = repo("crates/gateway/tests/data/broken.cfg");
    let (code, stdout) = check(&path);
    assert_eq!(code, 1);
    let p = path.display().to_string();
    assert_eq!(
        stdout,
        format!(
            "{p}:2:23: error: unknown keyword `aes-265`: expected encryption algorithm (`des`, `3des`, `aes-128`, \
             `aes-192`, `aes-256`); did you mean `aes-256`? (in view `ike proposal 10`)\n"
        )
    );
}

#[test]
fn semantic_errors_fail() {
    let dir = std::env::temp_dir().join(format!("keysteward-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("refs.cfg");
    let text = std::fs::read_to_string(repo("crates/gateway/tests/data/broken.cfg")).unwrap();
    std::fs::write(&path, text.replace("aes-265", "aes-256")).unwrap();
    let (code, stdout) = check(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code, 1);
    let p = path.display().to_string();
    assert_eq!(
        stdout,
        format!(
            "{p}:9:2: error: ipsec policy policy1 1 refers to acl 3001, which is not defined\n\
             {p}:10:2: error: ipsec policy policy1 1 refers to ipsec proposal a, which is not defined\n"
        )
    );
}

/// A key written with blanks and not quoted: the error says where and how to write it, and
/// the key appears nowhere in what `check` prints.
#[test]
fn unquoted_key_with_blanks_is_not_echoed() {
    let dir = std::env::temp_dir().join(format!("keysteward-check-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.cfg");
    let text = std::fs::read_to_string(repo("examples/fw_a.cfg")).unwrap();
    let line =
        text.lines().find(|l| l.trim_start().starts_with("pre-shared-key")).expect("a key line").to_owned();
    std::fs::write(&path, text.replace(&line, " pre-shared-key simple correct horse battery staple"))
        .unwrap();
    let out = run(&["check".as_ref(), path.as_os_str(), "--offline".as_ref()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let number = text.lines().position(|l| l == line).unwrap() + 1;
    let p = path.display().to_string();
    assert!(
        all.contains(&format!(
            "{p}:{number}:32: error: 3 more word(s) after the pre-shared key, not shown as they may be a key: \
             expected end of line; a key with blanks must be quoted: pre-shared-key simple \"...\""
        )),
        "{all}"
    );
    for word in ["horse", "battery", "staple"] {
        assert!(!all.contains(word), "{all}");
    }
}

#[test]
fn missing_file_fails() {
    let out = run(&["check".as_ref(), "/nonexistent/keysteward.cfg".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("/nonexistent/keysteward.cfg: error: cannot read: "), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["frobnicate".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
}
