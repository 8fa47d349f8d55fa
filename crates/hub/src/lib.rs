//! Hub limits (issue 13, finding 8): what a branch may make through a policy template. The IKE
//! engine (`ike::hub`) gathers what it holds and asks here; docs/DESIGN.md, "Hub limits", has
//! the rules and why.
//!
//! - [`FlowCheck`]: a flow's branch side must not be every address, one of the hub's own
//!   addresses, another peer's flow or another peer's gateway address, unless the ACL rule
//!   that covers it names exactly that destination;
//! - [`Tally`] and [`HubLimits`]: the caps on IPsec SA pairs and flows, per template and per
//!   branch, with a rekey of a flow the branch has (at most two pairs) let through; the IKE SA
//!   caps are counted by the engine and checked with [`HubLimits::ike_sa_cap`].

use core::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// An inclusive range of IPv4 addresses: one side of a flow.
pub type Range = (Ipv4Addr, Ipv4Addr);

/// Caps of a policy template on what its branches make, in total and per peer (a peer is one
/// branch: the identity it authenticated with). Over a cap, a quick mode or phase 1 is
/// refused and reported; what is up is never torn down by a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HubLimits {
    /// IKE SAs of all branches (`sa max ike-sa`).
    pub ike_sas: usize,
    /// IPsec SA pairs of all branches (`sa max ipsec-sa`).
    pub ipsec_sas: usize,
    /// Flows of all branches (`sa max flow`).
    pub flows: usize,
    /// IKE SAs of one branch (`sa max per-peer ike-sa`).
    pub per_peer_ike_sas: usize,
    /// IPsec SA pairs of one branch (`sa max per-peer ipsec-sa`).
    pub per_peer_ipsec_sas: usize,
    /// Flows of one branch (`sa max per-peer flow`).
    pub per_peer_flows: usize,
}

impl Default for HubLimits {
    /// Sized for a hub of 10,000 branches with a few flows each: two IKE SAs per branch while
    /// one is renewed, two pairs per flow while one is rekeyed.
    fn default() -> Self {
        Self {
            ike_sas: 20_000,
            ipsec_sas: 100_000,
            flows: 50_000,
            per_peer_ike_sas: 4,
            per_peer_ipsec_sas: 64,
            per_peer_flows: 32,
        }
    }
}

impl HubLimits {
    /// The IKE SA cap a new IKE SA exceeds, counting it: `branch` of its branch, `total` of
    /// all branches.
    pub fn ike_sa_cap(&self, branch: usize, total: usize) -> Option<(HubLimit, usize)> {
        if branch > self.per_peer_ike_sas {
            Some((HubLimit::PerPeerIkeSas, self.per_peer_ike_sas))
        } else {
            (total > self.ike_sas).then_some((HubLimit::IkeSas, self.ike_sas))
        }
    }
}

/// Which cap of a policy template, by its configuration keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubLimit {
    /// `sa max ike-sa`.
    IkeSas,
    /// `sa max ipsec-sa`.
    IpsecSas,
    /// `sa max flow`.
    Flows,
    /// `sa max per-peer ike-sa`.
    PerPeerIkeSas,
    /// `sa max per-peer ipsec-sa`.
    PerPeerIpsecSas,
    /// `sa max per-peer flow`.
    PerPeerFlows,
}

impl fmt::Display for HubLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IkeSas => "sa max ike-sa",
            Self::IpsecSas => "sa max ipsec-sa",
            Self::Flows => "sa max flow",
            Self::PerPeerIkeSas => "sa max per-peer ike-sa",
            Self::PerPeerIpsecSas => "sa max per-peer ipsec-sa",
            Self::PerPeerFlows => "sa max per-peer flow",
        })
    }
}

