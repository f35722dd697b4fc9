//! The simulator's clients: batches of transfers routed over the partitions by the session's
//! rules (`routing.rs`), retried with the same ids, and linearizable reads.
//!
//! A client keeps, per partition, the node it sends to, and follows `not leader` answers. A
//! request is one to three transfers of one partition (sometimes of two, which then go as
//! two proposals), of every kind: plain, holds, posts, voids and refunds of its own earlier
//! transfers; sometimes linked into one chain. It is retried, with the same ids, on random
//! nodes when no answer came in time; a chain is always resent whole. A read asks one
//! partition's leader for its state through ReadIndex; `checks.rs` judges the answer.

use std::collections::BTreeMap;

use rand::Rng;
use rust_decimal::Decimal;
use tally_engine::command::{Command, NewTransfer, TransferFlags};
use tally_engine::outcome::TransferOutcome;
use tally_engine::types::{AccountId, LedgerId, TransferId};

use super::{PendingRead, Sim, LEDGER};
use crate::replica::ProposeError;
use crate::routing;

/// Ticks a client waits for an answer before it retries.
pub(super) const CLIENT_TIMEOUT_TICKS: u64 = 25;

pub(super) struct Request {
    transfers: Vec<NewTransfer>,
    sent_at: u64,
}

pub(super) struct ReadRequest {
    id: u64,
    sent_at: u64,
}

pub(super) struct Client {
    /// Per partition, the node the client sends to.
    pub(super) targets: Vec<u64>,
    pub(super) request: Option<Request>,
    pub(super) read: Option<ReadRequest>,
    next_id: u128,
    /// First outcome acknowledged for each transfer.
    pub(super) acked: BTreeMap<TransferId, TransferOutcome>,
    /// The partition each acknowledged transfer lives in.
    pub(super) homes: BTreeMap<TransferId, u32>,
}

impl Client {
    pub(super) fn new(index: usize, nodes: usize, partitions: u32) -> Client {
        Client {
            targets: (0..partitions)
                .map(|p| 1 + (index as u64 + u64::from(p)) % nodes as u64)
                .collect(),
            request: None,
            read: None,
            next_id: (index as u128 + 1) << 64,
            acked: BTreeMap::new(),
            homes: BTreeMap::new(),
        }
    }
}

/// What reaches a client, after a delay.
pub(super) struct Reply {
    pub(super) deliver_at: u64,
    pub(super) client: usize,
    pub(super) kind: ReplyKind,
}

pub(super) enum ReplyKind {
    /// A transfer's outcome, from its partition.
    Outcome(TransferId, TransferOutcome, u32),
    /// "Not the leader of this partition; try that node (0: unknown)."
    Redirect(u32, u64),
    /// The same, for a read.
    ReadRedirect(u32, u64),
    /// The read with this id was answered (and checked).
    Read(u64),
}

