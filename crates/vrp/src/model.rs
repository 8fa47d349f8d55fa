//! The typed configuration: what the `ike` engine and the `esp` data plane consume.
//!
//! Plain data, one struct per VRP view (reference `vrp-cli.md` §2). Every field holds the
//! value in force, so a setting the file leaves out carries the project default of §3
//! ("project default" column): AES-256 / SHA2-256 / group 14 / pre-share / 86400 s for IKE,
//! ESP / tunnel / SHA2-256 / AES-256 / 3600 s for IPsec, main mode, IKEv1 and IKEv2 enabled
//! on a new peer (as on the device; `check` warns because keysteward speaks IKEv1 only).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::algorithm::{
    AuthenticationMethod, DhGroup, DpdMessageOrder, DpdType, EncapsulationMode, EspCipher, ExchangeMode,
    HashAlgorithm, IdType, Integrity, PfsGroup, Phase1Cipher, Transform, TriggerMode,
};
use crate::secret::PreSharedKey;

/// IKE SA lifetime when a proposal has no `sa duration` (§2.2).
pub const DEFAULT_IKE_SA_DURATION: u32 = 86_400;
/// IPsec SA lifetime in seconds when neither the policy nor `ipsec sa global-duration` set one.
pub const DEFAULT_IPSEC_SA_SECONDS: u32 = 3_600;
/// IPsec SA lifetime in kilobytes by default (AR/VRP8 value, §3).
pub const DEFAULT_IPSEC_SA_KILOBYTES: u64 = 1_843_200;
/// Static route preference by default.
pub const DEFAULT_ROUTE_PREFERENCE: u8 = 60;
/// DPD idle time by default (Huawei's recommended interop value, §2.3).
pub const DEFAULT_DPD_IDLE_TIME: u32 = 30;
/// DPD retransmit interval by default.
pub const DEFAULT_DPD_RETRANSMIT_INTERVAL: u32 = 15;
/// DPD retry limit by default.
pub const DEFAULT_DPD_RETRY_LIMIT: u32 = 3;

/// Largest phase-1 datagram sent whole by default (`ike fragmentation max-size`).
pub const DEFAULT_FRAGMENT_MAX_SIZE: u32 = 1248;

/// IKE fragmentation (Cisco/Microsoft format, as strongSwan's `fragmentation = yes`): a
/// keysteward extension in VRP style, since certificates make phase-1 messages exceed common
/// MTUs. On by default; it is used only with a peer that announces it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeFragmentation {
    /// Announce and use fragmentation (`undo ike fragmentation` turns it off).
    pub enabled: bool,
    /// Largest phase-1 datagram (UDP payload) sent whole, and the largest fragment.
    pub max_size: u32,
}

impl Default for IkeFragmentation {
    fn default() -> Self {
        Self { enabled: true, max_size: DEFAULT_FRAGMENT_MAX_SIZE }
    }
}

/// A whole gateway configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `sysname`: the device name, also the fallback for `ike local-name`.
    pub sysname: Option<String>,
    /// `ike local-name`: the local FQDN identity.
    pub ike_local_name: Option<String>,
    /// Global `ike dpd …` defaults.
    pub ike_dpd: GlobalDpd,
    /// `ike fragmentation [max-size N]` / `undo ike fragmentation` (keysteward extension).
    pub ike_fragmentation: IkeFragmentation,
    /// `ike proposal N`, by priority (smaller first).
    pub ike_proposals: BTreeMap<u32, IkeProposal>,
    /// `ike peer NAME`.
    pub ike_peers: BTreeMap<String, IkePeer>,
    /// `ike user-table N`: per-site pre-shared keys for a template's peer (USG's IKE user
    /// table), by table number.
    pub ike_user_tables: BTreeMap<u32, UserTable>,
    /// Advanced ACLs `acl number 3000-3999`.
    pub acls: BTreeMap<u16, Acl>,
    /// `ipsec proposal NAME`.
    pub ipsec_proposals: BTreeMap<String, IpsecProposal>,
    /// `ipsec policy-template NAME SEQ`, by name then sequence.
    pub policy_templates: BTreeMap<String, BTreeMap<u32, PolicySettings>>,
    /// `ipsec policy NAME SEQ …`, by group name then sequence.
    pub ipsec_policies: BTreeMap<String, BTreeMap<u32, PolicyEntry>>,
    /// `ipsec sa global-duration`.
    pub ipsec_global_duration: GlobalDuration,
    /// `ipsec fail-closed keep` (keysteward extension): an orderly shutdown keeps the
    /// fail-closed routes of the protected prefixes, so their traffic stays blocked while the
    /// daemon is stopped; without it, only a crash or a kill leaves them.
    pub ipsec_fail_closed_keep: bool,
    /// `undo ipsec sha2 compatible enable`: HMAC-SHA2-256 for ESP and AH truncated to 96
    /// bits, as older Huawei firmware does, instead of RFC 4868's 128 (the default, and what
    /// `ipsec sha2 compatible enable` selects).
    pub ipsec_sha2_truncate_96: bool,
    /// `interface NAME`.
    pub interfaces: BTreeMap<String, Interface>,
    /// `ip route-static`, in file order.
    pub routes: Vec<StaticRoute>,
    /// `metrics server ip-address A.B.C.D port N` (keysteward extension): serve the
    /// Prometheus metrics there; off when absent. `keysteward run --metrics` wins over it.
    pub metrics: Option<std::net::SocketAddrV4>,
}