/// What a flow proposed through a template conflicts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowConflict {
    /// Its remote side is every address: the hub would send all its traffic to the branch.
    DefaultRoute,
    /// Its remote side contains one of our own addresses.
    OwnAddress(IpAddr),
    /// Its remote side overlaps a flow another peer has installed.
    PeerFlow {
        /// The other peer (its configured name and identity or address).
        peer: String,
        /// Its flow.
        flow: String,
    },
    /// Its remote side contains another peer's gateway address.
    PeerAddress {
        /// The other peer.
        peer: String,
        /// Its address.
        address: IpAddr,
    },
}

impl fmt::Display for FlowConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DefaultRoute => f.write_str("it covers the default route 0.0.0.0/0"),
            Self::OwnAddress(a) => write!(f, "it covers this gateway's own address {a}"),
            Self::PeerFlow { peer, flow } => write!(f, "it overlaps flow {flow} of {peer}"),
            Self::PeerAddress { peer, address } => {
                write!(f, "it covers the gateway address {address} of {peer}")
            }
        }
    }
}

/// A flow a hub refused, for the failure an operator reads.
#[derive(Debug, Clone)]
pub struct FlowRefusal {
    /// The branch: its peer, authenticated identity and address.
    pub branch: String,
    /// The flow it proposed, from our side.
    pub flow: String,
    /// What the flow conflicts with.
    pub conflict: FlowConflict,
    /// The policy entry of the template (`ipsec policy NAME SEQ`).
    pub policy: String,
}

impl fmt::Display for FlowRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flow {} proposed by {} through template policy {} refused: {} (only an ACL rule of the \
             template naming exactly that destination allows it)",
            self.flow, self.branch, self.policy, self.conflict
        )
    }
}

/// A cap a branch reached, for the failure an operator reads.
#[derive(Debug, Clone)]
pub struct LimitRefusal {
    /// The branch: its peer, authenticated identity and address.
    pub branch: String,
    /// Which cap.
    pub limit: HubLimit,
    /// Its value.
    pub max: usize,
    /// The policy entry of the template.
    pub policy: String,
}

impl fmt::Display for LimitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} refused: template policy {} reached its cap ({} {})",
            self.branch, self.policy, self.limit, self.max
        )
    }
}

/// One IKE SA's peer as the checks see it: a branch is its configured peer and the identity it
/// authenticated with (or, before that, its address).
#[derive(Debug, Clone, Copy)]
pub struct Branch<'a> {
    /// Index of its configured peer.
    pub peer: usize,
    /// Phase 1 is complete.
    pub established: bool,
    /// The identity it authenticated with: its kind (`FQDN`, `IP`…) and value.
    pub identity: Option<(&'a str, &'a str)>,
    /// Its gateway address.
    pub remote: IpAddr,
}

impl Branch<'_> {
    /// True for the same branch: the same configured peer and identity (else address).
    pub fn same(&self, other: &Branch<'_>) -> bool {
        self.peer == other.peer
            && match (self.identity, other.identity) {
                (Some(x), Some(y)) => x == y,
                _ => self.remote == other.remote,
            }
    }

    /// The branch for operator text, with its configured peer's `name`.
    pub fn describe(&self, name: &str) -> String {
        match self.identity {
            Some((kind, value)) => {
                format!("peer {name} ({} {value} at {})", kind.to_lowercase(), self.remote)
            }
            None => format!("peer {name} ({})", self.remote),
        }
    }
}

fn contains(side: Range, address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(a) if side.0 <= a && a <= side.1)
}

/// The conflicts of one proposed flow, found as the engine shows it what it holds.
#[derive(Debug)]
pub struct FlowCheck {
    remote: Range,
    /// The ACL rule covering the flow names exactly its destination: nothing conflicts.
    explicit: bool,
    conflict: Option<FlowConflict>,
}

