//! Token buckets for the rewards endpoints: one per player and one for everyone. A request
//! that finds either empty is answered 429 with the seconds until a token is back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimits;

/// Players tracked at most; past it the buckets idle the longest are forgotten (a
/// forgotten bucket is full again, which only ever errs towards serving).
const PLAYERS_MAX: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: f64) -> Bucket {
        Bucket {
            tokens: rate * 2.0,
            at: Instant::now(),
        }
    }

    /// Refills at `rate` (burst twice it), then takes one token or says how long to wait.
    fn take(&mut self, rate: f64, now: Instant) -> Result<(), f64> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / rate)
        }
    }
}

/// The buckets.
pub struct Limits {
    config: RateLimits,
    global: Mutex<Bucket>,
    players: Mutex<HashMap<(u32, String), Bucket>>,
}

impl Limits {
    /// Full buckets for `config`.
    pub fn new(config: &RateLimits) -> Limits {
        Limits {
            config: config.clone(),
            global: Mutex::new(Bucket::full(config.global_per_s)),
            players: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `player` of `game` and one from the global bucket, or says how many
    /// seconds to wait (at least 1).
    pub fn take(&self, game: u32, player: &str) -> Result<(), u64> {
        let now = Instant::now();
        let wait = |s: f64| s.ceil().max(1.0) as u64;
        {
            let mut players = self.players.lock().unwrap_or_else(|e| e.into_inner());
            if players.len() >= PLAYERS_MAX && !players.contains_key(&(game, player.to_string())) {
                let oldest = players
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    players.remove(&oldest);
                }
            }
            let rate = self.config.player_per_s;
            players
                .entry((game, player.to_string()))
                .or_insert_with(|| Bucket::full(rate))
                .take(rate, now)
                .map_err(wait)?;
        }
        self.global
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(self.config.global_per_s, now)
            .map_err(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_serves_its_burst_then_waits() {
        let limits = Limits::new(&RateLimits {
            player_per_s: 2.0,
            global_per_s: 1000.0,
        });
        for _ in 0..4 {
            assert_eq!(limits.take(1, "a"), Ok(()));
        }
        assert_eq!(limits.take(1, "a"), Err(1));
        // Another player has a bucket of its own.
        assert_eq!(limits.take(1, "b"), Ok(()));
    }
}