/// An IKE (phase-1) proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeProposal {
    /// `encryption-algorithm`.
    pub encryption: Phase1Cipher,
    /// `authentication-algorithm` (hash and PRF in IKEv1).
    pub authentication: HashAlgorithm,
    /// `authentication-method`.
    pub method: AuthenticationMethod,
    /// `dh`.
    pub dh: DhGroup,
    /// `sa duration`, seconds.
    pub sa_duration: u32,
}

impl Default for IkeProposal {
    fn default() -> Self {
        Self {
            encryption: Phase1Cipher::Aes256,
            authentication: HashAlgorithm::Sha256,
            method: AuthenticationMethod::PreShare,
            dh: DhGroup::Modp2048,
            sa_duration: DEFAULT_IKE_SA_DURATION,
        }
    }
}

/// Which IKE versions a peer has enabled (`version N` / `undo version N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeVersions {
    /// IKEv1.
    pub v1: bool,
    /// IKEv2 (not implemented: keysteward uses IKEv1 when v1 is enabled).
    pub v2: bool,
}

impl Default for IkeVersions {
    fn default() -> Self {
        Self { v1: true, v2: true }
    }
}

/// Peer-level DPD settings; `None` inherits the global `ike dpd` value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerDpd {
    /// `dpd type`.
    pub dpd_type: Option<DpdType>,
    /// `dpd idle-time`, seconds.
    pub idle_time: Option<u32>,
    /// `dpd retransmit-interval`, seconds.
    pub retransmit_interval: Option<u32>,
    /// `dpd retry-limit`.
    pub retry_limit: Option<u32>,
    /// `dpd msg`.
    pub message_order: Option<DpdMessageOrder>,
}

/// Global DPD defaults (`ike dpd …`, USG-V5 form). DPD is off unless a type is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalDpd {
    /// `ike dpd type`; `None` = DPD off.
    pub dpd_type: Option<DpdType>,
    /// `ike dpd idle-time`, seconds.
    pub idle_time: u32,
    /// `ike dpd retransmit-interval`, seconds.
    pub retransmit_interval: u32,
    /// `ike dpd retry-limit`.
    pub retry_limit: u32,
}

impl Default for GlobalDpd {
    fn default() -> Self {
        Self {
            dpd_type: None,
            idle_time: DEFAULT_DPD_IDLE_TIME,
            retransmit_interval: DEFAULT_DPD_RETRANSMIT_INTERVAL,
            retry_limit: DEFAULT_DPD_RETRY_LIMIT,
        }
    }
}

