//! What the exchanges did, counted as it happens: exchanges started, established and failed
//! by reason, rekeys and DPD, for `display ike statistics` and the metrics. Fixed arrays
//! indexed by exchange and reason, so a count costs one add and the labels a scrape can see
//! are a closed list. The IKE and IPsec SAs by state are counted on demand in one pass over
//! the SAs ([`crate::Engine::sa_counts`]), without building display rows.

use crate::event::{ClearReason, Event, Exchange, Failure};
use crate::failure::FailureReason;

/// The exchanges counted, in the order of the arrays of [`ExchangeCounts`].
pub const EXCHANGES: [Exchange; 4] =
    [Exchange::MainMode, Exchange::AggressiveMode, Exchange::QuickMode, Exchange::Informational];

/// A failure's reason as a label: one of [`REASONS`].
pub fn reason_label(reason: &FailureReason) -> &'static str {
    REASONS[reason_index(reason)]
}

/// Every failure reason label, in the order of [`ExchangeCounts::failed`].
pub const REASONS: [&str; 7] = [
    "no_proposal_chosen",
    "authentication_failed",
    "identity_mismatch",
    "peer_notified",
    "timeout",
    "malformed",
    "policy",
];

fn reason_index(reason: &FailureReason) -> usize {
    match reason {
        FailureReason::Proposal(_) => 0,
        FailureReason::Authentication(_) => 1,
        FailureReason::Identity(_) => 2,
        FailureReason::PeerNotified(_) => 3,
        FailureReason::Timeout(_) => 4,
        FailureReason::Malformed(_) => 5,
        FailureReason::Policy(_) => 6,
    }
}

/// The label of an exchange: `main`, `aggressive`, `quick`, `informational`.
pub fn exchange_label(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::MainMode => "main",
        Exchange::AggressiveMode => "aggressive",
        Exchange::QuickMode => "quick",
        Exchange::Informational => "informational",
    }
}

fn exchange_index(exchange: Exchange) -> usize {
    match exchange {
        Exchange::MainMode => 0,
        Exchange::AggressiveMode => 1,
        Exchange::QuickMode => 2,
        Exchange::Informational => 3,
    }
}

/// Counts of what the exchanges did since the engine started; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExchangeCounts {
    /// Exchanges started, by exchange ([`EXCHANGES`]): initiated, or a first message answered.
    pub started: [u64; 4],
    /// Exchanges completed: phase 1 established, quick mode's SA pair installed.
    pub established: [u64; 4],
    /// Exchanges failed, by exchange and reason ([`REASONS`]).
    pub failed: [[u64; 7]; 4],
    /// First messages refused (unauthenticated failures by our policy or limits: unknown
    /// peer, aggressive mode not allowed, rate limit, caps).
    pub refused: u64,
    /// IKE SAs renewed by a new phase 1 before they expired (started by us).
    pub ike_rekeys: u64,
    /// IPsec SA pairs rekeyed by a new quick mode before they expired (started by us).
    pub ipsec_rekeys: u64,
    /// DPD R-U-THERE sent.
    pub dpd_sent: u64,
    /// Peers declared dead by DPD.
    pub dpd_timeouts: u64,
}

impl ExchangeCounts {
    /// An exchange started.
    pub(crate) fn started(&mut self, exchange: Exchange) {
        self.started[exchange_index(exchange)] += 1;
    }

    /// An exchange completed.
    pub(crate) fn established(&mut self, exchange: Exchange) {
        self.established[exchange_index(exchange)] += 1;
    }

    /// Counts what an event says: failures, quick modes completed, peers found dead.
    pub(crate) fn event(&mut self, event: &Event) {
        match event {
            Event::Failed(failure) => self.failure(failure),
            Event::IpsecSaInstalled(_) => self.established(Exchange::QuickMode),
            Event::SasCleared { reason: ClearReason::PeerDead { .. }, .. } => self.dpd_timeouts += 1,
            _ => {}
        }
    }

    fn failure(&mut self, failure: &Failure) {
        self.failed[exchange_index(failure.exchange)][reason_index(&failure.reason)] += 1;
        if failure.unauthenticated && matches!(failure.reason, FailureReason::Policy(_)) {
            self.refused += 1;
        }
    }

    /// Failures of one exchange with one reason.
    pub fn failed_with(&self, exchange: Exchange, reason: &str) -> u64 {
        REASONS.iter().position(|r| *r == reason).map_or(0, |i| self.failed[exchange_index(exchange)][i])
    }

    /// Exchanges of one kind started.
    pub fn started_of(&self, exchange: Exchange) -> u64 {
        self.started[exchange_index(exchange)]
    }

    /// Exchanges of one kind completed.
    pub fn established_of(&self, exchange: Exchange) -> u64 {
        self.established[exchange_index(exchange)]
    }
}

/// The SAs by state at one moment ([`crate::Engine::sa_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaCounts {
    /// IKE SAs established.
    pub ike_established: u64,
    /// IKE SAs still negotiating phase 1.
    pub ike_negotiating: u64,
    /// IPsec SA pairs in use and not yet due for a rekey.
    pub ipsec_ready: u64,
    /// IPsec SA pairs past their soft lifetime, being rekeyed.
    pub ipsec_rekeying: u64,
    /// IPsec SA pairs a newer pair replaced, kept until their hard lifetime.
    pub ipsec_replaced: u64,
}
