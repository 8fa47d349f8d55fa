//! The `ike user-table N` view and its `user id M` view: per-site pre-shared keys for a
//! template's peer, as USG's IKE user table (reference `vrp-cli.md` §2.7), bound to a peer
//! with `user-table N` in the `ike peer` view.
//!
//! ```text
//! ike user-table 1
//!  user id 1
//!   id-type ip 198.51.100.11
//!   pre-shared-key Key-of-Branch-1
//!  user id 2
//!   id-type fqdn branch2.example.net
//!   pre-shared-key Key-of-Branch-2
//! ```
//!
//! A `user id M` line in a user's view opens that other user, so the rows of a table follow
//! one another without `quit`, as in a saved file.

use super::system::ID_LEN;
use super::{leave, Effect, View};
use crate::cursor::{Cursor, Result};
use crate::model::{Config, TableUser, UserId};

/// Largest `ike user-table` number.
pub(crate) const TABLE_MAX: u64 = 1024;
/// Largest `user id`: one row per branch of a large hub.
const USER_MAX: u64 = 65_535;

const TABLE_COMMANDS: &[&str] = &["user", "undo", "quit", "return"];
const USER_COMMANDS: &[&str] = &["id-type", "pre-shared-key", "user", "undo", "quit", "return"];

/// `ike user-table N` (system view) and `undo ike user-table N`: the table number.
pub(super) fn table_number(c: &mut Cursor<'_>) -> Result<u32> {
    Ok(c.number("user table number", 1, TABLE_MAX)? as u32)
}

/// A command of the `ike user-table N` view.
pub(super) fn table_command(config: &mut Config, table: u32, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword("an ike user-table command", TABLE_COMMANDS)?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    match keyword {
        "user" => enter_user(config, table, c),
        _ => {
            c.keyword("`user`", &["user"])?;
            c.keyword("`id`", &["id"])?;
            let n = c.number("user id", 1, USER_MAX)? as u32;
            c.end()?;
            config.ike_user_tables.entry(table).or_default().users.remove(&n);
            Ok(Effect::stay("undo user"))
        }
    }
}

/// `user id M`: creates the user if needed and enters its view.
fn enter_user(config: &mut Config, table: u32, c: &mut Cursor<'_>) -> Result<Effect> {
    c.keyword("`id`", &["id"])?;
    let n = c.number("user id", 1, USER_MAX)? as u32;
    c.end()?;
    config.ike_user_tables.entry(table).or_default().users.entry(n).or_default();
    Ok(Effect::enter(View::TableUser(table, n)))
}

/// A command of the `user id M` view of `ike user-table N`.
pub(super) fn user_command(config: &mut Config, table: u32, user: u32, c: &mut Cursor<'_>) -> Result<Effect> {
    let keyword = c.keyword("an ike user-table user command", USER_COMMANDS)?;
    if let Some(done) = leave(keyword, c) {
        return done;
    }
    if keyword == "user" {
        return enter_user(config, table, c);
    }
    match keyword {
        "id-type" => {
            let id = match c.keyword("an identity type", &["ip", "fqdn", "user-fqdn"])? {
                "ip" => UserId::Ip(c.ipv4("site address")?),
                "fqdn" => UserId::Fqdn(c.name("site FQDN", ID_LEN)?),
                _ => UserId::UserFqdn(c.name("site user FQDN", ID_LEN)?),
            };
            c.end()?;
            user_entry(config, table, user).id = Some(id);
            Ok(Effect::stay("id-type"))
        }
        "pre-shared-key" => {
            let key = super::ike::pre_shared_key(c)?;
            user_entry(config, table, user).pre_shared_key = Some(key);
            Ok(Effect::stay("pre-shared-key"))
        }
        _ => {
            let which = c.keyword("a setting to undo", &["id-type", "pre-shared-key"])?;
            c.end()?;
            let entry = user_entry(config, table, user);
            if which == "id-type" {
                entry.id = None;
            } else {
                entry.pre_shared_key = None;
            }
            Ok(Effect::stay("undo"))
        }
    }
}

fn user_entry(config: &mut Config, table: u32, user: u32) -> &mut TableUser {
    config.ike_user_tables.entry(table).or_default().users.entry(user).or_default()
}
