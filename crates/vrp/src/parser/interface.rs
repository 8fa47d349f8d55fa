//! The `interface NAME` view (reference `vrp-cli.md` §2.8): the address, and the IPsec
//! policy group applied to traffic that leaves through the interface.

use super::system::{mask_or_length, NAME_LEN};
use super::{leave, Effect};
use crate::cursor::{Cursor, Result, SyntaxError};
use crate::diagnostic::DiagnosticKind;
use crate::model::{Config, InterfaceAddress};

pub(super) fn command(config: &mut Config, name: &str, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword =
        c.keyword("an interface command", &["ip", "ipsec", "undo", "shutdown", "quit", "return"])?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    let interface = config.interfaces.entry(name.to_string()).or_default();
    match keyword {
        "ip" => {
            c.keyword("`address`", &["address"])?;
            let address = c.ipv4("interface address")?;
            let prefix_len = mask_or_length(c)?;
            c.end()?;
            interface.address = Some(InterfaceAddress { address, prefix_len });
            Ok(Effect::stay("ip address"))
        }
        "ipsec" => {
            c.keyword("`policy`", &["policy"])?;
            let column = c.column();
            let policy = c.name("policy name", NAME_LEN)?;
            let auto = c.optional_keyword(&["auto-neg"]).is_some();
            c.end()?;
            if let Some(old) = interface.ipsec_policy.as_ref().filter(|old| **old != policy) {
                return Err(SyntaxError {
                    column,
                    kind: DiagnosticKind::OverlappingPolicy,
                    message: format!(
                        "interface `{name}` already applies policy `{old}`: one policy group per interface \
                         (`undo ipsec policy` first)"
                    ),
                });
            }
            interface.ipsec_policy = Some(policy);
            interface.auto_negotiate = auto;
            Ok(Effect::stay("ipsec policy"))
        }
        "shutdown" => {
            let column = c.column();
            c.end()?;
            Ok(Effect::stay("").with_note(
                column,
                DiagnosticKind::Ignored,
                "`shutdown` is ignored: keysteward does not manage interface state",
            ))
        }
        _ => match c.keyword("a setting to undo", &["ip", "ipsec", "shutdown"])? {
            "ip" => {
                c.keyword("`address`", &["address"])?;
                c.end()?;
                interface.address = None;
                Ok(Effect::stay("undo"))
            }
            "ipsec" => {
                c.keyword("`policy`", &["policy"])?;
                c.end()?;
                interface.ipsec_policy = None;
                interface.auto_negotiate = false;
                Ok(Effect::stay("undo"))
            }
            _ => {
                let column = c.column();
                c.end()?;
                Ok(Effect::stay("").with_note(
                    column,
                    DiagnosticKind::Ignored,
                    "`undo shutdown` has no effect here: keysteward does not manage interface state",
                ))
            }
        },
    }
}
