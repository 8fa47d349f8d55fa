//! What the engine tells its driver: datagrams to send and things that happened.

use core::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crypto::key_schedule::EspKeys;
use crypto::SecretBytes;

use crate::config::{IkeProposal, PolicyId, TrafficSelector};
use crate::failure::FailureReason;
use crate::proposal::IpsecSuite;

/// A datagram for the driver to send from `local` to `remote`.
///
/// On UDP 4500 (after the NAT-T float) IKE messages must be preceded by the 4-byte zero
/// non-ESP marker (RFC 3948 §2.2); the engine does not put it into `payload` but sets
/// `non_esp_marker`, so that `payload` is always an ISAKMP message or a keepalive and the
/// driver owns the framing of its sockets, as it strips the marker on receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port (UDP 500, or 4500 after the float).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The ISAKMP message, or for a keepalive the single byte 0xFF.
    pub payload: Vec<u8>,
    /// Prepend the 4-byte zero non-ESP marker: set for IKE messages sent from UDP 4500.
    pub non_esp_marker: bool,
    /// A NAT-T keepalive (RFC 3948 §2.3), sent from 4500 without a marker by the side behind
    /// a NAT every [`crate::KEEPALIVE_INTERVAL`]; marked so drivers can count or log it apart.
    pub nat_keepalive: bool,
}

impl Transmit {
    /// An ISAKMP message; the marker follows from our port (RFC 3948 §2.2).
    pub(crate) fn isakmp(local: SocketAddr, remote: SocketAddr, payload: Vec<u8>) -> Self {
        let non_esp_marker = local.port() == crate::nat_t::NAT_T_PORT;
        Self { local, remote, payload, non_esp_marker, nat_keepalive: false }
    }

    /// A NAT keepalive.
    pub(crate) fn keepalive(local: SocketAddr, remote: SocketAddr) -> Self {
        Self {
            local,
            remote,
            payload: crate::nat_t::KEEPALIVE.to_vec(),
            non_esp_marker: false,
            nat_keepalive: true,
        }
    }
}

/// The number the engine gives each IKE SA, shown as `conn-id` by `display ike sa` and used by
/// `reset ike sa conn-id N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The phase-1 secrets of one IKE SA in the form Wireshark's `ikev1_decryption_table` takes:
/// the initiator cookie identifies the SA, Ka is the key of the phase-1 cipher (Wireshark
/// derives the IVs itself from the KE payloads it saw in clear).
///
/// Only raised with a key log turned on ([`Engine::set_key_log`](crate::Engine::set_key_log)).
/// Ka is a [`SecretBytes`]: zeroized when the record drops and shown as
/// `<redacted, N bytes>` by `Debug`, so logging the event by mistake leaks nothing.
#[derive(Debug)]
pub struct Phase1KeyLog {
    /// The initiator's cookie (CKY-I), the table's lookup key.
    pub cookie_i: [u8; 8],
    /// The responder's cookie (CKY-R), for tools that key on both.
    pub cookie_r: [u8; 8],
    /// Ka, the phase-1 encryption key (RFC 2409 Appendix B), exactly the cipher's key length.
    pub ka: SecretBytes,
}

