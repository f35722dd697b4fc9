//! How `tally bench` picks the accounts of each transfer: uniform, zipfian or hot, always
//! two distinct accounts of one partition (see the parent module).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Distribution, HOT_ACCOUNTS, HOT_SHARE};

/// The hot set of `Distribution::Hot`: how many accounts, and the share of transfers
/// inside it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct HotSet {
    pub(super) accounts: usize,
    pub(super) share: f64,
}

impl Default for HotSet {
    fn default() -> HotSet {
        HotSet {
            accounts: HOT_ACCOUNTS,
            share: HOT_SHARE,
        }
    }
}

/// Picks the account indexes of transfers.
pub(super) struct Picker {
    distribution: Distribution,
    accounts: usize,
    partitions: usize,
    /// Zipfian only: `cdf[k]` is the probability of a rank at most `k + 1`.
    cdf: Vec<f64>,
    /// Hot only.
    hot: HotSet,
}

impl Picker {
    pub(super) fn new(
        distribution: Distribution,
        accounts: usize,
        partitions: usize,
        zipf_s: f64,
        hot: HotSet,
    ) -> Picker {
        assert!(accounts >= 2, "accounts {accounts}");
        assert!(partitions >= 1, "partitions {partitions}");
        assert!(
            accounts >= 2 * partitions,
            "accounts {accounts} partitions {partitions}"
        );
        let cdf = if distribution == Distribution::Zipfian {
            zipf_cdf(accounts, zipf_s)
        } else {
            Vec::new()
        };
        Picker {
            distribution,
            accounts,
            partitions,
            cdf,
            hot,
        }
    }

    /// One account index from the distribution (uniform or zipfian).
    fn draw(&self, rng: &mut ChaCha8Rng) -> usize {
        match self.distribution {
            Distribution::Zipfian => {
                let u: f64 = rng.gen();
                self.cdf.partition_point(|&c| c < u).min(self.accounts - 1)
            }
            Distribution::Uniform | Distribution::Hot => rng.gen_range(0..self.accounts),
        }
    }

    /// The (debit, credit) account indexes of one transfer: distinct, and in one partition.
    pub(super) fn pair(&self, rng: &mut ChaCha8Rng) -> (usize, usize) {
        let (debit, credit) = if self.distribution == Distribution::Hot {
            let hot = self.hot.accounts.clamp(2, self.accounts);
            let range = if rng.gen_bool(self.hot.share) {
                hot
            } else {
                self.accounts
            };
            let debit = rng.gen_range(0..range);
            let mut credit = rng.gen_range(0..range - 1);
            if credit >= debit {
                credit += 1;
            }
            (debit, credit)
        } else {
            let debit = self.draw(rng);
            let mut credit = self.draw(rng);
            // A skewed distribution draws the top rank often; a few redraws keep the credit
            // side's shape, and the fallback below keeps the loop bounded.
            for _ in 0..16 {
                if credit != debit {
                    break;
                }
                credit = self.draw(rng);
            }
            (debit, credit)
        };
        (debit, self.beside(debit, credit))
    }

    /// `credit` moved into `debit`'s partition (account `i` lives in partition `i % P`) and
    /// made different from `debit`.
    fn beside(&self, debit: usize, credit: usize) -> usize {
        let p = self.partitions;
        let mut moved = credit - credit % p + debit % p;
        if moved >= self.accounts {
            moved -= p;
        }
        if moved == debit {
            // Every partition holds at least two accounts (accounts >= 2 * partitions).
            moved = if debit + p < self.accounts {
                debit + p
            } else {
                debit - p
            };
        }
        assert_ne!(moved, debit);
        assert_eq!(moved % p, debit % p, "credit {moved} debit {debit} p {p}");
        assert!(moved < self.accounts);
        moved
    }
}

/// The zipfian CDF over ranks `1..=n` with exponent `s`.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for rank in 1..=n {
        sum += (rank as f64).powf(-s);
        cdf.push(sum);
    }
    for c in &mut cdf {
        *c /= sum;
    }
    cdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn picker(distribution: Distribution, accounts: usize, partitions: usize) -> Picker {
        Picker::new(distribution, accounts, partitions, 1.0, HotSet::default())
    }

    #[test]
    fn pairs_are_distinct_and_in_one_partition() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for distribution in [
            Distribution::Uniform,
            Distribution::Zipfian,
            Distribution::Hot,
        ] {
            for (accounts, partitions) in [(2, 1), (3, 1), (10, 5), (11, 5), (1000, 7), (40, 16)] {
                let picker = picker(distribution, accounts, partitions);
                for _ in 0..2_000 {
                    let (debit, credit) = picker.pair(&mut rng);
                    assert_ne!(debit, credit);
                    assert!(debit < accounts && credit < accounts);
                    assert_eq!(debit % partitions, credit % partitions);
                }
            }
        }
    }

    #[test]
    fn zipfian_favours_low_ranks() {
        let cdf = zipf_cdf(1000, 1.0);
        assert!((cdf[999] - 1.0).abs() < 1e-12);
        assert!(cdf.windows(2).all(|w| w[0] <= w[1]));
        let picker = picker(Distribution::Zipfian, 1000, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[picker.draw(&mut rng)] += 1;
        }
        // P(rank 1) = 1/H(1000) ~ 0.1336; rank 2 half of that.
        assert!((12_500..14_300).contains(&counts[0]), "{}", counts[0]);
        assert!((6_000..7_400).contains(&counts[1]), "{}", counts[1]);
        assert!(counts[0] > counts[9] * 5);
    }

    #[test]
    fn hot_keeps_most_transfers_in_the_hot_set() {
        let picker = picker(Distribution::Hot, 10_000, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let hot = (0..10_000)
            .filter(|_| {
                let (d, c) = picker.pair(&mut rng);
                d < HOT_ACCOUNTS && c < HOT_ACCOUNTS
            })
            .count();
        assert!((8_800..9_200).contains(&hot), "{hot}");
    }

    #[test]
    fn the_hot_set_follows_its_flags() {
        let set = HotSet {
            accounts: 100,
            share: 0.5,
        };
        let picker = Picker::new(Distribution::Hot, 10_000, 1, 1.0, set);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let hot = (0..10_000)
            .filter(|_| {
                let (d, c) = picker.pair(&mut rng);
                d < 100 && c < 100
            })
            .count();
        // Half inside by choice, and a uniform pair lands inside once in 10^4.
        assert!((4_700..5_300).contains(&hot), "{hot}");
    }
}
