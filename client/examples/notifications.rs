//! Notifications: follow the change stream and tell each player about the points they
//! received. Every transfer that moved posted money to an account (a plain transfer, or a
//! post of a hold) prints one line for the credited account, with the amount and the
//! account's posted balance right after it, and the change's position: a notification
//! service would store that position per partition and resume after it
//! (`StreamFrom::After`) when it restarts, so that no player is notified twice or missed.
//! Refusals, holds, voids, refunds and expiries credit nobody posted money and print nothing.
//!
//! Run: `cargo run -p tally-client --example notifications -- 127.0.0.1:3000 [POSITION,...]`
//! (positions as `PARTITION:INDEX.EVENT`, e.g. `0:1234.5`; without them the stream starts
//! from the whole history). It runs until Ctrl-C, or until the stream ends with an error.

mod common;

use rust_decimal::Decimal;
use tally_client::{
    to_decimal, Change, ChangeBody, Position, StreamFilter, StreamFrom, Streamed, TransferKind,
    TransferResult,
};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("notifications example failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> common::Result<()> {
    let from = match std::env::args().nth(2) {
        Some(text) => StreamFrom::After(
            text.split(',')
                .map(|p| p.trim().parse::<Position>())
                .collect::<Result<_, _>>()?,
        ),
        None => StreamFrom::Start,
    };
    let client = common::connect().await?;
    let mut subscription = client.subscribe(from, StreamFilter::default());
    loop {
        let item = tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted");
                return Ok(());
            }
            item = subscription.recv() => item,
        };
        match item {
            Some(Ok(Streamed::Change(change))) => {
                if let Some(line) = notification(&change) {
                    println!("{line}");
                }
            }
            Some(Ok(Streamed::CaughtUp(positions))) => {
                let at: Vec<String> = positions.iter().map(Position::to_string).collect();
                eprintln!("caught up at {}; waiting for more", at.join(","));
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Ok(()),
        }
    }
}

/// The line for a change that credited posted money to an account, or `None`.
fn notification(change: &Change) -> Option<String> {
    let ChangeBody::Transfer(transfer) = &change.body else {
        return None;
    };
    if transfer.result != TransferResult::Ok
        || !matches!(transfer.kind, TransferKind::Plain | TransferKind::Post)
    {
        return None;
    }
    let scale = transfer.scale;
    let balances = &transfer.credit_balances;
    // Past what `Decimal` holds (about 7.9e28 minor units), say it in minor units.
    let amount = to_decimal(transfer.amount, scale).map_or_else(
        || format!("{} minor units", transfer.amount),
        |d| d.to_string(),
    );
    let balance = to_decimal(balances.credits_posted, scale)
        .zip(to_decimal(balances.debits_posted, scale))
        .and_then(|(credits, debits)| credits.checked_sub(debits))
        .map_or_else(
            || {
                format!(
                    "{} - {} minor units",
                    balances.credits_posted, balances.debits_posted
                )
            },
            |d: Decimal| d.to_string(),
        );
    Some(format!(
        "notify user {}: +{amount} points (balance {balance}) at position {}",
        transfer.credit_account, change.position
    ))
}