/// Something that happened, for the data plane and the logs.
#[derive(Debug)]
pub enum Event {
    /// Phase 1 completed.
    IkeSaEstablished {
        /// The IKE SA.
        connection: ConnectionId,
        /// The peer's configured name.
        peer: String,
        /// The peer's address.
        remote: SocketAddr,
        /// The negotiated suite (lifetime is the one in force).
        suite: IkeProposal,
        /// True when we initiated.
        initiator: bool,
        /// What a Wireshark key log needs to decrypt this SA's phase-1 and quick-mode
        /// messages; `Some` only when the driver asked for it with
        /// [`Engine::set_key_log`](crate::Engine::set_key_log), so that keys leave the engine
        /// only for an operator who chose to write them down.
        key_log: Option<Phase1KeyLog>,
    },
    /// A quick mode completed: the pair of IPsec SAs for the data plane to install (or, after
    /// [`Event::IpsecSaInbound`] for the same inbound SPI, to let seal).
    IpsecSaInstalled(Box<IpsecSaPair>),
    /// As a quick-mode responder we sent QM2: the pair for the data plane to install with
    /// its outbound half held (RFC 2409 §5.5: the inbound SA may take packets now, the
    /// outbound waits for QM3, when [`Event::IpsecSaInstalled`] follows). If the exchange
    /// ends without QM3, [`Event::IpsecSaExpired`] with [`IpsecSaEnd::Unconfirmed`] takes it
    /// back; if its IKE SA goes, the pairs of that connection go with it.
    IpsecSaInbound(Box<IpsecSaPair>),
    /// A failure, with the reason an operator needs.
    Failed(Failure),
    /// The peer deleted an IKE SA (authenticated Delete payload); it is gone here too.
    IkeSaDeleted {
        /// The IKE SA.
        connection: ConnectionId,
        /// The peer's configured name.
        peer: String,
    },
    /// Our side ended an IPsec SA pair (lifetime, traffic, sequence numbers, reset, or its
    /// IKE SA went): the data plane drops both SAs. A Delete went to the peer when possible.
    IpsecSaExpired {
        /// The IKE SA that managed it.
        connection: ConnectionId,
        /// The peer's configured name.
        peer: String,
        /// The policy entry it served.
        policy: PolicyId,
        /// The SPI we chose (packets from the peer).
        inbound_spi: u32,
        /// The SPI the peer chose (packets to the peer).
        outbound_spi: u32,
        /// Why.
        reason: IpsecSaEnd,
    },
    /// Our side ended an IKE SA (hard lifetime or reset) and sent the peer a Delete for it.
    IkeSaExpired {
        /// The IKE SA.
        connection: ConnectionId,
        /// The peer's configured name.
        peer: String,
        /// The peer's address.
        remote: SocketAddr,
        /// Why.
        reason: IkeSaEnd,
    },
    /// The peer deleted IPsec SAs; `spis` are the SPIs it chose (our outbound SAs), to be
    /// removed with their inbound partners.
    IpsecSaDeleted {
        /// The IKE SA the Delete came on.
        connection: ConnectionId,
        /// The deleted SPIs.
        spis: Vec<u32>,
    },
    /// With NAT-T, an authenticated message showed the peer at a new address or port (a NAT
    /// rebinding, RFC 3947 §5.2): the data plane sends the ESP-in-UDP of this connection's
    /// IPsec SAs there from now on.
    PeerMoved {
        /// The IKE SA.
        connection: ConnectionId,
        /// Our address and port.
        local: SocketAddr,
        /// The peer's new address and port.
        remote: SocketAddr,
    },
    /// An IKE SA is gone together with every IPsec SA it negotiated: the data plane drops
    /// each [`IpsecSaPair`] whose `connection` is this one. Raised when DPD declares the peer
    /// dead and when the peer's INITIAL-CONTACT says it restarted (RFC 2407 §4.6.3.3).
    SasCleared {
        /// The IKE SA.
        connection: ConnectionId,
        /// The peer's configured name.
        peer: String,
        /// The peer's address.
        remote: SocketAddr,
        /// Why.
        reason: ClearReason,
    },
}

/// Why an IKE SA and its IPsec SAs were cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearReason {
    /// Dead peer detection (RFC 3706): no R-U-THERE-ACK.
    PeerDead {
        /// R-U-THERE messages sent without an answer.
        unanswered: u32,
        /// Time since the peer was last heard from.
        silent_for: Duration,
    },
    /// The peer sent INITIAL-CONTACT on a new IKE SA: it has restarted and forgotten these.
    InitialContact {
        /// The new IKE SA that carried the notification.
        replaced_by: ConnectionId,
    },
}

impl fmt::Display for ClearReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PeerDead { unanswered, silent_for } => write!(
                f,
                "peer dead: {unanswered} R-U-THERE unanswered, nothing heard for {} s",
                silent_for.as_secs()
            ),
            Self::InitialContact { replaced_by } => {
                write!(f, "peer restarted: INITIAL-CONTACT on IKE SA {replaced_by}")
            }
        }
    }
}

/// ESP-in-UDP (RFC 3948) for an IPsec SA pair negotiated with a UDP-encapsulated mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpEncapsulation {
    /// Our UDP port (4500).
    pub local_port: u16,
    /// The peer's UDP port: 4500, or what a NAT in front of it chose.
    pub remote_port: u16,
}

