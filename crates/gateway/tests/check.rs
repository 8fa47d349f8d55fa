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
    let out = run(&["check".as_ref(), path.as_os_str()]);
    (out.status.code().expect("exit code"), String::from_utf8(out.stdout).expect("utf-8"))
}

#[test]
fn examples_pass_with_warnings() {
    for name in ["examples/fw_a.cfg", "examples/fw_b.cfg"] {
        let path = repo(name);
        let (code, stdout) = check(&path);
        assert_eq!(code, 0, "{stdout}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        let p = path.display().to_string();
        assert!(lines[0].starts_with(&format!("{p}:12:2: warning: ")), "{stdout}");
        assert!(
            lines[1].starts_with(&format!("{p}:18:2: warning: ")) && lines[1].contains("md5"),
            "{stdout}"
        );
        assert!(
            lines[2].starts_with(&format!("{p}:19:2: warning: ")) && lines[2].contains("des"),
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
