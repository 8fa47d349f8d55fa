//! The daemon's side of the control socket: it accepts connections, reads one request line
//! from each and hands the request to the daemon loop, which answers through a oneshot
//! channel; the answer goes back as one line.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use tracing::warn;

use crate::{Request, Response, MAX_LINE};
use service::control_socket;

/// A request, the uid of the client that made it (`SO_PEERCRED`; `None` when the daemon
/// asks itself, as a metrics scrape does), and where its answer goes.
pub type Pending = (Request, Option<u32>, oneshot::Sender<Response>);

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
}

/// Binds the control socket, replacing a stale one: mode 0660 from the start (the umask is
/// set around the bind, so there is no moment with a wider mode), then group
/// `keysteward` when that group exists; mode 0600 when it does not
/// ([`control_socket::bind`]).
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
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
    let (listener, warning) = control_socket::bind(path)
        .and_then(|(listener, warning)| listener.set_nonblocking(true).map(|()| (listener, warning)))
        .and_then(|(listener, warning)| Ok((UnixListener::from_std(listener)?, warning)))
        .map_err(|source| ServerError::Bind { path: path.to_path_buf(), source })?;
    if let Some(warning) = warning {
        warn!("{warning}");
    }
    Ok(listener)
}

/// Whether a client of uid `peer` may make `request` of a daemon running as uid `daemon`:
/// anyone who can open the socket may read; changes need root or the daemon's user.
pub fn allowed(request: &Request, peer: u32, daemon: u32) -> bool {
    !request.changes_state() || control_socket::may_change(peer, daemon)
}

/// The answer to a change asked by a client that may not make it.
fn refusal(request: &Request, peer: u32, daemon: u32) -> Response {
    let value = serde_json::to_value(request).unwrap_or_default();
    Response::Error(control_socket::refusal(value["command"].as_str().unwrap_or("?"), peer, daemon))
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
            // A `configure` line may carry a pre-shared key: the buffer is wiped when dropped.
            let mut line = zeroize::Zeroizing::new(String::new());
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(&line) {
                Ok(request) if !allowed(&request, peer, daemon) => refusal(&request, peer, daemon),
                Ok(request) => {
                    let (tx, rx) = oneshot::channel();
                    if requests.send((request, Some(peer), tx)).await.is_err() {
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
