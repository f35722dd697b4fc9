//! `tally subscribe`: print the cluster's change stream, one line per change.
//!
//! The command connects like the other operator commands, subscribes through
//! [`Client::subscribe`](tally_client::Client::subscribe) from `--from` with the filters
//! given, and prints each change as it arrives: by default until the stream has caught up
//! with what was committed (then it exits 0, so `tally subscribe --json > audit.jsonl` takes a
//! copy of the whole history), with `--follow` for as long as it runs. The client resumes the
//! stream by itself after a lost connection or a node going away, and delivers each change
//! once, so the output has no gaps and no repeats; a failure that retrying cannot fix ends the
//! command with `error: …` and exit code 1.
//!
//! With `--json` each line is one JSON object and a complete audit record: replaying the
//! lines of `--from start` in order rebuilds every ledger, account and balance. Fields:
//! `position` (`P:INDEX.EVENT`, what `--from` takes to resume after it), `partition`,
//! `index`, `event`, `timestamp` (nanoseconds), `time` (RFC 3339, UTC), `kind` (`ledger`,
//! `account`, `transfer`, `hold_expired`), `result` (the result code's name, as the other
//! commands print it) and `result_code`; then, per kind, the ledger (`id`, `scale`, `code`),
//! the account as asked (`id`, `ledger`, `code`, `flags`, `flag_bits`, `limit`,
//! `user_data_128`, `user_data_64`, `user_data_32`), or the transfer as decided (`id`,
//! `transfer_kind`, `ledger`, `scale`, `debit_account`, `credit_account`, `code`, `amount`,
//! `debit_balances`, `credit_balances`, and `asked`: the transfer as the client sent it, `null`
//! for an expiry). Ids, `u64` user data and amounts are strings, as in the other commands'
//! JSON; amounts and balances are decimals in the ledger's scale. A refused transfer moved
//! nothing: its `amount` is zero and its balances are `null`.
//!
//! Output is flushed whenever no change is ready, so a pipe sees each change as soon as the
//! stream goes quiet (and a busy stream costs no write per line); a reader that
//! closes the pipe ends the command quietly with exit code 0 (at the next line written:
//! while the stream is idle nothing notices).
//!
//! Deliberate omissions: the position to resume from is the caller's to keep (the last
//! `position` printed per partition); the command stores nothing.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;
use tally_client::{
    AccountFlags, AccountId, Balances, Change, ChangeBody, LedgerId, NewTransfer, Position,
    StreamFilter, StreamFrom, Streamed, Timestamp, TransferFlags, TransferKind, TransferResult,
};

use super::{format_minor, format_signed, net_posted, parse_id, Connection};

/// `tally subscribe`
#[derive(clap::Args)]
pub struct SubscribeArgs {
    /// Where to start: `start` (the whole history), `now`, `P:INDEX.EVENT[,...]` (right after
    /// these positions, one per partition; others from the start), an RFC 3339 time in UTC
    /// (`2026-12-01T10:00:00Z`), or nanoseconds since the Unix epoch.
    #[arg(long, default_value = "start", value_parser = parse_from)]
    from: StreamFrom,
    /// Keep changes of this ledger (repeat the flag or give a comma list).
    #[arg(long = "ledger", value_name = "LEDGER", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    ledgers: Vec<u32>,
    /// Keep changes of this account, on either side of a transfer (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT", value_delimiter = ',', value_parser = parse_id)]
    accounts: Vec<u128>,
    /// Keep changes with this code, the account's or the transfer's (repeatable).
    #[arg(long = "code", value_name = "CODE", value_delimiter = ',')]
    codes: Vec<u16>,
    /// Keep streaming after catching up, until interrupted.
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    connection: Connection,
}