/// A pair of one-way IPsec SAs, everything the data plane needs to carry a flow.
#[derive(Debug)]
pub struct IpsecSaPair {
    /// The IKE SA that negotiated it.
    pub connection: ConnectionId,
    /// The peer's configured name.
    pub peer: String,
    /// The policy entry it serves.
    pub policy: PolicyId,
    /// Our gateway address.
    pub local: SocketAddr,
    /// The peer's gateway address.
    pub remote: SocketAddr,
    /// The protected flow, from our side's point of view (as negotiated: the initiator's
    /// proxy identities).
    pub selector: TrafficSelector,
    /// Algorithms, mode, PFS and lifetimes.
    pub suite: IpsecSuite,
    /// Keys for packets from the peer, under the SPI we chose. These are the ESP SA's when
    /// the suite has ESP (ESP alone or AH+ESP); for AH alone they are the AH SA's (no
    /// encryption key), the same as in [`Self::ah`]. SPIs here name the pair in Deletes and
    /// lifetime reports.
    pub inbound: EspKeys,
    /// Keys for packets to the peer, under the SPI the peer chose (as for `inbound`).
    pub outbound: EspKeys,
    /// The AH SAs of an AH or AH+ESP suite, each with its own SPIs and keys (KEYMAT derived
    /// with protocol 2, RFC 2409 §5.5); `None` for ESP alone.
    pub ah: Option<AhSaKeys>,
    /// True when we initiated the quick mode.
    pub initiator: bool,
    /// `Some` when ESP travels in UDP (encapsulation mode 3/4, or 61443/61444 with a draft
    /// peer): the data plane sends and receives it on these ports with the ESP framing of
    /// RFC 3948. `None` for plain ESP (IP protocol 50).
    pub udp_encapsulation: Option<UdpEncapsulation>,
}

/// The AH half of an IPsec SA pair (RFC 4302): integrity keys only.
#[derive(Debug)]
pub struct AhSaKeys {
    /// Keys for AH packets from the peer, under the AH SPI we chose.
    pub inbound: EspKeys,
    /// Keys for AH packets to the peer, under the AH SPI the peer chose.
    pub outbound: EspKeys,
    /// The AH integrity algorithm.
    pub integrity: crypto::Integrity,
}

/// Which exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// Main mode.
    MainMode,
    /// Aggressive mode.
    AggressiveMode,
    /// Quick mode.
    QuickMode,
    /// An informational exchange.
    Informational,
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MainMode => "main mode",
            Self::AggressiveMode => "aggressive mode",
            Self::QuickMode => "quick mode",
            Self::Informational => "informational",
        })
    }
}

/// One failure: who, which exchange, in which state, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The peer's configured name, when known.
    pub peer: Option<String>,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The exchange.
    pub exchange: Exchange,
    /// The state it was in (e.g. "waiting for MM4").
    pub state: &'static str,
    /// Why.
    pub reason: FailureReason,
    /// Caused only by messages no peer authenticated: a refused first message (MM1, AM1), or
    /// a responder's phase 1 that never authenticated its peer. Anyone can cause such a
    /// failure with a spoofed source address, so a driver logs it (rate-limited) and acts on
    /// nothing else: the packets queued for the peer wait for whichever tunnel comes up.
    pub unauthenticated: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} with {}", self.exchange, self.remote.ip())?;
        if let Some(peer) = &self.peer {
            write!(f, " (peer {peer})")?;
        }
        write!(f, " failed {}: {}", self.state, self.reason)
    }
}

/// Why our side ended an IPsec SA pair, carried by [`Event::IpsecSaExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpsecSaEnd {
    /// Its hard lifetime in seconds passed.
    Lifetime,
    /// Its traffic lifetime (kilobytes) is used up.
    Traffic,
    /// Its outbound sequence numbers are used up.
    SequenceNumbers,
    /// `reset ipsec sa` or `reset ike sa`.
    Reset,
    /// The IKE SA that managed it is gone and no newer one with the peer took it over.
    IkeSaGone,
    /// A configuration reload changed or removed its policy or peer
    /// ([`crate::Engine::reconfigure`]).
    Reconfigured,
    /// We answered with QM2 but the initiator never confirmed with QM3: the pair installed
    /// inbound-first ([`Event::IpsecSaInbound`]) is taken back.
    Unconfirmed,
}

/// Why our side ended an IKE SA, carried by [`Event::IkeSaExpired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IkeSaEnd {
    /// Its hard lifetime passed.
    Lifetime,
    /// `reset ike sa`.
    Reset,
    /// A configuration reload changed or removed its peer ([`crate::Engine::reconfigure`]).
    Reconfigured,
    /// A branch's new IKE SA over a cap of its template (`sa max … ike-sa`), deleted at once.
    LimitReached,
}

/// A flow that needs IPsec SAs (the driver's input to [`Engine::handle_acquire`](crate::Engine::handle_acquire)): policy entry and the ACL rule it matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Acquire {
    /// Index of the policy in [`crate::Config::policies`].
    pub policy: usize,
    /// The rule's flow, from our side.
    pub selector: TrafficSelector,
}
