//! Checks that a parsed [`Config`] can work, and warns about what works but is weak.
//!
//! Errors: references to missing objects (§2.3 `ike-proposal`, §2.6 `security acl`,
//! `proposal`, `ike-peer`, §2.7 templates, §2.8 `ipsec policy`), policy entries lacking a
//! mandatory setting (§2.6), template entries that are not the last of their group (§2.7),
//! policy entries that protect overlapping traffic on one interface (§4 rule 7: the first
//! entry wins, so the later one is dead), a group bound to two interfaces (§2.8), and what
//! keysteward does not implement (IKEv2-only peers, §6), and signature peers without their
//! certificate, key or CA files.
//!
//! Warnings: DES, 3DES, MD5, MODP groups 1/2/5, aggressive mode with pre-shared keys, keys
//! shorter than 16 characters, peers left with IKEv2 enabled (keysteward uses IKEv1, §3),
//! addresses the host does not have (when the caller passes the host's addresses), and what
//! is accepted but has no effect here (issue 15, "nothing silently ignored": a policy group
//! applied to no interface, a template no policy uses, an authentication address a
//! `remote-id` overrides, a static route that an IPsec policy's TUN route supersedes).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::algorithm::{AuthenticationMethod, ExchangeMode, Transform, Value};
use crate::diagnostic::{Diagnostic, DiagnosticKind, Location, Severity};
use crate::model::{AclAction, AclProtocol, AclRule, Config, PolicyEntry, PolicySettings, TunnelLocal};
use crate::parser::{SourceMap, View};
pub use crate::protected::{protected_ranges, protecting_policy, protocol_ranges, ProtectedRange};

/// Shortest pre-shared key that does not draw a warning.
pub const MIN_KEY_LEN: usize = 16;

/// Checks `config`; diagnostics name `file` and, when `source_map` is given, the line of
/// the offending setting. `host_addresses`, when given, are the addresses the host owns.
pub fn validate(
    file: &str,
    config: &Config,
    source_map: Option<&SourceMap>,
    host_addresses: Option<&[Ipv4Addr]>,
) -> Vec<Diagnostic> {
    let empty = SourceMap::default();
    let mut v = Validator { file, map: source_map.unwrap_or(&empty), out: Vec::new() };
    v.ike_proposals(config);
    v.ike_peers(config);
    v.user_tables(config);
    v.ipsec_proposals(config);
    for (name, entries) in &config.policy_templates {
        for (seq, settings) in entries {
            v.policy_settings(config, &View::Template(name.clone(), *seq), settings, true);
        }
    }
    v.policies(config);
    v.interfaces(config, host_addresses);
    v.metrics(config);
    // What has no effect is said of a configuration that can run: with a broken reference,
    // the objects it should have named would only add noise to the error.
    if !v.out.iter().any(Diagnostic::is_error) {
        v.no_effect(config, host_addresses);
    }
    v.out.sort_by_key(|d| (d.line, d.column));
    v.out
}

