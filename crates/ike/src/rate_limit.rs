//! A bound on how often the engine answers unauthenticated input (INVALID-COOKIE, INVALID-SPI
//! and the new IKE SAs of recovery after a restart, `engine::recovery`): at most once per
//! interval per source address, and at most a fixed number per second in total. Anyone can
//! send such input from any address, so what it makes us send or do must stay bounded per
//! address and over all addresses, whatever arrives; the table of recent sources holds at
//! most one second's worth of allowed answers, so its memory is bounded too.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Answers to one address: at most one a second.
const PER_ADDRESS: Duration = Duration::from_secs(1);
/// Recoveries (INVALID-SPI answers and the negotiations they start) in total per second.
const RECOVERIES_PER_SECOND: u32 = 100;
/// INVALID-COOKIE answers in total per second.
const INVALID_COOKIES_PER_SECOND: u32 = 20;

/// The rate limits of the recovery answers.
pub(crate) struct Recovery {
    /// Reactions to unknown SPIs and unknown cookies from configured peers.
    pub(crate) recoveries: RateLimit,
    /// INVALID-COOKIE answers.
    pub(crate) invalid_cookies: RateLimit,
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            recoveries: RateLimit::new(PER_ADDRESS, RECOVERIES_PER_SECOND),
            invalid_cookies: RateLimit::new(PER_ADDRESS, INVALID_COOKIES_PER_SECOND),
        }
    }
}

/// A per-source and global rate limit; see the module documentation.
pub(crate) struct RateLimit {
    /// The least time between two answers to one source.
    per_source: Duration,
    /// The most answers in one second, over all sources.
    per_second: u32,
    /// When each source last got an answer (entries older than `per_source` are dropped at
    /// the start of each second).
    last: HashMap<IpAddr, Instant>,
    second_began: Option<Instant>,
    in_this_second: u32,
}

impl RateLimit {
    pub(crate) fn new(per_source: Duration, per_second: u32) -> Self {
        Self { per_source, per_second, last: HashMap::new(), second_began: None, in_this_second: 0 }
    }

    /// Whether `source` may get an answer at `now`; counts it when it may.
    pub(crate) fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        let new_second = self
            .second_began
            .is_none_or(|began| now.saturating_duration_since(began) >= Duration::from_secs(1));
        if new_second {
            self.second_began = Some(now);
            self.in_this_second = 0;
            let per_source = self.per_source;
            self.last.retain(|_, at| now.saturating_duration_since(*at) < per_source);
        }
        if self.in_this_second >= self.per_second {
            return false;
        }
        if self.last.get(&source).is_some_and(|at| now.saturating_duration_since(*at) < self.per_source) {
            return false;
        }
        // Bounded: at most `per_second` sources are added per second, and each second drops
        // those older than `per_source`.
        self.last.insert(source, now);
        self.in_this_second += 1;
        true
    }

    /// How many sources are remembered (for the bound in tests).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_interval_per_source_and_a_global_cap() {
        let t0 = crate::tests::util::epoch();
        let mut limit = RateLimit::new(Duration::from_secs(1), 3);
        let a = IpAddr::from([192, 0, 2, 1]);
        assert!(limit.allow(t0, a));
        assert!(!limit.allow(t0 + Duration::from_millis(500), a), "again too soon");
        assert!(limit.allow(t0 + Duration::from_millis(1000), a), "a second later");
        // A spray from many sources: three answers a second, whatever the sources.
        let allowed = (0..10_000u32)
            .filter(|i| limit.allow(t0 + Duration::from_millis(1500), IpAddr::from(i.to_be_bytes())))
            .count();
        assert_eq!(allowed, 2, "the cap of 3 per second, one used by `a`");
        for second in 2..100u64 {
            let now = t0 + Duration::from_secs(second);
            let allowed = (0..1_000u32).filter(|i| limit.allow(now, IpAddr::from(i.to_be_bytes()))).count();
            assert_eq!(allowed, 3);
            assert!(limit.remembered() <= 3 * 2, "memory bounded: {}", limit.remembered());
        }
    }
}
