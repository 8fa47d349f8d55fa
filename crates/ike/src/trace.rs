//! Message trace: one record per IKE message the engine sends or accepts, naming the step of
//! the exchange (MM1…MM6, AM1…AM3, QM1…QM3, RFC 2409 §5, §5.4, §5.5) and the payloads it
//! carried, the way the RFC and vendor documents draw the exchanges:
//! `HDR, SA(1 proposal), VID×4` or `HDR*, ID(IPV4 192.0.2.1), HASH_I`.
//!
//! Why the engine does it: only the engine knows which step a message is and what an
//! encrypted message held (a capture shows `HDR*` and ciphertext). A driver turns the records
//! on with [`crate::Engine::set_message_trace`] and logs them; `keysteward demo` merges both
//! gateways' logs into the article's message-flow diagram. Off (the default), nothing is
//! built: the records cost nothing on a gateway that does not ask for them.
//!
//! The records hold no key material: payloads are named, never dumped (a nonce, a KE public
//! value or a HASH shows as its name only; identities are shown, as `display ike sa` does).

use core::fmt;
use std::net::SocketAddr;

use isakmp::{Identity, NotifyType, Payload};

use crate::event::ConnectionId;

/// Which message of which exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Main mode (identity protection) message 1–6.
    MainMode(u8),
    /// Aggressive mode message 1–3.
    Aggressive(u8),
    /// Quick mode message 1–3.
    Quick(u8),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MainMode(n) => write!(f, "MM{n}"),
            Self::Aggressive(n) => write!(f, "AM{n}"),
            Self::Quick(n) => write!(f, "QM{n}"),
        }
    }
}

/// Whether we sent the message or accepted it from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// We sent it (first transmission; retransmissions are not traced again).
    Sent,
    /// The peer sent it and we accepted it (it parsed, and for encrypted messages decrypted).
    Received,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sent => "sent",
            Self::Received => "received",
        })
    }
}

/// One traced IKE message.
///
/// `Display` gives one stable line for logs, which `keysteward demo` parses back:
/// `sent MM1 conn=1 peer=b local=192.0.2.1:500 remote=192.0.2.2:500 icookie=… mid=00000000 | HDR, SA(1 proposal), VID×4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTrace {
    /// Sent or received.
    pub direction: Direction,
    /// The step of the exchange.
    pub step: Step,
    /// The IKE SA it belongs to.
    pub connection: ConnectionId,
    /// The peer's configured name.
    pub peer: String,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The initiator cookie: with `message_id`, what both sides' records of one message share.
    pub initiator_cookie: isakmp::Cookie,
    /// The message ID (zero in phase 1).
    pub message_id: u32,
    /// The payloads, e.g. `HDR*, HASH(1), SA(1 proposal), NONCE, ID(…), ID(…)`.
    pub summary: String,
}

impl fmt::Display for MessageTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} conn={} peer={} local={} remote={} icookie={} mid={:08x} | {}",
            self.direction,
            self.step,
            self.connection,
            self.peer,
            self.local,
            self.remote,
            self.initiator_cookie,
            self.message_id,
            self.summary
        )
    }
}

