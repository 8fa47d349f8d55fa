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

/// Replaces the file at `path` with `text` atomically, as the console's `save` does: a
/// temporary file in the same directory (mode 0600 from the start, given the old file's owner
/// and group when they differ from the daemon's), written and flushed to disk, the old file
/// kept as `FILE.bak`, then renamed over it, and the directory flushed. A reader sees the old
/// file or the new one, never a part; a crash leaves at worst a stray temporary file. A
/// symbolic link is followed: the file it names is replaced.
pub fn replace(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let old = std::fs::metadata(&target).ok();
    let temporary = dir.join(format!(".{name}.save-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written = (|| {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary)?;
        let made = file.metadata()?;
        if let Some(old) = &old {
            if (old.uid(), old.gid()) != (made.uid(), made.gid()) {
                std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()))?;
            }
        }
        file.write_all(text)?;
        file.sync_all()?;
        if old.is_some() {
            let backup = dir.join(format!("{name}.bak"));
            let staged = dir.join(format!(".{name}.bak-{}", std::process::id()));
            let _ = std::fs::remove_file(&staged);
            std::fs::hard_link(&target, &staged).or_else(|_| std::fs::copy(&target, &staged).map(drop))?;
            std::fs::rename(&staged, &backup)?;
        }
        std::fs::rename(&temporary, &target)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
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

    /// `replace` writes the new text with mode 0600 whatever the old mode, keeps the old text
    /// as `.bak`, follows a symbolic link, and leaves no temporary file.
    #[test]
    fn replace_is_atomic_keeps_a_backup_and_mode_0600() {
        let dir = scratch("replace");
        let file = dir.join("k.cfg");
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link.cfg");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        replace(&link, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "new\n");
        assert_eq!(std::fs::read_to_string(dir.join("k.cfg.bak")).unwrap(), "old\n");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
        replace(&file, b"newer\n").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("k.cfg.bak")).unwrap(), "new\n");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        names.sort();
        assert_eq!(names, ["k.cfg", "k.cfg.bak", "link.cfg"]);
        let fresh = dir.join("fresh.cfg");
        replace(&fresh, b"x\n").unwrap();
        assert!(!dir.join("fresh.cfg.bak").exists(), "nothing to back up");
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
