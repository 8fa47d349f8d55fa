//! NAT traversal for IKEv1 (RFC 3947, RFC 3948): NAT discovery, the float to UDP 4500, NAT
//! keepalives and the NAT-OA payloads of quick mode.
//!
//! * NAT-D (RFC 3947 §3.2): when both sides announced NAT-T (see [`crate::vendor`]), MM3 and
//!   MM4 (AM2 and AM3) carry `HASH(CKY-I | CKY-R | IP | Port)` with the negotiated hash, first
//!   for the peer's address (the destination), then for ours (the source). A receiver whose
//!   own address does not hash to the first payload is behind a NAT; one for which the peer's
//!   address hashes to none of the others knows the peer is.
//! * Float (RFC 3947 §4): if either side is behind a NAT, the initiator moves to UDP 4500 for
//!   MM5 (AM3) and everything after. A responder follows a peer that floats even when it saw
//!   no NAT itself: strongSwan with userspace ESP fakes its own NAT-D to force UDP
//!   encapsulation (strongswan-peer.md), so "no NAT here" does not mean "no float".
//! * On UDP 4500 every IKE message carries a 4-byte zero non-ESP marker (RFC 3948 §2.2). The
//!   daemon strips it before [`crate::Engine::handle_datagram`] and adds it when a
//!   [`crate::Transmit`] says `non_esp_marker`.
//! * The peer's address and port are taken from authenticated messages once NAT-T is in use
//!   (RFC 3947 §5.2 asks to follow a NAT that rebinds the port).
//! * Keepalives (RFC 3948 §2.3, §4): the side behind a NAT sends a 1-byte 0xFF datagram on UDP
//!   4500 every [`KEEPALIVE_INTERVAL`] so that the NAT keeps its mapping.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crypto::{HashAlgorithm, HashFunction};
use isakmp::{Cookie, NatDiscovery, NatOriginalAddress, Payload};

use isakmp::capabilities::NatTVersion;

/// The IKE and ESP-in-UDP port after the float (RFC 3947 §4, RFC 3948 §2).
pub const NAT_T_PORT: u16 = 4500;

/// How often the side behind a NAT sends a keepalive (RFC 3948 §4 suggests 20 s).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// The NAT keepalive datagram (RFC 3948 §2.3).
pub const KEEPALIVE: [u8; 1] = [0xff];

/// NAT-T state of one IKE SA.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NatState {
    /// The dialect both announced, if any: NAT-D is exchanged only then.
    pub(crate) version: Option<NatTVersion>,
    /// Our own address was rewritten on the way to the peer.
    pub(crate) local_behind_nat: bool,
    /// The peer's address was rewritten on the way to us (or the peer claims so).
    pub(crate) remote_behind_nat: bool,
    /// `nat traversal force-encapsulation`: float as if a NAT were found, and make the peer
    /// find one (see [`our_discovery_hashes`]).
    pub(crate) forced: bool,
    /// The IKE SA runs on UDP 4500: ESP is UDP-encapsulated.
    pub(crate) floated: bool,
    /// When the next keepalive is due, while we are behind a NAT and have floated.
    pub(crate) next_keepalive: Option<Instant>,
}

impl NatState {
    /// A NAT was found on either side: the initiator floats.
    pub(crate) fn detected(&self) -> bool {
        self.local_behind_nat || self.remote_behind_nat || self.forced
    }

    /// The NAT-T dialect in use for UDP-encapsulated ESP, once floated.
    pub(crate) fn encapsulation(&self) -> Option<NatTVersion> {
        self.version.filter(|_| self.floated)
    }

    /// Records that the SA now runs on UDP 4500, and starts keepalives if we are behind a NAT.
    pub(crate) fn float(&mut self, now: Instant) {
        self.floated = true;
        if self.local_behind_nat && self.next_keepalive.is_none() {
            self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
        }
    }

    /// True when a keepalive is due at `now`; schedules the next.
    pub(crate) fn keepalive_due(&mut self, now: Instant) -> bool {
        match self.next_keepalive {
            Some(at) if at <= now => {
                self.next_keepalive = Some(now + KEEPALIVE_INTERVAL);
                true
            }
            _ => false,
        }
    }
}

/// `HASH(CKY-I | CKY-R | IP | Port)` (RFC 3947 §3.2) with the negotiated hash (not the PRF).
pub(crate) fn discovery_hash(
    hash: HashAlgorithm,
    cookie_i: Cookie,
    cookie_r: Cookie,
    addr: SocketAddr,
) -> Vec<u8> {
    let port = addr.port().to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => hash.digest(&[&cookie_i.0, &cookie_r.0, &ip.octets(), &port]).to_vec(),
        IpAddr::V6(ip) => hash.digest(&[&cookie_i.0, &cookie_r.0, &ip.octets(), &port]).to_vec(),
    }
}

