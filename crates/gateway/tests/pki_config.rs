//! Certificate authentication from the VRP configuration: `certificate …` files in the
//! `ike peer` become the engine's certificate material, and a file that is missing, unreadable
//! or wrong is an error at the line that named it (`keysteward check` and `run` alike).

#[path = "../../crypto/tests/support/test_pki.rs"]
mod test_pki;

use std::path::{Path, PathBuf};
use std::process::Command;

use keysteward::engine_config::engine_config_with;
use keysteward::pki;
use test_pki::{Ca, KeyKind, LeafSpec};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keysteward-pki-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// FW_A's configuration with `authentication-method METHOD` and certificate files.
fn config(method: &str) -> String {
    format!(
        "ike proposal 10
 authentication-method {method}
ike peer b
 ike-proposal 10
 undo version 2
 remote-address 192.0.2.2
 certificate local-filename fw_a.crt
 certificate local-key-filename fw_a.key
 certificate ca-filename ca.pem
 certificate crl-filename ca.crl
 local-id-type dn
 remote-id-type dn
 remote-id \"C=CN, O=keysteward test, CN=fw-b\"
acl number 3001
 rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255
ipsec proposal a
ipsec policy policy1 1 isakmp
 security acl 3001
 proposal a
 ike-peer b
interface GigabitEthernet0/0/2
 ip address 192.0.2.1 255.255.255.0
 ipsec policy policy1
"
    )
}

fn write_files(dir: &Path, key: KeyKind) {
    let ca = Ca::new("keysteward", KeyKind::P256);
    let leaf = ca.issue(&LeafSpec::new("fw-a", key));
    std::fs::write(dir.join("fw_a.crt"), &leaf.pem).unwrap();
    std::fs::write(dir.join("fw_a.key"), &leaf.key_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("ca.crl"), ca.crl(&[99])).unwrap();
}

fn load(dir: &Path, text: &str) -> Result<(ike::Config, pki::Certificates), Vec<String>> {
    let file = dir.join("fw_a.cfg");
    std::fs::write(&file, text).unwrap();
    let checked = vrp::load_file(&file, None).unwrap();
    let errors: Vec<String> =
        checked.diagnostics.iter().filter(|d| d.is_error()).map(ToString::to_string).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let config = checked.config.unwrap();
    let certificates = pki::load(&file, &config, &checked.source_map)
        .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let engine = engine_config_with(&config, &certificates).map_err(|e| vec![e.to_string()])?;
    Ok((engine, certificates))
}

