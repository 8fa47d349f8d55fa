//! From the operator's VRP configuration to the IKE engine's typed configuration.
//!
//! The `vrp` crate has already validated references and values; this module decides how the
//! VRP concepts map onto the engine: the `ipsec policy` bound to an interface gives the local
//! address of its peers (unless the entry's `tunnel local` or the peer's `local-address` names
//! another); its ACL's permit rules become the flows to protect; the `ike-peer`'s
//! `ike-proposal` (or every proposal, in priority order) becomes the phase-1 offer. Whatever
//! the engine cannot do yet is refused here with a reason naming the configuration item,
//! never silently dropped.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crypto::{EspCipher, SecretBytes};
use vrp::model::{AclAction, AddressMatch, PolicyEntry, PortMatch, TunnelLocal};

/// Why a valid VRP configuration cannot be run by the engine (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item}: {what}")]
pub struct Unsupported {
    /// The configuration item, e.g. `ipsec policy policy1 1`.
    pub item: String,
    /// What is not supported.
    pub what: String,
}

fn unsupported(item: impl Into<String>, what: impl Into<String>) -> Unsupported {
    Unsupported { item: item.into(), what: what.into() }
}

/// Builds the engine configuration from a validated VRP configuration whose peers use
/// pre-shared keys (a signature peer is refused: its files are not loaded here).
pub fn engine_config(config: &vrp::Config) -> Result<ike::Config, Unsupported> {
    engine_config_with(config, &crate::pki::Certificates::default())
}

/// Builds the engine configuration, with the certificate material the daemon loaded
/// ([`crate::pki::load`]) for peers that authenticate by signatures.
pub fn engine_config_with(
    config: &vrp::Config,
    certificates: &crate::pki::Certificates,
) -> Result<ike::Config, Unsupported> {
    let mut out =
        ike::Config { sha2_256_truncation_96: config.ipsec_sha2_truncate_96, ..ike::Config::default() };
    // `ike fragmentation`: announced and used with peers that announce it too.
    out.limits.fragmentation = config.ike_fragmentation.enabled;
    out.limits.fragment_size = config.ike_fragmentation.max_size as usize;
    // The hub's own addresses: no branch may claim them through a template (`ike::hub`).
    out.own_addresses =
        config.interfaces.values().filter_map(|i| i.address).map(|a| a.address.into()).collect();
    for (interface_name, interface) in &config.interfaces {
        let Some(policy_name) = &interface.ipsec_policy else { continue };
        let item = format!("interface {interface_name}");
        let interface_address = interface.address.map(|a| a.address);
        let entries = config
            .ipsec_policies
            .get(policy_name)
            .ok_or_else(|| unsupported(&item, format!("ipsec policy {policy_name} does not exist")))?;
        for (sequence, entry) in entries {
            let item = format!("ipsec policy {policy_name} {sequence}");
            let (settings, template) = match entry {
                PolicyEntry::Isakmp(settings) => (settings, false),
                PolicyEntry::Template(name) => (template_settings(config, name, &item)?, true),
            };
            let peer_name =
                settings.ike_peer.as_ref().ok_or_else(|| unsupported(&item, "the entry has no ike-peer"))?;
            let local = local_address(config, settings, peer_name, interface_address, &item)?;
            let peer = peer_index(&mut out, config, certificates, peer_name, local)?;
            let peer_local = out.peers[peer].local_address;
            if peer_local != IpAddr::V4(local) {
                return Err(unsupported(
                    item,
                    format!(
                        "ike peer {peer_name} is used with local address {peer_local} by another policy entry and \
                         {local} here: one local address per peer"
                    ),
                ));
            }
            let selectors = acl_selectors(config, settings.acl, template, &item)?;
            let mut proposals = Vec::new();
            for name in &settings.proposals {
                let proposal = config
                    .ipsec_proposals
                    .get(name)
                    .ok_or_else(|| unsupported(&item, format!("ipsec proposal {name} does not exist")))?;
                proposals.push(ipsec_proposal(proposal, &format!("ipsec proposal {name}"))?);
            }
            if proposals.is_empty() {
                return Err(unsupported(item, "the entry has no proposal"));
            }
            out.policies.push(ike::PolicyConfig {
                id: ike::PolicyId { name: policy_name.clone(), sequence: *sequence },
                peer,
                selectors,
                proposals,
                pfs: settings.pfs.map(vrp::algorithm::PfsGroup::group),
                lifetime: Duration::from_secs(u64::from(
                    settings.sa_seconds.unwrap_or(config.ipsec_global_duration.seconds),
                )),
                lifetime_kilobytes: Some(
                    settings.sa_kilobytes.unwrap_or(config.ipsec_global_duration.kilobytes),
                ),
                template: template.then(|| template_config(config, settings)),
            });
        }
    }
    Ok(out)
}

/// Our end of the entry's tunnels (`item`), as on a USG: the entry's `tunnel local IP` (or
/// `local-address IP`), else its peer's `local-address IP`, else the address of the interface
/// the group is applied to (also what `tunnel local applied-interface` names). IKE and ESP
/// are sent from it and expected on it.
fn local_address(
    config: &vrp::Config,
    settings: &vrp::model::PolicySettings,
    peer: &str,
    interface: Option<Ipv4Addr>,
    item: &str,
) -> Result<Ipv4Addr, Unsupported> {
    let peer_local = config.ike_peers.get(peer).and_then(|p| p.local_address);
    match (settings.tunnel_local, peer_local) {
        (Some(TunnelLocal::Address(a)), _) => Ok(a),
        (None, Some(a)) => Ok(a),
        (Some(TunnelLocal::AppliedInterface) | None, _) => interface.ok_or_else(|| {
            unsupported(
                item,
                "an interface with an ipsec policy needs an ip address (or a tunnel local address)",
            )
        }),
    }
}

