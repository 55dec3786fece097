//! Injected randomness (DESIGN.md, rule 2 of the core).
//!
//! The core never draws from the operating system or from a global
//! generator. Every salt, session id or token it makes comes from a
//! cryptographically secure generator that its caller lends it, as a
//! `&mut dyn` [`CryptoRng`] (rand_core's trait, which includes [`Rng`]):
//!
//! - the server lends OS randomness, for example
//!   `rand_core::UnwrapErr(getrandom::SysRng)`;
//! - tests and fuzzers lend a [`TestRng`], so that a failing run replays
//!   from its seed.
//!
//! `tests/core_is_sans_io.rs` checks that the core's sources never name the
//! OS generators and that its dependency tree does not contain one.

use std::convert::Infallible;
use std::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::{SeedableRng, TryCryptoRng, TryRng};

pub use rand_core::{CryptoRng, Rng};

/// A deterministic generator for tests, examples and fuzzing: ChaCha20
/// seeded from a `u64`.
///
/// It implements [`CryptoRng`] because ChaCha20 is a sound stream, but a
/// 64-bit seed is not a secret worth the name: never give it to a server.
pub struct TestRng(ChaCha20Rng);

impl TestRng {
    /// The generator for `seed`; the same seed gives the same bytes.
    #[must_use]
    pub fn seeded(seed: u64) -> Self {
        TestRng(ChaCha20Rng::seed_from_u64(seed))
    }
}

impl fmt::Debug for TestRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is the whole secret; keep it out of logs even in tests.
        f.write_str("TestRng { .. }")
    }
}

impl TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.0.try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0.try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.try_fill_bytes(dst)
    }
}

impl TryCryptoRng for TestRng {}

/// `N` bytes from `rng`.
pub fn random_array<const N: usize>(rng: &mut dyn CryptoRng) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_different_seeds_differ() {
        let a: [u8; 32] = random_array(&mut TestRng::seeded(7));
        let b: [u8; 32] = random_array(&mut TestRng::seeded(7));
        let c: [u8; 32] = random_array(&mut TestRng::seeded(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn successive_draws_differ() {
        let mut rng = TestRng::seeded(1);
        let first: [u8; 16] = random_array(&mut rng);
        let second: [u8; 16] = random_array(&mut rng);
        assert_ne!(first, second);
    }

    #[test]
    fn debug_does_not_show_the_state() {
        assert_eq!(format!("{:?}", TestRng::seeded(1)), "TestRng { .. }");
    }
}
