//! The `ipsec proposal NAME` view (reference `vrp-cli.md` §2.4), the `ipsec policy NAME SEQ
//! isakmp` view (§2.6) and the `ipsec policy-template NAME SEQ` view (§2.7).

use super::ike::encryption;
use super::system::NAME_LEN;
use super::{leave, Effect};
use crate::algorithm::{EncapsulationMode, Integrity, PfsGroup, Transform, TriggerMode};
use crate::cursor::{Cursor, Result, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::model::{Config, IpsecProposal, PolicyEntry, PolicySettings, TunnelLocal};

/// Most proposals one policy may list (USG-E, §2.6).
const MAX_PROPOSALS: usize = 12;

pub(super) fn proposal_command(config: &mut Config, name: &str, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword(
        "an ipsec-proposal command",
        &["transform", "encapsulation-mode", "esp", "ah", "undo", "quit", "return"],
    )?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    let proposal = config.ipsec_proposals.entry(name.to_string()).or_default();
    let d = IpsecProposal::default();
    let key = match keyword {
        "transform" => {
            let (v, _) = c.value::<Transform>()?;
            c.end()?;
            proposal.transform = v;
            "transform"
        }
        "encapsulation-mode" => {
            let (v, _) = c.value::<EncapsulationMode>()?;
            c.end()?;
            proposal.encapsulation = v;
            "encapsulation-mode"
        }
        "esp" => {
            match c.keyword("an ESP algorithm kind", &["authentication-algorithm", "encryption-algorithm"])? {
                "authentication-algorithm" => {
                    let (v, _) = c.value::<Integrity>()?;
                    c.end()?;
                    proposal.esp_authentication = Some(v);
                    "esp authentication-algorithm"
                }
                _ => {
                    let v = encryption(c, Some, "")?;
                    c.end()?;
                    proposal.esp_encryption = Some(v);
                    "esp encryption-algorithm"
                }
            }
        }
        "ah" => {
            c.keyword("`authentication-algorithm`", &["authentication-algorithm"])?;
            let (v, _) = c.value::<Integrity>()?;
            c.end()?;
            proposal.ah_authentication = v;
            "ah authentication-algorithm"
        }
        _ => {
            match c.keyword("a setting to undo", &["transform", "encapsulation-mode", "esp", "ah"])? {
                "transform" => {
                    c.end()?;
                    proposal.transform = d.transform;
                }
                "encapsulation-mode" => {
                    c.end()?;
                    proposal.encapsulation = d.encapsulation;
                }
                "esp" => {
                    let which = c.keyword(
                        "an ESP algorithm kind",
                        &["authentication-algorithm", "encryption-algorithm"],
                    )?;
                    c.end()?;
                    // §2.4: `undo` here means "none", not "default".
                    if which == "authentication-algorithm" {
                        proposal.esp_authentication = None;
                    } else {
                        proposal.esp_encryption = None;
                    }
                }
                _ => {
                    c.keyword("`authentication-algorithm`", &["authentication-algorithm"])?;
                    c.end()?;
                    proposal.ah_authentication = d.ah_authentication;
                }
            }
            "undo"
        }
    };
    Ok(Effect::stay(key))
}

const POLICY_COMMANDS: &[&str] = &[
    "security",
    "proposal",
    "ike-peer",
    "pfs",
    "sa",
    "tunnel",
    "local-address",
    "route",
    "undo",
    "quit",
    "return",
];

pub(super) fn policy_command(
    config: &mut Config,
    name: &str,
    seq: u32,
    template: bool,
    c: &mut Cursor<'_>,
) -> Result<Effect> {
    let first_column = c.column();
    let keyword = c.keyword("an ipsec-policy command", POLICY_COMMANDS)?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    let settings = if template {
        config.policy_templates.entry(name.to_string()).or_default().entry(seq).or_default()
    } else {
        match config
            .ipsec_policies
            .entry(name.to_string())
            .or_default()
            .entry(seq)
            .or_insert_with(|| PolicyEntry::Isakmp(PolicySettings::default()))
        {
            PolicyEntry::Isakmp(settings) => settings,
            PolicyEntry::Template(t) => {
                return Err(SyntaxError {
                    column: first_column,
                    kind: DiagnosticKind::InvalidValue,
                    message: format!(
                        "policy `{name}` {seq} takes its settings from template `{t}`: configure them there"
                    ),
                })
            }
        }
    };
    if keyword == "undo" {
        return policy_undo(settings, template, c);
    }
    let key = match keyword {
        "security" => {
            c.keyword("`acl`", &["acl"])?;
            let n = c.number("ACL number", 3000, 3999)? as u16;
            c.end()?;
            settings.acl = Some(n);
            "security acl"
        }
        "proposal" => {
            let mut names = vec![c.name("IPsec proposal name", NAME_LEN)?];
            while !c.at_end() {
                let column = c.column();
                let n = c.name("IPsec proposal name", NAME_LEN)?;
                if names.len() == MAX_PROPOSALS {
                    return Err(SyntaxError {
                        column,
                        kind: DiagnosticKind::InvalidValue,
                        message: format!("too many proposals: at most {MAX_PROPOSALS}"),
                    });
                }
                if names.contains(&n) {
                    return Err(SyntaxError {
                        column,
                        kind: DiagnosticKind::InvalidValue,
                        message: format!("proposal `{n}` listed twice"),
                    });
                }
                names.push(n);
            }
            settings.proposals = names;
            "proposal"
        }
        "ike-peer" => {
            let peer = c.name("peer name", NAME_LEN)?;
            c.end()?;
            settings.ike_peer = Some(peer);
            "ike-peer"
        }
        "pfs" => {
            let (v, _) = c.value::<PfsGroup>()?;
            c.end()?;
            settings.pfs = Some(v);
            "pfs"
        }
        "sa" => sa(settings, template, c)?,
        "tunnel" => {
            c.keyword("`local`", &["local"])?;
            let local = if c.optional_keyword(&["applied-interface"]).is_some() {
                TunnelLocal::AppliedInterface
            } else {
                TunnelLocal::Address(c.ipv4("tunnel local address")?)
            };
            c.end()?;
            settings.tunnel_local = Some(local);
            "tunnel local"
        }
        "local-address" => {
            // VRP8/AR-new's spelling of `tunnel local IP` (§2.6).
            let address = c.ipv4("local address")?;
            c.end()?;
            settings.tunnel_local = Some(TunnelLocal::Address(address));
            "tunnel local"
        }
        _ => {
            let column = c.column();
            c.keyword("`inject`", &["inject"])?;
            c.keyword("`dynamic`", &["dynamic"])?;
            c.end()?;
            return Ok(Effect::stay("route").with_note(
                column,
                DiagnosticKind::Ignored,
                "`route inject dynamic` is accepted and ignored: keysteward routes protected networks itself",
            ));
        }
    };
    Ok(Effect::stay(key))
}

/// Largest value of an `sa max` cap.
const SA_MAX_LIMIT: u64 = 10_000_000;

/// `sa max [ per-peer ] { ike-sa | ipsec-sa | flow }`, up to the number: which cap.
fn sa_max_kind(template: bool, column: u32, c: &mut Cursor<'_>) -> Result<(bool, &'static str)> {
    if !template {
        return Err(SyntaxError {
            column,
            kind: DiagnosticKind::InvalidValue,
            message: "`sa max` is valid only in an ipsec policy-template: it caps what branches make".into(),
        });
    }
    let per_peer = c.optional_keyword(&["per-peer"]).is_some();
    let kind = c.keyword("`ike-sa`, `ipsec-sa` or `flow`", &["ike-sa", "ipsec-sa", "flow"])?;
    Ok((per_peer, kind))
}

fn sa(settings: &mut PolicySettings, template: bool, c: &mut Cursor<'_>) -> Result<&'static str> {
    let column = c.column();
    match c.keyword("`duration`, `trigger-mode` or `max`", &["duration", "trigger-mode", "max"])? {
        "max" => {
            let (per_peer, kind) = sa_max_kind(template, column, c)?;
            let n = c.number("cap", 1, SA_MAX_LIMIT)? as u32;
            c.end()?;
            *settings.sa_max.slot(per_peer, kind) = Some(n);
            Ok("sa max")
        }
        "duration" => match c.keyword("a lifetime kind", &["time-based", "traffic-based"])? {
            "time-based" => {
                // 30 s is below what most devices allow; it is kept for rekey tests and labs.
                let n = c.number("lifetime (seconds)", 30, 604_800)? as u32;
                c.end()?;
                settings.sa_seconds = Some(n);
                Ok("sa duration time-based")
            }
            _ => {
                let n = c.number("lifetime (kilobytes)", 0, u64::from(u32::MAX))?;
                c.end()?;
                settings.sa_kilobytes = Some(n);
                Ok("sa duration traffic-based")
            }
        },
        _ => {
            if template {
                return Err(SyntaxError {
                    column,
                    kind: DiagnosticKind::InvalidValue,
                    message: "`sa trigger-mode` is not valid in a policy template: a template only responds"
                        .into(),
                });
            }
            let (v, _) = c.value::<TriggerMode>()?;
            c.end()?;
            settings.trigger_mode = Some(v);
            Ok("sa trigger-mode")
        }
    }
}

fn policy_undo(settings: &mut PolicySettings, template: bool, c: &mut Cursor<'_>) -> Result<Effect> {
    let settings_to_undo = &["security", "proposal", "ike-peer", "pfs", "sa", "tunnel", "local-address"];
    match c.keyword("a setting to undo", settings_to_undo)? {
        "security" => {
            c.keyword("`acl`", &["acl"])?;
            c.end()?;
            settings.acl = None;
        }
        "proposal" => {
            c.end()?;
            settings.proposals.clear();
        }
        "ike-peer" => {
            c.end()?;
            settings.ike_peer = None;
        }
        "pfs" => {
            c.end()?;
            settings.pfs = None;
        }
        "sa" => {
            let column = c.column();
            let mode =
                if template { &["duration", "max"][..] } else { &["duration", "trigger-mode", "max"][..] };
            match c.keyword("`duration`, `trigger-mode` or `max`", mode)? {
                "max" => {
                    let (per_peer, kind) = sa_max_kind(template, column, c)?;
                    c.end()?;
                    *settings.sa_max.slot(per_peer, kind) = None;
                }
                "duration" => {
                    let which = c.keyword("a lifetime kind", &["time-based", "traffic-based"])?;
                    c.end()?;
                    if which == "time-based" {
                        settings.sa_seconds = None;
                    } else {
                        settings.sa_kilobytes = None;
                    }
                }
                _ => {
                    c.end()?;
                    settings.trigger_mode = None;
                }
            }
        }
        which => {
            if which == "tunnel" {
                c.keyword("`local`", &["local"])?;
            }
            c.end()?;
            settings.tunnel_local = None;
        }
    }
    Ok(Effect::stay("undo"))
}
