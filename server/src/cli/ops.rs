//! The operator commands: one request each, answered in text or JSON lines.
//!
//! Result codes are data in the protocol, but an operator's shell needs `$?`: a ledger or
//! account create answered `Ok` or `Exists` (a retry of the same fields) succeeds, any other
//! code prints its name and exits non-zero; a transfer succeeds only with `Ok`. `show`
//! commands exit non-zero when an id is not found, after printing the ones that were.
//! Balances print as decimals with the ledger's scale from the answer (a transfer's outcome
//! carries no scale, so `transfer` looks the transfer up afterwards to learn it, and its
//! accounts for post, void and refund).

use clap::{ArgGroup, Args, Subcommand};
use rust_decimal::Decimal;
use serde_json::json;
use tally_client::wire::{HISTORY_ENTRIES_MAX, SERIES_POINTS_MAX};
use tally_client::{
    Account, AccountFlags, AccountId, AccountResult, Client, Direction, FlowsQuery, HistoryQuery,
    LedgerId, LedgerResult, NewAccount, NewLedger, NewTransfer, SeriesQuery, Timestamp, Transfer,
    TransferFlags, TransferId, TransferKind, TransferResult,
};

use super::{
    balances_json, balances_line, format_minor, now_ns, parse_decimal, parse_id, parse_id_choice,
    print_json, Command, Connection, IdChoice,
};

const HOUR_NS: u64 = 3_600 * 1_000_000_000;

/// Most days `tally series` covers: the protocol's [`SERIES_POINTS_MAX`] hours, less the
/// partial hour at the start of the range.
pub const SERIES_DAYS_MAX: u64 = (SERIES_POINTS_MAX as u64 - 1) / 24;

/// Most hours `tally flows` looks back (one year).
pub const FLOWS_HOURS_MAX: u64 = 24 * 366;

/// `tally ledger …`
#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Create a ledger: one asset or currency with a fixed number of decimals.
    Create {
        /// Ledger id (1..=4294967295).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        id: u32,
        /// Digits after the decimal point (0..=28).
        #[arg(long, value_parser = clap::value_parser!(u8).range(0..=28))]
        scale: u8,
        /// Free-form classification for the application.
        #[arg(long, default_value_t = 1)]
        code: u16,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `tally account …`
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account; `--id new` generates the id (printed).
    #[command(group(ArgGroup::new("balance_flag").args(["no_overdraft", "no_overcredit"])))]
    Create {
        /// Account id, or `new` for a random one.
        #[arg(long, value_parser = parse_id_choice)]
        id: IdChoice,
        /// The ledger whose units the account holds.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        ledger: u32,
        /// The account's kind, for the application.
        #[arg(long, default_value_t = 1)]
        code: u16,
        /// Debits may not exceed credits (a player wallet: no overdraft).
        #[arg(long)]
        no_overdraft: bool,
        /// Credits may not exceed debits.
        #[arg(long)]
        no_overcredit: bool,
        /// How far the balance flag may be exceeded (a decimal); needs one of the flags.
        #[arg(long, value_parser = parse_decimal, requires = "balance_flag")]
        limit: Option<Decimal>,
        /// External reference (e.g. a player id), stored in `user_data_128`.
        #[arg(long, value_parser = parse_id_or_zero, default_value = "0")]
        user_data: u128,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show accounts with their balances.
    Show {
        /// Account ids.
        #[arg(required = true, num_args = 1.., value_parser = parse_id)]
        ids: Vec<u128>,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `tally transfer [show ID...]`
#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group(ArgGroup::new("kind").args(["pending", "post", "void", "refund_of"])),
)]
pub struct TransferArgs {
    #[command(subcommand)]
    show: Option<TransferCommand>,
    /// Transfer id (the idempotency key: retry with the same one), or `new` (printed).
    #[arg(long, value_parser = parse_id_choice, default_value = "new")]
    id: IdChoice,
    /// The account debited (may be left out for --post, --void and --refund-of).
    #[arg(long, value_parser = parse_id, required_unless_present_any = ["post", "void", "refund_of"])]
    from: Option<u128>,
    /// The account credited (may be left out for --post, --void and --refund-of).
    #[arg(long, value_parser = parse_id, required_unless_present_any = ["post", "void", "refund_of"])]
    to: Option<u128>,
    /// The amount, a decimal. For --post, leave it out to post the whole hold.
    #[arg(long, value_parser = parse_decimal, allow_negative_numbers = true,
          required_unless_present_any = ["post", "void"])]
    amount: Option<Decimal>,
    /// The ledger (may be left out for --post, --void and --refund-of).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..),
          required_unless_present_any = ["post", "void", "refund_of"])]
    ledger: Option<u32>,
    /// Make a pending hold instead of moving posted money.
    #[arg(long)]
    pending: bool,
    /// Seconds until the hold expires (0: never); only with --pending.
    #[arg(long, requires = "pending")]
    timeout_s: Option<u32>,
    /// Post the hold with this id (fully, or partially with --amount).
    #[arg(long, value_parser = parse_id)]
    post: Option<u128>,
    /// Void the hold with this id.
    #[arg(long, value_parser = parse_id)]
    void: Option<u128>,
    /// Refund (part of) the posted transfer with this id.
    #[arg(long, value_parser = parse_id)]
    refund_of: Option<u128>,
    /// The application's classification.
    #[arg(long, default_value_t = 1)]
    code: u16,
    /// External reference (e.g. an order id), stored in `user_data_128`.
    #[arg(long, value_parser = parse_id_or_zero, default_value = "0")]
    user_data: u128,
    /// A short note, at most 32 bytes, returned by lookups.
    #[arg(long, default_value = "", value_parser = parse_memo)]
    memo: String,
    #[command(flatten)]
    connection: Connection,
}

