//! The read-only views of the IKE SAs that the displays and the driver's log read.

use std::net::SocketAddr;
use std::ops::Bound;
use std::time::Instant;

use isakmp::Cookie;

use crate::event::ConnectionId;
use crate::ike_sa::{IkeSa, Phase1};
use crate::sa::core::Role;
use crate::sa::timer::Timer;

use super::endpoint::Engine;

/// A read-only view of one IKE SA, for `display ike sa`.
#[derive(Debug, Clone)]
pub struct IkeSaView {
    /// The SA's number.
    pub connection: ConnectionId,
    /// The peer's name.
    pub peer: String,
    /// The peer's address.
    pub remote: SocketAddr,
    /// True when we initiated phase 1.
    pub initiator: bool,
    /// The phase-1 state.
    pub state: &'static str,
    /// The negotiated suite, once established.
    pub suite: Option<crate::config::IkeProposal>,
    /// Quick modes in progress.
    pub quick_modes_in_progress: usize,
    /// When its hard lifetime ends, once established (`Remaining duration` of the verbose
    /// display).
    pub expires_at: Option<Instant>,
    /// A newer IKE SA with the peer took over its IPsec SAs; it is deleted at `expires_at`
    /// (the `RL` flag of `display ike sa`).
    pub replaced: bool,
    /// Our address and port (4500 after a NAT-T float).
    pub local: SocketAddr,
    /// NAT-T: the dialect both announced, if any.
    pub nat_traversal: Option<isakmp::capabilities::NatTVersion>,
    /// A NAT was detected on our side (we send keepalives once floated).
    pub local_behind_nat: bool,
    /// A NAT was detected (or faked) on the peer's side.
    pub remote_behind_nat: bool,
    /// DPD is in force: configured here and announced by the peer.
    pub dpd: bool,
    /// The peer's certificate (subject, issuer, validity, alternative names), when phase 1
    /// was authenticated by signatures: for `display ike sa verbose`.
    pub peer_certificate: Option<crypto::CertificateSummary>,
    /// The ISAKMP cookies (initiator's, responder's; the responder's is zero until MM2).
    pub cookies: (Cookie, Cookie),
    /// Main or aggressive mode.
    pub exchange_mode: crate::config::ExchangeMode,
    /// The identity the peer presented, once authenticated.
    pub remote_identity: Option<crate::identity::PeerIdentity>,
    /// Quick-mode and informational messages dropped as replays of a used message ID.
    pub replays_dropped: u64,
    /// Message IDs forgotten over the cap of 4,096 per kind (replays of those are not
    /// recognised).
    pub message_ids_forgotten: u64,
}

#[cfg(test)]
thread_local! {
    /// Views of IKE SAs built on this thread, for the tests that check a page of the
    /// displays walks only its own SAs.
    pub(crate) static VIEWS_BUILT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Engine {
    /// The IKE SAs, for displays.
    pub fn ike_sas(&self) -> impl Iterator<Item = IkeSaView> + '_ {
        self.slots.iter().flatten().map(|sa| self.view(sa))
    }

    /// The IKE SAs by conn-id, from the first after `after` (all of them when `None`): a
    /// page of the displays walks its own SAs after one O(log N) step to its cursor.
    pub fn ike_sas_after(&self, after: Option<ConnectionId>) -> impl Iterator<Item = IkeSaView> + '_ {
        self.sas_after(after).map(|sa| self.view(sa))
    }

    /// The IKE SAs by conn-id after `after` (all of them when `None`).
    pub(crate) fn sas_after(&self, after: Option<ConnectionId>) -> impl Iterator<Item = &IkeSa> + '_ {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.by_connection
            .range((start, Bound::Unbounded))
            .filter_map(|(_, &slot)| self.slots.get(slot)?.as_deref())
    }

    /// How many IKE SAs there are (negotiating, established or failing), without a walk.
    pub fn ike_sa_count(&self) -> usize {
        self.by_connection.len()
    }

    /// The view of one IKE SA, found by its connection id without walking the others (the
    /// driver asks after each `IkeSaEstablished`; a walk would cost every SA a hub holds).
    pub fn ike_sa(&self, connection: ConnectionId) -> Option<IkeSaView> {
        let slot = *self.by_connection.get(&connection)?;
        self.slots.get(slot)?.as_ref().map(|sa| self.view(sa))
    }

    fn view(&self, sa: &IkeSa) -> IkeSaView {
        #[cfg(test)]
        VIEWS_BUILT.with(|n| n.set(n.get() + 1));
        IkeSaView {
            connection: sa.connection,
            peer: sa.peer_config(&self.config).name.clone(),
            remote: sa.remote,
            initiator: sa.role == Role::Initiator,
            state: sa.phase1.name(),
            suite: sa.suite(),
            quick_modes_in_progress: sa
                .quick_modes
                .iter()
                .filter(|q| !matches!(q.state, crate::quick_mode::QmState::Done))
                .count(),
            expires_at: match &sa.phase1 {
                Phase1::Established(_) => sa.timers.get(Timer::HardLifetime),
                _ => None,
            },
            replaced: sa.lifetimes.renewal == crate::sa::lifetimes::Renewal::Superseded,
            local: sa.local,
            nat_traversal: sa.nat.version,
            local_behind_nat: sa.nat.local_behind_nat,
            remote_behind_nat: sa.nat.remote_behind_nat,
            dpd: sa.dpd_config.is_some(),
            peer_certificate: sa.peer_certificate.as_deref().cloned(),
            cookies: (sa.cookie_i, sa.cookie_r),
            exchange_mode: sa.mode,
            remote_identity: sa.remote_identity.as_deref().cloned(),
            replays_dropped: sa.replays_dropped(),
            message_ids_forgotten: sa.message_ids_forgotten(),
        }
    }
}
