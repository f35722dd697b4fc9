//! `tally bench`: a load generator in the manner of TigerBeetle's benchmark.
//!
//! Phases: (1) connect — to `--address`, or to a temporary node this process starts itself
//! (the current executable with `start --address 127.0.0.1:0 --data <tempdir>`, killed at the
//! end); (2) setup — create ledger `--ledger` (scale 0) and `--accounts` accounts without
//! balance flags, in batches of [`BATCH_EVENTS_MAX`], so that every transfer can succeed;
//! (3) load — send `--transfers` transfers in batches of `--batch-size`; (4) report —
//! throughput and batch latency percentiles, as text or (with `--json`) as one JSON object
//! on the last line of stdout. Progress goes to stderr once a second.
//!
//! Concurrency: `--clients N` runs N tasks, each with its *own* `Client` and so its own TCP
//! connection (a shared `Client` would multiplex every task over one connection, which
//! measures the client's pipelining rather than N independent application servers).
//!
//! Closed loop (default): each client task sends one batch, waits for its answer, sends the
//! next; latency is measured from just before the request is handed to the client until its
//! answer. Open loop (`--rate R` transfers/s): batch `i` is *scheduled* at
//! `start + i * batch_size / R` whether or not earlier batches were answered, each client task
//! firing every `--clients`-th batch, with at most [`OUTSTANDING_MAX`] batches outstanding per
//! client; latency is measured from the scheduled start, so a server that falls behind is
//! charged for the queueing it causes (no coordinated omission).
//!
//! Workload: batch `i` is generated from a ChaCha8 RNG seeded with `--seed` on stream `i`, so
//! the same seed gives the same accounts, pairs and amounts whatever the number of clients.
//! Account ids derive from the seed too (so a rerun against the same node finds its accounts
//! `Exists`); transfer ids are a random 64-bit run prefix followed by the transfer's 64-bit
//! sequence number, unique per run, so a rerun never replays old transfers. Accounts are
//! spread over the cluster's partitions (account `i` lives in partition `i % P`), and a
//! transfer's credit account is moved into its debit account's partition, because the server
//! answers cross-partition transfers with `cross_partition` (see `session.rs`).
//!
//! `--distribution` picks the accounts of a transfer: `uniform`; `zipfian` (rank `k` with
//! weight `1/k^s`, `s = --zipf-s`, sampled by binary search in a precomputed CDF); `hot`
//! (`--transfer-hot-percent` of transfers, default [`HOT_SHARE`], move money among only
//! `--account-count-hot` accounts, default [`HOT_ACCOUNTS`]; the rest are uniform; giving
//! either flag implies `hot`). The knobs that TigerBeetle's benchmark has are named as its
//! are: `--transfer-pending-percent` makes that share of transfers pending holds (never
//! posted), `--id-order` orders transfer ids `sequential`, `random` or `reversed` (within a
//! run's 64-bit prefix), and `--query-count` ends the run with that many history queries of
//! random accounts (the newest 10 entries each), one at a time, with their latency.
//!
//! Errors — a batch the client reports `Rejected` or `Indeterminate`, or a transfer whose
//! result is not `Ok` — are counted (by kind) and the run goes on. If every transfer of the
//! first [`EARLY_STOP_BATCHES`] batches failed, or no batch succeeded for [`STALL_MAX`] (the
//! target died or hangs), the run stops. A run with any error prints its report, then exits
//! non-zero saying how many transfers failed, of which kinds, and the first error.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use serde_json::json;
use tally_client::wire::{partition_of, BATCH_EVENTS_MAX};
use tally_client::{
    AccountFlags, AccountId, AccountResult, Client, ClientError, ClientOptions, LedgerId,
    LedgerResult, NewAccount, NewLedger, NewTransfer, StageSummary, TransferFlags, TransferId,
    TransferOutcome, TransferResult,
};
use tokio::sync::{mpsc, Semaphore};

use super::parse_address;

mod local_node;
mod picker;
mod queries;
use local_node::LocalNode;
use picker::{HotSet, Picker};
use queries::{query_phase, Queries};

