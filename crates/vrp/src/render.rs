//! Prints a [`Config`] as canonical VRP text (reference `vrp-cli.md` §1, §2.9).
//!
//! Canonical means: USG-V5 keywords (aliases normalised, §6), one block per object in a
//! fixed order separated by `#`, one-space indentation inside views, only settings that
//! differ from the defaults (as the device's saved configuration does, §1), and a final
//! `return`. Pre-shared keys are masked the way the device shows them,
//! `pre-shared-key cipher %^%#…%^%#` (§1), unless the caller asks for keys in clear; the
//! masked form cannot be loaded back (the parser refuses `%^%#` keys), so a displayed
//! configuration never turns into a usable one by accident.

use std::fmt::Write;

use crate::algorithm::Value;
use crate::model::{
    prefix_to_mask, AclAction, AclProtocol, AclRule, AddressMatch, Config, GlobalDpd, GlobalDuration,
    IkePeer, IkeProposal, IpsecProposal, PolicyEntry, PolicySettings, PortMatch, TunnelLocal,
};

/// What the masked form prints in place of a key: the same for every key, so that not even
/// the length leaks.
pub const MASKED_KEY: &str = "%^%#********%^%#";

/// How [`render`] prints pre-shared keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDisplay {
    /// `pre-shared-key cipher %^%#********%^%#`: for `show-config`, logs and anything a
    /// person reads.
    Masked,
    /// The key in clear: only for writing a configuration file back (and the round-trip test).
    Clear,
}

/// Renders `config` as canonical VRP text.
pub fn render(config: &Config, keys: KeyDisplay) -> String {
    let mut blocks: Vec<String> = Vec::new();
    if let Some(name) = &config.sysname {
        blocks.push(format!("sysname {}\n", word(name)));
    }
    if let Some(name) = &config.ike_local_name {
        blocks.push(format!("ike local-name {}\n", word(name)));
    }
    let fragmentation = config.ike_fragmentation;
    if !fragmentation.enabled {
        blocks.push("undo ike fragmentation\n".to_owned());
    } else if fragmentation.max_size != crate::model::DEFAULT_FRAGMENT_MAX_SIZE {
        blocks.push(format!("ike fragmentation max-size {}\n", fragmentation.max_size));
    }
    let dpd = global_dpd(&config.ike_dpd);
    if !dpd.is_empty() {
        blocks.push(dpd);
    }
    for (n, p) in &config.ike_proposals {
        blocks.push(ike_proposal(*n, p));
    }
    for (n, table) in &config.ike_user_tables {
        blocks.push(user_table(*n, table, keys));
    }
    for (name, p) in &config.ike_peers {
        blocks.push(ike_peer(name, p, keys));
    }
    for (n, acl) in &config.acls {
        let mut b = format!("acl number {n}\n");
        for (id, rule) in &acl.rules {
            let _ = writeln!(b, " rule {id} {}", acl_rule(rule));
        }
        blocks.push(b);
    }
    for (name, p) in &config.ipsec_proposals {
        blocks.push(ipsec_proposal(name, p));
    }
    for (name, entries) in &config.policy_templates {
        for (seq, s) in entries {
            blocks.push(format!("ipsec policy-template {} {seq}\n{}", word(name), policy_settings(s)));
        }
    }
    for (name, entries) in &config.ipsec_policies {
        let mut b = String::new();
        for (seq, entry) in entries {
            match entry {
                PolicyEntry::Isakmp(s) => {
                    let _ = write!(b, "ipsec policy {} {seq} isakmp\n{}", word(name), policy_settings(s));
                }
                PolicyEntry::Template(t) => {
                    let _ = writeln!(b, "ipsec policy {} {seq} isakmp template {}", word(name), word(t));
                }
            }
        }
        blocks.push(b);
    }
    let global = global_duration(&config.ipsec_global_duration);
    if !global.is_empty() {
        blocks.push(global);
    }
    if config.ipsec_sha2_truncate_96 {
        blocks.push("undo ipsec sha2 compatible enable\n".to_owned());
    }
    if config.ipsec_fail_closed_keep {
        blocks.push("ipsec fail-closed keep\n".to_owned());
    }
    if let Some(m) = config.metrics {
        blocks.push(format!("metrics server ip-address {} port {}\n", m.ip(), m.port()));
    }
    for (name, i) in &config.interfaces {
        let mut b = format!("interface {}\n", word(name));
        if let Some(a) = i.address {
            let _ = writeln!(b, " ip address {} {}", a.address, prefix_to_mask(a.prefix_len));
        }
        if let Some(p) = &i.ipsec_policy {
            let _ =
                writeln!(b, " ipsec policy {}{}", word(p), if i.auto_negotiate { " auto-neg" } else { "" });
        }
        blocks.push(b);
    }
    if !config.routes.is_empty() {
        let mut b = String::new();
        for r in &config.routes {
            let _ = write!(b, "ip route-static {} {}", r.destination, prefix_to_mask(r.prefix_len));
            if let Some(i) = &r.interface {
                let _ = write!(b, " {}", word(i));
            }
            let _ = write!(b, " {}", r.next_hop);
            if r.preference != crate::model::DEFAULT_ROUTE_PREFERENCE {
                let _ = write!(b, " preference {}", r.preference);
            }
            b.push('\n');
        }
        blocks.push(b);
    }
    let mut out = String::new();
    for b in blocks {
        out.push_str("#\n");
        out.push_str(&b);
    }
    out.push_str("#\nreturn\n");
    out
}

