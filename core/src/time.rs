//! The caller's clocks. The core never reads a clock; every call that can
//! depend on time takes a [`Now`].

use std::time::{Duration, Instant, SystemTime};

/// The caller's two clocks read at one moment: `mono` drives every deadline,
/// `wall` only feeds the `Date` header (and logs). Tests and fuzzers build
/// one from a fixed base and advance it as virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic time, for deadlines.
    pub mono: Instant,
    /// Wall-clock time, for `Date`.
    pub wall: SystemTime,
}

impl Now {
    /// Both clocks at one moment.
    pub fn new(mono: Instant, wall: SystemTime) -> Self {
        Now { mono, wall }
    }

    /// The same clocks `d` later (virtual time in tests).
    #[must_use]
    pub fn advanced(self, d: Duration) -> Self {
        Now {
            mono: self.mono + d,
            wall: self.wall + d,
        }
    }
}