/// Parses `--from` (see [`SubscribeArgs`]).
pub fn parse_from(text: &str) -> Result<StreamFrom, String> {
    let text = text.trim();
    match text {
        "start" => return Ok(StreamFrom::Start),
        "now" => return Ok(StreamFrom::Now),
        _ => {}
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let nanos = text
            .parse::<u64>()
            .map_err(|_| format!("{text:?}: nanoseconds past the year 2554"))?;
        return Ok(StreamFrom::Time(Timestamp(nanos)));
    }
    if let Ok(positions) = text
        .split(',')
        .map(|p| p.trim().parse::<Position>())
        .collect::<Result<Vec<_>, _>>()
    {
        let mut partitions: Vec<u32> = positions.iter().map(|p| p.partition.0).collect();
        partitions.sort_unstable();
        if let Some(pair) = partitions.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two positions for partition {}", pair[0]));
        }
        return Ok(StreamFrom::After(positions));
    }
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("{text:?} is before 1970"))?;
        let nanos = u64::try_from(since.as_nanos())
            .map_err(|_| format!("{text:?} is past the year 2554"))?;
        return Ok(StreamFrom::Time(Timestamp(nanos)));
    }
    Err(format!(
        "expected start, now, positions P:INDEX.EVENT[,...], an RFC 3339 time in UTC or \
         nanoseconds since the epoch, got {text:?}"
    ))
}

/// Runs `tally subscribe` until caught up (or, with `--follow`, until interrupted).
pub async fn run(args: SubscribeArgs) -> Result<(), String> {
    let client = args.connection.connect().await?;
    let filter = StreamFilter {
        ledgers: args.ledgers.iter().map(|&l| LedgerId(l)).collect(),
        accounts: args.accounts.iter().map(|&a| AccountId(a)).collect(),
        codes: args.codes.clone(),
    };
    let mut subscription = client.subscribe(args.from.clone(), filter);
    // Lines are written through a buffer, flushed whenever no change is ready: a pipe sees
    // each change as soon as the stream goes quiet, without a write per line under load.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let mut line = Vec::new();
    loop {
        let item = match subscription.try_recv() {
            Some(item) => item,
            None => {
                if let Err(e) = out.flush() {
                    return write_failed(e);
                }
                match subscription.recv().await {
                    Some(item) => item,
                    None => break,
                }
            }
        };
        match item.map_err(|e| format!("subscribe: {e}"))? {
            Streamed::Change(change) => {
                line.clear();
                if args.connection.json {
                    write_change_json(&change, &mut line);
                } else {
                    line.extend_from_slice(change_line(&change).as_bytes());
                }
                line.push(b'\n');
                if let Err(e) = out.write_all(&line) {
                    return write_failed(e);
                }
            }
            Streamed::CaughtUp(positions) => {
                if let Err(e) = out.flush() {
                    return write_failed(e);
                }
                if !args.follow {
                    return Ok(());
                }
                if !args.connection.json {
                    let at: Vec<String> = positions.iter().map(Position::to_string).collect();
                    eprintln!("caught up at {}", at.join(","));
                }
            }
        }
    }
    Err("subscribe: the change stream stopped without saying why".to_owned())
}

/// A failed write to stdout: a reader that closed the pipe (`| head`) has what it wanted,
/// so that ends the command quietly.
fn write_failed(e: std::io::Error) -> Result<(), String> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(format!("cannot write to stdout: {e}"))
    }
}

/// RFC 3339 in UTC with nanoseconds (`2026-12-01T10:00:00.000000000Z`).
fn rfc3339(timestamp: Timestamp) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(timestamp.0)).to_string()
}

/// `ExceedsCredits` as `exceeds_credits`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The change's kind as `--json` names it.
fn kind_name(change: &Change) -> &'static str {
    match &change.body {
        ChangeBody::Ledger { .. } => "ledger",
        ChangeBody::Account { .. } => "account",
        ChangeBody::Transfer(t) if t.kind == TransferKind::Expired => "hold_expired",
        ChangeBody::Transfer(_) => "transfer",
    }
}

/// The result's name and code.
fn result_of(change: &Change) -> (&'static str, u32) {
    match &change.body {
        ChangeBody::Ledger { result, .. } => (result.name(), result.code()),
        ChangeBody::Account { result, .. } => (result.name(), result.code()),
        ChangeBody::Transfer(t) => (t.result.name(), t.result.code()),
    }
}

