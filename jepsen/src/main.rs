//! `tally-jepsen`: Tally's chaos harness. It starts real `tally` nodes inside a private
//! network namespace, runs a workload against them while a nemesis injects faults, heals
//! everything, reads back what the cluster holds, and checks the history against it.
//!
//! ```text
//! tally-jepsen test --nodes 3 --workload bank --nemesis partition,kill,pause \
//!     --time-limit 60 --seed 7 --out runs/x
//! tally-jepsen check runs/x          # judge a stored run again
//! tally-jepsen check --self-test     # every checker against seeded bad histories
//! ```
//!
//! Exit status: 0 every check passed, 1 a check failed, 2 the run could not be made or
//! judged (the message says why). See `jepsen/README.md`.

mod availability;
mod checks;
mod cluster;
mod disk;
mod history;
mod nemesis;
mod report;
mod stream;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::checks::Check;
use crate::cluster::{Cluster, Layout, Start};
use crate::history::{Final, Recorder};
use crate::nemesis::{Event, Nemesis};
use crate::report::{Results, RunInfo};
use crate::workload::Workload;

#[derive(Parser)]
#[command(name = "tally-jepsen", version, about = "Tally's chaos harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a test: nodes, workload, faults, checks, report (needs root).
    Test(TestArgs),
    /// Judges a stored run again, or tests the checkers themselves.
    Check(CheckArgs),
}

#[derive(Args, Clone)]
struct TestArgs {
    /// Nodes in the cluster (1 to 7).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=7))]
    nodes: u8,
    /// Partitions of the cluster (1 to 16).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=16))]
    partitions: u32,
    /// bank, exactly-once, holds, refunds or queries.
    #[arg(long, default_value = "bank", value_parser = clap::builder::PossibleValuesParser::new(workload::WORKLOADS))]
    workload: String,
    /// Faults, comma-separated: partition, loss, kill, pause, clock, wipe, corrupt,
    /// truncate, disk-full, eio, power; or `all`, or `none`.
    #[arg(long, default_value = "partition,kill,pause")]
    nemesis: String,
    /// Seconds of workload (the heal, read-back and checks come after).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=86_400))]
    time_limit: u64,
    /// How long each fault lasts, in seconds: `MIN-MAX` (drawn from the range) or one
    /// number.
    #[arg(long, default_value = "3-6", value_parser = parse_fault_seconds)]
    fault_seconds: (u64, u64),
    /// Seed of the fault schedule and the workload (random if not given; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// The run directory (default `runs/<workload>-<seed>`); must not exist or be empty.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Writer processes (1 to 256).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    writers: u16,
    /// Reader processes (0 to 64).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=64))]
    readers: u16,
    /// The `tally` binary (default: the one beside this binary).
    #[arg(long)]
    tally: Option<PathBuf>,
    /// Plants a bug in every node, to see the checks catch it: skip-fsync,
    /// apply-before-commit, skip-vote, lease-reads.
    #[arg(long = "unsafe-bug", value_parser = clap::builder::PossibleValuesParser::new(["skip-fsync", "apply-before-commit", "skip-vote", "lease-reads"]))]
    unsafe_bugs: Vec<String>,
    /// Internal: this process already runs in the run's namespace.
    #[arg(long, hide = true)]
    inside_namespace: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// A run directory to judge again.
    #[arg(required_unless_present = "self_test")]
    dir: Option<PathBuf>,
    /// Feeds every checker seeded right and defective histories instead.
    #[arg(long, conflicts_with = "dir")]
    self_test: bool,
    /// Seeds per checker for the self-test.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    seeds: u64,
}

/// Why a run could not be made (exit 2).
struct Unmade(String);

