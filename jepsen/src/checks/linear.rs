//! Per-account linearizability of reads and plain transfers (Wing & Gong's search with
//! Lowe's memoization, as Porcupine does it).
//!
//! Each account is checked on its own (linearizability composes): its state is the pair
//! (debits posted, credits posted), and the operations on it are
//!
//! - every plain transfer that took effect — acknowledged `Ok`, or of unknown outcome but
//!   held applied at the end — which adds its amount to the debits (the account paid) or
//!   the credits (it was paid); paying also requires, for an account that may not overdraw,
//!   credits − debits ≥ amount at that instant, since the state machine checked it;
//! - every transfer refused for want of funds (`ExceedsCredits`), which requires
//!   credits − debits < amount at that instant and changes nothing;
//! - every read that answered, which requires the state to be exactly what it saw;
//! - the final read-back, after everything.
//!
//! An operation takes effect at one instant between its invocation and its completion (for
//! one of unknown outcome: before the final read-back; for a transfer retried under one id:
//! from its first invocation to the answer). The search looks for an order of all of them
//! consistent with those windows in which every requirement holds. There is none when a
//! read saw a state that was already gone (a stale read), or one that never existed, or
//! when a transfer took effect without the funds for it.
//!
//! Debits and credits only grow, so a stale read never hides behind a later state; and the
//! search memoizes (operations taken, state) pairs so it never explores the same situation
//! twice. It stops after [`CACHE_BYTES_MAX`] of memo and then says it could not decide.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::Check;
use crate::history::{pairs, Final, Kind, Op, F};

/// The memo the search may use per account before it gives up undecided.
pub const CACHE_BYTES_MAX: usize = 1 << 30;

/// Debits posted, credits posted.
type State = (u64, u64);

#[derive(Clone, Debug)]
enum Effect {
    /// The state must be exactly this.
    Read(State),
    /// Pays `amount`; `guarded`: only with the funds for it.
    Pay { amount: u64, guarded: bool },
    /// Is paid `amount`.
    Paid(u64),
    /// Refused for want of funds: the balance was below `amount`.
    Refused(u64),
}

#[derive(Clone, Debug)]
struct Operation {
    call: u64,
    ret: u64,
    effect: Effect,
    /// How to name it in evidence.
    what: String,
}

impl Operation {
    fn step(&self, (debits, credits): State) -> Option<State> {
        let balance = i128::from(credits) - i128::from(debits);
        match self.effect {
            Effect::Read(seen) => (seen == (debits, credits)).then_some(seen),
            Effect::Pay { amount, guarded } => {
                if guarded && balance < i128::from(amount) {
                    return None;
                }
                Some((debits.checked_add(amount)?, credits))
            }
            Effect::Paid(amount) => Some((debits, credits.checked_add(amount)?)),
            Effect::Refused(amount) => (balance < i128::from(amount)).then_some((debits, credits)),
        }
    }
}

/// What one account's search came to.
enum Verdict {
    Linearizable,
    /// No order exists; the operation the deepest attempt could not place.
    Violation(String),
    /// The memo grew past its budget.
    Undecided,
}

/// Checks every account of `end` against the history.
pub fn check(ops: &[Op], end: &Final) -> Check {
    let mut check = Check::new("linearizable");
    let history_end = ops.iter().map(|o| o.time_ns).max().unwrap_or(0) + 1;
    let guarded: BTreeSet<u64> = end.no_overdraft.iter().copied().collect();
    let mut per_account: BTreeMap<u64, Vec<Operation>> = BTreeMap::new();

    for (account, op) in transfers(ops, end, history_end, &guarded) {
        per_account.entry(account).or_default().push(op);
    }
    for (invoke, completion) in pairs(ops) {
        let Some(done) = completion.filter(|c| invoke.f == F::Read && c.kind == Kind::Ok) else {
            continue;
        };
        for (&account, b) in done.balances.iter().flatten() {
            per_account.entry(account).or_default().push(Operation {
                call: invoke.time_ns,
                ret: done.time_ns,
                effect: Effect::Read((b[0], b[1])),
                what: format!(
                    "read {} by process {} over [{}, {}] ns saw debits {} credits {}",
                    done.index, done.process, invoke.time_ns, done.time_ns, b[0], b[1]
                ),
            });
        }
    }
    for (&account, b) in &end.accounts {
        per_account.entry(account).or_default().push(Operation {
            call: history_end,
            ret: history_end + 1,
            effect: Effect::Read((b[0], b[1])),
            what: format!("the final read-back saw debits {} credits {}", b[0], b[1]),
        });
    }

    for (account, operations) in per_account {
        check.count("accounts");
        for _ in &operations {
            check.count("operations");
        }
        match search(&operations) {
            Verdict::Linearizable => {}
            Verdict::Violation(evidence) => check.fail(format!(
                "account {account}: no order of its operations fits their times; {evidence}"
            )),
            Verdict::Undecided => {
                if check.valid == Some(true) {
                    check.valid = None;
                }
                check.count("accounts undecided");
                check.errors.push(format!(
                    "account {account}: the search ran out of memory budget"
                ));
            }
        }
    }
    check
}