/// The flows of a policy entry (`item`): the permit rules of its ACL in order, or, for a
/// template without an ACL, any flow (the initiator proposes it, §2.7).
fn acl_selectors(
    config: &vrp::Config,
    acl: Option<u16>,
    template: bool,
    item: &str,
) -> Result<Vec<ike::TrafficSelector>, Unsupported> {
    let acl_number = match (acl, template) {
        (Some(n), _) => Some(n),
        // A template without an ACL takes the flow from the initiator (§2.7).
        (None, true) => None,
        (None, false) => return Err(unsupported(item, "the entry has no security acl")),
    };
    let acl = match acl_number {
        Some(n) => {
            Some(config.acls.get(&n).ok_or_else(|| unsupported(item, format!("acl {n} does not exist")))?)
        }
        None => None,
    };
    let acl_number = acl_number.unwrap_or_default();
    let mut selectors = Vec::new();
    if acl.is_none() {
        selectors.push(ike::TrafficSelector::between(
            ike::Subnet::new(Ipv4Addr::UNSPECIFIED, 0),
            ike::Subnet::new(Ipv4Addr::UNSPECIFIED, 0),
        ));
    }
    for (rule_number, rule) in acl.iter().flat_map(|acl| &acl.rules) {
        if rule.action == AclAction::Deny {
            // Deny rules exempt traffic from protection; that is the data plane's job.
            continue;
        }
        let rule_item = format!("acl {acl_number} rule {rule_number}");
        selectors.push(ike::TrafficSelector {
            protocol: rule.protocol.number(),
            local: subnet(rule.source, &rule_item)?.into(),
            remote: subnet(rule.destination, &rule_item)?.into(),
            local_port: proxy_port(rule.source_port, &rule_item)?,
            remote_port: proxy_port(rule.destination_port, &rule_item)?,
        });
    }
    Ok(selectors)
}

/// What a template adds to its engine policy: its caps (`sa max …`, defaults for those left
/// out) and, per selector (as [`acl_selectors`] makes them), whether the rule names its
/// destination as an address rather than `any`.
fn template_config(config: &vrp::Config, settings: &vrp::model::PolicySettings) -> ike::TemplateConfig {
    let [ike_sas, ipsec_sas, flows, per_peer_ike_sas, per_peer_ipsec_sas, per_peer_flows] =
        settings.sa_max.values().map(|n| n as usize);
    let limits =
        ike::HubLimits { ike_sas, ipsec_sas, flows, per_peer_ike_sas, per_peer_ipsec_sas, per_peer_flows };
    let explicit_destinations = match settings.acl.and_then(|n| config.acls.get(&n)) {
        // No ACL: any flow, written as nothing.
        None => vec![false],
        Some(acl) => acl
            .rules
            .values()
            .filter(|rule| rule.action != AclAction::Deny)
            .map(|rule| !matches!(rule.destination, AddressMatch::Any))
            .collect(),
    };
    ike::TemplateConfig { limits, explicit_destinations }
}

/// The settings of policy template `name` (vrp-cli.md §2.7), bound by `item`. A template
/// with several entries would need one engine policy per entry under one `ipsec policy` name
/// and sequence; that is refused until displays and `reset` can tell them apart.
fn template_settings<'a>(
    config: &'a vrp::Config,
    name: &str,
    item: &str,
) -> Result<&'a vrp::model::PolicySettings, Unsupported> {
    let entries = config
        .policy_templates
        .get(name)
        .ok_or_else(|| unsupported(item, format!("ipsec policy-template {name} does not exist")))?;
    let mut values = entries.values();
    match (values.next(), values.next()) {
        (Some(settings), None) => Ok(settings),
        (None, _) => Err(unsupported(item, format!("ipsec policy-template {name} has no entry"))),
        (Some(_), Some(_)) => Err(unsupported(
            item,
            format!("ipsec policy-template {name} has several entries; only one is supported"),
        )),
    }
}

/// For each engine policy (same index), whether it comes from a policy template: it only
/// responds, and the data path protects and routes its flows only once a branch has
/// negotiated them (`data_path`).
pub fn template_policies(config: &vrp::Config, engine: &ike::Config) -> Vec<bool> {
    engine
        .policies
        .iter()
        .map(|p| {
            let entry = config.ipsec_policies.get(&p.id.name).and_then(|e| e.get(&p.id.sequence));
            matches!(entry, Some(PolicyEntry::Template(_)))
        })
        .collect()
}

