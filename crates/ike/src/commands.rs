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
use crate::engine::Engine;
use crate::event::IkeSaEnd;
use crate::event::{ConnectionId, Event, Exchange, Failure, FailureReason};
use crate::lifetime::end_ike_sa;

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
    records: VecDeque<ErrorRecord>,
}

impl ErrorHistory {
    fn record(&mut self, at: Instant, failure: &Failure) {
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

impl Engine {
    /// Runs an operator command. Drain `poll_transmit` and `poll_event` afterwards, as after
    /// any other input.
    pub fn handle_command(&mut self, now: Instant, command: Command) {
        let mark = self.out.events.len();
        match command {
            Command::ResetIkeSa { connection } => {
                for slot in 0..self.slots.len() {
                    let matches = self.slots[slot]
                        .as_ref()
                        .is_some_and(|sa| connection.is_none_or(|c| c == sa.connection));
                    if matches {
                        self.with_sa(slot, now, |sa, ctx| end_ike_sa(sa, IkeSaEnd::Reset, ctx));
                        self.reap(slot, now);
                    }
                }
            }
            Command::ResetIpsecSa { remote, policy } => self.reset_pairs(now, remote, policy.as_ref()),
        }
        self.after_input(now, mark);
    }

    /// The last failures, oldest first, for `display ike error-info`.
    pub fn error_history(&self) -> impl Iterator<Item = &ErrorRecord> + '_ {
        self.errors.records.iter()
    }

    /// Remembers the failures among the events from `mark` on.
    pub(crate) fn record_failures(&mut self, now: Instant, mark: usize) {
        for event in self.out.events.iter().skip(mark) {
            if let Event::Failed(failure) = event {
                self.errors.record(now, failure);
            }
        }
    }
}
