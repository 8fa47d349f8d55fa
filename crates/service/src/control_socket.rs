//! The control socket as a file, and who may change the daemon through it. It is made with
//! its final mode (the umask is set around the bind, so there is no moment with a wider
//! mode): 0660 group [`SERVICE_GROUP`] when that group exists, else 0600. Anyone who can
//! open it may run the displays; changes (`reset`, `reload`) are for root and the daemon's
//! own user, by the client's credentials as the kernel recorded them (`SO_PEERCRED`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

use rustix::fs::Mode;

use crate::privilege::group_id;
use crate::SERVICE_GROUP;

/// Binds `path` (which must not exist) with its final mode and group. Also returns a warning
/// when the group could not be set (the socket is still 0660, with the daemon's own group).
pub fn bind(path: &Path) -> io::Result<(UnixListener, Option<String>)> {
    let group = group_id(SERVICE_GROUP);
    let (mask, mode) = if group.is_some() { (0o117, 0o660) } else { (0o177, 0o600) };
    // The umask is the process's; nothing else in the daemon creates files meanwhile.
    let previous = rustix::process::umask(Mode::from_raw_mode(mask));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound?;
    let mut warning = None;
    // Under the packaged unit the daemon's group is keysteward already (and chown is outside
    // its system-call filter): nothing to change then.
    if let Some(gid) = group.filter(|&gid| gid != rustix::process::getegid().as_raw()) {
        if let Err(e) = std::os::unix::fs::chown(path, None, Some(gid)) {
            warning = Some(format!("cannot give {} to group {SERVICE_GROUP}: {e}", path.display()));
        }
    }
    // Only narrows what the umask made (a umask cannot widen a mode).
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok((listener, warning))
}

/// Whether a client of uid `peer` may change a daemon running as uid `daemon`.
pub fn may_change(peer: u32, daemon: u32) -> bool {
    peer == 0 || peer == daemon
}

/// The answer to `command`, a change, asked by a client that may not make it.
pub fn refusal(command: &str, peer: u32, daemon: u32) -> String {
    format!(
        "{command} changes the daemon's state: only root and the daemon's user (uid {daemon}) may \
         ask for it, not uid {peer}; members of group {SERVICE_GROUP} may run the displays"
    )
}