fn global_dpd(d: &GlobalDpd) -> String {
    let defaults = GlobalDpd::default();
    let mut b = String::new();
    if let Some(t) = d.dpd_type {
        let _ = writeln!(b, "ike dpd type {t}");
    }
    if d.idle_time != defaults.idle_time {
        let _ = writeln!(b, "ike dpd idle-time {}", d.idle_time);
    }
    if d.retransmit_interval != defaults.retransmit_interval {
        let _ = writeln!(b, "ike dpd retransmit-interval {}", d.retransmit_interval);
    }
    if d.retry_limit != defaults.retry_limit {
        let _ = writeln!(b, "ike dpd retry-limit {}", d.retry_limit);
    }
    b
}

fn global_duration(g: &GlobalDuration) -> String {
    let defaults = GlobalDuration::default();
    let mut b = String::new();
    if g.seconds != defaults.seconds {
        let _ = writeln!(b, "ipsec sa global-duration time-based {}", g.seconds);
    }
    if g.kilobytes != defaults.kilobytes {
        let _ = writeln!(b, "ipsec sa global-duration traffic-based {}", g.kilobytes);
    }
    b
}

fn ike_proposal(n: u32, p: &IkeProposal) -> String {
    let d = IkeProposal::default();
    let mut b = format!("ike proposal {n}\n");
    if p.encryption != d.encryption {
        let _ = writeln!(b, " encryption-algorithm {}", p.encryption.keyword());
    }
    if p.authentication != d.authentication {
        let _ = writeln!(b, " authentication-algorithm {}", p.authentication.keyword());
    }
    if p.method != d.method {
        let _ = writeln!(b, " authentication-method {}", p.method);
    }
    if p.dh != d.dh {
        let _ = writeln!(b, " dh {}", p.dh.keyword());
    }
    if p.sa_duration != d.sa_duration {
        let _ = writeln!(b, " sa duration {}", p.sa_duration);
    }
    b
}

