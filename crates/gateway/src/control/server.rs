//! The daemon's side of the control socket: it accepts connections, reads one request line
//! from each and hands the request to the daemon loop, which answers through a oneshot
//! channel; the answer goes back as one line.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::{Request, Response, MAX_LINE};

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

/// Binds the control socket, replacing a stale one, readable by root only.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|source| ServerError::CreateDirectory { dir: dir.to_path_buf(), source })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse { path: path.to_path_buf() });
        }
        let _ = std::fs::remove_file(path);
    }
    let listener =
        UnixListener::bind(path).map_err(|source| ServerError::Bind { path: path.to_path_buf(), source })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|source| ServerError::Restrict { path: path.to_path_buf(), source })?;
    Ok(listener)
}

/// Serves the control socket for ever: each connection gets its own task, so a slow client
/// holds up nobody; the daemon loop sees only whole requests.
pub async fn accept(listener: UnixListener, requests: mpsc::Sender<Pending>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let requests = requests.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_LINE as u64));
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let response = match serde_json::from_str::<Request>(&line) {
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
