//! Policy lookup (RFC 4301 §4.4): the SPD and the SA pairs installed under its entries (the
//! SAD), indexed the ways the packet paths look them up: outbound by policy entry and flow,
//! inbound by our SPI (ESP's, or AH's for the AH of a pair).

use std::net::{IpAddr, SocketAddr};

use crypto::key_schedule::Spi;
use crypto::{Integrity, SecureRandom};

use super::inbound::{InboundBundle, InboundEntry};
use super::outbound::{OutboundBundle, OutboundEntry};
use super::outcome::Decision;
use crate::sa::ah::{AhParams, InboundAh, OutboundAh};
use crate::sa::esp::{InboundSa, OutboundSa, SaParams};
use crate::sa::{SaError, SaKeys};
use spd::index::SelectorTable;
use spd::keyed::IndexMap;
use spd::{Action, PolicyIndex, Spd};
use spd::{Flow, Selector};

/// Which IPsec protocols a pair uses (`transform esp | ah | ah-esp`), with the AH keys of
/// an AH+ESP bundle.
#[derive(Debug, Clone, Copy)]
pub enum Protocols<'a> {
    /// ESP alone: [`SaPair::inbound`] / [`SaPair::outbound`] are the ESP SAs' keys.
    Esp,
    /// AH alone with this integrity algorithm: [`SaPair::inbound`] / [`SaPair::outbound`]
    /// are the AH SAs' keys (no cipher key, as the IKE engine reports them), and only the
    /// mode, window and limits of [`SaPair::params`] apply.
    Ah(Integrity),
    /// AH outside ESP (RFC 4301 §4.5, transport adjacency): ESP keys in the pair, AH's here.
    AhEsp {
        /// The AH integrity algorithm.
        integrity: Integrity,
        /// Keys for AH packets from the peer, under the AH SPI we chose.
        inbound: SaKeys<'a>,
        /// Keys for AH packets to the peer, under the AH SPI the peer chose.
        outbound: SaKeys<'a>,
    },
}

/// A pair of SAs as the IKE engine negotiated them.
#[derive(Debug, Clone, Copy)]
pub struct SaPair<'a> {
    /// The policy entry it serves.
    pub policy: PolicyIndex,
    /// The negotiated flow, our side as `local` (both directions use it).
    pub selector: Selector,
    /// Algorithms, mode, framing, window, limits (the same both ways).
    pub params: SaParams,
    /// Our gateway address (and port 4500 when UDP-encapsulated).
    pub local: SocketAddr,
    /// The peer's gateway address and port.
    pub remote: SocketAddr,
    /// Keys for packets from the peer, under the SPI we chose.
    pub inbound: SaKeys<'a>,
    /// Keys for packets to the peer, under the SPI the peer chose.
    pub outbound: SaKeys<'a>,
    /// ESP, AH or both.
    pub protocols: Protocols<'a>,
}

/// The SAs of one negotiated pair, built (keys scheduled) before either side of the data
/// plane is touched: the caller installs the inbound half in the [`OpenPlane`](crate::OpenPlane)
/// first, then the outbound half in the [`SealPlane`](crate::SealPlane), each under its own
/// lock and no lock held while keys are scheduled.
pub struct BuiltPair {
    pub(super) outbound: OutboundHalf,
    /// Boxed here, outside either lock, so the inbound table holds a pointer a slot.
    pub(super) inbound: Box<InboundEntry>,
}

/// The outbound half of a [`BuiltPair`], once its inbound half is installed.
pub struct OutboundHalf {
    pub(super) entry: OutboundEntry,
    pub(super) policy: PolicyIndex,
    pub(super) selector: Selector,
}

impl core::fmt::Debug for BuiltPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BuiltPair({} / {:?})", self.inbound.sa.spi(), self.outbound)
    }
}

impl core::fmt::Debug for OutboundHalf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OutboundHalf({}, {}, {})", self.entry.sa.spi(), self.policy, self.selector)
    }
}

