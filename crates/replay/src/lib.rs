//! The anti-replay window of an inbound SA (RFC 4303 §3.4.3), kept as an RFC 6479 ring of
//! 64-bit blocks so that sliding the window clears whole words instead of shifting bits.
//!
//! Two calls, as boringtun and wireguard-go do: [`ReplayWindow::check`] is cheap and runs
//! before the ICV check (so replayed packets cost no cryptography), and
//! [`ReplayWindow::update`] runs only after the ICV or AEAD tag has been verified (so forged
//! packets cannot move the window). `update` checks again, so a caller that skipped `check`
//! cannot accept a duplicate.
//!
//! Sequence number 0 is never sent (the first packet carries 1, RFC 4303 §3.3.3) and is
//! refused. Extended sequence numbers are not supported: IKEv1 SAs here never negotiate them.
#![forbid(unsafe_code)]

/// Bits per block of the bitmap.
const BLOCK_BITS: u32 = u64::BITS;

/// The default window, RFC 4303 §3.4.3's "default of 64".
pub const DEFAULT_WINDOW: u32 = 64;
/// The smallest window accepted: RFC 4303 §3.4.3's minimum of 32 (also VRP's smallest
/// `anti-replay window`).
pub const MIN_WINDOW: u32 = 32;
/// The largest window accepted; RFC 6479 notes larger windows cost only memory (here
/// `MAX_WINDOW / 8` bytes per SA).
pub const MAX_WINDOW: u32 = 4096;

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Sequence number 0, which no conforming sender uses.
    #[error("sequence number 0 is never sent")]
    Zero,
    /// Already received.
    #[error("sequence number {sequence} already received")]
    Duplicate {
        /// The sequence number.
        sequence: u32,
    },
    /// Left of the window.
    #[error("sequence number {sequence} is left of the window ending at {highest}")]
    TooOld {
        /// The sequence number.
        sequence: u32,
        /// The highest sequence number received.
        highest: u32,
    },
}

/// A sliding window of received sequence numbers.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// Highest sequence number accepted so far (0: none yet).
    highest: u32,
    /// Accepted sequence numbers, one bit each, block `(seq / 64) % blocks.len()`. One block
    /// more than the window needs, so the window's lowest block is never the one being reused.
    blocks: Box<[u64]>,
    /// Window size in sequence numbers.
    size: u32,
}

impl ReplayWindow {
    /// A window of `size` sequence numbers, clamped to [`MIN_WINDOW`]..=[`MAX_WINDOW`]
    /// (anti-replay cannot be switched off). Allocates once, at SA installation.
    pub fn new(size: u32) -> Self {
        let size = size.clamp(MIN_WINDOW, MAX_WINDOW);
        let blocks = (size.div_ceil(BLOCK_BITS) + 1) as usize;
        Self { highest: 0, blocks: vec![0; blocks].into_boxed_slice(), size }
    }

    /// The window size in sequence numbers.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The highest sequence number accepted so far (0 before the first).
    pub fn highest(&self) -> u32 {
        self.highest
    }

    fn slot(&self, sequence: u32) -> (usize, u64) {
        let block = (sequence / BLOCK_BITS) as usize % self.blocks.len();
        (block, 1u64 << (sequence % BLOCK_BITS))
    }

    /// Whether `sequence` may be new. Does not change the window.
    pub fn check(&self, sequence: u32) -> Result<(), ReplayError> {
        if sequence == 0 {
            return Err(ReplayError::Zero);
        }
        if sequence > self.highest {
            return Ok(());
        }
        if self.highest - sequence >= self.size {
            return Err(ReplayError::TooOld { sequence, highest: self.highest });
        }
        let (block, bit) = self.slot(sequence);
        if self.blocks[block] & bit != 0 {
            return Err(ReplayError::Duplicate { sequence });
        }
        Ok(())
    }

