//! The query phase of `tally bench` (`--query-count`): history queries of random accounts,
//! one at a time, each timed.

use std::time::Instant;

use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_client::{AccountId, Client, Direction, HistoryQuery};

use super::{new_histogram, QUERY_LIMIT};

/// What the query phase measured.
pub(super) struct Queries {
    pub(super) count: u64,
    pub(super) errors: u64,
    pub(super) seconds: f64,
    pub(super) latency_us: Histogram<u64>,
}

impl Queries {
    pub(super) fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1_000.0
    }

    pub(super) fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.count as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The query phase: `count` history queries (the newest [`QUERY_LIMIT`] entries) of random
/// accounts, one after the other, each timed.
pub(super) async fn query_phase(
    client: &Client,
    ids: &[AccountId],
    seed: u64,
    count: u64,
) -> Result<Queries, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5155_4552_5953);
    let mut latency_us = new_histogram()?;
    let mut errors = 0;
    let start = Instant::now();
    for _ in 0..count {
        let account = ids[rng.gen_range(0..ids.len())];
        let query = HistoryQuery {
            account,
            cursor: 0,
            limit: QUERY_LIMIT,
            direction: Direction::Backward,
            time_min: None,
            time_max: None,
        };
        let sent = Instant::now();
        let result = client.account_history(query).await;
        latency_us.saturating_record((sent.elapsed().as_micros() as u64).max(1));
        if result.is_err() {
            errors += 1;
        }
    }
    Ok(Queries {
        count,
        errors,
        seconds: start.elapsed().as_secs_f64(),
        latency_us,
    })
}
