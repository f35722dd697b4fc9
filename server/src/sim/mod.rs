//! A deterministic cluster simulator: 3 or 5 nodes, each with one replica of every partition,
//! on one thread, over a simulated network, with simulated crashes, disk faults, clocks and
//! time, checking Raft's and the ledger's invariants after every step.
//!
//! Everything random comes from one seed (ChaCha8). raft-rs draws election timeouts from its
//! own RNG, so each replica's timeout range is pinned to one value (`[t, t + 1)`) drawn from
//! the seed. Replicas use real files in a temporary directory; what a fault does to them is
//! decided by the simulator (`disk.rs`):
//! - a *crash* loses what was not synced: each log keeps the records its replica made durable;
//!   the records after them (an unsynced group commit, when the crash struck between a write
//!   and its fsync) are kept, zeroed, torn or garbled one by one — a torn *and reordered*
//!   tail — and the newest durability slot may be lost;
//! - a *wipe* removes a node's directory; it comes back the documented way (its peers tell it
//!   its term floor, `recovery.rs`; it recovers) once enough of them are reachable;
//! - *fsync and write EIO*: the next fsync or write of one log fails (a failed fsync drops
//!   the unsynced pages), the replica stops, and the node restarts like after a crash;
//! - *clock skew*: a node's clock (the leader's, usually) jumps an hour ahead or behind.
//!
//! Each step is one of: deliver an in-flight message (chosen at random among those due, so
//! messages are reordered; the network also drops, delays and duplicates them), tick the
//! clock, let a client send or retry a write or a read, or inject a fault (crash, wipe, pause,
//! partition, heal, a crash inside a group commit, EIO, clock skew). Clients route their
//! batches over the partitions by the session's rules (`routing.rs`). After every step the
//! simulator checks (`checks.rs`):
//! - at most one leader per partition and term, ever;
//! - log matching: every replica of a partition applies the same bytes at the same index;
//! - equal state digests at equal applied index;
//! - the ledger's own invariants (`Partition::check_invariants`) on every replica;
//! - a retry never gets an outcome different from the first answer;
//! - reads are linearizable: a read answers from a state at least as new as every state any
//!   replica had applied when it was invoked, and that state is one the partition went through;
//! - partition time never runs ahead of true time by more than [`TIME_AHEAD_MAX`], whatever a
//!   leader's clock says.
//!
//! Then the liveness phase heals everything (restarts crashed and wiped nodes, resumes paused
//! ones, sets clocks right, stops faults) and requires, within a bound of ticks, every client
//! request acknowledged and every replica at the same applied index with the same digest, none
//! recovering; finally every node is restarted once more, and every acknowledged transfer must
//! be recorded, with the acknowledged outcome, on every replica.
//!
//! A failure returns a message that starts with `SIM_SEED=<seed>`; running with that seed
//! replays the same run exactly. [`Bugs`] plants the classic mistakes (and the ones each fault
//! exists to catch) so that the tests can prove the simulator notices them.

mod checks;
mod clients;
mod disk;
mod faults;
mod scenario;

pub use scenario::Scenario;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft::eraftpb::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tally_engine::command::{AccountFlags, Command, NewAccount, NewLedger};
use tally_engine::segment::LogFaults;
use tally_engine::types::{AccountId, LedgerId, PartitionId, Timestamp, TransferId};

use crate::clock::ClusterClock;
use crate::raft_storage::{Damage, MissingState};
use crate::replica::{Now, ReadReady, Replica, ReplicaConfig};

use clients::{Client, Reply};

/// Faults that break a correct replica, to prove the simulator notices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Never fsync the log.
    pub skip_fsync: bool,
    /// Apply entries when appended instead of when committed.
    pub apply_before_commit: bool,
    /// Never persist term and vote (a restarted node may vote twice in a term).
    pub skip_vote: bool,
    /// A wiped node comes back as a new voter, as if the cluster were new (before recovery
    /// existed, this was what happened).
    pub wipe_rejoins_as_voter: bool,
    /// The log records its durable prefix before the fsync that makes it durable.
    pub slot_before_sync: bool,
    /// After a failed fsync the log carries on as if it had worked.
    pub retry_failed_sync: bool,
    /// The leader stamps entries with its own clock, not the cluster's.
    pub trust_own_clock: bool,
    /// Reads are served on the leader's lease, without confirming leadership.
    pub lease_reads: bool,
}