fn ike_peer(name: &str, p: &IkePeer, keys: KeyDisplay) -> String {
    let d = IkePeer::default();
    let mut b = format!("ike peer {}\n", word(name));
    if let Some(n) = p.ike_proposal {
        let _ = writeln!(b, " ike-proposal {n}");
    }
    if !p.versions.v1 {
        b.push_str(" undo version 1\n");
    }
    if !p.versions.v2 {
        b.push_str(" undo version 2\n");
    }
    if p.exchange_mode != d.exchange_mode {
        let _ = writeln!(b, " exchange-mode {}", p.exchange_mode);
    }
    if let Some(key) = &p.pre_shared_key {
        pre_shared_key(&mut b, " ", key, keys);
    }
    if let Some(n) = p.user_table {
        let _ = writeln!(b, " user-table {n}");
    }
    if let Some(a) = p.remote_address {
        let _ = writeln!(b, " remote-address {a}");
    }
    if let Some(a) = p.authentication_address {
        let _ = writeln!(b, " remote-address authentication-address {a}");
    }
    if let Some(a) = p.local_address {
        let _ = writeln!(b, " local-address {a}");
    }
    if let Some(t) = p.remote_id_type {
        let _ = writeln!(b, " remote-id-type {t}");
    }
    if let Some(id) = &p.remote_id {
        if id.chars().any(char::is_whitespace) || id.starts_with("//") {
            let _ = writeln!(b, " remote-id \"{id}\"");
        } else {
            let _ = writeln!(b, " remote-id {id}");
        }
    }
    if p.local_id_type != d.local_id_type {
        let _ = writeln!(b, " local-id-type {}", p.local_id_type);
    }
    if let Some(id) = &p.local_id {
        let _ = writeln!(b, " local-id {}", word(id));
    }
    if !p.nat_traversal {
        b.push_str(" undo nat traversal\n");
    } else if p.nat_traversal_force {
        b.push_str(" nat traversal force-encapsulation\n");
    }
    let dpd = &p.dpd;
    if let Some(t) = dpd.dpd_type {
        let _ = writeln!(b, " dpd type {t}");
    }
    if let Some(n) = dpd.idle_time {
        let _ = writeln!(b, " dpd idle-time {n}");
    }
    if let Some(n) = dpd.retransmit_interval {
        let _ = writeln!(b, " dpd retransmit-interval {n}");
    }
    if let Some(n) = dpd.retry_limit {
        let _ = writeln!(b, " dpd retry-limit {n}");
    }
    if let Some(m) = dpd.message_order {
        let _ = writeln!(b, " dpd msg {m}");
    }
    let cert = &p.certificate;
    if let Some(f) = &cert.local_filename {
        let _ = writeln!(b, " certificate local-filename {}", word(f));
    }
    if let Some(f) = &cert.local_key_filename {
        let _ = writeln!(b, " certificate local-key-filename {}", word(f));
    }
    for f in &cert.ca_filenames {
        let _ = writeln!(b, " certificate ca-filename {}", word(f));
    }
    for f in &cert.crl_filenames {
        let _ = writeln!(b, " certificate crl-filename {}", word(f));
    }
    if cert.send == crate::model::CertificateSend::WhenAsked {
        b.push_str(" certificate send when-asked\n");
    }
    b
}

/// `INDENTpre-shared-key …`, masked or in clear.
fn pre_shared_key(b: &mut String, indent: &str, key: &crate::PreSharedKey, keys: KeyDisplay) {
    match keys {
        KeyDisplay::Masked => {
            let _ = writeln!(b, "{indent}pre-shared-key cipher {MASKED_KEY}");
        }
        KeyDisplay::Clear
            if key.expose().chars().any(char::is_whitespace) || key.expose().starts_with("//") =>
        {
            let _ = writeln!(b, "{indent}pre-shared-key \"{}\"", key.expose());
        }
        KeyDisplay::Clear => {
            let _ = writeln!(b, "{indent}pre-shared-key {}", key.expose());
        }
    }
}

/// `ike user-table N` with its users, keys as `keys` says.
fn user_table(n: u32, table: &crate::model::UserTable, keys: KeyDisplay) -> String {
    let mut b = format!("ike user-table {n}\n");
    for (id, user) in &table.users {
        let _ = writeln!(b, " user id {id}");
        if let Some(who) = &user.id {
            let _ = writeln!(b, "  id-type {who}");
        }
        if let Some(key) = &user.pre_shared_key {
            pre_shared_key(&mut b, "  ", key, keys);
        }
    }
    b
}

