//! The command line's side of the control socket: one request, one answer ([`call`]); or a
//! display read page by page ([`pages`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{page, Page, Request, Response, MAX_LINE};

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
    /// The daemon answered with an error (its message, as the operator reads it).
    #[error("{0}")]
    Refused(String),
    /// The display could not be written (standard output closed).
    #[error("writing the display: {0}")]
    Output(#[source] std::io::Error),
}

/// A display read page by page: each item is one page, asked for when the iterator is
/// advanced (so a pager that stops early asks for no more), each on its own connection so
/// that the daemon keeps nothing between pages. Ends after the page without a next cursor,
/// or after the first error.
pub struct Pages {
    path: PathBuf,
    display: Request,
    rows: u32,
    after: Option<String>,
    done: bool,
}

/// The pages of `display` (a `display …` request) from the daemon at `path`, `rows` rows a
/// page (the daemon gives at most [`crate::MAX_PAGE_ROWS`]).
pub fn pages(path: &Path, display: &Request, rows: u32) -> Pages {
    Pages { path: path.to_path_buf(), display: display.clone(), rows, after: None, done: false }
}

impl Iterator for Pages {
    type Item = Result<Page, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let first = self.after.is_none();
        let request = page::request(&self.display, self.after.take(), self.rows);
        let page = call(&self.path, &request).and_then(|response| match response {
            Response::Ok { ref json, .. } if json.get("page").is_some() => {
                Page::from_response(response).map_err(ClientError::Refused)
            }
            // A daemon older than pages (still running after an upgrade of the command
            // line) does not know the request: the display comes whole, as one page.
            Response::Error(e) if !(first && e.starts_with("unreadable request")) => {
                Err(ClientError::Refused(e))
            }
            _ if first => match call(&self.path, &self.display)? {
                Response::Ok { text, json } => Ok(Page { text, json, next: None }),
                Response::Error(e) => Err(ClientError::Refused(e)),
            },
            _ => Err(ClientError::Refused("the daemon's answer is not a page".to_owned())),
        });
        match &page {
            Ok(p) if p.next.is_some() => self.after = p.next.clone(),
            _ => self.done = true,
        }
        Some(page)
    }
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