/// Most accounts a run may create (ids and the zipfian CDF take 24 bytes each).
pub const ACCOUNTS_MAX: u64 = 10_000_000;
/// Most transfers one run may send.
pub const TRANSFERS_MAX: u64 = 10_000_000_000;
/// Most concurrent client tasks (each a TCP connection).
pub const CLIENTS_MAX: u64 = 256;
/// Highest offered load, in transfers per second.
pub const RATE_MAX: u64 = 100_000_000;
/// Largest zipfian exponent accepted.
pub const ZIPF_S_MAX: f64 = 10.0;
/// Accounts in the hot set of `--distribution hot`.
pub const HOT_ACCOUNTS: usize = 10;
/// Share of transfers that stay inside the hot set.
pub const HOT_SHARE: f64 = 0.9;
/// Most queries of `--query-count`.
pub const QUERIES_MAX: u64 = 10_000_000;
/// Entries asked for by each query of `--query-count`.
pub const QUERY_LIMIT: u32 = 10;
/// Largest amount of one transfer (whole units; the bench ledger has scale 0).
pub const AMOUNT_MAX: u64 = 1_000;
/// Batches one open-loop client may have outstanding; beyond it the scheduler waits (the
/// waiting still counts in the latency, which runs from the scheduled start).
pub const OUTSTANDING_MAX: usize = 4_096;
/// Batches after which a run whose every transfer failed stops.
pub const EARLY_STOP_BATCHES: u64 = 8;
/// A run in which no batch succeeded for this long stops (longer than the client's default
/// retry deadline, so that a failover does not stop it).
pub const STALL_MAX: Duration = Duration::from_secs(30);
/// Completions queued between the client tasks and the recorder.
const COMPLETIONS_QUEUE_MAX: usize = 4_096;
/// How long to wait for a local node's address line.
const NODE_START_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest latency the histogram holds, in microseconds (one hour); larger ones saturate.
const LATENCY_US_MAX: u64 = 3_600 * 1_000_000;

/// How a transfer's accounts are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Distribution {
    /// Every account equally likely.
    Uniform,
    /// Account of rank k with weight 1/k^s (--zipf-s).
    Zipfian,
    /// 90% of transfers among 10 hot accounts, the rest uniform.
    Hot,
}

impl Distribution {
    fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipfian => "zipfian",
            Distribution::Hot => "hot",
        }
    }
}

/// How transfer ids follow each other within a run (after its 64-bit prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IdOrder {
    /// 1, 2, 3, …
    Sequential,
    /// A bijective scramble of the sequence number: ids in no order, still unique.
    Random,
    /// Counting down from the largest.
    Reversed,
}

impl IdOrder {
    fn name(self) -> &'static str {
        match self {
            IdOrder::Sequential => "sequential",
            IdOrder::Random => "random",
            IdOrder::Reversed => "reversed",
        }
    }

    /// The low 64 bits of the id of transfer `sequence` (0-based), never zero.
    fn low(self, sequence: u64) -> u64 {
        match self {
            IdOrder::Sequential => sequence + 1,
            IdOrder::Random => scramble(sequence + 1).max(1),
            IdOrder::Reversed => u64::MAX - sequence,
        }
    }
}

