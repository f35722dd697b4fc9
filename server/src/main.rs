//! The `tally` binary.
//!
//! - `tally start`: run a node (single node by default, or one of a cluster with `--peers`).
//! - `tally demo`: the game-backend use cases against a durable single-partition store in a
//!   data directory, driving the engine directly.
//! - Operator commands over the client protocol (`ledger`, `account`, `transfer`, `history`,
//!   `flows`, `series`) and the load generator `tally bench`: see [`cli`].

mod cli;
mod demo;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tally_server::config::NodeConfig;

/// Tally: a replicated, append-only ledger database for game and app backends.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Start a node. With no arguments: a single-node cluster on 127.0.0.1:3000 with its data
    /// in ./tally-data. Prints the address it listens on.
    Start(StartArgs),
    /// Run the use cases (credits, shop, rewards, transfers) against a local durable store,
    /// printing every result; run it twice to see recovery and idempotent retries.
    Demo {
        /// Where the store lives (created if missing).
        #[arg(long, default_value = "tally-data")]
        data: PathBuf,
    },
    /// Serve credits, a shop, rewards and transfers over HTTP (JSON, OpenAPI at
    /// /openapi.json) on a cluster: `tally gateway --tally ADDR --listen ADDR --config FILE`.
    Gateway(GatewayArgs),
    #[command(flatten)]
    Operator(cli::Command),
}

/// Flags of `tally gateway`.
#[derive(clap::Args)]
struct GatewayArgs {
    /// A node of the cluster (repeat the flag or give a comma-separated list).
    #[arg(long, required = true, value_delimiter = ',')]
    tally: Vec<String>,
    /// Where to serve HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The services, games, catalog and limits (docs/gateway.md).
    #[arg(long)]
    config: PathBuf,
}

fn run_gateway(args: GatewayArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let config = tally_gateway::GatewayConfig::parse(&text)
        .map_err(|e| format!("{}: {e}", args.config.display()))?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(tally_gateway::serve(config, &args.tally, args.listen))
}

