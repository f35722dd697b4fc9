//! Rewards: earn points, reserve some with a pending hold (which expires on its own if never
//! completed), complete a reservation by posting it or release it by voiding it; a second
//! reservation can never spend points already held. Ends with a burst of concurrent
//! single-transfer calls, which the client coalesces into a few batches.
//!
//! Run: `cargo run -p tally-client --example rewards -- 127.0.0.1:3000`.

mod common;

use std::time::Instant;

use common::*;
use rust_decimal::Decimal;
use tally_client::{AccountFlags, TransferResult};

/// Concurrent earn calls in the burst.
const BURST_CALLS: u32 = 2000;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("rewards example failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let client = connect().await?;
    let points = create_ledger(&client, "POINTS", 0).await?;
    let player = account_id(&client, None);
    let program = account_id(&client, Some(player));
    let redeemed = account_id(&client, Some(player));
    create_accounts(
        &client,
        vec![
            ("rewards program", new_account(program, points, 1, 0)),
            (
                "player points",
                new_account(
                    player,
                    points,
                    2,
                    AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                ),
            ),
            ("redemptions", new_account(redeemed, points, 3, 0)),
        ],
    )
    .await?;

    println!("\nearn:");
    for (why, amount) in [
        ("daily login", 20),
        ("quest complete", 50),
        ("referral", 30),
    ] {
        let earn = transfer(program, player, Decimal::from(amount), points);
        report(
            &format!("+{amount} for {why}"),
            &client.create_transfer(earn).await?,
        );
    }

    println!("\nreserve 60 points for a reward (hold, expires in 120 s if not completed):");
    let reservation = hold(player, redeemed, Decimal::from(60), points, 120);
    report(
        "reserve 60",
        &client.create_transfer(reservation.clone()).await?,
    );
    show_balances(&client, &[("player", player)]).await?;

    println!("\na second reservation of 60 while the first holds: no double spend");
    let second = hold(player, redeemed, Decimal::from(60), points, 120);
    let outcome = client.create_transfer(second).await?;
    report("reserve 60 more", &outcome);
    assert_eq!(outcome.result, TransferResult::ExceedsCredits);

    println!("\ncomplete the reservation (post) and retry the completion (same id):");
    let complete = settle(reservation.id, true);
    report(
        "post reservation",
        &client.create_transfer(complete.clone()).await?,
    );
    report(
        "post again (retry)",
        &client.create_transfer(complete).await?,
    );
    let twice = settle(reservation.id, false);
    report(
        "void the posted hold",
        &client.create_transfer(twice).await?,
    );

    println!("\nreserve 30 and release it (void):");
    let release_me = hold(player, redeemed, Decimal::from(30), points, 120);
    report(
        "reserve 30",
        &client.create_transfer(release_me.clone()).await?,
    );
    report(
        "release (void)",
        &client.create_transfer(settle(release_me.id, false)).await?,
    );
    show_balances(&client, &[("player", player), ("redemptions", redeemed)]).await?;

    println!("\nburst: {BURST_CALLS} concurrent 'earn 1 point' calls, coalesced into batches:");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..BURST_CALLS {
        let client = client.clone();
        let earn = transfer(program, player, Decimal::ONE, points);
        tasks.push(tokio::spawn(
            async move { client.create_transfer(earn).await },
        ));
    }
    let mut ok = 0u32;
    for task in tasks {
        if task.await?.map(|o| o.result == TransferResult::Ok)? {
            ok += 1;
        }
    }
    let elapsed = start.elapsed();
    println!(
        "  {ok}/{BURST_CALLS} ok in {:.1} ms ({:.0} transfers/s)",
        elapsed.as_secs_f64() * 1e3,
        f64::from(BURST_CALLS) / elapsed.as_secs_f64()
    );
    show_balances(&client, &[("player", player)]).await?;
    Ok(())
}