/// The splitmix64 finalizer: a bijection of `u64` that scatters consecutive values.
fn scramble(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// `tally bench` flags.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Node address (`host:port`), repeatable or comma-separated. Without it, the bench starts
    /// a temporary single node of its own (data in a temporary directory) and stops it after.
    #[arg(long, value_delimiter = ',', value_parser = parse_address)]
    pub address: Vec<String>,
    /// Accounts to create and spread the transfers over.
    #[arg(long, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(2..=ACCOUNTS_MAX))]
    pub accounts: u64,
    /// Transfers to send.
    #[arg(long, default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..=TRANSFERS_MAX))]
    pub transfers: u64,
    /// Transfers per request (1..=8190).
    #[arg(long, default_value_t = 8_000,
          value_parser = clap::value_parser!(u64).range(1..=BATCH_EVENTS_MAX as u64))]
    pub batch_size: u64,
    /// Concurrent client tasks, each with its own connection.
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=CLIENTS_MAX))]
    pub clients: u64,
    /// How the accounts of each transfer are chosen.
    #[arg(long, value_enum, default_value_t = Distribution::Uniform)]
    pub distribution: Distribution,
    /// Exponent of the zipfian distribution (0 < s <= 10).
    #[arg(long, default_value_t = 1.0, value_parser = parse_zipf_s)]
    pub zipf_s: f64,
    /// Offered load in transfers per second (open loop); without it, closed loop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=RATE_MAX))]
    pub rate: Option<u64>,
    /// Accounts in the hot set (implies `--distribution hot`; default 10).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=ACCOUNTS_MAX))]
    pub account_count_hot: Option<u64>,
    /// Percent of transfers inside the hot set (implies `--distribution hot`; default 90).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub transfer_hot_percent: Option<u8>,
    /// Percent of transfers sent as pending holds (never posted).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub transfer_pending_percent: u8,
    /// Order of transfer ids within the run.
    #[arg(long, value_enum, default_value_t = IdOrder::Sequential)]
    pub id_order: IdOrder,
    /// History queries of random accounts after the transfers, one at a time.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=QUERIES_MAX))]
    pub query_count: u64,
    /// Seed of the workload (accounts, pairs, amounts).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The ledger to create and use (scale 0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger: u32,
    /// Partitions of the temporary node (without --address only: a running cluster's
    /// partitions are fixed, and the bench uses them all) [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub partitions: Option<u32>,
    /// End with one JSON object on the last line of stdout (and print nothing else there).
    #[arg(long)]
    pub json: bool,
}

fn parse_zipf_s(text: &str) -> Result<f64, String> {
    let s: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got {text:?}"))?;
    if !s.is_finite() || s <= 0.0 || s > ZIPF_S_MAX {
        return Err(format!("must be in (0, {ZIPF_S_MAX}], not {s}"));
    }
    Ok(s)
}

/// Runs the benchmark: starts a local node if no address is given, then connects, sets up,
/// loads and reports.
pub fn run(mut args: BenchArgs) -> Result<(), String> {
    if args.account_count_hot.is_some() || args.transfer_hot_percent.is_some() {
        if args.distribution == Distribution::Zipfian {
            return Err(
                "--account-count-hot and --transfer-hot-percent describe --distribution hot, \
                 not zipfian"
                    .into(),
            );
        }
        args.distribution = Distribution::Hot;
    }
    if args
        .account_count_hot
        .is_some_and(|hot| hot > args.accounts)
    {
        return Err(format!(
            "--account-count-hot {} exceeds --accounts {}",
            args.account_count_hot.unwrap_or(0),
            args.accounts
        ));
    }
    if args.partitions.is_some() && !args.address.is_empty() {
        return Err(
            "--partitions sets up the temporary node; a running cluster has the partitions it              was formed with, and the bench spreads its accounts over all of them"
                .into(),
        );
    }
    let runtime = super::runtime()?;
    let node = if args.address.is_empty() {
        Some(LocalNode::start(args.partitions.unwrap_or(1))?)
    } else {
        None
    };
    let addresses = match &node {
        Some(node) => vec![node.address.clone()],
        None => args.address.clone(),
    };
    let result = runtime.block_on(bench(&args, &addresses));
    drop(runtime);
    if let Some(mut node) = node {
        node.stop();
    }
    let report = result?;
    if args.json {
        super::print_json(&report.to_json(&args));
    } else {
        report.print(&args);
    }
    if let Some(why) = &report.stalled {
        return Err(format!(
            "stopped: {why}; {} of {} transfers done, {} failed ({}); first error: {}",
            report.transfers - report.errors.min(report.transfers),
            args.transfers,
            report.errors,
            report.kinds(),
            report.first_error.as_deref().unwrap_or("none recorded")
        ));
    }
    if report.errors > 0 {
        return Err(format!(
            "{} of {} transfers failed{} ({}); first error: {}",
            report.errors,
            report.transfers,
            if report.stopped_early {
                ", stopped early"
            } else {
                ""
            },
            report.kinds(),
            report.first_error.as_deref().unwrap_or("none recorded")
        ));
    }
    Ok(())
}