impl<T: Into<String>> From<T> for Unmade {
    fn from(message: T) -> Unmade {
        Unmade(message.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Test(args) if args.inside_namespace => inside(args),
        Command::Test(args) => outside(args),
        Command::Check(args) if args.self_test => Ok(self_test(args.seeds)),
        Command::Check(args) => recheck(args.dir.as_deref().unwrap_or(Path::new("."))),
    };
    match outcome {
        Ok(code) => code,
        Err(Unmade(message)) => {
            eprintln!("tally-jepsen: the run could not be made: {message}");
            ExitCode::from(2)
        }
    }
}

fn nemesis_kinds(spec: &str) -> Result<Vec<String>, Unmade> {
    match spec.trim() {
        "all" => return Ok(nemesis::KINDS.iter().map(|k| k.to_string()).collect()),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let mut kinds = Vec::new();
    for kind in spec.split(',').map(str::trim) {
        if !nemesis::KINDS.contains(&kind) {
            return Err(format!(
                "unknown nemesis {kind:?}: choose from {}, or all, or none",
                nemesis::KINDS.join(", ")
            )
            .into());
        }
        if !kinds.iter().any(|k| k == kind) {
            kinds.push(kind.to_string());
        }
    }
    Ok(kinds)
}

const STORAGE: &[&str] = &["wipe", "corrupt", "truncate", "disk-full", "eio"];

/// Checks what the run needs before anything starts; names the package of each missing tool.
fn preflight(kinds: &[String]) -> Result<(), Unmade> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "it must run as root (it makes a network namespace, firewall rules and \
                    mounts)"
                .into(),
        );
    }
    let mut needed = vec![
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
    ];
    if kinds.iter().any(|k| k == "eio") {
        needed.push(("strace", "strace"));
    }
    if kinds.iter().any(|k| k == "disk-full") {
        needed.push(("mount", "mount"));
    }
    let mut missing: Vec<String> = needed
        .iter()
        .filter(|(tool, _)| which(tool).is_none())
        .map(|(tool, package)| format!("`{tool}` (Debian package {package})"))
        .collect();
    if kinds.iter().any(|k| k == "clock") && faketime_library().is_none() {
        missing.push("libfaketime (Debian package faketime)".into());
    }
    if !missing.is_empty() {
        return Err(format!(
            "missing {}; install with `apt-get install {}` (nothing is installed for you)",
            missing.join(", "),
            missing
                .iter()
                .filter_map(|m| m.split("package ").nth(1))
                .map(|p| p.trim_end_matches(')'))
                .collect::<Vec<_>>()
                .join(" ")
        )
        .into());
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

fn faketime_library() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn tally_binary(given: Option<&Path>) -> Result<PathBuf, Unmade> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .map_err(|e| format!("where this binary is: {e}"))?
            .with_file_name("tally"),
    };
    if !path.is_file() {
        return Err(format!(
            "no tally binary at {}: build it with `cargo build --release -p tally-server`, or \
             name one with --tally",
            path.display()
        )
        .into());
    }
    std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Validates, prepares the run directory, and runs the test again inside a new network and
/// mount namespace.
fn outside(mut args: TestArgs) -> Result<ExitCode, Unmade> {
    let kinds = nemesis_kinds(&args.nemesis)?;
    if args.nodes < 3 && kinds.iter().any(|k| STORAGE.contains(&k.as_str())) {
        return Err(
            "storage faults (wipe, corrupt, truncate, disk-full, eio) need at least 3 \
                    nodes: a node recovers lost data from its peers"
                .into(),
        );
    }
    preflight(&kinds)?;
    let tally = tally_binary(args.tally.as_deref())?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{seed}", args.workload)));
    if out.exists()
        && std::fs::read_dir(&out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_some()
    {
        return Err(format!(
            "{} exists and is not empty: choose another --out, or remove it",
            out.display()
        )
        .into());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let out = std::fs::canonicalize(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("tally-jepsen: seed {seed}, run directory {}", out.display());
    args.seed = Some(seed);
    args.out = Some(out);
    args.tally = Some(tally);
    let me = std::env::current_exe().map_err(|e| format!("where this binary is: {e}"))?;
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(me)
        .args(forwarded(&args));
    let status = command.status().map_err(|e| format!("unshare: {e}"))?;
    match status.code() {
        Some(code) => Ok(ExitCode::from(code as u8)),
        None => Err("the run was killed by a signal".into()),
    }
}

/// `--fault-seconds`: `MIN-MAX` or `N`, 1 to 3600 s, MIN ≤ MAX.
fn parse_fault_seconds(text: &str) -> Result<(u64, u64), String> {
    let number = |t: &str| -> Result<u64, String> {
        let n: u64 = t
            .trim()
            .parse()
            .map_err(|_| format!("`{t}` is not a number of seconds"))?;
        if (1..=3600).contains(&n) {
            Ok(n)
        } else {
            Err(format!("{n} s: a fault lasts 1 to 3600 s"))
        }
    };
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(text)?, number(text)?),
    };
    if min > max {
        return Err(format!("{min}-{max}: the minimum is above the maximum"));
    }
    Ok((min, max))
}

/// The command line the namespace's process gets.
fn forwarded(args: &TestArgs) -> Vec<String> {
    let mut out = vec![
        "test".to_string(),
        "--inside-namespace".into(),
        format!("--nodes={}", args.nodes),
        format!("--partitions={}", args.partitions),
        format!("--workload={}", args.workload),
        format!("--nemesis={}", args.nemesis),
        format!("--time-limit={}", args.time_limit),
        format!(
            "--fault-seconds={}-{}",
            args.fault_seconds.0, args.fault_seconds.1
        ),
        format!("--writers={}", args.writers),
        format!("--readers={}", args.readers),
    ];
    if let Some(seed) = args.seed {
        out.push(format!("--seed={seed}"));
    }
    if let Some(dir) = &args.out {
        out.push(format!("--out={}", dir.display()));
    }
    if let Some(tally) = &args.tally {
        out.push(format!("--tally={}", tally.display()));
    }
    for bug in &args.unsafe_bugs {
        out.push(format!("--unsafe-bug={bug}"));
    }
    out
}

/// The run itself, inside the namespace.
fn inside(args: TestArgs) -> Result<ExitCode, Unmade> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("the runtime: {e}"))?;
    runtime.block_on(run_test(args))
}