/// An IKE peer: who the other gateway is and how phase 1 talks to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkePeer {
    /// `ike-proposal N`; `None` offers every proposal in priority order.
    pub ike_proposal: Option<u32>,
    /// `version` / `undo version`.
    pub versions: IkeVersions,
    /// `exchange-mode`.
    pub exchange_mode: ExchangeMode,
    /// `pre-shared-key`.
    pub pre_shared_key: Option<PreSharedKey>,
    /// `remote-address IP`: tunnel destination and main-mode PSK selector.
    pub remote_address: Option<Ipv4Addr>,
    /// `remote-address authentication-address IP`: the address the peer is identified by
    /// (its ID_IPV4_ADDR) when it differs from the tunnel address, e.g. behind a NAT.
    pub authentication_address: Option<Ipv4Addr>,
    /// `local-address IP` (USG-V3/AR-old): our end of the tunnels with this peer, as a
    /// `tunnel local IP` in every policy that uses it; `None` = the bound interface's address.
    pub local_address: Option<Ipv4Addr>,
    /// `remote-id` (alias `remote-name`).
    pub remote_id: Option<String>,
    /// `remote-id-type`; `None` derives it from `remote-id`.
    pub remote_id_type: Option<IdType>,
    /// `local-id-type`.
    pub local_id_type: IdType,
    /// `local-id`.
    pub local_id: Option<String>,
    /// `nat traversal`: on by default in keysteward (§3, documented deviation).
    pub nat_traversal: bool,
    /// `nat traversal force-encapsulation`: UDP-encapsulate ESP even without a NAT (NAT-D
    /// that makes both ends find one, as strongSwan's `encap = yes`); off by default.
    pub nat_traversal_force: bool,
    /// `dpd …`.
    pub dpd: PeerDpd,
    /// `certificate …`: certificate authentication files.
    pub certificate: PeerCertificate,
    /// `user-table N`: the site keys come from `ike user-table N` (a template's peer).
    pub user_table: Option<u32>,
}

/// `ike user-table N`: its users by `user id M`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserTable {
    /// `user id M`, by number.
    pub users: BTreeMap<u32, TableUser>,
}

/// One `user id M` of an `ike user-table`: a site and its key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableUser {
    /// `id-type { ip A | fqdn NAME | user-fqdn NAME }`.
    pub id: Option<UserId>,
    /// `pre-shared-key KEY`.
    pub pre_shared_key: Option<PreSharedKey>,
}

/// Who a user of an `ike user-table` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserId {
    /// `id-type ip A`: the site's address (main mode: its source address; aggressive mode:
    /// an ID_IPV4_ADDR identity).
    Ip(Ipv4Addr),
    /// `id-type fqdn NAME`: the site's ID_FQDN identity (aggressive mode).
    Fqdn(String),
    /// `id-type user-fqdn NAME`: the site's ID_USER_FQDN identity (aggressive mode).
    UserFqdn(String),
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(a) => write!(f, "ip {a}"),
            Self::Fqdn(n) => write!(f, "fqdn {n}"),
            Self::UserFqdn(n) => write!(f, "user-fqdn {n}"),
        }
    }
}

/// The `certificate …` commands of an `ike peer` (keysteward's design in the style of VRP8's
/// `certificate local-filename`, vrp-cli.md §2.3): file names are relative to the directory
/// of the configuration file, PEM or DER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// `certificate local-filename FILE`: our certificate.
    pub local_filename: Option<String>,
    /// `certificate local-key-filename FILE`: our private key (PKCS#8, PKCS#1 or SEC1).
    pub local_key_filename: Option<String>,
    /// `certificate ca-filename FILE` (repeatable): CAs the peer's certificate must chain to.
    pub ca_filenames: Vec<String>,
    /// `certificate crl-filename FILE` (repeatable): CRLs of those CAs.
    pub crl_filenames: Vec<String>,
    /// `certificate send { always | when-asked }`.
    pub send: CertificateSend,
}

impl PeerCertificate {
    /// True when any certificate file is configured.
    pub fn is_configured(&self) -> bool {
        self.local_filename.is_some()
            || self.local_key_filename.is_some()
            || !self.ca_filenames.is_empty()
            || !self.crl_filenames.is_empty()
    }
}

/// When a peer sends its certificate (`certificate send`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CertificateSend {
    /// In every phase-1 message that carries a signature (the default).
    #[default]
    Always,
    /// Only when the peer sent a certificate request.
    WhenAsked,
}

impl Default for IkePeer {
    fn default() -> Self {
        Self {
            ike_proposal: None,
            versions: IkeVersions::default(),
            exchange_mode: ExchangeMode::Main,
            pre_shared_key: None,
            remote_address: None,
            authentication_address: None,
            local_address: None,
            remote_id: None,
            remote_id_type: None,
            local_id_type: IdType::Ip,
            local_id: None,
            nat_traversal: true,
            nat_traversal_force: false,
            dpd: PeerDpd::default(),
            certificate: PeerCertificate::default(),
            user_table: None,
        }
    }
}

/// An advanced ACL: the traffic a policy protects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    /// Rules by rule number (matched in ascending order).
    pub rules: BTreeMap<u32, AclRule>,
}

