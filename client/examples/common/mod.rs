//! Helpers shared by the examples: finding the server, creating a fresh ledger and accounts
//! with random ids (so every run starts clean), building transfers, and printing balances
//! and outcomes. Every account an example creates lives in the partition of its first
//! account (`Client::account_id_beside`), so no transfer crosses partitions.

#![allow(dead_code)] // Each example uses a different subset.

use std::error::Error;

use rand::Rng;
use rust_decimal::Decimal;
use tally_client::{
    ids, AccountFlags, AccountId, AccountResult, Balances, Client, ClientOptions, LedgerId,
    LedgerResult, NewAccount, NewLedger, NewTransfer, TransferFlags, TransferId, TransferOutcome,
    TransferResult,
};

/// What the examples return: any error, printed by `main`.
pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The server address: the first argument, else `TALLY_ADDRESS`, else `127.0.0.1:3000`.
pub fn address() -> String {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("TALLY_ADDRESS").ok())
        .unwrap_or_else(|| "127.0.0.1:3000".to_owned())
}

/// Connects with default options and says what it found.
pub async fn connect() -> Result<Client> {
    let address = address();
    let client = Client::connect(std::slice::from_ref(&address), ClientOptions::default()).await?;
    println!(
        "connected to {address}: {} partitions",
        client.partition_count()
    );
    Ok(client)
}

/// Creates a ledger with a fresh random id. `Exists` is success too: a retry of a request
/// whose first answer was lost (during a leader change, say) finds the ledger created.
pub async fn create_ledger(client: &Client, name: &str, scale: u8) -> Result<LedgerId> {
    let id = LedgerId(rand::thread_rng().gen_range(1..u32::MAX));
    let results = client
        .create_ledgers(vec![NewLedger { id, scale, code: 1 }])
        .await?;
    if results != [LedgerResult::Ok] && results != [LedgerResult::Exists] {
        return Err(format!("creating ledger {name}: {results:?}").into());
    }
    println!("ledger {name}: id {id}, scale {scale}");
    Ok(id)
}

/// An account to create on `ledger`.
pub fn new_account(id: AccountId, ledger: LedgerId, code: u16, flags: u16) -> NewAccount {
    NewAccount {
        id,
        ledger,
        code,
        flags: AccountFlags(flags),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    }
}

/// Creates `accounts` in one batch and fails unless every one is new (or `Exists`: see
/// [`create_ledger`]).
pub async fn create_accounts(client: &Client, accounts: Vec<(&str, NewAccount)>) -> Result<()> {
    let (names, accounts): (Vec<&str>, Vec<NewAccount>) = accounts.into_iter().unzip();
    let results = client.create_accounts(accounts.clone()).await?;
    for ((name, account), result) in names.iter().zip(&accounts).zip(&results) {
        if *result != AccountResult::Ok && *result != AccountResult::Exists {
            return Err(format!("creating account {name}: {result:?}").into());
        }
        println!("account {name}: id {}", account.id);
    }
    Ok(())
}

/// A fresh account id beside `anchor` (same partition), or a fresh random one for the first.
pub fn account_id(client: &Client, anchor: Option<AccountId>) -> AccountId {
    match anchor {
        Some(anchor) => client.account_id_beside(anchor),
        None => AccountId(ids::new_id()),
    }
}

/// A plain transfer with a fresh time-ordered id.
pub fn transfer(
    debit: AccountId,
    credit: AccountId,
    amount: Decimal,
    ledger: LedgerId,
) -> NewTransfer {
    NewTransfer::plain(
        TransferId(ids::time_ordered_id()),
        debit,
        credit,
        amount,
        ledger,
    )
}

/// A pending hold of `amount` that expires after `timeout_s` (zero: never).
pub fn hold(
    debit: AccountId,
    credit: AccountId,
    amount: Decimal,
    ledger: LedgerId,
    timeout_s: u32,
) -> NewTransfer {
    let mut t = transfer(debit, credit, amount, ledger);
    t.flags = TransferFlags(TransferFlags::PENDING);
    t.timeout_s = timeout_s;
    t
}

/// Posts (`post = true`) or voids the whole hold `pending`. Accounts and ledger are taken
/// from the hold.
pub fn settle(pending: TransferId, post: bool) -> NewTransfer {
    let mut t = transfer(AccountId(0), AccountId(0), Decimal::ZERO, LedgerId(0));
    t.flags = TransferFlags(if post {
        TransferFlags::POST_PENDING
    } else {
        TransferFlags::VOID_PENDING
    });
    t.pending_id = pending;
    t
}

/// Refunds `amount` of the posted transfer `original`, back the way it came.
pub fn refund(original: TransferId, amount: Decimal) -> NewTransfer {
    let mut t = transfer(AccountId(0), AccountId(0), amount, LedgerId(0));
    t.refund_of = original;
    t
}

/// Flags `transfer` as linked to the next one.
pub fn linked(mut transfer: NewTransfer) -> NewTransfer {
    transfer.flags.0 |= TransferFlags::LINKED;
    transfer
}

/// `credits - debits` of a credit-normal account (a wallet), in whole units.
pub fn available(balances: &Balances, scale: u8) -> Decimal {
    let minor = balances.credits_posted as i128
        - balances.debits_posted as i128
        - balances.debits_pending as i128;
    Decimal::from_i128_with_scale(minor, u32::from(scale))
}

/// Prints what happened to a transfer and returns whether it succeeded.
pub fn report(what: &str, outcome: &TransferOutcome) -> bool {
    if outcome.result == TransferResult::Ok {
        println!("  ok       {what}");
        true
    } else {
        println!("  refused  {what}: {}", outcome.result.name());
        false
    }
}

/// Looks up `accounts` and prints each one's posted and pending balances.
pub async fn show_balances(client: &Client, accounts: &[(&str, AccountId)]) -> Result<()> {
    let ids: Vec<AccountId> = accounts.iter().map(|(_, id)| *id).collect();
    let found = client.lookup_accounts(ids).await?;
    for (name, id) in accounts {
        let Some(account) = found.iter().find(|a| a.id == *id) else {
            println!("  {name:<22} (not found)");
            continue;
        };
        let b = &account.balances;
        let scale = u32::from(account.scale);
        let net = Decimal::from_i128_with_scale(
            b.credits_posted as i128 - b.debits_posted as i128,
            scale,
        );
        let pending = Decimal::from_i128_with_scale(
            b.credits_pending as i128 - b.debits_pending as i128,
            scale,
        );
        println!("  {name:<22} balance {net:>10}   pending {pending:>8}");
    }
    Ok(())
}