impl FlowCheck {
    /// Starts the check of a flow whose branch side is `remote`, with the hub's own
    /// addresses `ours`.
    pub fn new(remote: Range, explicit: bool, ours: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut conflict = None;
        if !explicit && remote == (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST) {
            conflict = Some(FlowConflict::DefaultRoute);
        } else if let Some(address) = ours.into_iter().filter(|_| !explicit).find(|a| contains(remote, *a)) {
            conflict = Some(FlowConflict::OwnAddress(address));
        }
        Self { remote, explicit, conflict }
    }

    /// True while another peer's SAs still need looking at.
    pub fn open(&self) -> bool {
        !self.explicit && self.conflict.is_none()
    }

    /// Another, authenticated peer's gateway address (`peer` describes it).
    pub fn other_peer(&mut self, address: IpAddr, peer: impl FnOnce() -> String) {
        if self.open() && contains(self.remote, address) {
            self.conflict = Some(FlowConflict::PeerAddress { peer: peer(), address });
        }
    }

    /// A flow another peer has, with branch side `remote` (`describe` names the peer and flow).
    pub fn other_flow(&mut self, remote: Range, describe: impl FnOnce() -> (String, String)) {
        if self.open() && self.remote.0 <= remote.1 && remote.0 <= self.remote.1 {
            let (peer, flow) = describe();
            self.conflict = Some(FlowConflict::PeerFlow { peer, flow });
        }
    }

    /// The conflict found, if any.
    pub fn conflict(self) -> Option<FlowConflict> {
        self.conflict
    }
}

/// What the proposing branch and the whole template hold under the template's policy.
#[derive(Debug, Default)]
pub struct Tally {
    template_pairs: usize,
    template_flows: usize,
    branch_pairs: usize,
    branch_flows: usize,
    /// The branch's pairs for exactly the proposed flow (a rekey when not zero).
    branch_same_flow: usize,
}

impl Tally {
    /// One pair under the template's policy: the branch's own (`mine`), for the proposed flow
    /// (`same_flow`), replaced by a rekey (`replaced`).
    pub fn pair(&mut self, mine: bool, same_flow: bool, replaced: bool) {
        self.template_pairs += 1;
        self.template_flows += usize::from(!replaced);
        if mine {
            self.branch_pairs += 1;
            self.branch_flows += usize::from(!replaced);
            self.branch_same_flow += usize::from(same_flow);
        }
    }

    /// The pairs under the template's policy that other IKE SAs hold (`flows` of them not
    /// replaced), whoever's they are: [`Tally::branch_pair`] adds the branch's among them.
    pub fn others(&mut self, pairs: usize, flows: usize) {
        self.template_pairs += pairs;
        self.template_flows += flows;
    }

    /// One pair of another IKE SA of the same branch, already counted by [`Tally::others`].
    pub fn branch_pair(&mut self, same_flow: bool, replaced: bool) {
        self.branch_pairs += 1;
        self.branch_flows += usize::from(!replaced);
        self.branch_same_flow += usize::from(same_flow);
    }

    /// The first cap one more pair for the proposed flow would exceed.
    pub fn exceeded(&self, limits: &HubLimits) -> Option<(HubLimit, usize)> {
        let rekey = self.branch_same_flow > 0;
        if !rekey && self.branch_flows >= limits.per_peer_flows {
            return Some((HubLimit::PerPeerFlows, limits.per_peer_flows));
        }
        if !rekey && self.template_flows >= limits.flows {
            return Some((HubLimit::Flows, limits.flows));
        }
        if rekey && self.branch_same_flow < 2 {
            return None;
        }
        if self.branch_pairs >= limits.per_peer_ipsec_sas {
            return Some((HubLimit::PerPeerIpsecSas, limits.per_peer_ipsec_sas));
        }
        (self.template_pairs >= limits.ipsec_sas).then_some((HubLimit::IpsecSas, limits.ipsec_sas))
    }
}

/// An IKE SA's installed pairs: `(policy index, flow, replaced by a rekey)`.
pub type Pairs<'a, 'f, F> = &'a mut dyn Iterator<Item = (usize, &'f F, bool)>;

