//! What the daemon remembers of the engine's reports for the displays the engine cannot
//! answer from its own tables: the IPsec SA pairs in install order (the `v1:2` lines of
//! `display ike sa` and their conn-ids) and the recent failures (`display ike error-info`).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::SystemTime;

use ike::Event;

/// The conn-ids of the `v1:2` lines of `display ike sa` start above this, apart from the
/// engine's phase-1 numbers.
pub const PHASE2_CONN_ID_BASE: u64 = 10_000;

/// How many failures `display ike error-info` remembers.
const ERROR_HISTORY: usize = 64;

/// An IPsec SA pair the engine reported, for `display ike sa`'s phase-2 lines.
#[derive(Debug, Clone)]
pub struct InstalledPair {
    /// The pair's number on the display (added to [`PHASE2_CONN_ID_BASE`]).
    pub display_id: u64,
    /// The IKE SA that negotiated it.
    pub connection: ike::ConnectionId,
    /// The peer's address.
    pub remote: SocketAddr,
    /// We started the quick mode.
    pub initiator: bool,
    /// Our SPI, so that the pair leaves the display when the engine ends it.
    pub inbound_spi: u32,
    /// The peer's SPI, so that the pair leaves the display when the peer deletes it.
    pub outbound_spi: u32,
}

/// The daemon's own records of what the engine reported.
#[derive(Debug)]
pub struct Records {
    /// The installed pairs, oldest first.
    pub installed: Vec<InstalledPair>,
    /// The latest failures (at most 64), oldest first, as the log printed them.
    pub failures: VecDeque<(SystemTime, String)>,
    next_display_id: u64,
}

impl Default for Records {
    fn default() -> Self {
        Self { installed: Vec::new(), failures: VecDeque::new(), next_display_id: 1 }
    }
}

impl Records {
    /// Notes what `event` changes in the records: a pair installed or gone, a failure.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::IpsecSaInstalled(pair) => {
                let display_id = self.next_display_id;
                self.next_display_id += 1;
                self.installed.push(InstalledPair {
                    display_id,
                    connection: pair.connection,
                    remote: pair.remote,
                    initiator: pair.initiator,
                    inbound_spi: pair.inbound.spi().0,
                    outbound_spi: pair.outbound.spi().0,
                });
            }
            Event::Failed(failure) => {
                if self.failures.len() == ERROR_HISTORY {
                    self.failures.pop_front();
                }
                self.failures.push_back((SystemTime::now(), failure.to_string()));
            }
            Event::IpsecSaDeleted { connection, spis } => {
                self.installed.retain(|p| !(p.connection == *connection && spis.contains(&p.outbound_spi)));
            }
            Event::IpsecSaExpired { inbound_spi, .. } => {
                self.installed.retain(|p| p.inbound_spi != *inbound_spi);
            }
            Event::SasCleared { connection, .. } => {
                self.installed.retain(|p| p.connection != *connection);
            }
            Event::IkeSaEstablished { .. }
            | Event::IkeSaDeleted { .. }
            | Event::IkeSaExpired { .. }
            | Event::IpsecSaInbound(_)
            | Event::PeerMoved { .. } => {}
        }
    }

    /// The conn-id `display ike sa` gives each pair's `v1:2` line, by inbound SPI.
    pub fn phase2_conn_ids(&self) -> HashMap<u32, u64> {
        self.installed.iter().map(|p| (p.inbound_spi, p.display_id + PHASE2_CONN_ID_BASE)).collect()
    }
}
