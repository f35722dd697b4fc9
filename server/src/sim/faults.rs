//! The faults the simulator injects, and how nodes come back from them (see the module
//! documentation of `sim`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::Rng;
use tally_engine::segment::LogFaults;
use tally_engine::types::PartitionId;

use super::{disk, Bugs, Sim, SimNode, HOUR, NANOS_PER_TICK};
use crate::clock::ClusterClock;
use crate::raft_storage::{self, Damage, MissingState};
use crate::recovery;
use crate::replica::Replica;
use crate::transport::{PartitionProbe, ProbeReply, ReplicaState};

impl Sim {
    pub(super) fn fault(&mut self) -> Result<(), String> {
        let i = self.rng.gen_range(0..self.nodes.len());
        let duration = self.rng.gen_range(5..150);
        match self.rng.gen_range(0..16) {
            0..=4 => {
                self.nodes[i].back_at = self.now + duration;
                self.crash(i)
            }
            5..=7 => {
                // Longer than an election timeout, often: the paused leader wakes up deposed.
                self.nodes[i].paused = true;
                self.nodes[i].back_at = self.now + duration;
                Ok(())
            }
            8..=10 => {
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
            11 => {
                self.cut.clear();
                Ok(())
            }
            12 => {
                if self.rng.gen_bool(0.5) {
                    self.wipe(i, duration)
                } else {
                    self.damage(i, duration)
                }
            }
            13 | 14 => {
                // A storage fault in one replica's log, at its next write or fsync: a crash
                // between a write and its fsync (a torn, reordered unsynced tail), or EIO.
                let node = &mut self.nodes[i];
                if !node.is_up() || node.armed {
                    return Ok(());
                }
                let partition = self.rng.gen_range(0..self.config.partitions) as usize;
                let faults = &node.faults[partition];
                match self.rng.gen_range(0..4) {
                    0 | 1 => {
                        faults.crash_before_next_sync.store(true, Ordering::Relaxed);
                        self.report.torn_crashes += 1;
                    }
                    2 => {
                        faults.fail_next_sync.store(true, Ordering::Relaxed);
                        self.report.storage_errors += 1;
                    }
                    _ => {
                        faults.fail_next_write.store(true, Ordering::Relaxed);
                        self.report.storage_errors += 1;
                    }
                }
                node.armed = true;
                node.back_at = self.now + duration;
                self.note(|| format!("node {} partition {partition}: storage fault armed", i + 1));
                Ok(())
            }
            _ => {
                // A clock an hour off, the leader's when there is one. One at a time: time
                // follows a majority of the clocks, so skewing most of them moves it.
                // (Peers' samples of the last skewed clock must have aged out too.)
                let settled = self.nodes.iter().all(|n| {
                    n.skew == 0
                        && self.now >= n.skew_until + crate::clock::SAMPLE_AGE_MAX / NANOS_PER_TICK
                });
                if !settled {
                    return Ok(());
                }
                let target = self.leader_of(0).unwrap_or(i);
                let node = &mut self.nodes[target];
                node.skew = if self.rng.gen_bool(0.7) { HOUR } else { -HOUR };
                node.skew_until = self.now + duration * 3;
                self.report.skews += 1;
                let skew = node.skew;
                self.note(|| format!("node {} clock off by {skew} ns", target + 1));
                Ok(())
            }
        }
    }

    /// Node `i` stops: every replica dropped, each log cut to what survives a crash.
    pub(super) fn crash(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if !node.is_up() {
            return Ok(());
        }
        let mut durable = Vec::new();
        for replica in node.replicas.iter_mut() {
            let replica = replica.take().expect("an up node has every replica");
            durable.push(replica.durable_index());
        }
        node.waiting.clear();
        node.reads.clear();
        node.paused = false;
        node.armed = false;
        node.clock = ClusterClock::new();
        for (partition, durable) in durable.iter().enumerate() {
            let dir = node.partition_dir(partition as u32).join("log");
            disk::lose_unsynced(&dir, *durable, &mut self.rng)?;
        }
        if node.back_at <= self.now {
            node.back_at = self.now + 1;
        }
        self.report.crashes += 1;
        self.note(|| format!("node {} crashed (durable up to {durable:?})", i + 1));
        Ok(())
    }

    /// Whether every node but `i` holds its data (none wiped, damaged or recovering): a node
    /// may lose its data only then, since losing a majority's is beyond what any replication
    /// survives.
    pub(super) fn others_whole(&self, i: usize) -> bool {
        let partitions = self.config.partitions;
        self.nodes.iter().enumerate().all(|(j, n)| {
            j == i
                || (!n.wiped
                    && !n.damaged
                    && (0..partitions).all(|p| {
                        // Down nodes too: what their state files say.
                        raft_storage::read_term(&n.partition_dir(p), PartitionId(p))
                            .is_some_and(|(_, recovering)| !recovering)
                    }))
        })
    }

    /// Node `i` crashes, and a byte of its durable log is flipped, or the log is cut into
    /// what was durable: it must repair itself from its peers when it comes back.
    pub(super) fn damage(&mut self, i: usize, duration: u64) -> Result<(), String> {
        if !self.others_whole(i) || self.nodes[i].wiped || !self.nodes[i].is_up() {
            return Ok(());
        }
        self.nodes[i].back_at = self.now + duration;
        self.crash(i)?;
        let partition = self.rng.gen_range(0..self.config.partitions);
        let dir = self.nodes[i].partition_dir(partition).join("log");
        if disk::damage_durable(&dir, &mut self.rng)? {
            self.nodes[i].damaged = true;
            self.report.damaged += 1;
            self.note(|| format!("node {} partition {partition}: durable log damaged", i + 1));
        }
        Ok(())
    }

    /// Node `i` loses its directory (only while the others hold theirs, see
    /// [`Sim::others_whole`]).
    pub(super) fn wipe(&mut self, i: usize, duration: u64) -> Result<(), String> {
        let others_whole = self.others_whole(i);
        if !others_whole || self.nodes[i].wiped {
            return Ok(());
        }
        self.nodes[i].back_at = self.now + duration;
        self.crash(i)?;
        let node = &mut self.nodes[i];
        std::fs::remove_dir_all(&node.dir)
            .map_err(|e| format!("wipe {}: {e}", node.dir.display()))?;
        node.wiped = true;
        self.report.wipes += 1;
        self.note(|| format!("node {} wiped", i + 1));
        Ok(())
    }

    /// Brings node `i` back if it is down. A wiped node follows the replacement procedure: it
    /// waits until enough reachable peers holding their own state tell it each partition's
    /// term floor, then starts every replica recovering.
    pub(super) fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.nodes[i].is_up() {
            return Ok(());
        }
        let bugs = self.config.bugs;
        self.note(|| {
            let n = &self.nodes[i];
            format!(
                "node {} restarting (wiped {}, damaged {})",
                i + 1,
                n.wiped,
                n.damaged
            )
        });
        if !self.nodes[i].wiped {
            let node = &mut self.nodes[i];
            let damage = if std::mem::take(&mut node.damaged) {
                Damage::Repair
            } else {
                Damage::Refuse
            };
            return open_node(node, &bugs, MissingState::Refuse, damage);
        }
        if bugs.wipe_rejoins_as_voter {
            self.nodes[i].wiped = false;
            return open_node(
                &mut self.nodes[i],
                &bugs,
                MissingState::Create,
                Damage::Refuse,
            );
        }
        let voters: Vec<u64> = (1..=self.nodes.len() as u64).collect();
        let own = self.nodes[i].id;
        let replies: BTreeMap<u64, ProbeReply> = self
            .nodes
            .iter()
            .filter(|n| n.id != own && !n.paused && n.is_up())
            .filter(|n| !self.cut.contains(&(own, n.id)) && !self.cut.contains(&(n.id, own)))
            .map(|n| (n.id, probe_reply(n)))
            .collect();
        let mut floors = Vec::new();
        for partition in 0..self.config.partitions as usize {
            match recovery::term_floor(&voters, own, partition, &replies) {
                Some(term) => floors.push(term),
                // Not enough peers reachable yet: stay down, ask again next tick.
                None => return Ok(()),
            }
        }
        let node = &mut self.nodes[i];
        for (partition, term) in floors.into_iter().enumerate() {
            let config = &node.configs[partition];
            raft_storage::create_recovering(
                &node.partition_dir(partition as u32),
                config.partition,
                &config.voters,
                node.id,
                term,
                config.segment_size_max,
            )
            .map_err(|e| format!("node {}: recovering state: {e}", node.id))?;
        }
        node.wiped = false;
        open_node(node, &bugs, MissingState::Refuse, Damage::Refuse)
    }
}