fn parse_memo(text: &str) -> Result<String, String> {
    if text.len() > tally_client::wire::MEMO_SIZE_MAX {
        return Err(format!(
            "{} bytes; a memo holds at most {}",
            text.len(),
            tally_client::wire::MEMO_SIZE_MAX
        ));
    }
    Ok(text.to_string())
}

/// `tally transfer show`
#[derive(Subcommand)]
pub enum TransferCommand {
    /// Show transfers: accounts, amount, outcome, hold status, refunded amount.
    Show {
        /// Transfer ids.
        #[arg(required = true, num_args = 1.., value_parser = parse_id)]
        ids: Vec<u128>,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `tally history`
#[derive(Args)]
pub struct HistoryArgs {
    /// The account.
    #[arg(value_parser = parse_id)]
    account: u128,
    /// Most entries to print.
    #[arg(long, default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=HISTORY_ENTRIES_MAX as i64))]
    limit: u32,
    /// Newest entries first.
    #[arg(long)]
    newest_first: bool,
    /// Where to start: a previous page's next cursor.
    #[arg(long, default_value_t = 0)]
    cursor: u64,
    #[command(flatten)]
    connection: Connection,
}

/// `tally flows`
#[derive(Args)]
pub struct FlowsArgs {
    /// The account.
    #[arg(value_parser = parse_id)]
    account: u128,
    /// The window: this many hours up to now.
    #[arg(long, default_value_t = 24,
          value_parser = clap::value_parser!(u64).range(1..=FLOWS_HOURS_MAX))]
    hours: u64,
    #[command(flatten)]
    connection: Connection,
}

/// `tally series`
#[derive(Args)]
pub struct SeriesArgs {
    /// The account.
    #[arg(value_parser = parse_id)]
    account: u128,
    /// The range: this many days up to now, one point per hour.
    #[arg(long, default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=SERIES_DAYS_MAX))]
    days: u64,
    #[command(flatten)]
    connection: Connection,
}

fn parse_id_or_zero(text: &str) -> Result<u128, String> {
    if text.trim() == "0" {
        return Ok(0);
    }
    parse_id(text)
}