/// The SAs a hub holds, as the checks see them: each IKE SA's branch and its installed pairs.
/// The engine lends its own (`F` is its flow type). The checks ask through the three methods
/// after [`Holdings::each`], whose defaults walk every SA; a holder with indices answers them
/// without the walk, so a check costs the same with 100 branches or 100,000.
pub trait Holdings<F: Flow> {
    /// Calls `f` with each IKE SA and its installed pairs.
    fn each(&self, f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, F>));

    /// The pairs under policy entry `policy` of all the SAs, and how many of them are not
    /// replaced by a rekey (the flows).
    fn policy_totals(&self, policy: usize) -> (usize, usize) {
        let (mut pairs, mut flows) = (0, 0);
        self.each(&mut |_, held| {
            for (_, _, replaced) in held.filter(|pair| pair.0 == policy) {
                pairs += 1;
                flows += usize::from(!replaced);
            }
        });
        (pairs, flows)
    }

    /// The established IKE SAs of configured peer `peer`.
    fn established(&self, peer: usize) -> usize {
        let mut count = 0;
        self.each(&mut |sa, _| count += usize::from(sa.peer == peer && sa.established));
        count
    }

    /// Calls `f`, in the order of [`Holdings::each`], with at least every SA that is `me`'s
    /// branch ([`Branch::same`]) and, given `remote`, every established SA whose gateway
    /// address lies in `remote` and every SA with a pair whose branch side overlaps it.
    fn each_near(
        &self,
        me: &Branch<'_>,
        remote: Option<Range>,
        f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, F>),
    ) {
        let _ = (me, remote);
        self.each(f)
    }
}

/// A flow type: what the checks need of one.
pub trait Flow: PartialEq + fmt::Display {
    /// The branch's side, as a range.
    fn remote(&self) -> Range;
}

/// What a policy template adds to its policy entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The caps (`sa max …` in the template's view).
    pub limits: HubLimits,
    /// Per selector of the entry (same index): its ACL rule writes the destination as an
    /// address, not `any`, so a branch may propose exactly that destination even when it
    /// conflicts.
    pub explicit_destinations: Vec<bool>,
}

/// A flow a branch proposed through a template's policy entry.
pub struct Proposal<'a, F> {
    /// The entry's index (pairs are counted under it) and its name (`ipsec policy NAME SEQ`).
    pub policy: (usize, String),
    /// The flow.
    pub flow: &'a F,
    /// The first ACL rule covering it names exactly its destination.
    pub explicit: bool,
    /// The template's caps.
    pub limits: HubLimits,
}

/// Why a branch is refused.
#[derive(Debug, Clone)]
pub enum Refusal {
    /// A flow that conflicts.
    Flow(Box<FlowRefusal>),
    /// A cap reached.
    Limit(Box<LimitRefusal>),
}

