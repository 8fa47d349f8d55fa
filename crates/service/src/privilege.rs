//! `keysteward run --user NAME`: started as root, the daemon becomes NAME and keeps only the
//! three capabilities it needs ([`KEPT`]): `CAP_NET_ADMIN` (the TUN device, routes, addresses),
//! `CAP_NET_RAW` (the raw ESP and AH sockets) and `CAP_NET_BIND_SERVICE` (UDP 500 and 4500).
//! That is what systemd gives the packaged service (`User=keysteward`,
//! `AmbientCapabilities=`), so the daemon runs the same way under both.
//!
//! The drop happens first, while the process has one thread (capabilities are per thread;
//! libc's setuid applies to every thread, but no other exists yet): `PR_SET_KEEPCAPS`, every
//! other capability out of the bounding set, the user's groups (`initgroups`), its group,
//! its user, then the three capabilities as effective, permitted, inheritable and ambient
//! (ambient so that a helper the daemon runs has them too), and `PR_SET_NO_NEW_PRIVS`.
//! Nothing needs root before that but the control socket's directory, which is made (and
//! given to the user) first when it does not exist.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// The capabilities the daemon keeps: the TUN device, routes and addresses; the raw ESP and
/// AH sockets; UDP 500 and 4500.
pub const KEPT: [CapabilitySet; 3] =
    [CapabilitySet::NET_ADMIN, CapabilitySet::NET_RAW, CapabilitySet::NET_BIND_SERVICE];

/// [`KEPT`] as one set: bits 10, 12 and 13, `CapEff: 0000000000003400` in `/proc/PID/status`.
pub fn kept_set() -> CapabilitySet {
    KEPT.into_iter().fold(CapabilitySet::empty(), |all, cap| all | cap)
}

/// Why the daemon could not become `--user NAME`.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// No such user in the user database.
    #[error("--user {0}: no such user")]
    NoSuchUser(String),
    /// The user database could not be read.
    #[error("--user {user}: cannot look the user up: {source}")]
    Lookup {
        /// The name.
        user: String,
        /// Why.
        source: nix::Error,
    },
    /// `--user` needs root to switch.
    #[error("--user {0}: keysteward must be started as root to switch users (it runs as uid {1})")]
    NotRoot(String, u32),
    /// A step of the switch failed.
    #[error("--user {user}: {step} failed: {reason}")]
    Step {
        /// The name.
        user: String,
        /// Which call.
        step: &'static str,
        /// The error.
        reason: String,
    },
    /// The control socket's directory could not be made for the user.
    #[error("--user {user}: cannot prepare {}: {source}", dir.display())]
    ControlDirectory {
        /// The name.
        user: String,
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The user the daemon switches to.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    uid: Uid,
    gid: Gid,
}

impl Target {
    /// Looks `name` up in the user database.
    pub fn lookup(name: &str) -> Result<Self, PrivilegeError> {
        let user = User::from_name(name)
            .map_err(|source| PrivilegeError::Lookup { user: name.to_owned(), source })?
            .ok_or_else(|| PrivilegeError::NoSuchUser(name.to_owned()))?;
        Ok(Self { name: name.to_owned(), uid: user.uid, gid: user.gid })
    }
}

/// Becomes `user` keeping only [`KEPT`]; `control` is the control socket, whose directory
/// is made for the user when it does not exist yet (or is `default_dir`, the default's,
/// `/run/keysteward`, which a run as root may have made). Must run before any other thread
/// exists.
pub fn drop_to(user: &str, control: &Path, default_dir: &Path) -> Result<(), PrivilegeError> {
    let target = Target::lookup(user)?;
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 {
        return Err(PrivilegeError::NotRoot(user.to_owned(), euid));
    }
    prepare_control_directory(&target, control, default_dir)?;
    switch(&target)
}

fn step<'a, E: std::fmt::Display>(
    target: &'a Target,
    step: &'static str,
) -> impl FnOnce(E) -> PrivilegeError + 'a {
    move |e| PrivilegeError::Step { user: target.name.clone(), step, reason: e.to_string() }
}

/// The switch itself, in the order that keeps the capabilities across setuid.
fn switch(target: &Target) -> Result<(), PrivilegeError> {
    rustix::thread::set_keep_capabilities(true).map_err(step(target, "prctl(PR_SET_KEEPCAPS)"))?;
    let kept = kept_set();
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        if kept.contains(cap) {
            continue;
        }
        // Bits past the kernel's last capability are not in the set (EINVAL): nothing to do.
        if rustix::thread::capability_is_in_bounding_set(cap).unwrap_or(false) {
            rustix::thread::remove_capability_from_bounding_set(cap)
                .map_err(step(target, "prctl(PR_CAPBSET_DROP)"))?;
        }
    }
    let name = CString::new(target.name.as_str()).map_err(step(target, "the user name"))?;
    nix::unistd::initgroups(&name, target.gid).map_err(step(target, "initgroups"))?;
    nix::unistd::setgid(target.gid).map_err(step(target, "setgid"))?;
    nix::unistd::setuid(target.uid).map_err(step(target, "setuid"))?;
    let sets = CapabilitySets { effective: kept, permitted: kept, inheritable: kept };
    rustix::thread::set_capabilities(None, sets).map_err(step(target, "capset"))?;
    for cap in KEPT {
        rustix::thread::configure_capability_in_ambient_set(cap, true)
            .map_err(step(target, "prctl(PR_CAP_AMBIENT_RAISE)"))?;
    }
    rustix::thread::set_keep_capabilities(false).map_err(step(target, "prctl(PR_SET_KEEPCAPS)"))?;
    rustix::thread::set_no_new_privs(true).map_err(step(target, "prctl(PR_SET_NO_NEW_PRIVS)"))?;
    // Root can no longer be regained: the saved set-user-ID is the user's too.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::Step {
            user: target.name.clone(),
            step: "setuid",
            reason: "root could be regained".into(),
        });
    }
    Ok(())
}

/// Makes the control socket's directory, owned by the user, when it does not exist, and
/// hands the default `/run/keysteward` to the user (a run as root may have made it).
fn prepare_control_directory(
    target: &Target,
    control: &Path,
    default_dir: &Path,
) -> Result<(), PrivilegeError> {
    let Some(dir) = control.parent().filter(|d| !d.as_os_str().is_empty()) else { return Ok(()) };
    let fail = |source| PrivilegeError::ControlDirectory {
        user: target.name.clone(),
        dir: dir.to_path_buf(),
        source,
    };
    let made = if dir.exists() {
        false
    } else {
        std::fs::create_dir_all(dir).map_err(fail)?;
        true
    };
    if made || dir == default_dir {
        std::os::unix::fs::chown(dir, Some(target.uid.as_raw()), Some(target.gid.as_raw())).map_err(fail)?;
    }
    Ok(())
}

/// The group `name`'s id, when the group exists.
pub fn group_id(name: &str) -> Option<u32> {
    Group::from_name(name).ok().flatten().map(|g| g.gid.as_raw())
}
