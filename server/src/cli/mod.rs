//! Operator commands and the load generator: the `tally` subcommands that speak to a running
//! cluster through `tally-client` instead of running a node.
//!
//! - [`ops`]: `ledger create`, `account create|show`, `transfer` (create) and `transfer show`,
//!   `history`, `flows`, `series`. Each connects, sends one request, prints the answer and
//!   exits.
//! - [`batch`]: `tally batch`, transfers from JSON lines in one request (linked chains).
//! - [`mod@bench`]: `tally bench`, a load generator in the manner of TigerBeetle's benchmark.
//! - [`status`]: `tally status`, how every node and partition of the cluster stands.
//! - [`subscribe`]: `tally subscribe`, the change stream, one line per change.
//!
//! Shared here: the `--address` and `--json` flags, clap value parsers for ids and amounts,
//! and the formatting of minor units, balances and timestamps.
//!
//! Output: by default a few human-readable lines; with `--json` one JSON object per line on
//! stdout (ids, `u128` values and amounts as strings, so that no JSON reader rounds them).
//! Every failure — a flag clap refuses, an unreachable cluster, a server error, a ledger
//! rejection — ends with `error: …` on stderr and a non-zero exit code (clap's usage errors
//! exit with 2, everything else with 1), so scripts can rely on `$?`.
//!
//! Deliberate omissions: no interactive REPL, no config file for these commands, no
//! pagination loop in `history` (it prints one page and the cursor of the next).

pub mod batch;
pub mod bench;
pub mod ops;
pub mod status;
pub mod subscribe;

use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use rust_decimal::Decimal;
use tally_client::{Balances, Client, ClientOptions};

/// Where the operator commands connect when `--address` is not given.
pub const ADDRESS_DEFAULT: &str = "127.0.0.1:3000";

/// The subcommands of this module, flattened into the binary's command list.
#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap derive"
)]
pub enum Command {
    /// Create ledgers.
    #[command(subcommand)]
    Ledger(ops::LedgerCommand),
    /// Create or show accounts.
    #[command(subcommand)]
    Account(ops::AccountCommand),
    /// Create a transfer (plain, pending hold, post, void or refund), or `transfer show ID...`.
    Transfer(ops::TransferArgs),
    /// Create transfers from JSON lines (a file, or `-` for stdin), sent as one request:
    /// `"linked": true` chains an event to the next, and a chain applies whole or not at all.
    /// Fields: id, from, to, amount, ledger, pending, timeout_s, post, void, refund_of,
    /// linked, code, user_data, memo (as `tally transfer`'s flags).
    Batch(batch::BatchArgs),
    /// One page of an account's history, with the balances after each entry.
    History(ops::HistoryArgs),
    /// An account's posted money in and out over the past hours.
    Flows(ops::FlowsArgs),
    /// An account's hourly closing balances over the past days.
    Series(ops::SeriesArgs),
    /// Load generator: create accounts, then send transfers and report throughput and latency.
    Bench(bench::BenchArgs),
    /// How the cluster stands: every node, each partition's leader and term, each replica's
    /// indexes, lag and inbox depth, and what is degraded.
    Status(status::StatusArgs),
    /// The change stream: every ledger, account and transfer decision, with the balances
    /// after, from a position or time, until caught up (or with --follow, until interrupted).
    Subscribe(subscribe::SubscribeArgs),
}

/// Runs one operator command or the benchmark to completion.
pub fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Bench(args) => bench::run(args),
        other => {
            let runtime = runtime()?;
            runtime.block_on(ops::run(other))
        }
    }
}

/// A multi-threaded tokio runtime for the client.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The flags every operator command takes.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// Node address (`host:port`); repeat the flag or give a comma-separated list. Any node
    /// will do: the client finds the leader.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = ADDRESS_DEFAULT,
        value_parser = parse_address,
    )]
    pub address: Vec<String>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Connection {
    /// Connects with the client's default options.
    pub async fn connect(&self) -> Result<Client, String> {
        Client::connect(&self.address, ClientOptions::default())
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.address.join(",")))
    }
}

/// A `host:port` address: a non-empty host and a port in 1..=65535. The host is resolved
/// later, by the client.
pub fn parse_address(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("expected host:port, got {text:?}"))?;
    if host.is_empty() {
        return Err(format!("no host in {text:?}"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(text.to_owned()),
        _ => Err(format!("bad port {port:?} in {text:?} (1..=65535)")),
    }
}

/// A 128-bit id: decimal, or hexadecimal with `0x`. Zero is never a valid id.
pub fn parse_id(text: &str) -> Result<u128, String> {
    let text = text.trim();
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u128::from_str_radix(hex, 16),
        None => text.parse::<u128>(),
    };
    match parsed {
        Ok(0) => Err("ids must not be zero".to_owned()),
        Ok(id) => Ok(id),
        Err(_) => Err(format!(
            "expected a 128-bit id (decimal or 0x hex), got {text:?}"
        )),
    }
}