impl SaPair<'_> {
    /// Builds the pair's SAs (keys its algorithms); `rng` draws the CBC IV nonce.
    pub fn build(&self, rng: &mut dyn SecureRandom) -> Result<BuiltPair, SaError> {
        let p = &self.params;
        let ah_keys = match self.protocols {
            Protocols::Esp => None,
            Protocols::Ah(integrity) => Some((integrity, self.inbound, self.outbound)),
            Protocols::AhEsp { integrity, inbound, outbound } => Some((integrity, inbound, outbound)),
        };
        if ah_keys.is_some() {
            if p.udp_encapsulated {
                return Err(SaError::AhUdpEncapsulated);
            }
            if !(self.local.is_ipv4() && self.remote.is_ipv4()) {
                return Err(SaError::AhNotIpv4);
            }
        }
        let ah_params = |integrity| AhParams {
            integrity,
            mode: p.mode,
            replay_window: p.replay_window,
            limits: p.limits,
        };
        let with_esp = !matches!(self.protocols, Protocols::Ah(_));
        let outbound = OutboundBundle {
            esp: with_esp.then(|| OutboundSa::new(p, self.outbound, rng)).transpose()?,
            ah: ah_keys.map(|(i, _, keys)| OutboundAh::new(&ah_params(i), keys).map(Box::new)).transpose()?,
        };
        let inbound = InboundBundle {
            esp: with_esp.then(|| InboundSa::new(p, self.inbound)).transpose()?,
            ah: ah_keys.map(|(i, keys, _)| InboundAh::new(&ah_params(i), keys).map(Box::new)).transpose()?,
        };
        let (policy, selector, local, remote) = (self.policy, self.selector, self.local, self.remote);
        let entry = OutboundEntry { sa: outbound, local, remote, inbound_spi: self.inbound.spi, serial: 0 };
        Ok(BuiltPair {
            inbound: Box::new(InboundEntry { sa: inbound, policy, selector, local, remote }),
            outbound: OutboundHalf { entry, policy, selector },
        })
    }
}

/// The SPD and the outbound SAs: the sealing side's databases.
pub(super) struct SealDatabase {
    /// Changed only through [`SealDatabase::spd_mut`], which forgets `last`.
    spd: Spd,
    /// Outbound SAs per policy entry, by selector and installation serial: a template's
    /// thousands of flows are found by the packet's addresses, not by a scan.
    outbound: IndexMap<PolicyIndex, SelectorTable<OutboundEntry>>,
    /// Our inbound SPI of each pair to its outbound SA's policy and serial (displays and
    /// lifetime reports find a pair's outbound half in constant time).
    pairs: IndexMap<Spi, (PolicyIndex, u64)>,
    next_serial: u64,
    /// The last flow decided, its decision and SA slot: the segments of a TSO burst share
    /// their flow, so a burst costs one lookup. Forgotten whenever the SPD or the outbound
    /// SAs change (install, remove, renumber, any SPD edit); a `Protect` whose SA has since
    /// expired is decided again.
    last: Option<(Flow, Decision, usize)>,
}

/// The inbound SAs with their replay windows: the opening side's database.
#[derive(Default)]
pub(super) struct OpenDatabase {
    /// Inbound SA pairs by our SPI (unique: we choose them): the ESP SPI, or the AH SPI
    /// for AH alone. Boxed: the table's every slot is resident (empty ones too, about
    /// 40 % at most loads), and an entry is about 370 bytes against a pointer's 8.
    inbound: IndexMap<Spi, Box<InboundEntry>>,
    /// Our AH SPIs to the key of their pair in `inbound`.
    inbound_ah: IndexMap<Spi, Spi>,
}

impl OpenDatabase {
    /// Installs an inbound half; refused when our SPI (or AH SPI) is taken.
    pub(super) fn install(&mut self, entry: Box<InboundEntry>) -> Result<(), SaError> {
        let spi = entry.sa.spi();
        if self.inbound.contains_key(&spi) {
            return Err(SaError::DuplicateSpi(spi));
        }
        if let Some(ah) = &entry.sa.ah {
            if self.inbound_ah.contains_key(&ah.spi()) {
                return Err(SaError::DuplicateSpi(ah.spi()));
            }
            // AH alone is known by its AH SPI in `inbound` too.
            self.inbound_ah.insert(ah.spi(), spi);
        }
        self.inbound.insert(spi, entry);
        Ok(())
    }

    /// Removes the pair whose inbound SA has our SPI `spi`. Returns false if there is none.
    pub(super) fn remove(&mut self, spi: Spi) -> bool {
        let Some(entry) = self.inbound.remove(&spi) else {
            return false;
        };
        if let Some(ah) = &entry.sa.ah {
            self.inbound_ah.remove(&ah.spi());
        }
        true
    }

