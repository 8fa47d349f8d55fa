//! Recovery after a restart (DESIGN.md, "Recovery after a restart"): a configured peer still
//! uses SAs we lost. ESP on an unknown SPI ([`Engine::handle_unknown_spi`]; RFC 4303 §3.4.2)
//! gets a protected N(INVALID-SPI) under an established IKE SA (RFC 2408 §5.5); without any
//! IKE SA with the peer we start one for its policies' flows, whose INITIAL-CONTACT (RFC 2407
//! §4.6.3.3) makes the peer drop the SAs we lost. A quick mode for unknown cookies gets an
//! unprotected N(INVALID-COOKIE), never longer than what came (no amplification), and, from
//! a configured peer, the same recovery, as does an encrypted informational (DPD, Delete)
//! for unknown cookies, which gets no notify (no notify ping-pong between two gateways). Both are bounded per address and in total ([`crate::rate_limit`]) and
//! counted in [`crate::Statistics`].

use std::net::SocketAddr;
use std::time::Instant;

use isakmp::{Doi, ExchangeType, Message, Notification, NotifyType, Payload, ProtocolId};

use crate::engine::endpoint::Engine;
use crate::event::{Acquire, Transmit};
use crate::wire;

/// Recoveries (INVALID-SPI answers and the IKE SAs they start) per second, over all peers.
const RECOVERIES_PER_SECOND: u32 = 100;
/// INVALID-COOKIE answers per second, over all addresses.
const INVALID_COOKIES_PER_SECOND: u32 = 20;

impl Engine {
    /// The data plane received ESP or AH from `remote` on SPI `spi`, which no installed SA
    /// has: a peer still uses an SA we no longer know (we restarted, or it missed a Delete).
    /// See the module documentation; the driver may report every such packet, the engine
    /// bounds what it does about them.
    pub fn handle_unknown_spi(&mut self, now: Instant, remote: SocketAddr, spi: u32) {
        let mark = self.out.events.len();
        self.stats.unknown_spi_reported += 1;
        self.recover(now, remote, Some(spi));
        self.after_input(now, mark);
    }

    /// A configured peer at `remote` uses an SA we do not have (an ESP SPI, or IKE cookies
    /// when `spi` is `None`): answer INVALID-SPI on an established IKE SA; without any IKE
    /// SA with it, start one (with INITIAL-CONTACT) for the flows of its policies.
    fn recover(&mut self, now: Instant, remote: SocketAddr, spi: Option<u32>) {
        let Some(&peer) = self.peer_by_address.get(&remote.ip()) else { return };
        if spi.is_some_and(|spi| self.quick_mode_owns(peer, spi)) {
            // The peer installed a pair whose quick mode has not reached its end here yet
            // (QM3 is on its way): the data plane keeps the packet for it.
            return;
        }
        if !self.recovery.recoveries.take_at(remote.ip(), now, RECOVERIES_PER_SECOND, 1) {
            self.stats.answers_rate_limited += 1;
            return;
        }
        let to = SocketAddr::new(remote.ip(), 500);
        let existing = crate::lifetime::preferred_ike_sa(&self.slots, self.slots_of_peer(peer), peer, to);
        let established =
            existing.filter(|&slot| self.slots[slot].as_ref().is_some_and(|sa| sa.is_established()));
        if let (Some(slot), Some(spi)) = (established, spi) {
            let spi = spi.to_be_bytes();
            let notification = Payload::Notification(Notification {
                doi: Doi::Ipsec,
                protocol: ProtocolId::Esp,
                spi: &spi,
                notify_type: NotifyType::InvalidSpi,
                data: &[],
            });
            self.with_sa(slot, now, |sa, ctx| sa.send_protected(&[notification], ctx));
            self.stats.invalid_spi_sent += 1;
        }
        if existing.is_some() {
            return; // an IKE SA with the peer exists or is being negotiated
        }
        self.stats.recoveries_started += 1;
        let acquires: Vec<Acquire> = self
            .policies_by_peer
            .get(peer)
            .into_iter()
            .flatten()
            .filter_map(|&index| Some((index, self.config.policies.get(index)?)))
            .flat_map(|(index, policy)| {
                policy.selectors.iter().map(move |s| Acquire { policy: index, selector: *s })
            })
            .collect();
        for acquire in acquires {
            self.acquire(now, acquire);
        }
    }

    /// True when `spi` is one we proposed in a quick mode with configured peer `peer` that
    /// is still running.
    fn quick_mode_owns(&self, peer: usize, spi: u32) -> bool {
        let spi = spi.to_be_bytes();
        self.slots_of_peer(peer)
            .iter()
            .filter_map(|&slot| self.slots.get(slot)?.as_ref())
            .any(|sa| sa.quick_modes.iter().any(|qm| qm.owns_spi(&spi)))
    }

    /// An IKE message (not a first message, not a fragment) for cookies we do not know,
    /// from `remote` to `local`: see the module documentation. Phase-1 messages and notifies
    /// in clear are left alone.
    pub(super) fn unknown_cookies(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        message: &Message<'_>,
        length: usize,
    ) {
        let header = message.header;
        // Only what runs on an established IKE SA says the peer holds one we lost. A phase-1
        // message of an exchange we dropped (failed, timed out) gets nothing: the initiator
        // takes no unprotected notify during phase 1, and ours would hide its real reason.
        let quick_mode = header.exchange_type == ExchangeType::QuickMode;
        let informational = header.exchange_type == ExchangeType::Informational;
        let on_established_sa = quick_mode || (informational && message.encrypted_body().is_some());
        if !on_established_sa {
            return;
        }
        self.recover(now, remote, None);
        if informational {
            return;
        }
        let bytes =
            wire::clear_notify(header.initiator_cookie, header.responder_cookie, NotifyType::InvalidCookie);
        if bytes.len() > length {
            return; // never more than came: no amplification
        }
        if !self.recovery.invalid_cookies.take_at(remote.ip(), now, INVALID_COOKIES_PER_SECOND, 1) {
            self.stats.answers_rate_limited += 1;
            return;
        }
        self.stats.invalid_cookie_sent += 1;
        self.out.transmits.push_back(Transmit::isakmp(local, remote, bytes));
    }
}
