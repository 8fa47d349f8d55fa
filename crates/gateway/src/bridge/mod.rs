//! The bridge between the IKE engine and the data plane: it turns what the engine reports
//! (a negotiated pair, a deleted or expired SA, a failed negotiation) into data-plane
//! operations (install and remove SAs, SPD rules of template flows, their routes through
//! [`crate::os`]) and reports the data plane's traffic back to the engine (DPD liveness,
//! traffic lifetimes). It runs on the IKE loop; packets are the data-plane thread's
//! ([`crate::data_path::fast_path`]).
//!
//! A hub (an `ipsec policy … isakmp template`) does not know its branches' flows in advance:
//! template policies get no SPD rule and no route at start. When a pair negotiated through a
//! template is installed, its flow becomes an SPD rule (after the configured ones) and its
//! remote prefix a route into the TUN; both go when the last pair of that flow goes. So the
//! hub can never trigger toward a branch: a packet for a branch with no SA finds no route
//! into the TUN (the kernel's own routing decides its fate), and a template policy never
//! raises an acquire. The branch brings its tunnel up, as on a USG.

pub mod convert;
pub mod events;
pub mod routing;
mod usage;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use esp::{
    Action, DataPlane, DataPlaneConfig, Outbound, PolicyIndex, Rule, MAX_AH_HEADROOM, MAX_HEADROOM,
    MAX_TAILROOM,
};
use ike::{ConnectionId, Engine, IpsecSaPair};
use socket2::Socket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use self::convert::{sa_pair, selector, spd, unsupported_pair, Denies};
use crate::data_path::fast_path::{self, SpawnError};
use crate::data_path::{lock, Added, Notice, SendDrops, Shared, MAX_PACKET};
use crate::os::routes::Routes;
use crate::os::sockets::{send_raw, send_udp, UdpHandles};
use crate::os::OsError;