    /// The inbound side of [`SealDatabase::renumber`]: the pairs of removed policies go.
    pub(super) fn renumber(&mut self, renumber: &impl Fn(PolicyIndex) -> Option<PolicyIndex>) {
        self.inbound.retain(|_, entry| match renumber(entry.policy) {
            Some(new) => {
                entry.policy = new;
                true
            }
            None => false,
        });
        // AH SPIs of removed AH and AH+ESP pairs.
        let inbound = &self.inbound;
        self.inbound_ah.retain(|_, pair| inbound.contains_key(pair));
    }

    /// The pair with our SPI `spi`.
    #[inline]
    pub(super) fn inbound(&self, spi: Spi) -> Option<&InboundEntry> {
        self.inbound.get(&spi).map(Box::as_ref)
    }

    /// The pair with our SPI `spi`, to open a packet on.
    #[inline]
    pub(super) fn inbound_mut(&mut self, spi: Spi) -> Option<&mut InboundEntry> {
        self.inbound.get_mut(&spi).map(Box::as_mut)
    }

    /// The pair whose AH SA has our SPI `ah_spi`.
    pub(super) fn inbound_by_ah_spi(&mut self, ah_spi: Spi) -> Option<&mut InboundEntry> {
        self.inbound.get_mut(self.inbound_ah.get(&ah_spi)?).map(Box::as_mut)
    }

    /// True when an inbound AH SA has our AH SPI `spi`.
    pub(super) fn knows_ah_spi(&self, spi: Spi) -> bool {
        self.inbound_ah.contains_key(&spi)
    }

    /// Installed inbound pairs.
    pub(super) fn len(&self) -> usize {
        self.inbound.len()
    }
}

impl SealDatabase {
    pub(super) fn new(spd: Spd) -> Self {
        Self { spd, outbound: IndexMap::default(), pairs: IndexMap::default(), next_serial: 0, last: None }
    }

    /// The SPD.
    pub(super) fn spd(&self) -> &Spd {
        &self.spd
    }

    /// The SPD, to change: the cached decision is forgotten.
    pub(super) fn spd_mut(&mut self) -> &mut Spd {
        self.last = None;
        &mut self.spd
    }

    /// [`SealDatabase::decide`] through the one-flow cache (the packet path).
    #[inline]
    pub(super) fn decide_cached(&mut self, flow: &Flow) -> (Decision, usize) {
        if let Some((last, decision, slot)) = self.last {
            let live = match decision {
                Decision::Protect { policy, .. } => {
                    self.outbound_at(policy, slot).is_some_and(|e| !e.sa.is_expired())
                }
                _ => true,
            };
            if last == *flow && live {
                return (decision, slot);
            }
        }
        let (decision, slot) = self.decide(flow);
        self.last = Some((*flow, decision, slot));
        (decision, slot)
    }

    /// Installs the outbound half of a pair under `policy` and `selector`.
    pub(super) fn install(&mut self, policy: PolicyIndex, selector: Selector, mut entry: OutboundEntry) {
        self.last = None;
        self.next_serial += 1;
        entry.serial = self.next_serial;
        self.pairs.insert(entry.inbound_spi, (policy, entry.serial));
        self.outbound.entry(policy).or_default().insert(selector, entry.serial, entry);
    }

    /// Removes the outbound half of the pair whose inbound SA has our SPI `spi`. Returns
    /// false if there is none.
    pub(super) fn remove(&mut self, spi: Spi) -> bool {
        let Some((policy, serial)) = self.pairs.remove(&spi) else {
            return false;
        };
        self.last = None;
        if let Some(table) = self.outbound.get_mut(&policy) {
            table.remove(serial);
        }
        true
    }

    /// Our SPI of the pair whose outbound SA goes to `remote` under the peer's SPI `spi`.
    pub(super) fn inbound_spi_of(&self, remote: IpAddr, spi: Spi) -> Option<Spi> {
        let mut entries = self.outbound.values().flat_map(SelectorTable::iter);
        entries.find(|(_, o)| o.sa.spi() == spi && o.remote.ip() == remote).map(|(_, o)| o.inbound_spi)
    }

