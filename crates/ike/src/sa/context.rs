//! What a handler needs from the engine while it handles one input ([`Ctx`]) and what it
//! leaves behind for the driver ([`Output`]). Every exchange and the SA core take a `Ctx`, so
//! time, randomness and configuration arrive as arguments (sans-IO, DESIGN.md).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crypto::SecureRandom;
use isakmp::{Cookie, Message};

use crate::config::{Config, PolicyConfig};
use crate::event::{Event, Transmit};
use crate::trace::MessageTrace;

/// What an exchange handler needs from the engine.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a Config,
    /// Indices into `config.policies` per peer index, in policy order (the engine builds it
    /// once, so a quick mode does not scan every policy).
    pub(crate) policies_by_peer: &'a [Vec<usize>],
    pub(crate) rng: &'a mut dyn SecureRandom,
    pub(crate) now: Instant,
    pub(crate) out: &'a mut Output,
    /// `(local, remote)` of the datagram being handled, if one is: NAT detection and the
    /// NAT-T float compare them with the SA's addresses.
    pub(crate) received: Option<(SocketAddr, SocketAddr)>,
    /// Wall-clock time (seconds since the Unix epoch) for certificate validity, when the
    /// driver gave the engine a clock ([`crate::Engine::set_wall_clock`]).
    pub(crate) unix_time: Option<u64>,
    /// The engine's other IKE SAs, for a hub's checks (module `hub`); `None` without a slot.
    pub(crate) others: Option<&'a dyn hub_limits::Holdings<crate::config::TrafficSelector>>,
}

impl Ctx<'_> {
    /// The policies that use peer `peer`, in policy order: `Config::policies_of_peer`, indexed.
    pub(crate) fn policies_of_peer(&self, peer: usize) -> impl Iterator<Item = (usize, &PolicyConfig)> + '_ {
        let indices = self.policies_by_peer.get(peer).map_or(&[][..], Vec::as_slice);
        indices.iter().filter_map(|&i| self.config.policies.get(i).map(|p| (i, p)))
    }

    pub(crate) fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.rng.fill(&mut bytes);
        bytes
    }

    pub(crate) fn random_cookie(&mut self) -> Cookie {
        let mut cookie = [0u8; 8];
        while cookie == [0; 8] {
            self.rng.fill(&mut cookie);
        }
        Cookie(cookie)
    }
}

/// A received ISAKMP message in the three forms its handlers need: parsed, as the datagram
/// it came in (hashes and signatures cover the raw payload bodies, `wire::raw_body`), and
/// as the digest that recognises a repeat (`sa::flight`). They travel together from the
/// engine's parse to the exchange that answers, so they are one value.
#[derive(Clone, Copy)]
pub(crate) struct ReceivedMessage<'m> {
    pub(crate) message: &'m Message<'m>,
    pub(crate) datagram: &'m [u8],
    pub(crate) digest: [u8; 32],
}

/// Datagrams and events produced while handling one input, drained by `poll_*`.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    /// The driver asked for a key log ([`crate::Engine::set_key_log`]): only then do events
    /// carry phase-1 keys. Kept here, next to the events it governs, so every handler sees it
    /// through `Ctx::out` without another field to thread through.
    pub(crate) key_log: bool,
    /// The driver asked for message traces ([`crate::Engine::set_message_trace`]).
    pub(crate) trace: bool,
    /// Traced messages, drained by [`crate::Engine::poll_message_trace`].
    pub(crate) traces: VecDeque<MessageTrace>,
    /// What the exchanges did ([`crate::Engine::exchange_counts`]).
    pub(crate) tally: crate::tally::ExchangeCounts,
}
