//! What the bridge tells the engine and the displays about traffic: liveness for DPD, usage
//! for traffic lifetimes, and each pair's counters.

use std::net::SocketAddr;
use std::time::Instant;

use esp::InboundSa;
use ike::Engine;

use super::{Bridge, Pair};
use crate::data_path::shared::OpenSide;
use crate::data_path::{lock, PairTraffic, Shared};

impl Bridge {
    /// The data-plane thread saw traffic on our inbound SA `spi`: tell the engine the peer
    /// is alive (at most once a second per IKE SA).
    pub fn heard_from(&mut self, spi: u32, engine: &mut Engine) {
        let Some(connection) = self.pairs.iter().find(|p| p.inbound_spi == spi).map(|p| p.connection) else {
            return;
        };
        let now = Instant::now();
        let last = self.heard.get(&connection).copied();
        if last.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
            self.heard.insert(connection, now);
            engine.handle_traffic(now, connection);
        }
    }

    /// The traffic of every installed pair, in install order.
    pub fn traffic(&self) -> Vec<PairTraffic> {
        let shared = lock(&self.shared);
        let open = shared.open();
        self.pairs.iter().map(|pair| pair_traffic(&shared, &open, pair)).collect()
    }

    /// The traffic of the first installed pair whose SPI is `inbound_spi`: a page of
    /// `display ipsec sa` takes the data plane's counters of its own pairs only.
    pub fn pair_traffic(&self, inbound_spi: u32) -> Option<PairTraffic> {
        let pair = self.pairs.iter().find(|p| p.inbound_spi == inbound_spi)?;
        let shared = lock(&self.shared);
        let open = shared.open();
        Some(pair_traffic(&shared, &open, pair))
    }

    /// Reports every SA's traffic to the engine, which judges traffic lifetimes and
    /// sequence-number exhaustion (totals: a lost or repeated report does no harm).
    pub fn report_usage(&self, engine: &mut Engine) {
        let mut reports = Vec::new();
        {
            let shared = lock(&self.shared);
            let open = shared.open();
            for pair in &self.pairs {
                if let Some(c) = open.plane.inbound_usage(esp::Spi(pair.inbound_spi)) {
                    reports.push((pair.inbound_spi, ike::SaUsage { bytes: c.bytes, packets: c.packets }));
                }
                if let Some((c, last_sequence)) = shared.plane.pair_outbound_usage(esp::Spi(pair.inbound_spi))
                {
                    let packets = u64::from(last_sequence);
                    reports.push((pair.outbound_spi, ike::SaUsage { bytes: c.bytes, packets }));
                }
            }
        }
        if !reports.is_empty() {
            engine.handle_sa_usage(Instant::now(), &reports);
        }
    }
}

/// The data plane's counters of `pair` (`open`: the opening side of `shared`, locked).
fn pair_traffic(shared: &Shared, open: &OpenSide, pair: &Pair) -> PairTraffic {
    let spi = esp::Spi(pair.inbound_spi);
    // The ESP SA's window, or the AH SA's for AH alone.
    let window = open
        .plane
        .inbound_sa(spi)
        .map(InboundSa::replay_window)
        .or_else(|| open.plane.inbound_ah_sa(spi).map(esp::InboundAh::replay_window));
    // By our SPI, in constant time: a hub reports 100,000 pairs.
    let (outbound, sent_sequence) = shared.plane.pair_outbound_usage(spi).unwrap_or_default();
    // The outer addresses, kept once (in the data plane); ports only when UDP-encapsulated.
    let udp_encapsulated = open.plane.inbound_sa(spi).is_some_and(|sa| sa.params().udp_encapsulated);
    let port = |a: SocketAddr| if udp_encapsulated { a } else { SocketAddr::new(a.ip(), 0) };
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let (local, remote) =
        open.plane.pair_addresses(spi).map_or((unknown, unknown), |(l, r)| (port(l), port(r)));
    PairTraffic {
        inbound_spi: pair.inbound_spi,
        outbound_spi: pair.outbound_spi,
        local,
        remote,
        udp_encapsulated,
        inbound: open.plane.inbound_usage(spi).unwrap_or_default(),
        outbound,
        sent_sequence,
        received_sequence: window.map_or(0, esp::ReplayWindow::highest),
        replay_window: window.map_or(0, esp::ReplayWindow::size),
    }
}
