//! The aggressive-mode responder's rate limit (and, with the same buckets, the answers of
//! `engine::recovery`). Main mode costs a responder nothing but a
//! small half-open entry until MM3, which only a sender that received our MM2 can send; an
//! AM1 makes it compute a Diffie-Hellman exchange (and, with signatures, sign) and answer
//! with an AM2 that may carry our certificate, to whatever source address the AM1 claims. So
//! AM1s are answered from token buckets, one for all addresses and one per address, refilled
//! at [`Limits::aggressive_mode_responses_per_second`] and
//! [`Limits::aggressive_mode_responses_per_address`]; an AM1 beyond them is refused before
//! any work. Time comes in as an argument (sans-IO).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::config::Limits;

/// A token bucket holding up to `rate` tokens, refilled at `rate` per second.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Self {
        Self { tokens: f64::from(rate), at: now }
    }

    /// Refills to `now`; true when it is full (an entry that can be forgotten).
    fn refill(&mut self, rate: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        self.at = self.at.max(now);
        self.tokens >= f64::from(rate)
    }

    fn has_token(&self) -> bool {
        self.tokens >= 1.0
    }
}

/// The aggressive-mode responder's budget: one bucket for all addresses, one per address.
/// Per-address buckets exist only for addresses that were answered, and are forgotten once
/// full again, so they number at most about one second's worth of answers.
#[derive(Debug, Default)]
pub(crate) struct AggressiveBudget {
    global: Option<Bucket>,
    per_address: HashMap<IpAddr, Bucket>,
}

impl AggressiveBudget {
    /// Takes a token for an AM1 from `address` at `now`; false when either bucket is empty
    /// (the AM1 is then refused, and nothing is taken).
    pub(crate) fn take(&mut self, address: IpAddr, now: Instant, limits: &Limits) -> bool {
        let (rate, per_address) =
            (limits.aggressive_mode_responses_per_second, limits.aggressive_mode_responses_per_address);
        self.take_at(address, now, rate, per_address)
    }

    /// [`AggressiveBudget::take`] at `rate` per second for all addresses and `per_address`
    /// for each, for the other answers to unauthenticated input ([`Recovery`]).
    pub(crate) fn take_at(&mut self, address: IpAddr, now: Instant, rate: u32, per_address: u32) -> bool {
        let global = self.global.get_or_insert_with(|| Bucket::full(rate, now));
        global.refill(rate, now);
        let mut mine =
            self.per_address.get(&address).copied().unwrap_or_else(|| Bucket::full(per_address, now));
        mine.refill(per_address, now);
        if !global.has_token() || !mine.has_token() {
            return false;
        }
        global.tokens -= 1.0;
        mine.tokens -= 1.0;
        self.per_address.insert(address, mine);
        // Bounded: answered addresses only, and each is dropped once refilled.
        if self.per_address.len() > 2 * rate.max(16) as usize {
            self.per_address.retain(|_, bucket| !bucket.refill(per_address, now));
        }
        true
    }

    /// Per-address buckets held (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn addresses(&self) -> usize {
        self.per_address.len()
    }
}

/// The budgets of the answers to packets on unknown SPIs and IKE for unknown cookies
/// (`engine::recovery`), which anyone can send from any address.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// INVALID-SPI answers and the new IKE SAs of recovery.
    pub(crate) recoveries: AggressiveBudget,
    /// INVALID-COOKIE answers.
    pub(crate) invalid_cookies: AggressiveBudget,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn limits(global: u32, per_address: u32) -> Limits {
        Limits {
            aggressive_mode_responses_per_second: global,
            aggressive_mode_responses_per_address: per_address,
            ..Limits::default()
        }
    }

    fn address(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn one_address_gets_its_burst_then_one_per_refill() {
        let (mut budget, limits, now) =
            (AggressiveBudget::default(), limits(50, 5), crate::tests::util::epoch());
        let granted = (0..20).filter(|_| budget.take(address(1), now, &limits)).count();
        assert_eq!(granted, 5);
        // Another address still gets in: the global bucket has 45 left.
        assert!(budget.take(address(2), now, &limits));
        // A fifth of a second later, one more token for address 1 (5 per second).
        let later = now + Duration::from_millis(200);
        assert!(budget.take(address(1), later, &limits));
        assert!(!budget.take(address(1), later, &limits));
    }

    #[test]
    fn all_addresses_together_get_the_global_rate() {
        let (mut budget, limits, now) =
            (AggressiveBudget::default(), limits(50, 5), crate::tests::util::epoch());
        let granted = (0..1000).filter(|&i| budget.take(address(i), now, &limits)).count();
        assert_eq!(granted, 50);
        let second = now + Duration::from_secs(1);
        let granted = (1000..2000).filter(|&i| budget.take(address(i), second, &limits)).count();
        assert_eq!(granted, 50);
        assert!(budget.addresses() <= 100 + 1, "bounded by the answers: {}", budget.addresses());
        // Zero refuses everything.
        let mut closed = AggressiveBudget::default();
        assert!(!closed.take(address(1), now, &Limits { aggressive_mode_responses_per_second: 0, ..limits }));
    }
}
