//! The control socket: a Unix stream socket on which the daemon answers `display` and `reset`
//! requests, one JSON request line in, one JSON response line out. Root-only (mode 0600): it
//! shows peers and SAs and can tear tunnels down.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the daemon listens unless `--control` says otherwise.
pub const DEFAULT_CONTROL_PATH: &str = "/run/keysteward/keysteward.sock";

/// Largest request or response line accepted, so a misbehaving client cannot make the daemon
/// buffer without bound.
pub const MAX_LINE: usize = 1 << 20;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// `display ike sa`.
    DisplayIkeSa,
    /// `display ike error-info`.
    DisplayIkeErrorInfo,
    /// `display ipsec sa brief`.
    DisplayIpsecSaBrief,
    /// `display ipsec statistics`: the data plane's packet counters.
    DisplayIpsecStatistics,
    /// `reset ike sa [conn-id N]`.
    ResetIkeSa {
        /// One IKE SA (its conn-id), or all.
        conn_id: Option<u64>,
    },
    /// `reload`: read the configuration file again, check it whole, apply it keeping the
    /// SAs whose configuration did not change; an invalid file changes nothing and the
    /// answer is an error with every reason (`file:line:column: …`).
    Reload,
    /// `reset ipsec sa [remote ADDRESS] [policy NAME SEQ]`.
    ResetIpsecSa {
        /// Only SAs with this peer.
        remote: Option<std::net::IpAddr>,
        /// Only SAs of this policy entry.
        policy: Option<(String, u32)>,
    },
}

/// The daemon's answer: the display text and the same facts as JSON, or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The request's output.
    Ok {
        /// Text as the device prints it.
        text: String,
        /// The same facts for scripts.
        json: serde_json::Value,
    },
    /// The request failed.
    Error(String),
}

/// Sends `request` to the daemon at `path` and returns its answer.
pub fn call(path: &Path, request: &Request) -> Result<Response, String> {
    let mut stream = UnixStream::connect(path)
        .map_err(|e| format!("cannot reach the keysteward daemon at {}: {e}", path.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(|e| format!("sending to {}: {e}", path.display()))?;
    let mut reader = BufReader::new(stream.take_limit());
    let mut answer = String::new();
    reader.read_line(&mut answer).map_err(|e| format!("reading from {}: {e}", path.display()))?;
    serde_json::from_str(&answer).map_err(|e| format!("unreadable answer from the daemon: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line() {
        let text = serde_json::to_string(&Request::DisplayIkeSa).unwrap();
        assert_eq!(text, r#"{"command":"display-ike-sa"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), Request::DisplayIkeSa);
    }
}