/// The text of a rule after `rule N ` (also used by validation messages).
pub(crate) fn acl_rule(r: &AclRule) -> String {
    let mut s = String::from(match r.action {
        AclAction::Permit => "permit",
        AclAction::Deny => "deny",
    });
    s.push(' ');
    s.push_str(&match r.protocol {
        AclProtocol::Ip => "ip".to_string(),
        AclProtocol::Icmp => "icmp".to_string(),
        AclProtocol::Tcp => "tcp".to_string(),
        AclProtocol::Udp => "udp".to_string(),
        AclProtocol::Gre => "gre".to_string(),
        AclProtocol::Number(n) => n.to_string(),
    });
    for (word, m) in [("source", r.source), ("destination", r.destination)] {
        if let AddressMatch::Wildcard { address, wildcard } = m {
            if wildcard.is_unspecified() {
                let _ = write!(s, " {word} {address} 0");
            } else {
                let _ = write!(s, " {word} {address} {wildcard}");
            }
        }
    }
    for (word, p) in [("source-port", r.source_port), ("destination-port", r.destination_port)] {
        match p {
            None => {}
            Some(PortMatch::Eq(p)) => {
                let _ = write!(s, " {word} eq {p}");
            }
            Some(PortMatch::Lt(p)) => {
                let _ = write!(s, " {word} lt {p}");
            }
            Some(PortMatch::Gt(p)) => {
                let _ = write!(s, " {word} gt {p}");
            }
            Some(PortMatch::Range(a, b)) => {
                let _ = write!(s, " {word} range {a} {b}");
            }
        }
    }
    s
}

fn ipsec_proposal(name: &str, p: &IpsecProposal) -> String {
    let d = IpsecProposal::default();
    let mut b = format!("ipsec proposal {}\n", word(name));
    if p.transform != d.transform {
        let _ = writeln!(b, " transform {}", p.transform);
    }
    if p.encapsulation != d.encapsulation {
        let _ = writeln!(b, " encapsulation-mode {}", p.encapsulation);
    }
    match p.esp_authentication {
        None => b.push_str(" undo esp authentication-algorithm\n"),
        Some(a) if Some(a) != d.esp_authentication => {
            let _ = writeln!(b, " esp authentication-algorithm {}", a.keyword());
        }
        Some(_) => {}
    }
    match p.esp_encryption {
        None => b.push_str(" undo esp encryption-algorithm\n"),
        Some(e) if Some(e) != d.esp_encryption => {
            let _ = writeln!(b, " esp encryption-algorithm {}", e.keyword());
        }
        Some(_) => {}
    }
    if p.ah_authentication != d.ah_authentication {
        let _ = writeln!(b, " ah authentication-algorithm {}", p.ah_authentication.keyword());
    }
    b
}

fn policy_settings(s: &PolicySettings) -> String {
    let mut b = String::new();
    if let Some(n) = s.acl {
        let _ = writeln!(b, " security acl {n}");
    }
    if !s.proposals.is_empty() {
        let names: Vec<_> = s.proposals.iter().map(|n| word(n)).collect();
        let _ = writeln!(b, " proposal {}", names.join(" "));
    }
    if let Some(p) = &s.ike_peer {
        let _ = writeln!(b, " ike-peer {}", word(p));
    }
    if let Some(g) = s.pfs {
        let _ = writeln!(b, " pfs {}", g.keyword());
    }
    if let Some(n) = s.sa_seconds {
        let _ = writeln!(b, " sa duration time-based {n}");
    }
    if let Some(n) = s.sa_kilobytes {
        let _ = writeln!(b, " sa duration traffic-based {n}");
    }
    if let Some(t) = s.trigger_mode {
        let _ = writeln!(b, " sa trigger-mode {t}");
    }
    for (keyword, value) in s.sa_max.settings() {
        if let Some(n) = value {
            let _ = writeln!(b, " sa max {keyword} {n}");
        }
    }
    match s.tunnel_local {
        None => {}
        Some(TunnelLocal::Address(a)) => {
            let _ = writeln!(b, " tunnel local {a}");
        }
        Some(TunnelLocal::AppliedInterface) => b.push_str(" tunnel local applied-interface\n"),
    }
    b
}

/// A free value as written back: quoted when it starts with `//`, which would otherwise read
/// as an annotation (`crate::lexer`).
fn word(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with("//") {
        format!("\"{value}\"").into()
    } else {
        value.into()
    }
}
