//! `display ike statistics`, `display ipsec statistics`, their `reset … statistics` (a
//! baseline for the display; the counters themselves never go back, see crate statistics),
//! `debugging ike`, and the counters a metrics scrape reads (no per-SA rows).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use super::Daemon;
use crate::control::{Request, Response};
use crate::display::summary;

/// Where the IKE log lines come from (the events and, at debug, one line per IKE message).
const IKE_LOG_TARGET: &str = "keysteward::daemon::engine_io";

impl Daemon {
    fn ike_statistics_json(&self) -> Value {
        summary::ike_statistics_json(&self.engine, Instant::now())
    }

    fn ipsec_statistics_json(&self) -> Value {
        let (stats, exchanges) = (self.engine.statistics(), self.engine.exchange_counts());
        let templates = summary::template_usage(&self.engine, Instant::now());
        let (bypass, drops) = (self.bridge.bypass_dropped(), self.bridge.send_drops());
        let plane = self.bridge.statistics();
        summary::ipsec_statistics_json(&plane, bypass, &drops, (&stats, &exchanges), &templates)
    }

    /// Answers the statistics requests and `debugging ike`; `None` for any other request.
    pub(super) fn statistics_request(&mut self, request: &Request) -> Option<Response> {
        let done = |text: &str| Response::Ok { text: format!("{text}\n"), json: json!({}) };
        Some(match request {
            Request::DisplayIkeStatistics => {
                summary::ike_statistics(self.baselines.ike_view(&self.ike_statistics_json()))
            }
            Request::DisplayIpsecStatistics => {
                summary::ipsec_statistics(self.baselines.ipsec_view(&self.ipsec_statistics_json()))
            }
            Request::ResetIkeStatistics => {
                self.baselines.ike = Some(self.ike_statistics_json());
                tracing::info!("reset ike statistics: display ike statistics counts from now on");
                done("IKE statistics reset (the exported metrics keep counting)")
            }
            Request::ResetIpsecStatistics => {
                self.baselines.ipsec = Some(self.ipsec_statistics_json());
                tracing::info!("reset ipsec statistics: display ipsec statistics counts from now on");
                done("IPsec statistics reset (the exported metrics keep counting)")
            }
            Request::DebuggingIke { on } => {
                let extra = format!("{IKE_LOG_TARGET}=debug");
                if let Err(e) = telemetry::logging::raise(on.then_some(extra.as_str())) {
                    return Some(Response::Error(format!("debugging ike: {e}")));
                }
                // The message trace is built only while its debug lines are logged.
                self.engine
                    .set_message_trace(tracing::enabled!(target: IKE_LOG_TARGET, tracing::Level::DEBUG));
                if *on {
                    tracing::info!("debugging ike: IKE messages are logged at debug level");
                    done("IKE debugging is on")
                } else {
                    tracing::info!("undo debugging ike: IKE log back to the level the daemon started with");
                    done("IKE debugging is off")
                }
            }
            Request::Counters => Response::Ok { text: String::new(), json: self.counters() },
            _ => return None,
        })
    }

    /// Every counter since the start (no baseline), the gauges, and the days until each
    /// configured certificate and CRL runs out.
    fn counters(&self) -> Value {
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let certificates: Vec<Value> = self
            .expiries
            .iter()
            .map(|e| {
                json!({ "peer": e.peer, "setting": e.setting, "file": e.file, "kind": e.kind,
                    "not_after": e.unix, "seconds_left": e.unix - now, "days_left": e.days_left(now) })
            })
            .collect();
        json!({
            "ike": self.ike_statistics_json(),
            "ipsec": self.ipsec_statistics_json(),
            "certificates": certificates,
        })
    }
}

/// Where the metrics endpoint listens: `--metrics` wins over the file's `metrics server`
/// (and says so when they differ); neither: no endpoint.
pub(super) fn metrics_address(flag: Option<SocketAddr>, config: &vrp::Config) -> Option<SocketAddr> {
    let file = config.metrics.map(SocketAddr::V4);
    if let (Some(flag), Some(file)) = (flag, file) {
        if flag != file {
            tracing::info!("metrics: --metrics {flag} wins over the file's metrics server {file}");
        }
    }
    flag.or(file)
}

impl Daemon {
    /// A reload's new metrics address, bound before anything changes: `Ok(None)` when the
    /// endpoint stays as it is, `Ok(Some(None))` when it closes.
    pub(super) fn metrics_for_reload(
        &self,
        config: &vrp::Config,
    ) -> std::io::Result<Option<Option<(SocketAddr, tokio::net::TcpListener)>>> {
        let next = metrics_address(self.options.metrics, config);
        if next == self.metrics.address() {
            return Ok(None);
        }
        match next {
            Some(addr) => match telemetry::metrics::bind(addr) {
                Ok(listener) => Ok(Some(Some((addr, listener)))),
                Err(e) => Err(std::io::Error::new(e.kind(), format!("{addr}: {e}"))),
            },
            None => Ok(Some(None)),
        }
    }

    /// Applies what [`Daemon::metrics_for_reload`] bound, and logs it.
    pub(super) fn move_metrics(&mut self, next: Option<(SocketAddr, tokio::net::TcpListener)>) {
        match (&next, self.metrics.address()) {
            (Some((addr, _)), Some(old)) => {
                tracing::info!("metrics moved from {old} to http://{addr}/metrics")
            }
            (Some((addr, _)), None) => tracing::info!("metrics at http://{addr}/metrics"),
            (None, _) => tracing::info!("metrics endpoint closed (no metrics server in the file)"),
        }
        self.metrics.replace(next, super::commands::ask(self.requests.clone()));
    }
}
