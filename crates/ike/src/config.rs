//! The engine's typed configuration: what the VRP configuration (`ike proposal`, `ike peer`,
//! `acl`, `ipsec proposal`, `ipsec policy`) means once parsed and validated. The engine trusts
//! it: every reference is resolved and every value is in range.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crypto::{DhGroup, SecretBytes};
use isakmp::Identity;

pub use ike_proposal::{AuthMethod, EncapsulationMode, IkeProposal, IpsecProposal, IpsecProtocols};

/// When we send our certificate in a CERT payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SendCertificate {
    /// In every MM5/MM6/AM2/AM3 (strongSwan's `send_cert = always`). The default: a peer
    /// that has not been given our certificate out of band needs it, and some peers never
    /// send a CR.
    #[default]
    Always,
    /// Only when the peer sent a Certificate Request (`send_cert = ifasked`).
    WhenAsked,
}

/// Certificate authentication material of one `ike peer`: our certificate and key, the CAs
/// (and CRLs) the peer's certificate must chain to, and when to send ours.
pub struct CertificateAuth {
    /// Our certificate, sent in CERT payloads; its subject is our ID_DER_ASN1_DN.
    pub certificate: crypto::LocalCertificate,
    /// Our private key (zeroized by AWS-LC when dropped, never printed).
    pub key: crypto::SigningKey,
    /// The trusted CAs and CRLs for the peer's certificate.
    pub trust: crypto::TrustStore,
    /// When to send our certificate.
    pub send_certificate: SendCertificate,
}

impl std::fmt::Debug for CertificateAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuth")
            .field("subject", &self.certificate.summary().subject)
            .field("key", &self.key)
            .field("trust", &self.trust)
            .field("send_certificate", &self.send_certificate)
            .finish()
    }
}

/// The phase-1 exchange an initiator uses with a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExchangeMode {
    /// Main mode (identity protection, 6 messages).
    #[default]
    Main,
    /// Aggressive mode (3 messages, identities in clear).
    Aggressive,
}

/// A phase-1 identity as configured (`local-id-type`, `ike local-name`, `remote-id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityConfig {
    /// ID_IPV4_ADDR with this address.
    Address(Ipv4Addr),
    /// ID_FQDN.
    Fqdn(String),
    /// ID_USER_FQDN.
    UserFqdn(String),
    /// ID_DER_ASN1_DN. As a remote identity, the DN in text form (`C=CN, O=Example, CN=fw-b`)
    /// the peer's certificate subject must equal; as our own (`local-id-type dn`), we send
    /// our certificate's subject and the text is informational.
    Dn(String),
}

impl IdentityConfig {
    /// True when the identity a peer presented is this one: names compare case-insensitively
    /// (DNS names are case-insensitive, RFC 4343), addresses exactly, and an identity of
    /// another type never matches.
    pub fn matches(&self, presented: &Identity<'_>) -> bool {
        match (self, presented) {
            (Self::Address(a), Identity::Ipv4Addr(b)) => a == b,
            (Self::Fqdn(a), Identity::Fqdn(b)) | (Self::UserFqdn(a), Identity::UserFqdn(b)) => {
                a.as_bytes().eq_ignore_ascii_case(b)
            }
            (Self::Dn(a), Identity::DerAsn1Dn(der)) => {
                crypto::x509::dn_der_to_text(der).is_some_and(|text| crypto::x509::dn_equal(a, &text))
            }
            _ => false,
        }
    }
}

