//! Reload (`keysteward reload`, or SIGHUP): the file the daemon started with is read again
//! and checked whole; any error leaves everything as it was. See the daemon's module
//! documentation for what is kept.

use std::time::Instant;

use serde_json::json;
use tracing::{error, info, warn};

use super::startup::{initiating, load_checked, open_sockets, Checked, DataSockets};
use super::{ConfigError, Daemon};
use crate::bridge::routing;
use crate::engine_config::template_policies;
use crate::os::OsError;

/// Why a reload was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file has errors, or the host could not be checked.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket or route the new configuration needs could not be set up.
    #[error(transparent)]
    Os(#[from] OsError),
    /// The new `metrics server` address could not be listened on.
    #[error("metrics server: cannot listen on {0}")]
    Metrics(std::io::Error),
}

/// The SA counts a reload compares: IKE SAs and IPsec SA pairs.
type Counts = (usize, usize);

/// What applying a configuration did: the SA counts before and after, and the policy
/// entries that are new or changed.
pub(super) struct Applied {
    pub(super) before: Counts,
    pub(super) after: Counts,
    pub(super) fresh: Vec<String>,
}

impl Daemon {
    /// Reloads the configuration file: checks it whole, then applies it. Returns the summary
    /// for the caller, or every reason the file was refused, in which case nothing changed.
    /// Both are logged. The caller drains the engine afterwards, as after any input (the
    /// Deletes go out then).
    pub(super) fn reload(&mut self) -> Result<(String, serde_json::Value), ReloadError> {
        self.try_reload().inspect_err(|reason| {
            error!("reload of {} refused, nothing changed: {reason}", self.options.config.display());
        })
    }

    fn try_reload(&mut self) -> Result<(String, serde_json::Value), ReloadError> {
        let checked = load_checked(&self.options)?;
        let typed = checked.config.clone();
        let warnings = checked.warnings.clone();
        let applied = self.apply(checked, &typed)?;
        // The saved file is the running configuration again: console changes not saved go.
        let discarded = self.running.replace(typed);
        self.running.on_disk(&self.options.config);
        let (mut text, mut json) = self.summary(applied, warnings);
        if discarded > 0 {
            let m = format!(
                "{discarded} unsaved console change(s) discarded: the running configuration is {} again",
                self.options.config.display()
            );
            warn!("reload: {m}");
            text.push_str(&m);
            text.push('\n');
        }
        json["unsaved_changes_discarded"] = discarded.into();
        Ok((text, json))
    }

    /// Applies a checked configuration, all or nothing (a reload's file, or the complete part
    /// of the running configuration after a console change): everything that can fail comes
    /// first, while the configuration in force is untouched; then the engine keeps the SAs of
    /// what did not change. `typed` is the running configuration as typed: the protected
    /// prefixes of its inert policy entries stay fail-closed, and its static routes toward
    /// them stay held back ([`routing::inert_prefixes`]).
    pub(super) fn apply(&mut self, checked: Checked, typed: &vrp::Config) -> Result<Applied, ReloadError> {
        let Checked { config, engine: engine_config, expiries, .. } = checked;
        // Every socket and handle is open and every route added before anything changes (the
        // metrics endpoint's new address bound too).
        let metrics = self.metrics_for_reload(&config).map_err(ReloadError::Metrics)?;
        let bridge = &self.bridge;
        let new_sockets =
            open_sockets(&engine_config, &self.sockets, |address| bridge.has_raw_socket(address))?;
        let templates = template_policies(&config, &engine_config);
        let denies = crate::engine_config::deny_rules(&config, &engine_config);
        let prefixes = routing::static_prefixes(&engine_config, &templates, &denies);
        let template_ranges = routing::template_prefixes(&engine_config, &templates);
        let mut plan = routing::gateway_flows(&engine_config, &templates, &denies);
        plan.flows.extend(routing::inert_flows(typed, &config)); // kept fail-closed
        self.routes.add_missing(&prefixes)?;
        let held: Vec<_> =
            routing::inert_prefixes(typed, &config).into_iter().filter(|p| !prefixes.contains(p)).collect();
        self.routes.hold(&held)?;
        let DataSockets { raw, raw_ah, udp_4500 } = new_sockets.start(&mut self.sockets, &self.datagrams);
        self.bridge.add_sockets(raw, udp_4500);
        self.bridge.add_ah_sockets(raw_ah);

        let now = Instant::now();
        let before = self.counts(now);
        let acquires = initiating(&config, &engine_config, &templates);
        let diff = self.engine.reconfigure(now, engine_config);
        self.bridge.reconfigure(self.engine.config(), (templates, &denies), &diff);
        // The policy rules first: a prefix whose rule gained a protocol keeps its TUN route
        // until the rule for its protocol is there, so nothing protected leaves in clear.
        if let Err(e) = self.routes.set_gateway_flows(&plan) {
            warn!("new configuration: policy routes (to the peers' own addresses, by protocol): {e}");
        }
        self.routes.remove_except(&prefixes, &[template_ranges, held].concat());
        self.static_routes.apply(routing::static_routes(typed, &self.options.interface_map));
        for acquire in acquires {
            self.engine.handle_acquire(now, acquire);
        }
        self.config = config;
        self.expiries = expiries;
        if let Some(next) = metrics {
            self.move_metrics(next);
        }
        let fresh: Vec<String> =
            diff.fresh_policies.iter().map(|&i| self.engine.config().policies[i].id.to_string()).collect();
        Ok(Applied { before, after: self.counts(now), fresh })
    }

    fn counts(&self, now: Instant) -> Counts {
        (self.engine.ike_sas().count(), self.engine.ipsec_sas(now).count())
    }

    /// The reload's answer: the file's warnings (the log already has them) and what was
    /// kept and deleted, as text and JSON; the summary line is logged.
    fn summary(&self, applied: Applied, warnings: Vec<String>) -> (String, serde_json::Value) {
        let Applied { before: (ike_before, pairs_before), after: (ike_after, pairs_after), fresh } = applied;
        let file = self.options.config.display().to_string();
        let (ike_deleted, pairs_deleted) =
            (ike_before.saturating_sub(ike_after), pairs_before.saturating_sub(pairs_after));
        let summary = format!(
            "reloaded {file}: {} IKE SA(s) and {} IPsec SA pair(s) kept, {ike_deleted} IKE SA(s) and \
             {pairs_deleted} IPsec SA pair(s) deleted; new or changed policy entries: {}",
            ike_after,
            pairs_after,
            if fresh.is_empty() { "none".to_owned() } else { fresh.join(", ") }
        );
        info!("{summary}");
        let mut text = String::new();
        for w in &warnings {
            text.push_str(w);
            text.push('\n');
        }
        text.push_str(&summary);
        text.push('\n');
        let json = json!({
            "file": file,
            "ike_sas_kept": ike_after,
            "ipsec_sa_pairs_kept": pairs_after,
            "ike_sas_deleted": ike_deleted,
            "ipsec_sa_pairs_deleted": pairs_deleted,
            "fresh_policies": fresh,
            "warnings": warnings,
        });
        (text, json)
    }
}
