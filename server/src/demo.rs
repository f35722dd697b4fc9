//! `tally demo`: the four use cases of DESIGN §1 run through the engine's durable store.
//!
//! Every step prints its result codes and the balances the engine returns. The transfer ids
//! are fixed, so running the demo a second time on the same data directory replays every
//! request as a client retry would: each answers with its original outcome and nothing is
//! applied twice (the balances printed at the end stay the same).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::outcome::Outcome;
use tally_engine::partition::from_minor;
use tally_engine::store::{Store, StoreConfig};
use tally_engine::types::{AccountId, LedgerId, PartitionId, Timestamp, TransferId};

const GEMS: LedgerId = LedgerId(1);
const ITEMS: LedgerId = LedgerId(2);
const POINTS: LedgerId = LedgerId(3);

const ISSUER: AccountId = AccountId(1);
const REVENUE: AccountId = AccountId(2);
const ALICE: AccountId = AccountId(10);
const BOB: AccountId = AccountId(11);
const ITEM_STOCK: AccountId = AccountId(20);
const ALICE_ITEMS: AccountId = AccountId(21);
const POINTS_ISSUER: AccountId = AccountId(30);
const ALICE_POINTS: AccountId = AccountId(31);
const POINTS_REDEEMED: AccountId = AccountId(32);

fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Timestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn gems(value: i64) -> Decimal {
    Decimal::from(value)
}

fn transfer(
    id: u128,
    debit: AccountId,
    credit: AccountId,
    amount: Decimal,
    ledger: LedgerId,
) -> NewTransfer {
    NewTransfer::plain(TransferId(id), debit, credit, amount, ledger)
}

fn account(id: AccountId, ledger: LedgerId, flags: u16) -> NewAccount {
    NewAccount {
        id,
        ledger,
        code: 1,
        flags: AccountFlags(flags),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    }
}

struct Demo {
    store: Store,
}

impl Demo {
    fn submit(&mut self, what: &str, command: Command) -> Result<Outcome, String> {
        let payload = EntryPayload {
            timestamp: now(),
            command,
        };
        let mut outcomes = self.store.submit(&[payload]).map_err(|e| e.to_string())?;
        let outcome = outcomes.pop().ok_or("no outcome")?;
        println!("  {what}:");
        match &outcome {
            Outcome::Tick => {}
            Outcome::Ledgers(results) => {
                let names: Vec<&str> = results.iter().map(|r| r.name()).collect();
                println!("    {}", names.join(", "));
            }
            Outcome::Accounts(results) => {
                let names: Vec<&str> = results.iter().map(|r| r.name()).collect();
                println!("    {}", names.join(", "));
            }
            Outcome::Transfers(results) => {
                for r in results {
                    println!("    {}", r.result.name());
                }
            }
        }
        Ok(outcome)
    }

    fn balance(&self, id: AccountId) -> String {
        let partition = self.store.partition();
        let Some(account) = partition.account(id) else {
            return "missing".into();
        };
        let scale = partition.ledger(account.ledger).map_or(0, |l| l.scale);
        let b = account.balances;
        let fmt = |v: u128| from_minor(v, scale).map_or_else(|| v.to_string(), |d| d.to_string());
        let net = if b.credits_posted >= b.debits_posted {
            fmt(b.credits_posted - b.debits_posted)
        } else {
            format!("-{}", fmt(b.debits_posted - b.credits_posted))
        };
        format!(
            "balance {net} (posted +{} -{}, pending +{} -{})",
            fmt(b.credits_posted),
            fmt(b.debits_posted),
            fmt(b.credits_pending),
            fmt(b.debits_pending)
        )
    }
}