/// The `deny` rules of each engine policy's ACL (same index), in rule order, each with the
/// number of permit rules before it: the SPD puts them there as `Bypass`, so what they match
/// first leaves in clear and is never negotiated (docs/DESIGN.md, "Deny rules"). A template's
/// ACL gives none (its flows are what branches negotiate), nor does a rule whose wildcard is
/// not contiguous (`check` warns about both).
pub fn deny_rules(config: &vrp::Config, engine: &ike::Config) -> Vec<Vec<(usize, esp::Selector)>> {
    let entry = |p: &ike::PolicyConfig| match config.ipsec_policies.get(&p.id.name)?.get(&p.id.sequence)? {
        PolicyEntry::Isakmp(settings) => config.acls.get(&settings.acl?),
        PolicyEntry::Template(_) => None,
    };
    let denies = |acl: &vrp::model::Acl| {
        let permits_before =
            |id| acl.rules.range(..id).filter(|(_, r)| r.action == AclAction::Permit).count();
        let deny = acl.rules.iter().filter(|(_, r)| r.action == AclAction::Deny);
        deny.filter_map(|(id, r)| Some((permits_before(*id), r.selector()?))).collect()
    };
    engine.policies.iter().map(|p| entry(p).map(denies).unwrap_or_default()).collect()
}

/// The engine's index of peer `name`, adding it on first use.
fn peer_index(
    out: &mut ike::Config,
    config: &vrp::Config,
    certificates: &crate::pki::Certificates,
    name: &str,
    local: Ipv4Addr,
) -> Result<usize, Unsupported> {
    if let Some(i) = out.peers.iter().position(|p| p.name == name) {
        return Ok(i);
    }
    let item = format!("ike peer {name}");
    let peer = config.ike_peers.get(name).ok_or_else(|| unsupported(&item, "no such ike peer"))?;
    let certificate = certificates.get(name).cloned();
    let key = certificate.as_ref().map(|c| c.key.algorithm());
    let proposals: Vec<ike::IkeProposal> = match peer.ike_proposal {
        Some(n) => {
            let p = config
                .ike_proposals
                .get(&n)
                .ok_or_else(|| unsupported(&item, format!("ike proposal {n} does not exist")))?;
            vec![ike_proposal(p, key, &format!("ike proposal {n}"))?]
        }
        None => config
            .ike_proposals
            .iter()
            .map(|(n, p)| ike_proposal(p, key, &format!("ike proposal {n}")))
            .collect::<Result<_, _>>()?,
    };
    if proposals.is_empty() {
        return Err(unsupported(item, "no ike proposal is configured"));
    }
    let uses_psk = proposals.iter().any(|p| p.auth_method == ike::AuthMethod::PreSharedKey);
    let site_keys = site_keys(config, peer, &item)?;
    let pre_shared_key = match &peer.pre_shared_key {
        Some(key) => SecretBytes::from_slice(key.expose().as_bytes()),
        None if uses_psk && site_keys.is_empty() => {
            return Err(unsupported(&item, "pre-share authentication needs a pre-shared-key"))
        }
        // Signatures only: no key is ever used.
        None => SecretBytes::from_slice(&[]),
    };
    // `auto` initiates main mode and, as responder, accepts both.
    let (exchange_mode, accept_aggressive_mode) = match peer.exchange_mode {
        vrp::algorithm::ExchangeMode::Main => (ike::ExchangeMode::Main, false),
        vrp::algorithm::ExchangeMode::Auto => (ike::ExchangeMode::Main, true),
        vrp::algorithm::ExchangeMode::Aggressive => (ike::ExchangeMode::Aggressive, true),
    };
    let subject = certificate.as_ref().map(|c| c.certificate.summary().subject.clone());
    let local_value = match peer.local_id_type {
        // `local-id-type dn`: the subject of our certificate.
        vrp::algorithm::IdType::Dn => subject.as_deref(),
        // `ike local-name` is a name: it stands in for an FQDN or USER-FQDN identity only,
        // and an address identity is the peer's `local-id` or else our address.
        vrp::algorithm::IdType::Ip => peer.local_id.as_deref(),
        // Without `ike local-name`, the device name (as Comware does, vrp-cli.md §2.1).
        _ => peer.local_id.as_deref().or(config.ike_local_name.as_deref()).or(config.sysname.as_deref()),
    };
    let local_id = identity(peer.local_id_type, local_value, &item)?;
    let remote_id = match (&peer.remote_id, peer.remote_id_type, peer.authentication_address) {
        (Some(id), kind, _) => identity(kind.unwrap_or(vrp::algorithm::IdType::Fqdn), Some(id), &item)?,
        // `remote-address authentication-address`: the peer identifies itself by this address
        // (ID_IPV4_ADDR), which may differ from the tunnel address it sends from (a NAT).
        (None, None | Some(vrp::algorithm::IdType::Ip), Some(a)) => Some(ike::IdentityConfig::Address(a)),
        (None, ..) => None,
    };
    out.peers.push(ike::PeerConfig {
        name: name.to_owned(),
        local_address: IpAddr::V4(local),
        remote_address: peer.remote_address.map(IpAddr::V4),
        exchange_mode,
        proposals,
        pre_shared_key,
        site_keys,
        local_id,
        remote_id,
        nat_traversal: peer.nat_traversal,
        force_encapsulation: peer.nat_traversal && peer.nat_traversal_force,
        dpd: dpd(&config.ike_dpd, &peer.dpd, &item)?,
        // `exchange-mode aggressive` on a USG means aggressive mode with that peer, whichever
        // side starts, and `auto` accepts it as responder: we answer it from this peer only,
        // with pre-shared keys or signatures (vrp's validation warns about aggressive mode
        // with a pre-shared key). Peers left in main mode refuse it.
        accept_aggressive_mode,
        certificate,
    });
    Ok(out.peers.len() - 1)
}

