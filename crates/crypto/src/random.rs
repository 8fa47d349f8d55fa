//! Randomness as a value passed in, so the engine can be driven by a seeded generator in tests
//! and by the operating system's generator in the daemon.

/// A source of cryptographically secure random bytes.
pub trait SecureRandom {
    /// Fills `dest` with random bytes. Failure of the system generator is unrecoverable for a
    /// security gateway, so implementations abort rather than return weak bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

/// The operating system's generator, through AWS-LC.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&mut self, dest: &mut [u8]) {
        if aws_lc_rs::rand::fill(dest).is_err() {
            // Continuing with predictable nonces or DH secrets would silently break every SA.
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_fills() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, b);
    }
}