/// `permit` or `deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclAction {
    /// Protect the traffic.
    Permit,
    /// Do not protect the traffic.
    Deny,
}

/// The protocol field of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclProtocol {
    /// Any IP protocol.
    Ip,
    /// ICMP (1).
    Icmp,
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// GRE (47).
    Gre,
    /// Another protocol number (never 1, 6, 17 or 47: those parse as names).
    Number(u8),
}

impl AclProtocol {
    /// The protocol from a number, named when it has a name.
    pub fn from_number(n: u8) -> Self {
        match n {
            1 => AclProtocol::Icmp,
            6 => AclProtocol::Tcp,
            17 => AclProtocol::Udp,
            47 => AclProtocol::Gre,
            n => AclProtocol::Number(n),
        }
    }

    /// True for TCP and UDP, the protocols that have ports.
    pub fn has_ports(self) -> bool {
        matches!(self, AclProtocol::Tcp | AclProtocol::Udp)
    }

    /// The IP protocol number; 0 for `ip` (any protocol, as a proxy ID writes it).
    pub fn number(self) -> u8 {
        match self {
            AclProtocol::Ip => 0,
            AclProtocol::Icmp => 1,
            AclProtocol::Tcp => 6,
            AclProtocol::Udp => 17,
            AclProtocol::Gre => 47,
            AclProtocol::Number(n) => n,
        }
    }
}

/// A source or destination: `any`, or an address with a wildcard (inverse) mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressMatch {
    /// Any address.
    Any,
    /// Bits set in `wildcard` are ignored; wildcard 0 is one host.
    Wildcard {
        /// The address.
        address: Ipv4Addr,
        /// The inverse mask (`0.0.0.255` = /24).
        wildcard: Ipv4Addr,
    },
}

impl AddressMatch {
    /// The range of addresses matched, as (first, last) when the wildcard is contiguous,
    /// or `None` for a non-contiguous wildcard.
    pub fn range(self) -> Option<(u32, u32)> {
        match self {
            AddressMatch::Any => Some((0, u32::MAX)),
            AddressMatch::Wildcard { address, wildcard } => {
                let w = u32::from(wildcard);
                if w.wrapping_add(1) & w != 0 {
                    return None;
                }
                let base = u32::from(address) & !w;
                Some((base, base | w))
            }
        }
    }

    /// True when some address matches both (exact for contiguous wildcards, and for
    /// arbitrary ones: two wildcard matches intersect when they agree on the bits both fix).
    pub fn intersects(self, other: AddressMatch) -> bool {
        match (self, other) {
            (AddressMatch::Any, _) | (_, AddressMatch::Any) => true,
            (
                AddressMatch::Wildcard { address: a, wildcard: wa },
                AddressMatch::Wildcard { address: b, wildcard: wb },
            ) => {
                let fixed = !u32::from(wa) & !u32::from(wb);
                (u32::from(a) ^ u32::from(b)) & fixed == 0
            }
        }
    }
}

/// A port condition on TCP/UDP rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortMatch {
    /// `eq P`.
    Eq(u16),
    /// `lt P`.
    Lt(u16),
    /// `gt P`.
    Gt(u16),
    /// `range P1 P2`, inclusive.
    Range(u16, u16),
}

impl PortMatch {
    /// The inclusive range of ports matched (empty ranges give `first > last`).
    pub fn range(self) -> (u32, u32) {
        match self {
            PortMatch::Eq(p) => (p.into(), p.into()),
            PortMatch::Lt(p) => (0, u32::from(p).saturating_sub(1)),
            PortMatch::Gt(p) => (u32::from(p) + 1, 65_535),
            PortMatch::Range(a, b) => (a.into(), b.into()),
        }
    }
}

/// One `rule` of an advanced ACL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclRule {
    /// `permit` or `deny`.
    pub action: AclAction,
    /// The protocol.
    pub protocol: AclProtocol,
    /// `source`.
    pub source: AddressMatch,
    /// `destination`.
    pub destination: AddressMatch,
    /// `source-port` (TCP/UDP only).
    pub source_port: Option<PortMatch>,
    /// `destination-port` (TCP/UDP only).
    pub destination_port: Option<PortMatch>,
}