/// What node `n` answers to a probe.
pub(super) fn probe_reply(node: &SimNode) -> ProbeReply {
    ProbeReply {
        nonce: 0,
        formed: true,
        partitions: node
            .replicas
            .iter()
            .map(|r| {
                let r = r.as_ref().expect("an up node has every replica");
                PartitionProbe {
                    term: r.term(),
                    last_index: r.last_index(),
                    state: if r.is_recovering() {
                        ReplicaState::Recovering
                    } else {
                        ReplicaState::Normal
                    },
                }
            })
            .collect(),
    }
}

/// Opens every replica of a node (creating new ones with `missing`, treating damage as
/// `damage` says), with fresh log faults.
pub(super) fn open_node(
    node: &mut SimNode,
    bugs: &Bugs,
    missing: MissingState,
    damage: Damage,
) -> Result<(), String> {
    let mut replicas = Vec::new();
    let mut faults = Vec::new();
    for (partition, config) in node.configs.iter().enumerate() {
        let mut config = config.clone();
        config.missing_state = missing;
        config.damage = damage;
        let dir = node.partition_dir(partition as u32);
        let mut replica = Replica::open(&dir, config)
            .map_err(|e| format!("restart node {} partition {partition}: {e}", node.id))?;
        let injected = Arc::new(LogFaults::default());
        injected
            .bug_slot_before_sync
            .store(bugs.slot_before_sync, Ordering::Relaxed);
        injected
            .bug_retry_failed_sync
            .store(bugs.retry_failed_sync, Ordering::Relaxed);
        replica.set_log_faults(injected.clone());
        replicas.push(Some(replica));
        faults.push(injected);
    }
    node.replicas = replicas;
    node.faults = faults;
    node.armed = false;
    Ok(())
}
