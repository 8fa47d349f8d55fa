//! The configuration file as a file: its size is bounded ([`MAX_CONFIG_BYTES`]), and one
//! that holds a secret (a `pre-shared-key`) must not be readable or writable by group or
//! others, as ssh insists for its keys: `run` (and a reload) refuses it, `check` warns, both
//! with the `chmod` to run.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The largest configuration file read: far beyond any gateway's (the article's are 2 KiB),
/// small enough that a wrong path (a disk image, /dev/zero) does not fill memory.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Why a configuration file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("the file is larger than {limit} bytes ({size} bytes or more); is it the configuration?")]
    TooLarge {
        /// How much was seen.
        size: u64,
        /// [`MAX_CONFIG_BYTES`].
        limit: u64,
    },
    /// The file could not be opened or read, or is not UTF-8 text.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the configuration file, at most [`MAX_CONFIG_BYTES`]; also returns its mode.
pub fn read(path: &Path) -> Result<(String, u32), ReadError> {
    let file = std::fs::File::open(path)?;
    let mode = file.metadata()?.permissions().mode();
    let mut text = String::new();
    // One byte more than the limit tells a file at the limit from a larger one, whatever
    // the metadata says (a pipe or /proc file has no size).
    let read = file.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text)?;
    if read as u64 > MAX_CONFIG_BYTES {
        return Err(ReadError::TooLarge { size: read as u64, limit: MAX_CONFIG_BYTES });
    }
    Ok((text, mode))
}

/// Writes `text` to `path`, created mode 0600 (a file made for a key is never readable by
/// others, not even for a moment); an existing file is truncated and keeps its mode.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}

/// A file that holds a secret and that group or others may read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    /// The file.
    pub path: PathBuf,
    /// Its permission bits.
    pub mode: u32,
}

impl std::fmt::Display for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        write!(
            f,
            "the file holds a pre-shared key and its mode {:04o} lets group or others read or write it; \
             run: chmod 600 {path}",
            self.mode & 0o7777
        )
    }
}

/// Whether `config` holds a secret that a file of `mode` exposes.
pub fn exposed(path: &Path, mode: u32, config: &vrp::Config) -> Option<Exposed> {
    let secret = config.ike_peers.values().any(|peer| peer.pre_shared_key.is_some());
    (secret && mode & 0o077 != 0).then(|| Exposed { path: path.to_path_buf(), mode })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ks-config-file-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A file past the bound is refused with the typed error, not read into memory whole;
    /// one at the bound is read.
    #[test]
    fn a_file_over_the_bound_is_refused() {
        let dir = scratch("size");
        let big = dir.join("big.cfg");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        match read(&big) {
            Err(ReadError::TooLarge { limit, .. }) => assert_eq!(limit, MAX_CONFIG_BYTES),
            other => panic!("{other:?}"),
        }
        f.set_len(MAX_CONFIG_BYTES).unwrap();
        assert_eq!(read(&big).unwrap().0.len() as u64, MAX_CONFIG_BYTES);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The message names the file, its mode and the chmod to run.
    #[test]
    fn an_exposed_file_says_the_chmod_to_run() {
        let text = "ike peer b\n pre-shared-key simple Secret123\n remote-address 192.0.2.2\n";
        let config = vrp::parse("t.cfg", text).unwrap().config;
        let path = Path::new("/etc/keysteward/keysteward.cfg");
        assert_eq!(exposed(path, 0o100600, &config), None);
        let e = exposed(path, 0o100644, &config).unwrap();
        assert_eq!(
            e.to_string(),
            "the file holds a pre-shared key and its mode 0644 lets group or others read or write \
             it; run: chmod 600 /etc/keysteward/keysteward.cfg"
        );
        assert!(exposed(path, 0o100620, &config).is_some(), "group-writable too");
        let no_secret = vrp::parse("t.cfg", "ike peer b\n remote-address 192.0.2.2\n").unwrap().config;
        assert_eq!(exposed(path, 0o100644, &no_secret), None, "nothing secret to expose");
    }
}
