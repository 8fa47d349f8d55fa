//! The daemon's side of the control socket: it accepts connections, reads one request line
//! from each and hands the request to the daemon loop, which answers through a oneshot
//! channel; the answer goes back as one line.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use rustix::fs::Mode;
use tracing::warn;

use super::{Request, Response, MAX_LINE};
use crate::service::privilege::group_id;
use crate::service::SERVICE_GROUP;

/// A request and where its answer goes.
pub type Pending = (Request, oneshot::Sender<Response>);

/// Why the control socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The socket's directory could not be created.
    #[error("cannot create {}: {source}", dir.display())]
    CreateDirectory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A live daemon already answers on the socket.
    #[error("another keysteward daemon answers on {}", path.display())]
    InUse {
        /// The control socket.
        path: PathBuf,
    },
    /// The socket could not be bound.
    #[error("cannot bind {}: {source}", path.display())]
    Bind {
        /// The control socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The socket's mode could not be set to root-only.
    #[error("cannot restrict {}: {source}", path.display())]
    Restrict {
        /// The control socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Binds the control socket, replacing a stale one: mode 0660 from the start (the umask is
/// set around the bind, so there is no moment with a wider mode), then group
/// [`SERVICE_GROUP`] when that group exists; mode 0600 when it does not.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| ServerError::CreateDirectory { dir: dir.to_path_buf(), source })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse { path: path.to_path_buf() });
        }
        let _ = std::fs::remove_file(path);
    }
    let group = group_id(SERVICE_GROUP);
    let mask = if group.is_some() { 0o117 } else { 0o177 };
    // The umask is the process's; nothing else in the daemon creates files meanwhile.
    let previous = rustix::process::umask(Mode::from_raw_mode(mask));
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound.map_err(|source| ServerError::Bind { path: path.to_path_buf(), source })?;
    let restrict = |source| ServerError::Restrict { path: path.to_path_buf(), source };
    // Under the packaged unit the daemon's group is keysteward already (and chown is outside
    // its system-call filter): nothing to change then.
    if let Some(gid) = group.filter(|&gid| gid != rustix::process::getegid().as_raw()) {
        if let Err(e) = std::os::unix::fs::chown(path, None, Some(gid)) {
            // Still 0660, with the daemon's own group (keysteward's under the packaged unit).
            warn!("cannot give {} to group {SERVICE_GROUP}: {e}", path.display());
        }
    }
    // Only narrows what the umask made (a umask cannot widen a mode).
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(restrict)?;
    Ok(listener)
}

/// Whether a client of uid `peer` may make `request` of a daemon running as uid `daemon`:
/// anyone who can open the socket may read; changes need root or the daemon's user.
pub fn allowed(request: &Request, peer: u32, daemon: u32) -> bool {
    !request.changes_state() || peer == 0 || peer == daemon
}

/// The answer to a change asked by a client that may not make it.
fn refusal(request: &Request, peer: u32, daemon: u32) -> Response {
    let command = serde_json::to_value(request)
        .ok()
        .and_then(|v| v.get("command").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_default();
    Response::Error(format!(
        "{command} changes the daemon's state: only root and the daemon's user (uid {daemon}) may \
         ask for it, not uid {peer}; members of group {SERVICE_GROUP} may run the displays"
    ))
}

/// Serves the control socket for ever: each connection gets its own task, so a slow client
/// holds up nobody; the daemon loop sees only whole requests.
pub async fn accept(listener: UnixListener, requests: mpsc::Sender<Pending>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let requests = requests.clone();
        // Who is asking: SO_PEERCRED, as the kernel recorded it at connect. Unknown: the
        // strictest answer (no changes).
        let peer = stream.peer_cred().map_or(u32::MAX, |cred| cred.uid());
        let daemon = rustix::process::geteuid().as_raw();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE as u64));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(request) if !allowed(&request, peer, daemon) => refusal(&request, peer, daemon),
                Ok(request) => {
                    let (tx, rx) = oneshot::channel();
                    if requests.send((request, tx)).await.is_err() {
                        return;
                    }
                    rx.await.unwrap_or_else(|_| Response::Error("the daemon is stopping".into()))
                }
                Err(e) => Response::Error(format!("unreadable request: {e}")),
            };
            if let Ok(mut text) = serde_json::to_string(&response) {
                text.push('\n');
                let _ = write.write_all(text.as_bytes()).await;
            }
        });
    }
}