fn account_flag_names(flags: AccountFlags) -> Vec<&'static str> {
    [
        (AccountFlags::LINKED, "linked"),
        (AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS, "no_overdraft"),
        (
            AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS,
            "no_overcredit",
        ),
    ]
    .into_iter()
    .filter(|&(bit, _)| flags.has(bit))
    .map(|(_, name)| name)
    .collect()
}

fn transfer_flag_names(flags: TransferFlags) -> Vec<&'static str> {
    [
        (TransferFlags::LINKED, "linked"),
        (TransferFlags::PENDING, "pending"),
        (TransferFlags::POST_PENDING, "post_pending"),
        (TransferFlags::VOID_PENDING, "void_pending"),
    ]
    .into_iter()
    .filter(|&(bit, _)| flags.has(bit))
    .map(|(_, name)| name)
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One change as one JSON object (see the module documentation for the fields).
#[cfg(test)]
pub fn change_json(change: &Change) -> Value {
    serde_json::to_value(ChangeJson::of(change)).expect("a change serializes")
}

/// One change as one JSON line, appended to `out`: what `--json` prints.
fn write_change_json(change: &Change, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, &ChangeJson::of(change)).expect("a change serializes");
}

/// `--json`'s object for one change. Fields are in alphabetical order (as the output has
/// them); those of other kinds of change are left out (`None`), and a present field without
/// a value is `null` (`Some(None)`).
#[derive(serde::Serialize)]
struct ChangeJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asked: Option<Option<AskedJson>>,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit_balances: Option<Option<BalancesJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debit_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debit_balances: Option<Option<BalancesJson>>,
    event: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_bits: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<Vec<&'static str>>,
    /// A ledger's id is a number; accounts' and transfers' are strings.
    id: Value,
    index: u64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<Option<String>>,
    partition: u32,
    position: String,
    result: &'static str,
    result_code: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    scale: Option<u8>,
    time: String,
    timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data_128: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data_32: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data_64: Option<String>,
}

#[derive(serde::Serialize)]
struct BalancesJson {
    balance: String,
    credits_pending: String,
    credits_posted: String,
    debits_pending: String,
    debits_posted: String,
}

impl BalancesJson {
    fn of(b: &Balances, scale: u8) -> BalancesJson {
        BalancesJson {
            balance: net_posted(b, scale),
            credits_pending: format_minor(b.credits_pending, scale),
            credits_posted: format_minor(b.credits_posted, scale),
            debits_pending: format_minor(b.debits_pending, scale),
            debits_posted: format_minor(b.debits_posted, scale),
        }
    }
}

#[derive(serde::Serialize)]
struct AskedJson {
    amount: String,
    code: u16,
    credit_account: String,
    debit_account: String,
    flag_bits: u16,
    flags: Vec<&'static str>,
    id: String,
    ledger: u32,
    memo_hex: String,
    pending_id: String,
    refund_of: String,
    timeout_s: u32,
    user_data_128: String,
    user_data_32: u32,
    user_data_64: String,
}

impl AskedJson {
    fn of(asked: &NewTransfer) -> AskedJson {
        AskedJson {
            amount: asked.amount.to_string(),
            code: asked.code,
            credit_account: asked.credit_account.0.to_string(),
            debit_account: asked.debit_account.0.to_string(),
            flag_bits: asked.flags.0,
            flags: transfer_flag_names(asked.flags),
            id: asked.id.0.to_string(),
            ledger: asked.ledger.0,
            memo_hex: hex(&asked.memo),
            pending_id: asked.pending_id.0.to_string(),
            refund_of: asked.refund_of.0.to_string(),
            timeout_s: asked.timeout_s,
            user_data_128: asked.user_data_128.to_string(),
            user_data_32: asked.user_data_32,
            user_data_64: asked.user_data_64.to_string(),
        }
    }
}