/// Checks a proposed flow of branch `me` (holding the pairs `mine`) against the hub's own
/// addresses `ours` and what the other IKE SAs hold (`names` gives a configured peer's name):
/// conflicts first, then the caps.
pub fn admit_flow<F: Flow>(
    p: &Proposal<'_, F>,
    me: &Branch<'_>,
    names: &dyn Fn(usize) -> String,
    ours: impl IntoIterator<Item = IpAddr>,
    mine: Pairs<'_, '_, F>,
    others: Option<&dyn Holdings<F>>,
) -> Result<(), Refusal> {
    let mut check = FlowCheck::new(p.flow.remote(), p.explicit, ours);
    let mut tally = Tally::default();
    for (_, flow, replaced) in mine.filter(|pair| pair.0 == p.policy.0) {
        tally.pair(true, flow == p.flow, replaced);
    }
    let describe = |b: &Branch<'_>| b.describe(&names(b.peer));
    others.into_iter().for_each(|others| {
        let (pairs, flows) = others.policy_totals(p.policy.0);
        tally.others(pairs, flows);
        others.each_near(me, Some(p.flow.remote()), &mut |sa, pairs| {
            let mine = sa.same(me);
            // Authenticated peers only: a spoofed first message must not block a branch's flow.
            if !mine && sa.established && sa.remote != me.remote {
                check.other_peer(sa.remote, || describe(sa));
            }
            for (policy, flow, replaced) in pairs {
                if !mine {
                    check.other_flow(flow.remote(), || (describe(sa), flow.to_string()));
                } else if policy == p.policy.0 {
                    tally.branch_pair(flow == p.flow, replaced);
                }
            }
        });
    });
    let (branch, policy) = (describe(me), p.policy.1.clone());
    if let Some(conflict) = check.conflict() {
        return Err(Refusal::Flow(Box::new(FlowRefusal {
            branch,
            flow: p.flow.to_string(),
            conflict,
            policy,
        })));
    }
    match tally.exceeded(&p.limits) {
        Some((limit, max)) => Err(Refusal::Limit(Box::new(LimitRefusal { branch, limit, max, policy }))),
        None => Ok(()),
    }
}

