//! Phase-1 identities: the peer's as it presented it (for displays and logs) and the check
//! against a configured `remote-id`.

use core::fmt;

use isakmp::{IdType, Identification, Identity};

use crate::config::{IdentityConfig, PeerConfig};
use crate::failure::{FailureReason, IdentityFailure};

/// A phase-1 identity as the peer presented it, in display form (`display ike sa verbose`'s
/// `Remote ID type` and `Remote ID`). Names are escaped and bounded
/// ([`crypto::untrusted::printable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// `IP`, `FQDN`, `USER-FQDN`, `IP-SUBNET`, `IP-RANGE`, `DN`, `KEY-ID` or the ID type number.
    pub kind: String,
    /// The identity itself.
    pub value: String,
}

impl PeerIdentity {
    /// The display form of `identity`.
    pub(crate) fn of(identity: &Identity<'_>) -> Self {
        let text = crypto::untrusted::printable;
        let (kind, value) = match identity {
            Identity::Ipv4Addr(a) => ("IP".to_owned(), a.to_string()),
            Identity::Ipv6Addr(a) => ("IP".to_owned(), a.to_string()),
            Identity::Fqdn(n) => ("FQDN".to_owned(), text(n)),
            Identity::UserFqdn(n) => ("USER-FQDN".to_owned(), text(n)),
            Identity::Ipv4Subnet { address, mask } => ("IP-SUBNET".to_owned(), format!("{address}/{mask}")),
            Identity::Ipv4Range { start, end } => ("IP-RANGE".to_owned(), format!("{start}-{end}")),
            Identity::DerAsn1Dn(der) => (
                "DN".to_owned(),
                crypto::x509::dn_der_to_text(der)
                    .map_or_else(|| "(unparseable)".to_owned(), |dn| crypto::untrusted::printable_str(&dn)),
            ),
            other => (IdTypeName(other.id_type()).to_string(), String::new()),
        };
        Self { kind, value }
    }
}

/// A phase-1 identity as bytes (ID type, then data; protocol and port left out), compared
/// exactly: INITIAL-CONTACT clears only the SAs between the same pair of identities
/// (`engine::initial_contact`), and two names that escape or shorten to the same display
/// text must still differ here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdentityKey(Vec<u8>);

impl IdentityKey {
    pub(crate) fn of(identity: &Identity<'_>) -> Self {
        let mut bytes = vec![u8::from(identity.id_type())];
        identity.emit_data(&mut bytes);
        Self(bytes)
    }
}

/// Checks the identity the peer presented against `remote-id`, when one is configured.
pub(crate) fn check_remote_identity(peer: &PeerConfig, id: &Identification<'_>) -> Result<(), FailureReason> {
    let Some(expected) = &peer.remote_id else { return Ok(()) };
    if expected.matches(&id.identity) {
        Ok(())
    } else {
        Err(FailureReason::Identity(IdentityFailure::Mismatch {
            received: describe_identity(&id.identity),
            expected: match expected {
                IdentityConfig::Address(a) => format!("ip {a}"),
                IdentityConfig::Fqdn(n) => format!("fqdn {n}"),
                IdentityConfig::UserFqdn(n) => format!("user-fqdn {n}"),
                IdentityConfig::Dn(n) => format!("dn {n}"),
            },
        }))
    }
}

/// An identity for log lines and failure reasons; names are escaped and bounded
/// ([`crypto::untrusted::printable`]).
pub(crate) fn describe_identity(identity: &Identity<'_>) -> String {
    let text = crypto::untrusted::printable;
    match identity {
        Identity::Ipv4Addr(a) => format!("ip {a}"),
        Identity::Ipv6Addr(a) => format!("ip {a}"),
        Identity::Fqdn(n) => format!("fqdn {}", text(n)),
        Identity::UserFqdn(n) => format!("user-fqdn {}", text(n)),
        Identity::Ipv4Subnet { address, mask } => format!("{address}/{mask}"),
        Identity::Ipv4Range { start, end } => format!("{start}-{end}"),
        Identity::DerAsn1Dn(der) => match crypto::x509::dn_der_to_text(der) {
            Some(text) => format!("dn {}", crypto::untrusted::printable_str(&text)),
            None => "dn (unparseable)".to_owned(),
        },
        other => IdTypeName(other.id_type()).to_string(),
    }
}

/// An identification type by the name `display ike sa verbose` uses (`IP`, `FQDN`, `DN`, …),
/// or its number (RFC 2407 §4.6.2.1).
pub(crate) struct IdTypeName(pub(crate) IdType);

impl fmt::Display for IdTypeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            IdType::Ipv4Addr | IdType::Ipv6Addr => "IP",
            IdType::Fqdn => "FQDN",
            IdType::UserFqdn => "USER-FQDN",
            IdType::Ipv4AddrSubnet | IdType::Ipv6AddrSubnet => "IP-SUBNET",
            IdType::Ipv4AddrRange | IdType::Ipv6AddrRange => "IP-RANGE",
            IdType::DerAsn1Dn => "DN",
            IdType::DerAsn1Gn => "GN",
            IdType::KeyId => "KEY-ID",
            other => return write!(f, "ID type {}", u8::from(other)),
        })
    }
}
