//! The control socket: a Unix stream socket on which the daemon answers `display` and `reset`
//! requests, one JSON request line in, one JSON response line out. It shows peers and SAs
//! and can tear tunnels down, so it is mode 0660, group `keysteward` when that group exists
//! (else 0600): the group may run the displays and `show-config` (keys masked); what changes
//! state ([`Request::changes_state`]: `reset`, `reload`) is only for root and the daemon's
//! own user, checked by the peer's credentials (`SO_PEERCRED`).
//!
//! This crate is the protocol (the request and response types); [`client`] is the command
//! line's side, [`server`] the daemon's.

pub mod client;
pub mod page;
pub mod pager;
pub mod server;

pub use client::{call, pages};
pub use page::{Page, DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS};

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
    /// `display ike statistics`: the IKE engine's counters and its half-open IKE SAs.
    DisplayIkeStatistics,
    /// `display ipsec sa brief`.
    DisplayIpsecSaBrief,
    /// `display ipsec statistics`: the data plane's packet counters.
    DisplayIpsecStatistics,
    /// `display ike sa verbose [remote IP] [conn-id N]`: every field of the phase-1 SAs.
    DisplayIkeSaVerbose {
        /// Only SAs with this peer.
        #[serde(default)]
        remote: Option<std::net::IpAddr>,
        /// Only the SA with this conn-id.
        #[serde(default)]
        conn_id: Option<u64>,
    },
    /// `display ike proposal`.
    DisplayIkeProposal,
    /// `display ike peer [brief | name P]`: the table, or one peer in detail.
    DisplayIkePeer {
        /// One peer in detail; `None` for the brief table.
        #[serde(default)]
        name: Option<String>,
    },
    /// `display ipsec sa [remote IP]`: the detailed form.
    DisplayIpsecSa {
        /// Only SAs with this peer.
        #[serde(default)]
        remote: Option<std::net::IpAddr>,
    },
    /// `display ipsec proposal [name N | brief]`.
    DisplayIpsecProposal {
        /// Only this proposal.
        #[serde(default)]
        name: Option<String>,
        /// One line per proposal.
        #[serde(default)]
        brief: bool,
    },
    /// `display ipsec policy [name N]`.
    DisplayIpsecPolicy {
        /// Only this policy group.
        #[serde(default)]
        name: Option<String>,
    },
    /// `display firewall session table [verbose]`: the IKE and ESP sessions of the gateway.
    DisplayFirewallSessionTable {
        /// With each session's packet and byte counters.
        #[serde(default)]
        verbose: bool,
    },
    /// `display ip routing-table`: the configuration's static routes (`ip route-static`) and
    /// whether each is installed.
    DisplayIpRoutingTable,
    /// `show-config`: the configuration in force, canonical VRP, pre-shared keys masked.
    ShowConfig,
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
    /// `reset ike statistics`: `display ike statistics` counts from now on; the exported
    /// metrics do not go backwards.
    ResetIkeStatistics,
    /// `reset ipsec statistics`: likewise for `display ipsec statistics`.
    ResetIpsecStatistics,
    /// `debugging ike` (`on`) / `undo debugging ike`: raise the daemon's IKE log to debug
    /// (one line per IKE message, its step and payloads), or lower it back to the level the
    /// daemon was started with.
    DebuggingIke {
        /// `debugging ike` rather than `undo debugging ike`.
        on: bool,
    },
    /// Every counter since the daemon started (never reset) and the gauges of this moment,
    /// without per-SA rows: what the metrics endpoint exports. As JSON only.
    Counters,
    /// One console command applied to the running configuration at once (`keysteward
    /// shell`). The answer's text is empty or notes for the operator; an error (`Error: …`)
    /// leaves the running configuration unchanged.
    Configure {
        /// The canonical opening command of each nested view, from the system view inwards
        /// (`[]`, `["ike peer b"]`, `["ipsec policy policy1 1 isakmp"]`).
        views: Vec<String>,
        /// One command in canonical keywords (`pre-shared-key Admin@123`, `undo pfs`, `ike peer
        /// b`); values keep their case.
        line: String,
    },
    /// `display current-configuration`: the running configuration, keys masked.
    DisplayCurrentConfiguration,
    /// `display saved-configuration`: the configuration file, keys masked.
    DisplaySavedConfiguration,
    /// `display this`: the running configuration of the innermost view, with notes on
    /// inert objects.
    DisplayThis {
        /// As for [`Request::Configure`].
        views: Vec<String>,
    },
    /// `save`: the running configuration written to the daemon's configuration file,
    /// atomically, the previous one kept as `FILE.bak`.
    Save,
    /// One page of a display (`display ike sa` and the others that grow with the SAs), so
    /// that a hub with 10,000s of SAs is read in bounded answers ([`page`]). Stateless: the
    /// daemon renders only the rows after `after`, in the display's stable order (conn-id,
    /// SPI, …); the answer carries the cursor of the next page ([`Page`]).
    Page {
        /// The display (a `display …` request, `show-config`).
        display: Box<Request>,
        /// The cursor the previous page returned; `None` for the first page (which carries
        /// the display's header and totals).
        #[serde(default)]
        after: Option<String>,
        /// Rows (SAs, sessions, lines) wanted; the daemon gives at most [`MAX_PAGE_ROWS`].
        #[serde(default = "page::default_rows")]
        rows: u32,
    },
}