impl Sim {
    fn new_request(&mut self, client: usize) -> Vec<NewTransfer> {
        let partitions = self.config.partitions;
        let first = self.rng.gen_range(0..partitions);
        let second = if partitions > 1 && self.rng.gen_bool(0.2) {
            Some((first + 1) % partitions)
        } else {
            None
        };
        let count = self.rng.gen_range(1..4);
        let mut transfers = Vec::new();
        for n in 0..count {
            let partition = match second {
                Some(second) if n == count - 1 => second,
                _ => first,
            };
            let accounts = self.accounts[partition as usize].clone();
            self.clients[client].next_id += 1;
            let id = TransferId(self.clients[client].next_id);
            let references: Vec<TransferId> = self.clients[client]
                .homes
                .iter()
                .filter(|(_, home)| **home == partition)
                .map(|(id, _)| *id)
                .collect();
            let kind = self.rng.gen_range(0..10);
            let debit = accounts[self.rng.gen_range(0..accounts.len())];
            let mut credit = accounts[self.rng.gen_range(0..accounts.len())];
            if credit == debit {
                let at = accounts
                    .iter()
                    .position(|a| *a == debit)
                    .expect("an account");
                credit = accounts[(at + 1) % accounts.len()];
            }
            let amount = Decimal::new(self.rng.gen_range(1..5000), 2);
            let mut t = NewTransfer::plain(id, debit, credit, amount, LEDGER);
            let reference = if references.is_empty() {
                None
            } else {
                Some(references[self.rng.gen_range(0..references.len())])
            };
            let zero = AccountId(0);
            match (kind, reference) {
                (0..=1, _) => {
                    t.flags = TransferFlags(TransferFlags::PENDING);
                    t.timeout_s = self.rng.gen_range(0..3);
                }
                (2, Some(reference)) => {
                    t = NewTransfer::plain(id, zero, zero, Decimal::ZERO, LedgerId(0));
                    t.flags = TransferFlags(TransferFlags::POST_PENDING);
                    t.pending_id = reference;
                }
                (3, Some(reference)) => {
                    t = NewTransfer::plain(id, zero, zero, Decimal::ZERO, LedgerId(0));
                    t.flags = TransferFlags(TransferFlags::VOID_PENDING);
                    t.pending_id = reference;
                }
                (4, Some(reference)) => {
                    t = NewTransfer::plain(id, zero, zero, amount, LedgerId(0));
                    t.refund_of = reference;
                }
                // The issuer pays: money enters the accounts that may not overdraw.
                (5..=6, _) => t.debit_account = accounts[0],
                _ => {}
            }
            if t.debit_account.0 != 0 && t.debit_account == t.credit_account {
                t.credit_account = if t.debit_account == accounts[0] {
                    accounts[1]
                } else {
                    accounts[0]
                };
            }
            transfers.push(t);
        }
        // Sometimes link a one-partition request into one chain.
        if second.is_none() && transfers.len() > 1 && self.rng.gen_bool(0.3) {
            let last = transfers.len() - 1;
            for t in &mut transfers[..last] {
                t.flags = TransferFlags(t.flags.0 | TransferFlags::LINKED);
            }
        }
        transfers
    }

    pub(super) fn client_step(&mut self, client: usize, allow_new: bool) -> Result<(), String> {
        if allow_new && self.rng.gen_bool(0.1) {
            return self.read_step(client);
        }
        let timed_out = self.clients[client]
            .request
            .as_ref()
            .is_some_and(|r| self.now >= r.sent_at + CLIENT_TIMEOUT_TICKS);
        if self.clients[client].request.is_none() {
            if !allow_new {
                return Ok(());
            }
            let transfers = self.new_request(client);
            self.clients[client].request = Some(Request {
                transfers,
                sent_at: self.now,
            });
        } else if timed_out {
            // Retry the same transfers (same ids) on other nodes: maybe the old ones died.
            for p in 0..self.config.partitions as usize {
                self.clients[client].targets[p] = self.rng.gen_range(1..=self.nodes.len() as u64);
            }
        } else {
            return Ok(());
        }
        self.send_request(client, None)
    }

