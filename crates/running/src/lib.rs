//! The running configuration, as on a VRP device: what the console (`keysteward shell`)
//! changes one command at a time, apart from the saved configuration (the file the daemon
//! started with) until `save`.
//!
//! [`Running`] holds the configuration as typed. A change is prepared first
//! ([`Running::prepare`]: the line applied in its view by [`vrp::edit`], the result checked
//! by [`vrp::validate()`]), and committed only once the daemon has applied it; a refused line
//! (`Error: …`) changes nothing. Objects that are not complete yet (a peer without a key, a
//! policy entry without an ACL, a reference typed before its object) are not refused: they
//! stay *inert* ([`vrp::inert`]) — kept, displayed and noted, but left out of the
//! configuration the daemon applies ([`Change::effective`]) until they are complete.
//!
//! `save` writes the running configuration in canonical VRP form (comments of the old file
//! are not kept, as on the device) through [`service::config_file::replace`]. It refuses
//! while an object is inert: `keysteward run` refuses a file with an incomplete object, and
//! a saved file must start the daemon again with the same running configuration.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use serde_json::json;
use vrp::inert::Inert;
use vrp::{render, Config, KeyDisplay};
use zeroize::Zeroizing;

/// The running configuration, as typed, and how many changes were made since it was loaded
/// or saved.
#[derive(Clone, Debug, Default)]
pub struct Running {
    config: Config,
    unsaved: usize,
}

/// A change checked and ready to apply: the daemon applies [`Change::effective`], then
/// [`Running::commit`]s it.
#[derive(Clone, Debug)]
pub struct Change {
    typed: Config,
    /// The configuration to apply: the running configuration without its inert objects.
    pub effective: Config,
    /// The inert objects after the change.
    pub inert: Vec<Inert>,
    /// Notes for the operator (`Warning: …`, `Info: …`), one per line; may be empty.
    pub text: String,
    /// The change for the log: the views and the line, keys masked (`[ike peer b]
    /// pre-shared-key %^%#********%^%#`).
    pub logged: String,
    /// What the line did, for the answer's JSON.
    pub json: serde_json::Value,
    /// False when the line changed nothing (entering a view that exists, `quit`).
    pub changed: bool,
}

impl Running {
    /// The running configuration loaded from the saved file: nothing unsaved.
    pub fn new(config: Config) -> Self {
        Self { config, unsaved: 0 }
    }

    /// The configuration as typed (inert objects included).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many changes were committed since the file was loaded or saved.
    pub fn unsaved(&self) -> usize {
        self.unsaved
    }

    /// The inert objects and the configuration without them.
    pub fn effective(&self) -> (Config, Vec<Inert>) {
        vrp::inert::split(&self.config)
    }

    /// Replaces the running configuration by `config` (a reload of the saved file); returns
    /// how many unsaved changes were discarded.
    pub fn replace(&mut self, config: Config) -> usize {
        self.config = config;
        std::mem::take(&mut self.unsaved)
    }

    /// Applies `line` in the view `views` open to a copy of the running configuration and
    /// checks it (`host`: the host's addresses, for the warning about an address it lacks).
    /// The error is the operator's message, `Error: …`; the running configuration does not
    /// change until [`Running::commit`]. Warnings are told once, when they appear.
    pub fn prepare(&self, views: &[String], line: &str, host: Option<&[Ipv4Addr]>) -> Result<Change, String> {
        let mut typed = self.config.clone();
        let applied = vrp::edit::apply(&mut typed, views, line).map_err(|e| format!("Error: {e}"))?;
        let findings = vrp::validate("", &typed, None, host);
        let refused: Vec<&str> = findings
            .iter()
            .filter(|d| d.is_error() && !inert_kind(d.kind))
            .map(|d| d.message.as_str())
            .collect();
        if let Some(first) = refused.first() {
            return Err(format!("Error: {first}"));
        }
        let before = vrp::validate("", &self.config, None, host);
        let old_warnings: BTreeSet<&str> =
            before.iter().filter(|d| !d.is_error()).map(|d| d.message.as_str()).collect();
        let mut text = String::new();
        for w in &applied.warnings {
            let _ = writeln!(text, "Warning: {w}");
        }
        for d in findings.iter().filter(|d| !d.is_error() && !old_warnings.contains(d.message.as_str())) {
            let _ = writeln!(text, "Warning: {}", d.message);
        }
        let (_, was_inert) = self.effective();
        let (effective, inert) = vrp::inert::split(&typed);
        for i in &inert {
            let new = !was_inert.iter().any(|w| w.object == i.object);
            if new || i.object == applied.object {
                text.push_str(&inert_note(i));
            }
        }
        for w in &was_inert {
            let complete = !inert.iter().any(|i| i.object == w.object);
            if complete && vrp::inert::keys(&typed).contains(&w.object) {
                let _ = writeln!(text, "Info: {} is complete and applied.", w.object);
            }
        }
        let mut logged: String = views.iter().map(|v| format!("[{v}] ")).collect();
        logged.push_str(&vrp::edit::masked(line));
        let json = json!({
            "object": applied.object,
            "opened_view": applied.opened_view,
            "inert": inert_json(&inert),
        });
        let changed = typed != self.config;
        Ok(Change { typed, effective, inert, text, logged, json, changed })
    }

