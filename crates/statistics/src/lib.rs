//! keysteward's statistics, as an operator reads them and as the metrics export them.
//!
//! [`ike`] and [`ipsec`] turn the engine's and the data plane's counters into the JSON and
//! the text of `display ike statistics` and `display ipsec statistics`. `reset ike
//! statistics` / `reset ipsec statistics` do not touch a counter: they keep the JSON of that
//! moment as a [`Baselines`] entry, and the display shows [`since`] it, so the exported
//! counters (which read the JSON without a baseline) never go backwards. [`expiry`] reads
//! the `notAfter` of the configured certificates and the `nextUpdate` of the CRLs.

#![forbid(unsafe_code)]

pub mod expiry;
pub mod ike;
pub mod ipsec;

#[cfg(test)]
#[path = "../../crypto/tests/support/test_pki.rs"]
mod test_pki;

use serde_json::{Map, Value};

pub use expiry::{Expiry, ExpiryKind};

/// The counts of `current` since `baseline`: every number that is not a gauge is reduced by
/// the baseline's number at the same place (nested objects alike; never below 0). Gauges
/// (`gauges`, keys at the top level) and anything else are kept as they are.
pub fn since(current: &Value, baseline: &Value, gauges: &[&str]) -> Value {
    match (current, baseline) {
        (Value::Object(now), Value::Object(then)) => {
            let mut out = Map::new();
            for (key, value) in now {
                let value = match then.get(key) {
                    Some(old) if !gauges.contains(&key.as_str()) => since(value, old, &[]),
                    _ => value.clone(),
                };
                out.insert(key.clone(), value);
            }
            Value::Object(out)
        }
        (Value::Number(now), Value::Number(then)) => match (now.as_u64(), then.as_u64()) {
            (Some(now), Some(then)) => Value::from(now.saturating_sub(then)),
            _ => current.clone(),
        },
        _ => current.clone(),
    }
}

/// The JSON of each statistics display at its last `reset … statistics` (`None`: never
/// reset, the display shows everything since the daemon started).
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    /// At `reset ike statistics`.
    pub ike: Option<Value>,
    /// At `reset ipsec statistics`.
    pub ipsec: Option<Value>,
}

impl Baselines {
    /// What `display ike statistics` shows of `current` (the JSON of [`ike::json()`]).
    pub fn ike_view(&self, current: &Value) -> Value {
        match &self.ike {
            Some(base) => since(current, base, ike::GAUGES),
            None => current.clone(),
        }
    }

    /// What `display ipsec statistics` shows of `current` (the JSON of [`ipsec::json()`]).
    pub fn ipsec_view(&self, current: &Value) -> Value {
        match &self.ipsec {
            Some(base) => since(current, base, ipsec::GAUGES),
            None => current.clone(),
        }
    }
}

/// A count in `json` at `key`, 0 when absent.
pub fn count(json: &Value, key: &str) -> u64 {
    json[key].as_u64().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn since_subtracts_counters_and_keeps_gauges() {
        let base = json!({ "half_open": 5, "sealed": 10, "exchanges": { "main": { "started": 2 } } });
        let now =
            json!({ "half_open": 3, "sealed": 12, "exchanges": { "main": { "started": 7 } }, "new": 1 });
        let view = since(&now, &base, &["half_open"]);
        assert_eq!(
            view,
            json!({ "half_open": 3, "sealed": 2, "exchanges": { "main": { "started": 5 } }, "new": 1 })
        );
    }
}
