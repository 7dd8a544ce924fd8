//! Simulated time.
//!
//! Every delay in the simulator (token expiry, the partner source hand-off, state changes, retention)
//! is measured on this clock. It runs with the wall clock or stands still, and tests move it forward
//! with the admin API; it never moves backwards.

use crate::config::ClockMode;
use serde::{Deserialize, Serialize};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, in simulated time.
pub type Millis = i64;

#[derive(Debug, Clone)]
pub struct Clock {
    mode: ClockMode,
    /// Simulated milliseconds per wall-clock millisecond (wall mode).
    speed: i64,
    /// Simulated time at `anchor`.
    base: Millis,
    anchor: Instant,
}

/// What is persisted of a clock: where simulated time stood.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ClockState {
    pub now: Millis,
}

impl Clock {
    pub fn new(mode: ClockMode) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0);
        Clock::starting_at(mode, now)
    }

    pub fn starting_at(mode: ClockMode, now: Millis) -> Self {
        Clock {
            mode,
            speed: 1,
            base: now,
            anchor: Instant::now(),
        }
    }

    /// The same clock, running `speed` times faster than the wall clock (wall mode only).
    pub fn with_speed(mut self, speed: u32) -> Self {
        self.speed = i64::from(speed.max(1));
        self
    }

    pub fn now(&self) -> Millis {
        match self.mode {
            ClockMode::Frozen => self.base,
            ClockMode::Wall => self.base.saturating_add(
                (self.anchor.elapsed().as_millis() as Millis).saturating_mul(self.speed),
            ),
        }
    }

    /// Moves simulated time forward by `ms` (negative values are ignored), never past
    /// [`LATEST`]: time does not wrap around and run backwards.
    pub fn advance(&mut self, ms: Millis) {
        let now = self.now();
        self.base = now.saturating_add(ms.max(0)).min(LATEST);
        self.anchor = Instant::now();
    }

    pub fn state(&self) -> ClockState {
        ClockState { now: self.now() }
    }
}

/// The latest simulated time: 9999-12-31T23:59:59.999Z, the last instant ISO 8601 dates (and the
/// vendors' timestamps) can show.
pub const LATEST: Millis = 253_402_300_799_999;

/// The most one `/_sim/clock/advance` moves the clock: a century.
pub const MAX_ADVANCE_MS: Millis = 100 * 366 * 86_400_000;

/// ISO 8601 UTC with a `Z` and milliseconds, as AWS XML and Salesforce JSON want it.
pub fn iso(ms: Millis) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => format!("{t:.3}"),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// Salesforce's datetime form: `2024-04-09T20:19:25.000+0000`.
pub fn sf_datetime(ms: Millis) -> String {
    let s = iso(ms);
    format!("{}+0000", s.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_moves_only_when_advanced() {
        let mut c = Clock::starting_at(ClockMode::Frozen, 1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(500);
        assert_eq!(c.now(), 1_500);
        c.advance(-10);
        assert_eq!(c.now(), 1_500);
    }

    #[test]
    fn a_fast_clock_runs_ahead_of_the_wall() {
        let c = Clock::starting_at(ClockMode::Wall, 0).with_speed(1000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(c.now() >= 20_000, "{}", c.now());
    }

    #[test]
    fn formats() {
        assert_eq!(iso(1_712_693_965_000), "2024-04-09T20:19:25.000Z");
        assert_eq!(
            sf_datetime(1_712_693_965_000),
            "2024-04-09T20:19:25.000+0000"
        );
    }
}
