//! Credits: add credits to a player, spend them (never more than the balance), refund part
//! of a spend (never more than was spent), retry safely, and audit the player's history.
//!
//! Run against a node: `cargo run -p tally-client --example credits -- 127.0.0.1:3000`.

mod common;

use common::*;
use rust_decimal::Decimal;
use tally_client::{AccountFlags, Direction, HistoryQuery, TransferResult};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("credits example failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let client = connect().await?;
    let gems = create_ledger(&client, "GEMS", 0).await?;
    let player = account_id(&client, None);
    let issuer = account_id(&client, Some(player));
    let revenue = account_id(&client, Some(player));
    create_accounts(
        &client,
        vec![
            ("issuer", new_account(issuer, gems, 1, 0)),
            (
                "player (no overdraft)",
                new_account(
                    player,
                    gems,
                    2,
                    AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
                ),
            ),
            ("revenue", new_account(revenue, gems, 3, 0)),
        ],
    )
    .await?;

    println!("\nadd 100 gems (a purchase in the app store):");
    let purchase = transfer(issuer, player, Decimal::from(100), gems);
    let first = client.create_transfer(purchase.clone()).await?;
    report("issuer -> player 100", &first);

    println!("\nthe store callback arrives twice; the retry reuses the transfer id:");
    let again = client.create_transfer(purchase).await?;
    println!(
        "  same outcome, applied once: {} (stamped {}, and the retry's answer {})",
        again == first,
        first.timestamp.utc(),
        again.timestamp.utc()
    );

    println!("\nspend:");
    let spend = transfer(player, revenue, Decimal::from(30), gems);
    report(
        "player -> revenue 30 (buy a skin)",
        &client.create_transfer(spend.clone()).await?,
    );
    let too_much = transfer(player, revenue, Decimal::from(500), gems);
    let outcome = client.create_transfer(too_much).await?;
    report("player -> revenue 500", &outcome);
    assert_eq!(outcome.result, TransferResult::ExceedsCredits);

    println!("\nrefund part of the 30-gem spend:");
    report(
        "refund 10 of it",
        &client
            .create_transfer(refund(spend.id, Decimal::from(10)))
            .await?,
    );
    let over = client
        .create_transfer(refund(spend.id, Decimal::from(25)))
        .await?;
    report("refund 25 more (only 20 left)", &over);
    report(
        "refund the last 20",
        &client
            .create_transfer(refund(spend.id, Decimal::from(20)))
            .await?,
    );

    println!("\nbalances:");
    show_balances(
        &client,
        &[("issuer", issuer), ("player", player), ("revenue", revenue)],
    )
    .await?;

    println!("\naudit: the player's history, oldest first, with the balance after each entry:");
    let page = client
        .account_history(HistoryQuery {
            account: player,
            cursor: 0,
            limit: 100,
            direction: Direction::Forward,
            time_min: None,
            time_max: None,
        })
        .await?;
    for entry in &page.entries {
        let sign = if entry.is_debit { "-" } else { "+" };
        let balance = available(&entry.balances, page.scale);
        println!(
            "  {}  {:<7} {sign}{:<5} balance {balance:>5}  (transfer {})",
            entry.timestamp.utc(),
            entry.kind.name(),
            entry.amount,
            entry.transfer_id.0
        );
    }
    Ok(())
}
