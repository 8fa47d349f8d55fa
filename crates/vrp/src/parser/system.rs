//! System-view commands (reference `vrp-cli.md` §2.1): the view-opening commands, the
//! global settings, static routes, and their `undo` forms.

use super::{leave, Effect, View};
use crate::algorithm::DpdType;
use crate::cursor::{invalid, Cursor, Result, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::model::{mask_to_prefix, Config, PolicyEntry, StaticRoute, DEFAULT_ROUTE_PREFERENCE};

/// Longest peer, IPsec proposal, policy and template name (§1).
pub(crate) const NAME_LEN: usize = 15;
/// Longest `sysname`.
const SYSNAME_LEN: usize = 246;
/// Longest `ike local-name`, `remote-id`, `local-id` (§2.1, §2.3).
pub(crate) const ID_LEN: usize = 255;
/// IKE proposal numbers (USG-E allows up to 1024 on large models, §2.1).
pub(crate) const IKE_PROPOSAL_MAX: u64 = 1024;
/// Policy and template sequence numbers (§2.1).
const SEQ_MAX: u64 = 10_000;

/// USG commands that open views keysteward ignores (§6 "parse and ignore").
const IGNORED_VIEWS: &[&str] = &["firewall", "security-policy"];

const COMMANDS: &[&str] = &[
    "sysname",
    "ike",
    "acl",
    "ipsec",
    "interface",
    "ip",
    "firewall",
    "security-policy",
    "metrics",
    "undo",
    "quit",
    "return",
];

pub(super) fn command(config: &mut Config, c: &mut Cursor<'_>) -> Result<Effect> {
    let first_column = c.column();
    let typed = c.peek().map(|t| t.text.to_ascii_lowercase());
    let keyword = c.keyword("a system-view command", COMMANDS)?;
    // Ignored views swallow lines: only the full word opens one, never an abbreviation
    // (`security acl` in a policy view must not fall back to `security-policy`).
    if IGNORED_VIEWS.contains(&keyword) && typed.as_deref() != Some(keyword) {
        return Err(SyntaxError {
            column: first_column,
            kind: DiagnosticKind::UnknownKeyword,
            message: format!(
                "unknown keyword `{}`: expected a system-view command (`{keyword}` is accepted only in full)",
                typed.unwrap_or_default()
            ),
        });
    }
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    match keyword {
        "sysname" => {
            let name = c.name("device name", SYSNAME_LEN)?;
            c.end()?;
            config.sysname = Some(name);
            Ok(Effect::system())
        }
        "ike" => ike(config, c),
        "acl" => {
            let number = acl_number(c)?;
            c.end()?;
            config.acls.entry(number).or_default();
            Ok(Effect::enter(View::Acl(number)))
        }
        "ipsec" => ipsec(config, c),
        "interface" => {
            let name = interface_name(c)?;
            config.interfaces.entry(name.clone()).or_default();
            Ok(Effect::enter(View::Interface(name)))
        }
        "firewall" | "security-policy" => {
            while c.raw("").is_ok() {}
            Ok(Effect::enter(View::Ignored).with_note(
                first_column,
                DiagnosticKind::Ignored,
                format!(
                    "`{keyword}` is accepted and ignored with its indented lines: keysteward does not filter \
                     traffic; allow UDP 500/4500 and ESP in the host's firewall"
                ),
            ))
        }
        "metrics" => {
            c.keyword("`server`", &["server"])?;
            c.keyword("`ip-address`", &["ip-address"])?;
            let address = c.ipv4("metrics address")?;
            c.keyword("`port`", &["port"])?;
            let port = c.number("metrics port", 1, 65_535)? as u16;
            c.end()?;
            config.metrics = Some(std::net::SocketAddrV4::new(address, port));
            Ok(Effect { key: "metrics server".into(), ..Effect::system() })
        }
        "ip" => {
            c.keyword("`route-static`", &["route-static"])?;
            let route = route(c)?;
            config.routes.retain(|r| !same_route(r, &route));
            let key = crate::validate::route_key(&route);
            config.routes.push(route);
            // Recorded under the system view, for `check`'s findings about the route.
            Ok(Effect { key: key.trim_start_matches('/').to_owned(), ..Effect::system() })
        }
        _ => undo(config, c),
    }
}

fn ike(config: &mut Config, c: &mut Cursor<'_>) -> Result<Effect> {
    match c.keyword(
        "an ike command",
        &["proposal", "peer", "local-name", "dpd", "fragmentation", "user-table"],
    )? {
        "user-table" => {
            let n = super::user_table::table_number(c)?;
            c.end()?;
            config.ike_user_tables.entry(n).or_default();
            Ok(Effect::enter(View::UserTable(n)))
        }
        "fragmentation" => {
            if c.optional_keyword(&["max-size"]).is_some() {
                config.ike_fragmentation.max_size = c.number("fragment size (bytes)", 576, 65_000)? as u32;
            }
            c.end()?;
            config.ike_fragmentation.enabled = true;
            Ok(Effect::system())
        }
        "proposal" => {
            let n = proposal_number(c)?;
            c.end()?;
            config.ike_proposals.entry(n).or_default();
            Ok(Effect::enter(View::IkeProposal(n)))
        }
        "peer" => {
            let name = c.name("peer name", NAME_LEN)?;
            let version_column = c.column();
            let version = c.optional_keyword(&["v1", "v2"]);
            c.end()?;
            if version == Some("v2") {
                return Err(SyntaxError {
                    column: version_column,
                    kind: DiagnosticKind::Unsupported,
                    message: "unsupported `v2`: IKEv2 is not supported, keysteward speaks IKEv1".into(),
                });
            }
            let peer = config.ike_peers.entry(name.clone()).or_default();
            if version == Some("v1") {
                peer.versions.v1 = true;
                peer.versions.v2 = false;
            }
            Ok(Effect::enter(View::IkePeer(name)))
        }
        "local-name" => {
            let name = c.name("local name", ID_LEN)?;
            c.end()?;
            config.ike_local_name = Some(name);
            Ok(Effect::system())
        }
        _ => {
            let dpd = &mut config.ike_dpd;
            match c.keyword("a DPD setting", &["type", "idle-time", "retransmit-interval", "retry-limit"])? {
                "type" => {
                    let (t, _) = c.value::<DpdType>()?;
                    c.end()?;
                    dpd.dpd_type = Some(t);
                }
                "idle-time" => {
                    let n = c.number("idle time (seconds)", 10, 3600)? as u32;
                    c.end()?;
                    dpd.idle_time = n;
                }
                "retransmit-interval" => {
                    let n = c.number("retransmit interval (seconds)", 2, 60)? as u32;
                    c.end()?;
                    dpd.retransmit_interval = n;
                }
                _ => {
                    let n = c.number("retry limit", 1, 10)? as u32;
                    c.end()?;
                    dpd.retry_limit = n;
                }
            }
            // Recorded, for `check`'s finding about timers without a type.
            Ok(Effect { key: "ike dpd".into(), ..Effect::system() })
        }
    }
}

fn ipsec(config: &mut Config, c: &mut Cursor<'_>) -> Result<Effect> {
    match c.keyword(
        "an ipsec command",
        &["proposal", "policy", "policy-template", "sa", "sha2", "fail-closed"],
    )? {
        "fail-closed" => {
            c.keyword("`keep`", &["keep"])?;
            c.end()?;
            config.ipsec_fail_closed_keep = true;
            Ok(Effect::system())
        }
        "proposal" => {
            let name = c.name("IPsec proposal name", NAME_LEN)?;
            c.end()?;
            config.ipsec_proposals.entry(name.clone()).or_default();
            Ok(Effect::enter(View::IpsecProposal(name)))
        }
        "sha2" => {
            sha2_compatible(c)?;
            config.ipsec_sha2_truncate_96 = false;
            Ok(Effect::system())
        }
        "policy" => policy(config, c),
        "policy-template" => {
            let name = c.name("policy template name", NAME_LEN)?;
            let seq = c.number("sequence number", 1, SEQ_MAX)? as u32;
            c.end()?;
            config.policy_templates.entry(name.clone()).or_default().entry(seq).or_default();
            Ok(Effect::enter(View::Template(name, seq)))
        }
        _ => {
            c.keyword("`global-duration`", &["global-duration"])?;
            let global = &mut config.ipsec_global_duration;
            match c.keyword("a lifetime kind", &["time-based", "traffic-based"])? {
                "time-based" => {
                    let n = c.number("lifetime (seconds)", 60, 604_800)? as u32;
                    c.end()?;
                    global.seconds = n;
                }
                _ => {
                    let n = c.number("lifetime (kilobytes)", 0, u64::from(u32::MAX))?;
                    c.end()?;
                    global.kilobytes = n;
                }
            }
            Ok(Effect::system())
        }
    }
}

fn policy(config: &mut Config, c: &mut Cursor<'_>) -> Result<Effect> {
    let name = c.name("policy name", NAME_LEN)?;
    let seq_column = c.column();
    let seq = c.number("sequence number", 1, SEQ_MAX)? as u32;
    let mode_column = c.column();
    let mode = c.keyword("a policy mode", &["isakmp", "manual"])?;
    if mode == "manual" {
        return Err(SyntaxError {
            column: mode_column,
            kind: DiagnosticKind::Unsupported,
            message: "unsupported `manual`: manually keyed policies are not implemented; use `isakmp`".into(),
        });
    }
    let template = match c.optional_keyword(&["template"]) {
        Some(_) => Some(c.name("policy template name", NAME_LEN)?),
        None => None,
    };
    c.end()?;
    let entries = config.ipsec_policies.entry(name.clone()).or_default();
    let existing = entries.get(&seq);
    let conflict = match (existing, &template) {
        (Some(PolicyEntry::Isakmp(_)), Some(t)) => {
            Some(format!("an isakmp entry, not a template entry of `{t}`"))
        }
        (Some(PolicyEntry::Template(old)), None) => {
            Some(format!("a template entry of `{old}`, not an isakmp entry"))
        }
        (Some(PolicyEntry::Template(old)), Some(t)) if old != t => {
            Some(format!("a template entry of `{old}`"))
        }
        _ => None,
    };
    if let Some(what) = conflict {
        return Err(SyntaxError {
            column: seq_column,
            kind: DiagnosticKind::DuplicateSequence,
            message: format!("duplicate sequence number {seq} in policy `{name}`: it is already {what}"),
        });
    }
    match template {
        Some(t) => {
            entries.insert(seq, PolicyEntry::Template(t));
        }
        None => {
            entries.entry(seq).or_insert_with(|| PolicyEntry::Isakmp(Default::default()));
        }
    }
    // A template entry has no settings of its own; the policy view refuses them (ipsec.rs).
    Ok(Effect::enter(View::Policy(name, seq)))
}

/// `acl [number] N`, advanced ACLs only.
fn acl_number(c: &mut Cursor<'_>) -> Result<u16> {
    match c.peek() {
        None => c.offer_keywords(&["number"]),
        Some(t) if t.before_comment().unwrap_or(&t.text).parse::<u64>().is_err() => {
            c.keyword("`number` or an ACL number", &["number"])?;
        }
        Some(_) => {}
    }
    let column = c.column();
    let (kind, message) = match c
        .peek()
        .and_then(|t| t.before_comment().unwrap_or(&t.text).parse::<u64>().ok())
    {
        None | Some(3000..=3999) => return Ok(c.number("ACL number", 3000, 3999)? as u16),
        Some(n @ (2000..=2999 | 4000..=4999)) => (
            DiagnosticKind::Unsupported,
            format!("unsupported ACL {n}: only advanced ACLs (3000-3999) can select IPsec traffic"),
        ),
        Some(n) => (DiagnosticKind::InvalidValue, format!("invalid ACL number `{n}`: expected 3000-3999")),
    };
    Err(SyntaxError { column, kind, message })
}

pub(crate) fn proposal_number(c: &mut Cursor<'_>) -> Result<u32> {
    Ok(c.number("IKE proposal number", 1, IKE_PROPOSAL_MAX)? as u32)
}

/// `interface GigabitEthernet0/0/2`, also written `interface GigabitEthernet 0/0/2`.
fn interface_name(c: &mut Cursor<'_>) -> Result<String> {
    let mut name = c.name("interface name", 64)?;
    while let Some(t) = c.peek() {
        name.push_str(&t.text);
        crate::cursor::check_name(t, "interface name", &name, 64)?;
        c.raw("")?;
    }
    Ok(name)
}

/// `DST MASK|LEN [IF] NEXTHOP [preference P]`.
fn route(c: &mut Cursor<'_>) -> Result<StaticRoute> {
    let dst_column = c.column();
    let destination = c.ipv4("destination")?;
    let prefix_len = mask_or_length(c)?;
    let interface =
        if c.peek().is_some() && !c.peek_is_ipv4() { Some(c.name("interface name", 64)?) } else { None };
    let next_hop = c.ipv4("next hop")?;
    let preference = match c.optional_keyword(&["preference"]) {
        Some(_) => c.number("preference", 1, 255)? as u8,
        None => DEFAULT_ROUTE_PREFERENCE,
    };
    c.end()?;
    let host_bits = !u32::from(crate::model::prefix_to_mask(prefix_len));
    if u32::from(destination) & host_bits != 0 {
        return Err(SyntaxError {
            column: dst_column,
            kind: DiagnosticKind::InvalidValue,
            message: format!(
                "invalid destination `{destination}`: expected a network address (host bits zero for /{prefix_len})"
            ),
        });
    }
    Ok(StaticRoute { destination, prefix_len, interface, next_hop, preference })
}

/// A netmask in dotted form or a prefix length.
pub(crate) fn mask_or_length(c: &mut Cursor<'_>) -> Result<u8> {
    c.offer_argument("0", "MASK<0-32>", "mask or prefix length");
    let (token, text) = c.value_token("a mask or prefix length")?;
    if let Ok(n) = text.parse::<u8>() {
        if n <= 32 {
            return Ok(n);
        }
    }
    text.parse()
        .ok()
        .and_then(mask_to_prefix)
        .ok_or_else(|| invalid(token, "mask", "a contiguous netmask or a prefix length 0-32"))
}

fn same_route(a: &StaticRoute, b: &StaticRoute) -> bool {
    a.destination == b.destination
        && a.prefix_len == b.prefix_len
        && a.next_hop == b.next_hop
        && a.interface == b.interface
}

fn undo(config: &mut Config, c: &mut Cursor<'_>) -> Result<Effect> {
    match c.keyword("a command to undo", &["sysname", "ike", "acl", "ipsec", "interface", "ip", "metrics"])? {
        "sysname" => {
            c.end()?;
            config.sysname = None;
        }
        "metrics" => {
            c.keyword("`server`", &["server"])?;
            c.end()?;
            config.metrics = None;
        }
        "ike" => match c.keyword(
            "an ike command",
            &["proposal", "peer", "local-name", "dpd", "fragmentation", "user-table"],
        )? {
            "user-table" => {
                let n = super::user_table::table_number(c)?;
                c.end()?;
                config.ike_user_tables.remove(&n);
            }
            "fragmentation" => {
                let size = c.optional_keyword(&["max-size"]).is_some();
                c.end()?;
                if size {
                    config.ike_fragmentation.max_size = crate::model::DEFAULT_FRAGMENT_MAX_SIZE;
                } else {
                    config.ike_fragmentation.enabled = false;
                }
            }
            "proposal" => {
                let n = proposal_number(c)?;
                c.end()?;
                config.ike_proposals.remove(&n);
            }
            "peer" => {
                let name = c.name("peer name", NAME_LEN)?;
                c.end()?;
                config.ike_peers.remove(&name);
            }
            "local-name" => {
                c.end()?;
                config.ike_local_name = None;
            }
            _ => {
                let which =
                    c.keyword("a DPD setting", &["type", "idle-time", "retransmit-interval", "retry-limit"])?;
                c.end()?;
                let defaults = crate::model::GlobalDpd::default();
                let dpd = &mut config.ike_dpd;
                match which {
                    "type" => dpd.dpd_type = None,
                    "idle-time" => dpd.idle_time = defaults.idle_time,
                    "retransmit-interval" => dpd.retransmit_interval = defaults.retransmit_interval,
                    _ => dpd.retry_limit = defaults.retry_limit,
                }
            }
        },
        "acl" => {
            let n = acl_number(c)?;
            c.end()?;
            config.acls.remove(&n);
        }
        "ipsec" => match c.keyword(
            "an ipsec command",
            &["proposal", "policy", "policy-template", "sa", "sha2", "fail-closed"],
        )? {
            "sha2" => {
                // Older Huawei firmware's HMAC-SHA2-256 truncated to 96 bits (vrp-cli.md §6).
                sha2_compatible(c)?;
                config.ipsec_sha2_truncate_96 = true;
            }
            "fail-closed" => {
                c.keyword("`keep`", &["keep"])?;
                c.end()?;
                config.ipsec_fail_closed_keep = false;
            }
            "proposal" => {
                let name = c.name("IPsec proposal name", NAME_LEN)?;
                c.end()?;
                config.ipsec_proposals.remove(&name);
            }
            which @ ("policy" | "policy-template") => {
                let name = c.name("policy name", NAME_LEN)?;
                let seq =
                    if c.at_end() { None } else { Some(c.number("sequence number", 1, SEQ_MAX)? as u32) };
                c.end()?;
                if which == "policy" {
                    remove_entry(&mut config.ipsec_policies, &name, seq);
                } else {
                    remove_entry(&mut config.policy_templates, &name, seq);
                }
            }
            _ => {
                c.keyword("`global-duration`", &["global-duration"])?;
                let which = c.keyword("a lifetime kind", &["time-based", "traffic-based"])?;
                c.end()?;
                let defaults = crate::model::GlobalDuration::default();
                match which {
                    "time-based" => config.ipsec_global_duration.seconds = defaults.seconds,
                    _ => config.ipsec_global_duration.kilobytes = defaults.kilobytes,
                }
            }
        },
        "interface" => {
            let name = interface_name(c)?;
            config.interfaces.remove(&name);
        }
        _ => {
            c.keyword("`route-static`", &["route-static"])?;
            let route = route(c)?;
            config.routes.retain(|r| !same_route(r, &route));
        }
    }
    Ok(Effect::system())
}

/// `… sha2 compatible enable` after `ipsec`, in both forms.
fn sha2_compatible(c: &mut Cursor<'_>) -> Result<()> {
    c.keyword("`compatible`", &["compatible"])?;
    c.keyword("`enable`", &["enable"])?;
    c.end()
}

fn remove_entry<T>(
    map: &mut std::collections::BTreeMap<String, std::collections::BTreeMap<u32, T>>,
    name: &str,
    seq: Option<u32>,
) {
    match seq {
        None => {
            map.remove(name);
        }
        Some(seq) => {
            if let Some(entries) = map.get_mut(name) {
                entries.remove(&seq);
                if entries.is_empty() {
                    map.remove(name);
                }
            }
        }
    }
}