    /// See [`DataPlane::renumber_policies`](crate::DataPlane::renumber_policies); returns
    /// how many pairs were removed.
    pub(super) fn renumber(&mut self, renumber: &impl Fn(PolicyIndex) -> Option<PolicyIndex>) -> usize {
        self.last = None;
        let mut removed = 0;
        for (old, mut table) in std::mem::take(&mut self.outbound) {
            match renumber(old) {
                Some(new) => {
                    let target = self.outbound.entry(new).or_default();
                    for (selector, serial, entry) in table.drain() {
                        self.pairs.insert(entry.inbound_spi, (new, serial));
                        target.insert(selector, serial, entry);
                    }
                }
                None => {
                    for (_, _, entry) in table.drain() {
                        self.pairs.remove(&entry.inbound_spi);
                        removed += 1;
                    }
                }
            }
        }
        removed
    }

    /// Slot (in its policy's table) of the outbound SA that would carry `flow` of `policy`
    /// now: the newest unexpired one whose selector covers the flow.
    #[inline]
    fn find_outbound(&self, policy: PolicyIndex, flow: &Flow) -> Option<usize> {
        self.outbound
            .get(&policy)?
            .covering_outbound(flow)
            .filter(|(_, _, o)| !o.sa.is_expired())
            .max_by_key(|(_, serial, _)| *serial)
            .map(|(slot, ..)| slot)
    }

    /// The outbound decision for `flow` and, for `Protect`, the SA's slot in its policy's
    /// table, so the packet path looks the SA up once.
    #[inline]
    pub(super) fn decide(&self, flow: &Flow) -> (Decision, usize) {
        match self.spd.lookup(flow) {
            (_, Action::Bypass) => (Decision::Bypass, 0),
            (_, Action::Discard) => (Decision::Discard, 0),
            (rule, Action::Protect(policy)) => {
                let found = self.find_outbound(policy, flow).and_then(|index| {
                    let entry = self.outbound.get(&policy)?.get(index)?;
                    Some((Decision::Protect { policy, spi: entry.sa.spi() }, index))
                });
                found.unwrap_or_else(|| {
                    // A rule's selector, or for a `Protect` default the packet's own flow
                    // (RFC 4301 §4.4.1.1 "populate from packet").
                    let selector = match rule.and_then(|i| self.spd.rules().get(i)) {
                        Some(r) => r.selector,
                        None => Selector::for_flow(flow),
                    };
                    (Decision::Acquire { policy, rule, selector }, 0)
                })
            }
        }
    }

    /// The outbound pairs of `policy`, oldest first (sorted per call: displays and reports).
    pub(super) fn outbound(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundEntry> {
        let sorted = self.outbound.get(&policy).map(SelectorTable::by_key_order).unwrap_or_default();
        sorted.into_iter().map(|(_, entry)| entry)
    }

    /// The outbound pairs of `policy`, in no particular order (no sorting).
    pub(super) fn outbound_unordered(&self, policy: PolicyIndex) -> impl Iterator<Item = &OutboundEntry> {
        self.outbound.get(&policy).into_iter().flat_map(|t| t.iter().map(|(_, entry)| entry))
    }

    /// The outbound pair in `slot` of `policy`'s table.
    #[inline]
    pub(super) fn outbound_at(&self, policy: PolicyIndex, slot: usize) -> Option<&OutboundEntry> {
        self.outbound.get(&policy)?.get(slot)
    }

    /// The outbound pair in `slot` of `policy`'s table, to seal with.
    #[inline]
    pub(super) fn outbound_mut(&mut self, policy: PolicyIndex, slot: usize) -> Option<&mut OutboundEntry> {
        self.outbound.get_mut(&policy)?.get_mut(slot)
    }

    /// The outbound half of the pair whose inbound SA has our SPI `spi`.
    pub(super) fn outbound_of_pair(&self, spi: Spi) -> Option<&OutboundEntry> {
        let (policy, serial) = self.pairs.get(&spi)?;
        let table = self.outbound.get(policy)?;
        table.get(table.slot_of(*serial)?)
    }

    /// The slot of the unexpired pair installed as `serial` in `policy`'s table.
    pub(super) fn outbound_by_serial(&self, policy: PolicyIndex, serial: u64) -> Option<usize> {
        let table = self.outbound.get(&policy)?;
        table.slot_of(serial).filter(|&slot| table.get(slot).is_some_and(|o| !o.sa.is_expired()))
    }
}