/// The peer's `dpd …` settings over the global `ike dpd …` ones. Both `periodic` and
/// `on-demand` become the engine's one behaviour: R-U-THERE after `idle-time` without
/// anything from the peer (traffic or IKE), which is what both mean for a tunnel that carries
/// traffic both ways. The engine sends HASH before NOTIFY (RFC 3706 §5, `seq-hash-notify`);
/// the other order is refused rather than silently changed.
fn dpd(
    global: &vrp::model::GlobalDpd,
    peer: &vrp::model::PeerDpd,
    item: &str,
) -> Result<Option<ike::DpdConfig>, Unsupported> {
    if peer.message_order == Some(vrp::algorithm::DpdMessageOrder::SeqNotifyHash) {
        return Err(unsupported(item, "dpd msg seq-notify-hash is not supported (only seq-hash-notify)"));
    }
    if peer.dpd_type.or(global.dpd_type).is_none() {
        return Ok(None);
    }
    let seconds = |s: u32| Duration::from_secs(u64::from(s));
    Ok(Some(ike::DpdConfig {
        idle_time: seconds(peer.idle_time.unwrap_or(global.idle_time)),
        retransmit_interval: seconds(peer.retransmit_interval.unwrap_or(global.retransmit_interval)),
        retry_limit: peer.retry_limit.unwrap_or(global.retry_limit),
    }))
}

/// The site keys of a peer with `user-table N` (empty without one): each user's identity and
/// key, in `user id` order (the engine takes the first row that matches).
fn site_keys(
    config: &vrp::Config,
    peer: &vrp::model::IkePeer,
    item: &str,
) -> Result<Vec<ike::SiteKey>, Unsupported> {
    let Some(n) = peer.user_table else { return Ok(Vec::new()) };
    let table = config
        .ike_user_tables
        .get(&n)
        .ok_or_else(|| unsupported(item, format!("ike user-table {n} does not exist")))?;
    let mut keys = Vec::with_capacity(table.users.len());
    for (id, user) in &table.users {
        let (Some(who), Some(key)) = (&user.id, &user.pre_shared_key) else {
            return Err(unsupported(
                item,
                format!("ike user-table {n} user id {id} needs an id-type and a pre-shared-key"),
            ));
        };
        let id = match who {
            vrp::model::UserId::Ip(a) => ike::IdentityConfig::Address(*a),
            vrp::model::UserId::Fqdn(name) => ike::IdentityConfig::Fqdn(name.clone()),
            vrp::model::UserId::UserFqdn(name) => ike::IdentityConfig::UserFqdn(name.clone()),
        };
        keys.push(ike::SiteKey { id, pre_shared_key: SecretBytes::from_slice(key.expose().as_bytes()) });
    }
    if keys.is_empty() {
        return Err(unsupported(item, format!("ike user-table {n} has no users")));
    }
    Ok(keys)
}

fn identity(
    kind: vrp::algorithm::IdType,
    value: Option<&str>,
    item: &str,
) -> Result<Option<ike::IdentityConfig>, Unsupported> {
    use vrp::algorithm::IdType;
    Ok(match (kind, value) {
        (IdType::Ip, None) => None,
        (IdType::Ip, Some(v)) => Some(ike::IdentityConfig::Address(
            v.parse().map_err(|_| unsupported(item, format!("`{v}` is not an IPv4 address identity")))?,
        )),
        (IdType::Fqdn, Some(v)) => Some(ike::IdentityConfig::Fqdn(v.to_owned())),
        (IdType::UserFqdn, Some(v)) => Some(ike::IdentityConfig::UserFqdn(v.to_owned())),
        (IdType::Fqdn | IdType::UserFqdn, None) => {
            return Err(unsupported(
                item,
                "an fqdn or user-fqdn identity needs local-id, ike local-name or sysname",
            ))
        }
        (IdType::Any, _) => None,
        (IdType::Dn, Some(v)) => Some(ike::IdentityConfig::Dn(v.to_owned())),
        (IdType::Dn, None) => {
            return Err(unsupported(
                item,
                "a dn identity needs certificate local-filename (local) or remote-id (remote)",
            ))
        }
        (IdType::KeyId, _) => return Err(unsupported(item, "key-id identities are not supported")),
    })
}

/// The engine proposal for `p`; `key` is the algorithm of the peer's private key, which
/// decides the signature method (an ECDSA method per curve, RFC 4754).
fn ike_proposal(
    p: &vrp::model::IkeProposal,
    key: Option<crypto::SignatureAlgorithm>,
    item: &str,
) -> Result<ike::IkeProposal, Unsupported> {
    use vrp::algorithm::AuthenticationMethod;
    let auth_method = match (p.method, key) {
        (AuthenticationMethod::PreShare, _) => ike::AuthMethod::PreSharedKey,
        (AuthenticationMethod::RsaSignature | AuthenticationMethod::EcdsaSignature, None) => {
            return Err(unsupported(
                item,
                "signature authentication needs the peer's certificate files loaded",
            ));
        }
        (AuthenticationMethod::RsaSignature, Some(key @ crypto::SignatureAlgorithm::Rsa { .. })) => {
            ike::AuthMethod::for_key(key)
        }
        (AuthenticationMethod::EcdsaSignature, Some(key))
            if !matches!(key, crypto::SignatureAlgorithm::Rsa { .. }) =>
        {
            ike::AuthMethod::for_key(key)
        }
        (method, Some(key)) => {
            return Err(unsupported(
                item,
                format!("authentication-method {method} cannot be used with the {key} key of certificate local-key-filename"),
            ));
        }
    };
    Ok(ike::IkeProposal {
        encryption: p.encryption,
        hash: p.authentication,
        auth_method,
        group: p.dh,
        lifetime: Duration::from_secs(u64::from(p.sa_duration)),
    })
}

