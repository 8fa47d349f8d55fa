//! Operator commands (`reset ike sa`, `reset ipsec sa`, VRP user view; vrp-cli.md §5.13) and
//! the history of failures behind `display ike error-info`.
//!
//! A reset deletes on both sides: Delete payloads (RFC 2408 §3.15; protocol ESP with our
//! inbound SPIs, protocol ISAKMP with CKY-I | CKY-R) go to the peer in informational
//! exchanges protected by HASH(1) (RFC 2409 §5.7), and events tell the data plane to drop
//! the SAs. Nothing is renegotiated until traffic asks again (the next acquire), as on VRP.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::config::PolicyId;
use crate::event::{ConnectionId, Exchange, Failure};
use crate::failure::FailureReason;

/// How many failures `display ike error-info` remembers; older ones are dropped first.
pub const ERROR_HISTORY_LEN: usize = 64;

/// An operator command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `reset ike sa [conn-id N]`: the IKE SA(s), with the IPsec SAs they manage.
    ResetIkeSa {
        /// One IKE SA, or all of them.
        connection: Option<ConnectionId>,
    },
    /// `reset ipsec sa [remote IP | policy NAME SEQ]`: IPsec SAs only; the IKE SAs stay and
    /// negotiate new ones when traffic asks.
    ResetIpsecSa {
        /// Only SAs with this peer address.
        remote: Option<IpAddr>,
        /// Only SAs of this policy entry.
        policy: Option<PolicyId>,
    },
}

/// One remembered failure: when, with whom, in which exchange and state, and why.
#[derive(Debug, Clone)]
pub struct ErrorRecord {
    /// When the engine saw it (the `now` of the call that produced it).
    pub at: Instant,
    /// The peer's configured name, when known.
    pub peer: Option<String>,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The exchange.
    pub exchange: Exchange,
    /// The state it was in.
    pub state: &'static str,
    /// Why.
    pub reason: FailureReason,
}

/// A bounded ring of the last failures: a peer that fails forever cannot grow it.
#[derive(Debug, Default)]
pub(crate) struct ErrorHistory {
    pub(crate) records: VecDeque<ErrorRecord>,
}

impl ErrorHistory {
    pub(crate) fn record(&mut self, at: Instant, failure: &Failure) {
        if self.records.len() == ERROR_HISTORY_LEN {
            self.records.pop_front();
        }
        self.records.push_back(ErrorRecord {
            at,
            peer: failure.peer.clone(),
            remote: failure.remote,
            exchange: failure.exchange,
            state: failure.state,
            reason: failure.reason.clone(),
        });
    }
}