/// One simulation's parameters.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of everything random.
    pub seed: u64,
    /// Nodes: 3 or 5.
    pub nodes: usize,
    /// Partitions (Raft groups, each with a replica on every node): 1 to 3.
    pub partitions: u32,
    /// Steps of the safety phase.
    pub steps: usize,
    /// Ticks the liveness phase may take to converge.
    pub liveness_ticks: u64,
    /// Concurrent clients.
    pub clients: usize,
    /// Injected bugs (all off for a correct system).
    pub bugs: Bugs,
    /// Print every fault, restart, recovery and new leader on stderr (to study a seed).
    pub trace: bool,
}

impl SimConfig {
    /// A run of `steps` steps on `nodes` nodes with seed `seed`, one partition.
    pub fn new(seed: u64, nodes: usize, steps: usize) -> SimConfig {
        SimConfig {
            seed,
            nodes,
            partitions: 1,
            steps,
            liveness_ticks: 1500,
            clients: 5,
            bugs: Bugs::default(),
            trace: false,
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
    /// Reads answered and checked.
    pub reads: u64,
    /// Entries committed (highest index applied, summed over partitions).
    pub committed: u64,
    /// Node crashes injected (of any kind).
    pub crashes: u64,
    /// Crashes inside a group commit (torn, reordered unsynced tails).
    pub torn_crashes: u64,
    /// Directories wiped.
    pub wipes: u64,
    /// Logs damaged in what was durable (repaired from peers).
    pub damaged: u64,
    /// fsync or write errors injected.
    pub storage_errors: u64,
    /// Clock skews injected.
    pub skews: u64,
    /// Distinct (partition, term) pairs that had a leader.
    pub leader_terms: usize,
    /// Messages dropped by the network.
    pub dropped: u64,
    /// Transfer records on disk (spilled to transfer runs) at the end, summed over replicas.
    pub transfers_on_disk: u64,
}

/// Accounts per partition the clients use.
const ACCOUNTS_PER_PARTITION: usize = 4;
const LEDGER: LedgerId = LedgerId(1);
const NANOS_PER_TICK: u64 = 10_000_000;
const BASE_TIME: u64 = 1_700_000_000_000_000_000;
/// How far ahead of true time partition time may run: the clock's measurement error (half a
/// round trip of a few ticks) and a margin.
pub const TIME_AHEAD_MAX: u64 = 1_000_000_000;
/// An hour, the size of a clock skew.
const HOUR: i64 = 3_600_000_000_000;
/// Ticks between two rounds of clock pings.
const CLOCK_PING_TICKS: u64 = 25;

/// What travels on the simulated network.
#[derive(Clone, Debug)]
enum Payload {
    Raft(u32, Message),
    ClockPing(u64),
    ClockPong(u64, u64),
}

struct InFlight {
    deliver_at: u64,
    from: u64,
    to: u64,
    payload: Payload,
}

/// A read waiting at a node for ReadIndex and then for apply.
struct PendingRead {
    client: usize,
    partition: u32,
    /// The highest index any replica of the partition had applied when it was invoked.
    lower_bound: u64,
    /// The index ReadIndex confirmed, once it did.
    index: Option<u64>,
}

struct SimNode {
    id: u64,
    dir: PathBuf,
    configs: Vec<ReplicaConfig>,
    /// One per partition: all present (the node runs) or all absent (it is down).
    replicas: Vec<Option<Replica>>,
    /// The faults installed in each replica's log.
    faults: Vec<Arc<LogFaults>>,
    /// A storage fault is armed: an error from a replica is that fault, not a bug.
    armed: bool,
    paused: bool,
    /// The directory was wiped: it comes back through the replacement procedure.
    wiped: bool,
    /// The simulator damaged durable data of its log: it comes back repairing it from its
    /// peers. (Without this, a restart refuses damage: nothing else may cause it.)
    damaged: bool,
    /// When a crashed node restarts, or a paused one resumes.
    back_at: u64,
    /// The node's clock minus true time, in nanoseconds.
    skew: i64,
    /// When the skew ends.
    skew_until: u64,
    clock: ClusterClock,
    /// Transfers proposed through this node, and the client waiting for each.
    waiting: BTreeMap<(u32, TransferId), usize>,
    /// Reads waiting here, by context id.
    reads: BTreeMap<u64, PendingRead>,
}

impl SimNode {
    fn is_up(&self) -> bool {
        self.replicas.iter().all(Option::is_some)
    }

    fn partition_dir(&self, partition: u32) -> PathBuf {
        self.dir.join(format!("partition-{partition:04}"))
    }
}

/// The simulator's state. See the module documentation.
struct Sim {
    config: SimConfig,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    replies: Vec<Reply>,
    clients: Vec<Client>,
    /// Accounts of each partition.
    accounts: Vec<Vec<AccountId>>,
    /// Links cut by a network partition, as (from, to).
    cut: BTreeSet<(u64, u64)>,
    /// When the current network partition heals.
    heal_at: u64,
    now: u64,
    next_read_id: u64,
    /// (partition, term) -> leader.
    leaders: BTreeMap<(u32, u64), u64>,
    /// Per partition: index -> (term, bytes) of every entry applied anywhere.
    applied_entries: Vec<BTreeMap<u64, (u64, bytes::Bytes)>>,
    /// Per partition: index -> digest after applying it.
    digests: Vec<BTreeMap<u64, u128>>,
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
    label(config, result)
}

fn label<T>(
    config: &SimConfig,
    result: std::thread::Result<Result<T, String>>,
) -> Result<T, String> {
    let seed = config.seed;
    let where_ = format!("nodes={} partitions={}", config.nodes, config.partitions);
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(format!("SIM_SEED={seed} {where_}: {message}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(format!("SIM_SEED={seed} {where_}: panic: {message}"))
        }
    }
}

impl Sim {
    fn new(config: SimConfig, root: &Path) -> Result<Sim, String> {
        assert!((1..=3).contains(&config.partitions), "1 to 3 partitions");
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let voters: Vec<u64> = (1..=config.nodes as u64).collect();
        // A stream of its own, so that adding knobs does not change what a seed replays.
        let mut bounds = ChaCha8Rng::seed_from_u64(config.seed ^ 0x7472_616e_7366_6572);
        let mut nodes = Vec::new();
        for &id in &voters {
            let mut configs = Vec::new();
            for partition in 0..config.partitions {
                let mut c = ReplicaConfig::new(id, PartitionId(partition), voters.clone());
                c.election_tick = rng.gen_range(10..30);
                c.heartbeat_tick = 2;
                c.tick_interval = 20;
                c.segment_size_max = 16 * 1024;
                c.checkpoint_interval_entries = rng.gen_range(15..60);
                // Each replica its own bound (or none): spilled records and refunds of them must
                // answer and digest the same on every replica, across crashes and restarts.
                c.transfers_memory_max = match bounds.gen_range(0..4) {
                    0 => 0,
                    _ => bounds.gen_range(4..48),
                };
                c.bug_skip_fsync = config.bugs.skip_fsync;
                c.bug_apply_before_commit = config.bugs.apply_before_commit;
                c.bug_skip_vote = config.bugs.skip_vote;
                c.bug_lease_reads = config.bugs.lease_reads;
                configs.push(c);
            }
            let dir = root.join(format!("node-{id}"));
            let mut node = SimNode {
                id,
                dir,
                configs,
                replicas: (0..config.partitions).map(|_| None).collect(),
                faults: Vec::new(),
                armed: false,
                paused: false,
                wiped: false,
                damaged: false,
                back_at: 0,
                skew: 0,
                skew_until: 0,
                clock: ClusterClock::new(),
                waiting: BTreeMap::new(),
                reads: BTreeMap::new(),
            };
            faults::open_node(
                &mut node,
                &config.bugs,
                MissingState::Create,
                Damage::Refuse,
            )?;
            nodes.push(node);
        }
        // Accounts by partition, the same for every seed of a layout.
        let mut accounts = vec![Vec::new(); config.partitions as usize];
        let mut id = 1u128;
        while accounts.iter().any(|a| a.len() < ACCOUNTS_PER_PARTITION) {
            let p = tally_client::wire::partition_of(id, config.partitions) as usize;
            if accounts[p].len() < ACCOUNTS_PER_PARTITION {
                accounts[p].push(AccountId(id));
            }
            id += 1;
        }
        let clients = (0..config.clients)
            .map(|c| Client::new(c, config.nodes, config.partitions))
            .collect();
        let drop_rate = rng.gen_range(0.0..0.15);
        let duplicate_rate = rng.gen_range(0.0..0.05);
        Ok(Sim {
            rng,
            nodes,
            network: Vec::new(),
            replies: Vec::new(),
            clients,
            accounts,
            cut: BTreeSet::new(),
            heal_at: 0,
            now: 0,
            next_read_id: 0,
            leaders: BTreeMap::new(),
            applied_entries: vec![BTreeMap::new(); config.partitions as usize],
            digests: vec![BTreeMap::new(); config.partitions as usize],
            report: SimReport::default(),
            drop_rate,
            duplicate_rate,
            faults: std::env::var("SIM_NOFAULTS").is_err(),
            config,
        })
    }

    fn run(&mut self) -> Result<SimReport, String> {
        self.setup()?;
        for _ in 0..self.config.steps {
            self.step()?;
        }
        self.liveness()?;
        Ok(self.finish())
    }

    fn finish(&mut self) -> SimReport {
        self.report.leader_terms = self.leaders.len();
        self.report.transfers_on_disk = self
            .nodes
            .iter()
            .flat_map(|node| node.replicas.iter().flatten())
            .filter_map(|replica| replica.partition().transfer_runs())
            .map(|runs| runs.record_count())
            .sum();
        self.report.committed = self
            .applied_entries
            .iter()
            .map(|entries| entries.keys().next_back().copied().unwrap_or(0))
            .sum();
        self.report.clone()
    }

    /// Prints an event when tracing (see [`SimConfig::trace`]).
    fn note(&self, event: impl FnOnce() -> String) {
        if self.config.trace {
            eprintln!("[sim tick {}] {}", self.now, event());
        }
    }

    /// True time now, in nanoseconds.
    fn true_time(&self) -> u64 {
        BASE_TIME + self.now * NANOS_PER_TICK
    }

    /// Node `i`'s wall clock.
    fn wall(&self, i: usize) -> u64 {
        (self.true_time() as i64 + self.nodes[i].skew) as u64
    }

    /// The time node `i`'s replicas take: the cluster's, or its own with the bug.
    fn stamp(&self, i: usize) -> Now {
        let wall = self.wall(i);
        let monotonic = self.now * NANOS_PER_TICK;
        let cluster = if self.config.bugs.trust_own_clock {
            Some(wall)
        } else {
            self.nodes[i]
                .clock
                .agreed(wall, monotonic, self.nodes.len())
        };
        Now {
            cluster: cluster.map(Timestamp),
            wall: Timestamp(wall),
            monotonic,
        }
    }

    /// Elects leaders and creates the ledger and accounts, without faults.
    fn setup(&mut self) -> Result<(), String> {
        let mut setup: Vec<Vec<Command>> = Vec::new();
        for partition in 0..self.config.partitions as usize {
            setup.push(vec![
                Command::CreateLedgers(vec![NewLedger {
                    id: LEDGER,
                    scale: 2,
                    code: 1,
                }]),
                Command::CreateAccounts(
                    self.accounts[partition]
                        .iter()
                        .enumerate()
                        .map(|(k, &id)| NewAccount {
                            id,
                            ledger: LEDGER,
                            code: 1,
                            // The first account of each partition is its issuer; the others may
                            // not overdraw.
                            flags: AccountFlags(if k == 0 {
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
            ]);
        }
        // Setup is idempotent (ledgers and accounts answer `exists` when retried), so it is
        // proposed again every 100 ticks until every replica has it: a leader change can
        // drop a proposal.
        let mut proposed = vec![false; setup.len()];
        for round in 0..3000u32 {
            self.tick()?;
            self.deliver_all()?;
            if round % 100 == 99 {
                proposed.iter_mut().for_each(|p| *p = false);
            }
            for (partition, commands) in setup.iter().enumerate() {
                if proposed[partition] {
                    continue;
                }
                let Some(i) = self.leader_of(partition as u32) else {
                    continue;
                };
                let now = self.stamp(i);
                let replica = self.nodes[i].replicas[partition]
                    .as_mut()
                    .expect("a leader is up");
                for command in commands {
                    if replica.propose(command.clone(), now).is_err() {
                        break;
                    }
                }
                proposed[partition] = true;
            }
            self.process_all()?;
            let done = self.nodes.iter().all(|n| {
                n.replicas.iter().enumerate().all(|(p, r)| {
                    r.as_ref()
                        .is_some_and(|r| r.partition().account_count() == self.accounts[p].len())
                })
            });
            if done {
                return Ok(());
            }
        }
        Err("setup did not complete".into())
    }

    /// The node whose replica of `partition` leads, if any is up and unpaused.
    fn leader_of(&self, partition: u32) -> Option<usize> {
        self.nodes.iter().position(|n| {
            !n.paused
                && n.replicas[partition as usize]
                    .as_ref()
                    .is_some_and(Replica::is_leader)
        })
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
            let message = self.network.swap_remove(position);
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
            if self.now >= self.nodes[i].skew_until {
                self.nodes[i].skew = 0;
            }
            if self.now >= self.nodes[i].back_at {
                self.nodes[i].paused = false;
                self.restart(i)?;
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused || !self.nodes[i].is_up() {
                continue;
            }
            let now = self.stamp(i);
            for replica in self.nodes[i].replicas.iter_mut().flatten() {
                replica.tick(now);
            }
            if self.now.is_multiple_of(CLOCK_PING_TICKS) {
                let monotonic = self.now * NANOS_PER_TICK;
                let from = self.nodes[i].id;
                for to in 1..=self.nodes.len() as u64 {
                    if to != from {
                        self.send_one(from, to, Payload::ClockPing(monotonic));
                    }
                }
            }
        }
        self.deliver_replies();
        self.process_all()
    }

    /// Queues one message, which the network may drop, duplicate or delay.
    fn send_one(&mut self, from: u64, to: u64, payload: Payload) {
        if self.faults && self.rng.gen_bool(self.drop_rate) {
            self.report.dropped += 1;
            return;
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
                from,
                to,
                payload: payload.clone(),
            });
        }
    }

    fn send(&mut self, partition: u32, messages: Vec<Message>) {
        for message in messages {
            let (from, to) = (message.from, message.to);
            self.send_one(from, to, Payload::Raft(partition, message));
        }
    }

    fn deliver(&mut self, message: InFlight) -> Result<(), String> {
        if self.cut.contains(&(message.from, message.to)) {
            self.report.dropped += 1;
            return Ok(());
        }
        let i = (message.to - 1) as usize;
        if self.nodes[i].paused {
            // A paused process reads its socket when it resumes: keep the message.
            self.network.push(InFlight {
                deliver_at: self.now + 1,
                ..message
            });
            return Ok(());
        }
        if !self.nodes[i].is_up() {
            return Ok(());
        }
        match message.payload {
            Payload::Raft(partition, raft) => {
                let node = &mut self.nodes[i];
                let replica = node.replicas[partition as usize]
                    .as_mut()
                    .expect("an up node has every replica");
                if let Err(error) = replica.step(raft) {
                    return Err(format!("node {}: step: {error}", node.id));
                }
            }
            Payload::ClockPing(sent) => {
                let wall = self.wall(i);
                self.send_one(message.to, message.from, Payload::ClockPong(sent, wall));
            }
            Payload::ClockPong(sent, theirs) => {
                let monotonic = self.now * NANOS_PER_TICK;
                self.nodes[i]
                    .clock
                    .sample(message.from, sent, theirs, monotonic);
            }
        }
        Ok(())
    }

    fn deliver_all(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            let Some(position) = self.network.iter().position(|m| m.deliver_at <= self.now) else {
                return Ok(());
            };
            let message = self.network.swap_remove(position);
            self.deliver(message)?;
            self.process_all()?;
        }
        Ok(())
    }

    fn process_all(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused || !self.nodes[i].is_up() {
                continue;
            }
            for partition in 0..self.config.partitions {
                if !self.nodes[i].is_up() {
                    break;
                }
                let mut early = Vec::new();
                let mut outbox = Vec::new();
                let mut applied = Vec::new();
                let mut reads: Vec<ReadReady> = Vec::new();
                let result = {
                    let node = &mut self.nodes[i];
                    let replica = node.replicas[partition as usize]
                        .as_mut()
                        .expect("an up node has every replica");
                    let mut send_early = |messages: Vec<Message>| early.extend(messages);
                    replica.handle_ready(&mut send_early, &mut outbox, &mut applied, &mut reads)
                };
                // A leader's early messages left before its write: they are on the network
                // even if the write then fails and the node stops.
                self.send(partition, early);
                if let Err(error) = result {
                    if self.nodes[i].armed && error.to_string().contains("injected fault") {
                        // The injected fault: the node stops, as a real one would.
                        self.crash(i)?;
                        break;
                    }
                    return Err(format!("node {}: ready: {error}", self.nodes[i].id));
                }
                self.send(partition, outbox);
                for entry in applied {
                    self.on_applied(i, partition, &entry)?;
                }
                self.on_reads(i, partition, reads)?;
            }
        }
        Ok(())
    }
}