/// Why the data path could not start or take new sockets.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// A socket could not be handed to the data-plane thread.
    #[error(transparent)]
    Os(#[from] OsError),
    /// The data-plane thread did not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// One installed pair, as the data path remembers it for removal and usage reports.
struct Pair {
    connection: ConnectionId,
    inbound_spi: u32,
    outbound_spi: u32,
    /// The peer's AH SPI of an AH+ESP pair (a Delete may name it instead of the ESP one).
    outbound_ah_spi: Option<u32>,
    policy: PolicyIndex,
    /// The SPD rule of a flow negotiated through a template, if this pair came that way.
    /// (Its outer addresses are the data plane's: `usage::pair_traffic`.)
    template_rule: Option<Rule>,
}

/// A change to the routes of template flows, decided under the data-plane lock and made
/// after it is released ([`Bridge::apply_route_changes`]): the kernel is never asked
/// anything while the data plane waits.
enum RouteChange {
    /// A flow is up (its rule, for the log, and the peer's name and address).
    Add(Rule, String, IpAddr),
    /// The last flow to that remote prefix is gone.
    Remove(esp::Prefix),
}

/// The IKE loop's side of the data path: installs and removes SAs in the shared data plane
/// and keeps what the engine needs to hear about them. Packets themselves are carried by the
/// data-plane thread ([`crate::data_path::fast_path`]).
pub struct Bridge {
    shared: Arc<Mutex<Shared>>,
    tun: Arc<tun_rs::SyncDevice>,
    raw: HashMap<IpAddr, Arc<Socket>>,
    /// Raw AH sockets (`IP_HDRINCL`) by local address.
    raw_ah: HashMap<IpAddr, Arc<Socket>>,
    udp: HashMap<SocketAddr, std::net::UdpSocket>,
    notices: mpsc::Sender<Notice>,
    pairs: Vec<Pair>,
    /// The inbound SPIs of pairs installed inbound-first (QM2 sent), not yet released (QM3).
    held: std::collections::HashSet<u32>,
    rng: crypto::OsRandom,
    /// Last `handle_traffic` per connection, so DPD hears of traffic at most once a second.
    heard: HashMap<ConnectionId, Instant>,
    /// The flows negotiated through templates, by SPD rule, with the pairs carrying each: its
    /// rule and route stay while one does (a rekey installs the new pair before the old one
    /// goes). Maps, as `remotes` (flows per remote prefix): a hub has one per branch.
    template_flows: HashMap<Rule, usize>,
    remotes: HashMap<esp::Prefix, usize>,
    template_routes: Routes,
    /// Route changes waiting for the data-plane lock to be released.
    route_changes: Vec<RouteChange>,
    /// Datagrams dropped on a full send buffer, counted by the IKE loop, this bridge and the
    /// data-plane thread.
    drops: Arc<SendDrops>,
    /// The inner flows the data-plane thread publishes (`display firewall session table`).
    flows: inner_flows::Published,
}

impl Bridge {
    /// A data path over `tun` with the SPD of `config`, raw ESP sockets `raw` and UDP 4500
    /// sockets `udp` (for ESP-in-UDP); `templates` says which policies are templates
    /// ([`crate::engine_config::template_policies`]) and `denies` gives their ACLs' deny rules
    /// ([`crate::engine_config::deny_rules`]). Starts the data-plane thread, which
    /// reports to `notices`, and hands IKE messages that arrive on UDP 4500 to `ike`.
    pub fn new(
        config: &ike::Config,
        (templates, denies): (Vec<bool>, &Denies),
        tun: Arc<tun_rs::SyncDevice>,
        (raw, raw_ah): (HashMap<IpAddr, Arc<Socket>>, HashMap<IpAddr, Arc<Socket>>),
        udp: Vec<UdpHandles>,
        notices: mpsc::Sender<Notice>,
        ike: mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>,
    ) -> Result<Self, BridgeError> {
        let (spd, rule_selectors) = spd(config, &templates, denies);
        let device = tun.name().unwrap_or_else(|e| {
            warn!("cannot read the TUN device's name ({e}); template routes will fail");
            String::new()
        });
        let plane = DataPlane::new(spd, DataPlaneConfig::default());
        let mut shared = Shared::new(plane, rule_selectors, templates);
        shared.set_recovery_peers(config);
        let shared = Arc::new(Mutex::new(shared));
        let (udp, thread_udp) =
            udp.into_iter().map(|h| ((h.local, h.send), (h.local, Arc::new(h.read)))).unzip();
        let drops = Arc::new(SendDrops::default());
        let flows = inner_flows::Published::default();
        fast_path::spawn(fast_path::Io {
            flows: flows.clone(),
            drops: drops.clone(),
            shared: shared.clone(),
            tun: tun.clone(),
            raw: raw.iter().map(|(a, s)| (*a, s.clone())).collect(),
            ah: raw_ah.iter().map(|(a, s)| (*a, s.clone())).collect(),
            udp: thread_udp,
            notices: notices.clone(),
            ike,
        })?;
        Ok(Self {
            shared,
            tun,
            raw,
            raw_ah,
            udp,
            notices,
            pairs: Vec::new(),
            held: std::collections::HashSet::new(),
            rng: crypto::OsRandom,
            heard: HashMap::new(),
            template_flows: HashMap::new(),
            remotes: HashMap::new(),
            template_routes: Routes::empty(&device)?,
            route_changes: Vec::new(),
            drops,
            flows,
        })
    }

    /// The protected inner flows the data-plane thread last published, alive at `now`.
    pub fn inner_flows(&self, now: std::time::Instant) -> Vec<inner_flows::FlowRow> {
        self.flows.rows(now)
    }

    /// The data plane's counters (a copy: the thread keeps counting).
    pub fn statistics(&self) -> esp::Statistics {
        lock(&self.shared).statistics()
    }

    /// True when a raw ESP socket is open on `address`.
    pub fn has_raw_socket(&self, address: IpAddr) -> bool {
        self.raw.contains_key(&address)
    }

    /// Raw AH sockets opened for local addresses a reload added; the data-plane thread starts
    /// reading them within a second.
    pub fn add_ah_sockets(&mut self, ah: HashMap<IpAddr, Arc<Socket>>) {
        let mut added = Added::default();
        for (address, socket) in ah {
            added.ah.push((address, socket.clone()));
            self.raw_ah.insert(address, socket);
        }
        if !added.ah.is_empty() {
            lock(&self.shared).add_sockets(added);
        }
    }

    /// Sockets opened for local addresses a reload added: raw ESP sockets and UDP 4500
    /// sockets. The data-plane thread starts reading them within a second (its idle poll).
    pub fn add_sockets(&mut self, raw: HashMap<IpAddr, Arc<Socket>>, udp: Vec<UdpHandles>) {
        let mut added = Added::default();
        for (address, socket) in raw {
            added.raw.push((address, socket.clone()));
            self.raw.insert(address, socket);
        }
        for UdpHandles { local, send, read } in udp {
            added.udp.push((local, Arc::new(read)));
            self.udp.insert(local, send);
        }
        if !(added.raw.is_empty() && added.udp.is_empty()) {
            lock(&self.shared).add_sockets(added);
        }
    }

    /// Follows a configuration reload: the SPD of the new `config` (whose template policies
    /// `templates` names) replaces the old one, the pairs of unchanged policies move to their
    /// new index (same SAs, same SPIs, traffic flows on) and those of changed or removed
    /// policies go (the engine deleted them and reports them too). Packets waiting for an
    /// acquire are dropped: rule numbers changed, and the next packet raises the acquire
    /// again. The template flows of the pairs kept are protected again under their new
    /// policy numbers; the routes of the others go.
    pub fn reconfigure(
        &mut self,
        config: &ike::Config,
        (templates, denies): (Vec<bool>, &Denies),
        diff: &ike::ConfigDiff,
    ) {
        let (spd, rule_selectors) = spd(config, &templates, denies);
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        shared.plane.replace_spd(spd);
        let removed = shared.renumber_policies(|p| diff.policy(p.0).map(PolicyIndex));
        shared.rule_selectors = rule_selectors;
        shared.templates = templates;
        shared.set_recovery_peers(config);
        self.pairs.retain_mut(|pair| match diff.policy(pair.policy.0) {
            Some(policy) => {
                pair.policy = PolicyIndex(policy);
                if let Some(rule) = &mut pair.template_rule {
                    rule.action = Action::Protect(PolicyIndex(policy));
                }
                true
            }
            None => false,
        });
        let pairs = &self.pairs;
        self.held.retain(|spi| pairs.iter().any(|p| p.inbound_spi == *spi));
        let old_flows = std::mem::take(&mut self.template_flows);
        self.remotes.clear();
        for rule in self.pairs.iter().filter_map(|p| p.template_rule) {
            let pairs = self.template_flows.entry(rule).or_insert(0);
            if *pairs == 0 {
                shared.plane.push_rule(rule);
                *self.remotes.entry(rule.selector.remote).or_insert(0) += 1;
            }
            *pairs += 1;
        }
        for rule in old_flows.keys() {
            if !self.remotes.contains_key(&rule.selector.remote) {
                self.route_changes.push(RouteChange::Remove(rule.selector.remote));
            }
        }
        info!(
            "data path reconfigured: {} SPD rule(s) ({} of template flows), {} IPsec SA pair(s) kept, \
             {removed} removed",
            shared.rule_selectors.len() + self.template_flows.len(),
            self.template_flows.len(),
            self.pairs.len()
        );
        drop(shared);
        self.apply_route_changes();
    }

    /// Makes the route changes decided under the data-plane lock, now that it is released.
    fn apply_route_changes(&mut self) {
        for change in std::mem::take(&mut self.route_changes) {
            match change {
                RouteChange::Add(rule, peer, remote) => match routing::template_route(rule.selector.remote) {
                    Some(prefix) => {
                        if let Err(e) = self.template_routes.add_one(prefix) {
                            warn!("template flow {} for {peer} ({remote}): {e}", rule.selector);
                        }
                    }
                    None => warn!(
                        "template flow {} for {peer} ({remote}): the default route is not replaced; \
                         route what it protects with ip route-static",
                        rule.selector
                    ),
                },
                RouteChange::Remove(prefix) => self.template_routes.remove_one(prefix),
            }
        }
    }

    /// An orderly shutdown: the routes of template flows go, and their fail-closed routes
    /// too unless `keep`; how many prefixes had one.
    pub fn shutdown_routes(&mut self, keep: bool) -> usize {
        self.template_routes.shutdown(keep)
    }

    /// Packets read from the TUN that policy lets pass in clear, dropped (clear traffic is
    /// the kernel's to forward); and what the reassembly of inner fragments did.
    pub fn bypass_dropped(&self) -> (u64, reassembly::Counters) {
        let shared = lock(&self.shared);
        (shared.bypass_dropped, shared.reassembly)
    }

    /// The counters of datagrams dropped on a full send buffer, for the IKE loop's sends.
    pub fn send_drops(&self) -> Arc<SendDrops> {
        self.drops.clone()
    }

    /// Seals and sends what the data plane released (queued packets, fragments) after an
    /// SA change. Rare, so plain one-by-one sends from the IKE loop.
    fn flush(&self, shared: &mut Shared) {
        let mut buf = vec![0u8; MAX_PACKET + MAX_HEADROOM + MAX_TAILROOM + MAX_AH_HEADROOM];
        while let Some(outcome) = shared.plane.poll_queued(&mut buf) {
            match outcome {
                Outbound::Send(send) => self.send(&send),
                Outbound::TooBig { icmp, .. } => crate::os::tun::write_one(&self.tun, icmp),
                _ => {}
            }
        }
        shared.drain_events(&self.notices);
    }

    /// Sends one datagram the data plane released, on the socket its SA uses (non-blocking:
    /// this runs under the lock); a full buffer drops it, counted.
    fn send(&self, send: &esp::Send<'_>) {
        let full = if send.protocol == esp::PROTOCOL_AH {
            send_raw(&self.raw_ah, "AH", send)
        } else if send.udp_encapsulated {
            send_udp(&self.udp, send)
        } else {
            send_raw(&self.raw, "ESP", send)
        };
        self.drops.esp.fetch_add(u64::from(full), Relaxed);
    }

    /// Installs a negotiated pair and sends the packets that waited for it; or, with
    /// `inbound_first` (we sent QM2), installs it with its outbound half held until QM3
    /// ([`ike::Event::IpsecSaInbound`]); a pair installed so is released, not installed again.
    pub fn install(&mut self, pair: &IpsecSaPair, engine: &Engine, inbound_first: bool) {
        if !inbound_first && self.release(pair) {
            return;
        }
        let Some(policy) = engine.config().policies.iter().position(|p| p.id == pair.policy) else {
            warn!("IPsec SA for unknown policy {}", pair.policy);
            return;
        };
        if let Some(reason) = unsupported_pair(pair) {
            warn!(
                "IPsec SA pair {} ({}) for {} not installed: {reason}",
                pair.suite, pair.selector, pair.policy
            );
            return;
        }
        let Some(sa_pair) = sa_pair(pair, PolicyIndex(policy)) else { return };
        let shared = self.shared.clone();
        let template = lock(&shared).is_template(PolicyIndex(policy)).then(|| Rule {
            selector: selector(&pair.selector),
            action: Action::Protect(PolicyIndex(policy)),
        });
        let first = template.filter(|rule| !self.template_flows.contains_key(rule));
        // A template flow's first pair goes in whole with QM3: until then the flow has no
        // rule and no route into the TUN, and the answer to a packet an inbound half opened
        // would leave by the kernel's own routing. Its rekeys go inbound-first. Its route
        // comes before its SAs (outside the lock): the data-plane thread opens the packets
        // that came early as soon as the SA is in, and their answers need the route.
        match first {
            Some(_) if inbound_first => return,
            Some(rule) => {
                self.route_changes.push(RouteChange::Add(rule, pair.peer.clone(), pair.remote.ip()));
                self.apply_route_changes();
            }
            None => {}
        }
        let mut shared = lock(&shared);
        let installed = if inbound_first {
            shared.install_inbound_first(sa_pair, &mut self.rng)
        } else {
            shared.install(sa_pair, &mut self.rng)
        };
        if let Err(e) = installed {
            warn!("cannot install the IPsec SA pair for {}: {e}", pair.policy);
            drop(shared);
            if let Some(rule) = first.filter(|r| !self.remotes.contains_key(&r.selector.remote)) {
                self.route_changes.push(RouteChange::Remove(rule.selector.remote));
                self.apply_route_changes();
            }
            return;
        }
        // A held rekey pair counts toward its template flow at once: should the flow's last
        // pair go before QM3 (a Delete overtaking QM3, a hard limit), its rule and route stay.
        if let Some(rule) = template {
            self.add_template_flow(&mut shared, rule, &pair.peer, pair.remote.ip());
        }
        self.pairs.push(Pair {
            connection: pair.connection,
            inbound_spi: pair.inbound.spi().0,
            outbound_spi: pair.outbound.spi().0,
            outbound_ah_spi: pair.ah.as_ref().map(|ah| ah.outbound.spi().0),
            policy: PolicyIndex(policy),
            template_rule: template,
        });
        if inbound_first {
            self.held.insert(pair.inbound.spi().0);
        }
        self.flush(&mut shared);
        drop(shared);
        self.apply_route_changes();
    }

    /// QM3 confirmed a pair installed inbound-first: its outbound SA seals from now on (a
    /// template flow's rule and route were counted when it was held). False when none is
    /// held under its SPI.
    fn release(&mut self, pair: &IpsecSaPair) -> bool {
        let spi = pair.inbound.spi().0;
        if !self.held.remove(&spi) || !self.pairs.iter().any(|p| p.inbound_spi == spi) {
            return false;
        }
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        shared.plane.release_outbound(esp::Spi(spi));
        self.flush(&mut shared);
        drop(shared);
        self.apply_route_changes();
        true
    }

    /// The IKE SA `connection` is gone: the pairs it left waiting for QM3 go with it.
    pub fn remove_held(&mut self, connection: ConnectionId) {
        if self.held.is_empty() {
            return;
        }
        let held: Vec<u32> = self
            .pairs
            .iter()
            .filter(|p| p.connection == connection && self.held.contains(&p.inbound_spi))
            .map(|p| p.inbound_spi)
            .collect();
        for spi in held {
            self.remove_inbound(spi);
        }
    }

    /// A pair of a template flow is up: the first one adds the flow's SPD rule and route.
    fn add_template_flow(&mut self, shared: &mut Shared, rule: Rule, peer: &str, remote: IpAddr) {
        let pairs = self.template_flows.entry(rule).or_insert(0);
        *pairs += 1;
        if *pairs > 1 {
            return;
        }
        *self.remotes.entry(rule.selector.remote).or_insert(0) += 1;
        shared.plane.push_rule(rule);
        // Its route went in before its SAs (`install`).
        debug!("template flow {} for {peer} ({remote}) protected", rule.selector);
    }

    /// A pair of a template flow is gone: the last one takes the rule and route with it.
    fn remove_template_flow(&mut self, shared: &mut Shared, rule: Rule) {
        let Some(pairs) = self.template_flows.get_mut(&rule) else { return };
        *pairs -= 1;
        if *pairs > 0 {
            return;
        }
        self.template_flows.remove(&rule);
        shared.plane.remove_rule(&rule);
        // Another flow (another policy, or a different selector) may route the same prefix.
        let remote = rule.selector.remote;
        let flows = self.remotes.get_mut(&remote).map(|n| {
            *n -= 1;
            *n
        });
        if flows == Some(0) {
            self.remotes.remove(&remote);
            self.route_changes.push(RouteChange::Remove(remote));
        }
        debug!("template flow {} no longer protected: its SAs are gone", rule.selector);
    }

    /// Removes the pair whose inbound SPI (ours) is `spi`. Packets waiting for an SA of its
    /// policy are dropped too: their acquire may have reached the engine while this pair
    /// still served the flow (an SA at its hard limit before the engine heard of it), and
    /// the engine ignored it; the next packet raises a fresh one.
    pub fn remove_inbound(&mut self, spi: u32) {
        let shared = self.shared.clone();
        let mut shared = lock(&shared);
        shared.remove_by_inbound_spi(esp::Spi(spi));
        self.held.remove(&spi);
        for policy in self.pairs.iter().filter(|p| p.inbound_spi == spi).map(|p| p.policy) {
            let dropped = shared.plane.abandon_acquire(policy);
            if dropped > 0 {
                info!("{dropped} packet(s) waiting for an SA of {policy} dropped; the next raises a new acquire");
            }
        }
        let removed: Vec<Rule> =
            self.pairs.iter().filter(|p| p.inbound_spi == spi).filter_map(|p| p.template_rule).collect();
        self.pairs.retain(|p| p.inbound_spi != spi);
        for rule in removed {
            self.remove_template_flow(&mut shared, rule);
        }
        drop(shared);
        self.apply_route_changes();
    }

    /// Removes the pairs whose outbound SPIs (the peer's) are `spis`, negotiated on `connection`.
    pub fn remove_outbound(&mut self, connection: ConnectionId, spis: &[u32]) {
        let inbound: Vec<u32> = self
            .pairs
            .iter()
            .filter(|p| {
                p.connection == connection
                    && (spis.contains(&p.outbound_spi)
                        || p.outbound_ah_spi.is_some_and(|s| spis.contains(&s)))
            })
            .map(|p| p.inbound_spi)
            .collect();
        for spi in inbound {
            self.remove_inbound(spi);
        }
    }

    /// Removes every pair negotiated on `connection`.
    pub fn remove_connection(&mut self, connection: ConnectionId) {
        let inbound: Vec<u32> =
            self.pairs.iter().filter(|p| p.connection == connection).map(|p| p.inbound_spi).collect();
        for spi in inbound {
            self.remove_inbound(spi);
        }
        self.heard.remove(&connection);
    }

    /// A negotiation with `remote` failed: drop the packets queued for its policies so the
    /// next packet raises a fresh acquire.
    pub fn abandon(&mut self, engine: &Engine, remote: IpAddr) {
        let config = engine.config();
        let mut shared = lock(&self.shared);
        for (index, policy) in config.policies.iter().enumerate() {
            if config.peers.get(policy.peer).and_then(|p| p.remote_address) == Some(remote) {
                let dropped = shared.plane.abandon_acquire(PolicyIndex(index));
                if dropped > 0 {
                    info!("{dropped} packet(s) waiting for {} dropped", policy.id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The bridge's record of a pair stays small: the outer addresses are the data plane's
    /// (144 bytes while it repeated them; issue 16, memory per branch).
    #[test]
    fn a_pair_record_does_not_repeat_the_data_planes_addresses() {
        let size = size_of::<super::Pair>();
        eprintln!("size_of Pair {size} bytes");
        assert!(size <= 72, "a bridge pair is {size} bytes");
    }
}