/// One `ike peer`.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The peer's name in the configuration (logs and displays use it).
    pub name: String,
    /// Our address towards this peer (the address of the interface the policy is bound to).
    pub local_address: IpAddr,
    /// The peer's address; `None` for a template peer that only responds.
    pub remote_address: Option<IpAddr>,
    /// Phase-1 exchange when we initiate.
    pub exchange_mode: ExchangeMode,
    /// The `ike-proposal`s offered and accepted, in priority order.
    pub proposals: Vec<IkeProposal>,
    /// The pre-shared key (unused when `site_keys` is not empty).
    pub pre_shared_key: SecretBytes,
    /// Per-site keys (`user-table N` naming an `ike user-table`, as USG's IKE user table):
    /// when not empty, the key of a phase 1 comes from here instead of `pre_shared_key`,
    /// found by the peer's source address in main mode (the key is needed for SKEYID at
    /// MM3/MM4, before any identity is seen) and by the identity in AM1 for an
    /// aggressive-mode responder; a peer found in neither is refused before any work
    /// (`PolicyFailure::NotInUserTable`).
    pub site_keys: Vec<SiteKey>,
    /// Our identity; `None` means ID_IPV4_ADDR of `local_address`.
    pub local_id: Option<IdentityConfig>,
    /// The identity the peer must present; `None` accepts any identity of the configured type
    /// (an address identity must then equal the peer's address).
    pub remote_id: Option<IdentityConfig>,
    /// `nat traversal`: announce NAT-T, exchange NAT-D and float to UDP 4500 when a NAT is
    /// found (RFC 3947). keysteward defaults to on (vrp-cli.md §3, a documented deviation
    /// from VRP8's off): the float happens only when a NAT is detected or the peer floats.
    pub nat_traversal: bool,
    /// `nat traversal force-encapsulation`: with NAT-T, float and UDP-encapsulate ESP even
    /// when no NAT is found. Our NAT-D payload for our own address then carries the hash of
    /// an address no host has (0.0.0.0, port 0), so the peer finds us "behind a NAT" and
    /// floats too, as strongSwan does for `encap = yes` (it sends random bytes there).
    pub force_encapsulation: bool,
    /// `dpd …`: send R-U-THERE when the tunnel is idle (RFC 3706). `None` = off, the VRP
    /// default; R-U-THERE from the peer is answered either way.
    pub dpd: Option<DpdConfig>,
    /// Answer aggressive mode from this peer (when an AM1's identity, or failing that its
    /// address, selects it), whether it authenticates by pre-shared key or by signatures. Off,
    /// an AM1 for this peer is refused without reply and without any work. The permission is
    /// per peer: an AM1 costs the responder a Diffie-Hellman exchange and, with signatures, a
    /// signature, and its answer reflects our certificate to any source address (about 4×
    /// the AM1's size); with a pre-shared key it hands out HASH_R, which can be brute-forced
    /// offline. So only a peer that needs aggressive mode gets it, and the engine's
    /// responder is rate-limited ([`Limits::aggressive_mode_responses_per_second`]). The VRP
    /// layer sets it for an `ike peer` with `exchange-mode aggressive` or `auto`.
    pub accept_aggressive_mode: bool,
    /// Certificate authentication (`authentication-method rsa-signature` and the ECDSA
    /// extension): required when any of `proposals` uses a signature method. Shared, as the
    /// key is not cloneable.
    pub certificate: Option<std::sync::Arc<CertificateAuth>>,
}

/// One user of an `ike user-table`: a site and its pre-shared key.
#[derive(Clone)]
pub struct SiteKey {
    /// Who the site is: `id-type ip A` (its source address in main mode, an ID_IPV4_ADDR
    /// in aggressive mode) or `id-type fqdn|user-fqdn NAME` (aggressive mode's AM1 only).
    pub id: IdentityConfig,
    /// The site's key (zeroized on drop, never printed).
    pub pre_shared_key: SecretBytes,
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteKey").field("id", &self.id).field("pre_shared_key", &"<redacted>").finish()
    }
}

impl PeerConfig {
    /// The site's key in this peer's user table: by `identity` when one is given (the
    /// identity of an AM1), else by `remote`, the source address (main mode). `None` when
    /// the peer has no user table or the site is not in it.
    pub fn site_key(&self, remote: IpAddr, identity: Option<&Identity<'_>>) -> Option<&SecretBytes> {
        let row = match identity {
            Some(identity) => self.site_keys.iter().find(|k| k.id.matches(identity)),
            None => self.site_keys.iter().find(|k| match (&k.id, remote) {
                (IdentityConfig::Address(a), IpAddr::V4(r)) => *a == r,
                _ => false,
            }),
        };
        row.map(|k| &k.pre_shared_key)
    }

