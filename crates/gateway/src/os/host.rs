//! The host's network interfaces, as iproute2 lists them.

use std::process::Command;

use super::OsError;

/// The output of `ip -j addr show`: this host's interfaces and addresses as JSON (in the
/// daemon's network namespace). iproute2, which the daemon already uses for routes.
pub fn ip_addresses_json() -> Result<String, OsError> {
    let out = Command::new("ip")
        .args(["-j", "addr", "show"])
        .output()
        .map_err(|source| OsError::Spawn { command: "ip -j addr show".to_owned(), source })?;
    if !out.status.success() {
        return Err(OsError::ListAddresses {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