/// The plain transfers that took effect, or were refused for want of funds, as operations
/// on the accounts they touch.
fn transfers(
    ops: &[Op],
    end: &Final,
    history_end: u64,
    guarded: &BTreeSet<u64>,
) -> Vec<(u64, Operation)> {
    // Every attempt of one id: the first invocation, and the first definite answer.
    struct Attempts<'a> {
        invoke: &'a Op,
        answer: Option<&'a Op>,
    }
    let mut by_id: BTreeMap<&str, Attempts> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.f == F::Transfer) {
        let Some(id) = op.id.as_deref() else {
            continue;
        };
        match op.kind {
            Kind::Invoke => {
                by_id.entry(id).or_insert(Attempts {
                    invoke: op,
                    answer: None,
                });
            }
            Kind::Ok | Kind::Fail if op.result.is_some() => {
                if let Some(attempts) = by_id.get_mut(id) {
                    attempts.answer.get_or_insert(op);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (id, attempts) in by_id {
        let invoke = attempts.invoke;
        let (Some(from), Some(to), Some(amount)) = (invoke.from, invoke.to, invoke.amount) else {
            continue;
        };
        // The outcome: the answer if one came, else what the cluster holds.
        let (result, ret) = match attempts.answer {
            Some(answer) => (answer.result.clone().unwrap_or_default(), answer.time_ns),
            None => match end.transfers.get(id) {
                Some(held) => (held.result.clone(), history_end),
                None => continue,
            },
        };
        let window = |effect, side: &str| Operation {
            call: invoke.time_ns,
            ret,
            effect,
            what: format!(
                "transfer {id} ({side}, {amount} units, {result}) over [{}, {ret}] ns",
                invoke.time_ns
            ),
        };
        match result.as_str() {
            "Ok" => {
                out.push((
                    from,
                    window(
                        Effect::Pay {
                            amount,
                            guarded: guarded.contains(&from),
                        },
                        &format!("paid to {to}"),
                    ),
                ));
                out.push((to, window(Effect::Paid(amount), &format!("paid by {from}"))));
            }
            "ExceedsCredits" if guarded.contains(&from) => {
                out.push((
                    from,
                    window(Effect::Refused(amount), "refused: insufficient funds"),
                ));
            }
            _ => {}
        }
    }
    out
}

const NIL: usize = usize::MAX;

/// One end of an operation's window, in a doubly linked list sorted by time.
struct Entry {
    op: usize,
    call: bool,
    prev: usize,
    next: usize,
}

/// Wing–Gong–Lowe search: is there an order of `operations`, consistent with their
/// windows, in which every step holds?
fn search(operations: &[Operation]) -> Verdict {
    let n = operations.len();
    // Entry 0 is the head; then every call and return, by time, calls first at a tie (the
    // lenient reading: windows that touch overlap).
    let mut ends: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in operations.iter().enumerate() {
        ends.push((op.call, true, i));
        ends.push((op.ret.max(op.call), false, i));
    }
    ends.sort_by_key(|&(time, call, i)| (time, !call, i));
    let mut entries = vec![Entry {
        op: NIL,
        call: false,
        prev: NIL,
        next: NIL,
    }];
    let mut return_of = vec![0; n];
    for (position, &(_, call, op)) in ends.iter().enumerate() {
        let index = position + 1;
        entries.push(Entry {
            op,
            call,
            prev: index - 1,
            next: if position + 1 < ends.len() {
                index + 1
            } else {
                NIL
            },
        });
        if !call {
            return_of[op] = index;
        }
    }
    entries[0].next = if ends.is_empty() { NIL } else { 1 };

    let words = n.div_ceil(64);
    let entries_max = CACHE_BYTES_MAX / (words * 8 + 48).max(1);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = (0, 0);
    let mut deepest = (0usize, NIL, (0, 0));
    let mut cursor = entries[0].next;

    while entries[0].next != NIL {
        if cursor == NIL {
            // Every remaining entry is a call that could not go first: nothing is pending
            // return, so this cannot happen (a call always precedes its return).
            return Verdict::Violation("the search lost its place".into());
        }
        let op = entries[cursor].op;
        if entries[cursor].call {
            if let Some(next) = operations[op].step(state) {
                linearized[op / 64] |= 1 << (op % 64);
                if cache.insert((linearized.clone(), next)) {
                    if cache.len() > entries_max {
                        return Verdict::Undecided;
                    }
                    stack.push((cursor, state));
                    state = next;
                    lift(&mut entries, cursor, return_of[op]);
                    cursor = entries[0].next;
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            cursor = entries[cursor].next;
        } else {
            // This operation's window closed before any order could place it: go back.
            if stack.len() >= deepest.0 {
                deepest = (stack.len(), op, state);
            }
            let Some((call, previous)) = stack.pop() else {
                let blocked = &operations[deepest.1];
                return Verdict::Violation(format!(
                    "the longest consistent order placed {} operations and then could not \
                     place: {} (state before it: debits {}, credits {})",
                    deepest.0, blocked.what, deepest.2 .0, deepest.2 .1
                ));
            };
            let undone = entries[call].op;
            state = previous;
            linearized[undone / 64] &= !(1 << (undone % 64));
            unlift(&mut entries, call, return_of[undone]);
            cursor = entries[call].next;
        }
    }
    Verdict::Linearizable
}

fn lift(entries: &mut [Entry], call: usize, ret: usize) {
    for at in [call, ret] {
        let (prev, next) = (entries[at].prev, entries[at].next);
        entries[prev].next = next;
        if next != NIL {
            entries[next].prev = prev;
        }
    }
}

fn unlift(entries: &mut [Entry], call: usize, ret: usize) {
    for at in [ret, call] {
        let (prev, next) = (entries[at].prev, entries[at].next);
        entries[prev].next = at;
        if next != NIL {
            entries[next].prev = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: u64, effect: Effect) -> Operation {
        Operation {
            call,
            ret,
            effect,
            what: format!("[{call}, {ret}]"),
        }
    }

    #[test]
    fn concurrent_transfers_and_reads_fit() {
        let ops = vec![
            op(0, 10, Effect::Paid(100)),
            op(
                5,
                20,
                Effect::Pay {
                    amount: 30,
                    guarded: true,
                },
            ),
            op(6, 8, Effect::Read((0, 100))),
            op(21, 22, Effect::Read((30, 100))),
        ];
        assert!(matches!(search(&ops), Verdict::Linearizable));
    }

    #[test]
    fn a_stale_read_does_not() {
        let ops = vec![
            op(0, 10, Effect::Paid(100)),
            op(11, 12, Effect::Read((0, 100))),
            op(13, 20, Effect::Paid(5)),
            op(21, 22, Effect::Read((0, 100))),
        ];
        match search(&ops) {
            Verdict::Violation(evidence) => assert!(evidence.contains("[21, 22]"), "{evidence}"),
            _ => panic!("a stale read passed"),
        }
    }

    #[test]
    fn paying_without_funds_does_not() {
        let ops = vec![
            op(0, 10, Effect::Paid(10)),
            op(
                11,
                20,
                Effect::Pay {
                    amount: 30,
                    guarded: true,
                },
            ),
        ];
        assert!(matches!(search(&ops), Verdict::Violation(_)));
        // Unless a concurrent deposit can go first.
        let mut ops = ops;
        ops.push(op(12, 25, Effect::Paid(50)));
        assert!(matches!(search(&ops), Verdict::Linearizable));
    }

    #[test]
    fn a_refusal_needs_the_balance_below_the_amount() {
        let ops = vec![
            op(0, 10, Effect::Paid(100)),
            op(11, 20, Effect::Refused(30)),
        ];
        assert!(matches!(search(&ops), Verdict::Violation(_)));
    }
}
