//! A deterministic cluster simulator: 3 or 5 replicas of one partition on one thread, over a
//! simulated network, with simulated crashes, torn writes and time, checking Raft's and the
//! ledger's invariants after every step.
//!
//! Everything random comes from one seed (ChaCha8). raft-rs draws election timeouts from its
//! own RNG, so each node's timeout range is pinned to one value (`[t, t + 1)`) drawn from the
//! seed. Replicas use real files in a temporary directory; what a crash loses is decided by
//! the simulator: on crash, each log is cut back to the last index the replica had made
//! durable with an fsync, plus a random number of bytes of the next record (a torn write).
//! The Raft state file is written with fsync and rename, so it survives unless the lost-vote
//! fault is injected.
//!
//! Each step is one of: deliver an in-flight message (chosen at random among those due, so
//! messages are reordered; the network also drops, delays and duplicates them), tick the
//! clock, let a client send or retry a request, or inject a fault (crash, restart, pause,
//! resume, partition, heal). After every step the simulator checks:
//! - at most one leader per term, ever;
//! - log matching: every replica applies the same bytes at the same index;
//! - equal state digests at equal applied index;
//! - the ledger's own invariants (`Partition::check_invariants`: money conserved per ledger,
//!   flags respected, holds and refunds consistent) on every replica;
//! - a retry never gets an outcome different from the first answer.
//!
//! Then the liveness phase heals everything (restarts crashed nodes, resumes paused ones,
//! stops faults) and requires, within a bound of ticks, every client request acknowledged and
//! every replica at the same applied index with the same digest; finally every acknowledged
//! transfer must be recorded, with the acknowledged outcome, on every replica.
//!
//! A failure returns a message that starts with `SIM_SEED=<seed>`; running with that seed
//! replays the same run exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use raft::eraftpb::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use tally_engine::command::{
    AccountFlags, Command, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::outcome::{Outcome, TransferOutcome, TransferResult};
use tally_engine::segment::{check_record, RECORD_HEADER_SIZE, SEGMENT_RECORDS_OFFSET};
use tally_engine::types::{AccountId, LedgerId, PartitionId, Timestamp, TransferId};

use crate::replica::{Applied, ProposeError, ReadReady, Replica, ReplicaConfig};

/// Faults that break a correct replica, to prove the simulator notices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Never fsync the log.
    pub skip_fsync: bool,
    /// Apply entries when appended instead of when committed.
    pub apply_before_commit: bool,
    /// Never persist term and vote (a restarted node may vote twice in a term).
    pub skip_vote: bool,
}

/// One simulation's parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of everything random.
    pub seed: u64,
    /// Replicas: 3 or 5.
    pub nodes: usize,
    /// Steps of the safety phase.
    pub steps: usize,
    /// Ticks the liveness phase may take to converge.
    pub liveness_ticks: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Injected bugs (all off for a correct system).
    pub bugs: Bugs,
}

impl SimConfig {
    /// A run of `steps` steps on `nodes` replicas with seed `seed`.
    pub fn new(seed: u64, nodes: usize, steps: usize) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            steps,
            liveness_ticks: 600,
            clients: 5,
            bugs: Bugs::default(),
        }
    }
}

/// What a successful run did.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Ticks of simulated time.
    pub ticks: u64,
    /// Transfers acknowledged to clients.
    pub acknowledged: usize,
    /// Entries committed.
    pub committed: u64,
    /// Node crashes injected.
    pub crashes: u64,
    /// Distinct terms that had a leader.
    pub leader_terms: usize,
    /// Messages dropped by the network.
    pub dropped: u64,
    /// Transfer records on disk (spilled to transfer runs) at the end, summed over nodes.
    pub transfers_on_disk: u64,
}

const ACCOUNTS: u128 = 8;
const LEDGER: LedgerId = LedgerId(1);
const NANOS_PER_TICK: u64 = 10_000_000;
const CLIENT_TIMEOUT_TICKS: u64 = 25;

