//! Certificate files of the `ike peer`s: our certificate and private key, the trusted CAs and
//! their CRLs (`certificate local-filename`, `local-key-filename`, `ca-filename`,
//! `crl-filename`), read from the directory of the configuration file and checked before the
//! daemon starts. A file that is missing, unreadable or not what its command says is an error
//! at the line that named it (`fw_a.cfg:12:2: error: …`), so `keysteward check` finds it too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crypto::x509::{
    certificates_from_pem_or_der, crls_from_pem_or_der, signing_key_from_pem_or_der, MAX_PKI_FILE_LEN,
};
use crypto::{LocalCertificate, TrustStore};
use vrp::{Diagnostic, DiagnosticKind, Severity, SourceMap};

/// The certificate authentication material of every peer that configures it, by peer name.
#[derive(Debug, Default, Clone)]
pub struct Certificates {
    by_peer: HashMap<String, Arc<ike::CertificateAuth>>,
    /// When each certificate and CRL file read runs out.
    pub expiries: Vec<statistics::Expiry>,
}

impl Certificates {
    /// The material of peer `name`, if it has certificate files.
    pub fn get(&self, name: &str) -> Option<&Arc<ike::CertificateAuth>> {
        self.by_peer.get(name)
    }
}

struct Loader<'a> {
    config_file: &'a Path,
    directory: PathBuf,
    map: &'a SourceMap,
    errors: Vec<Diagnostic>,
    expiries: Vec<statistics::Expiry>,
}

impl Loader<'_> {
    fn error(&mut self, peer: &str, setting: &str, file: &str, message: String) {
        let location = self.map.certificate_file(peer, setting, file);
        self.errors.push(Diagnostic {
            file: self.config_file.display().to_string(),
            line: location.map_or(0, |l| l.line),
            column: location.map_or(0, |l| l.column),
            severity: Severity::Error,
            kind: DiagnosticKind::InvalidValue,
            message: format!("ike peer {peer}: certificate {setting} {file}: {message}"),
        });
    }

    /// Reads and parses every file of a list setting (`ca-filename`, `crl-filename`) into
    /// one list of DER objects. A file that cannot be read or parsed is reported against its
    /// own command and the others are still read, so one `check` names every bad file.
    fn read_all<E, P>(&mut self, peer: &str, setting: &str, files: &[String], parse: P) -> Vec<Vec<u8>>
    where
        E: std::fmt::Display,
        P: Fn(&[u8]) -> Result<Vec<Vec<u8>>, E>,
    {
        let mut all = Vec::new();
        for file in files {
            if let Some(bytes) = self.read(peer, setting, file) {
                match parse(&bytes) {
                    Ok(ders) => all.extend(ders),
                    Err(e) => self.error(peer, setting, file, e.to_string()),
                }
            }
        }
        all
    }

    /// Reads `file` (relative to the configuration's directory), bounded in size.
    fn read(&mut self, peer: &str, setting: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.directory.join(file);
        let result = std::fs::metadata(&path).and_then(|m| {
            if m.len() > MAX_PKI_FILE_LEN as u64 {
                Err(std::io::Error::other(format!("larger than {MAX_PKI_FILE_LEN} bytes")))
            } else {
                std::fs::read(&path)
            }
        });
        match result {
            Ok(bytes) => {
                if setting != "local-key-filename" {
                    self.expiries.extend(statistics::expiry::read(peer, setting, file, &bytes));
                }
                Some(bytes)
            }
            Err(e) => {
                self.error(peer, setting, file, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }
}

/// Loads every peer's certificate files. `config_file` is the configuration's path (file
/// names are relative to its directory); `map` locates the commands for error messages.
pub fn load(
    config_file: &Path,
    config: &vrp::Config,
    map: &SourceMap,
) -> Result<Certificates, Vec<Diagnostic>> {
    let directory = config_file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut loader = Loader { config_file, directory, map, errors: Vec::new(), expiries: Vec::new() };
    let mut out = Certificates::default();
    for (name, peer) in &config.ike_peers {
        let cert = &peer.certificate;
        let (Some(cert_file), Some(key_file)) = (&cert.local_filename, &cert.local_key_filename) else {
            // Validation already refused a signature peer without both; files alone on a
            // pre-shared-key peer are not used.
            continue;
        };
        // The key file's bytes are secret: wiped when dropped.
        let key = loader.read(name, "local-key-filename", key_file).map(zeroize::Zeroizing::new).and_then(
            |bytes| {
                signing_key_from_pem_or_der(&bytes)
                    .map_err(|e| loader.error(name, "local-key-filename", key_file, e.to_string()))
                    .ok()
            },
        );
        let certificate =
            loader.read(name, "local-filename", cert_file).and_then(
                |bytes| match certificates_from_pem_or_der(&bytes) {
                    Ok(mut ders) if !ders.is_empty() => Some(ders.swap_remove(0)),
                    Ok(_) => None,
                    Err(e) => {
                        loader.error(name, "local-filename", cert_file, e.to_string());
                        None
                    }
                },
            );
        let cas = loader.read_all(name, "ca-filename", &cert.ca_filenames, certificates_from_pem_or_der);
        let crls = loader.read_all(name, "crl-filename", &cert.crl_filenames, crls_from_pem_or_der);
        let (Some(key), Some(certificate)) = (key, certificate) else { continue };
        let local = match LocalCertificate::new(certificate, &key) {
            Ok(local) => local,
            Err(e) => {
                loader.error(name, "local-filename", cert_file, e.to_string());
                continue;
            }
        };
        let first_ca = cert.ca_filenames.first().map_or("", String::as_str);
        let trust = match TrustStore::new(cas, &crls) {
            Ok(trust) => trust,
            Err(e) => {
                loader.error(name, "ca-filename", first_ca, e.to_string());
                continue;
            }
        };
        let send_certificate = match cert.send {
            vrp::model::CertificateSend::Always => ike::SendCertificate::Always,
            vrp::model::CertificateSend::WhenAsked => ike::SendCertificate::WhenAsked,
        };
        out.by_peer.insert(
            name.clone(),
            Arc::new(ike::CertificateAuth { certificate: local, key, trust, send_certificate }),
        );
    }
    if loader.errors.is_empty() {
        out.expiries = loader.expiries;
        Ok(out)
    } else {
        Err(loader.errors)
    }
}
