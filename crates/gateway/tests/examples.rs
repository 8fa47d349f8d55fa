//! Every configuration under `examples/` passes `keysteward check --offline` (warnings allowed,
//! no error), and `examples/README.md` describes each one. The certificate example is checked
//! with the test PKI its `make-pki` script makes, in a copy of its directory.

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Every `.cfg` file under `dir`, recursively, sorted.
fn configurations(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(configurations(&path));
        } else if path.extension().is_some_and(|e| e == "cfg") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `keysteward check --offline FILE`: exit code and standard output.
fn check(file: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keysteward"))
        .args(["check".as_ref(), file.as_os_str(), "--offline".as_ref()])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where `file` can be checked: a directory with a `make-pki` script is copied to a fresh
/// directory under `scratch` and the script run there, so the certificate files exist.
fn checkable(file: &Path, scratch: &Path) -> PathBuf {
    let dir = file.parent().unwrap();
    let script = dir.join("make-pki");
    if !script.exists() {
        return file.to_path_buf();
    }
    let copy = scratch.join(dir.file_name().unwrap());
    if !copy.exists() {
        std::fs::create_dir_all(&copy).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "cfg") {
                std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
            }
        }
        let out = Command::new(&script).arg(&copy).output().unwrap();
        assert!(out.status.success(), "{}: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    copy.join(file.file_name().unwrap())
}

#[test]
fn every_example_passes_check() {
    let all = configurations(&examples());
    assert!(all.len() >= 12, "the examples are found: {all:?}");
    let scratch = std::env::temp_dir().join(format!("keysteward-examples-{}", std::process::id()));
    let mut failed = Vec::new();
    for file in &all {
        let (code, stdout) = check(&checkable(file, &scratch));
        if code != 0 || stdout.contains(": error: ") {
            failed.push(format!("{} (exit {code}):\n{stdout}", file.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// Without its PKI the certificate example fails, naming the files: the check above is not
/// passing by accident.
#[test]
fn the_certificate_example_needs_its_pki() {
    let alone = std::env::temp_dir().join(format!("keysteward-examples-alone-{}", std::process::id()));
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(examples().join("certificates/fw_a.cfg"), alone.join("fw_a.cfg")).unwrap();
    let (code, stdout) = check(&alone.join("fw_a.cfg"));
    let _ = std::fs::remove_dir_all(&alone);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("certificate local-filename fw-a.crt: cannot read"), "{stdout}");
}

#[test]
fn the_examples_readme_describes_every_configuration() {
    let readme = std::fs::read_to_string(examples().join("README.md")).unwrap();
    for file in configurations(&examples()) {
        let name = file.strip_prefix(examples()).unwrap().display().to_string();
        assert!(readme.contains(&format!("`{name}`")), "examples/README.md does not describe {name}");
    }
}
