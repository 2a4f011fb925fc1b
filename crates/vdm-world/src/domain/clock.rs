//! The world clock: game time advances at a fixed rate from an anchor (a
//! game time and the real time it was read at). The anchor is stored, so
//! game time survives restarts and every replica reads the same time; it
//! keeps running while the service is down, like the real clock under it.

/// Game time at the world's first start: day 1, 08:00.
pub const START_GAME_MS: i64 = 8 * HOUR_MS;
/// The fastest clock allowed (game seconds per real second).
pub const MAX_CLOCK_RATE: f64 = 100_000.0;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The anchor and rate of the world clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Game time at the anchor.
    pub anchor_game_ms: i64,
    /// Real time (Unix ms) at the anchor.
    pub anchor_real_ms: i64,
    /// Game seconds per real second.
    pub rate: f64,
}

/// The time of the world at one real instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorldTime {
    /// Game milliseconds since day 1, 00:00.
    pub game_time_ms: i64,
    /// Game seconds per real second.
    pub rate: f64,
    /// The real time (Unix ms).
    pub real_time_ms: i64,
    /// 1-based day.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
}

impl Clock {
    /// A clock starting at [`START_GAME_MS`] now.
    pub fn start(now_real_ms: i64, rate: f64) -> Clock {
        Clock {
            anchor_game_ms: START_GAME_MS,
            anchor_real_ms: now_real_ms,
            rate,
        }
    }

    /// Game time at a real instant. Never before the anchor, even if the
    /// real clock stepped back.
    pub fn game_time_at(&self, real_ms: i64) -> i64 {
        let elapsed = real_ms.saturating_sub(self.anchor_real_ms).max(0);
        // f64 holds game times exactly up to 2^53 ms (~285,000 years).
        let advanced = (elapsed as f64 * self.rate) as i64;
        self.anchor_game_ms.saturating_add(advanced)
    }

    /// The same clock going on at another rate from `now_real_ms`.
    pub fn rerated(&self, now_real_ms: i64, rate: f64) -> Clock {
        Clock {
            anchor_game_ms: self.game_time_at(now_real_ms),
            anchor_real_ms: now_real_ms.max(self.anchor_real_ms),
            rate,
        }
    }

    /// The world time at a real instant.
    pub fn time_at(&self, real_ms: i64) -> WorldTime {
        let game = self.game_time_at(real_ms).max(0);
        WorldTime {
            game_time_ms: game,
            rate: self.rate,
            real_time_ms: real_ms,
            day: u32::try_from(game / DAY_MS + 1).unwrap_or(u32::MAX),
            hour: ((game % DAY_MS) / HOUR_MS) as u32,
            minute: ((game % HOUR_MS) / MINUTE_MS) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_at_its_rate_and_never_backwards() {
        let clock = Clock::start(1_000_000, 60.0);
        let t = clock.time_at(1_000_000);
        assert_eq!((t.day, t.hour, t.minute), (1, 8, 0));
        // One real minute at rate 60 is one game hour.
        let t = clock.time_at(1_060_000);
        assert_eq!((t.day, t.hour, t.minute), (1, 9, 0));
        // Sixteen game hours later it is day 2.
        let t = clock.time_at(1_000_000 + 16 * 60_000);
        assert_eq!((t.day, t.hour), (2, 0));
        assert_eq!(clock.game_time_at(0), START_GAME_MS);
    }

    #[test]
    fn rerating_keeps_the_time_continuous() {
        let clock = Clock::start(0, 60.0);
        let faster = clock.rerated(10_000, 120.0);
        assert_eq!(faster.game_time_at(10_000), clock.game_time_at(10_000));
        assert_eq!(faster.game_time_at(11_000) - faster.game_time_at(10_000), 120_000);
    }
}