struct InFlight {
    deliver_at: u64,
    message: Message,
}

struct Reply {
    deliver_at: u64,
    client: usize,
    kind: ReplyKind,
}

enum ReplyKind {
    Outcome(TransferId, TransferOutcome),
    Redirect(u64),
}

struct SimNode {
    id: u64,
    dir: PathBuf,
    config: ReplicaConfig,
    replica: Option<Replica>,
    paused: bool,
    /// When a crashed node restarts, or a paused one resumes.
    back_at: u64,
    /// Transfers proposed through this node, and the client waiting for each.
    waiting: BTreeMap<TransferId, usize>,
}

struct Request {
    transfers: Vec<NewTransfer>,
    sent_at: u64,
}

struct Client {
    target: u64,
    request: Option<Request>,
    next_id: u128,
    /// First outcome acknowledged for each transfer.
    acked: BTreeMap<TransferId, TransferOutcome>,
}

struct Sim {
    config: SimConfig,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    replies: Vec<Reply>,
    clients: Vec<Client>,
    /// Links cut by a partition, as (from, to).
    cut: BTreeSet<(u64, u64)>,
    /// When the current partition heals.
    heal_at: u64,
    now: u64,
    leaders: BTreeMap<u64, u64>,
    /// index -> (term, bytes) of every entry applied anywhere.
    applied_entries: BTreeMap<u64, (u64, bytes::Bytes)>,
    /// index -> digest after applying it.
    digests: BTreeMap<u64, u128>,
    report: SimReport,
    drop_rate: f64,
    duplicate_rate: f64,
    faults: bool,
}

/// Runs one simulation. A failure (or a panic inside it) comes back as `Err`, starting with
/// `SIM_SEED=<seed>`.
pub fn run(config: &SimConfig) -> Result<SimReport, String> {
    let seed = config.seed;
    let dir = tempfile::tempdir().map_err(|e| format!("SIM_SEED={seed}: tempdir: {e}"))?;
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut sim = Sim::new(config.clone(), dir.path())?;
        sim.run()
    }));
    match result {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(message)) => Err(format!("SIM_SEED={seed} nodes={}: {message}", config.nodes)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!(
                "SIM_SEED={seed} nodes={}: panic: {message}",
                config.nodes
            ))
        }
    }
}

