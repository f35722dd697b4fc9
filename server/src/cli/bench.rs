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
//! ([`HOT_SHARE`] of transfers move money among only [`HOT_ACCOUNTS`] accounts, the rest are
//! uniform).
//!
//! Errors — a batch the client reports `Rejected` or `Indeterminate`, or a transfer whose
//! result is not `Ok` — are counted (by kind) and the run goes on. If every transfer of the
//! first [`EARLY_STOP_BATCHES`] batches failed, or no batch succeeded for [`STALL_MAX`] (the
//! target died or hangs), the run stops. A run with any error prints its report, then exits
//! non-zero saying how many transfers failed, of which kinds, and the first error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Stdio};
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
    LedgerResult, NewAccount, NewLedger, NewTransfer, StageSummary, TransferId, TransferOutcome,
    TransferResult,
};
use tokio::sync::{mpsc, Semaphore};

use super::parse_address;

mod picker;
use picker::Picker;

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
    /// Seed of the workload (accounts, pairs, amounts).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The ledger to create and use (scale 0).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub ledger: u32,
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
pub fn run(args: BenchArgs) -> Result<(), String> {
    let runtime = super::runtime()?;
    let node = if args.address.is_empty() {
        Some(LocalNode::start()?)
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

/// A temporary `tally start` child process with its data in a temporary directory; killed
/// and removed when stopped or dropped.
struct LocalNode {
    child: Child,
    address: String,
    // Kept open so the node never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    _data: tempfile::TempDir,
}

impl LocalNode {
    fn start() -> Result<LocalNode, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the tally executable: {e}"))?;
        let data = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        let log_path = data.path().join("node.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let mut child = std::process::Command::new(&exe)
            .arg("start")
            .arg("--address")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data.path().join("node"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the local node has no stdout".to_owned());
        };
        // Read the address line on a thread, so that a node that hangs cannot hang us.
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = line_tx.send((read, line, reader));
        });
        let failure = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = String::new();
            let _ = std::fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut log));
            let tail: String = log.lines().rev().take(10).collect::<Vec<_>>().join("\n");
            format!("the local node did not start: {why}\n{tail}")
        };
        let (read, line, reader) = match line_rx.recv_timeout(NODE_START_TIMEOUT) {
            Ok(answer) => answer,
            Err(_) => {
                return Err(failure(
                    &mut child,
                    format!("no address line within {NODE_START_TIMEOUT:?}"),
                ))
            }
        };
        match read {
            Ok(0) => return Err(failure(&mut child, "it exited".to_owned())),
            Err(e) => return Err(failure(&mut child, format!("reading its stdout: {e}"))),
            Ok(_) => {}
        }
        let Some(address) = line.trim().strip_prefix("tally listening on ") else {
            return Err(failure(
                &mut child,
                format!("unexpected first line {line:?}"),
            ));
        };
        let address = address.to_owned();
        eprintln!(
            "bench: started a local node on {address} (pid {})",
            child.id()
        );
        Ok(LocalNode {
            child,
            address,
            _stdout: reader,
            _data: data,
        })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.stop();
    }
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
                let id = (u128::from(self.run_prefix) << 64) | u128::from(sequence + 1);
                NewTransfer::plain(
                    TransferId(id),
                    self.ids[debit],
                    self.ids[credit],
                    amount,
                    self.ledger,
                )
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
        json!({
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
        })
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
        ids,
        picker: Picker::new(
            args.distribution,
            accounts,
            partitions as usize,
            args.zipf_s,
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
            ids,
            picker: Picker::new(Distribution::Uniform, 20, 3, 1.0),
            next_batch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        };
        assert_eq!(plan.batch(1), plan.batch(1));
        let all: Vec<NewTransfer> = (0..3).flat_map(|b| plan.batch(b)).collect();
        assert_eq!(all.len(), 25);
        let unique: std::collections::BTreeSet<TransferId> = all.iter().map(|t| t.id).collect();
        assert_eq!(unique.len(), 25);
        assert!(all.iter().all(|t| t.amount >= Decimal::ONE));
    }
}