/// Checks that a phase 1 just completed with `me` keeps the IKE SA caps `limits` of the
/// template entry `policy` of its peer.
pub fn admit_ike_sa<F: Flow>(
    limits: &HubLimits,
    policy: String,
    me: &Branch<'_>,
    names: &dyn Fn(usize) -> String,
    others: &dyn Holdings<F>,
) -> Result<(), Refusal> {
    let (total, mut branch) = (1 + others.established(me.peer), 1);
    others.each_near(me, None, &mut |sa, _| {
        branch += usize::from(sa.peer == me.peer && sa.established && sa.same(me))
    });
    let Some((limit, max)) = limits.ike_sa_cap(branch, total) else { return Ok(()) };
    Err(Refusal::Limit(Box::new(LimitRefusal { branch: me.describe(&names(me.peer)), limit, max, policy })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(a: [u8; 4], b: [u8; 4]) -> Range {
        (Ipv4Addr::from(a), Ipv4Addr::from(b))
    }

    #[test]
    fn conflicts_unless_named() {
        let all = range([0; 4], [255; 4]);
        assert_eq!(FlowCheck::new(all, false, []).conflict(), Some(FlowConflict::DefaultRoute));
        assert_eq!(FlowCheck::new(all, true, []).conflict(), None);
        let net = range([10, 1, 0, 0], [10, 1, 255, 255]);
        let own = IpAddr::from([10, 1, 2, 3]);
        assert_eq!(FlowCheck::new(net, false, [own]).conflict(), Some(FlowConflict::OwnAddress(own)));
        let mut check = FlowCheck::new(net, false, [IpAddr::from([192, 0, 2, 1])]);
        check.other_flow(range([10, 2, 0, 0], [10, 2, 0, 255]), || unreachable!("no overlap"));
        check.other_flow(range([10, 1, 7, 0], [10, 1, 7, 255]), || ("peer b".into(), "x".into()));
        check.other_peer(own, || unreachable!("a conflict is already found"));
        assert_eq!(
            check.conflict(),
            Some(FlowConflict::PeerFlow { peer: "peer b".into(), flow: "x".into() })
        );
    }

    /// A flow: its branch side only.
    #[derive(PartialEq)]
    struct Side(Range);

    impl fmt::Display for Side {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}-{}", self.0 .0, self.0 .1)
        }
    }

    impl Flow for Side {
        fn remote(&self) -> Range {
            self.0
        }
    }

    /// A holder with indices: 100,000 other branches, each with a /32 under policy 0, known
    /// only through the totals and the near SAs, never walked.
    struct Indexed {
        near: Vec<(Branch<'static>, Side)>,
    }

    impl Holdings<Side> for Indexed {
        fn each(&self, _: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, Side>)) {
            panic!("a check walked every SA");
        }
        fn policy_totals(&self, _: usize) -> (usize, usize) {
            (100_000, 100_000)
        }
        fn established(&self, _: usize) -> usize {
            100_000
        }
        fn each_near(
            &self,
            _: &Branch<'_>,
            _: Option<Range>,
            f: &mut dyn FnMut(&Branch<'_>, Pairs<'_, '_, Side>),
        ) {
            for (branch, side) in &self.near {
                f(branch, &mut std::iter::once((0, side, false)));
            }
        }
    }

    /// Before issue 16 the checks walked every IKE SA of the hub for each quick mode and each
    /// phase 1: on a hub of 100,000 branches, 100,000 visits per handshake.
    #[test]
    fn checks_ask_the_holder_and_never_walk_every_sa() {
        let gateway = |last: u8| IpAddr::from([198, 18, 0, last]);
        let me =
            Branch { peer: 0, established: true, identity: Some(("IP", "198.18.0.1")), remote: gateway(1) };
        let other = Branch { identity: Some(("IP", "198.18.0.2")), remote: gateway(2), ..me };
        let holder = Indexed { near: vec![(other, Side(range([10, 0, 0, 2], [10, 0, 0, 2])))] };
        let limits =
            HubLimits { ipsec_sas: 200_000, flows: 200_000, ike_sas: 200_000, ..HubLimits::default() };
        let names = |_: usize| "branches".to_owned();
        let free = Side(range([10, 0, 0, 1], [10, 0, 0, 1]));
        let proposal = Proposal { policy: (0, "hub 10".into()), flow: &free, explicit: false, limits };
        let mine = &mut std::iter::empty();
        assert!(admit_flow(&proposal, &me, &names, [], mine, Some(&holder)).is_ok());
        let taken = Side(range([10, 0, 0, 2], [10, 0, 0, 2]));
        let conflict = Proposal { flow: &taken, policy: proposal.policy.clone(), ..proposal };
        let refused = admit_flow(&conflict, &me, &names, [], &mut std::iter::empty(), Some(&holder));
        assert!(matches!(refused, Err(Refusal::Flow(_))), "the near SA's flow conflicts");
        let full = Proposal { limits: HubLimits { flows: 100_000, ..limits }, ..proposal };
        let capped = admit_flow(&full, &me, &names, [], &mut std::iter::empty(), Some(&holder));
        assert!(
            matches!(capped, Err(Refusal::Limit(ref l)) if l.limit == HubLimit::Flows),
            "the totals count"
        );
        assert!(admit_ike_sa(&limits, "hub 10".into(), &me, &names, &holder).is_ok());
        let ike_capped = HubLimits { ike_sas: 100_000, ..limits };
        assert!(admit_ike_sa(&ike_capped, "hub 10".into(), &me, &names, &holder).is_err());
    }

    #[test]
    fn caps_let_a_rekey_through() {
        let limits = HubLimits { per_peer_flows: 1, per_peer_ipsec_sas: 2, ..HubLimits::default() };
        let mut tally = Tally::default();
        assert_eq!(tally.exceeded(&limits), None);
        tally.pair(true, false, false);
        assert_eq!(tally.exceeded(&limits), Some((HubLimit::PerPeerFlows, 1)));
        let mut rekey = Tally::default();
        rekey.pair(true, true, false);
        rekey.pair(true, false, false);
        assert_eq!(rekey.exceeded(&limits), None, "a rekey of a flow the branch has");
        rekey.pair(true, true, true);
        assert_eq!(rekey.exceeded(&limits), Some((HubLimit::PerPeerIpsecSas, 2)));
        assert_eq!(limits.ike_sa_cap(5, 5), Some((HubLimit::PerPeerIkeSas, 4)));
        assert_eq!(limits.ike_sa_cap(1, 20_001), Some((HubLimit::IkeSas, 20_000)));
        assert_eq!(limits.ike_sa_cap(4, 20_000), None);
    }
}
