//! `tally batch [FILE|-]`: transfers from JSON lines, sent as one request, so that linked
//! chains (a shop purchase: the charge and the items granted together) can be made from a
//! shell.
//!
//! One JSON object per line, the fields of `tally transfer`'s flags:
//!
//! ```text
//! {"id": "1001", "from": 7, "to": 1, "amount": "4.99", "ledger": 1, "linked": true}
//! {"id": "1002", "from": 2, "to": 8, "amount": "1", "ledger": 2}
//! ```
//!
//! `id` (or `"new"`), `from`, `to` and every id field take a decimal number or a string
//! (decimal, or `0x` hex: JSON numbers lose precision past 2^53 in most readers); `amount` is a
//! decimal string or an integer. `linked: true` links an event to the next one: a chain
//! (consecutive linked events and the first one after them that is not linked) is applied
//! whole or not at all. The last line must not be linked. Every line is checked before
//! anything is sent: a bad line stops the command with its number, and nothing is applied.
//!
//! Each event's result is printed in order (`--json`: one object per line). The exit code is
//! 0 only if every event was `Ok`.

use std::io::BufRead;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tally_client::{NewTransfer, TransferFlags, TransferId, TransferResult};

use super::ops::{build_transfer, TransferKindChoice};
use super::{balances_json, balances_line, format_minor, parse_id, print_json, Connection};

/// `tally batch`
#[derive(clap::Args)]
pub struct BatchArgs {
    /// A file of JSON lines, one transfer each, or `-` for standard input (see `tally batch
    /// --help` and `docs/operations.md`).
    #[arg(default_value = "-")]
    input: String,
    #[command(flatten)]
    connection: Connection,
}

/// An id: a JSON number, or a string with a decimal or `0x` hex id.
#[derive(Deserialize)]
#[serde(transparent)]
struct IdField(serde_json::Value);

impl IdField {
    fn id(&self) -> Result<u128, String> {
        let id = match &self.0 {
            serde_json::Value::Number(n) => n.as_u64().map(u128::from).ok_or_else(|| {
                format!("expected a positive whole number, got {n} (give larger ids as strings)")
            })?,
            serde_json::Value::String(text) => parse_id(text)?,
            other => return Err(format!("expected a number or a string, got {other}")),
        };
        if id == 0 {
            return Err("ids must not be zero".into());
        }
        Ok(id)
    }

    fn is_new(&self) -> bool {
        matches!(&self.0, serde_json::Value::String(t) if t.trim().eq_ignore_ascii_case("new"))
    }

    fn is_zero(&self) -> bool {
        self.0.as_u64() == Some(0)
    }
}

/// An amount: a decimal string, or a whole JSON number.
#[derive(Deserialize)]
#[serde(transparent)]
struct AmountField(serde_json::Value);

impl AmountField {
    fn amount(&self) -> Result<Decimal, String> {
        match &self.0 {
            serde_json::Value::String(text) => text
                .trim()
                .parse::<Decimal>()
                .map_err(|e| format!("expected a decimal, got {text:?}: {e}")),
            serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(v), _) => Ok(Decimal::from(v)),
                (None, Some(v)) => Ok(Decimal::from(v)),
                _ => Err(format!(
                    "expected a whole number or a decimal string, got {n} (write \"{n}\")"
                )),
            },
            other => Err(format!("expected a decimal string, got {other}")),
        }
    }
}

/// One line of the input.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: IdField,
    from: Option<IdField>,
    to: Option<IdField>,
    amount: Option<AmountField>,
    ledger: Option<u32>,
    #[serde(default)]
    pending: bool,
    timeout_s: Option<u32>,
    post: Option<IdField>,
    void: Option<IdField>,
    refund_of: Option<IdField>,
    #[serde(default)]
    linked: bool,
    code: Option<u16>,
    user_data: Option<IdField>,
    memo: Option<String>,
}

fn optional_id(field: &Option<IdField>, name: &str) -> Result<Option<u128>, String> {
    field
        .as_ref()
        .map(|f| f.id().map_err(|e| format!("{name}: {e}")))
        .transpose()
}