impl Request {
    /// Whether the request changes the daemon's state (deletes SAs, reloads), and so is
    /// allowed only to root and the daemon's own user; the others only read.
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Self::ResetIkeSa { .. }
                | Self::ResetIpsecSa { .. }
                | Self::Reload
                | Self::ResetIkeStatistics
                | Self::ResetIpsecStatistics
                | Self::DebuggingIke { .. }
                | Self::Configure { .. }
                | Self::Save
        ) || matches!(self, Self::Page { display, .. } if display.changes_state())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line() {
        let text = serde_json::to_string(&Request::DisplayIkeSa).unwrap();
        assert_eq!(text, r#"{"command":"display-ike-sa"}"#);
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), Request::DisplayIkeSa);
    }

    /// Every request survives the socket; options left out of a hand-written line default.
    #[test]
    fn display_requests_round_trip() {
        let requests = [
            Request::DisplayIkeSaVerbose { remote: Some("192.0.2.2".parse().unwrap()), conn_id: Some(4) },
            Request::DisplayIkeProposal,
            Request::DisplayIkePeer { name: Some("b".into()) },
            Request::DisplayIpsecSa { remote: None },
            Request::DisplayIpsecProposal { name: None, brief: true },
            Request::DisplayIpsecPolicy { name: Some("policy1".into()) },
            Request::DisplayFirewallSessionTable { verbose: true },
            Request::DisplayIpRoutingTable,
            Request::ShowConfig,
            Request::Configure { views: vec!["ike peer b".into()], line: "pre-shared-key Admin@123".into() },
            Request::DisplayCurrentConfiguration,
            Request::DisplaySavedConfiguration,
            Request::DisplayThis { views: Vec::new() },
            Request::Save,
            Request::ResetIkeStatistics,
            Request::ResetIpsecStatistics,
            Request::DebuggingIke { on: true },
            Request::Counters,
        ];
        for request in requests {
            let text = serde_json::to_string(&request).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request, "{text}");
        }
        let short: Request = serde_json::from_str(r#"{"command":"display-ipsec-proposal"}"#).unwrap();
        assert_eq!(short, Request::DisplayIpsecProposal { name: None, brief: false });
        assert_eq!(serde_json::to_string(&Request::ShowConfig).unwrap(), r#"{"command":"show-config"}"#);
        let debugging = serde_json::to_string(&Request::DebuggingIke { on: false }).unwrap();
        assert_eq!(debugging, r#"{"command":"debugging-ike","on":false}"#);
        assert!(
            Request::ResetIkeStatistics.changes_state() && Request::DebuggingIke { on: true }.changes_state()
        );
        assert!(!Request::Counters.changes_state());
    }

    /// The console's requests as the contract spells them; the changes are for root and the
    /// daemon's user only.
    #[test]
    fn console_requests_on_the_wire() {
        let configure = Request::Configure { views: vec!["ike peer b".into()], line: "undo pfs".into() };
        assert_eq!(
            serde_json::to_string(&configure).unwrap(),
            r#"{"command":"configure","views":["ike peer b"],"line":"undo pfs"}"#
        );
        let wire = [
            (Request::DisplayCurrentConfiguration, r#"{"command":"display-current-configuration"}"#),
            (Request::DisplaySavedConfiguration, r#"{"command":"display-saved-configuration"}"#),
            (Request::DisplayThis { views: vec![] }, r#"{"command":"display-this","views":[]}"#),
            (Request::Save, r#"{"command":"save"}"#),
        ];
        for (request, text) in wire {
            assert_eq!(serde_json::to_string(&request).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), request);
        }
        assert!(configure.changes_state() && Request::Save.changes_state());
        assert!(!Request::DisplayThis { views: vec![] }.changes_state());
        assert!(!Request::DisplayCurrentConfiguration.changes_state());
    }
}