    /// Makes a prepared change the running configuration (once the daemon applied it); a
    /// line that changed nothing is not counted as a change.
    pub fn commit(&mut self, change: Change) {
        if change.changed {
            self.config = change.typed;
            self.unsaved += 1;
        }
    }

    /// `display current-configuration`: the running configuration in VRP layout, keys masked.
    pub fn current_configuration(&self) -> (String, serde_json::Value) {
        let (_, inert) = self.effective();
        let text = render(&self.config, KeyDisplay::Masked);
        (text, json!({ "unsaved_changes": self.unsaved, "inert": inert_json(&inert) }))
    }

    /// `display this`: the innermost view's object (the system view's own settings when
    /// `views` is empty), keys masked, then a note for each inert object it concerns (every
    /// inert object, in the system view).
    pub fn this(&self, views: &[String]) -> Result<(String, serde_json::Value), String> {
        let only = vrp::edit::view_only(&self.config, views).map_err(|e| format!("Error: {e}"))?;
        let object = vrp::edit::object_of(&self.config, views).map_err(|e| format!("Error: {e}"))?;
        let mut text = render(&only, KeyDisplay::Masked);
        let (_, inert) = self.effective();
        let concerned: Vec<Inert> =
            inert.into_iter().filter(|i| object.is_empty() || i.object == object).collect();
        for i in &concerned {
            text.push_str(&inert_note(i));
        }
        Ok((text, json!({ "object": object, "inert": inert_json(&concerned) })))
    }

    /// `save`: writes the running configuration to `path` ([`service::config_file::replace`]).
    /// Refused while an object is inert. Returns what the device prints.
    pub fn save(&mut self, path: &Path) -> Result<(String, serde_json::Value), String> {
        let (_, inert) = self.effective();
        if !inert.is_empty() {
            let mut m = String::from(
                "Error: the configuration has incomplete objects and was not saved (keysteward refuses a \
                 configuration file with an incomplete object when it starts); complete or undo them first:\n",
            );
            for i in &inert {
                let _ = writeln!(m, "  {}: {}", i.object, i.reasons.join("; "));
            }
            return Err(m.trim_end().to_owned());
        }
        let text = Zeroizing::new(render(&self.config, KeyDisplay::Clear));
        service::config_file::replace(path, text.as_bytes())
            .map_err(|e| format!("Error: cannot save the configuration to {}: {e}", path.display()))?;
        let saved = std::mem::take(&mut self.unsaved);
        let file = path.display().to_string();
        let out = format!(
            "Now saving the current configuration to {file}.\nSave the configuration successfully.\n"
        );
        Ok((out, json!({ "file": file, "changes_saved": saved })))
    }
}

/// `display saved-configuration`: the file at `path` in canonical VRP layout, keys masked.
pub fn saved_configuration(path: &Path) -> Result<(String, serde_json::Value), String> {
    let file = path.display().to_string();
    let (text, _) = service::config_file::read(path).map_err(|e| format!("Error: {file}: {e}"))?;
    let text = Zeroizing::new(text);
    match vrp::parse(&file, &text) {
        Ok(parsed) => Ok((render(&parsed.config, KeyDisplay::Masked), json!({ "file": file }))),
        Err(vrp::Diagnostics(d)) => {
            let first = d.iter().find(|d| d.is_error()).map(ToString::to_string).unwrap_or_default();
            Err(format!("Error: the saved configuration does not parse: {first}"))
        }
    }
}

/// The findings that make an object inert instead of refusing the line.
fn inert_kind(kind: vrp::DiagnosticKind) -> bool {
    matches!(kind, vrp::DiagnosticKind::Incomplete | vrp::DiagnosticKind::MissingReference)
}

fn inert_note(i: &Inert) -> String {
    format!("Info: {} stays inert until it is complete: {}.\n", i.object, i.reasons.join("; "))
}

fn inert_json(inert: &[Inert]) -> serde_json::Value {
    inert.iter().map(|i| json!({ "object": i.object, "reasons": i.reasons })).collect()
}

#[cfg(test)]
mod tests;