impl Line {
    fn to_new_transfer(&self) -> Result<NewTransfer, String> {
        let id = if self.id.is_new() {
            tally_client::ids::new_id()
        } else {
            self.id.id().map_err(|e| format!("id: {e}"))?
        };
        let post = optional_id(&self.post, "post")?;
        let void = optional_id(&self.void, "void")?;
        let refund_of = optional_id(&self.refund_of, "refund_of")?;
        let kind = match (self.pending, post, void, refund_of) {
            (false, None, None, None) => TransferKindChoice::Plain,
            (true, None, None, None) => TransferKindChoice::Pending {
                timeout_s: self.timeout_s.unwrap_or(0),
            },
            (false, Some(hold), None, None) => TransferKindChoice::Post(hold),
            (false, None, Some(hold), None) => TransferKindChoice::Void(hold),
            (false, None, None, Some(original)) => TransferKindChoice::Refund(original),
            _ => return Err("at most one of pending, post, void and refund_of".into()),
        };
        if self.timeout_s.is_some() && !self.pending {
            return Err("timeout_s needs pending".into());
        }
        let names_original = !matches!(
            kind,
            TransferKindChoice::Plain | TransferKindChoice::Pending { .. }
        );
        let from = optional_id(&self.from, "from")?;
        let to = optional_id(&self.to, "to")?;
        if !names_original {
            for (value, name) in [(from, "from"), (to, "to")] {
                if value.is_none() {
                    return Err(format!(
                        "{name} is required (but for post, void, refund_of)"
                    ));
                }
            }
            if self.ledger.is_none() {
                return Err("ledger is required (but for post, void, refund_of)".into());
            }
        }
        let amount = match &self.amount {
            None if matches!(
                kind,
                TransferKindChoice::Post(_) | TransferKindChoice::Void(_)
            ) =>
            {
                Decimal::ZERO
            }
            None => return Err("amount is required (but for post and void)".into()),
            Some(amount) => amount.amount().map_err(|e| format!("amount: {e}"))?,
        };
        let memo = self.memo.clone().unwrap_or_default();
        if memo.len() > tally_client::wire::MEMO_SIZE_MAX {
            return Err(format!(
                "memo: {} bytes; a memo holds at most {}",
                memo.len(),
                tally_client::wire::MEMO_SIZE_MAX
            ));
        }
        let user_data = match &self.user_data {
            None => 0,
            Some(field) if field.is_zero() => 0,
            Some(field) => field.id().map_err(|e| format!("user_data: {e}"))?,
        };
        let mut transfer = build_transfer(
            id,
            from.unwrap_or(0),
            to.unwrap_or(0),
            amount,
            self.ledger.unwrap_or(0),
            kind,
        );
        transfer.code = self.code.unwrap_or(1);
        transfer.user_data_128 = user_data;
        transfer.memo = memo.into_bytes();
        if self.linked {
            transfer.flags = TransferFlags(transfer.flags.0 | TransferFlags::LINKED);
        }
        Ok(transfer)
    }
}

/// Reads and checks every line of `input` (`-`: standard input).
fn read_transfers(input: &str) -> Result<Vec<NewTransfer>, String> {
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input).map_err(|e| format!("cannot read {input}: {e}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    parse_lines(reader)
}

fn parse_lines(reader: impl BufRead) -> Result<Vec<NewTransfer>, String> {
    let mut transfers = Vec::new();
    let mut last_line = 0;
    for (index, text) in reader.lines().enumerate() {
        let number = index + 1;
        let text = text.map_err(|e| format!("line {number}: cannot read: {e}"))?;
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| format!("line {number}: {e}"))?;
        let transfer = line
            .to_new_transfer()
            .map_err(|e| format!("line {number}: {e}"))?;
        transfers.push(transfer);
        last_line = number;
    }
    match transfers.last() {
        None => Err("no transfers: the input has no lines".into()),
        Some(last) if last.flags.0 & TransferFlags::LINKED != 0 => Err(format!(
            "line {last_line}: the last transfer is linked, so its chain has no end"
        )),
        Some(_) => Ok(transfers),
    }
}