/// Runs one operator command (not `bench`).
pub async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Ledger(LedgerCommand::Create {
            id,
            scale,
            code,
            connection,
        }) => {
            ledger_create(
                &connection,
                NewLedger {
                    id: LedgerId(id),
                    scale,
                    code,
                },
            )
            .await
        }
        Command::Account(AccountCommand::Create {
            id,
            ledger,
            code,
            no_overdraft,
            no_overcredit,
            limit,
            user_data,
            connection,
        }) => {
            let mut flags = 0;
            if no_overdraft {
                flags |= AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
            }
            if no_overcredit {
                flags |= AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS;
            }
            let account = NewAccount {
                id: AccountId(id.resolve()),
                ledger: LedgerId(ledger),
                code,
                flags: AccountFlags(flags),
                limit,
                user_data_128: user_data,
                user_data_64: 0,
                user_data_32: 0,
            };
            account_create(&connection, account).await
        }
        Command::Account(AccountCommand::Show { ids, connection }) => {
            account_show(&connection, ids).await
        }
        Command::Transfer(args) => match args.show {
            Some(TransferCommand::Show { ids, connection }) => {
                transfer_show(&connection, ids).await
            }
            None => transfer_create(&args).await,
        },
        Command::History(args) => history(&args).await,
        Command::Flows(args) => flows(&args).await,
        Command::Series(args) => series(&args).await,
        Command::Status(args) => super::status::run(args).await,
        Command::Batch(args) => super::batch::run(args).await,
        Command::Subscribe(args) => super::subscribe::run(args).await,
        Command::Bench(_) => unreachable!("bench runs on its own runtime"),
    }
}

async fn ledger_create(connection: &Connection, ledger: NewLedger) -> Result<(), String> {
    let client = connection.connect().await?;
    let results = client
        .create_ledgers(vec![ledger.clone()])
        .await
        .map_err(|e| format!("ledger create: {e}"))?;
    let [result] = results[..] else {
        return Err(format!(
            "ledger create: {} results for 1 ledger",
            results.len()
        ));
    };
    if connection.json {
        print_json(&json!({
            "ledger": ledger.id.0,
            "scale": ledger.scale,
            "code": ledger.code,
            "result": result.name(),
        }));
    } else {
        println!(
            "ledger {} (scale {}, code {}): {}",
            ledger.id,
            ledger.scale,
            ledger.code,
            result.name()
        );
    }
    match result {
        LedgerResult::Ok | LedgerResult::Exists => Ok(()),
        other => Err(format!(
            "ledger {} not created: {}",
            ledger.id,
            other.name()
        )),
    }
}

async fn account_create(connection: &Connection, account: NewAccount) -> Result<(), String> {
    let client = connection.connect().await?;
    let results = client
        .create_accounts(vec![account.clone()])
        .await
        .map_err(|e| format!("account create: {e}"))?;
    let [result] = results[..] else {
        return Err(format!(
            "account create: {} results for 1 account",
            results.len()
        ));
    };
    if connection.json {
        print_json(&json!({
            "account": account.id.0.to_string(),
            "ledger": account.ledger.0,
            "result": result.name(),
        }));
    } else {
        println!(
            "account {} on ledger {}: {}",
            account.id,
            account.ledger,
            result.name()
        );
    }
    match result {
        AccountResult::Ok | AccountResult::Exists => Ok(()),
        other => Err(format!(
            "account {} not created: {}",
            account.id,
            other.name()
        )),
    }
}

fn flag_names(flags: AccountFlags) -> Vec<&'static str> {
    let mut names = Vec::new();
    if flags.has(AccountFlags::LINKED) {
        names.push("linked");
    }
    if flags.has(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS) {
        names.push("no_overdraft");
    }
    if flags.has(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS) {
        names.push("no_overcredit");
    }
    names
}

fn transfer_flag_names(flags: TransferFlags) -> Vec<&'static str> {
    let mut names = Vec::new();
    for (bit, name) in [
        (TransferFlags::LINKED, "linked"),
        (TransferFlags::PENDING, "pending"),
        (TransferFlags::POST_PENDING, "post_pending"),
        (TransferFlags::VOID_PENDING, "void_pending"),
    ] {
        if flags.has(bit) {
            names.push(name);
        }
    }
    names
}

