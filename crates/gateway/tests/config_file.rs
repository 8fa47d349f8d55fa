//! The configuration file as a file: a pre-shared key in a file that group or others can
//! read is refused by `run` (nothing started) and a warning of `check`, both saying the
//! `chmod` to run, as ssh does for keys; a file past the size bound is refused by both.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A scratch directory, removed on every way out of the test.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("keysteward-config-file-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn keysteward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysteward")).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The reference FW_A (it holds `pre-shared-key tiandihui2`) at `mode`.
fn fw_a(dir: &std::path::Path, mode: u32) -> String {
    let path = dir.join("fw_a.cfg");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/fw_a.cfg");
    std::fs::copy(example, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.display().to_string()
}

#[test]
fn a_readable_file_with_a_key_is_refused_by_run_and_a_warning_of_check() {
    let scratch = scratch("mode");
    let dir = &scratch.0;
    let path = fw_a(dir, 0o644);
    let advice = format!(
        "the file holds a pre-shared key and its mode 0644 lets group or others read or write it; run: chmod 600 {path}"
    );

    let checked = keysteward(&["check", "--offline", &path]);
    let said = text(&checked);
    assert!(checked.status.success(), "check warns, it does not fail: {said}");
    assert!(said.contains(&format!("{path}: warning: {advice}")), "{said}");

    let control = dir.join("run").join("control.sock");
    let ran = keysteward(&[
        "run",
        "--config",
        &path,
        "--control",
        control.to_str().unwrap(),
        "--interface-map",
        "GigabitEthernet0/0/2=lo",
    ]);
    let said = text(&ran);
    assert_eq!(ran.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("{path}: error: {advice}")), "{said}");
    assert!(said.contains("nothing started"), "{said}");
    assert!(!control.exists(), "the control socket of a daemon that did not start");

    // Mode 0600 (or 0400): nothing to say.
    for mode in [0o600, 0o400] {
        let path = fw_a(dir, mode);
        let said = text(&keysteward(&["check", "--offline", &path]));
        assert!(!said.contains("chmod"), "{mode:o}: {said}");
    }
}

#[test]
fn a_file_past_the_size_bound_is_refused() {
    let scratch = scratch("size");
    let dir = &scratch.0;
    let path = dir.join("huge.cfg");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(keysteward::service::config_file::MAX_CONFIG_BYTES + 1).unwrap();
    let path = path.display().to_string();
    let checked = keysteward(&["check", "--offline", &path]);
    let said = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("{path}: error: the file is larger than 16777216 bytes")), "{said}");
    let ran = keysteward(&["run", "--config", &path, "--control", dir.join("c.sock").to_str().unwrap()]);
    let said = text(&ran);
    assert_eq!(ran.status.code(), Some(1), "{said}");
    assert!(said.contains("larger than 16777216 bytes"), "{said}");
}