fn ipsec_proposal(p: &vrp::model::IpsecProposal, item: &str) -> Result<ike::IpsecProposal, Unsupported> {
    use vrp::algorithm::{EncapsulationMode, Transform};
    let mode = match p.encapsulation {
        EncapsulationMode::Tunnel => ike::EncapsulationMode::Tunnel,
        EncapsulationMode::Transport => ike::EncapsulationMode::Transport,
        EncapsulationMode::Auto => {
            return Err(unsupported(item, "encapsulation-mode auto is not supported yet"))
        }
    };
    if p.transform == Transform::Ah {
        // AH alone: `esp …` settings, present by default, do not apply.
        let protocols = ike::IpsecProtocols::Ah { integrity: p.ah_authentication };
        return Ok(ike::IpsecProposal { protocols, mode });
    }
    // `undo esp encryption-algorithm` is ESP_NULL (RFC 2410).
    let encryption = p.esp_encryption.unwrap_or(EspCipher::Null);
    // AES-GCM carries its own integrity (RFC 4106): `esp authentication-algorithm`, which the
    // proposal has by default, does not apply to it and is not offered.
    let integrity = if encryption.is_aead() { None } else { p.esp_authentication };
    if integrity.is_none() && !encryption.is_aead() {
        return Err(unsupported(item, "ESP without an authentication algorithm is not allowed"));
    }
    let protocols = match p.transform {
        Transform::AhEsp => ike::IpsecProtocols::AhEsp {
            ah_integrity: p.ah_authentication,
            esp_encryption: encryption,
            esp_integrity: integrity,
        },
        _ => ike::IpsecProtocols::Esp { encryption, integrity },
    };
    Ok(ike::IpsecProposal { protocols, mode })
}

/// The port of a proxy identity (RFC 2407 §4.6.2: one port, or 0 for any) for a rule's
/// `source-port` / `destination-port`: `eq P` (or a range of one port) is that port, a range
/// of every port is any; a wider range cannot be negotiated in IKEv1 and is refused.
fn proxy_port(ports: Option<PortMatch>, item: &str) -> Result<Option<u16>, Unsupported> {
    let Some(ports) = ports else { return Ok(None) };
    match ports.range() {
        (0, 65_535) => Ok(None),
        (0, 0) => Err(unsupported(item, "port 0 cannot be negotiated (a proxy ID's port 0 means any port)")),
        (first, last) if first == last => Ok(u16::try_from(first).ok()),
        (first, last) => Err(unsupported(
            item,
            format!(
                "ports {first}-{last}: an IKEv1 proxy ID carries one port or any, \
                 so a port range cannot be negotiated; write one rule per port"
            ),
        )),
    }
}

