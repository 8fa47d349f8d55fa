//! The console's requests (`keysteward shell`): one command applied to the running
//! configuration at once, `display this | current-configuration | saved-configuration`,
//! and `save`. The running configuration itself is crate `running`; here it meets the
//! daemon: a change's complete part is checked as a file is ([`check_running`]) and applied
//! as a reload applies one ([`Daemon::apply`]: the tunnels whose configuration did not change
//! stay up), and every change is logged with the Unix user who made it.

use tracing::info;

use super::reload::Applied;
use super::startup::check_running;
use super::Daemon;
use crate::control::Response;

impl Daemon {
    /// `Configure { views, line }` from the client of uid `uid`.
    pub(super) fn configure(&mut self, views: &[String], line: &str, uid: Option<u32>) -> Response {
        let who = who(uid);
        let host = crate::load::Host::current().ok().map(|h| h.addresses());
        let change = match self.running.prepare(views, line, host.as_deref()) {
            Ok(change) => change,
            Err(e) => return refused(&who, e),
        };
        let mut text = change.text.clone();
        // Only what is complete reaches the engine; a change to an inert object alone
        // changes nothing there.
        if change.effective != self.config {
            let applied = check_running(&self.options, &change.effective)
                .map_err(|e| e.to_string())
                .and_then(|checked| self.apply(checked).map_err(|e| e.to_string()));
            match applied {
                Ok(applied) => text.push_str(&deleted(&applied)),
                Err(e) => {
                    let message = e.lines().map(|l| format!("Error: {l}")).collect::<Vec<_>>().join("\n");
                    return refused(&who, message);
                }
            }
        }
        if change.changed {
            info!("configuration changed by {who}: {}", change.logged);
        }
        let json = change.json.clone();
        self.running.commit(change);
        Response::Ok { text, json }
    }

    /// `save`, by the client of uid `uid`.
    pub(super) fn save(&mut self, uid: Option<u32>) -> Response {
        let who = who(uid);
        let changes = self.running.unsaved();
        match self.running.save(&self.options.config) {
            Ok((text, json)) => {
                info!(
                    "configuration saved to {} by {who} ({changes} change(s) since the last load or save)",
                    self.options.config.display()
                );
                Response::Ok { text, json }
            }
            Err(e) => {
                info!("save by {who} refused: {e}");
                Response::Error(e)
            }
        }
    }

    /// `display current-configuration`, `display saved-configuration` and `display this`.
    pub(super) fn display_configuration(&self, request: &crate::control::Request) -> Response {
        use crate::control::Request;
        let answer = match request {
            Request::DisplayCurrentConfiguration => Ok(self.running.current_configuration()),
            Request::DisplaySavedConfiguration => running::saved_configuration(&self.options.config),
            Request::DisplayThis { views } => self.running.this(views),
            _ => Err("Error: not a configuration display".to_owned()),
        };
        match answer {
            Ok((text, json)) => Response::Ok { text, json },
            Err(e) => Response::Error(e),
        }
    }
}

/// The note on the SAs a change deleted (their configuration changed), or nothing.
fn deleted(applied: &Applied) -> String {
    let ike = applied.before.0.saturating_sub(applied.after.0);
    let pairs = applied.before.1.saturating_sub(applied.after.1);
    if ike + pairs == 0 {
        return String::new();
    }
    format!(
        "Info: {ike} IKE SA(s) and {pairs} IPsec SA pair(s) deleted: their configuration changed; \
         traffic negotiates new ones.\n"
    )
}

/// The answer to a refused change, logged (the message never quotes a key).
fn refused(who: &str, message: String) -> Response {
    info!("configuration change by {who} refused: {}", message.replace('\n', " "));
    Response::Error(message)
}

/// The Unix user of `uid` as the log names them: `alice (uid 1000)`, or the uid alone when
/// it has no name; `the daemon` for its own requests.
fn who(uid: Option<u32>) -> String {
    let Some(uid) = uid else { return "the daemon".to_owned() };
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}