impl ChangeJson {
    fn of(change: &Change) -> ChangeJson {
        let (result, result_code) = result_of(change);
        let mut out = ChangeJson {
            amount: None,
            asked: None,
            code: 0,
            credit_account: None,
            credit_balances: None,
            debit_account: None,
            debit_balances: None,
            event: change.position.event,
            flag_bits: None,
            flags: None,
            id: Value::Null,
            index: change.position.index,
            kind: kind_name(change),
            ledger: None,
            limit: None,
            partition: change.position.partition.0,
            position: change.position.to_string(),
            result,
            result_code,
            scale: None,
            time: rfc3339(change.timestamp),
            timestamp: change.timestamp.0,
            transfer_kind: None,
            user_data_128: None,
            user_data_32: None,
            user_data_64: None,
        };
        match &change.body {
            ChangeBody::Ledger { ledger, .. } => {
                out.id = Value::from(ledger.id.0);
                out.scale = Some(ledger.scale);
                out.code = ledger.code;
            }
            ChangeBody::Account { account, .. } => {
                out.id = Value::from(account.id.0.to_string());
                out.ledger = Some(account.ledger.0);
                out.code = account.code;
                out.flags = Some(account_flag_names(account.flags));
                out.flag_bits = Some(account.flags.0);
                out.limit = Some(account.limit.map(|l| l.to_string()));
                out.user_data_128 = Some(account.user_data_128.to_string());
                out.user_data_64 = Some(account.user_data_64.to_string());
                out.user_data_32 = Some(account.user_data_32);
            }
            ChangeBody::Transfer(t) => {
                let moved = t.result == TransferResult::Ok;
                let balances = |b: &Balances| Some(moved.then(|| BalancesJson::of(b, t.scale)));
                out.id = Value::from(t.id.0.to_string());
                out.transfer_kind = Some(t.kind.name());
                out.ledger = Some(t.ledger.0);
                out.scale = Some(t.scale);
                out.debit_account = Some(t.debit_account.0.to_string());
                out.credit_account = Some(t.credit_account.0.to_string());
                out.code = t.code;
                out.amount = Some(format_minor(t.amount, t.scale));
                out.debit_balances = balances(&t.debit_balances);
                out.credit_balances = balances(&t.credit_balances);
                out.asked = Some(t.asked.as_ref().map(AskedJson::of));
            }
        }
        out
    }
}

/// One account's balance after a transfer: posted credits minus debits, and the pending
/// ones when there are any.
fn balance_text(balances: &Balances, scale: u8) -> String {
    let posted = format_signed(balances.credits_posted, balances.debits_posted, scale);
    if balances.credits_pending == 0 && balances.debits_pending == 0 {
        return posted;
    }
    let pending = format_signed(balances.credits_pending, balances.debits_pending, scale);
    format!("{posted} pending {pending}")
}