async fn run_test(args: TestArgs) -> Result<ExitCode, Unmade> {
    let kinds = nemesis_kinds(&args.nemesis)?;
    let out = args.out.clone().ok_or("no run directory")?;
    let seed = args.seed.ok_or("no seed")?;
    let tally = args.tally.clone().ok_or("no tally binary")?;
    let status = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip link set lo up: {e}"))?;
    if !status.success() {
        return Err("ip link set lo up failed".into());
    }
    let run = RunInfo {
        command: std::iter::once("tally-jepsen".to_string())
            .chain(
                forwarded(&args)
                    .into_iter()
                    .filter(|a| a != "--inside-namespace"),
            )
            .collect(),
        seed,
        nodes: args.nodes.into(),
        partitions: args.partitions,
        workload: args.workload.clone(),
        nemesis: kinds.clone(),
        time_limit_s: args.time_limit,
        unsafe_bugs: args.unsafe_bugs.clone(),
    };
    write_json(&out.join("run.json"), &run)?;

    let layout = Layout {
        tally,
        nodes: args.nodes.into(),
        partitions: args.partitions,
        out: out.clone(),
        faketime: if kinds.iter().any(|k| k == "clock") {
            faketime_library()
        } else {
            None
        },
        tmpfs: kinds.iter().any(|k| k == "disk-full"),
        unsafe_bugs: args.unsafe_bugs.clone(),
    };
    let nodes = layout.nodes;
    let cluster = Arc::new(Mutex::new(Cluster::new(layout)?));
    let addresses = lock(&cluster).addresses();
    for i in 1..=nodes {
        lock(&cluster).start(i, Start::Normal)?;
    }
    println!(
        "tally-jepsen: {nodes} nodes started; setting up the {} workload",
        args.workload
    );
    // A change stream read through the whole run, from node 1 first.
    let consumer = stream::Consumer::start(addresses[0].clone());

    let recorder = Arc::new(Recorder::new());
    let workload = Arc::new(Workload::new(
        &args.workload,
        args.partitions,
        addresses.clone(),
        recorder.clone(),
        seed,
    ));
    workload.setup().await.map_err(|e| {
        format!(
            "the cluster did not take the setup ({e}); see {}/nodes/n*/node.log",
            out.display()
        )
    })?;

    let started = recorder.now_ns();
    let until = started + args.time_limit * 1_000_000_000;
    let stop = Arc::new(AtomicBool::new(false));
    let clients = {
        let workload = workload.clone();
        let stop = stop.clone();
        let (writers, readers) = (args.writers.into(), args.readers.into());
        tokio::spawn(async move { workload.run(writers, readers, stop).await })
    };
    let mut nemesis = Nemesis::new(
        cluster.clone(),
        kinds.clone(),
        seed,
        recorder.clone(),
        (args.fault_seconds.0 * 1000, args.fault_seconds.1 * 1000),
    );
    let current = nemesis.current.clone();
    let faults = {
        let addresses = addresses.clone();
        tokio::spawn(async move {
            let result = nemesis
                .run(until, move || {
                    let addresses = addresses.clone();
                    async move { workload::leader(&addresses).await }
                })
                .await;
            (nemesis, result)
        })
    };
    let progress = {
        let recorder = recorder.clone();
        let current = current.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let (ok, fail, info) = recorder.counts();
                let fault = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                println!(
                    "[{:6.1} s] {} ops (ok {ok}, fail {fail}, info {info}) · fault: {fault}",
                    recorder.now_ns().saturating_sub(started) as f64 / 1e9,
                    ok + fail + info,
                );
            }
        })
    };
    let remaining = until.saturating_sub(recorder.now_ns());
    tokio::time::sleep(Duration::from_nanos(remaining)).await;
    let (nemesis, fault_result) = faults
        .await
        .map_err(|e| format!("the nemesis failed: {e}"))?;
    stop.store(true, Ordering::Relaxed);
    println!("tally-jepsen: time is up; waiting for operations in flight");
    let client_result = clients
        .await
        .map_err(|e| format!("the clients failed: {e}"));
    progress.abort();
    let events = nemesis.events().to_vec();
    write_events(&out.join("nemesis.jsonl"), &events)?;
    fault_result.map_err(|e| format!("the nemesis could not act: {e}"))?;
    client_result?.map_err(|e| format!("the clients failed: {e}"))?;

    println!("tally-jepsen: healing: network whole, clocks right, every node running");
    heal(&cluster, &kinds, nodes)?;
    converge(&addresses[..nodes], nodes, args.partitions).await;
    let collected = workload.collect(nodes).await;
    let streamed = match &collected {
        Ok(end) => {
            let mut applied = std::collections::BTreeMap::new();
            for r in &end.replicas {
                let at = applied.entry(r.partition).or_insert(0);
                *at = r.applied.max(*at);
            }
            Some(consumer.finish(&applied).await)
        }
        Err(_) => None,
    };
    let ops = recorder.ops();
    history::write_history(&out.join("history.jsonl"), &ops)
        .map_err(|e| format!("history.jsonl: {e}"))?;
    lock(&cluster).stop_all();
    let checks = match collected {
        Ok(end) => {
            write_json(&out.join("final.json"), &end)?;
            let mut checks = checks::check_all(&run.workload, &ops, &end);
            checks.push(match streamed {
                Some(Ok(changes)) => {
                    write_stream(&out.join("stream.jsonl"), &changes)?;
                    checks::stream::check(&changes, &end)
                }
                Some(Err(e)) => checks::stream::failed(&e),
                None => checks::stream::failed("the read-back failed"),
            });
            checks
        }
        // Every fault was healed and every node runs: a cluster that still cannot answer
        // has lost availability for good, which is a failure, not a run that went wrong.
        Err(e) => vec![checks::unavailable(&e)],
    };
    finish(&out, &run, &ops, &events, checks)
}

