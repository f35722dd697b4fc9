//! Workloads shared by the criterion suites and the demo: seeded, reproducible batches of
//! accounts and transfers.
//!
//! A workload has `accounts` accounts on one ledger (scale 2), none with balance flags, so
//! every generated transfer succeeds and the benches measure the full apply path. Transfers
//! pick their accounts uniformly, or "hot": 90% of transfers touch one of 10 hot accounts.
//! Ids are sequential, or random 128-bit values (the case that hurts B-tree-indexed stores).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, EVENTS_PER_COMMAND_MAX,
};
use tally_engine::types::{AccountId, LedgerId, Timestamp, TransferId};

/// The ledger every workload uses.
pub const LEDGER: LedgerId = LedgerId(1);
/// How many accounts the hot distribution concentrates on.
pub const HOT_ACCOUNTS: u64 = 10;

/// How transfers pick their accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Any account, uniformly.
    Uniform,
    /// 90% of transfers debit or credit one of [`HOT_ACCOUNTS`] accounts.
    Hot,
}

/// A seeded generator of transfer batches.
pub struct Workload {
    rng: ChaCha8Rng,
    accounts: u64,
    distribution: Distribution,
    random_ids: bool,
    next_id: u128,
    clock: u64,
}

impl Workload {
    /// A workload over `accounts` accounts (ids 1..=accounts).
    pub fn new(seed: u64, accounts: u64, distribution: Distribution, random_ids: bool) -> Self {
        assert!(
            accounts > HOT_ACCOUNTS,
            "need more than {HOT_ACCOUNTS} accounts"
        );
        Workload {
            rng: ChaCha8Rng::seed_from_u64(seed),
            accounts,
            distribution,
            random_ids,
            next_id: 0,
            clock: 1_000_000_000,
        }
    }

    /// The entries that create the ledger and the accounts.
    pub fn setup(&self) -> Vec<EntryPayload> {
        let mut payloads = vec![EntryPayload {
            timestamp: Timestamp(1),
            command: Command::CreateLedgers(vec![NewLedger {
                id: LEDGER,
                scale: 2,
                code: 1,
            }]),
        }];
        let ids: Vec<u64> = (1..=self.accounts).collect();
        for chunk in ids.chunks(EVENTS_PER_COMMAND_MAX) {
            payloads.push(EntryPayload {
                timestamp: Timestamp(2),
                command: Command::CreateAccounts(
                    chunk
                        .iter()
                        .map(|&id| NewAccount {
                            id: AccountId(u128::from(id)),
                            ledger: LEDGER,
                            code: 1,
                            flags: AccountFlags(0),
                            limit: None,
                            user_data_128: 0,
                            user_data_64: 0,
                            user_data_32: 0,
                        })
                        .collect(),
                ),
            });
        }
        payloads
    }

    fn account(&mut self, hot: bool) -> u64 {
        if hot {
            1 + self.rng.gen_range(0..HOT_ACCOUNTS)
        } else {
            1 + self.rng.gen_range(0..self.accounts)
        }
    }

    /// The next transfer.
    pub fn transfer(&mut self) -> NewTransfer {
        self.next_id += 1;
        let id = if self.random_ids {
            self.rng.gen::<u128>() | 1
        } else {
            self.next_id
        };
        let hot = self.distribution == Distribution::Hot && self.rng.gen_range(0..10) < 9;
        let mut debit = self.account(hot);
        let mut credit = self.account(false);
        if credit == debit {
            credit = debit % self.accounts + 1;
        }
        // The hot account is on either side.
        if hot && self.rng.gen::<bool>() {
            std::mem::swap(&mut debit, &mut credit);
        }
        let amount = Decimal::new(self.rng.gen_range(1..100_000), 2);
        NewTransfer::plain(
            TransferId(id),
            AccountId(u128::from(debit)),
            AccountId(u128::from(credit)),
            amount,
            LEDGER,
        )
    }

    /// The next entry: `size` transfers, stamped one millisecond after the previous entry.
    pub fn batch(&mut self, size: usize) -> EntryPayload {
        assert!(size <= EVENTS_PER_COMMAND_MAX);
        self.clock += 1_000_000;
        EntryPayload {
            timestamp: Timestamp(self.clock),
            command: Command::CreateTransfers((0..size).map(|_| self.transfer()).collect()),
        }
    }
}

/// This process's resident memory (`VmRSS` in `/proc/self/status`), in MiB; 0 where that
/// file does not exist. It includes the pages of mapped files (run files read through mmap),
/// which the kernel can drop at will; see [`anonymous_mib`] for the process's own memory.
pub fn resident_mib() -> u64 {
    status_mib("VmRSS:")
}

/// This process's resident anonymous memory (`RssAnon`: heap and stacks, not file pages),
/// in MiB; 0 where unavailable.
pub fn anonymous_mib() -> u64 {
    status_mib("RssAnon:")
}

fn status_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}