impl AclRule {
    /// What the rule matches as a security policy selector (written from this gateway's side:
    /// the source is ours), with its real port ranges; `None` when a wildcard is not
    /// contiguous (no prefix holds it).
    pub fn selector(&self) -> Option<spd::Selector> {
        let prefix = |m: AddressMatch| {
            let (low, high) = m.range()?;
            Some(spd::Prefix::new(Ipv4Addr::from(low), (high ^ low).leading_zeros() as u8))
        };
        let ports = |m: Option<PortMatch>| {
            let (first, last) = m?.range();
            Some(spd::PortRange { first: first.min(65_535) as u16, last: last.min(65_535) as u16 })
        };
        Some(spd::Selector {
            protocol: Some(self.protocol.number()).filter(|p| *p != 0),
            local: prefix(self.source)?,
            remote: prefix(self.destination)?,
            local_ports: ports(self.source_port),
            remote_ports: ports(self.destination_port),
        })
    }
}

/// An IPsec (phase-2) proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpsecProposal {
    /// `transform`.
    pub transform: Transform,
    /// `encapsulation-mode`.
    pub encapsulation: EncapsulationMode,
    /// `esp authentication-algorithm`; `None` after `undo` = no ESP authentication.
    pub esp_authentication: Option<Integrity>,
    /// `esp encryption-algorithm`; `None` after `undo` = NULL encryption.
    pub esp_encryption: Option<EspCipher>,
    /// `ah authentication-algorithm`.
    pub ah_authentication: Integrity,
}

impl Default for IpsecProposal {
    fn default() -> Self {
        Self {
            transform: Transform::Esp,
            encapsulation: EncapsulationMode::Tunnel,
            esp_authentication: Some(Integrity::HmacSha256_128),
            esp_encryption: Some(EspCipher::AesCbc256),
            ah_authentication: Integrity::HmacSha256_128,
        }
    }
}

/// `tunnel local`: the local end of the tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelLocal {
    /// A given address.
    Address(Ipv4Addr),
    /// The address of the interface the policy is applied to.
    AppliedInterface,
}

/// The settings shared by an `ipsec policy … isakmp` entry and a policy template entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySettings {
    /// `security acl N` (mandatory for isakmp entries, optional in templates).
    pub acl: Option<u16>,
    /// `proposal P1 [P2 …]`, tried in order.
    pub proposals: Vec<String>,
    /// `ike-peer NAME`.
    pub ike_peer: Option<String>,
    /// `pfs dh-groupN`; `None` = no PFS.
    pub pfs: Option<PfsGroup>,
    /// `sa duration time-based`; `None` = the global duration.
    pub sa_seconds: Option<u32>,
    /// `sa duration traffic-based` (kilobytes, 0 = unlimited); `None` = the global duration.
    pub sa_kilobytes: Option<u64>,
    /// `sa trigger-mode` (isakmp entries only; templates never initiate).
    pub trigger_mode: Option<TriggerMode>,
    /// `tunnel local`; `None` = the bound interface's address.
    pub tunnel_local: Option<TunnelLocal>,
    /// `sa max …` (policy templates only, a keysteward extension): the hub's caps.
    pub sa_max: SaMax,
}

/// The caps of a policy template (`sa max [ per-peer ] { ike-sa | ipsec-sa | flow } N`, a
/// keysteward extension in the style of VRP's `sa duration`): how many IKE SAs, IPsec SA
/// pairs and flows all branches together, and each branch, may have. `None` keeps the
/// default ([`SaMax::DEFAULTS`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaMax {
    /// `sa max ike-sa N`.
    pub ike_sa: Option<u32>,
    /// `sa max ipsec-sa N`.
    pub ipsec_sa: Option<u32>,
    /// `sa max flow N`.
    pub flow: Option<u32>,
    /// `sa max per-peer ike-sa N`.
    pub per_peer_ike_sa: Option<u32>,
    /// `sa max per-peer ipsec-sa N`.
    pub per_peer_ipsec_sa: Option<u32>,
    /// `sa max per-peer flow N`.
    pub per_peer_flow: Option<u32>,
}

impl SaMax {
    /// The defaults, sized for a hub of 10,000 branches with a few flows each (two IKE SAs
    /// per branch while one is renewed, two pairs per flow while one is rekeyed), in the
    /// order `ike-sa`, `ipsec-sa`, `flow`, then the same per peer.
    pub const DEFAULTS: [u32; 6] = [20_000, 100_000, 50_000, 4, 64, 32];