/// The payload list of a message in the RFC's notation: `HDR` (or `HDR*` when the body was
/// encrypted), then each payload by name, the HASH named by its role in `step` (HASH_I,
/// HASH_R, HASH(1)…HASH(3)). Runs of three or more equal names are written once with a count
/// (`VID×4`), shorter runs in full (`NAT-D, NAT-D`), as the article draws them.
pub fn summarize(step: Step, encrypted: bool, payloads: &[Payload<'_>]) -> String {
    let names: Vec<String> = payloads.iter().map(|p| payload_name(step, p)).collect();
    let mut out = String::from(if encrypted { "HDR*" } else { "HDR" });
    let mut i = 0;
    while let Some(name) = names.get(i) {
        let run = names[i..].iter().take_while(|n| *n == name).count();
        if run >= 3 {
            out.push_str(&format!(", {name}×{run}"));
        } else {
            for _ in 0..run {
                out.push_str(", ");
                out.push_str(name);
            }
        }
        i += run;
    }
    out
}

fn payload_name(step: Step, payload: &Payload<'_>) -> String {
    match payload {
        Payload::SecurityAssociation(sa) => {
            // Consecutive proposal payloads with one number are one offer (AH+ESP).
            let mut numbers: Vec<u8> = sa.proposals.iter().map(|p| p.number).collect();
            numbers.dedup();
            let n = numbers.len();
            format!("SA({n} proposal{})", if n == 1 { "" } else { "s" })
        }
        Payload::KeyExchange(_) => "KE".into(),
        Payload::Identification(id) => {
            let mut text = format!("ID({}", identity(&id.identity));
            if id.protocol != 0 || id.port != 0 {
                text.push_str(&format!(" proto {} port {}", id.protocol, id.port));
            }
            text.push(')');
            text
        }
        Payload::Certificate(_) => "CERT".into(),
        Payload::CertificateRequest(_) => "CR".into(),
        Payload::Hash(_) => match step {
            Step::MainMode(5) | Step::Aggressive(3) => "HASH_I".into(),
            Step::MainMode(6) | Step::Aggressive(2) => "HASH_R".into(),
            Step::Quick(n) => format!("HASH({n})"),
            _ => "HASH".into(),
        },
        Payload::Signature(_) => "SIG".into(),
        Payload::Nonce(_) => "NONCE".into(),
        Payload::Notification(n) => format!("N({})", notify_name(n.notify_type)),
        Payload::Delete(_) => "D".into(),
        Payload::VendorId(_) => "VID".into(),
        Payload::Attribute(_) => "ATTR".into(),
        Payload::NatDiscovery(_) => "NAT-D".into(),
        Payload::NatOriginalAddress(_) => "NAT-OA".into(),
        Payload::Fragment(_) => "FRAG".into(),
        Payload::Unknown { payload_type, .. } => format!("#{}", u8::from(*payload_type)),
    }
}

fn notify_name(notify: NotifyType) -> String {
    match notify {
        NotifyType::InitialContact => "INITIAL-CONTACT".into(),
        NotifyType::ResponderLifetime => "RESPONDER-LIFETIME".into(),
        NotifyType::ReplayStatus => "REPLAY-STATUS".into(),
        other => u16::from(other).to_string(),
    }
}

/// `KIND address/length` when the mask is a prefix, else `KIND address/mask`: a subnet ID
/// may carry any mask (RFC 2407 §4.6.2.1), and a non-contiguous one must show as sent.
/// `bits` is the mask left-aligned in 128 bits, so IPv4 and IPv6 share the prefix test.
fn subnet(kind: &str, address: impl fmt::Display, mask: impl fmt::Display, bits: u128) -> String {
    if bits.leading_ones() + bits.trailing_zeros() == 128 {
        format!("{kind} {address}/{}", bits.leading_ones())
    } else {
        format!("{kind} {address}/{mask}")
    }
}

/// An identity as `TYPE value`, bounded and printable ([`crypto::untrusted::printable`]), so a
/// peer can neither make a log line grow without bound nor break it into lines of its own making.
fn identity(identity: &Identity<'_>) -> String {
    let text = |b: &[u8]| crypto::untrusted::printable_within(&String::from_utf8_lossy(b), 64);
    match identity {
        Identity::Ipv4Addr(a) => format!("IPV4 {a}"),
        Identity::Ipv6Addr(a) => format!("IPV6 {a}"),
        Identity::Fqdn(n) => format!("FQDN {}", text(n)),
        Identity::UserFqdn(n) => format!("USER_FQDN {}", text(n)),
        Identity::Ipv4Subnet { address, mask } => {
            subnet("IPV4_SUBNET", address, mask, u128::from(u32::from(*mask)) << 96)
        }
        Identity::Ipv6Subnet { address, mask } => subnet("IPV6_SUBNET", address, mask, u128::from(*mask)),
        Identity::Ipv4Range { start, end } => format!("IPV4_RANGE {start}-{end}"),
        other => crate::identity::IdTypeName(other.id_type()).to_string(),
    }
}

/// The summary of a message when tracing is on (`trace`), for `SaCore::trace_summary`.
pub(crate) fn traced(trace: bool, step: Step, encrypted: bool, payloads: &[Payload<'_>]) -> Option<String> {
    trace.then(|| summarize(step, encrypted, payloads))
}