impl Sim {
    fn new(config: SimConfig, root: &Path) -> Result<Sim, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let voters: Vec<u64> = (1..=config.nodes as u64).collect();
        // A stream of its own, so that adding knobs does not change what a seed replays.
        let mut bounds = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7472_616e_7366_6572);
        let mut nodes = Vec::new();
        for &id in &voters {
            let mut replica_config = ReplicaConfig::new(id, PartitionId(0), voters.clone());
            replica_config.election_tick = rng.gen_range(10..30);
            replica_config.heartbeat_tick = 2;
            replica_config.tick_interval = 20;
            replica_config.segment_size_max = 16 * 1024;
            replica_config.checkpoint_interval_entries = rng.gen_range(15..60);
            // Each node its own bound (or none): spilled records and refunds of them must
            // answer and digest the same on every replica, across crashes and restarts.
            replica_config.transfers_memory_max = match bounds.gen_range(0..4) {
                0 => 0,
                _ => bounds.gen_range(4..48),
            };
            replica_config.bug_skip_fsync = config.bugs.skip_fsync;
            replica_config.bug_apply_before_commit = config.bugs.apply_before_commit;
            replica_config.bug_skip_vote = config.bugs.skip_vote;
            let dir = root.join(format!("node-{id}"));
            let replica = Replica::open(&dir, replica_config.clone())
                .map_err(|e| format!("open node {id}: {e}"))?;
            nodes.push(SimNode {
                id,
                dir,
                config: replica_config,
                replica: Some(replica),
                paused: false,
                back_at: 0,
                waiting: BTreeMap::new(),
            });
        }
        let clients = (0..config.clients)
            .map(|c| Client {
                target: 1 + c as u64 % config.nodes as u64,
                request: None,
                next_id: (c as u128 + 1) << 64,
                acked: BTreeMap::new(),
            })
            .collect();
        let drop_rate = rng.gen_range(0.0..0.15);
        let duplicate_rate = rng.gen_range(0.0..0.05);
        Ok(Sim {
            config,
            rng,
            nodes,
            network: Vec::new(),
            replies: Vec::new(),
            clients,
            cut: BTreeSet::new(),
            heal_at: 0,
            now: 0,
            leaders: BTreeMap::new(),
            applied_entries: BTreeMap::new(),
            digests: BTreeMap::new(),
            report: SimReport::default(),
            drop_rate,
            duplicate_rate,
            faults: true,
        })
    }

    fn run(&mut self) -> Result<SimReport, String> {
        self.setup()?;
        for _ in 0..self.config.steps {
            self.step()?;
        }
        self.liveness()?;
        self.report.leader_terms = self.leaders.len();
        self.report.transfers_on_disk = self
            .nodes
            .iter()
            .filter_map(|node| node.replica.as_ref()?.partition().transfer_runs())
            .map(|runs| runs.record_count())
            .sum();
        Ok(self.report.clone())
    }

    fn timestamp(&self) -> Timestamp {
        Timestamp(1_700_000_000_000_000_000 + self.now * NANOS_PER_TICK)
    }

    /// Elects a leader and creates the ledger and accounts, without faults.
    fn setup(&mut self) -> Result<(), String> {
        let setup = [
            Command::CreateLedgers(vec![NewLedger {
                id: LEDGER,
                scale: 2,
                code: 1,
            }]),
            Command::CreateAccounts(
                (1..=ACCOUNTS)
                    .map(|id| NewAccount {
                        id: AccountId(id),
                        ledger: LEDGER,
                        code: 1,
                        // Account 1 is the issuer; the others may not overdraw.
                        flags: AccountFlags(if id == 1 {
                            0
                        } else {
                            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
                        }),
                        limit: None,
                        user_data_128: 0,
                        user_data_64: 0,
                        user_data_32: 0,
                    })
                    .collect(),
            ),
        ];
        // Setup is idempotent (ledgers and accounts answer `exists` when retried), so it is
        // proposed again every 100 ticks until every replica has it: a leader change can
        // drop a proposal.
        let mut proposed = false;
        for round in 0..2000u32 {
            self.tick()?;
            self.deliver_all()?;
            if round % 100 == 99 {
                proposed = false;
            }
            if !proposed {
                let now = self.timestamp();
                if let Some(leader) = self
                    .nodes
                    .iter_mut()
                    .find_map(|n| n.replica.as_mut().filter(|r| r.is_leader()))
                {
                    for command in &setup {
                        if leader.propose(command.clone(), now).is_err() {
                            break;
                        }
                    }
                    proposed = true;
                }
            }
            let done = self.nodes.iter().all(|n| {
                n.replica
                    .as_ref()
                    .is_some_and(|r| r.partition().account_count() == ACCOUNTS as usize)
            });
            if done {
                return Ok(());
            }
        }
        Err("setup did not complete".into())
    }

    fn step(&mut self) -> Result<(), String> {
        let due = self
            .network
            .iter()
            .filter(|m| m.deliver_at <= self.now)
            .count();
        let roll = self.rng.gen_range(0..100);
        if due > 0 && roll < 55 {
            let nth = self.rng.gen_range(0..due);
            let position = self
                .network
                .iter()
                .enumerate()
                .filter(|(_, m)| m.deliver_at <= self.now)
                .nth(nth)
                .map(|(i, _)| i)
                .expect("a due message");
            let message = self.network.swap_remove(position).message;
            self.deliver(message)?;
        } else if roll < 75 {
            self.tick()?;
        } else if roll < 97 || self.rng.gen_bool(0.4) {
            let client = self.rng.gen_range(0..self.clients.len());
            self.client_step(client, true)?;
        } else if self.faults {
            self.fault()?;
        }
        self.process_all()?;
        self.check()
    }

    // ---- time and network ----

    fn tick(&mut self) -> Result<(), String> {
        self.now += 1;
        self.report.ticks += 1;
        // Faults last a while, then heal by themselves.
        if self.now >= self.heal_at {
            self.cut.clear();
        }
        for i in 0..self.nodes.len() {
            if self.now >= self.nodes[i].back_at {
                self.nodes[i].paused = false;
                self.restart(i)?;
            }
        }
        let now = self.timestamp();
        for node in &mut self.nodes {
            if node.paused {
                continue;
            }
            if let Some(replica) = &mut node.replica {
                replica.tick(now);
            }
        }
        self.deliver_replies();
        self.process_all()
    }

    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            if self.faults && self.rng.gen_bool(self.drop_rate) {
                self.report.dropped += 1;
                continue;
            }
            let copies = if self.faults && self.rng.gen_bool(self.duplicate_rate) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.rng.gen_range(0..3);
                self.network.push(InFlight {
                    deliver_at: self.now + delay,
                    message: message.clone(),
                });
            }
        }
    }

    fn deliver(&mut self, message: Message) -> Result<(), String> {
        if self.cut.contains(&(message.from, message.to)) {
            self.report.dropped += 1;
            return Ok(());
        }
        let node = &mut self.nodes[(message.to - 1) as usize];
        if node.paused {
            // A paused process reads its socket when it resumes: keep the message.
            self.network.push(InFlight {
                deliver_at: self.now + 1,
                message,
            });
            return Ok(());
        }
        let Some(replica) = &mut node.replica else {
            return Ok(());
        };
        replica
            .step(message)
            .map_err(|e| format!("node {}: step: {e}", node.id))
    }

    fn deliver_all(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            let Some(position) = self.network.iter().position(|m| m.deliver_at <= self.now) else {
                return Ok(());
            };
            let message = self.network.swap_remove(position).message;
            self.deliver(message)?;
            self.process_all()?;
        }
        Ok(())
    }

    fn process_all(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                continue;
            }
            let mut outbox = Vec::new();
            let mut applied = Vec::new();
            let mut reads: Vec<ReadReady> = Vec::new();
            {
                let node = &mut self.nodes[i];
                let Some(replica) = &mut node.replica else {
                    continue;
                };
                replica
                    .handle_ready(&mut outbox, &mut applied, &mut reads)
                    .map_err(|e| format!("node {}: ready: {e}", node.id))?;
            }
            self.send(outbox);
            for entry in applied {
                self.on_applied(i, &entry)?;
            }
        }
        Ok(())
    }

    // ---- clients ----

    fn new_request(&mut self, client: usize) -> Vec<NewTransfer> {
        let count = self.rng.gen_range(1..4);
        let mut transfers = Vec::new();
        for _ in 0..count {
            self.clients[client].next_id += 1;
            let id = TransferId(self.clients[client].next_id);
            let acked: Vec<(TransferId, TransferOutcome)> = self.clients[client]
                .acked
                .iter()
                .map(|(id, outcome)| (*id, *outcome))
                .collect();
            let kind = self.rng.gen_range(0..10);
            let debit = AccountId(self.rng.gen_range(1..=ACCOUNTS));
            let mut credit = AccountId(self.rng.gen_range(1..=ACCOUNTS));
            if credit == debit {
                credit = AccountId(debit.0 % ACCOUNTS + 1);
            }
            let amount = Decimal::new(self.rng.gen_range(1..5000), 2);
            let mut t = NewTransfer::plain(id, debit, credit, amount, LEDGER);
            let reference = if acked.is_empty() {
                None
            } else {
                Some(acked[self.rng.gen_range(0..acked.len())].0)
            };
            match (kind, reference) {
                (0..=1, _) => {
                    t.flags = TransferFlags(TransferFlags::PENDING);
                    t.timeout_s = self.rng.gen_range(0..3);
                }
                (2, Some(reference)) => {
                    t = NewTransfer::plain(
                        id,
                        AccountId(0),
                        AccountId(0),
                        Decimal::ZERO,
                        LedgerId(0),
                    );
                    t.flags = TransferFlags(TransferFlags::POST_PENDING);
                    t.pending_id = reference;
                }
                (3, Some(reference)) => {
                    t = NewTransfer::plain(
                        id,
                        AccountId(0),
                        AccountId(0),
                        Decimal::ZERO,
                        LedgerId(0),
                    );
                    t.flags = TransferFlags(TransferFlags::VOID_PENDING);
                    t.pending_id = reference;
                }
                (4, Some(reference)) => {
                    t = NewTransfer::plain(id, AccountId(0), AccountId(0), amount, LedgerId(0));
                    t.refund_of = reference;
                }
                (5..=6, _) => t.debit_account = AccountId(1),
                _ => {}
            }
            transfers.push(t);
        }
        // Sometimes link the whole request into one chain.
        if transfers.len() > 1 && self.rng.gen_bool(0.3) {
            let last = transfers.len() - 1;
            for t in &mut transfers[..last] {
                t.flags = TransferFlags(t.flags.0 | TransferFlags::LINKED);
            }
        }
        transfers
    }

    fn client_step(&mut self, client: usize, allow_new: bool) -> Result<(), String> {
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
            // Retry the same transfers (same ids) on some node: maybe the old target died.
            self.clients[client].target = self.rng.gen_range(1..=self.nodes.len() as u64);
        } else {
            return Ok(());
        }
        self.send_request(client)
    }

    fn send_request(&mut self, client: usize) -> Result<(), String> {
        let target = self.clients[client].target;
        let now = self.timestamp();
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
        let node = &mut self.nodes[(target - 1) as usize];
        let Some(replica) = node.replica.as_mut().filter(|_| !node.paused) else {
            return Ok(()); // The request is lost; the client times out and retries.
        };
        match replica.propose(Command::CreateTransfers(transfers.clone()), now) {
            Ok(_) => {
                for t in &transfers {
                    node.waiting.insert(t.id, client);
                }
            }
            Err(ProposeError::NotLeader { leader }) => {
                let delay = self.rng.gen_range(0..2);
                self.replies.push(Reply {
                    deliver_at: self.now + delay,
                    client,
                    kind: ReplyKind::Redirect(leader),
                });
            }
            Err(_) => {}
        }
        Ok(())
    }

    fn deliver_replies(&mut self) {
        let now = self.now;
        let (due, later): (Vec<Reply>, Vec<Reply>) =
            self.replies.drain(..).partition(|r| r.deliver_at <= now);
        self.replies = later;
        for reply in due {
            match reply.kind {
                ReplyKind::Redirect(leader) => {
                    let client = &mut self.clients[reply.client];
                    client.target = if leader == 0 {
                        self.rng.gen_range(1..=self.nodes.len() as u64)
                    } else {
                        leader
                    };
                    if client.request.is_some() {
                        let _ = self.send_request(reply.client);
                    }
                }
                ReplyKind::Outcome(id, outcome) => {
                    let client = &mut self.clients[reply.client];
                    client.acked.entry(id).or_insert(outcome);
                    let done = client.request.as_ref().is_some_and(|r| {
                        r.transfers.iter().all(|t| client.acked.contains_key(&t.id))
                    });
                    if done {
                        client.request = None;
                    }
                }
            }
        }
    }

    // ---- faults ----

    fn fault(&mut self) -> Result<(), String> {
        let node = self.rng.gen_range(0..self.nodes.len());
        let duration = self.rng.gen_range(5..150);
        match self.rng.gen_range(0..4) {
            0 => {
                self.nodes[node].back_at = self.now + duration;
                self.crash(node)
            }
            1 => {
                // Longer than an election timeout, often: the paused leader wakes up deposed.
                self.nodes[node].paused = true;
                self.nodes[node].back_at = self.now + duration;
                Ok(())
            }
            2 => {
                self.heal_at = self.now + duration;
                // Split the nodes into two random groups.
                let mut side = BTreeMap::new();
                for n in &self.nodes {
                    side.insert(n.id, self.rng.gen_bool(0.5));
                }
                self.cut.clear();
                for (&a, &sa) in &side {
                    for (&b, &sb) in &side {
                        if sa != sb {
                            self.cut.insert((a, b));
                        }
                    }
                }
                Ok(())
            }
            _ => {
                self.cut.clear();
                Ok(())
            }
        }
    }

    fn crash(&mut self, index: usize) -> Result<(), String> {
        let torn = self.rng.gen_range(0..200u64);
        let node = &mut self.nodes[index];
        let Some(replica) = node.replica.take() else {
            return Ok(());
        };
        let durable = replica.durable_index();
        drop(replica);
        node.waiting.clear();
        node.paused = false;
        cut_log(&node.dir.join("log"), durable, torn)?;
        self.report.crashes += 1;
        Ok(())
    }

    fn restart(&mut self, index: usize) -> Result<(), String> {
        let node = &mut self.nodes[index];
        if node.replica.is_some() {
            return Ok(());
        }
        let replica = Replica::open(&node.dir, node.config.clone())
            .map_err(|e| format!("restart node {}: {e}", node.id))?;
        node.replica = Some(replica);
        Ok(())
    }

    // ---- checks ----

    fn on_applied(&mut self, node_index: usize, entry: &Applied) -> Result<(), String> {
        let node_id = self.nodes[node_index].id;
        let index = entry.index.0;
        match self.applied_entries.get(&index) {
            Some((term, data)) => {
                if *term != entry.term || *data != entry.data {
                    return Err(format!(
                        "log matching: node {node_id} applied index {index} term {} but another \
                         replica applied term {term} there",
                        entry.term
                    ));
                }
            }
            None => {
                self.applied_entries
                    .insert(index, (entry.term, entry.data.clone()));
                self.report.committed = self.report.committed.max(index);
            }
        }
        match self.digests.get(&index) {
            Some(&digest) if digest != entry.digest => {
                return Err(format!(
                "node {node_id} has digest {:x} after index {index}, another replica {digest:x}",
                entry.digest
            ))
            }
            Some(_) => {}
            None => {
                self.digests.insert(index, entry.digest);
            }
        }
        if let Outcome::Transfers(outcomes) = &entry.outcome {
            let Some(Command::CreateTransfers(transfers)) =
                entry.payload.as_ref().map(|p| &p.command)
            else {
                return Err("transfer outcomes for a payload without transfers".into());
            };
            for (t, outcome) in transfers.iter().zip(outcomes) {
                if let Some(client) = self.nodes[node_index].waiting.remove(&t.id) {
                    let delay = self.rng.gen_range(0..3);
                    if self.faults && self.rng.gen_bool(self.drop_rate) {
                        continue; // The reply is lost; the client retries.
                    }
                    self.replies.push(Reply {
                        deliver_at: self.now + delay,
                        client,
                        kind: ReplyKind::Outcome(t.id, *outcome),
                    });
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        for node in &self.nodes {
            let Some(replica) = &node.replica else {
                continue;
            };
            if replica.is_leader() {
                let term = replica.term();
                let leader = *self.leaders.entry(term).or_insert(node.id);
                if leader != node.id {
                    return Err(format!(
                        "two leaders in term {term}: {leader} and {}",
                        node.id
                    ));
                }
            }
            replica
                .partition()
                .check_invariants()
                .map_err(|e| format!("node {}: {e}", node.id))?;
        }
        for client in &self.clients {
            for (id, outcome) in &client.acked {
                if !is_recorded(outcome.result) {
                    continue;
                }
                // Acknowledged outcomes never change: check the replicas that have applied it.
                for node in &self.nodes {
                    let Some(replica) = &node.replica else {
                        continue;
                    };
                    if let Some(record) = replica.partition().transfer(*id) {
                        if record.outcome != *outcome {
                            return Err(format!(
                                "transfer {id}: acknowledged {:?}, node {} recorded {:?}",
                                outcome.result, node.id, record.outcome.result
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn liveness(&mut self) -> Result<(), String> {
        self.faults = false;
        self.cut.clear();
        for i in 0..self.nodes.len() {
            self.nodes[i].paused = false;
            self.restart(i)?;
        }
        let deadline = self.now + self.config.liveness_ticks;
        while self.now < deadline {
            self.tick()?;
            self.deliver_all()?;
            for client in 0..self.clients.len() {
                self.client_step(client, false)?;
            }
            self.process_all()?;
            self.check()?;
            if self.converged() {
                return self.final_check();
            }
        }
        let states: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .map(|r| {
                format!(
                    "node {} term {} leader {} commit {} applied {}",
                    r.node_id(),
                    r.term(),
                    r.leader_id(),
                    r.commit_index(),
                    r.partition().applied_index()
                )
            })
            .collect();
        let open = self.clients.iter().filter(|c| c.request.is_some()).count();
        Err(format!(
            "liveness: no convergence within {} ticks ({open} client requests open): {}",
            self.config.liveness_ticks,
            states.join("; ")
        ))
    }

    fn converged(&self) -> bool {
        if self.clients.iter().any(|c| c.request.is_some()) {
            return false;
        }
        let replicas: Vec<&Replica> = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref())
            .collect();
        let Some(first) = replicas.first() else {
            return false;
        };
        let applied = first.partition().applied_index();
        replicas.iter().all(|r| {
            r.partition().applied_index() == applied
                && r.commit_index() == applied.0
                && r.last_index() == applied.0
                && r.partition().digest() == first.partition().digest()
        })
    }

    fn final_check(&mut self) -> Result<(), String> {
        let mut acknowledged = 0;
        for client in &self.clients {
            for (id, outcome) in &client.acked {
                acknowledged += 1;
                for node in &self.nodes {
                    let replica = node.replica.as_ref().expect("all restarted");
                    if !is_recorded(outcome.result) {
                        continue;
                    }
                    let Some(record) = replica.partition().transfer(*id) else {
                        return Err(format!(
                            "acknowledged transfer {id} lost on node {}",
                            node.id
                        ));
                    };
                    if record.outcome != *outcome {
                        return Err(format!(
                            "transfer {id}: acknowledged {:?}, node {} has {:?}",
                            outcome, node.id, record.outcome
                        ));
                    }
                }
            }
        }
        self.report.acknowledged = acknowledged;
        Ok(())
    }
}

/// Whether an outcome is recorded under the transfer's id (a decision), as opposed to a
/// rejection before the idempotency check or a chain member failed by another event.
fn is_recorded(result: TransferResult) -> bool {
    result == TransferResult::Ok || result.code() > TransferResult::ExistsWithDifferentFields.code()
}

/// Cuts a log directory back to what was durable: every record after `durable` is lost,
/// except that the first lost record may survive as `torn` bytes of a torn write.
fn cut_log(dir: &Path, durable: u64, torn: u64) -> Result<(), String> {
    let mut segments: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    let mut cut_done = false;
    for path in &segments {
        if cut_done {
            fs::remove_file(path).map_err(|e| format!("remove {}: {e}", path.display()))?;
            continue;
        }
        let bytes = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let mut offset = SEGMENT_RECORDS_OFFSET;
        while offset < bytes.len() {
            let Ok(meta) = check_record(&bytes[offset..]) else {
                break;
            };
            let size = RECORD_HEADER_SIZE + meta.payload_size as usize;
            if meta.index.0 > durable {
                let keep = offset as u64 + torn.min(size as u64 - 1);
                let file = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| format!("open {}: {e}", path.display()))?;
                file.set_len(keep)
                    .map_err(|e| format!("cut {}: {e}", path.display()))?;
                cut_done = true;
                break;
            }
            offset += size;
        }
    }
    Ok(())
}