    /// The six settings with their keywords, in the order of [`SaMax::DEFAULTS`].
    pub fn settings(&self) -> [(&'static str, Option<u32>); 6] {
        [
            ("ike-sa", self.ike_sa),
            ("ipsec-sa", self.ipsec_sa),
            ("flow", self.flow),
            ("per-peer ike-sa", self.per_peer_ike_sa),
            ("per-peer ipsec-sa", self.per_peer_ipsec_sa),
            ("per-peer flow", self.per_peer_flow),
        ]
    }

    /// The values in force (configured or default), in the order of [`SaMax::DEFAULTS`].
    pub fn values(&self) -> [u32; 6] {
        let settings = self.settings();
        std::array::from_fn(|i| settings[i].1.unwrap_or(Self::DEFAULTS[i]))
    }

    /// The setting of `kind` (`ike-sa`, `ipsec-sa`, `flow`), total or per peer.
    pub(crate) fn slot(&mut self, per_peer: bool, kind: &str) -> &mut Option<u32> {
        match (per_peer, kind) {
            (false, "ike-sa") => &mut self.ike_sa,
            (false, "ipsec-sa") => &mut self.ipsec_sa,
            (false, _) => &mut self.flow,
            (true, "ike-sa") => &mut self.per_peer_ike_sa,
            (true, "ipsec-sa") => &mut self.per_peer_ipsec_sa,
            (true, _) => &mut self.per_peer_flow,
        }
    }
}

/// One entry of an IPsec policy group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyEntry {
    /// `ipsec policy NAME SEQ isakmp` with its settings.
    Isakmp(PolicySettings),
    /// `ipsec policy NAME SEQ isakmp template T`: answers peers through template `T`.
    Template(String),
}

/// `ipsec sa global-duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalDuration {
    /// `time-based`, seconds.
    pub seconds: u32,
    /// `traffic-based`, kilobytes.
    pub kilobytes: u64,
}

impl Default for GlobalDuration {
    fn default() -> Self {
        Self { seconds: DEFAULT_IPSEC_SA_SECONDS, kilobytes: DEFAULT_IPSEC_SA_KILOBYTES }
    }
}

/// An IPv4 address with its prefix length (`ip address A MASK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceAddress {
    /// The address.
    pub address: Ipv4Addr,
    /// The prefix length, 0–32.
    pub prefix_len: u8,
}

/// An interface view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interface {
    /// `ip address`.
    pub address: Option<InterfaceAddress>,
    /// `ipsec policy NAME`: the policy group applied to traffic leaving here.
    pub ipsec_policy: Option<String>,
    /// `ipsec policy NAME auto-neg` (USG-V3): negotiate at once, like `sa trigger-mode auto`.
    pub auto_negotiate: bool,
}

/// `ip route-static`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination network.
    pub destination: Ipv4Addr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Outgoing interface, when given.
    pub interface: Option<String>,
    /// Next hop.
    pub next_hop: Ipv4Addr,
    /// `preference`.
    pub preference: u8,
}

/// The netmask of a prefix length (`24` → `255.255.255.0`).
pub fn prefix_to_mask(prefix_len: u8) -> Ipv4Addr {
    let bits = if prefix_len == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix_len.min(32))) };
    Ipv4Addr::from(bits)
}

/// The prefix length of a contiguous netmask, or `None` for a non-contiguous one.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_prefixes() {
        assert_eq!(prefix_to_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(prefix_to_mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(prefix_to_mask(32), Ipv4Addr::BROADCAST);
        for len in 0..=32 {
            assert_eq!(mask_to_prefix(prefix_to_mask(len)), Some(len));
        }
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
    }

    #[test]
    fn wildcard_intersection() {
        let net = |a: [u8; 4], w: [u8; 4]| AddressMatch::Wildcard { address: a.into(), wildcard: w.into() };
        let a = net([10, 1, 1, 0], [0, 0, 0, 255]);
        let b = net([10, 1, 1, 7], [0, 0, 0, 0]);
        let c = net([10, 2, 2, 0], [0, 0, 0, 255]);
        assert!(a.intersects(b));
        assert!(!a.intersects(c));
        assert!(AddressMatch::Any.intersects(c));
        assert_eq!(
            a.range(),
            Some((u32::from(Ipv4Addr::new(10, 1, 1, 0)), u32::from(Ipv4Addr::new(10, 1, 1, 255))))
        );
    }
}
