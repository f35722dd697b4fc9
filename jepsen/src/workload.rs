//! The workloads: real uses of Tally, each run by concurrent client processes that record
//! every operation in the history.
//!
//! Every workload works on *groups* of accounts, one group per partition (a transfer never
//! crosses partitions yet): an issuer that funds each account of its group with
//! [`INITIAL`] units at setup, and [`ACCOUNTS_PER_GROUP`] accounts whose debits may not exceed
//! their credits. Processes use their own client, with the default options.
//!
//! - `bank`: transfers between the accounts of a group; readers read whole groups.
//! - `exactly-once`: the same, but a process retries an indeterminate transfer with the same
//!   id (and fields) until it gets a definite answer: each id must have one outcome.
//! - `holds`: holds from the accounts to the group's merchant (some expiring after a few
//!   seconds), posted or voided later by the process that made them, or left to expire.
//! - `refunds`: purchases from the accounts to the merchant, and partial refunds of them by
//!   any process, racing each other.
//!
//! In both, the merchant also pays money back out to the accounts now and then, so that
//! they never run dry.
//! - `queries`: the bank workload; afterwards every account's 24-hour flows and hourly
//!   series are asked for, to be compared with a brute-force computation from the history.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use tally_client::wire::{partition_of, FlowsQuery, SeriesQuery, Timestamp};
use tally_client::{
    AccountFlags, AccountId, AccountResult, Client, ClientError, ClientOptions, LedgerId,
    LedgerResult, NewAccount, NewLedger, NewTransfer, TransferFlags, TransferId, TransferResult,
};

use crate::history::{Final, FinalQueries, FinalReplica, FinalTransfer, Kind, Op, Recorder, F};

/// The workloads, as named on the command line.
pub const WORKLOADS: &[&str] = &["bank", "exactly-once", "holds", "refunds", "queries"];
/// Accounts each group's issuer funds.
pub const ACCOUNTS_PER_GROUP: usize = 6;
/// What each funded account starts with.
pub const INITIAL: u64 = 1_000;
const LEDGER: LedgerId = LedgerId(1);
const HOUR_NS: u64 = 3_600_000_000_000;

/// The accounts of one group.
#[derive(Clone, Debug)]
pub struct Group {
    /// Funds the accounts at setup.
    pub issuer: u64,
    /// Accounts that may not overdraw.
    pub accounts: Vec<u64>,
    /// Receives purchases and holds (holds and refunds workloads).
    pub merchant: u64,
}

/// A workload run by `writers` writer processes and `readers` reader processes.
pub struct Workload {
    /// Its name.
    pub name: String,
    /// The groups, one per partition.
    pub groups: Vec<Group>,
    recorder: Arc<Recorder>,
    addresses: Vec<String>,
    seed: u64,
    /// Purchases anyone may refund (refunds workload).
    purchases: Arc<Mutex<Vec<(u128, u64)>>>,
    /// Every transfer id invoked, with its group.
    ids: Arc<Mutex<BTreeMap<u128, usize>>>,
}

/// Ids in partition `p` of `count`, from `next` on.
fn id_in(partition: u32, count: u32, next: &mut u64) -> u64 {
    loop {
        *next += 1;
        if partition_of(u128::from(*next), count) == partition {
            return *next;
        }
    }
}

fn account(id: u64, flags: u16) -> NewAccount {
    NewAccount {
        id: AccountId(u128::from(id)),
        ledger: LEDGER,
        code: 1,
        flags: AccountFlags(flags),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    }
}

/// What a client call came to, as a history completion.
fn complete<T>(op: &mut Op, result: &Result<T, ClientError>) {
    match result {
        Ok(_) => op.kind = Kind::Ok,
        Err(error) if error.is_definite() => {
            op.kind = Kind::Fail;
            op.error = Some(error.to_string());
        }
        Err(error) => {
            op.kind = Kind::Info;
            op.error = Some(error.to_string());
        }
    }
}

