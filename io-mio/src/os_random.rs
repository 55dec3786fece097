//! OS randomness, lent to the core (which never draws its own; see
//! `portcullis_core::random`).

use getrandom::SysRng;
use rand_core::UnwrapErr;

/// The operating system's generator as a `CryptoRng`. Panics if the OS
/// cannot give randomness, which on Linux means a broken system: nothing
/// secure can be done without it.
#[must_use]
pub fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

#[cfg(test)]
mod tests {
    use portcullis_core::random::{random_array, CryptoRng};

    use super::*;

    #[test]
    fn the_os_generator_fits_the_cores_injection_point() {
        let rng: &mut dyn CryptoRng = &mut os_rng();
        let a: [u8; 32] = random_array(rng);
        let b: [u8; 32] = random_array(rng);
        assert_ne!(a, b);
    }
}
