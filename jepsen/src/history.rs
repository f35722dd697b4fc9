//! The recorded history of a run, and what the cluster held at its end.
//!
//! A history is a list of operations in the order they happened, as JSON lines
//! (`history.jsonl`): every operation is an `invoke` when a process starts it and then one
//! completion — `ok` (it happened, with its result), `fail` (it certainly did not happen) or
//! `info` (nobody knows: it may have happened). Times are nanoseconds since the run started,
//! on the harness's monotonic clock. After the run the harness reads back every account and
//! every transfer any operation named, and each node's view of its replicas (`final.json`):
//! the checkers judge the history against that.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What an entry of the history says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A process started the operation.
    Invoke,
    /// It happened (see `result`).
    Ok,
    /// It certainly did not happen.
    Fail,
    /// It may or may not have happened.
    Info,
}

/// Which operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum F {
    /// A plain transfer `from` → `to`.
    Transfer,
    /// A hold (pending transfer).
    Hold,
    /// Posting a hold (`reference`).
    Post,
    /// Voiding a hold (`reference`).
    Void,
    /// Refunding (part of) a transfer (`reference`).
    Refund,
    /// Reading the balances of accounts.
    Read,
}

/// One entry of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history.
    pub index: u64,
    /// The process (client task) that ran it; 0 is the harness's setup.
    pub process: u64,
    /// Invocation or completion.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Which operation.
    pub f: F,
    /// Nanoseconds since the run started.
    pub time_ns: u64,
    /// The transfer id, in decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Debit account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// Credit account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    /// Amount in minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// The hold posted or voided, or the transfer refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// A hold's timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
    /// The result code's name, for a completion that got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// A read: each account's balances (debits posted, credits posted, debits pending,
    /// credits pending).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances: Option<BTreeMap<u64, [u64; 4]>>,
    /// Why it failed or is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// A blank entry of `f` by `process`, to fill in.
    pub fn new(process: u64, kind: Kind, f: F) -> Op {
        Op {
            index: 0,
            process,
            kind,
            f,
            time_ns: 0,
            id: None,
            from: None,
            to: None,
            amount: None,
            reference: None,
            timeout_s: None,
            result: None,
            balances: None,
            error: None,
        }
    }
}

/// Collects the history while the run goes, in order.
pub struct Recorder {
    started: Instant,
    ops: Mutex<Vec<Op>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Appends `op`, stamping its index and time; returns the stamped copy.
    pub fn record(&self, mut op: Op) -> Op {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        op.index = ops.len() as u64;
        op.time_ns = self.now_ns();
        ops.push(op.clone());
        op
    }

    /// Counts of completions so far: (ok, fail, info).
    pub fn counts(&self) -> (u64, u64, u64) {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = (0, 0, 0);
        for op in ops.iter() {
            match op.kind {
                Kind::Ok => counts.0 += 1,
                Kind::Fail => counts.1 += 1,
                Kind::Info => counts.2 += 1,
                Kind::Invoke => {}
            }
        }
        counts
    }

    /// The history so far.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

/// One transfer as the cluster held it at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalTransfer {
    /// Result code name.
    pub result: String,
    /// Kind name (plain, pending, post, void, refund).
    pub kind: String,
    /// Debit account.
    pub from: u64,
    /// Credit account.
    pub to: u64,
    /// Amount moved (minor units).
    pub amount: u64,
    /// The hold or refunded transfer, in decimal (0: none).
    pub reference: String,
    /// Hold status name.
    pub hold: String,
    /// Refunded so far.
    pub refunded: u64,
    /// The outcome's timestamp (ns since the epoch).
    pub timestamp: u64,
}

/// One node's replica of one partition at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalReplica {
    /// The node.
    pub node: u64,
    /// The partition.
    pub partition: u32,
    /// Applied index.
    pub applied: u64,
    /// State digest at that index, in hex.
    pub digest: String,
    /// Still recovering.
    pub recovering: bool,
}

/// Flows and series an account answered, for the queries check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalQueries {
    /// `[from, to)` of the flows window, ns since the epoch.
    pub window: (u64, u64),
    /// Debits and credits posted over the window.
    pub flows: (u64, u64),
    /// Closing (credits − debits) posted balance per hour: (hour start, balance).
    pub series: Vec<(u64, i128)>,
}

/// What the cluster held at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Final {
    /// Every account: debits posted, credits posted, debits pending, credits pending.
    pub accounts: BTreeMap<u64, [u64; 4]>,
    /// Accounts whose debits may not exceed their credits.
    pub no_overdraft: Vec<u64>,
    /// Groups of accounts whose posted balances sum to a constant (one per partition).
    pub groups: Vec<Vec<u64>>,
    /// What each group's balances sum to.
    pub group_totals: Vec<i128>,
    /// Every transfer id any operation named that the cluster holds.
    pub transfers: BTreeMap<String, FinalTransfer>,
    /// Ids whose lookup failed (unresolved).
    pub unresolved: Vec<String>,
    /// How many nodes the cluster has (each must report its replicas).
    #[serde(default)]
    pub nodes: u64,
    /// Every node's replicas.
    pub replicas: Vec<FinalReplica>,
    /// Answers of flows and series queries, by account.
    pub queries: BTreeMap<u64, FinalQueries>,
}

/// Writes the history as JSON lines.
pub fn write_history(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a history written by [`write_history`].
pub fn read_history(path: &Path) -> Result<Vec<Op>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut ops = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

/// Pairs every invocation with its completion (`None`: the run ended first, which counts as
/// `info`). Returns (invoke, completion) pairs in invocation order.
pub fn pairs(ops: &[Op]) -> Vec<(Op, Option<Op>)> {
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    let mut out: Vec<(Op, Option<Op>)> = Vec::new();
    for op in ops {
        match op.kind {
            Kind::Invoke => {
                open.insert(op.process, out.len());
                out.push((op.clone(), None));
            }
            _ => {
                if let Some(at) = open.remove(&op.process) {
                    out[at].1 = Some(op.clone());
                }
            }
        }
    }
    out
}