impl Workload {
    /// A workload on `partitions` partitions of the cluster at `addresses`.
    pub fn new(
        name: &str,
        partitions: u32,
        addresses: Vec<String>,
        recorder: Arc<Recorder>,
        seed: u64,
    ) -> Workload {
        let mut next = 0;
        let groups = (0..partitions)
            .map(|p| Group {
                issuer: id_in(p, partitions, &mut next),
                accounts: (0..ACCOUNTS_PER_GROUP)
                    .map(|_| id_in(p, partitions, &mut next))
                    .collect(),
                merchant: id_in(p, partitions, &mut next),
            })
            .collect();
        Workload {
            name: name.into(),
            groups,
            recorder,
            addresses,
            seed,
            purchases: Arc::new(Mutex::new(Vec::new())),
            ids: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The options of the workload's processes: the defaults, except for `exactly-once`,
    /// whose processes give up on a request after a second or two and retry it themselves
    /// (a service with its own retry policy), so that outcomes are often unknown.
    fn options(&self) -> ClientOptions {
        if self.name == "exactly-once" {
            ClientOptions {
                request_timeout: Duration::from_millis(1000),
                retry_deadline: Duration::from_millis(1500),
                ..ClientOptions::default()
            }
        } else {
            ClientOptions::default()
        }
    }

    async fn client(&self) -> Result<Client, String> {
        let mut last = String::new();
        for _ in 0..60 {
            match Client::connect(&self.addresses, self.options()).await {
                Ok(client) => return Ok(client),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!("no node answers: {last}"))
    }

    /// Creates the ledger and accounts and funds them (process 0), retrying until done.
    pub async fn setup(&self) -> Result<(), String> {
        let client = self.client().await?;
        let ledgers = retry("create the ledger", || {
            client.create_ledgers(vec![NewLedger {
                id: LEDGER,
                scale: 0,
                code: 1,
            }])
        })
        .await?;
        if !ledgers
            .iter()
            .all(|r| matches!(r, LedgerResult::Ok | LedgerResult::Exists))
        {
            return Err(format!("creating the ledger: {ledgers:?}"));
        }
        let mut accounts = Vec::new();
        for group in &self.groups {
            accounts.push(account(group.issuer, 0));
            accounts.push(account(group.merchant, 0));
            for &id in &group.accounts {
                accounts.push(account(id, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS));
            }
        }
        let results = retry("create the accounts", || {
            client.create_accounts(accounts.clone())
        })
        .await?;
        if !results
            .iter()
            .all(|r| matches!(r, AccountResult::Ok | AccountResult::Exists))
        {
            return Err(format!("creating the accounts: {results:?}"));
        }
        let mut n = 0;
        for (g, group) in self.groups.iter().enumerate() {
            for &to in &group.accounts {
                n += 1;
                let id = 1u128 << 100 | n;
                self.ids
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, g);
                let mut op = Op::new(0, Kind::Invoke, F::Transfer);
                op.id = Some(id.to_string());
                op.from = Some(group.issuer);
                op.to = Some(to);
                op.amount = Some(INITIAL);
                self.recorder.record(op.clone());
                let transfer = plain(id, group.issuer, to, INITIAL);
                let outcome = retry("fund an account", || {
                    client.create_transfer(transfer.clone())
                })
                .await?;
                if outcome.result != TransferResult::Ok {
                    return Err(format!("funding account {to}: {:?}", outcome.result));
                }
                op.kind = Kind::Ok;
                op.result = Some(outcome.result.name().to_string());
                self.recorder.record(op);
            }
        }
        Ok(())
    }

    /// Runs `writers` writers and `readers` readers until `stop`.
    pub async fn run(
        self: &Arc<Self>,
        writers: usize,
        readers: usize,
        stop: Arc<AtomicBool>,
    ) -> Result<(), String> {
        let mut tasks = Vec::new();
        for process in 1..=(writers + readers) as u64 {
            let client = self.client().await?;
            let workload = self.clone();
            let stop = stop.clone();
            let reader = process as usize > writers;
            tasks.push(tokio::spawn(async move {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(workload.seed ^ process.wrapping_mul(0x9E37_79B9));
                let mut mine = Vec::new();
                let mut n = 0u128;
                while !stop.load(Ordering::Relaxed) {
                    if reader {
                        workload.read(&client, process, &mut rng).await;
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..80))).await;
                        continue;
                    }
                    n += 1;
                    let id = u128::from(process) << 64 | n;
                    workload
                        .write(&client, process, id, &mut rng, &mut mine)
                        .await;
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(10..60))).await;
                }
            }));
        }
        for task in tasks {
            task.await
                .map_err(|e| format!("a client process failed: {e}"))?;
        }
        Ok(())
    }

    async fn read(&self, client: &Client, process: u64, rng: &mut ChaCha8Rng) {
        let group = &self.groups[rng.gen_range(0..self.groups.len())];
        let mut ids: Vec<u64> = group.accounts.clone();
        ids.push(group.issuer);
        ids.push(group.merchant);
        let mut op = Op::new(process, Kind::Invoke, F::Read);
        self.recorder.record(op.clone());
        let result = client
            .lookup_accounts(ids.iter().map(|&id| AccountId(u128::from(id))).collect())
            .await;
        complete(&mut op, &result);
        if let Ok(accounts) = &result {
            op.balances = Some(
                accounts
                    .iter()
                    .map(|a| {
                        let b = a.balances;
                        (
                            a.id.0 as u64,
                            [
                                b.debits_posted as u64,
                                b.credits_posted as u64,
                                b.debits_pending as u64,
                                b.credits_pending as u64,
                            ],
                        )
                    })
                    .collect(),
            );
        } else if op.kind == Kind::Info {
            // A read that may have happened tells nothing: it is simply not a read.
            op.kind = Kind::Fail;
        }
        self.recorder.record(op);
    }

    async fn write(
        &self,
        client: &Client,
        process: u64,
        id: u128,
        rng: &mut ChaCha8Rng,
        mine: &mut Vec<u128>,
    ) {
        let g = rng.gen_range(0..self.groups.len());
        let group = self.groups[g].clone();
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, g);
        let pick = |rng: &mut ChaCha8Rng| *group.accounts.choose(rng).expect("accounts");
        let from = pick(rng);
        let mut to = pick(rng);
        while to == from {
            to = pick(rng);
        }
        let (f, transfer, mut op) = match self.name.as_str() {
            "holds" => {
                let roll = rng.gen_range(0..100);
                if roll < 35 || mine.is_empty() {
                    let timeout = *[0u32, 2, 5].choose(rng).expect("timeouts");
                    let amount = rng.gen_range(1..50);
                    let mut t = plain(id, from, group.merchant, amount);
                    t.flags = TransferFlags(TransferFlags::PENDING);
                    t.timeout_s = timeout;
                    let mut op = transfer_op(process, F::Hold, id, from, group.merchant, amount);
                    op.timeout_s = Some(timeout);
                    (F::Hold, t, op)
                } else if roll < 75 {
                    let hold = mine.swap_remove(rng.gen_range(0..mine.len()));
                    let post = roll < 55;
                    let mut t = plain(id, 0, 0, 0);
                    t.ledger = LedgerId(0);
                    t.flags = TransferFlags(if post {
                        TransferFlags::POST_PENDING
                    } else {
                        TransferFlags::VOID_PENDING
                    });
                    t.pending_id = TransferId(hold);
                    let f = if post { F::Post } else { F::Void };
                    let mut op = Op::new(process, Kind::Invoke, f);
                    op.id = Some(id.to_string());
                    op.reference = Some(hold.to_string());
                    (f, t, op)
                } else if roll < 90 {
                    payout(process, id, group.merchant, to, rng)
                } else {
                    let amount = rng.gen_range(1..20);
                    (
                        F::Transfer,
                        plain(id, from, to, amount),
                        transfer_op(process, F::Transfer, id, from, to, amount),
                    )
                }
            }
            "refunds" => {
                let purchases = self
                    .purchases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let same_group: Vec<&(u128, u64)> = purchases
                    .iter()
                    .filter(|(p, _)| {
                        self.ids.lock().unwrap_or_else(|e| e.into_inner()).get(p) == Some(&g)
                    })
                    .collect();
                let roll = rng.gen_range(0..100);
                if roll < 25 {
                    payout(process, id, group.merchant, to, rng)
                } else if roll < 55 || same_group.is_empty() {
                    let amount = rng.gen_range(20..100);
                    (
                        F::Transfer,
                        plain(id, from, group.merchant, amount),
                        transfer_op(process, F::Transfer, id, from, group.merchant, amount),
                    )
                } else {
                    let &&(original, _) = same_group.choose(rng).expect("a purchase");
                    let amount = rng.gen_range(1..30);
                    let mut t = plain(id, 0, 0, amount);
                    t.ledger = LedgerId(0);
                    t.refund_of = TransferId(original);
                    let mut op = Op::new(process, Kind::Invoke, F::Refund);
                    op.id = Some(id.to_string());
                    op.amount = Some(amount);
                    op.reference = Some(original.to_string());
                    (F::Refund, t, op)
                }
            }
            _ => {
                let amount = rng.gen_range(1..50);
                (
                    F::Transfer,
                    plain(id, from, to, amount),
                    transfer_op(process, F::Transfer, id, from, to, amount),
                )
            }
        };
        // exactly-once: the same transfer, same id, until a definite answer (or 30 s).
        let retrying = self.name == "exactly-once";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            op.kind = Kind::Invoke;
            op.result = None;
            op.error = None;
            self.recorder.record(op.clone());
            let result = client.create_transfer(transfer.clone()).await;
            complete(&mut op, &result);
            if let Ok(outcome) = &result {
                op.result = Some(outcome.result.name().to_string());
                if outcome.result != TransferResult::Ok {
                    op.kind = Kind::Fail;
                }
            }
            let indeterminate = op.kind == Kind::Info;
            self.recorder.record(op.clone());
            if f == F::Refund && op.result.as_deref() == Some("RefundExceedsRemaining") {
                // Refunded in full (or nearly): nobody refunds it again.
                let original = transfer.refund_of.0;
                self.purchases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(p, _)| *p != original);
            }
            if op.kind == Kind::Ok {
                match f {
                    F::Hold => mine.push(id),
                    F::Transfer if self.name == "refunds" => self
                        .purchases
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((id, op.amount.unwrap_or(0))),
                    _ => {}
                }
            }
            if !indeterminate || !retrying || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Reads back everything the history names, and what each node holds.
    pub async fn collect(&self, nodes: usize) -> Result<Final, String> {
        let client = self.client().await?;
        let mut out = Final::default();
        let mut all = Vec::new();
        for group in &self.groups {
            let mut ids = vec![group.issuer, group.merchant];
            ids.extend(&group.accounts);
            out.no_overdraft.extend(&group.accounts);
            out.group_totals.push(0);
            out.groups.push(ids.clone());
            all.extend(ids);
        }
        let accounts = retry("read the accounts", || {
            client.lookup_accounts(all.iter().map(|&id| AccountId(u128::from(id))).collect())
        })
        .await?;
        for a in accounts {
            let b = a.balances;
            out.accounts.insert(
                a.id.0 as u64,
                [
                    b.debits_posted as u64,
                    b.credits_posted as u64,
                    b.debits_pending as u64,
                    b.credits_pending as u64,
                ],
            );
        }
        let ids: Vec<u128> = self
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for chunk in ids.chunks(4000) {
            let wanted: Vec<TransferId> = chunk.iter().map(|&id| TransferId(id)).collect();
            match retry("look the transfers up", || {
                client.lookup_transfers(wanted.clone())
            })
            .await
            {
                Ok(found) => {
                    for t in found {
                        out.transfers.insert(
                            t.id.0.to_string(),
                            FinalTransfer {
                                result: t.outcome.result.name().to_string(),
                                kind: t.kind.name().to_string(),
                                from: t.debit_account.0 as u64,
                                to: t.credit_account.0 as u64,
                                amount: t.amount as u64,
                                reference: t.reference.0.to_string(),
                                hold: t.hold.name().to_string(),
                                refunded: t.refunded as u64,
                                timestamp: t.outcome.timestamp.0,
                            },
                        );
                    }
                }
                Err(_) => out.unresolved.extend(chunk.iter().map(|id| id.to_string())),
            }
        }
        if self.name == "queries" {
            let (first, last) = out
                .transfers
                .values()
                .map(|t| t.timestamp)
                .filter(|&t| t > 0)
                .fold((u64::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
            if first <= last {
                let window = (first.saturating_sub(60_000_000_000), last + 60_000_000_000);
                for &id in out.accounts.keys() {
                    let flows = retry("read flows", || {
                        client.account_flows(FlowsQuery {
                            account: AccountId(u128::from(id)),
                            time_min: Timestamp(window.0),
                            time_max: Timestamp(window.1),
                        })
                    })
                    .await?;
                    let start = first - first % HOUR_NS;
                    let series = retry("read the series", || {
                        client.balance_series(SeriesQuery {
                            account: AccountId(u128::from(id)),
                            time_min: Timestamp(start),
                            time_max: Timestamp(last + HOUR_NS),
                        })
                    })
                    .await?;
                    out.queries.insert(
                        id,
                        FinalQueries {
                            window,
                            flows: (flows.debits_total as u64, flows.credits_total as u64),
                            series: series
                                .points
                                .iter()
                                .map(|p| {
                                    (
                                        p.time_start.0,
                                        p.balances.credits_posted as i128
                                            - p.balances.debits_posted as i128,
                                    )
                                })
                                .collect(),
                        },
                    );
                }
            }
        }
        out.nodes = nodes as u64;
        out.replicas = replicas(&self.addresses[..nodes]).await;
        Ok(out)
    }
}

fn plain(id: u128, from: u64, to: u64, amount: u64) -> NewTransfer {
    NewTransfer::plain(
        TransferId(id),
        AccountId(u128::from(from)),
        AccountId(u128::from(to)),
        Decimal::from(amount),
        LEDGER,
    )
}

/// The merchant paying money it earned back out to an account, so that the accounts never
/// run dry.
fn payout(
    process: u64,
    id: u128,
    merchant: u64,
    to: u64,
    rng: &mut ChaCha8Rng,
) -> (F, NewTransfer, Op) {
    let amount = rng.gen_range(1..100);
    (
        F::Transfer,
        plain(id, merchant, to, amount),
        transfer_op(process, F::Transfer, id, merchant, to, amount),
    )
}

fn transfer_op(process: u64, f: F, id: u128, from: u64, to: u64, amount: u64) -> Op {
    let mut op = Op::new(process, Kind::Invoke, f);
    op.id = Some(id.to_string());
    op.from = Some(from);
    op.to = Some(to);
    op.amount = Some(amount);
    op
}

/// Retries `call` for up to a minute while its errors are not definite refusals.
async fn retry<T, Fut>(what: &str, mut call: impl FnMut() -> Fut) -> Result<T, String>
where
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(ClientError::Invalid(e)) => return Err(format!("{what}: {e}")),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("{what}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Each node's own view of its replicas (not through the leader).
pub async fn replicas(addresses: &[String]) -> Vec<FinalReplica> {
    let mut out = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let Ok(client) =
            Client::connect(std::slice::from_ref(address), ClientOptions::default()).await
        else {
            continue;
        };
        let Ok(info) = client.cluster_info().await else {
            continue;
        };
        for r in info.replicas {
            out.push(FinalReplica {
                node: i as u64 + 1,
                partition: r.partition.0,
                applied: r.applied_index,
                digest: format!("{:032x}", r.digest),
                recovering: r.recovering,
            });
        }
    }
    out
}

/// Which node (1-based) leads partition 0, if any answers.
pub async fn leader(addresses: &[String]) -> Option<usize> {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(500),
        retry_deadline: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    let client = tokio::time::timeout(Duration::from_secs(2), Client::connect(addresses, options))
        .await
        .ok()?
        .ok()?;
    let info = tokio::time::timeout(Duration::from_secs(2), client.cluster_info())
        .await
        .ok()?
        .ok()?;
    let address = info.leaders.first()?.address.clone()?;
    addresses.iter().position(|a| *a == address).map(|i| i + 1)
}