/// Runs `tally batch`.
pub async fn run(args: BatchArgs) -> Result<(), String> {
    let transfers = read_transfers(&args.input)?;
    let ids: Vec<u128> = transfers.iter().map(|t| t.id.0).collect();
    let client = args.connection.connect().await?;
    let outcomes = client
        .create_transfers(transfers)
        .await
        .map_err(|e| format!("batch of {} transfers: {e}", ids.len()))?;
    if outcomes.len() != ids.len() {
        return Err(format!(
            "batch: {} results for {} transfers",
            outcomes.len(),
            ids.len()
        ));
    }
    // The outcomes' balances carry no scale; the recorded transfers have it.
    let applied: Vec<TransferId> = ids
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.result == TransferResult::Ok)
        .map(|(&id, _)| TransferId(id))
        .collect();
    let recorded = if applied.is_empty() {
        Vec::new()
    } else {
        client.lookup_transfers(applied).await.map_err(|e| {
            format!("the batch was answered, but looking up its transfers failed: {e}")
        })?
    };
    let mut failed = 0;
    for (id, outcome) in ids.iter().zip(&outcomes) {
        let result = outcome.result.name();
        let found = recorded.iter().find(|t| t.id.0 == *id);
        match (outcome.result, found) {
            (TransferResult::Ok, Some(t)) => {
                let scale = t.scale;
                if args.connection.json {
                    print_json(&json!({
                        "transfer": id.to_string(),
                        "result": result,
                        "kind": t.kind.name(),
                        "amount": format_minor(t.amount, scale),
                        "from": t.debit_account.0.to_string(),
                        "to": t.credit_account.0.to_string(),
                        "from_balances": balances_json(&outcome.debit_balances, scale),
                        "to_balances": balances_json(&outcome.credit_balances, scale),
                    }));
                } else {
                    println!(
                        "transfer {id}: {result} ({} {} from {} to {})",
                        t.kind.name(),
                        format_minor(t.amount, scale),
                        t.debit_account,
                        t.credit_account
                    );
                    println!(
                        "  from {}: {}",
                        t.debit_account,
                        balances_line(&outcome.debit_balances, scale)
                    );
                    println!(
                        "  to   {}: {}",
                        t.credit_account,
                        balances_line(&outcome.credit_balances, scale)
                    );
                }
            }
            _ => {
                if outcome.result != TransferResult::Ok || found.is_none() {
                    failed += 1;
                }
                if args.connection.json {
                    print_json(&json!({"transfer": id.to_string(), "result": result}));
                } else {
                    println!("transfer {id}: {result}");
                }
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} transfers not applied (or not found after)",
            ids.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<NewTransfer>, String> {
        parse_lines(text.as_bytes())
    }

    #[test]
    fn lines_become_transfers_with_their_chains() {
        let transfers = parse(
            r#"{"id": 1, "from": "7", "to": 1, "amount": "4.99", "ledger": 1, "linked": true}

{"id": "0x2", "post": 9, "linked": true}
{"id": 3, "from": 2, "to": 8, "amount": 1, "ledger": 2, "pending": true, "timeout_s": 60}"#,
        )
        .expect("valid");
        assert_eq!(transfers.len(), 3);
        assert_eq!(transfers[0].amount, Decimal::new(499, 2));
        assert_ne!(transfers[0].flags.0 & TransferFlags::LINKED, 0);
        assert_eq!(transfers[1].id, TransferId(2));
        assert_eq!(transfers[1].pending_id, TransferId(9));
        assert_eq!(
            transfers[1].flags.0,
            TransferFlags::POST_PENDING | TransferFlags::LINKED
        );
        assert_eq!(transfers[2].flags.0, TransferFlags::PENDING);
        assert_eq!(transfers[2].timeout_s, 60);
        assert_eq!(transfers[2].amount, Decimal::from(1));
    }

    #[test]
    fn a_bad_line_is_refused_with_its_number() {
        let cases = [
            (
                r#"{"id": 1, "from": 1, "to": 2, "amount": "1", "ledger": 1, "amout": 1}"#,
                "line 1: unknown field `amout`",
            ),
            (
                r#"{"id": 0, "from": 1, "to": 2, "amount": "1", "ledger": 1}"#,
                "line 1: id: ids must not be zero",
            ),
            (
                r#"{"id": 1, "to": 2, "amount": "1", "ledger": 1}"#,
                "line 1: from is required",
            ),
            (
                r#"{"id": 1, "from": 1, "to": 2, "amount": "x", "ledger": 1}"#,
                "line 1: amount: expected a decimal",
            ),
            (
                r#"{"id": 1, "from": 1, "to": 2, "amount": "1", "ledger": 1, "post": 3, "void": 4}"#,
                "line 1: at most one of",
            ),
            (
                r#"{"id": 1, "from": 1, "to": 2, "amount": "1", "ledger": 1, "timeout_s": 4}"#,
                "line 1: timeout_s needs pending",
            ),
            (
                r#"{"id": 1, "from": 1, "to": 2, "amount": "1", "ledger": 1, "linked": true}"#,
                "line 1: the last transfer is linked",
            ),
            ("", "no transfers"),
            ("{\"id\": 1, \"post\": 2}\nnot json", "line 2: expected"),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
