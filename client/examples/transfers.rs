//! Transfers: players send in-game coins to each other (double entry: every transfer debits
//! one account and credits another), then the app asks for one player's money in and out over
//! the past 24 hours and their hourly balance over the past 30 days.
//!
//! The two query operations may not be implemented by every server yet; their errors are
//! printed, not fatal. Run: `cargo run -p tally-client --example transfers -- 127.0.0.1:3000`.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use rust_decimal::Decimal;
use tally_client::{to_decimal, AccountFlags, FlowsQuery, SeriesQuery, Timestamp};

const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("transfers example failed: {e}");
        std::process::exit(1);
    }
}

fn nanos(time: SystemTime) -> Timestamp {
    let ns = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Timestamp(u64::try_from(ns).unwrap_or(u64::MAX))
}

fn amount(minor: u128, scale: u8) -> String {
    to_decimal(minor, scale).map_or_else(|| format!("{minor} minor units"), |d| d.to_string())
}

async fn run() -> Result<()> {
    let client = connect().await?;
    let coins = create_ledger(&client, "COINS", 2).await?;
    let alice = account_id(&client, None);
    let bob = account_id(&client, Some(alice));
    let carol = account_id(&client, Some(alice));
    let mint = account_id(&client, Some(alice));
    let no_overdraft = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    create_accounts(
        &client,
        vec![
            ("mint", new_account(mint, coins, 1, 0)),
            ("alice", new_account(alice, coins, 2, no_overdraft)),
            ("bob", new_account(bob, coins, 2, no_overdraft)),
            ("carol", new_account(carol, coins, 2, no_overdraft)),
        ],
    )
    .await?;

    println!("\nstarting balances:");
    let grants = vec![
        transfer(mint, alice, Decimal::new(10_000, 2), coins),
        transfer(mint, bob, Decimal::new(5_000, 2), coins),
        transfer(mint, carol, Decimal::new(2_500, 2), coins),
    ];
    for outcome in client.create_transfers(grants).await? {
        report("grant", &outcome);
    }

    println!("\nplayer-to-player transfers:");
    let moves = [
        ("alice -> bob   12.34", alice, bob, Decimal::new(1_234, 2)),
        ("bob   -> alice  5.00", bob, alice, Decimal::new(500, 2)),
        ("alice -> carol 20.00", alice, carol, Decimal::new(2_000, 2)),
        ("carol -> bob   99.99", carol, bob, Decimal::new(9_999, 2)),
        ("carol -> alice  0.01", carol, alice, Decimal::new(1, 2)),
        ("bob   -> alice 0.005", bob, alice, Decimal::new(5, 3)),
    ];
    for (what, from, to, value) in moves {
        report(
            what,
            &client
                .create_transfer(transfer(from, to, value, coins))
                .await?,
        );
    }
    show_balances(&client, &[("alice", alice), ("bob", bob), ("carol", carol)]).await?;

    let now = SystemTime::now();
    println!("\nalice's flows over the past 24 hours:");
    let flows = client
        .account_flows(FlowsQuery {
            account: alice,
            time_min: nanos(now - DAY),
            time_max: nanos(now + Duration::from_secs(60)),
        })
        .await;
    match flows {
        Ok(f) => println!(
            "  in  {}\n  out {}",
            amount(f.credits_total, f.scale),
            amount(f.debits_total, f.scale)
        ),
        Err(e) => println!("  account_flows is not available: {e}"),
    }

    println!("\nalice's hourly closing balance over the past 30 days:");
    let series = client
        .balance_series(SeriesQuery {
            account: alice,
            time_min: nanos(now - 30 * DAY),
            time_max: nanos(now),
        })
        .await;
    match series {
        Ok(series) => {
            println!("  {} hourly points; the last three:", series.points.len());
            let skip = series.points.len().saturating_sub(3);
            for point in &series.points[skip..] {
                let b = &point.balances;
                let net = b.credits_posted.saturating_sub(b.debits_posted);
                println!(
                    "  hour starting {}: {}",
                    point.time_start,
                    amount(net, series.scale)
                );
            }
        }
        Err(e) => println!("  balance_series is not available: {e}"),
    }
    Ok(())
}