/// Flags of `tally start`; each overrides the config file's value.
#[derive(clap::Args)]
struct StartArgs {
    /// A TOML config file (its keys are the flags' names with `_`, and `data_dir` for
    /// --data; README, "Operations"); flags given override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address for clients [default: 127.0.0.1:3000].
    #[arg(long)]
    address: Option<SocketAddr>,
    /// Data directory [default: ./tally-data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// This node's id in `--peers` [default: 1].
    #[arg(long)]
    node_id: Option<u64>,
    /// The peer address of every node of the cluster, this one included (where it listens
    /// for peers and binds its outgoing peer connections): `1=127.0.0.2:7100,2=...`.
    #[arg(long)]
    peers: Option<String>,
    /// A file holding the cluster secret (at least 16 bytes), the same on every node; needed
    /// with more than one node in --peers.
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// Partitions (fixed at cluster creation) [default: 1].
    #[arg(long)]
    partitions: Option<u32>,
    /// Milliseconds per Raft tick [default: 100].
    #[arg(long)]
    tick_ms: Option<u64>,
    /// Ticks without a leader before an election; each node adds its own spread
    /// [default: 10].
    #[arg(long)]
    election_ticks: Option<usize>,
    /// Ticks between heartbeats [default: 2].
    #[arg(long)]
    heartbeat_ticks: Option<usize>,
    /// Requests waiting per partition before the node answers `overloaded` [default: 1024].
    #[arg(long)]
    queue_depth_max: Option<usize>,
    /// Applied entries between checkpoints [default: 20000].
    #[arg(long)]
    checkpoint_interval_entries: Option<u64>,
    /// Client connections served at once; past it the idlest is closed [default: 1024].
    #[arg(long)]
    connections_max: Option<usize>,
    /// Transfer records each partition keeps in memory; older ones are read from
    /// transfer run files on disk (0: keep every record in memory) [default: 1048576].
    #[arg(long)]
    transfers_memory_max: Option<usize>,
    /// Largest log segment file in bytes (4096 to 1073741824; default 64 MiB).
    #[arg(long)]
    segment_size_max: Option<u64>,
    /// Bytes of changes that may commit while a change stream's consumer reads nothing;
    /// past it the stream ends `TooSlow` and the consumer resumes from disk
    /// [default: 67108864].
    #[arg(long)]
    stream_behind_bytes_max: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics, with /healthz and /readyz beside
    /// them (docs/operations.md, "Metrics") [default: none].
    #[arg(long)]
    metrics_address: Option<SocketAddr>,
    /// Tests of test harnesses only: plant a bug (skip-fsync, apply-before-commit,
    /// skip-vote, lease-reads), so that a chaos harness can prove it notices. Loses data.
    #[arg(long, hide = true)]
    unsafe_bug: Vec<tally_server::config::UnsafeBug>,
    /// Log lines as text (coloured only on a terminal) or as JSON objects, one per line.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// How `tally start` writes its log (on stderr).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { data } => demo::run(&data),
        Command::Operator(command) => cli::run(command),
        Command::Gateway(args) => run_gateway(args),
        Command::Start(args) => {
            let format = args.log_format;
            node_config(args).and_then(|config| run_node(config, format))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse_peers(text: &str) -> Result<BTreeMap<u64, SocketAddr>, String> {
    let mut peers = BTreeMap::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let (id, address) = part
            .split_once('=')
            .ok_or_else(|| format!("--peers: expected ID=ADDRESS, got {part:?}"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("--peers: bad node id {id:?}"))?;
        let address: SocketAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("--peers: bad address {address:?}"))?;
        if peers.insert(id, address).is_some() {
            return Err(format!("--peers: node {id} listed twice"));
        }
    }
    Ok(peers)
}

fn node_config(args: StartArgs) -> Result<NodeConfig, String> {
    let StartArgs {
        config: file,
        address,
        data,
        node_id,
        peers,
        cluster_secret_file,
        partitions,
        tick_ms,
        election_ticks,
        heartbeat_ticks,
        queue_depth_max,
        checkpoint_interval_entries,
        connections_max,
        transfers_memory_max,
        segment_size_max,
        stream_behind_bytes_max,
        metrics_address,
        unsafe_bug,
        log_format: _,
    } = args;
    let default_address: SocketAddr = ([127, 0, 0, 1], 3000).into();
    let mut config = match &file {
        Some(path) => NodeConfig::from_file(path).map_err(|e| e.to_string())?,
        None => NodeConfig::single_node(default_address, PathBuf::from("tally-data")),
    };
    if let Some(node_id) = node_id {
        config.node_id = node_id;
    }
    if let Some(address) = address {
        config.address = address;
    }
    if let Some(peers) = peers {
        config.peers = parse_peers(&peers)?;
    } else if file.is_none() {
        config.peers = BTreeMap::from([(config.node_id, config.address)]);
    }
    if let Some(data) = data {
        config.data_dir = data;
    }
    if let Some(path) = cluster_secret_file {
        config.cluster_secret_file = Some(path);
    }
    if let Some(partitions) = partitions {
        config.partitions = partitions;
    }
    if let Some(tick_ms) = tick_ms {
        config.tick_ms = tick_ms;
    }
    if let Some(ticks) = election_ticks {
        config.election_ticks = ticks;
    }
    if let Some(ticks) = heartbeat_ticks {
        config.heartbeat_ticks = ticks;
    }
    if let Some(depth) = queue_depth_max {
        config.queue_depth_max = depth;
    }
    if let Some(entries) = checkpoint_interval_entries {
        config.checkpoint_interval_entries = entries;
    }
    if let Some(max) = connections_max {
        config.connections_max = max;
    }
    if let Some(max) = transfers_memory_max {
        config.transfers_memory_max = max;
    }
    if let Some(max) = segment_size_max {
        config.segment_size_max = max;
    }
    if let Some(max) = stream_behind_bytes_max {
        config.stream_behind_bytes_max = max;
    }
    if let Some(address) = metrics_address {
        config.metrics_address = Some(address);
    }
    config.unsafe_bugs = unsafe_bug;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn run_node(config: NodeConfig, log_format: LogFormat) -> Result<(), String> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Json => logs.json().init(),
        // Colours only for a person at a terminal, never in a file.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let mut node = tally_server::node::start(config.clone()).await?;
        // The one line scripts wait for: where to connect.
        // (Written, not printed: a reader that stops after the first line must not kill the
        // node with a broken pipe.)
        use std::io::Write;
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "tally listening on {}", node.address);
        if let Some(metrics) = node.metrics_address {
            let _ = writeln!(stdout, "tally metrics on http://{metrics}/metrics");
        }
        let _ = stdout.flush();
        tracing::info!(
            node_id = config.node_id,
            partitions = config.partitions,
            data = %config.data_dir.display(),
            peers = ?node.peer_address,
            "node started"
        );
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
        let failure = tokio::select! {
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: shutting down");
                None
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupt: shutting down");
                None
            }
            reason = node.failed() => Some(reason),
        };
        if let Some(reason) = failure {
            // Storage failed (or bringing a partition up did): stop at once rather than serve
            // from a disk that cannot be trusted. Everything acknowledged is durable already.
            return Err(reason);
        }
        tokio::task::spawn_blocking(move || node.stop())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}