/// An id given on the command line, or `new` for a fresh random one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdChoice {
    /// Generate one with `ids::new_id` (and print it).
    New,
    /// This id.
    Given(u128),
}

impl IdChoice {
    /// The id to use.
    pub fn resolve(self) -> u128 {
        match self {
            IdChoice::New => tally_client::ids::new_id(),
            IdChoice::Given(id) => id,
        }
    }
}

/// Parses `new` or an id (see [`parse_id`]).
pub fn parse_id_choice(text: &str) -> Result<IdChoice, String> {
    if text.trim().eq_ignore_ascii_case("new") {
        return Ok(IdChoice::New);
    }
    parse_id(text).map(IdChoice::Given)
}

/// A decimal amount (`10`, `10.50`). The sign and the number of decimals are checked by the
/// server against the ledger, which answers with a precise result code.
pub fn parse_decimal(text: &str) -> Result<Decimal, String> {
    text.trim()
        .parse::<Decimal>()
        .map_err(|e| format!("expected a decimal amount, got {text:?}: {e}"))
}

/// `minor` units of a ledger with `scale` decimals, written exactly (`1050`, 2 → `10.50`).
/// Works for every `u128`, where `Decimal` would overflow.
pub fn format_minor(minor: u128, scale: u8) -> String {
    let digits = minor.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, fraction) = padded.split_at(padded.len() - scale);
    format!("{whole}.{fraction}")
}

/// `credits - debits` with its sign, written like [`format_minor`].
pub fn format_signed(credits: u128, debits: u128, scale: u8) -> String {
    if credits >= debits {
        format_minor(credits - debits, scale)
    } else {
        format!("-{}", format_minor(debits - credits, scale))
    }
}

/// The posted balance an operator thinks of: posted credits minus posted debits.
pub fn net_posted(balances: &Balances, scale: u8) -> String {
    format_signed(balances.credits_posted, balances.debits_posted, scale)
}

/// One line for four balances: `posted -10.50 (debits 10.50/0.00 pending, credits …)`.
pub fn balances_line(balances: &Balances, scale: u8) -> String {
    format!(
        "balance {} (debits posted {} pending {}, credits posted {} pending {})",
        net_posted(balances, scale),
        format_minor(balances.debits_posted, scale),
        format_minor(balances.debits_pending, scale),
        format_minor(balances.credits_posted, scale),
        format_minor(balances.credits_pending, scale),
    )
}

/// The four balances and the net posted balance as a JSON object of decimal strings.
pub fn balances_json(balances: &Balances, scale: u8) -> serde_json::Value {
    serde_json::json!({
        "balance": net_posted(balances, scale),
        "debits_posted": format_minor(balances.debits_posted, scale),
        "debits_pending": format_minor(balances.debits_pending, scale),
        "credits_posted": format_minor(balances.credits_posted, scale),
        "credits_pending": format_minor(balances.credits_pending, scale),
    })
}

/// The wall clock in nanoseconds since the Unix epoch (the cluster stamps entries with its
/// leader's clock, so windows like "the past 24 hours" are computed against this).
pub fn now_ns() -> Result<u64, String> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?;
    u64::try_from(since.as_nanos()).map_err(|_| "the clock is past the year 2554".to_owned())
}

/// Prints one JSON object as one line on stdout.
pub fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_format_exactly() {
        assert_eq!(format_minor(1050, 2), "10.50");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(0, 3), "0.000");
        assert_eq!(format_minor(7, 0), "7");
        assert_eq!(
            format_minor(u128::MAX, 28),
            "34028236692.0938463463374607431768211455"
        );
        assert_eq!(format_signed(100, 250, 1), "-15.0");
        assert_eq!(format_signed(250, 100, 0), "150");
    }

    #[test]
    fn ids_and_addresses_parse_strictly() {
        assert_eq!(parse_id("42"), Ok(42));
        assert_eq!(parse_id("0xff"), Ok(255));
        assert!(parse_id("0").is_err());
        assert!(parse_id("-1").is_err());
        assert!(parse_id("abc").is_err());
        assert_eq!(parse_id_choice("new"), Ok(IdChoice::New));
        assert_eq!(parse_id_choice("9"), Ok(IdChoice::Given(9)));
        assert!(parse_address("127.0.0.1:3000").is_ok());
        assert!(parse_address("node-1:7").is_ok());
        assert!(parse_address("127.0.0.1").is_err());
        assert!(parse_address(":3000").is_err());
        assert!(parse_address("h:0").is_err());
        assert!(parse_address("h:70000").is_err());
    }
}
