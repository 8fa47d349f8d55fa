//! Rate limits for the log lines of engine failures. Anyone can make the engine refuse
//! something (a spoofed MM1, an AM1 for a main-mode peer, a flood over the rate limits), and
//! a line per refusal would let them fill the disk and bury what matters. So a failure with
//! a configured peer is logged once per [`PER_KEY_INTERVAL`] for each (peer, address,
//! exchange, state, kind of reason), the next line saying how many were suppressed meanwhile ("… (37 more
//! suppressed)"); failures from unknown sources share one budget of [`UNKNOWN_PER_SECOND`]
//! lines per second. `display ike error-info` still records every failure (bounded there).

use std::collections::HashMap;
use std::mem::Discriminant;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ike::{Exchange, Failure, FailureReason};

/// One line per peer and reason per this interval.
pub const PER_KEY_INTERVAL: Duration = Duration::from_secs(10);

/// Lines per second for failures without a configured peer, all sources together.
pub const UNKNOWN_PER_SECOND: u32 = 5;

/// Keys remembered before the stale ones are forgotten (a peer that stopped failing).
const MAX_KEYS: usize = 4096;

/// What to do with one failure's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, noting how many like it were suppressed since the last line.
    Log {
        /// Lines suppressed since the last one logged for the same key (or budget).
        suppressed: u64,
    },
    /// Suppress it (counted for the next line).
    Suppress,
}

/// (peer, its address, exchange, state, kind of reason): the failures one line stands for.
/// The address keeps the branches of one template peer apart.
type Key = (String, IpAddr, Exchange, &'static str, Discriminant<FailureReason>);

#[derive(Debug, Clone, Copy)]
struct Window {
    logged_at: Instant,
    suppressed: u64,
}

/// The limiter: a window per key for configured peers, one budget per second for the rest.
#[derive(Debug, Default)]
pub struct RefusalLog {
    per_key: HashMap<Key, Window>,
    /// The second the unknown-source budget counts in, lines logged in it, lines suppressed
    /// since the last one logged.
    unknown: Option<(Instant, u32, u64)>,
}

impl RefusalLog {
    /// Whether to log `failure` at `now`.
    pub fn check(&mut self, failure: &Failure, now: Instant) -> Verdict {
        match &failure.peer {
            Some(peer) => {
                let reason = std::mem::discriminant(&failure.reason);
                let key = (peer.clone(), failure.remote.ip(), failure.exchange, failure.state, reason);
                self.check_key(key, now)
            }
            None => self.check_unknown(now),
        }
    }

    fn check_key(&mut self, key: Key, now: Instant) -> Verdict {
        if let Some(window) = self.per_key.get_mut(&key) {
            if now.saturating_duration_since(window.logged_at) < PER_KEY_INTERVAL {
                window.suppressed += 1;
                return Verdict::Suppress;
            }
            let suppressed = std::mem::take(&mut window.suppressed);
            window.logged_at = now;
            return Verdict::Log { suppressed };
        }
        if self.per_key.len() >= MAX_KEYS {
            // Bounded: windows that ended are forgotten (their suppressed count with them).
            self.per_key.retain(|_, w| now.saturating_duration_since(w.logged_at) < PER_KEY_INTERVAL);
            if self.per_key.len() >= MAX_KEYS {
                return self.check_unknown(now);
            }
        }
        self.per_key.insert(key, Window { logged_at: now, suppressed: 0 });
        Verdict::Log { suppressed: 0 }
    }

    fn check_unknown(&mut self, now: Instant) -> Verdict {
        let (since, lines, suppressed) = self.unknown.get_or_insert((now, 0, 0));
        if now.saturating_duration_since(*since) >= Duration::from_secs(1) {
            (*since, *lines) = (now, 0);
        }
        if *lines >= UNKNOWN_PER_SECOND {
            *suppressed += 1;
            return Verdict::Suppress;
        }
        *lines += 1;
        Verdict::Log { suppressed: std::mem::take(suppressed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ike::{PolicyFailure, ProposalFailure};

    fn failure(peer: Option<&str>, reason: FailureReason) -> Failure {
        Failure {
            peer: peer.map(str::to_owned),
            remote: "192.0.2.2:500".parse().expect("address"),
            exchange: Exchange::MainMode,
            state: "waiting for MM1",
            reason,
            unauthenticated: true,
        }
    }

    fn unknown() -> FailureReason {
        FailureReason::Policy(PolicyFailure::UnknownPeer)
    }

    fn oversized() -> FailureReason {
        FailureReason::Policy(PolicyFailure::SaPayloadTooLarge { size: 20_000, limit: 16_384 })
    }

    #[test]
    fn one_line_per_peer_and_reason_per_ten_seconds_with_the_count_suppressed() {
        let (mut log, now) = (RefusalLog::default(), Instant::now());
        let refused = failure(Some("fw_b"), oversized());
        assert_eq!(log.check(&refused, now), Verdict::Log { suppressed: 0 });
        for i in 1..=37 {
            assert_eq!(log.check(&refused, now + Duration::from_millis(i * 100)), Verdict::Suppress);
        }
        // Another reason or another peer has its own window.
        let mismatch = failure(
            Some("fw_b"),
            FailureReason::Proposal(ProposalFailure::Phase1(ike::Phase1Mismatch {
                offered: Vec::new(),
                accepted: Vec::new(),
            })),
        );
        assert_eq!(log.check(&mismatch, now), Verdict::Log { suppressed: 0 });
        assert_eq!(log.check(&failure(Some("fw_c"), oversized()), now), Verdict::Log { suppressed: 0 });
        // Ten seconds on: one line again, saying 37 were suppressed.
        assert_eq!(log.check(&refused, now + PER_KEY_INTERVAL), Verdict::Log { suppressed: 37 });
        assert_eq!(log.check(&refused, now + PER_KEY_INTERVAL), Verdict::Suppress);
    }

    #[test]
    fn unknown_sources_share_a_budget_of_lines_per_second() {
        let (mut log, now) = (RefusalLog::default(), Instant::now());
        let logged =
            (0..1000).filter(|_| log.check(&failure(None, unknown()), now) != Verdict::Suppress).count();
        assert_eq!(logged, UNKNOWN_PER_SECOND as usize);
        // The next second: the first line carries the count of what was dropped.
        let next = now + Duration::from_secs(1);
        let expected = 1000 - u64::from(UNKNOWN_PER_SECOND);
        assert_eq!(log.check(&failure(None, unknown()), next), Verdict::Log { suppressed: expected });
    }

    #[test]
    fn the_keys_stay_bounded() {
        let (mut log, now) = (RefusalLog::default(), Instant::now());
        for i in 0..(MAX_KEYS + 100) {
            let peer = format!("branch{i}");
            let _ = log.check(&failure(Some(&peer), oversized()), now);
        }
        assert!(log.per_key.len() <= MAX_KEYS);
        // Once their windows ended, old keys make room again.
        let later = now + PER_KEY_INTERVAL;
        assert_eq!(log.check(&failure(Some("new"), oversized()), later), Verdict::Log { suppressed: 0 });
        assert!(log.per_key.len() <= MAX_KEYS);
    }
}
