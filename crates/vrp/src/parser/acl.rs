//! The advanced ACL view `acl [number] 3000-3999` (reference `vrp-cli.md` §2.5).
//!
//! `rule [N] { permit | deny } PROTOCOL [source …] [destination …] [source-port …]
//! [destination-port …]`; the optional parts may come in any order, each once. A rule
//! without a number gets the next multiple of 5 above the largest one (§2.5). `icmp-type` is
//! known (for `?`) and refused: a rule for `icmp` protects every ICMP type and code.

use std::net::Ipv4Addr;

use super::{leave, Effect};
use crate::cursor::{invalid, Cursor, Result, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::model::{AclAction, AclProtocol, AclRule, AddressMatch, Config, PortMatch};

/// Step between automatically numbered rules.
const RULE_STEP: u32 = 5;
/// The optional parts of a rule.
const RULE_CONDITIONS: &[&str] = &["source", "destination", "source-port", "destination-port", "icmp-type"];
/// Largest rule number.
const RULE_MAX: u64 = 4_294_967_294;

pub(super) fn command(config: &mut Config, number: u16, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword("an ACL command", &["rule", "undo", "quit", "return"])?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    let acl = config.acls.entry(number).or_default();
    if keyword == "undo" {
        c.keyword("`rule`", &["rule"])?;
        let id = c.number("rule number", 0, RULE_MAX)? as u32;
        c.end()?;
        acl.rules.remove(&id);
        return Ok(Effect::stay("undo"));
    }
    let id_token = c.peek().cloned();
    let id = match c.peek() {
        Some(t) if t.text.parse::<u64>().is_ok() => Some(c.number("rule number", 0, RULE_MAX)? as u32),
        _ => None,
    };
    let rule = rule_body(c)?;
    if let (Some(id), Some(token)) = (id, id_token) {
        if acl.rules.contains_key(&id) {
            return Err(SyntaxError {
                column: token.column,
                kind: DiagnosticKind::DuplicateSequence,
                message: format!("duplicate rule number {id} in ACL {number}"),
            });
        }
    }
    let id = id.unwrap_or_else(|| {
        acl.rules.keys().next_back().map_or(RULE_STEP, |max| (max / RULE_STEP + 1).saturating_mul(RULE_STEP))
    });
    acl.rules.insert(id, rule);
    Ok(Effect::stay(format!("rule {id}")))
}

fn rule_body(c: &mut Cursor<'_>) -> Result<AclRule> {
    let action = match c.keyword("`permit` or `deny`", &["permit", "deny"])? {
        "permit" => AclAction::Permit,
        _ => AclAction::Deny,
    };
    let protocol = protocol(c)?;
    let mut rule = AclRule {
        action,
        protocol,
        source: AddressMatch::Any,
        destination: AddressMatch::Any,
        source_port: None,
        destination_port: None,
    };
    let mut seen: Vec<&'static str> = Vec::new();
    while !c.at_end_or(RULE_CONDITIONS) {
        let column = c.column();
        let part = c.keyword("a rule condition", RULE_CONDITIONS)?;
        if seen.contains(&part) {
            return Err(SyntaxError {
                column,
                kind: DiagnosticKind::InvalidValue,
                message: format!("`{part}` given twice in one rule"),
            });
        }
        seen.push(part);
        match part {
            "source" => rule.source = address(c)?,
            "destination" => rule.destination = address(c)?,
            "icmp-type" => {
                return Err(SyntaxError {
                    column,
                    kind: DiagnosticKind::Unsupported,
                    message: "unsupported `icmp-type`: keysteward matches ICMP by addresses only; a rule \
                              for icmp protects every ICMP type and code, so leave `icmp-type …` out"
                        .into(),
                });
            }
            _ => {
                if !protocol.has_ports() {
                    return Err(SyntaxError {
                        column,
                        kind: DiagnosticKind::InvalidValue,
                        message: format!("`{part}` needs protocol tcp or udp"),
                    });
                }
                let ports = port(c)?;
                if part == "source-port" {
                    rule.source_port = Some(ports);
                } else {
                    rule.destination_port = Some(ports);
                }
            }
        }
    }
    Ok(rule)
}

fn protocol(c: &mut Cursor<'_>) -> Result<AclProtocol> {
    if c.peek().is_some_and(|t| t.text.parse::<u64>().is_ok()) {
        return Ok(AclProtocol::from_number(c.number("protocol number", 0, 255)? as u8));
    }
    Ok(match c.keyword("a protocol or protocol number", &["ip", "tcp", "udp", "icmp", "gre"])? {
        "ip" => AclProtocol::Ip,
        "tcp" => AclProtocol::Tcp,
        "udp" => AclProtocol::Udp,
        "icmp" => AclProtocol::Icmp,
        _ => AclProtocol::Gre,
    })
}

/// `any`, or an address and a wildcard mask where `0` means one host.
fn address(c: &mut Cursor<'_>) -> Result<AddressMatch> {
    if c.optional_keyword(&["any"]).is_some() {
        return Ok(AddressMatch::Any);
    }
    let address = c.ipv4("address")?;
    let token = c.raw("a wildcard mask (like 0.0.0.255) or 0")?;
    let wildcard = if token.text == "0" {
        Ipv4Addr::UNSPECIFIED
    } else {
        token
            .text
            .parse()
            .map_err(|_| invalid(token, "wildcard mask", "a wildcard mask (like 0.0.0.255) or 0"))?
    };
    Ok(AddressMatch::Wildcard { address, wildcard })
}

fn port(c: &mut Cursor<'_>) -> Result<PortMatch> {
    let op = c.keyword("a port operator", &["eq", "lt", "gt", "range"])?;
    let p = c.number("port", 0, 65_535)? as u16;
    Ok(match op {
        "eq" => PortMatch::Eq(p),
        "lt" => PortMatch::Lt(p),
        "gt" => PortMatch::Gt(p),
        _ => {
            let column = c.column();
            let q = c.number("port", 0, 65_535)? as u16;
            if q < p {
                return Err(SyntaxError {
                    column,
                    kind: DiagnosticKind::InvalidValue,
                    message: format!(
                        "invalid port range {p} {q}: the second port must not be below the first"
                    ),
                });
            }
            PortMatch::Range(p, q)
        }
    })
}
