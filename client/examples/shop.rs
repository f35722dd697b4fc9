//! Game shop: a purchase of two items is one linked chain (a hold on the credits plus one
//! pending leg per item), so the charge and the entitlements succeed or fail together. The
//! purchase completes by posting all three holds, again as one chain; then the shield is
//! refunded: its credits go back and its entitlement is revoked, atomically.
//!
//! Each item SKU is its own ledger (scale 0): owning the item is a balance of 1 there.
//! Run: `cargo run -p tally-client --example shop -- 127.0.0.1:3000`.

mod common;

use common::*;
use rust_decimal::Decimal;
use tally_client::{AccountFlags, TransferResult};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("shop example failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let client = connect().await?;
    let credits = create_ledger(&client, "CREDITS", 0).await?;
    let sword = create_ledger(&client, "ITEM:SWORD", 0).await?;
    let shield = create_ledger(&client, "ITEM:SHIELD", 0).await?;

    let wallet = account_id(&client, None);
    let issuer = account_id(&client, Some(wallet));
    let revenue = account_id(&client, Some(wallet));
    let sword_stock = account_id(&client, Some(wallet));
    let shield_stock = account_id(&client, Some(wallet));
    let player_sword = account_id(&client, Some(wallet));
    let player_shield = account_id(&client, Some(wallet));
    let no_overdraft = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
    create_accounts(
        &client,
        vec![
            ("credits issuer", new_account(issuer, credits, 1, 0)),
            (
                "player wallet",
                new_account(wallet, credits, 2, no_overdraft),
            ),
            ("shop revenue", new_account(revenue, credits, 3, 0)),
            ("sword stock", new_account(sword_stock, sword, 10, 0)),
            ("shield stock", new_account(shield_stock, shield, 10, 0)),
            ("player's sword", new_account(player_sword, sword, 11, 0)),
            ("player's shield", new_account(player_shield, shield, 11, 0)),
        ],
    )
    .await?;

    println!("\nthe player buys 500 credits:");
    let topup = transfer(issuer, wallet, Decimal::from(500), credits);
    report(
        "issuer -> wallet 500",
        &client.create_transfer(topup).await?,
    );

    // Prices come from the server side (the shop's catalogue), never from the game client.
    let (sword_price, shield_price) = (Decimal::from(150), Decimal::from(100));
    println!("\npurchase PENDING: sword ({sword_price}) + shield ({shield_price}), one chain:");
    let charge = linked(hold(
        wallet,
        revenue,
        sword_price + shield_price,
        credits,
        300,
    ));
    let sword_leg = linked(hold(sword_stock, player_sword, Decimal::ONE, sword, 300));
    let shield_leg = hold(shield_stock, player_shield, Decimal::ONE, shield, 300);
    let chain = vec![charge.clone(), sword_leg.clone(), shield_leg.clone()];
    let outcomes = client.create_transfers(chain).await?;
    let names = ["hold 250 credits", "hold sword", "hold shield"];
    for (name, outcome) in names.iter().zip(&outcomes) {
        report(name, outcome);
    }
    show_balances(
        &client,
        &[("wallet", wallet), ("player's sword", player_sword)],
    )
    .await?;

    println!("\na second purchase of the same cart would overdraw: the whole chain fails");
    let greedy = vec![
        linked(hold(wallet, revenue, Decimal::from(400), credits, 300)),
        hold(sword_stock, player_sword, Decimal::ONE, sword, 300),
    ];
    for outcome in client.create_transfers(greedy).await? {
        report("leg", &outcome);
    }

    println!("\npurchase COMPLETED: post the three holds together:");
    let post_charge = linked(settle(charge.id, true));
    let post_sword = linked(settle(sword_leg.id, true));
    let post_shield = settle(shield_leg.id, true);
    let outcomes = client
        .create_transfers(vec![post_charge.clone(), post_sword, post_shield.clone()])
        .await?;
    for (name, outcome) in ["post credits", "post sword", "post shield"]
        .iter()
        .zip(&outcomes)
    {
        report(name, outcome);
    }

    println!("\npartial refund: return the shield's {shield_price} credits and revoke it:");
    let refund_credits = linked(refund(post_charge.id, shield_price));
    let revoke_shield = refund(post_shield.id, Decimal::ONE);
    let outcomes = client
        .create_transfers(vec![refund_credits, revoke_shield])
        .await?;
    for (name, outcome) in ["refund credits", "revoke shield"].iter().zip(&outcomes) {
        report(name, outcome);
    }
    if outcomes.iter().any(|o| o.result != TransferResult::Ok) {
        println!("  (a linked chain: neither leg applied)");
    }

    println!("\nbalances:");
    show_balances(
        &client,
        &[
            ("player wallet", wallet),
            ("shop revenue", revenue),
            ("player's sword", player_sword),
            ("player's shield", player_shield),
        ],
    )
    .await?;
    Ok(())
}