    /// The pre-shared key of a phase 1 with `remote` (and, for an aggressive-mode
    /// responder, the identity in AM1): the site's key when the peer has a user table, else
    /// the peer's. A site missing from the table gets an empty key, which never verifies;
    /// the responder refuses such a site before this is asked.
    pub fn pre_shared_key_for(&self, remote: IpAddr, identity: Option<&Identity<'_>>) -> &[u8] {
        if self.site_keys.is_empty() {
            return self.pre_shared_key.expose();
        }
        self.site_key(remote, identity).map_or(&[], SecretBytes::expose)
    }
}

/// Dead peer detection timing (`dpd idle-time`, `dpd retransmit-interval`, `dpd retry-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpdConfig {
    /// Send R-U-THERE after this long without traffic or an authenticated message from the
    /// peer.
    pub idle_time: Duration,
    /// Wait this long for R-U-THERE-ACK before asking again.
    pub retransmit_interval: Duration,
    /// Unanswered R-U-THEREs after the first before the peer is declared dead.
    pub retry_limit: u32,
}

impl Default for DpdConfig {
    /// Huawei's recommended interop values (vrp-cli.md, `dpd` row): idle 30 s, retransmit
    /// 15 s, retry limit 3.
    fn default() -> Self {
        Self {
            idle_time: Duration::from_secs(30),
            retransmit_interval: Duration::from_secs(15),
            retry_limit: 3,
        }
    }
}

/// An IPv4 prefix given as address and mask (VRP ACLs use wildcard masks; the parser turns
/// them into this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// Network address (host bits clear).
    pub address: Ipv4Addr,
    /// Network mask.
    pub mask: Ipv4Addr,
}

impl Subnet {
    /// A prefix from an address and a prefix length; host bits are cleared.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Self {
        let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_len.min(32))) };
        Self { address: Ipv4Addr::from(u32::from(address) & mask), mask: Ipv4Addr::from(mask) }
    }

    /// True when `other` lies inside this prefix.
    pub fn contains(&self, other: &Subnet) -> bool {
        let (mask, other_mask) = (u32::from(self.mask), u32::from(other.mask));
        other_mask & mask == mask && u32::from(other.address) & mask == u32::from(self.address) & mask
    }

    /// True when `address` lies inside this prefix.
    pub fn contains_address(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & u32::from(self.mask) == u32::from(self.address) & u32::from(self.mask)
    }
}

/// One side of a flow: an IPv4 prefix (ID_IPV4_ADDR / ID_IPV4_ADDR_SUBNET) or an inclusive
/// address range (ID_IPV4_ADDR_RANGE, RFC 2407 §4.6.2.1). Ranges come from peers; a range
/// that is exactly a prefix is kept as [`Addresses::Subnet`] (see [`Addresses::range`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// A prefix.
    Subnet(Subnet),
    /// `start..=end`, with `start <= end`.
    Range {
        /// First address.
        start: Ipv4Addr,
        /// Last address.
        end: Ipv4Addr,
    },
}

impl Addresses {
    /// The range `start..=end` (the bounds are put in order), as a prefix when it is exactly
    /// one.
    pub fn range(start: Ipv4Addr, end: Ipv4Addr) -> Self {
        let (a, b) = (u32::from(start).min(u32::from(end)), u32::from(start).max(u32::from(end)));
        let span = b ^ a;
        // A prefix: every differing bit is a trailing host bit, all clear in `a` and set in `b`.
        if span.wrapping_add(1) & span == 0 && a & span == 0 && b & span == span {
            let mask = !span;
            return Self::Subnet(Subnet { address: Ipv4Addr::from(a), mask: Ipv4Addr::from(mask) });
        }
        Self::Range { start: Ipv4Addr::from(a), end: Ipv4Addr::from(b) }
    }

    /// First and last address.
    pub fn bounds(&self) -> (Ipv4Addr, Ipv4Addr) {
        match *self {
            Self::Subnet(s) => {
                let (address, mask) = (u32::from(s.address) & u32::from(s.mask), u32::from(s.mask));
                (Ipv4Addr::from(address), Ipv4Addr::from(address | !mask))
            }
            Self::Range { start, end } => (start, end),
        }
    }

