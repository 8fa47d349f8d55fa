//! The command line's side of the control socket: one request, one answer.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Request, Response, MAX_LINE};

/// Why the daemon could not be asked or its answer not read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers on the control socket (the daemon is not running, or runs elsewhere).
    #[error("cannot reach the keysteward daemon at {}: {source}", path.display())]
    Connect {
        /// The control socket.
        path: PathBuf,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// The request could not be written.
    #[error("sending to {}: {source}", path.display())]
    Send {
        /// The control socket.
        path: PathBuf,
        /// Why the write failed.
        source: std::io::Error,
    },
    /// No answer came (the daemon closed the connection, or took over 10 s).
    #[error("reading from {}: {source}", path.display())]
    Receive {
        /// The control socket.
        path: PathBuf,
        /// Why the read failed.
        source: std::io::Error,
    },
    /// The answer is not a response of this protocol (another program on the socket, or a
    /// daemon of another version).
    #[error("unreadable answer from the daemon: {0}")]
    Unreadable(#[source] serde_json::Error),
}

/// Sends `request` to the daemon at `path` and returns its answer.
pub fn call(path: &Path, request: &Request) -> Result<Response, ClientError> {
    let path_buf = || path.to_path_buf();
    let mut stream =
        UnixStream::connect(path).map_err(|source| ClientError::Connect { path: path_buf(), source })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|source| ClientError::Connect { path: path_buf(), source })?;
    // A request is plain data: serialising it cannot fail.
    let mut line = serde_json::to_string(request).unwrap_or_default();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|source| ClientError::Send { path: path_buf(), source })?;
    let mut reader = BufReader::new(stream.take_limit());
    let mut answer = String::new();
    reader.read_line(&mut answer).map_err(|source| ClientError::Receive { path: path_buf(), source })?;
    serde_json::from_str(&answer).map_err(ClientError::Unreadable)
}

/// A stream limited to [`MAX_LINE`] bytes.
trait TakeLimit {
    fn take_limit(self) -> std::io::Take<UnixStream>;
}

impl TakeLimit for UnixStream {
    fn take_limit(self) -> std::io::Take<UnixStream> {
        std::io::Read::take(self, MAX_LINE as u64)
    }
}