/// Account ids for the run: account `i` in partition `i % partitions`, from the seed.
fn account_ids(seed: u64, accounts: usize, partitions: u32) -> Vec<AccountId> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Stream 0 is used by batch 0; accounts take the last stream.
    rng.set_stream(u64::MAX);
    (0..accounts)
        .map(|i| {
            let target = (i % partitions as usize) as u32;
            loop {
                let id = tally_client::ids::new_id_with(&mut rng);
                if partition_of(id, partitions) == target {
                    break AccountId(id);
                }
            }
        })
        .collect()
}

/// What the load phase needs, shared by every client task.
struct Plan {
    transfers: u64,
    batch_size: u64,
    batch_count: u64,
    clients: u64,
    rate: Option<u64>,
    seed: u64,
    ledger: LedgerId,
    run_prefix: u64,
    id_order: IdOrder,
    /// Chance that a transfer is a pending hold.
    pending_share: f64,
    ids: Vec<AccountId>,
    picker: Picker,
    next_batch: AtomicU64,
    stop: AtomicBool,
}

impl Plan {
    /// The transfers of batch `index`, the same for the same seed.
    fn batch(&self, index: u64) -> Vec<NewTransfer> {
        assert!(
            index < self.batch_count,
            "batch {index} of {}",
            self.batch_count
        );
        let first = index * self.batch_size;
        let end = (first + self.batch_size).min(self.transfers);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        (first..end)
            .map(|sequence| {
                let (debit, credit) = self.picker.pair(&mut rng);
                let amount = Decimal::from(rng.gen_range(1..=AMOUNT_MAX));
                let low = self.id_order.low(sequence);
                let id = (u128::from(self.run_prefix) << 64) | u128::from(low);
                let mut transfer = NewTransfer::plain(
                    TransferId(id),
                    self.ids[debit],
                    self.ids[credit],
                    amount,
                    self.ledger,
                );
                if self.pending_share > 0.0 && rng.gen_bool(self.pending_share) {
                    transfer.flags = TransferFlags(TransferFlags::PENDING);
                }
                transfer
            })
            .collect()
    }

    /// When batch `index` is due in an open-loop run.
    fn due(&self, start: tokio::time::Instant, rate: u64, index: u64) -> tokio::time::Instant {
        let transfers_before = (index * self.batch_size) as f64;
        start + Duration::from_secs_f64(transfers_before / rate as f64)
    }
}

/// One answered (or failed) batch.
struct Completion {
    transfers: u64,
    latency: Duration,
    result: Result<Vec<TransferOutcome>, ClientError>,
}

/// The outcome of a run.
struct Report {
    partitions: u32,
    setup_seconds: f64,
    transfers: u64,
    batches: u64,
    errors: u64,
    seconds: f64,
    latency_us: Histogram<u64>,
    error_kinds: BTreeMap<String, u64>,
    first_error: Option<String>,
    stopped_early: bool,
    /// Why the run stopped before its end, if the target stopped answering.
    stalled: Option<String>,
    /// The stage timings of the node the setup client spoke to (its id), over its life.
    stages: Option<(u64, Vec<StageSummary>)>,
    /// The query phase, if `--query-count` asked for one.
    queries: Option<Queries>,
}

impl Report {
    /// The error kinds and their counts, most frequent first.
    fn kinds(&self) -> String {
        let mut kinds: Vec<(&String, &u64)> = self.error_kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let text: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if text.is_empty() {
            "none".to_owned()
        } else {
            text.join(", ")
        }
    }