    /// The prefix, when this is one.
    pub fn subnet(&self) -> Option<Subnet> {
        match *self {
            Self::Subnet(s) => Some(s),
            Self::Range { .. } => None,
        }
    }

    /// True when every address of `other` lies inside this set.
    pub fn contains(&self, other: &Addresses) -> bool {
        let ((a, b), (c, d)) = (self.bounds(), other.bounds());
        a <= c && d <= b
    }

    /// True when `address` lies inside.
    pub fn contains_address(&self, address: Ipv4Addr) -> bool {
        let (a, b) = self.bounds();
        a <= address && address <= b
    }
}

impl From<Subnet> for Addresses {
    fn from(subnet: Subnet) -> Self {
        Self::Subnet(subnet)
    }
}

impl PartialEq<Subnet> for Addresses {
    fn eq(&self, other: &Subnet) -> bool {
        *self == Self::Subnet(*other)
    }
}

impl core::fmt::Display for Addresses {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Subnet(s) if s.mask == Ipv4Addr::BROADCAST => write!(f, "{}", s.address),
            Self::Subnet(s) => write!(f, "{}/{}", s.address, u32::from(s.mask).leading_ones()),
            Self::Range { start, end } => write!(f, "{start}-{end}"),
        }
    }
}

/// One permit rule of a policy's ACL, as a flow from our side to the peer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol number, 0 for any.
    pub protocol: u8,
    /// Our side (the ACL rule's source).
    pub local: Addresses,
    /// The peer's side (the ACL rule's destination).
    pub remote: Addresses,
    /// Our side's port (the ACL rule's source port), `None` for any (0 on the wire).
    pub local_port: Option<u16>,
    /// The peer's side's port (the ACL rule's destination port), `None` for any.
    pub remote_port: Option<u16>,
}

impl TrafficSelector {
    /// Everything between two prefixes: any protocol and port.
    pub fn between(local: Subnet, remote: Subnet) -> Self {
        Self { protocol: 0, local: local.into(), remote: remote.into(), local_port: None, remote_port: None }
    }

    /// The same flow seen from the other side.
    pub fn reversed(&self) -> Self {
        Self {
            protocol: self.protocol,
            local: self.remote,
            remote: self.local,
            local_port: self.remote_port,
            remote_port: self.local_port,
        }
    }
}

impl core::fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let side = |f: &mut core::fmt::Formatter<'_>, a: &Addresses, port: Option<u16>| match port {
            Some(p) => write!(f, "{a}:{p}"),
            None => write!(f, "{a}"),
        };
        side(f, &self.local, self.local_port)?;
        f.write_str(" -> ")?;
        side(f, &self.remote, self.remote_port)?;
        if self.protocol != 0 {
            write!(f, " proto {}", self.protocol)?;
        }
        Ok(())
    }
}

/// Identifies a policy entry: `ipsec policy NAME SEQ`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    /// Policy name.
    pub name: String,
    /// Sequence number within the policy.
    pub sequence: u32,
}

impl core::fmt::Display for PolicyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}-{}", self.name, self.sequence)
    }
}

/// One `ipsec policy NAME SEQ isakmp` entry.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// Name and sequence number.
    pub id: PolicyId,
    /// Index of the `ike-peer` in [`Config::peers`].
    pub peer: usize,
    /// The permit rules of the policy's `security acl`, in rule order.
    pub selectors: Vec<TrafficSelector>,
    /// The `proposal`s, in priority order.
    pub proposals: Vec<IpsecProposal>,
    /// `pfs` group, if any. Must match the peer's.
    pub pfs: Option<DhGroup>,
    /// IPsec SA lifetime in time (`sa duration time-based`).
    pub lifetime: Duration,
    /// IPsec SA lifetime in traffic, kilobytes (`sa duration traffic-based`); `None` = no limit.
    pub lifetime_kilobytes: Option<u64>,
    /// Set for an entry made from an `ipsec policy-template` (its flow checks and caps).
    pub template: Option<hub_limits::Template>,
}