    /// Sends the client's request: its unacknowledged transfers (a chain whole), split by
    /// partition, each part proposed to the client's target for that partition (only the
    /// part of partition `only`, if given: after a redirect for it).
    pub(super) fn send_request(&mut self, client: usize, only: Option<u32>) -> Result<(), String> {
        let now_tick = self.now;
        let state = &mut self.clients[client];
        let Some(request) = &mut state.request else {
            return Ok(());
        };
        request.sent_at = now_tick;
        let pending: Vec<NewTransfer> = request
            .transfers
            .iter()
            .filter(|t| !state.acked.contains_key(&t.id))
            .cloned()
            .collect();
        if pending.is_empty() {
            state.request = None;
            return Ok(());
        }
        // A linked chain must be resent whole, or its shape (and outcome) changes.
        let transfers = if request
            .transfers
            .iter()
            .any(|t| t.flags.has(TransferFlags::LINKED))
        {
            request.transfers.clone()
        } else {
            pending
        };
        let (mut partitions, unresolved) =
            routing::transfer_partitions(&transfers, self.config.partitions);
        for (i, reference) in unresolved {
            partitions[i] = state.homes.get(&reference).copied().or(Some(0));
        }
        let linked: Vec<bool> = transfers
            .iter()
            .map(|t| t.flags.has(TransferFlags::LINKED))
            .collect();
        let routed = routing::route(&partitions, &linked);
        assert!(
            routed.iter().all(Option::is_some),
            "the simulator's clients never cross partitions"
        );
        for (partition, members) in routing::group(&transfers, &routed) {
            if only.is_some_and(|only| only != partition) {
                continue;
            }
            let group: Vec<NewTransfer> = members.into_iter().map(|(_, t)| t).collect();
            let target = self.clients[client].targets[partition as usize];
            let i = (target - 1) as usize;
            let now = self.stamp(i);
            let node = &mut self.nodes[i];
            if node.paused || !node.is_up() {
                continue; // The request is lost; the client times out and retries.
            }
            let replica = node.replicas[partition as usize]
                .as_mut()
                .expect("an up node has every replica");
            match replica.propose(Command::CreateTransfers(group.clone()), now) {
                Ok(_) => {
                    for t in &group {
                        node.waiting.insert((partition, t.id), client);
                    }
                }
                Err(ProposeError::NotLeader { leader }) => {
                    let delay = self.rng.gen_range(0..2);
                    self.replies.push(Reply {
                        deliver_at: self.now + delay,
                        client,
                        kind: ReplyKind::Redirect(partition, leader),
                    });
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Starts a linearizable read of one partition, or gives up on one that took too long.
    fn read_step(&mut self, client: usize) -> Result<(), String> {
        let partition = self.rng.gen_range(0..self.config.partitions);
        self.read_now(client, partition)
    }

    /// Starts a read of `partition` unless one is outstanding (and not timed out).
    pub(super) fn read_now(&mut self, client: usize, partition: u32) -> Result<(), String> {
        if let Some(read) = &self.clients[client].read {
            if self.now < read.sent_at + CLIENT_TIMEOUT_TICKS {
                return Ok(());
            }
            self.clients[client].read = None;
        }
        let target = self.clients[client].targets[partition as usize];
        let i = (target - 1) as usize;
        // Every state applied anywhere so far must be visible to this read.
        let lower_bound = self.applied_entries[partition as usize]
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0);
        let node = &mut self.nodes[i];
        if node.paused || !node.is_up() {
            return Ok(());
        }
        let replica = node.replicas[partition as usize]
            .as_mut()
            .expect("an up node has every replica");
        if !replica.is_leader() {
            let leader = replica.leader_id();
            self.replies.push(Reply {
                deliver_at: self.now + 1,
                client,
                kind: ReplyKind::ReadRedirect(partition, leader),
            });
            return Ok(());
        }
        self.next_read_id += 1;
        let id = self.next_read_id;
        replica.read_index(id.to_le_bytes().to_vec());
        node.reads.insert(
            id,
            PendingRead {
                client,
                partition,
                lower_bound,
                index: None,
            },
        );
        self.clients[client].read = Some(ReadRequest {
            id,
            sent_at: self.now,
        });
        Ok(())
    }

    pub(super) fn deliver_replies(&mut self) {
        let now = self.now;
        let (due, later): (Vec<Reply>, Vec<Reply>) =
            self.replies.drain(..).partition(|r| r.deliver_at <= now);
        self.replies = later;
        for reply in due {
            match reply.kind {
                ReplyKind::Redirect(partition, leader) => {
                    let nodes = self.nodes.len() as u64;
                    let target = if leader == 0 {
                        self.rng.gen_range(1..=nodes)
                    } else {
                        leader
                    };
                    let client = &mut self.clients[reply.client];
                    client.targets[partition as usize] = target;
                    if client.request.is_some() {
                        let _ = self.send_request(reply.client, Some(partition));
                    }
                }
                ReplyKind::Outcome(id, outcome, partition) => {
                    let client = &mut self.clients[reply.client];
                    client.acked.entry(id).or_insert(outcome);
                    client.homes.entry(id).or_insert(partition);
                    let done = client.request.as_ref().is_some_and(|r| {
                        r.transfers.iter().all(|t| client.acked.contains_key(&t.id))
                    });
                    if done {
                        client.request = None;
                    }
                }
                ReplyKind::ReadRedirect(partition, leader) if leader != 0 => {
                    self.clients[reply.client].targets[partition as usize] = leader;
                    let _ = self.read_now(reply.client, partition);
                }
                ReplyKind::ReadRedirect(..) => {}
                ReplyKind::Read(id) => {
                    let client = &mut self.clients[reply.client];
                    if client.read.as_ref().is_some_and(|r| r.id == id) {
                        client.read = None;
                    }
                }
            }
        }
    }
}