fn lock(cluster: &Mutex<Cluster>) -> std::sync::MutexGuard<'_, Cluster> {
    cluster.lock().unwrap_or_else(|e| e.into_inner())
}

/// Undoes every fault: the network whole, clocks right, every node resumed and running.
fn heal(cluster: &Mutex<Cluster>, kinds: &[String], nodes: usize) -> Result<(), Unmade> {
    if kinds.iter().any(|k| k == "partition" || k == "loss") {
        nemesis::heal_network()?;
    }
    let mut cluster = lock(cluster);
    for i in 1..=nodes {
        std::fs::write(cluster.clock_file(i), "+0\n").map_err(|e| format!("clock file: {e}"))?;
        let _ = std::fs::remove_file(cluster.filler(i));
        if cluster.is_paused(i) {
            cluster.pause(i, false);
        }
        if !cluster.is_running(i) {
            println!("tally-jepsen: node {i} was not running; restarting it");
            cluster.kill(i);
            cluster.start(i, Start::Normal)?;
        }
    }
    Ok(())
}

/// Waits (up to a deadline) until every node reports every partition at the same applied
/// index and digest, none recovering; the replicas check judges what it finds either way.
async fn converge(addresses: &[String], nodes: usize, partitions: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let replicas = workload::replicas(addresses).await;
        let complete = replicas.len() == nodes * partitions as usize;
        let agreed = (0..partitions).all(|p| {
            let of: Vec<_> = replicas.iter().filter(|r| r.partition == p).collect();
            of.iter()
                .all(|r| !r.recovering && r.applied == of[0].applied && r.digest == of[0].digest)
        });
        if complete && agreed {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            println!("tally-jepsen: the replicas did not converge within 120 s; judging anyway");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), Unmade> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()).into())
}