/// Runs the demo on the store in `data`.
pub fn run(data: &Path) -> Result<(), String> {
    let (store, report) =
        Store::open(data, StoreConfig::new(PartitionId(0))).map_err(|e| e.to_string())?;
    println!(
        "store {}: checkpoint {:?}, {} entries replayed, {} torn bytes cut",
        data.display(),
        report.checkpoint.map(|i| i.0),
        report.entries_replayed,
        report.log.truncated_bytes
    );
    let mut demo = Demo { store };
    let no_overdraft = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;

    println!("setup");
    demo.submit(
        "ledgers GEMS (scale 0), ITEMS (scale 0), POINTS (scale 2)",
        Command::CreateLedgers(vec![
            NewLedger {
                id: GEMS,
                scale: 0,
                code: 1,
            },
            NewLedger {
                id: ITEMS,
                scale: 0,
                code: 2,
            },
            NewLedger {
                id: POINTS,
                scale: 2,
                code: 3,
            },
        ]),
    )?;
    demo.submit(
        "accounts",
        Command::CreateAccounts(vec![
            account(ISSUER, GEMS, 0),
            account(REVENUE, GEMS, 0),
            account(ALICE, GEMS, no_overdraft),
            account(BOB, GEMS, no_overdraft),
            account(ITEM_STOCK, ITEMS, 0),
            account(ALICE_ITEMS, ITEMS, no_overdraft),
            account(POINTS_ISSUER, POINTS, 0),
            account(ALICE_POINTS, POINTS, no_overdraft),
            account(POINTS_REDEEMED, POINTS, 0),
        ]),
    )?;

    println!("1. credits: add 500 gems to alice, spend 120, refund 20 of it, overspend");
    demo.submit(
        "add credits",
        Command::CreateTransfers(vec![transfer(100, ISSUER, ALICE, gems(500), GEMS)]),
    )?;
    demo.submit(
        "spend 120",
        Command::CreateTransfers(vec![transfer(101, ALICE, REVENUE, gems(120), GEMS)]),
    )?;
    let mut refund = transfer(102, AccountId(0), AccountId(0), gems(20), LedgerId(0));
    refund.refund_of = TransferId(101);
    demo.submit(
        "refund 20 of the spend",
        Command::CreateTransfers(vec![refund]),
    )?;
    let mut too_much = transfer(103, AccountId(0), AccountId(0), gems(101), LedgerId(0));
    too_much.refund_of = TransferId(101);
    demo.submit(
        "refund 101 more (only 100 remain)",
        Command::CreateTransfers(vec![too_much]),
    )?;
    demo.submit(
        "spend 10,000 (insufficient funds)",
        Command::CreateTransfers(vec![transfer(104, ALICE, REVENUE, gems(10_000), GEMS)]),
    )?;
    println!("  alice: {}", demo.balance(ALICE));

    println!("2. shop: buy a sword for 50 gems; charge and entitlement are one linked unit");
    let mut charge = transfer(200, ALICE, REVENUE, gems(50), GEMS);
    charge.flags = TransferFlags(TransferFlags::PENDING | TransferFlags::LINKED);
    let mut sword = transfer(201, ITEM_STOCK, ALICE_ITEMS, gems(1), ITEMS);
    sword.flags = TransferFlags(TransferFlags::PENDING);
    demo.submit(
        "purchase PENDING (hold 50 gems + hold 1 sword)",
        Command::CreateTransfers(vec![charge, sword]),
    )?;
    let mut post_charge = transfer(202, AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    post_charge.flags = TransferFlags(TransferFlags::POST_PENDING | TransferFlags::LINKED);
    post_charge.pending_id = TransferId(200);
    let mut post_sword = transfer(203, AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    post_sword.flags = TransferFlags(TransferFlags::POST_PENDING);
    post_sword.pending_id = TransferId(201);
    demo.submit(
        "purchase COMPLETED (post both)",
        Command::CreateTransfers(vec![post_charge, post_sword]),
    )?;
    let mut refund_charge = transfer(204, AccountId(0), AccountId(0), gems(50), LedgerId(0));
    refund_charge.refund_of = TransferId(202);
    refund_charge.flags = TransferFlags(TransferFlags::LINKED);
    let mut revoke_sword = transfer(205, AccountId(0), AccountId(0), gems(1), LedgerId(0));
    revoke_sword.refund_of = TransferId(203);
    demo.submit(
        "full refund: credits back and sword revoked, atomically",
        Command::CreateTransfers(vec![refund_charge, revoke_sword]),
    )?;
    println!("  alice: {}", demo.balance(ALICE));
    println!("  alice's items: {}", demo.balance(ALICE_ITEMS));

    println!("3. rewards: earn 25.50 points, reserve 10, complete; reserve 5, release");
    demo.submit(
        "earn",
        Command::CreateTransfers(vec![transfer(
            300,
            POINTS_ISSUER,
            ALICE_POINTS,
            Decimal::new(2550, 2),
            POINTS,
        )]),
    )?;
    let mut reserve = transfer(301, ALICE_POINTS, POINTS_REDEEMED, gems(10), POINTS);
    reserve.flags = TransferFlags(TransferFlags::PENDING);
    reserve.timeout_s = 300;
    let mut reserve2 = transfer(302, ALICE_POINTS, POINTS_REDEEMED, gems(5), POINTS);
    reserve2.flags = TransferFlags(TransferFlags::PENDING);
    reserve2.timeout_s = 300;
    demo.submit(
        "reserve 10 and 5 (holds expire after 300 s)",
        Command::CreateTransfers(vec![reserve, reserve2]),
    )?;
    let mut complete = transfer(303, AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    complete.flags = TransferFlags(TransferFlags::POST_PENDING);
    complete.pending_id = TransferId(301);
    let mut release = transfer(304, AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    release.flags = TransferFlags(TransferFlags::VOID_PENDING);
    release.pending_id = TransferId(302);
    demo.submit(
        "complete the first, release the second",
        Command::CreateTransfers(vec![complete, release]),
    )?;
    let mut again = transfer(305, AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    again.flags = TransferFlags(TransferFlags::POST_PENDING);
    again.pending_id = TransferId(301);
    demo.submit(
        "complete the first again (no double spend)",
        Command::CreateTransfers(vec![again]),
    )?;
    println!("  alice's points: {}", demo.balance(ALICE_POINTS));

    println!("4. transfers between players: alice sends bob 30 gems");
    demo.submit(
        "send",
        Command::CreateTransfers(vec![transfer(400, ALICE, BOB, gems(30), GEMS)]),
    )?;
    println!("  alice: {}", demo.balance(ALICE));
    println!("  bob:   {}", demo.balance(BOB));
    let partition = demo.store.partition();
    println!(
        "state: {} accounts, {} transfers recorded, applied index {}, digest {:032x}",
        partition.account_count(),
        partition.transfer_count(),
        partition.applied_index(),
        partition.digest()
    );
    Ok(())
}
