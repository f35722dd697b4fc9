//! The run's change-stream consumer: one subscription from the start, on node 1 only at
//! first (so that faults aimed at node 1 make it resume on the others), kept for the whole
//! run and read to the end once the cluster has converged; `checks::stream` judges what it
//! received. Each transfer change is kept as a [`StreamChange`] (`stream.jsonl` in the run
//! directory).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tally_client::{
    ChangeBody, Client, ClientOptions, StreamFilter, StreamFrom, Streamed, TransferResult,
};

/// One transfer decided (or hold expired) as the stream delivered it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChange {
    /// The partition.
    pub partition: u32,
    /// The log index of its entry.
    pub index: u64,
    /// Its number within the entry.
    pub event: u32,
    /// The transfer (for an expiry: the hold), in decimal.
    pub id: String,
    /// Result name.
    pub result: String,
    /// Transfer kind name (`Expired` for an expiry).
    pub kind: String,
    /// The hold a post or void settles, in decimal (else 0).
    pub pending_id: String,
    /// Debit account.
    pub from: u64,
    /// Credit account.
    pub to: u64,
    /// Amount moved (minor units).
    pub amount: u64,
    /// Both accounts' balances after it, as the final state has them: debits posted,
    /// credits posted, debits pending, credits pending.
    pub from_after: [u64; 4],
    /// The credit account's, likewise.
    pub to_after: [u64; 4],
}

/// A running consumer.
pub struct Consumer {
    task: tokio::task::JoinHandle<()>,
    changes: Arc<Mutex<Vec<StreamChange>>>,
    /// Per partition, the log index up to which every change has been taken.
    caught_up: Arc<Mutex<BTreeMap<u32, u64>>>,
    error: Arc<Mutex<Option<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn four(b: &tally_client::Balances) -> [u64; 4] {
    let n = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    [
        n(b.debits_posted),
        n(b.credits_posted),
        n(b.debits_pending),
        n(b.credits_pending),
    ]
}

impl Consumer {
    /// Subscribes from the start through `address` (retrying until a node answers).
    pub fn start(address: String) -> Consumer {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let caught_up = Arc::new(Mutex::new(BTreeMap::new()));
        let error = Arc::new(Mutex::new(None));
        let task = {
            let (changes, caught_up, error) = (changes.clone(), caught_up.clone(), error.clone());
            tokio::spawn(async move {
                let client = loop {
                    match Client::connect(std::slice::from_ref(&address), ClientOptions::default())
                        .await
                    {
                        Ok(client) => break client,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                };
                let mut stream = client.subscribe(StreamFrom::Start, StreamFilter::default());
                loop {
                    // Where the stream stands counts only once everything before it was
                    // taken: when nothing is ready.
                    let standing = stream.positions();
                    let item = match stream.try_recv() {
                        Some(item) => item,
                        None => {
                            {
                                let mut at = lock(&caught_up);
                                for p in standing {
                                    at.insert(p.partition.0, p.index);
                                }
                            }
                            match tokio::time::timeout(Duration::from_millis(100), stream.recv())
                                .await
                            {
                                Ok(Some(item)) => item,
                                Ok(None) => return,
                                Err(_) => continue,
                            }
                        }
                    };
                    match item {
                        Ok(Streamed::Change(change)) => {
                            let ChangeBody::Transfer(t) = &change.body else {
                                continue;
                            };
                            let n = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
                            lock(&changes).push(StreamChange {
                                partition: change.position.partition.0,
                                index: change.position.index,
                                event: change.position.event,
                                id: t.id.0.to_string(),
                                result: t.result.name().to_string(),
                                kind: t.kind.name().to_string(),
                                pending_id: t
                                    .asked
                                    .as_ref()
                                    .map_or(0, |a| a.pending_id.0)
                                    .to_string(),
                                from: n(t.debit_account.0),
                                to: n(t.credit_account.0),
                                amount: n(t.amount),
                                from_after: if t.result == TransferResult::Ok {
                                    four(&t.debit_balances)
                                } else {
                                    [0; 4]
                                },
                                to_after: if t.result == TransferResult::Ok {
                                    four(&t.credit_balances)
                                } else {
                                    [0; 4]
                                },
                            });
                        }
                        Ok(Streamed::CaughtUp(_)) => {}
                        Err(e) => {
                            *lock(&error) = Some(e.to_string());
                            return;
                        }
                    }
                }
            })
        };
        Consumer {
            task,
            changes,
            caught_up,
            error,
        }
    }

    /// Waits (at most 60 s) until the stream has caught up past `applied` (per partition,
    /// the index every replica had applied at the read-back), then stops it and returns
    /// what it received.
    pub async fn finish(self, applied: &BTreeMap<u32, u64>) -> Result<Vec<StreamChange>, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(e) = lock(&self.error).clone() {
                self.task.abort();
                return Err(format!("the change stream failed: {e}"));
            }
            let reached = {
                let at = lock(&self.caught_up);
                applied
                    .iter()
                    .all(|(p, &index)| at.get(p).is_some_and(|&i| i >= index))
            };
            if reached {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                self.task.abort();
                return Err(format!(
                    "the change stream did not reach the applied indexes {applied:?} within \
                     60 s of the read-back (it stood at {:?})",
                    lock(&self.caught_up)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.task.abort();
        let changes = lock(&self.changes).clone();
        Ok(changes)
    }
}