    /// Records `sequence` as received, sliding the window right if it is the new highest.
    /// Call only once the packet is authenticated.
    pub fn update(&mut self, sequence: u32) -> Result<(), ReplayError> {
        self.check(sequence)?;
        if sequence > self.highest {
            let current = self.highest / BLOCK_BITS;
            let target = sequence / BLOCK_BITS;
            // Clear the blocks the window slides into; at most all of them.
            let to_clear = (target - current).min(self.blocks.len() as u32);
            for step in 1..=to_clear {
                let block = (current + step) as usize % self.blocks.len();
                self.blocks[block] = 0;
            }
            self.highest = sequence;
        }
        let (block, bit) = self.slot(sequence);
        self.blocks[block] |= bit;
        Ok(())
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn accept(window: &mut ReplayWindow, sequence: u32) -> Result<(), ReplayError> {
        window.check(sequence)?;
        window.update(sequence)
    }

    #[test]
    fn sizes_are_clamped() {
        assert_eq!(ReplayWindow::new(0).size(), 32);
        assert_eq!(ReplayWindow::new(65).size(), 65);
        assert_eq!(ReplayWindow::new(1024).size(), 1024);
        assert_eq!(ReplayWindow::new(u32::MAX).size(), MAX_WINDOW);
        assert_eq!(ReplayWindow::default().size(), DEFAULT_WINDOW);
    }

    #[test]
    fn zero_and_duplicates() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(0), Err(ReplayError::Zero));
        assert_eq!(accept(&mut w, 1), Ok(()));
        assert_eq!(accept(&mut w, 1), Err(ReplayError::Duplicate { sequence: 1 }));
        // `update` re-checks: no duplicate through the back door.
        assert_eq!(w.update(1), Err(ReplayError::Duplicate { sequence: 1 }));
        assert_eq!(w.highest(), 1);
    }

    #[test]
    fn out_of_order_inside_the_window() {
        let mut w = ReplayWindow::new(64);
        for seq in [5, 3, 4, 1, 2, 64, 10, 6] {
            assert_eq!(accept(&mut w, seq), Ok(()), "{seq}");
        }
        for seq in [1, 5, 64, 10] {
            assert_eq!(accept(&mut w, seq), Err(ReplayError::Duplicate { sequence: seq }));
        }
        assert_eq!(accept(&mut w, 7), Ok(()));
    }

    #[test]
    fn window_edges() {
        for size in [32, 64, 100, 1024] {
            let mut w = ReplayWindow::new(size);
            assert_eq!(accept(&mut w, 5000), Ok(()));
            let lowest = 5000 - size + 1;
            assert_eq!(w.check(lowest - 1), Err(ReplayError::TooOld { sequence: lowest - 1, highest: 5000 }));
            assert_eq!(accept(&mut w, lowest), Ok(()), "lowest in the window, size {size}");
            assert_eq!(accept(&mut w, 4999), Ok(()));
        }
    }

    #[test]
    fn large_jumps_clear_old_bits() {
        let mut w = ReplayWindow::new(64);
        for seq in 1..=200 {
            accept(&mut w, seq).unwrap();
        }
        // A jump further than the whole ring: every old bit must be gone.
        accept(&mut w, 200 + 64 * 5 + 3).unwrap();
        for seq in (200 + 64 * 5 + 3 - 63)..(200 + 64 * 5 + 3) {
            assert_eq!(w.check(seq), Ok(()), "{seq} was never received");
        }
        // A jump of exactly one block reuses the ring's first block: it must be cleared.
        let mut w = ReplayWindow::new(64);
        accept(&mut w, 3).unwrap();
        accept(&mut w, 64).unwrap();
        accept(&mut w, 128).unwrap();
        accept(&mut w, 129).unwrap();
        assert_eq!(w.check(128), Err(ReplayError::Duplicate { sequence: 128 }));
        assert_eq!(w.check(64), Err(ReplayError::TooOld { sequence: 64, highest: 129 }));
        for seq in 66..128 {
            assert_eq!(w.check(seq), Ok(()), "{seq}");
        }
        accept(&mut w, 140).unwrap();
        assert_eq!(w.check(131), Ok(()), "the bit of sequence 3 in the reused block was cleared");
        // Up to the top of the sequence space.
        accept(&mut w, u32::MAX).unwrap();
        assert_eq!(w.check(u32::MAX), Err(ReplayError::Duplicate { sequence: u32::MAX }));
        assert_eq!(w.check(u32::MAX - 1), Ok(()));
    }

    /// The obvious implementation: a set of everything received and the highest.
    struct Model {
        seen: HashSet<u32>,
        highest: u32,
        size: u32,
    }

    impl Model {
        fn accept(&mut self, sequence: u32) -> bool {
            let ok = sequence != 0
                && !self.seen.contains(&sequence)
                && (sequence > self.highest || self.highest - sequence < self.size);
            if ok {
                self.seen.insert(sequence);
                self.highest = self.highest.max(sequence);
            }
            ok
        }
    }

    /// Sequence numbers mostly near each other, with occasional jumps, as real traffic with
    /// reordering and loss produces.
    fn sequences() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(
            prop_oneof![
                8 => 0u32..3000,
                1 => any::<u32>(),
                1 => u32::MAX - 2000..=u32::MAX,
            ],
            1..400,
        )
    }

    proptest! {
        #[test]
        fn matches_the_naive_model(size in prop_oneof![Just(32u32), Just(64), Just(100), Just(128), Just(1024)], seqs in sequences()) {
            let mut window = ReplayWindow::new(size);
            let mut model = Model { seen: HashSet::new(), highest: 0, size };
            for seq in seqs {
                let expected = model.accept(seq);
                let got = accept(&mut window, seq).is_ok();
                prop_assert_eq!(got, expected, "sequence {} (size {})", seq, size);
            }
        }

        #[test]
        fn check_alone_never_changes_the_window(seqs in sequences()) {
            let window = ReplayWindow::new(64);
            for seq in &seqs {
                let _ = window.check(*seq);
            }
            prop_assert_eq!(window.highest(), 0);
            for seq in seqs {
                if seq != 0 {
                    prop_assert!(window.check(seq).is_ok());
                }
            }
        }
    }
}