/// Two user-table identities name the same site (names compare case-insensitively).
fn same_site(a: &crate::model::UserId, b: &crate::model::UserId) -> bool {
    use crate::model::UserId;
    match (a, b) {
        (UserId::Ip(x), UserId::Ip(y)) => x == y,
        (UserId::Fqdn(x), UserId::Fqdn(y)) | (UserId::UserFqdn(x), UserId::UserFqdn(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        _ => false,
    }
}

struct Validator<'a> {
    file: &'a str,
    map: &'a SourceMap,
    out: Vec<Diagnostic>,
}

impl Validator<'_> {
    /// Reports at the first key of `keys` that the source map knows.
    fn report(&mut self, keys: &[String], severity: Severity, kind: DiagnosticKind, message: String) {
        let location = keys.iter().find_map(|k| self.map.get(k)).unwrap_or(Location { line: 0, column: 0 });
        self.out.push(Diagnostic {
            file: self.file.to_string(),
            line: location.line,
            column: location.column,
            severity,
            kind,
            message,
        });
    }

    fn error(&mut self, view: &View, setting: &str, kind: DiagnosticKind, message: String) {
        let keys = [format!("{}/{setting}", view.key()), view.key()];
        self.report(&keys, Severity::Error, kind, message);
    }

    fn warn(&mut self, view: &View, setting: &str, kind: DiagnosticKind, message: String) {
        let keys = [format!("{}/{setting}", view.key()), view.key()];
        self.report(&keys, Severity::Warning, kind, message);
    }

    /// The metrics page has no authentication: served on an address others can reach, it
    /// tells them the peers' counts and the certificates' dates.
    fn metrics(&mut self, config: &Config) {
        let Some(m) = config.metrics else { return };
        if !m.ip().is_loopback() {
            let message = format!(
                "metrics server ip-address {}: the metrics page has no authentication; serve it on a \
                 loopback or management address, or let only the Prometheus server reach port {}",
                m.ip(),
                m.port()
            );
            self.report(
                &["/metrics server".into()],
                Severity::Warning,
                DiagnosticKind::InvalidValue,
                message,
            );
        }
    }

    fn ike_proposals(&mut self, config: &Config) {
        for (n, p) in &config.ike_proposals {
            let view = View::IkeProposal(*n);
            if p.encryption.is_weak() {
                let m = format!(
                    "ike proposal {n} uses {}: weak encryption, prefer aes-256",
                    p.encryption.keyword()
                );
                self.warn(&view, "encryption-algorithm", DiagnosticKind::WeakAlgorithm, m);
            }
            if p.authentication.is_weak() {
                let m = format!(
                    "ike proposal {n} uses {}: weak hash, prefer sha2-256",
                    p.authentication.keyword()
                );
                self.warn(&view, "authentication-algorithm", DiagnosticKind::WeakAlgorithm, m);
            }
            if p.dh.is_weak() {
                let m = format!(
                    "ike proposal {n} uses dh {}: weak group, prefer group14 or stronger",
                    p.dh.keyword()
                );
                self.warn(&view, "dh", DiagnosticKind::WeakAlgorithm, m);
            }
        }
    }

    /// `user-table N` in a peer: the table exists, and the peer is a template's (no
    /// `remote-address`: a peer with an address has one key) without a key of its own (which
    /// would be silently unused).
    fn peer_user_table(&mut self, config: &Config, name: &str, peer: &crate::model::IkePeer) {
        let Some(n) = peer.user_table else { return };
        let view = View::IkePeer(name.to_owned());
        if !config.ike_user_tables.contains_key(&n) {
            let m = format!("ike peer {name} uses ike user-table {n}, which does not exist");
            self.error(&view, "user-table", DiagnosticKind::MissingReference, m);
        }
        if peer.remote_address.is_some() {
            let m = format!(
                "ike peer {name} has a remote-address and a user-table: the user table gives per-site keys \
                 to a template's peer (one without remote-address); use pre-shared-key for one peer"
            );
            self.error(&view, "user-table", DiagnosticKind::Unsupported, m);
        }
        if peer.pre_shared_key.is_some() {
            let m = format!(
                "ike peer {name} has both pre-shared-key and user-table: with a user table every site's key \
                 comes from the table; remove one of them"
            );
            self.error(&view, "user-table", DiagnosticKind::Unsupported, m);
        }
    }

    /// Every user of an `ike user-table` has an identity and a key, and no identity twice.
    fn user_tables(&mut self, config: &Config) {
        for (n, table) in &config.ike_user_tables {
            if table.users.is_empty() {
                let m =
                    format!("ike user-table {n} has no users (`user id M` with id-type and pre-shared-key)");
                self.error(&View::UserTable(*n), "", DiagnosticKind::Incomplete, m);
            }
            let mut seen: Vec<&crate::model::UserId> = Vec::new();
            for (id, user) in &table.users {
                let view = View::TableUser(*n, *id);
                let what = format!("ike user-table {n} user id {id}");
                match &user.id {
                    None => {
                        let m = format!("{what} has no id-type: the site it is for is unknown");
                        self.error(&view, "id-type", DiagnosticKind::Incomplete, m);
                    }
                    Some(who) if seen.iter().any(|s| same_site(s, who)) => {
                        let m = format!("{what}: id-type {who} is already another user of the table");
                        self.error(&view, "id-type", DiagnosticKind::DuplicateSequence, m);
                    }
                    Some(who) => seen.push(who),
                }
                match &user.pre_shared_key {
                    None => {
                        let m = format!("{what} has no pre-shared-key");
                        self.error(&view, "pre-shared-key", DiagnosticKind::Incomplete, m);
                    }
                    Some(key) if key.char_len() < MIN_KEY_LEN => {
                        let m = format!(
                            "{what}: pre-shared key of {} characters is short; use at least {MIN_KEY_LEN}",
                            key.char_len()
                        );
                        self.warn(&view, "pre-shared-key", DiagnosticKind::ShortPreSharedKey, m);
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// Certificate authentication needs our certificate, its key and at least one CA; a DN
    /// identity needs a certificate; files without a signature method are pointless.
    fn certificates(&mut self, name: &str, peer: &crate::model::IkePeer, uses_signatures: bool) {
        let view = View::IkePeer(name.to_owned());
        let cert = &peer.certificate;
        if uses_signatures {
            let mut missing = Vec::new();
            if cert.local_filename.is_none() {
                missing.push("certificate local-filename");
            }
            if cert.local_key_filename.is_none() {
                missing.push("certificate local-key-filename");
            }
            if cert.ca_filenames.is_empty() {
                missing.push("certificate ca-filename");
            }
            if !missing.is_empty() {
                let m = format!(
                    "ike peer {name} authenticates with signatures but has no `{}`",
                    missing.join("`, `")
                );
                self.error(&view, "", DiagnosticKind::Incomplete, m);
            }
        } else if (cert.is_configured() || cert.send != crate::model::CertificateSend::default())
            && peer.ike_proposal.is_some()
        {
            let m = format!(
                "ike peer {name} has certificate settings but its ike proposal authenticates with pre-share; \
                 they have no effect here"
            );
            self.warn(&view, "ike-proposal", DiagnosticKind::Ignored, m);
        }
        if peer.local_id_type == crate::algorithm::IdType::Dn && cert.local_filename.is_none() {
            let m = format!("ike peer {name}: local-id-type dn sends the certificate's subject; configure `certificate local-filename`");
            self.error(&view, "local-id-type", DiagnosticKind::Incomplete, m);
        }
        if peer.remote_id_type == Some(crate::algorithm::IdType::Dn) {
            let valid = peer.remote_id.as_deref().is_some_and(|id| {
                id.split(',').all(|part| {
                    part.split_once('=').is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
                })
            });
            if !valid {
                let m = format!(
                    "ike peer {name}: remote-id-type dn needs a remote-id like \"C=CN, O=Example, CN=fw-b\""
                );
                self.error(&view, "remote-id", DiagnosticKind::InvalidValue, m);
            }
        }
    }

    fn ike_peers(&mut self, config: &Config) {
        for (name, peer) in &config.ike_peers {
            let view = View::IkePeer(name.clone());
            if let Some(n) = peer.ike_proposal {
                if !config.ike_proposals.contains_key(&n) {
                    let m = format!("ike peer {name} refers to ike proposal {n}, which is not defined");
                    self.error(&view, "ike-proposal", DiagnosticKind::MissingReference, m);
                }
            }
            if !peer.versions.v1 {
                let m = format!(
                    "ike peer {name} has IKEv1 disabled (`undo version 1`): IKEv2 is not supported, \
                     keysteward speaks IKEv1"
                );
                self.error(&view, "version", DiagnosticKind::Unsupported, m);
            } else if peer.versions.v2 {
                let m = format!(
                    "ike peer {name} has IKEv2 enabled (the default): keysteward uses IKEv1; add `undo version 2`"
                );
                self.warn(&view, "version", DiagnosticKind::IkeVersion, m);
            }
            let uses_psk = match peer.ike_proposal.and_then(|n| config.ike_proposals.get(&n)) {
                Some(p) => p.method == AuthenticationMethod::PreShare,
                // Every proposal is offered, and the built-in default uses pre-shared keys.
                None => {
                    config.ike_proposals.is_empty()
                        || config.ike_proposals.values().any(|p| p.method == AuthenticationMethod::PreShare)
                }
            };
            let uses_signatures = match peer.ike_proposal.and_then(|n| config.ike_proposals.get(&n)) {
                Some(p) => p.method != AuthenticationMethod::PreShare,
                None => config.ike_proposals.values().any(|p| p.method != AuthenticationMethod::PreShare),
            };
            self.certificates(name, peer, uses_signatures);
            self.peer_user_table(config, name, peer);
            match &peer.pre_shared_key {
                None if uses_psk && peer.user_table.is_none() => {
                    let m = format!(
                        "ike peer {name} authenticates with pre-shared keys but has no `pre-shared-key`"
                    );
                    self.error(&view, "pre-shared-key", DiagnosticKind::Incomplete, m);
                }
                Some(key) if key.char_len() < MIN_KEY_LEN => {
                    let m = format!(
                        "ike peer {name}: pre-shared key of {} characters is short; use at least {MIN_KEY_LEN}",
                        key.char_len()
                    );
                    self.warn(&view, "pre-shared-key", DiagnosticKind::ShortPreSharedKey, m);
                }
                _ => {}
            }
            if peer.exchange_mode == ExchangeMode::Aggressive && uses_psk {
                let m = format!(
                    "ike peer {name} uses aggressive mode with a pre-shared key: the key can be guessed offline \
                     from one captured exchange"
                );
                self.warn(&view, "exchange-mode", DiagnosticKind::AggressiveModePsk, m);
            }
            if peer.exchange_mode == ExchangeMode::Auto && uses_psk {
                // `auto` initiates main mode but answers aggressive mode, whose reply carries a
                // hash of the key to anyone who asks with this peer's identity.
                let m = format!(
                    "ike peer {name} accepts aggressive mode (exchange-mode auto) with a pre-shared key: \
                     the key can be guessed offline from one answered request; use main unless a peer needs it"
                );
                self.warn(&view, "exchange-mode", DiagnosticKind::AggressiveModePsk, m);
            }
        }
    }

    fn ipsec_proposals(&mut self, config: &Config) {
        for (name, p) in &config.ipsec_proposals {
            let view = View::IpsecProposal(name.clone());
            if p.transform != Transform::Esp && p.ah_authentication.is_weak() {
                let m = format!(
                    "ipsec proposal {name} uses ah authentication {}: weak hash, prefer sha2-256",
                    p.ah_authentication.keyword()
                );
                self.warn(&view, "ah authentication-algorithm", DiagnosticKind::WeakAlgorithm, m);
            }
            if p.transform != Transform::Ah && p.esp_encryption.is_none() && p.esp_authentication.is_none() {
                let m = format!("ipsec proposal {name} has neither ESP encryption nor ESP authentication");
                self.error(&view, "undo", DiagnosticKind::Incomplete, m);
            }
            if let Some(e) = p.esp_encryption.filter(|e| e.is_weak()) {
                let m = format!(
                    "ipsec proposal {name} uses esp encryption {}: weak encryption, prefer aes-256",
                    e.keyword()
                );
                self.warn(&view, "esp encryption-algorithm", DiagnosticKind::WeakAlgorithm, m);
            }
            if let Some(a) = p.esp_authentication.filter(|a| a.is_weak()) {
                let m = format!(
                    "ipsec proposal {name} uses esp authentication {}: weak hash, prefer sha2-256",
                    a.keyword()
                );
                self.warn(&view, "esp authentication-algorithm", DiagnosticKind::WeakAlgorithm, m);
            }
        }
    }

    fn policy_settings(&mut self, config: &Config, view: &View, s: &PolicySettings, template: bool) {
        let what = view.key();
        match s.acl {
            Some(n) if !config.acls.contains_key(&n) => {
                let m = format!("{what} refers to acl {n}, which is not defined");
                self.error(view, "security acl", DiagnosticKind::MissingReference, m);
            }
            None if !template => {
                let m = format!("{what} has no `security acl`: it would protect nothing");
                self.error(view, "", DiagnosticKind::Incomplete, m);
            }
            _ => {}
        }
        if s.proposals.is_empty() {
            self.error(view, "", DiagnosticKind::Incomplete, format!("{what} has no `proposal`"));
        }
        for p in &s.proposals {
            if !config.ipsec_proposals.contains_key(p) {
                let m = format!("{what} refers to ipsec proposal {p}, which is not defined");
                self.error(view, "proposal", DiagnosticKind::MissingReference, m);
            }
        }
        match &s.ike_peer {
            None => self.error(view, "", DiagnosticKind::Incomplete, format!("{what} has no `ike-peer`")),
            Some(p) => match config.ike_peers.get(p) {
                None => {
                    let m = format!("{what} refers to ike peer {p}, which is not defined");
                    self.error(view, "ike-peer", DiagnosticKind::MissingReference, m);
                }
                Some(peer) if !template && peer.remote_address.is_none() => {
                    let m =
                        format!("{what} uses ike peer {p}, which has no `remote-address` to negotiate with");
                    self.error(view, "ike-peer", DiagnosticKind::Incomplete, m);
                }
                Some(_) => {}
            },
        }
        if let Some(g) = s.pfs.filter(|g| g.group().is_weak()) {
            let m = format!("{what} uses pfs {g}: weak group, prefer dh-group14 or stronger");
            self.warn(view, "pfs", DiagnosticKind::WeakAlgorithm, m);
        }
    }

    fn policies(&mut self, config: &Config) {
        for (name, entries) in &config.ipsec_policies {
            let last = entries.keys().next_back().copied();
            for (seq, entry) in entries {
                let view = View::Policy(name.clone(), *seq);
                match entry {
                    PolicyEntry::Isakmp(s) => self.policy_settings(config, &view, s, false),
                    PolicyEntry::Template(t) => {
                        if !config.policy_templates.contains_key(t) {
                            let m = format!(
                                "ipsec policy {name} {seq} refers to template {t}, which is not defined"
                            );
                            self.error(&view, "", DiagnosticKind::MissingReference, m);
                        }
                        if Some(*seq) != last {
                            let m = format!(
                                "ipsec policy {name} {seq} is a template entry but not the last of its group: \
                                 it would answer for the entries after it; give it the largest sequence number"
                            );
                            self.error(&view, "", DiagnosticKind::OverlappingPolicy, m);
                        }
                    }
                }
            }
        }
    }

    fn interfaces(&mut self, config: &Config, host: Option<&[Ipv4Addr]>) {
        let mut bound: BTreeMap<&str, &str> = BTreeMap::new();
        for (ifname, interface) in &config.interfaces {
            let view = View::Interface(ifname.clone());
            if let (Some(a), Some(host)) = (interface.address, host) {
                if !host.contains(&a.address) {
                    let m =
                        format!("interface {ifname} address {} is not an address of this host", a.address);
                    self.warn(&view, "ip address", DiagnosticKind::AddressNotOnHost, m);
                }
            }
            let Some(policy) = interface.ipsec_policy.as_deref() else { continue };
            let Some(entries) = config.ipsec_policies.get(policy) else {
                let m = format!("interface {ifname} applies ipsec policy {policy}, which is not defined");
                self.error(&view, "ipsec policy", DiagnosticKind::MissingReference, m);
                continue;
            };
            if let Some(first) = bound.insert(policy, ifname) {
                let m = format!(
                    "ipsec policy {policy} is applied to interface {first} and to interface {ifname}: \
                     a policy group can be applied to one interface"
                );
                self.error(&view, "ipsec policy", DiagnosticKind::OverlappingPolicy, m);
            }
            self.overlaps(config, ifname, policy, entries);
            if let Some(host) = host {
                for (seq, entry) in entries {
                    if let PolicyEntry::Isakmp(PolicySettings {
                        tunnel_local: Some(TunnelLocal::Address(a)),
                        ..
                    }) = entry
                    {
                        if !host.contains(a) {
                            let m = format!("ipsec policy {policy} {seq}: tunnel local {a} is not an address of this host");
                            let v = View::Policy(policy.to_string(), *seq);
                            self.warn(&v, "tunnel local", DiagnosticKind::AddressNotOnHost, m);
                        }
                    }
                }
            }
        }
    }

    /// Two isakmp entries of the group on `ifname` whose ACLs permit common traffic.
    fn overlaps(
        &mut self,
        config: &Config,
        ifname: &str,
        policy: &str,
        entries: &BTreeMap<u32, PolicyEntry>,
    ) {
        let selectors: Vec<Selector<'_>> = entries
            .iter()
            .filter_map(|(seq, e)| match e {
                PolicyEntry::Isakmp(PolicySettings { acl: Some(n), .. }) => {
                    let rules =
                        config.acls.get(n)?.rules.iter().filter(|(_, r)| r.action == AclAction::Permit);
                    Some((*seq, *n, rules.map(|(id, r)| (*id, r)).collect()))
                }
                _ => None,
            })
            .collect();
        for (i, (seq_b, acl_b, rules_b)) in selectors.iter().enumerate() {
            let earlier = selectors[..i].iter().find_map(|(seq_a, acl_a, rules_a)| {
                rules_b.iter().find_map(|(id_b, rb)| {
                    rules_a
                        .iter()
                        .find(|(_, ra)| rules_intersect(ra, rb))
                        .map(|(id_a, _)| (*seq_a, *acl_a, *id_a, *id_b))
                })
            });
            if let Some((seq_a, acl_a, id_a, id_b)) = earlier {
                let m = format!(
                    "ipsec policy {policy} {seq_b} (acl {acl_b} rule {id_b}) overlaps ipsec policy {policy} {seq_a} \
                     (acl {acl_a} rule {id_a}) on interface {ifname}: the common traffic always takes entry {seq_a}"
                );
                let view = View::Policy(policy.to_string(), *seq_b);
                self.error(&view, "security acl", DiagnosticKind::OverlappingPolicy, m);
            }
        }
    }
}

impl Validator<'_> {
    /// What is accepted and has no effect here, said rather than ignored in silence.
    fn no_effect(&mut self, config: &Config, host: Option<&[Ipv4Addr]>) {
        let applied: Vec<&str> =
            config.interfaces.values().filter_map(|i| i.ipsec_policy.as_deref()).collect();
        for name in config.ipsec_policies.keys().filter(|n| !applied.contains(&n.as_str())) {
            let m = format!(
                "ipsec policy {name} is applied to no interface (`ipsec policy {name}` in an interface view): \
                 it has no effect here"
            );
            let keys = [config.ipsec_policies[name]
                .keys()
                .next()
                .map(|seq| View::Policy(name.clone(), *seq).key())
                .unwrap_or_default()];
            self.report(&keys, Severity::Warning, DiagnosticKind::Ignored, m);
        }
        let used: Vec<&str> = config
            .ipsec_policies
            .values()
            .flat_map(|entries| entries.values())
            .filter_map(|e| match e {
                PolicyEntry::Template(t) => Some(t.as_str()),
                PolicyEntry::Isakmp(_) => None,
            })
            .collect();
        for (name, entries) in config.policy_templates.iter().filter(|(n, _)| !used.contains(&n.as_str())) {
            let m = format!(
                "ipsec policy-template {name} is used by no `ipsec policy … isakmp template {name}`: it has no effect here"
            );
            let seq = entries.keys().next().copied().unwrap_or_default();
            self.warn(&View::Template(name.clone(), seq), "", DiagnosticKind::Ignored, m);
        }
        for (name, peer) in &config.ike_peers {
            let view = View::IkePeer(name.clone());
            if let (Some(a), Some(id)) = (peer.authentication_address, &peer.remote_id) {
                let m = format!(
                    "ike peer {name}: remote-address authentication-address {a} has no effect: the peer must \
                     present remote-id {id}"
                );
                self.warn(&view, "remote-address authentication-address", DiagnosticKind::Ignored, m);
            }
            if let (Some(a), Some(host)) = (peer.local_address, host) {
                if !host.contains(&a) {
                    let m = format!("ike peer {name}: local-address {a} is not an address of this host");
                    self.warn(&view, "local-address", DiagnosticKind::AddressNotOnHost, m);
                }
            }
        }
        self.static_routes(config);
        self.unused(config);
        self.dpd_timers(config);
        for (name, interface) in &config.interfaces {
            if interface.address.is_none() && interface.ipsec_policy.is_none() {
                let m = format!(
                    "interface {name} has neither an ip address nor an ipsec policy: it has no effect here"
                );
                self.warn(&View::Interface(name.clone()), "", DiagnosticKind::Ignored, m);
            }
        }
        for (name, p) in &config.ipsec_proposals {
            let view = View::IpsecProposal(name.clone());
            let d = crate::model::IpsecProposal::default();
            if p.transform == Transform::Esp && p.ah_authentication != d.ah_authentication {
                let m = format!(
                    "ipsec proposal {name}: ah authentication-algorithm has no effect with transform esp"
                );
                self.warn(&view, "ah authentication-algorithm", DiagnosticKind::Ignored, m);
            }
            // A configured (not undone) ESP algorithm other than the default.
            let encryption = p.esp_encryption.is_some_and(|e| Some(e) != d.esp_encryption);
            let authentication = p.esp_authentication.is_some_and(|a| Some(a) != d.esp_authentication);
            if p.transform == Transform::Ah && (encryption || authentication) {
                let m = format!("ipsec proposal {name}: the esp algorithms have no effect with transform ah");
                let setting =
                    if encryption { "esp encryption-algorithm" } else { "esp authentication-algorithm" };
                self.warn(&view, setting, DiagnosticKind::Ignored, m);
            }
        }
        // A deny rule whose wildcard no prefix holds cannot become a bypass rule: the traffic
        // it names stays under the permit rules (protected, not exempted).
        for (n, acl) in &config.acls {
            let odd = acl.rules.iter().filter(|(_, r)| r.action == AclAction::Deny && r.selector().is_none());
            for (id, _) in odd {
                let m = format!(
                    "acl {n} rule {id} deny has no effect: its wildcard is not contiguous, so the traffic \
                     it names is not exempted (the permit rules still protect it)"
                );
                self.warn(&View::Acl(*n), &format!("rule {id}"), DiagnosticKind::Ignored, m);
            }
        }
        // A deny rule exempts traffic from its entry (docs/configuration.md); in a template's
        // ACL it has no effect, since the branches propose the flows.
        let templates = config.policy_templates.values().flat_map(|entries| entries.values());
        for n in templates.filter_map(|settings| settings.acl).collect::<std::collections::BTreeSet<_>>() {
            let Some(acl) = config.acls.get(&n) else { continue };
            for (id, _) in acl.rules.iter().filter(|(_, r)| r.action == AclAction::Deny) {
                let m = format!(
                    "acl {n} rule {id} deny has no effect in a policy template's ACL: the branches propose \
                     the flows; narrow the permit rules instead"
                );
                self.warn(&View::Acl(n), &format!("rule {id}"), DiagnosticKind::Ignored, m);
            }
        }
    }

    /// DPD timers where DPD is off: global ones when neither `ike dpd type` nor any peer's
    /// `dpd type` turns it on, a peer's when neither its own type nor the global one does.
    fn dpd_timers(&mut self, config: &Config) {
        let global = config.ike_dpd;
        let defaults = crate::model::GlobalDpd::default();
        let global_timers = (global.idle_time, global.retransmit_interval, global.retry_limit)
            != (defaults.idle_time, defaults.retransmit_interval, defaults.retry_limit);
        if global_timers
            && global.dpd_type.is_none()
            && config.ike_peers.values().all(|p| p.dpd.dpd_type.is_none())
        {
            let m = "ike dpd idle-time, retransmit-interval and retry-limit have no effect here: DPD is off \
                     (no `ike dpd type` and no peer's `dpd type`)"
                .to_owned();
            self.report(&["/ike dpd".to_owned()], Severity::Warning, DiagnosticKind::Ignored, m);
        }
        for (name, peer) in &config.ike_peers {
            let d = &peer.dpd;
            let timers = d.idle_time.is_some() || d.retransmit_interval.is_some() || d.retry_limit.is_some();
            if timers && d.dpd_type.is_none() && global.dpd_type.is_none() {
                let m = format!(
                    "ike peer {name}: the dpd timers have no effect here: DPD is off (no `dpd type` here or \
                     `ike dpd type`)"
                );
                self.warn(&View::IkePeer(name.clone()), "dpd", DiagnosticKind::Ignored, m);
            }
        }
    }

    /// Objects nothing uses: a peer, an ACL or an IPsec proposal no policy names, an IKE
    /// proposal no peer offers.
    fn unused(&mut self, config: &Config) {
        let settings: Vec<&PolicySettings> = config
            .ipsec_policies
            .values()
            .flat_map(|e| e.values())
            .filter_map(|e| match e {
                PolicyEntry::Isakmp(s) => Some(s),
                PolicyEntry::Template(_) => None,
            })
            .chain(config.policy_templates.values().flat_map(|e| e.values()))
            .collect();
        for name in config.ike_peers.keys() {
            if !settings.iter().any(|s| s.ike_peer.as_deref() == Some(name.as_str())) {
                let m =
                    format!("ike peer {name} is used by no ipsec policy or template: it has no effect here");
                self.warn(&View::IkePeer(name.clone()), "", DiagnosticKind::Ignored, m);
            }
        }
        for n in config.acls.keys() {
            if !settings.iter().any(|s| s.acl == Some(*n)) {
                let m = format!("acl {n} is used by no ipsec policy or template: it has no effect here");
                self.warn(&View::Acl(*n), "", DiagnosticKind::Ignored, m);
            }
        }
        for name in config.ipsec_proposals.keys() {
            if !settings.iter().any(|s| s.proposals.contains(name)) {
                let m = format!(
                    "ipsec proposal {name} is used by no ipsec policy or template: it has no effect here"
                );
                self.warn(&View::IpsecProposal(name.clone()), "", DiagnosticKind::Ignored, m);
            }
        }
        // A peer without `ike-proposal` offers every proposal.
        if config.ike_peers.values().all(|p| p.ike_proposal.is_some()) {
            for n in config.ike_proposals.keys() {
                if !config.ike_peers.values().any(|p| p.ike_proposal == Some(*n)) {
                    let m = format!("ike proposal {n} is offered by no ike peer (each names another `ike-proposal`): it has no effect here");
                    self.warn(&View::IkeProposal(*n), "", DiagnosticKind::Ignored, m);
                }
            }
        }
    }

    /// A static route whose destination lies within the remote side of an IPsec policy on an
    /// interface: on a USG that route steers the traffic into the policy; here the daemon's
    /// TUN route does (and its fail-closed route keeps it from leaving in clear), so the
    /// static route is not installed, which `check` says.
    fn static_routes(&mut self, config: &Config) {
        for route in &config.routes {
            let Some(policy) = protecting_policy(config, route) else { continue };
            let m = format!(
                "ip route-static {}/{} {}: traffic to {}/{} is protected by ipsec policy {policy}, and keysteward \
                 routes it into the policy itself (its TUN route, with a fail-closed route under it); this \
                 route, which steers it into the policy on a USG, has no effect here and is not installed, \
                 so that it can never carry that traffic in clear",
                route.destination, route.prefix_len, route.next_hop, route.destination, route.prefix_len
            );
            self.report(&[route_key(route)], Severity::Warning, DiagnosticKind::Ignored, m);
        }
    }
}

/// The source-map key of an `ip route-static` line (`parser::system`).
pub(crate) fn route_key(route: &crate::model::StaticRoute) -> String {
    format!("/ip route-static {}/{} {}", route.destination, route.prefix_len, route.next_hop)
}

/// An isakmp entry's sequence number, ACL number, and the ACL's permit rules by number.
type Selector<'a> = (u32, u16, Vec<(u32, &'a AclRule)>);

/// True when some packet matches both rules.
fn rules_intersect(a: &AclRule, b: &AclRule) -> bool {
    let protocols = match (a.protocol, b.protocol) {
        (AclProtocol::Ip, _) | (_, AclProtocol::Ip) => true,
        (x, y) => x == y,
    };
    let ports = |x: Option<crate::model::PortMatch>, y: Option<crate::model::PortMatch>| match (x, y) {
        (Some(x), Some(y)) => {
            let ((a0, a1), (b0, b1)) = (x.range(), y.range());
            a0.max(b0) <= a1.min(b1)
        }
        _ => true,
    };
    protocols
        && a.source.intersects(b.source)
        && a.destination.intersects(b.destination)
        && ports(a.source_port, b.source_port)
        && ports(a.destination_port, b.destination_port)
}