fn print_account(account: &Account, json: bool) {
    let scale = account.scale;
    if json {
        print_json(&json!({
            "account": account.id.0.to_string(),
            "found": true,
            "ledger": account.ledger.0,
            "scale": scale,
            "code": account.code,
            "flags": flag_names(account.flags),
            "limit": account.limit.map(|l| format_minor(l, scale)),
            "user_data_128": account.user_data_128.to_string(),
            "user_data_64": account.user_data_64.to_string(),
            "user_data_32": account.user_data_32,
            "timestamp": account.timestamp.0,
            "balances": balances_json(&account.balances, scale),
        }));
        return;
    }
    let flags = flag_names(account.flags);
    println!("account {}", account.id);
    println!(
        "  ledger {} (scale {}), code {}, flags {}, limit {}",
        account.ledger,
        scale,
        account.code,
        if flags.is_empty() {
            "none".to_owned()
        } else {
            flags.join(",")
        },
        account
            .limit
            .map_or_else(|| "none".to_owned(), |l| format_minor(l, scale))
    );
    println!(
        "  created {}, user_data {}/{}/{}",
        account.timestamp.utc(),
        account.user_data_128,
        account.user_data_64,
        account.user_data_32
    );
    println!("  {}", balances_line(&account.balances, scale));
}

async fn account_show(connection: &Connection, ids: Vec<u128>) -> Result<(), String> {
    let client = connection.connect().await?;
    let found = client
        .lookup_accounts(ids.iter().map(|&id| AccountId(id)).collect())
        .await
        .map_err(|e| format!("account show: {e}"))?;
    print_found(
        "account",
        &ids,
        &found,
        |a| a.id.0,
        print_account,
        connection.json,
    )
}