/// Timers and limits of the engine (implementation constants, not negotiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// First retransmission after this long; doubles each time.
    pub retransmit_initial: Duration,
    /// Retransmissions before giving up on an exchange.
    pub retransmit_count: u32,
    /// An exchange that has not finished after this long is abandoned; also the lifetime of a
    /// half-open responder SA, which covers an initiator's round trips and retransmissions
    /// (ours after 2, 6, 14, 30 s; strongSwan's after 4, 11, 24, 47 s).
    pub exchange_timeout: Duration,
    /// Bytes that half-open responder IKE SAs (not yet authenticated) may hold together, each
    /// charged what it really keeps (about 1.2 KB after a minimal MM1). A newcomer is never
    /// refused: the oldest half-open SAs are evicted to make room (`Statistics::half_open_evicted`),
    /// since a cap by count or per address lets spoofed MM1s lock real peers out (DESIGN.md,
    /// "Admission"). The default, 22 MiB, holds about 19,000 minimal half-open SAs: under a
    /// flood of 20,000 spoofed MM1/s each still lives about a second, many round trips, and the
    /// daemon grows by less than 32 MB (docs/BENCHMARKS.md, flood benchmark).
    pub half_open_memory_budget: usize,
    /// Largest SA payload of a first message (MM1 / AM1), whose body a half-open SA keeps for
    /// the hashes; larger is refused before any work (`PolicyFailure::SaPayloadTooLarge`).
    /// 16 KiB holds 255 transforms, the most a proposal numbers, with every attribute.
    pub max_first_sa_payload: usize,
    /// Quick modes in progress per IKE SA.
    pub max_quick_modes_per_sa: usize,
    /// IKE fragmentation (Cisco/Microsoft format, `isakmp::fragmentation`): announce the
    /// FRAGMENTATION Vendor ID, accept fragments, and fragment our phase-1 messages when the
    /// peer announced it too.
    pub fragmentation: bool,
    /// Largest phase-1 datagram (UDP payload) sent whole when the peer accepts fragments, and
    /// the largest fragment datagram. 1248 keeps each IPv4 packet within 1280 bytes even with
    /// the 4-byte non-ESP marker on UDP 4500 (strongSwan's default `fragment_size` is 1280).
    pub fragment_size: usize,
    /// Most fragments one message may have (a piece numbered higher discards the message).
    pub max_fragments: u8,
    /// Most bytes one reassembled message may have.
    pub max_reassembly_bytes: usize,
    /// A message whose fragments have not all arrived after this long is dropped.
    pub fragment_timeout: Duration,
    /// First aggressive-mode messages (AM1) the responder answers per second, from all
    /// addresses together (a token bucket holding one second's worth). Main mode does no
    /// Diffie-Hellman before MM3, which only a sender that received our MM2 can send; AM1
    /// costs a Diffie-Hellman exchange and, with signatures, a signature, and its answer
    /// carries our certificate to whatever address the AM1 claims. A flood of spoofed AM1s
    /// beyond this is refused before any work and counted
    /// ([`crate::Statistics::aggressive_mode_rate_limited`]). 0 refuses every AM1.
    pub aggressive_mode_responses_per_second: u32,
    /// The same, per source address: one address (spoofed, or a real peer in a loop) cannot
    /// use the whole budget.
    pub aggressive_mode_responses_per_address: u32,
}

impl Limits {
    /// The fragmentation bounds, as `isakmp::fragmentation` takes them.
    pub fn fragments(&self) -> isakmp::fragmentation::FragmentLimits {
        let (fragment_size, max_fragments) = (self.fragment_size, self.max_fragments);
        let (max_reassembly_bytes, fragment_timeout) = (self.max_reassembly_bytes, self.fragment_timeout);
        isakmp::fragmentation::FragmentLimits {
            fragment_size,
            max_fragments,
            max_reassembly_bytes,
            fragment_timeout,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            retransmit_initial: Duration::from_secs(2),
            retransmit_count: 5,
            exchange_timeout: Duration::from_secs(60),
            half_open_memory_budget: 22 * 1024 * 1024,
            max_first_sa_payload: 16 * 1024,
            max_quick_modes_per_sa: 8,
            fragmentation: true,
            fragment_size: 1248,
            max_fragments: 16,
            max_reassembly_bytes: 64 * 1024,
            fragment_timeout: Duration::from_secs(10),
            // About 2 ms of group-14 DH and 1.5 ms of RSA-2048 each: 50/s stay under a fifth
            // of one core; a real aggressive-mode peer needs one AM1 per phase 1.
            aggressive_mode_responses_per_second: 50,
            aggressive_mode_responses_per_address: 5,
        }
    }
}