/// The two NAT-D hashes we send, in RFC 3947 §3.2 order: the peer's address (destination)
/// first, then ours (source). When `forced`, the source hash is that of 0.0.0.0 port 0, an
/// address no datagram comes from: the peer finds us behind a NAT and floats (forced UDP
/// encapsulation; strongSwan sends random bytes there for `encap = yes`).
pub(crate) fn our_discovery_hashes(
    hash: HashAlgorithm,
    cookies: (Cookie, Cookie),
    local: SocketAddr,
    remote: SocketAddr,
    forced: bool,
) -> [Vec<u8>; 2] {
    let (cookie_i, cookie_r) = cookies;
    let source = if forced { SocketAddr::from(([0, 0, 0, 0], 0)) } else { local };
    [discovery_hash(hash, cookie_i, cookie_r, remote), discovery_hash(hash, cookie_i, cookie_r, source)]
}

/// NAT-D payloads over `hashes`, under the dialect's payload number.
pub(crate) fn discovery_payloads(version: NatTVersion, hashes: &[Vec<u8>; 2]) -> [Payload<'_>; 2] {
    let draft = version.is_draft();
    [
        Payload::NatDiscovery(NatDiscovery { draft, hash: &hashes[0] }),
        Payload::NatDiscovery(NatDiscovery { draft, hash: &hashes[1] }),
    ]
}

/// What the peer's NAT-D payloads say: `(we are behind a NAT, the peer is)`. `local` and
/// `remote` are the addresses of the datagram as we received it. `None` when the peer sent
/// fewer than two NAT-D payloads (then it does not do NAT-T after all, and nothing floats).
pub(crate) fn detect(
    payloads: &[Payload<'_>],
    hash: HashAlgorithm,
    cookie_i: Cookie,
    cookie_r: Cookie,
    local: SocketAddr,
    remote: SocketAddr,
) -> Option<(bool, bool)> {
    let mut hashes = payloads.iter().filter_map(|p| match p {
        Payload::NatDiscovery(d) => Some(d.hash),
        _ => None,
    });
    let destination = hashes.next()?;
    let sources: Vec<&[u8]> = hashes.collect();
    if sources.is_empty() {
        return None;
    }
    // Public values of the peer's choice: a plain comparison leaks nothing secret.
    let ours = discovery_hash(hash, cookie_i, cookie_r, local);
    let theirs = discovery_hash(hash, cookie_i, cookie_r, remote);
    Some((destination != ours.as_slice(), !sources.contains(&theirs.as_slice())))
}

/// The NAT-OA payloads of quick mode for transport mode behind a NAT (RFC 3947 §5.2): the
/// initiator's original address (NAT-OAi), then the responder's (NAT-OAr), each as the sender
/// of the payload sees it.
pub(crate) fn original_addresses(
    version: NatTVersion,
    initiator: IpAddr,
    responder: IpAddr,
) -> [Payload<'static>; 2] {
    let draft = version.is_draft();
    [
        Payload::NatOriginalAddress(NatOriginalAddress { draft, address: initiator }),
        Payload::NatOriginalAddress(NatOriginalAddress { draft, address: responder }),
    ]
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)), port)
    }

    #[test]
    fn detects_each_side() {
        let (ci, cr) = (Cookie([1; 8]), Cookie([2; 8]));
        let h = HashAlgorithm::Sha256;
        let (a, b) = (addr(1, 500), addr(2, 500));
        let sent = our_discovery_hashes(h, (ci, cr), a, b, false);
        let payloads = discovery_payloads(NatTVersion::Rfc3947, &sent);
        assert_eq!(detect(&payloads, h, ci, cr, b, a), Some((false, false)));
        // A NAT rewrote a's port: b sees the datagram from another source.
        assert_eq!(detect(&payloads, h, ci, cr, b, addr(1, 31_000)), Some((false, true)));
        // a's packet was sent to an address that is not b's: b is behind a NAT.
        assert_eq!(detect(&payloads, h, ci, cr, addr(2, 4500), a), Some((true, false)));
        assert_eq!(detect(&payloads[..1], h, ci, cr, b, a), None);
        assert_eq!(detect(&[], h, ci, cr, b, a), None);
        // Forced encapsulation: with no NAT at all, b finds a behind one.
        let forced = our_discovery_hashes(h, (ci, cr), a, b, true);
        let payloads = discovery_payloads(NatTVersion::Rfc3947, &forced);
        assert_eq!(detect(&payloads, h, ci, cr, b, a), Some((false, true)));
    }

    #[test]
    fn keepalives_only_behind_nat() {
        let now = crate::tests::util::epoch();
        let mut state = NatState { version: Some(NatTVersion::Rfc3947), ..NatState::default() };
        state.float(now);
        assert!(!state.keepalive_due(now + KEEPALIVE_INTERVAL));
        let mut behind = NatState { local_behind_nat: true, ..state };
        behind.next_keepalive = None;
        behind.float(now);
        assert!(!behind.keepalive_due(now));
        assert!(behind.keepalive_due(now + KEEPALIVE_INTERVAL));
        assert_eq!(behind.next_keepalive, Some(now + 2 * KEEPALIVE_INTERVAL));
    }
}