/// Prints each of `ids` that was `found` with `print`, in the order asked, and a "not found"
/// line for each other; an error names the missing ones.
fn print_found<T>(
    what: &str,
    ids: &[u128],
    found: &[T],
    id_of: impl Fn(&T) -> u128,
    print: impl Fn(&T, bool),
    json: bool,
) -> Result<(), String> {
    let mut missing = Vec::new();
    for &id in ids {
        match found.iter().find(|item| id_of(item) == id) {
            Some(item) => print(item, json),
            None => {
                missing.push(id.to_string());
                if json {
                    print_json(&json!({what: id.to_string(), "found": false}));
                } else {
                    println!("{what} {id}: not found");
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}s not found: {}", missing.join(", ")))
    }
}

/// What a refused transfer asked, in words: its kind, amount, accounts and ledger as sent.
fn asked(transfer: &Transfer) -> String {
    let t = transfer;
    let amount = if t.amount == 0 {
        // Zero is what was asked, or an amount the ledger cannot hold (or no such ledger).
        "amount 0 (or none the ledger can hold)".to_string()
    } else {
        format_minor(t.amount, t.scale)
    };
    let what = match t.kind {
        TransferKind::Post if t.amount == 0 => format!("post of hold {} (all of it)", t.reference),
        TransferKind::Post => format!("post of {amount} of hold {}", t.reference),
        TransferKind::Void => format!("void of hold {}", t.reference),
        TransferKind::Refund => format!("refund of {amount} of transfer {}", t.reference),
        TransferKind::Pending if t.timeout_s > 0 => {
            format!("hold of {amount} for {} s", t.timeout_s)
        }
        TransferKind::Pending => format!("hold of {amount}"),
        _ => amount,
    };
    let mut line = what;
    if t.debit_account.0 != 0 || t.credit_account.0 != 0 {
        line.push_str(&format!(
            " from {} to {}",
            t.debit_account, t.credit_account
        ));
    }
    if t.ledger.0 != 0 {
        line.push_str(&format!(" on ledger {}", t.ledger));
    }
    line.push_str(&format!(", code {}", t.code));
    line
}

fn print_transfer(transfer: &Transfer, json: bool) {
    let scale = transfer.scale;
    let reference = (transfer.reference.0 != 0).then(|| transfer.reference.0.to_string());
    if json {
        print_json(&json!({
            "transfer": transfer.id.0.to_string(),
            "found": true,
            "result": transfer.outcome.result.name(),
            "kind": transfer.kind.name(),
            "from": transfer.debit_account.0.to_string(),
            "to": transfer.credit_account.0.to_string(),
            "ledger": transfer.ledger.0,
            "scale": scale,
            "amount": format_minor(transfer.amount, scale),
            "reference": reference,
            "timeout_s": transfer.timeout_s,
            "code": transfer.code,
            "flags": transfer_flag_names(transfer.flags),
            "user_data_128": transfer.user_data_128.to_string(),
            "user_data_64": transfer.user_data_64.to_string(),
            "user_data_32": transfer.user_data_32,
            "memo": String::from_utf8_lossy(&transfer.memo),
            "hold": transfer.hold.name(),
            "refunded": format_minor(transfer.refunded, scale),
            "timestamp": transfer.outcome.timestamp.0,
        }));
        return;
    }
    if transfer.outcome.result != TransferResult::Ok {
        // A refusal is kept (a retry of its id gets the same answer) with what it asked.
        println!(
            "transfer {}: refused, {}, at {}",
            transfer.id,
            transfer.outcome.result.name(),
            transfer.outcome.timestamp.utc()
        );
        println!("  asked: {}", asked(transfer));
        return;
    }
    println!(
        "transfer {}: {} {}",
        transfer.id,
        transfer.outcome.result.name(),
        transfer.kind.name()
    );
    println!(
        "  {} from {} to {} on ledger {} (scale {}), code {}",
        format_minor(transfer.amount, scale),
        transfer.debit_account,
        transfer.credit_account,
        transfer.ledger,
        scale,
        transfer.code
    );
    println!(
        "  at {}, hold {}, timeout {} s, refunded {}{}",
        transfer.outcome.timestamp.utc(),
        transfer.hold.name(),
        transfer.timeout_s,
        format_minor(transfer.refunded, scale),
        reference.map_or_else(String::new, |r| format!(", reference {r}"))
    );
    if transfer.user_data_128 != 0 || transfer.user_data_64 != 0 || transfer.user_data_32 != 0 {
        println!(
            "  user data {} / {} / {}",
            transfer.user_data_128, transfer.user_data_64, transfer.user_data_32
        );
    }
    if !transfer.memo.is_empty() {
        println!("  memo {:?}", String::from_utf8_lossy(&transfer.memo));
    }
}

async fn transfer_show(connection: &Connection, ids: Vec<u128>) -> Result<(), String> {
    let client = connection.connect().await?;
    let found = client
        .lookup_transfers(ids.iter().map(|&id| TransferId(id)).collect())
        .await
        .map_err(|e| format!("transfer show: {e}"))?;
    print_found(
        "transfer",
        &ids,
        &found,
        |t| t.id.0,
        print_transfer,
        connection.json,
    )
}

/// What a transfer does, as `tally transfer`'s flags or a `tally batch` line say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TransferKindChoice {
    /// Moves posted money.
    Plain,
    /// Holds money, for `timeout_s` seconds (0: until posted or voided).
    Pending {
        /// Seconds until the hold expires.
        timeout_s: u32,
    },
    /// Posts the hold with this id.
    Post(u128),
    /// Voids the hold with this id.
    Void(u128),
    /// Refunds the posted transfer with this id.
    Refund(u128),
}

/// A transfer of `kind` with every optional field empty (code 1).
pub(super) fn build_transfer(
    id: u128,
    from: u128,
    to: u128,
    amount: Decimal,
    ledger: u32,
    kind: TransferKindChoice,
) -> NewTransfer {
    let mut transfer = NewTransfer::plain(
        TransferId(id),
        AccountId(from),
        AccountId(to),
        amount,
        LedgerId(ledger),
    );
    match kind {
        TransferKindChoice::Plain => {}
        TransferKindChoice::Pending { timeout_s } => {
            transfer.flags = TransferFlags(TransferFlags::PENDING);
            transfer.timeout_s = timeout_s;
        }
        TransferKindChoice::Post(pending) => {
            transfer.flags = TransferFlags(TransferFlags::POST_PENDING);
            transfer.pending_id = TransferId(pending);
        }
        TransferKindChoice::Void(pending) => {
            transfer.flags = TransferFlags(TransferFlags::VOID_PENDING);
            transfer.pending_id = TransferId(pending);
        }
        TransferKindChoice::Refund(original) => transfer.refund_of = TransferId(original),
    }
    transfer
}

impl TransferArgs {
    fn to_new_transfer(&self, id: u128) -> NewTransfer {
        let kind = if self.pending {
            TransferKindChoice::Pending {
                timeout_s: self.timeout_s.unwrap_or(0),
            }
        } else if let Some(pending) = self.post {
            TransferKindChoice::Post(pending)
        } else if let Some(pending) = self.void {
            TransferKindChoice::Void(pending)
        } else if let Some(original) = self.refund_of {
            TransferKindChoice::Refund(original)
        } else {
            TransferKindChoice::Plain
        };
        let mut transfer = build_transfer(
            id,
            self.from.unwrap_or(0),
            self.to.unwrap_or(0),
            self.amount.unwrap_or(Decimal::ZERO),
            self.ledger.unwrap_or(0),
            kind,
        );
        transfer.code = self.code;
        transfer.user_data_128 = self.user_data;
        transfer.memo = self.memo.as_bytes().to_vec();
        transfer
    }
}

async fn transfer_create(args: &TransferArgs) -> Result<(), String> {
    let connection = &args.connection;
    let id = args.id.resolve();
    let transfer = args.to_new_transfer(id);
    let client = connection.connect().await?;
    let outcomes = client
        .create_transfers(vec![transfer])
        .await
        .map_err(|e| format!("transfer {id}: {e}"))?;
    let [outcome] = outcomes[..] else {
        return Err(format!(
            "transfer {id}: {} results for 1 transfer",
            outcomes.len()
        ));
    };
    if outcome.result != TransferResult::Ok {
        if connection.json {
            print_json(&json!({"transfer": id.to_string(), "result": outcome.result.name()}));
        } else {
            println!("transfer {id}: {}", outcome.result.name());
        }
        return Err(format!(
            "transfer {id} not applied: {}",
            outcome.result.name()
        ));
    }
    // The outcome's balances are in minor units without the scale; the recorded transfer
    // has it, and names the accounts of a post, void or refund.
    let recorded = lookup_transfer(&client, id).await?;
    let scale = recorded.scale;
    if connection.json {
        print_json(&json!({
            "transfer": id.to_string(),
            "result": outcome.result.name(),
            "kind": recorded.kind.name(),
            "amount": format_minor(recorded.amount, scale),
            "timestamp": outcome.timestamp.0,
            "from": recorded.debit_account.0.to_string(),
            "to": recorded.credit_account.0.to_string(),
            "from_balances": balances_json(&outcome.debit_balances, scale),
            "to_balances": balances_json(&outcome.credit_balances, scale),
        }));
    } else {
        println!(
            "transfer {id}: {} ({} {})",
            outcome.result.name(),
            recorded.kind.name(),
            format_minor(recorded.amount, scale)
        );
        println!(
            "  from {}: {}",
            recorded.debit_account,
            balances_line(&outcome.debit_balances, scale)
        );
        println!(
            "  to   {}: {}",
            recorded.credit_account,
            balances_line(&outcome.credit_balances, scale)
        );
    }
    Ok(())
}

async fn lookup_transfer(client: &Client, id: u128) -> Result<Transfer, String> {
    let found = client
        .lookup_transfers(vec![TransferId(id)])
        .await
        .map_err(|e| format!("transfer {id} applied, but its lookup failed: {e}"))?;
    found
        .into_iter()
        .find(|t| t.id.0 == id)
        .ok_or_else(|| format!("transfer {id} applied, but a lookup does not find it"))
}

/// Fails unless `account` exists: the history, flows and series of an account that does not
/// exist would print as zeros.
async fn require_account(
    client: &tally_client::Client,
    account: u128,
    what: &str,
) -> Result<(), String> {
    let found = client
        .lookup_accounts(vec![AccountId(account)])
        .await
        .map_err(|e| format!("{what} of account {account}: {e}"))?;
    if found.is_empty() {
        return Err(format!("{what} of account {account}: no such account"));
    }
    Ok(())
}

async fn history(args: &HistoryArgs) -> Result<(), String> {
    let connection = &args.connection;
    let client = connection.connect().await?;
    let query = HistoryQuery {
        account: AccountId(args.account),
        cursor: args.cursor,
        limit: args.limit,
        direction: if args.newest_first {
            Direction::Backward
        } else {
            Direction::Forward
        },
        time_min: None,
        time_max: None,
    };
    require_account(&client, args.account, "history").await?;
    let page = client
        .account_history(query)
        .await
        .map_err(|e| format!("history of account {}: {e}", args.account))?;
    let scale = page.scale;
    for entry in &page.entries {
        let side = if entry.is_debit { "debit" } else { "credit" };
        if connection.json {
            print_json(&json!({
                "transfer": entry.transfer_id.0.to_string(),
                "timestamp": entry.timestamp.0,
                "kind": entry.kind.name(),
                "side": side,
                "counterparty": entry.counterparty.0.to_string(),
                "amount": format_minor(entry.amount, scale),
                "balances": balances_json(&entry.balances, scale),
            }));
        } else {
            println!(
                "{}  {:<7} {:<6} {:>14}  with {}  transfer {}  {}",
                entry.timestamp.utc(),
                entry.kind.name(),
                side,
                format_minor(entry.amount, scale),
                entry.counterparty,
                entry.transfer_id,
                super::net_posted(&entry.balances, scale)
            );
        }
    }
    if connection.json {
        print_json(&json!({
            "account": args.account.to_string(),
            "entries": page.entries.len(),
            "next_cursor": page.next_cursor,
        }));
    } else {
        match page.next_cursor {
            Some(cursor) => println!(
                "{} entries; next page: --cursor {cursor}",
                page.entries.len()
            ),
            None => println!("{} entries; end of history", page.entries.len()),
        }
    }
    Ok(())
}

async fn flows(args: &FlowsArgs) -> Result<(), String> {
    let connection = &args.connection;
    let now = now_ns()?;
    let time_min = now.saturating_sub(args.hours * HOUR_NS);
    let client = connection.connect().await?;
    require_account(&client, args.account, "flows").await?;
    let flows = client
        .account_flows(FlowsQuery {
            account: AccountId(args.account),
            time_min: Timestamp(time_min),
            time_max: Timestamp(now),
        })
        .await
        .map_err(|e| format!("flows of account {}: {e}", args.account))?;
    let scale = flows.scale;
    if connection.json {
        print_json(&json!({
            "account": args.account.to_string(),
            "hours": args.hours,
            "time_min": time_min,
            "time_max": now,
            "in": format_minor(flows.credits_total, scale),
            "out": format_minor(flows.debits_total, scale),
        }));
    } else {
        println!(
            "account {} over the past {} hours: in {}, out {}",
            args.account,
            args.hours,
            format_minor(flows.credits_total, scale),
            format_minor(flows.debits_total, scale)
        );
    }
    Ok(())
}

async fn series(args: &SeriesArgs) -> Result<(), String> {
    let connection = &args.connection;
    let now = now_ns()?;
    let time_min = now.saturating_sub(args.days * 24 * HOUR_NS);
    let client = connection.connect().await?;
    require_account(&client, args.account, "series").await?;
    let series = client
        .balance_series(SeriesQuery {
            account: AccountId(args.account),
            time_min: Timestamp(time_min),
            time_max: Timestamp(now),
        })
        .await
        .map_err(|e| format!("series of account {}: {e}", args.account))?;
    let scale = series.scale;
    for point in &series.points {
        if connection.json {
            print_json(&json!({
                "time_start": point.time_start.0,
                "balances": balances_json(&point.balances, scale),
            }));
        } else {
            println!(
                "{}  {}",
                point.time_start.utc(),
                balances_line(&point.balances, scale)
            );
        }
    }
    if !connection.json {
        println!(
            "{} hourly points for account {} over {} days",
            series.points.len(),
            args.account,
            args.days
        );
    }
    Ok(())
}