    fn transfers_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.transfers as f64 / self.seconds
        } else {
            0.0
        }
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1_000.0
    }

    fn to_json(&self, args: &BenchArgs) -> serde_json::Value {
        let mut value = json!({
            "transfers": self.transfers,
            "seconds": self.seconds,
            "transfers_per_second": self.transfers_per_second(),
            "p50_ms": self.ms(0.5),
            "p99_ms": self.ms(0.99),
            "p999_ms": self.ms(0.999),
            "max_ms": self.latency_us.max() as f64 / 1_000.0,
            "mean_ms": self.latency_us.mean() / 1_000.0,
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "batches": self.batches,
            "batch_size": args.batch_size,
            "clients": args.clients,
            "accounts": args.accounts,
            "distribution": args.distribution.name(),
            "zipf_s": (args.distribution == Distribution::Zipfian).then_some(args.zipf_s),
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "rate": args.rate,
            "seed": args.seed,
            "partitions": self.partitions,
            "setup_seconds": self.setup_seconds,
            "stopped_early": self.stopped_early,
            "stalled": self.stalled,
            "stages_node": self.stages.as_ref().map(|(node, _)| node),
            "stages": self.stages.as_ref().map(|(_, stages)| stages.iter().map(|s| json!({
                "name": s.name,
                "count": s.count,
                "total_ms": s.total_us as f64 / 1_000.0,
                "p50_ms": s.p50_us as f64 / 1_000.0,
                "p99_ms": s.p99_us as f64 / 1_000.0,
                "max_ms": s.max_us as f64 / 1_000.0,
            })).collect::<Vec<_>>()),
        });
        let hot = (args.distribution == Distribution::Hot).then(|| hot_set(args));
        let knobs = json!({
            "account_count_hot": hot.map(|h| h.accounts),
            "transfer_hot_percent": hot.map(|h| h.share * 100.0),
            "transfer_pending_percent": args.transfer_pending_percent,
            "id_order": args.id_order.name(),
            "queries": self.queries.as_ref().map(|q| q.count),
            "query_errors": self.queries.as_ref().map(|q| q.errors),
            "queries_per_second": self.queries.as_ref().map(Queries::per_second),
            "query_p50_ms": self.queries.as_ref().map(|q| q.ms(0.5)),
            "query_p99_ms": self.queries.as_ref().map(|q| q.ms(0.99)),
            "query_max_ms": self.queries.as_ref().map(|q| q.latency_us.max() as f64 / 1_000.0),
        });
        if let (Some(all), serde_json::Value::Object(knobs)) = (value.as_object_mut(), knobs) {
            all.extend(knobs);
        }
        value
    }

    fn print(&self, args: &BenchArgs) {
        let mode = match args.rate {
            Some(rate) => format!("open loop at {rate} transfers/s"),
            None => "closed loop".to_owned(),
        };
        println!(
            "tally bench: {} accounts ({}), batch size {}, {} client(s), {mode}, {} partition(s)",
            args.accounts,
            args.distribution.name(),
            args.batch_size,
            args.clients,
            self.partitions
        );
        println!("setup       {:.2} s", self.setup_seconds);
        println!(
            "transfers   {} in {} batches, {:.2} s{}",
            self.transfers,
            self.batches,
            self.seconds,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
        println!("throughput  {:.0} transfers/s", self.transfers_per_second());
        println!(
            "latency     p50 {:.3} ms, p99 {:.3} ms, p999 {:.3} ms, max {:.3} ms (per batch)",
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.latency_us.max() as f64 / 1_000.0
        );
        println!("errors      {}", self.errors);
        for (kind, count) in &self.error_kinds {
            println!("  {kind}: {count}");
        }
        if let Some(q) = &self.queries {
            println!(
                "queries     {} in {:.2} s ({:.0}/s, one at a time), p50 {:.3} ms, p99 {:.3} ms, \
                 max {:.3} ms, errors {} (history of a random account, newest {QUERY_LIMIT})",
                q.count,
                q.seconds,
                q.per_second(),
                q.ms(0.5),
                q.ms(0.99),
                q.latency_us.max() as f64 / 1_000.0,
                q.errors
            );
        }
        if let Some((node, stages)) = &self.stages {
            println!(
                "stages      node {node}, over its life, in ms (per request, proposal or Ready)"
            );
            println!(
                "  {:<12} {:>9} {:>9} {:>9} {:>9} {:>10}",
                "stage", "count", "p50", "p99", "max", "total"
            );
            for s in stages {
                let ms = |us: u64| us as f64 / 1_000.0;
                println!(
                    "  {:<12} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>10.1}",
                    s.name,
                    s.count,
                    ms(s.p50_us),
                    ms(s.p99_us),
                    ms(s.max_us),
                    ms(s.total_us)
                );
            }
        }
    }
}