/// The whole engine configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// `ike peer`s.
    pub peers: Vec<PeerConfig>,
    /// `ipsec policy` entries bound to interfaces, in sequence order.
    pub policies: Vec<PolicyConfig>,
    /// Timers and limits.
    pub limits: Limits,
    /// The gateway's interface addresses: no branch may claim them through a template.
    pub own_addresses: Vec<IpAddr>,
    /// `undo ipsec sha2 compatible enable`: the IPsec SAs use HMAC-SHA2-256 truncated to 96
    /// bits (older Huawei firmware, strongSwan's `sha256_96`) instead of RFC 4868's 128. The
    /// truncation is not negotiated (the wire says HMAC-SHA2-256 either way): the installed
    /// pair's suite and AH keys carry [`crypto::Integrity::HmacSha256_96`].
    pub sha2_256_truncation_96: bool,
}

/// Why answering aggressive mode with pre-shared keys is dangerous, for the configuration
/// layer's warning when a peer accepts it ([`PeerConfig::accept_aggressive_mode`]) and for
/// the reason of a refused request.
pub const AGGRESSIVE_MODE_PSK_RISK: &str = "an aggressive-mode responder using pre-shared keys \
     sends HASH_R, keyed by the pre-shared key, to anyone who asks with a valid identity; \
     the hash can be taken offline and the key recovered by brute force";

impl Config {
    /// The peer configured for a remote address, for a responder choosing the pre-shared key
    /// before it has seen the (encrypted) identity: in main mode only the address is known.
    pub fn peer_for_address(&self, remote: IpAddr) -> Option<usize> {
        self.peers.iter().position(|p| p.remote_address == Some(remote))
    }

    /// The template peer (the first peer without a remote address, from an `ipsec policy …
    /// isakmp template`): a responder falls back to it for a first message from an address no
    /// peer names, so a hub accepts branches it does not know (vrp-cli.md §2.7). The
    /// pre-shared key and the identity check then decide, as for any peer.
    pub fn template_peer(&self) -> Option<usize> {
        self.peers.iter().position(|p| p.remote_address.is_none())
    }

    /// The peer an aggressive-mode responder uses for a first message from `remote` presenting
    /// `identity` (in clear in AM1, so the key can be chosen by identity, unlike main mode):
    /// the first peer whose `remote-id` matches the identity and whose address, if one is
    /// configured, is `remote`. When none does, the engine falls back to the peer configured
    /// for `remote` (as [`Config::peer_for_address`]), whose `remote-id` is then checked like
    /// main mode's.
    pub fn peer_for_identity(&self, identity: &Identity<'_>, remote: IpAddr) -> Option<usize> {
        self.peers.iter().position(|p| {
            p.remote_address.is_none_or(|a| a == remote)
                && p.remote_id.as_ref().is_some_and(|id| id.matches(identity))
        })
    }

    /// The policies that use peer `peer`.
    pub fn policies_of_peer(&self, peer: usize) -> impl Iterator<Item = (usize, &PolicyConfig)> {
        self.policies.iter().enumerate().filter(move |(_, p)| p.peer == peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_containment() {
        let net = Subnet::new(Ipv4Addr::new(10, 1, 1, 77), 24);
        assert_eq!(net.address, Ipv4Addr::new(10, 1, 1, 0));
        assert!(net.contains(&Subnet::new(Ipv4Addr::new(10, 1, 1, 0), 25)));
        assert!(net.contains(&net));
        assert!(!net.contains(&Subnet::new(Ipv4Addr::new(10, 1, 0, 0), 16)));
        assert!(!net.contains(&Subnet::new(Ipv4Addr::new(10, 1, 2, 0), 24)));
        assert!(net.contains_address(Ipv4Addr::new(10, 1, 1, 200)));
        assert!(Subnet::new(Ipv4Addr::UNSPECIFIED, 0).contains(&net));
    }
}