/// One change as one line of text:
/// `0:17.3  2026-12-01T10:00:00.000000000Z  transfer ok plain 1 -> 4 amount 2.50 …`.
pub fn change_line(change: &Change) -> String {
    let (result, _) = result_of(change);
    let result = snake_case(result);
    let what = match &change.body {
        ChangeBody::Ledger { ledger, .. } => format!(
            "ledger {result} {} scale {} code {}",
            ledger.id, ledger.scale, ledger.code
        ),
        ChangeBody::Account { account, .. } => {
            let mut line = format!(
                "account {result} {} ledger {} code {}",
                account.id, account.ledger, account.code
            );
            let flags = account_flag_names(account.flags);
            if !flags.is_empty() {
                line.push_str(&format!(" flags {}", flags.join(",")));
            }
            if let Some(limit) = account.limit {
                line.push_str(&format!(" limit {limit}"));
            }
            line
        }
        ChangeBody::Transfer(t) => {
            let head = if t.kind == TransferKind::Expired {
                format!("hold_expired {result}")
            } else {
                format!("transfer {result} {}", snake_case(t.kind.name()))
            };
            let accounts = format!("{} -> {}", t.debit_account, t.credit_account);
            let tail = format!("ledger {} code {} id {}", t.ledger, t.code, t.id);
            if t.result == TransferResult::Ok {
                format!(
                    "{head} {accounts} amount {} {tail} (debit balance {}, credit balance {})",
                    format_minor(t.amount, t.scale),
                    balance_text(&t.debit_balances, t.scale),
                    balance_text(&t.credit_balances, t.scale)
                )
            } else {
                let asked = t
                    .asked
                    .as_ref()
                    .map_or_else(|| "nothing".to_owned(), |a| a.amount.to_string());
                format!("{head} {accounts} asked {asked} {tail}")
            }
        }
    };
    format!("{}  {}  {what}", change.position, rfc3339(change.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use serde_json::json;
    use tally_client::{AccountResult, NewLedger, PartitionId, TransferId};
    use tally_client::{NewAccount, TransferChange};

    fn at(partition: u32, index: u64, event: u32) -> Position {
        Position {
            partition: PartitionId(partition),
            index,
            event,
        }
    }

    /// 2026-12-01T10:00:00Z.
    const TEN_AM_NS: u64 = 1_796_119_200_000_000_000;

    fn plain_transfer(result: TransferResult) -> Change {
        let mut asked = NewTransfer::plain(
            TransferId(77),
            AccountId(1),
            AccountId(4),
            Decimal::new(250, 2),
            LedgerId(1),
        );
        asked.user_data_128 = u128::MAX;
        asked.memo = b"ok\x00".to_vec();
        let moved = result == TransferResult::Ok;
        Change {
            position: at(0, 17, 3),
            timestamp: Timestamp(TEN_AM_NS),
            body: ChangeBody::Transfer(TransferChange {
                id: TransferId(77),
                asked: Some(asked),
                result,
                kind: TransferKind::Plain,
                ledger: LedgerId(1),
                scale: 2,
                debit_account: AccountId(1),
                credit_account: AccountId(4),
                code: 1,
                amount: if moved { 250 } else { 0 },
                debit_balances: Balances {
                    debits_posted: if moved { 250 } else { 0 },
                    ..Balances::default()
                },
                credit_balances: Balances {
                    credits_posted: if moved { 1250 } else { 0 },
                    debits_posted: if moved { 100 } else { 0 },
                    ..Balances::default()
                },
            }),
        }
    }

    #[test]
    fn from_takes_every_documented_form() {
        assert_eq!(parse_from("start"), Ok(StreamFrom::Start));
        assert_eq!(parse_from(" now "), Ok(StreamFrom::Now));
        assert_eq!(
            parse_from("0:17.3,1:5.0"),
            Ok(StreamFrom::After(vec![at(0, 17, 3), at(1, 5, 0)]))
        );
        assert_eq!(
            parse_from("2026-12-01T10:00:00Z"),
            Ok(StreamFrom::Time(Timestamp(TEN_AM_NS)))
        );
        assert_eq!(
            parse_from("2026-12-01T10:00:00.5+00:00"),
            Ok(StreamFrom::Time(Timestamp(TEN_AM_NS + 500_000_000)))
        );
        assert_eq!(parse_from("12345"), Ok(StreamFrom::Time(Timestamp(12345))));
        for bad in [
            "",
            "later",
            "0:17",
            "0:1.0,0:2.0",
            "2026-12-01T10:00:00+02:00",
            "99999999999999999999",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_transfer_line_says_what_moved_and_the_balances_after() {
        assert_eq!(
            change_line(&plain_transfer(TransferResult::Ok)),
            "0:17.3  2026-12-01T10:00:00.000000000Z  transfer ok plain 1 -> 4 amount 2.50 \
             ledger 1 code 1 id 77 (debit balance -2.50, credit balance 11.50)"
        );
        assert_eq!(
            change_line(&plain_transfer(TransferResult::ExceedsCredits)),
            "0:17.3  2026-12-01T10:00:00.000000000Z  transfer exceeds_credits plain 1 -> 4 \
             asked 2.50 ledger 1 code 1 id 77"
        );
    }

    #[test]
    fn a_transfer_json_line_is_a_complete_record() {
        let line = change_json(&plain_transfer(TransferResult::Ok));
        let balances = |credits: &str, debits: &str, net: &str| {
            json!({
                "balance": net,
                "debits_posted": debits,
                "debits_pending": "0.00",
                "credits_posted": credits,
                "credits_pending": "0.00",
            })
        };
        assert_eq!(
            line,
            json!({
                "position": "0:17.3",
                "partition": 0,
                "index": 17,
                "event": 3,
                "timestamp": TEN_AM_NS,
                "time": "2026-12-01T10:00:00.000000000Z",
                "kind": "transfer",
                "result": "Ok",
                "result_code": 0,
                "id": "77",
                "transfer_kind": "Plain",
                "ledger": 1,
                "scale": 2,
                "debit_account": "1",
                "credit_account": "4",
                "code": 1,
                "amount": "2.50",
                "debit_balances": balances("0.00", "2.50", "-2.50"),
                "credit_balances": balances("12.50", "1.00", "11.50"),
                "asked": {
                    "id": "77",
                    "debit_account": "1",
                    "credit_account": "4",
                    "amount": "2.50",
                    "ledger": 1,
                    "code": 1,
                    "flags": [],
                    "flag_bits": 0,
                    "pending_id": "0",
                    "refund_of": "0",
                    "timeout_s": 0,
                    "user_data_128": u128::MAX.to_string(),
                    "user_data_64": "0",
                    "user_data_32": 0,
                    "memo_hex": "6f6b00",
                },
            })
        );
        let refused = change_json(&plain_transfer(TransferResult::ExceedsCredits));
        assert_eq!(refused["result"], "ExceedsCredits");
        assert_eq!(refused["result_code"], 39);
        assert_eq!(refused["amount"], "0.00");
        assert_eq!(refused["debit_balances"], Value::Null);
        assert_eq!(refused["credit_balances"], Value::Null);
    }

    #[test]
    fn ledger_and_account_lines_carry_what_was_asked() {
        let ledger = Change {
            position: at(1, 2, 0),
            timestamp: Timestamp(TEN_AM_NS),
            body: ChangeBody::Ledger {
                ledger: NewLedger {
                    id: LedgerId(3),
                    scale: 0,
                    code: 9,
                },
                result: tally_client::LedgerResult::Ok,
            },
        };
        let json = change_json(&ledger);
        assert_eq!(json["kind"], "ledger");
        assert_eq!(
            (&json["id"], &json["scale"], &json["code"]),
            (&json!(3), &json!(0), &json!(9))
        );
        assert!(change_line(&ledger).ends_with("ledger ok 3 scale 0 code 9"));

        let account = Change {
            position: at(1, 3, 0),
            timestamp: Timestamp(TEN_AM_NS),
            body: ChangeBody::Account {
                account: NewAccount {
                    id: AccountId(10),
                    ledger: LedgerId(3),
                    code: 2,
                    flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
                    limit: Some(Decimal::new(5, 0)),
                    user_data_128: 1,
                    user_data_64: 2,
                    user_data_32: 3,
                },
                result: AccountResult::LedgerNotFound,
            },
        };
        let json = change_json(&account);
        assert_eq!(json["kind"], "account");
        assert_eq!(json["result"], "LedgerNotFound");
        assert_eq!(json["id"], "10");
        assert_eq!(json["flags"], json!(["no_overdraft"]));
        assert_eq!(json["flag_bits"], 2);
        assert_eq!(json["limit"], "5");
        assert_eq!(
            (
                &json["user_data_128"],
                &json["user_data_64"],
                &json["user_data_32"]
            ),
            (&json!("1"), &json!("2"), &json!(3))
        );
        assert!(change_line(&account)
            .ends_with("account ledger_not_found 10 ledger 3 code 2 flags no_overdraft limit 5"));
    }

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake_case("Ok"), "ok");
        assert_eq!(snake_case("ExceedsCredits"), "exceeds_credits");
        assert_eq!(snake_case("Plain"), "plain");
    }
}