fn subnet(m: AddressMatch, item: &str) -> Result<ike::Subnet, Unsupported> {
    let (low, high) =
        m.range().ok_or_else(|| unsupported(item, "non-contiguous wildcard masks cannot be negotiated"))?;
    let host_bits = high ^ low;
    Ok(ike::Subnet { address: Ipv4Addr::from(low), mask: Ipv4Addr::from(!host_bits) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto::{DhGroup, HashAlgorithm, Integrity, Phase1Cipher};

    fn convert(text: &str) -> Result<ike::Config, Unsupported> {
        let checked = vrp::check("t.cfg", text, None);
        let config = checked.config.unwrap_or_else(|| panic!("{:?}", checked.diagnostics));
        engine_config(&config)
    }

    const BASE: &str = "ike proposal 10\n encryption-algorithm aes-128\n dh group19\n\
ike peer b\n ike-proposal 10\n undo version 2\n remote-address 192.0.2.2\n pre-shared-key 0123456789abcdef\n\
acl number 3001\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\n\
ipsec proposal a\n\
ipsec policy p 1 isakmp\n security acl 3001\n proposal a\n ike-peer b\n pfs dh-group19\n sa duration time-based 1800\n\
interface out0\n ip address 192.0.2.1 255.255.255.0\n ipsec policy p\n";

    #[test]
    fn converts_proposals_peers_and_policies() {
        let c = convert(BASE).unwrap();
        let p = &c.peers[0];
        assert_eq!(p.proposals[0].encryption, Phase1Cipher::Aes128);
        assert_eq!(p.proposals[0].group, DhGroup::Ecp256);
        assert_eq!(p.proposals[0].hash, HashAlgorithm::Sha256, "the reference default");
        let policy = &c.policies[0];
        assert_eq!(policy.pfs, Some(DhGroup::Ecp256));
        assert_eq!(policy.lifetime, Duration::from_secs(1800));
        assert_eq!(
            policy.proposals[0].protocols,
            ike::IpsecProtocols::Esp {
                encryption: EspCipher::AesCbc256,
                integrity: Some(Integrity::HmacSha256_128)
            },
            "the reference's IPsec defaults"
        );
        assert_eq!(policy.selectors[0].remote, ike::Subnet::new(Ipv4Addr::new(10, 2, 2, 0), 24));
    }

    /// `transform ah` uses only `ah authentication-algorithm`; `ah-esp` both, AH outside.
    #[test]
    fn converts_ah_and_ah_esp() {
        let ah = BASE.replace(
            "ipsec proposal a\n",
            "ipsec proposal a\n transform ah\n ah authentication-algorithm sha2-512\n encapsulation-mode transport\n",
        );
        let proposal = convert(&ah).unwrap().policies[0].proposals[0];
        assert_eq!(proposal.protocols, ike::IpsecProtocols::Ah { integrity: Integrity::HmacSha512_256 });
        assert_eq!(proposal.mode, ike::EncapsulationMode::Transport);
        let ah_esp = BASE.replace(
            "ipsec proposal a\n",
            "ipsec proposal a\n transform ah-esp\n ah authentication-algorithm md5\n esp encryption-algorithm aes-128-gcm-128\n",
        );
        let checked = vrp::check("t.cfg", &ah_esp, None);
        assert!(
            checked.diagnostics.iter().any(|d| d.to_string().contains("ah authentication md5")),
            "a weak AH algorithm is warned about: {:?}",
            checked.diagnostics
        );
        assert_eq!(
            convert(&ah_esp).unwrap().policies[0].proposals[0].protocols,
            ike::IpsecProtocols::AhEsp {
                ah_integrity: Integrity::HmacMd5_96,
                esp_encryption: EspCipher::AesGcm128,
                esp_integrity: None
            }
        );
    }

    /// Issue 15: a rule's protocol and ports become the proxy IDs' protocol and ports
    /// (RFC 2407 §4.6.2), one selector (one SA pair) per rule.
    #[test]
    fn rules_with_protocol_and_ports_become_proxy_ids_with_them() {
        let text = BASE.replace(
            "rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
            "rule 5 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 1701\n \
             rule 10 permit tcp source 10.1.1.7 0 source-port range 443 443 destination 10.2.2.0 0.0.0.255\n \
             rule 15 permit udp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 source-port range 0 65535\n \
             rule 20 permit gre source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
        );
        let selectors = &convert(&text).unwrap().policies[0].selectors;
        let net = |c: u8| ike::Subnet::new(Ipv4Addr::new(10, c, c, 0), 24);
        let l2tp = ike::TrafficSelector {
            protocol: 17,
            remote_port: Some(1701),
            ..ike::TrafficSelector::between(net(1), net(2))
        };
        let https = ike::TrafficSelector {
            protocol: 6,
            local: ike::Subnet::new(Ipv4Addr::new(10, 1, 1, 7), 32).into(),
            local_port: Some(443),
            ..ike::TrafficSelector::between(net(1), net(2))
        };
        let udp = ike::TrafficSelector { protocol: 17, ..ike::TrafficSelector::between(net(1), net(2)) };
        let gre = ike::TrafficSelector { protocol: 47, ..ike::TrafficSelector::between(net(1), net(2)) };
        assert_eq!(selectors, &[l2tp, https, udp, gre]);
    }

    #[test]
    fn refuses_what_the_engine_cannot_do_naming_the_item() {
        let with_ports = BASE.replace(
            "rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255",
            "rule 5 permit tcp source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255 destination-port eq 80",
        );
        let e = convert(&with_ports.replace("eq 80", "range 80 90")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "acl 3001 rule 5: ports 80-90: an IKEv1 proxy ID carries one port or any, so a port \
             range cannot be negotiated; write one rule per port"
        );
        for ports in ["lt 1024", "gt 1023", "eq 0"] {
            let e = convert(&with_ports.replace("eq 80", ports)).unwrap_err();
            assert!(e.to_string().starts_with("acl 3001 rule 5: port"), "{ports}: {e}");
        }
        let auto = BASE.replace("ipsec proposal a\n", "ipsec proposal a\n encapsulation-mode auto\n");
        let e = convert(&auto).unwrap_err();
        assert_eq!(e.to_string(), "ipsec proposal a: encapsulation-mode auto is not supported yet");
    }

    /// The hub of issue 5: a template whose peer has no address, bound at the largest
    /// sequence after a specific entry.
    const HUB: &str = "ike proposal 10\n encryption-algorithm aes-128\n dh group19\n\
ike peer b\n ike-proposal 10\n undo version 2\n remote-address 192.0.2.2\n pre-shared-key 0123456789abcdef\n\
ike peer any\n ike-proposal 10\n undo version 2\n pre-shared-key 0123456789abcdef\n\
acl number 3001\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.2.0 0.0.0.255\n\
acl number 3002\n rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.0.0 0.0.255.255\n\
ipsec proposal a\n\
ipsec policy-template branches 1\n security acl 3002\n proposal a\n ike-peer any\n\
ipsec policy p 1 isakmp\n security acl 3001\n proposal a\n ike-peer b\n\
ipsec policy p 10 isakmp template branches\n\
interface out0\n ip address 192.0.2.1 255.255.255.0\n ipsec policy p\n";

    #[test]
    fn a_policy_template_becomes_a_responder_only_policy() {
        let c = convert(HUB).unwrap();
        assert_eq!(c.policies.len(), 2);
        let template = &c.policies[1];
        assert_eq!(template.id, ike::PolicyId { name: "p".into(), sequence: 10 });
        assert_eq!(c.peers[template.peer].name, "any");
        assert_eq!(c.peers[template.peer].remote_address, None);
        assert_eq!(c.template_peer(), Some(template.peer));
        assert_eq!(template.selectors[0].remote, ike::Subnet::new(Ipv4Addr::new(10, 2, 0, 0), 16));
        let checked = vrp::check("t.cfg", HUB, None);
        assert_eq!(template_policies(checked.config.as_ref().unwrap(), &c), [false, true]);

        // Without an ACL the template takes whatever flow the branch proposes.
        let no_acl = HUB.replace(" security acl 3002\n", "");
        let c = convert(&no_acl).unwrap();
        let any = ike::Subnet::new(Ipv4Addr::UNSPECIFIED, 0);
        assert_eq!(c.policies[1].selectors, [ike::TrafficSelector::between(any, any)]);
        assert_eq!(c.policies[1].template.as_ref().unwrap().explicit_destinations, [false]);
    }

    /// A template's caps and ACL reach the engine (issue 13, hub limits): `sa max` values over
    /// the defaults, which rules name their destination (`0.0.0.0 255.255.255.255` does,
    /// `any` does not), and the hub's interface addresses.
    #[test]
    fn a_policy_template_brings_its_caps_and_named_destinations() {
        let text = HUB
            .replace(
                " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.0.0 0.0.255.255\n",
                " rule 5 permit ip source 10.1.1.0 0.0.0.255 destination 10.2.0.0 0.0.255.255\n \
                 rule 10 permit ip source 10.1.1.0 0.0.0.255 destination 0.0.0.0 255.255.255.255\n \
                 rule 15 permit ip source 10.1.1.0 0.0.0.255 destination any\n",
            )
            .replace(" ike-peer any\n", " ike-peer any\n sa max flow 300\n sa max per-peer ike-sa 2\n");
        let c = convert(&text).unwrap();
        assert_eq!(c.policies[0].template, None, "an isakmp entry has no caps");
        let template = c.policies[1].template.as_ref().unwrap();
        assert_eq!(template.explicit_destinations, [true, true, false]);
        assert_eq!(
            template.limits,
            ike::HubLimits { flows: 300, per_peer_ike_sas: 2, ..ike::HubLimits::default() }
        );
        assert_eq!(c.own_addresses, [IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]);
    }

    #[test]
    fn refuses_a_template_with_several_entries() {
        let two = HUB.replace(
            "ipsec policy p 1 isakmp\n",
            "ipsec policy-template branches 2\n proposal a\n ike-peer any\nipsec policy p 1 isakmp\n",
        );
        let e = convert(&two).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ipsec policy p 10: ipsec policy-template branches has several entries; only one is supported"
        );
        // (A template entry before another entry, and an isakmp entry whose peer has no
        // address, are refused by `vrp`'s validation.)
    }

    /// Issue 15's known bug: a global `ike local-name` with a peer whose `local-id-type` is
    /// `ip` (the default) was refused ("`rta` is not an IPv4 address identity"); the name
    /// applies to FQDN and USER-FQDN identities only, the address identity stays ours.
    #[test]
    fn ike_local_name_does_not_apply_to_an_address_identity() {
        let c = convert(&format!("ike local-name rta\n{BASE}")).unwrap();
        assert_eq!(c.peers[0].local_id, None, "ID_IPV4_ADDR of the local address");
        let explicit = BASE.replace(" ike-proposal 10\n", " ike-proposal 10\n local-id 192.0.2.1\n");
        let c = convert(&format!("ike local-name rta\n{explicit}")).unwrap();
        assert_eq!(c.peers[0].local_id, Some(ike::IdentityConfig::Address(Ipv4Addr::new(192, 0, 2, 1))));
        let fqdn = BASE.replace(" ike-proposal 10\n", " ike-proposal 10\n local-id-type fqdn\n");
        let c = convert(&format!("ike local-name rta\n{fqdn}")).unwrap();
        assert_eq!(c.peers[0].local_id, Some(ike::IdentityConfig::Fqdn("rta".into())), "still the FQDN");
    }

    /// `tunnel local IP` (and its VRP8 spelling `local-address IP` in the policy), the peer's
    /// `local-address IP`, and `applied-interface` choose our end of the tunnel: the engine
    /// sends IKE (and the gateway ESP) from it. Before, they were ignored (or refused).
    #[test]
    fn tunnel_local_and_local_address_choose_our_end_of_the_tunnel() {
        let local = |c: &ike::Config| c.peers[0].local_address;
        let at = |a: [u8; 4]| IpAddr::V4(Ipv4Addr::from(a));
        assert_eq!(local(&convert(BASE).unwrap()), at([192, 0, 2, 1]), "the interface's address");
        let policy = " sa duration time-based 1800\n";
        let tunnel = BASE.replace(policy, &format!("{policy} tunnel local 192.0.2.11\n"));
        assert_eq!(local(&convert(&tunnel).unwrap()), at([192, 0, 2, 11]));
        let vrp8 = BASE.replace(policy, &format!("{policy} local-address 192.0.2.12\n"));
        assert_eq!(local(&convert(&vrp8).unwrap()), at([192, 0, 2, 12]));
        let peer = " pre-shared-key 0123456789abcdef\n";
        let in_peer = BASE.replace(peer, &format!("{peer} local-address 192.0.2.13\n"));
        assert_eq!(local(&convert(&in_peer).unwrap()), at([192, 0, 2, 13]));
        let applied = in_peer.replace(policy, &format!("{policy} tunnel local applied-interface\n"));
        assert_eq!(local(&convert(&applied).unwrap()), at([192, 0, 2, 1]), "the policy's setting wins");
        // No interface address is needed when the tunnel's local address is given.
        let no_address = tunnel.replace(" ip address 192.0.2.1 255.255.255.0\n", "");
        assert_eq!(local(&convert(&no_address).unwrap()), at([192, 0, 2, 11]));
        // Two entries with one peer and two local addresses cannot share the peer's IKE SA.
        let two = tunnel.replace(
            "interface out0\n",
            "acl number 3002\n rule 5 permit ip source 10.1.2.0 0.0.0.255 destination 10.2.3.0 0.0.0.255\n\
             ipsec policy p 2 isakmp\n security acl 3002\n proposal a\n ike-peer b\ninterface out0\n",
        );
        assert_eq!(
            convert(&two).unwrap_err().to_string(),
            "ipsec policy p 2: ike peer b is used with local address 192.0.2.11 by another policy entry and \
             192.0.2.1 here: one local address per peer"
        );
    }

    /// `remote-address authentication-address IP`: the address identity the peer must present
    /// (it may differ from the address it sends from); an explicit `remote-id` still wins.
    #[test]
    fn authentication_address_is_the_identity_the_peer_must_present() {
        assert_eq!(convert(BASE).unwrap().peers[0].remote_id, None);
        let peer = " pre-shared-key 0123456789abcdef\n";
        let auth = BASE.replace(peer, &format!("{peer} remote-address authentication-address 10.9.9.9\n"));
        let c = convert(&auth).unwrap();
        assert_eq!(c.peers[0].remote_id, Some(ike::IdentityConfig::Address(Ipv4Addr::new(10, 9, 9, 9))));
        assert_eq!(
            c.peers[0].remote_address,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))),
            "still the tunnel's"
        );
        let with_id = auth.replace(peer, &format!("{peer} remote-id fwb.example.net\n"));
        assert_eq!(
            convert(&with_id).unwrap().peers[0].remote_id,
            Some(ike::IdentityConfig::Fqdn("fwb.example.net".into()))
        );
    }

    #[test]
    fn converts_ike_fragmentation() {
        let c = convert(BASE).unwrap();
        assert!(c.limits.fragmentation, "on by default");
        assert_eq!(c.limits.fragment_size, 1248);
        let c = convert(&format!("ike fragmentation max-size 1400\n{BASE}")).unwrap();
        assert_eq!((c.limits.fragmentation, c.limits.fragment_size), (true, 1400));
        let c = convert(&format!("undo ike fragmentation\n{BASE}")).unwrap();
        assert!(!c.limits.fragmentation);
    }

    #[test]
    fn converts_nat_traversal_and_dpd() {
        let c = convert(BASE).unwrap();
        assert!(c.peers[0].nat_traversal, "on by default (vrp-cli.md §3)");
        assert_eq!(c.peers[0].dpd, None, "DPD is off unless configured");
        let peer = " pre-shared-key 0123456789abcdef\n";
        let with_dpd = BASE
            .replace(peer, &format!("{peer} undo nat traversal\n dpd type periodic\n dpd idle-time 20\n"));
        let c = convert(&with_dpd).unwrap();
        assert!(!c.peers[0].nat_traversal);
        assert!(!convert(BASE).unwrap().peers[0].force_encapsulation, "off by default");
        let forced = BASE.replace(peer, &format!("{peer} nat traversal force-encapsulation\n"));
        let forced = convert(&forced).unwrap();
        assert!(forced.peers[0].nat_traversal && forced.peers[0].force_encapsulation);
        let expected = ike::DpdConfig {
            idle_time: Duration::from_secs(20),
            retransmit_interval: Duration::from_secs(15),
            retry_limit: 3,
        };
        assert_eq!(c.peers[0].dpd, Some(expected));
        let other_order = with_dpd.replace(" dpd idle-time 20\n", " dpd msg seq-notify-hash\n");
        let e = convert(&other_order).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ike peer b: dpd msg seq-notify-hash is not supported (only seq-hash-notify)"
        );
    }

    #[test]
    fn exchange_mode_aggressive_allows_aggressive_mode_from_that_peer_only() {
        let c = convert(BASE).unwrap();
        assert_eq!(c.peers[0].exchange_mode, ike::ExchangeMode::Main);
        assert!(!c.peers[0].accept_aggressive_mode, "refused unless configured");
        let peer = " pre-shared-key 0123456789abcdef\n";
        let aggressive = BASE.replace(peer, &format!("{peer} exchange-mode aggressive\n"));
        let c = convert(&aggressive).unwrap();
        assert_eq!(c.peers[0].exchange_mode, ike::ExchangeMode::Aggressive);
        assert!(c.peers[0].accept_aggressive_mode);
    }

    #[test]
    fn exchange_mode_auto_initiates_main_mode_and_accepts_aggressive_mode() {
        let peer = " pre-shared-key 0123456789abcdef\n";
        let auto = BASE.replace(peer, &format!("{peer} exchange-mode auto\n"));
        let c = convert(&auto).unwrap();
        assert_eq!(c.peers[0].exchange_mode, ike::ExchangeMode::Main, "initiates main mode");
        assert!(c.peers[0].accept_aggressive_mode, "answers aggressive mode (before: refused)");
    }
}