#[test]
fn test_rsa_and_ecdsa_peers_get_their_certificates_methods_and_dn_identities() {
    for (method, key, expected) in [
        ("rsa-signature", KeyKind::Rsa2048, ike::AuthMethod::RsaSignature),
        ("rsa-sig", KeyKind::Rsa3072, ike::AuthMethod::RsaSignature),
        ("ecdsa-signature", KeyKind::P256, ike::AuthMethod::EcdsaP256),
        ("ecdsa-signature", KeyKind::P384, ike::AuthMethod::EcdsaP384),
    ] {
        let dir = scratch(&format!("ok-{method}-{key:?}"));
        write_files(&dir, key);
        let (engine, _) = load(&dir, &config(method)).unwrap_or_else(|e| panic!("{method}: {e:?}"));
        let peer = &engine.peers[0];
        assert_eq!(peer.proposals[0].auth_method, expected);
        let auth = peer.certificate.as_ref().expect("certificate material");
        assert_eq!(auth.certificate.summary().subject, "C=CN, O=keysteward test, CN=fw-a");
        assert_eq!(auth.send_certificate, ike::SendCertificate::Always);
        assert_eq!(peer.local_id, Some(ike::IdentityConfig::Dn("C=CN, O=keysteward test, CN=fw-a".into())));
        assert_eq!(peer.remote_id, Some(ike::IdentityConfig::Dn("C=CN, O=keysteward test, CN=fw-b".into())));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn test_file_errors_point_at_the_line_that_names_the_file() {
    let dir = scratch("errors");
    write_files(&dir, KeyKind::Rsa2048);
    let path = dir.join("fw_a.cfg").display().to_string();
    // Missing key file.
    std::fs::remove_file(dir.join("fw_a.key")).unwrap();
    let errors = load(&dir, &config("rsa-signature")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "{path}:8:2: error: ike peer b: certificate local-key-filename fw_a.key: cannot read"
        )),
        "{}",
        errors[0]
    );
    // A key file that is not a key.
    std::fs::write(dir.join("fw_a.key"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        .unwrap();
    let errors = load(&dir, &config("rsa-signature")).unwrap_err();
    assert!(errors[0].starts_with(&format!("{path}:8:2: error:")), "{errors:?}");
    // A key that is not the certificate's.
    let other = Ca::new("other", KeyKind::P256).issue(&LeafSpec::new("x", KeyKind::Rsa2048));
    std::fs::write(dir.join("fw_a.key"), &other.key_pem).unwrap();
    let errors = load(&dir, &config("rsa-signature")).unwrap_err();
    assert!(
        errors[0].starts_with(&format!("{path}:7:2: error:")) && errors[0].contains("does not belong"),
        "{errors:?}"
    );
    // A CA file that is garbage, and a CRL that is garbage: both reported.
    write_files(&dir, KeyKind::Rsa2048);
    std::fs::write(dir.join("ca.pem"), "not a certificate").unwrap();
    std::fs::write(dir.join("ca.crl"), [0x30, 0x03, 0x02, 0x01, 0x00]).unwrap();
    let errors = load(&dir, &config("rsa-signature")).unwrap_err();
    assert!(errors.iter().any(|e| e.starts_with(&format!("{path}:9:2: error:"))), "{errors:?}");
    // An RSA key under ecdsa-signature is refused with both named.
    write_files(&dir, KeyKind::Rsa2048);
    let errors = load(&dir, &config("ecdsa-signature")).unwrap_err();
    assert!(
        errors[0].contains("authentication-method ecdsa-signature cannot be used with the rsa-2048 key"),
        "{errors:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_keysteward_check_reports_certificate_files() {
    let dir = scratch("check");
    write_files(&dir, KeyKind::P256);
    let file = dir.join("fw_a.cfg");
    std::fs::write(&file, config("ecdsa-signature")).unwrap();
    let run =
        |file: &Path| Command::new(env!("CARGO_BIN_EXE_keysteward")).arg("check").arg(file).output().unwrap();
    let ok = run(&file);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    std::fs::remove_file(dir.join("ca.pem")).unwrap();
    let failed = run(&file);
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        stdout.contains(":9:2: error: ike peer b: certificate ca-filename ca.pem: cannot read"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CRL past its nextUpdate still loads, with a warning at the line that names it (`check`
/// prints it; `run` and a reload log it); a current CRL draws none.
#[test]
fn test_a_stale_crl_is_a_warning_at_its_line() {
    let dir = scratch("stale-crl");
    write_files(&dir, KeyKind::P256);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ca = Ca::new("keysteward", KeyKind::P256);
    let file = dir.join("fw_a.cfg");
    std::fs::write(&file, config("ecdsa-signature")).unwrap();
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_keysteward")).arg("check").arg(&file).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Issued 40 days ago with a next update 30 days after: 10 days past.
    std::fs::write(dir.join("ca.crl"), ca.crl_at(&[], now - 40 * 86_400)).unwrap();
    let stale = check();
    assert!(
        stale.contains(
            ":10:2: warning: ike peer b: crl-filename ca.crl: the CRL's next update was 10 day(s) ago; \
             revocations since are not known: install a current CRL and reload"
        ),
        "{stale}"
    );
    std::fs::write(dir.join("ca.crl"), ca.crl_at(&[], now)).unwrap();
    let current = check();
    assert!(!current.contains("crl-filename ca.crl"), "{current}");
    let _ = std::fs::remove_dir_all(&dir);
}