/// The hot set the flags describe.
fn hot_set(args: &BenchArgs) -> HotSet {
    let default = HotSet::default();
    HotSet {
        accounts: args
            .account_count_hot
            .map_or(default.accounts, |n| n as usize),
        share: args
            .transfer_hot_percent
            .map_or(default.share, |p| f64::from(p) / 100.0),
    }
}

fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).map_err(|e| format!("histogram: {e}"))
}

async fn bench(args: &BenchArgs, addresses: &[String]) -> Result<Report, String> {
    let options = ClientOptions::default();
    let setup_client = Client::connect(addresses, options.clone())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", addresses.join(",")))?;
    let partitions = setup_client.partition_count().max(1);
    let accounts = usize::try_from(args.accounts).map_err(|_| "too many accounts")?;
    if accounts < 2 * partitions as usize {
        return Err(format!(
            "--accounts {accounts} is too few for {partitions} partitions (at least 2 each)"
        ));
    }

    // Setup.
    let setup_start = Instant::now();
    let ledger = LedgerId(args.ledger);
    let results = setup_client
        .create_ledgers(vec![NewLedger {
            id: ledger,
            scale: 0,
            code: 1,
        }])
        .await
        .map_err(|e| format!("create ledger {ledger}: {e}"))?;
    match results.first() {
        Some(LedgerResult::Ok | LedgerResult::Exists) => {}
        other => {
            return Err(format!(
                "create ledger {ledger}: {} (the bench needs a ledger of scale 0; try --ledger)",
                other.map_or("no result", |r| r.name())
            ))
        }
    }
    let ids = account_ids(args.seed, accounts, partitions);
    for chunk in ids.chunks(BATCH_EVENTS_MAX) {
        let batch = chunk
            .iter()
            .map(|&id| NewAccount {
                id,
                ledger,
                code: 1,
                flags: AccountFlags(0),
                limit: None,
                user_data_128: 0,
                user_data_64: 0,
                user_data_32: 0,
            })
            .collect();
        let results = setup_client
            .create_accounts(batch)
            .await
            .map_err(|e| format!("create accounts: {e}"))?;
        if let Some((index, result)) = results
            .iter()
            .enumerate()
            .find(|(_, r)| !matches!(r, AccountResult::Ok | AccountResult::Exists))
        {
            return Err(format!(
                "create account {}: {}",
                chunk[index],
                result.name()
            ));
        }
    }
    let setup_seconds = setup_start.elapsed().as_secs_f64();
    eprintln!(
        "bench: ledger {ledger} and {accounts} accounts ready in {setup_seconds:.2} s \
         ({partitions} partition(s))"
    );

    // Load.
    let batch_count = args.transfers.div_ceil(args.batch_size);
    let plan = Arc::new(Plan {
        transfers: args.transfers,
        batch_size: args.batch_size,
        batch_count,
        clients: args.clients,
        rate: args.rate,
        seed: args.seed,
        ledger,
        run_prefix: rand::thread_rng().gen::<u64>().max(1),
        id_order: args.id_order,
        pending_share: f64::from(args.transfer_pending_percent) / 100.0,
        ids,
        picker: Picker::new(
            args.distribution,
            accounts,
            partitions as usize,
            args.zipf_s,
            hot_set(args),
        ),
        next_batch: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let mut clients = vec![setup_client.clone()];
    for _ in 1..args.clients {
        clients.push(
            Client::connect(addresses, options.clone())
                .await
                .map_err(|e| format!("cannot connect client {}: {e}", clients.len()))?,
        );
    }
    let (completions, mut received) = mpsc::channel::<Completion>(COMPLETIONS_QUEUE_MAX);
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, client) in clients.into_iter().enumerate() {
        let plan = plan.clone();
        let completions = completions.clone();
        match plan.rate {
            None => tasks.spawn(closed_loop(plan, client, completions)),
            Some(rate) => tasks.spawn(open_loop(
                plan,
                client,
                completions,
                start,
                rate,
                index as u64,
            )),
        };
    }
    drop(completions);

    let mut latency_us = new_histogram()?;
    let mut window_us = new_histogram()?;
    let mut report_errors = 0u64;
    let mut done_transfers = 0u64;
    let mut done_batches = 0u64;
    let mut window_transfers = 0u64;
    let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error: Option<String> = None;
    let mut stopped_early = false;
    let mut stalled = None;
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last = start;
    let mut last_ok = start;
    loop {
        tokio::select! {
            completion = received.recv() => {
                let Some(completion) = completion else { break };
                let latency = u64::try_from(completion.latency.as_micros()).unwrap_or(u64::MAX);
                latency_us.saturating_record(latency.max(1));
                window_us.saturating_record(latency.max(1));
                done_transfers += completion.transfers;
                window_transfers += completion.transfers;
                done_batches += 1;
                last = tokio::time::Instant::now();
                match completion.result {
                    Ok(outcomes) => {
                        last_ok = last;
                        for outcome in outcomes.iter().filter(|o| o.result != TransferResult::Ok) {
                            report_errors += 1;
                            let kind = result_kind(outcome.result);
                            if first_error.is_none() {
                                first_error = Some(format!("transfer result {kind}"));
                            }
                            *error_kinds.entry(kind).or_default() += 1;
                        }
                    }
                    Err(error) => {
                        report_errors += completion.transfers;
                        let kind = match &error {
                            ClientError::Rejected(e) => format!("Rejected:{}", e.code.name()),
                            ClientError::Indeterminate { .. } => "Indeterminate".to_owned(),
                            ClientError::Connect(_) => "Connect".to_owned(),
                            ClientError::Protocol(_) => "Protocol".to_owned(),
                            ClientError::Invalid(_) => "Invalid".to_owned(),
                            ClientError::Closed => "Closed".to_owned(),
                        };
                        *error_kinds.entry(kind).or_default() += completion.transfers;
                        if first_error.is_none() {
                            first_error = Some(error.to_string());
                        }
                    }
                }
                let early = done_batches >= EARLY_STOP_BATCHES.min(batch_count);
                if early && report_errors == done_transfers && !plan.stop.load(Ordering::Relaxed) {
                    eprintln!("bench: every transfer so far failed; stopping");
                    plan.stop.store(true, Ordering::Relaxed);
                    stopped_early = done_transfers < args.transfers;
                }
            }
            _ = ticker.tick() => {
                if last_ok.elapsed() > STALL_MAX && stalled.is_none() {
                    let why = format!("no batch succeeded for {} s", STALL_MAX.as_secs());
                    eprintln!("bench: {why}; stopping");
                    plan.stop.store(true, Ordering::Relaxed);
                    stalled = Some(why);
                }
                eprintln!(
                    "bench: {:>6.1} s  {:>10} / {} transfers  {:>9.0} transfers/s  \
                     p99 {:>8.3} ms  errors {}",
                    start.elapsed().as_secs_f64(),
                    done_transfers,
                    args.transfers,
                    window_transfers as f64,
                    window_us.value_at_quantile(0.99) as f64 / 1_000.0,
                    report_errors,
                );
                window_transfers = 0;
                window_us.reset();
            }
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| format!("a client task failed: {e}"))?;
    }
    let queries = match args.query_count {
        0 => None,
        count => {
            eprintln!("bench: {count} history queries");
            Some(query_phase(&setup_client, &plan.ids, args.seed, count).await?)
        }
    };
    // Where the node's time went (a node that no longer answers has nothing to say).
    let stages =
        match tokio::time::timeout(Duration::from_secs(5), setup_client.cluster_info()).await {
            Ok(Ok(info)) if !info.stages.is_empty() => Some((info.node_id, info.stages)),
            _ => None,
        };
    Ok(Report {
        partitions,
        setup_seconds,
        transfers: done_transfers,
        batches: done_batches,
        errors: report_errors,
        seconds: last.duration_since(start).as_secs_f64(),
        latency_us,
        error_kinds,
        first_error,
        stopped_early,
        stalled,
        stages,
        queries,
    })
}

fn result_kind(result: TransferResult) -> String {
    match result {
        TransferResult::Unknown(1000) => "cross_partition".to_owned(),
        TransferResult::Unknown(code) => format!("Unknown({code})"),
        known => known.name().to_owned(),
    }
}

/// One batch at a time: send, wait for the answer, report, repeat until no batch is left.
async fn closed_loop(plan: Arc<Plan>, client: Client, completions: mpsc::Sender<Completion>) {
    loop {
        if plan.stop.load(Ordering::Relaxed) {
            return;
        }
        let index = plan.next_batch.fetch_add(1, Ordering::Relaxed);
        if index >= plan.batch_count {
            return;
        }
        let batch = plan.batch(index);
        let transfers = batch.len() as u64;
        let sent = Instant::now();
        let result = client.create_transfers(batch).await;
        let latency = sent.elapsed();
        let completion = Completion {
            transfers,
            latency,
            result,
        };
        if completions.send(completion).await.is_err() {
            return;
        }
    }
}

/// Every `clients`-th batch from `first`, each sent at its scheduled time whether or not the
/// earlier ones were answered; latency runs from the schedule.
async fn open_loop(
    plan: Arc<Plan>,
    client: Client,
    completions: mpsc::Sender<Completion>,
    start: tokio::time::Instant,
    rate: u64,
    first: u64,
) {
    let outstanding = Arc::new(Semaphore::new(OUTSTANDING_MAX));
    let mut index = first;
    while index < plan.batch_count {
        if plan.stop.load(Ordering::Relaxed) {
            break;
        }
        let due = plan.due(start, rate, index);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else {
            break;
        };
        let batch = plan.batch(index);
        let transfers = batch.len() as u64;
        let client = client.clone();
        let completions = completions.clone();
        tokio::spawn(async move {
            let result = client.create_transfers(batch).await;
            let latency = due.elapsed();
            let _ = completions
                .send(Completion {
                    transfers,
                    latency,
                    result,
                })
                .await;
            drop(permit);
        });
        index += plan.clients;
    }
    // Wait until every batch this task sent has been reported.
    let _ = outstanding
        .acquire_many(u32::try_from(OUTSTANDING_MAX).expect("OUTSTANDING_MAX fits u32"))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_deterministic_and_ids_unique() {
        let ids = account_ids(4, 20, 3);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(partition_of(id.0, 3), (i % 3) as u32);
        }
        assert_eq!(ids, account_ids(4, 20, 3));
        let plan = Plan {
            transfers: 25,
            batch_size: 10,
            batch_count: 3,
            clients: 1,
            rate: None,
            seed: 4,
            ledger: LedgerId(1),
            run_prefix: 77,
            id_order: IdOrder::Random,
            pending_share: 0.5,
            ids,
            picker: Picker::new(Distribution::Uniform, 20, 3, 1.0, HotSet::default()),
            next_batch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        assert_eq!(plan.batch(1), plan.batch(1));
        let all: Vec<NewTransfer> = (0..3).flat_map(|b| plan.batch(b)).collect();
        assert_eq!(all.len(), 25);
        let unique: std::collections::BTreeSet<TransferId> = all.iter().map(|t| t.id).collect();
        assert_eq!(unique.len(), 25);
        let pending = all
            .iter()
            .filter(|t| t.flags.0 & TransferFlags::PENDING != 0)
            .count();
        assert!((3..=22).contains(&pending), "{pending} pending of 25");
        assert!(all.iter().all(|t| t.amount >= Decimal::ONE));
    }

    #[test]
    fn every_id_order_gives_distinct_nonzero_ids() {
        for order in [IdOrder::Sequential, IdOrder::Random, IdOrder::Reversed] {
            let lows: std::collections::BTreeSet<u64> =
                (0..100_000).map(|s| order.low(s)).collect();
            assert_eq!(lows.len(), 100_000, "{order:?}");
            assert!(!lows.contains(&0), "{order:?}");
        }
        assert_eq!(IdOrder::Sequential.low(0), 1);
        assert_eq!(IdOrder::Reversed.low(0), u64::MAX);
        let random: Vec<u64> = (0..4).map(|s| IdOrder::Random.low(s)).collect();
        assert!(
            random.windows(2).any(|w| w[0] > w[1]),
            "{random:?} in order"
        );
    }
}
