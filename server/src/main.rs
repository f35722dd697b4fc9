//! The `tally` binary.
//!
//! Today it drives the engine directly: `tally demo` runs the game-backend use cases against a
//! durable single-partition store in a data directory. The network server (`tally start`),
//! replication and operator commands arrive with their issues; until then they do not exist
//! here rather than pretend.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tally: a replicated, append-only ledger database for game and app backends.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the use cases (credits, shop, rewards, transfers) against a local durable store,
    /// printing every result; run it twice to see recovery and idempotent retries.
    Demo {
        /// Where the store lives (created if missing).
        #[arg(long, default_value = "tally-data")]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { data } => demo::run(&data),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