fn write_stream(path: &Path, changes: &[stream::StreamChange]) -> Result<(), Unmade> {
    let mut text = String::new();
    for change in changes {
        text.push_str(&serde_json::to_string(change).map_err(|e| format!("{e}"))?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn write_events(path: &Path, events: &[Event]) -> Result<(), Unmade> {
    let mut text = String::new();
    for e in events {
        text.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Writes results and report, prints the verdict, and picks the exit status.
fn finish(
    out: &Path,
    run: &RunInfo,
    ops: &[history::Op],
    events: &[Event],
    checks: Vec<Check>,
) -> Result<ExitCode, Unmade> {
    let results: Results = report::results(run, ops, events, checks);
    write_json(&out.join("results.json"), &results)?;
    report::write_html(out, &results, ops, events)?;
    for check in &results.checks {
        let verdict = match check.valid {
            Some(true) => "ok",
            Some(false) => "FAILED",
            None => "undecided",
        };
        let counts: Vec<String> = check
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("  {:<22} {verdict:<9} {}", check.name, counts.join(", "));
        for error in &check.errors {
            println!("      {error}");
        }
    }
    let a = &results.availability;
    println!(
        "  what each fault cost (quiet median {} writes/s; gap and counts to 5 s after heal):",
        a.quiet_writes_per_s
    );
    for f in &a.faults {
        println!(
            "    {:>7.1} s {:<10} {:>5} writes/s ({:>3}%), longest gap {:.2} s, {} errors, \
             {} indeterminate — {}",
            f.start_ms as f64 / 1e3,
            f.kind,
            f.writes_per_s,
            f.percent_of_quiet,
            f.longest_gap_ms as f64 / 1e3,
            f.errors,
            f.indeterminate,
            f.detail
        );
    }
    let report = out.join("report.html");
    match results.valid {
        Some(true) => {
            println!("tally-jepsen: valid; report {}", report.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(false) => {
            println!("tally-jepsen: INVALID; report {}", report.display());
            Ok(ExitCode::from(1))
        }
        None => Err(format!(
            "some checks could not decide (see above); report {}",
            report.display()
        )
        .into()),
    }
}

/// `check DIR`: judges a stored run again.
fn recheck(dir: &Path) -> Result<ExitCode, Unmade> {
    let read = |name: &str| -> Result<String, Unmade> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()).into())
    };
    let run: RunInfo =
        serde_json::from_str(&read("run.json")?).map_err(|e| format!("run.json: {e}"))?;
    let end: Final =
        serde_json::from_str(&read("final.json")?).map_err(|e| format!("final.json: {e}"))?;
    let ops = history::read_history(&dir.join("history.jsonl"))?;
    let mut events = Vec::new();
    for (n, line) in read("nemesis.jsonl")?.lines().enumerate() {
        if !line.trim().is_empty() {
            events.push(
                serde_json::from_str(line)
                    .map_err(|e| format!("nemesis.jsonl line {}: {e}", n + 1))?,
            );
        }
    }
    let mut checks = checks::check_all(&run.workload, &ops, &end);
    // Runs made before the stream consumer have no stream.jsonl.
    if let Ok(text) = std::fs::read_to_string(dir.join("stream.jsonl")) {
        let mut changes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            changes.push(
                serde_json::from_str(line)
                    .map_err(|e| format!("stream.jsonl line {}: {e}", n + 1))?,
            );
        }
        checks.push(checks::stream::check(&changes, &end));
    }
    finish(dir, &run, &ops, &events, checks)
}

/// `check --self-test`.
fn self_test(seeds: u64) -> ExitCode {
    let outcomes = checks::self_test::run(1..=seeds);
    let mut failed = false;
    for &checker in checks::self_test::CHECKERS {
        let mine: Vec<_> = outcomes.iter().filter(|o| o.checker == checker).collect();
        let bad: Vec<_> = mine.iter().filter(|o| !o.passed()).collect();
        println!(
            "  {checker:<22} {}/{} seeds: right history valid, defective one caught",
            mine.len() - bad.len(),
            mine.len()
        );
        for o in bad {
            failed = true;
            println!(
                "      seed {}: right history {:?}, defective ({}) {:?}",
                o.seed, o.good, o.defect, o.bad
            );
        }
    }
    if failed {
        println!("tally-jepsen: the self-test FAILED");
        ExitCode::from(1)
    } else {
        println!("tally-jepsen: the self-test passed");
        ExitCode::SUCCESS
    }
}
