//! What the simulator checks: after every applied entry, after every step, for every read,
//! and at the end (see the module documentation of `sim`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use rand::Rng;
use tally_engine::command::Command;
use tally_engine::outcome::{Outcome, TransferResult};

use super::clients::{Reply, ReplyKind};
use super::{Sim, TIME_AHEAD_MAX};
use crate::raft_storage::{Damage, MissingState};
use crate::replica::{Applied, ReadReady, Replica};

/// Whether an outcome is recorded under the transfer's id (a decision), as opposed to a
/// rejection before the idempotency check or a chain member failed by another event.
pub(super) fn is_recorded(result: TransferResult) -> bool {
    result == TransferResult::Ok || result.code() > TransferResult::ExistsWithDifferentFields.code()
}

impl Sim {
    pub(super) fn on_applied(
        &mut self,
        node_index: usize,
        partition: u32,
        entry: &Applied,
    ) -> Result<(), String> {
        let node_id = self.nodes[node_index].id;
        let index = entry.index.0;
        let p = partition as usize;
        match self.applied_entries[p].get(&index) {
            Some((term, data)) => {
                if *term != entry.term || *data != entry.data {
                    return Err(format!(
                        "log matching: node {node_id} applied partition {partition} index \
                         {index} term {} but another replica applied term {term} there",
                        entry.term
                    ));
                }
            }
            None => {
                self.applied_entries[p].insert(index, (entry.term, entry.data.clone()));
            }
        }
        match self.digests[p].get(&index) {
            Some(&digest) if digest != entry.digest => {
                return Err(format!(
                    "node {node_id} has digest {:x} after partition {partition} index {index}, \
                     another replica {digest:x}",
                    entry.digest
                ))
            }
            Some(_) => {}
            None => {
                self.digests[p].insert(index, entry.digest);
            }
        }
        if let Some(payload) = &entry.payload {
            let limit = self.true_time() + TIME_AHEAD_MAX;
            if payload.timestamp.0 > limit {
                return Err(format!(
                    "partition {partition} index {index} is stamped {} ns ahead of true time",
                    payload.timestamp.0 - self.true_time()
                ));
            }
        }
        if let Outcome::Transfers(outcomes) = &entry.outcome {
            let Some(Command::CreateTransfers(transfers)) =
                entry.payload.as_ref().map(|p| &p.command)
            else {
                return Err("transfer outcomes for a payload without transfers".into());
            };
            for (t, outcome) in transfers.iter().zip(outcomes) {
                let waiting = self.nodes[node_index].waiting.remove(&(partition, t.id));
                if let Some(client) = waiting {
                    let delay = self.rng.gen_range(0..3);
                    if self.faults && self.rng.gen_bool(self.drop_rate) {
                        continue; // The reply is lost; the client retries.
                    }
                    self.replies.push(Reply {
                        deliver_at: self.now + delay,
                        client,
                        kind: ReplyKind::Outcome(t.id, *outcome, partition),
                    });
                }
            }
        }
        Ok(())
    }

    /// Confirmed reads, and the reads now answerable: a read is answered once its replica
    /// applied up to the index ReadIndex confirmed, from the state it has then. That state
    /// must be one the partition went through, at least as new as every state any replica
    /// had applied when the read was invoked.
    pub(super) fn on_reads(
        &mut self,
        node_index: usize,
        partition: u32,
        confirmed: Vec<ReadReady>,
    ) -> Result<(), String> {
        let node = &mut self.nodes[node_index];
        for read in confirmed {
            let Ok(bytes) = <[u8; 8]>::try_from(read.context.as_slice()) else {
                return Err(format!("node {}: read context {:?}", node.id, read.context));
            };
            if let Some(pending) = node.reads.get_mut(&u64::from_le_bytes(bytes)) {
                pending.index = Some(read.index);
            }
        }
        let replica = node.replicas[partition as usize]
            .as_ref()
            .expect("an up node has every replica");
        let applied = replica.partition().applied_index().0;
        let digest = replica.partition().digest();
        let ready: Vec<u64> = node
            .reads
            .iter()
            .filter(|(_, r)| r.partition == partition && r.index.is_some_and(|i| i <= applied))
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            let read = node.reads.remove(&id).expect("listed");
            if applied < read.lower_bound {
                return Err(format!(
                    "stale read: node {} answered partition {partition} at index {applied}, \
                     but index {} had been applied when the read began",
                    node.id, read.lower_bound
                ));
            }
            if self.digests[partition as usize].get(&applied) != Some(&digest) {
                return Err(format!(
                    "node {} answered a read of partition {partition} from a state the \
                     partition never had at index {applied}",
                    node.id
                ));
            }
            self.report.reads += 1;
            self.replies.push(Reply {
                deliver_at: self.now + 1,
                client: read.client,
                kind: ReplyKind::Read(id),
            });
        }
        Ok(())
    }

    pub(super) fn check(&mut self) -> Result<(), String> {
        for node in &self.nodes {
            for (partition, replica) in node.replicas.iter().enumerate() {
                let Some(replica) = replica else {
                    continue;
                };
                if replica.is_leader() {
                    let term = replica.term();
                    if self.config.trace && !self.leaders.contains_key(&(partition as u32, term)) {
                        eprintln!(
                            "[sim tick {}] node {} leads partition {partition} in term {term} \
                             (last index {}, commit {})",
                            self.now,
                            node.id,
                            replica.last_index(),
                            replica.commit_index()
                        );
                    }
                    let leader = *self
                        .leaders
                        .entry((partition as u32, term))
                        .or_insert(node.id);
                    if leader != node.id {
                        return Err(format!(
                            "two leaders of partition {partition} in term {term}: {leader} \
                             and {}",
                            node.id
                        ));
                    }
                }
                replica
                    .partition()
                    .check_invariants()
                    .map_err(|e| format!("node {} partition {partition}: {e}", node.id))?;
            }
        }
        for client in &self.clients {
            for (id, outcome) in &client.acked {
                if !is_recorded(outcome.result) {
                    continue;
                }
                let partition = client.homes[id] as usize;
                // Acknowledged outcomes never change: check the replicas that have applied it.
                for node in &self.nodes {
                    let Some(replica) = &node.replicas[partition] else {
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

    pub(super) fn liveness(&mut self) -> Result<(), String> {
        self.faults = false;
        self.cut.clear();
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            node.paused = false;
            node.skew = 0;
            node.armed = false;
            for faults in &node.faults {
                faults
                    .crash_before_next_sync
                    .store(false, Ordering::Relaxed);
                faults.fail_next_sync.store(false, Ordering::Relaxed);
                faults.fail_next_write.store(false, Ordering::Relaxed);
            }
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
        let mut states = Vec::new();
        for node in &self.nodes {
            if node.wiped {
                states.push(format!("node {} wiped, waiting for its peers", node.id));
            }
            for (partition, r) in node.replicas.iter().enumerate() {
                let Some(r) = r else {
                    continue;
                };
                states.push(format!(
                    "node {} partition {partition} term {} leader {} commit {} applied {}{}",
                    r.node_id(),
                    r.term(),
                    r.leader_id(),
                    r.commit_index(),
                    r.partition().applied_index(),
                    if r.is_recovering() { " recovering" } else { "" }
                ));
            }
        }
        let open = self.clients.iter().filter(|c| c.request.is_some()).count();
        Err(format!(
            "liveness: no convergence within {} ticks ({open} client requests open): {}",
            self.config.liveness_ticks,
            states.join("; ")
        ))
    }

    pub(super) fn converged(&self) -> bool {
        if self.clients.iter().any(|c| c.request.is_some()) {
            return false;
        }
        if self.nodes.iter().any(|n| !n.is_up()) {
            return false;
        }
        (0..self.config.partitions as usize).all(|p| {
            let replicas: Vec<&Replica> = self
                .nodes
                .iter()
                .map(|n| n.replicas[p].as_ref().expect("every node is up"))
                .collect();
            let first = replicas[0];
            let applied = first.partition().applied_index();
            replicas.iter().all(|r| {
                r.partition().applied_index() == applied
                    && r.commit_index() == applied.0
                    && r.last_index() == applied.0
                    && r.partition().digest() == first.partition().digest()
                    && !r.is_recovering()
            })
        })
    }

    /// Every node restarts once more (each must open what it wrote) and the cluster must
    /// converge again; then every acknowledged transfer must be recorded, as acknowledged,
    /// on every replica.
    pub(super) fn final_check(&mut self) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            for replica in node.replicas.iter_mut() {
                drop(replica.take());
            }
            node.waiting.clear();
            node.reads.clear();
            super::faults::open_node(
                node,
                &self.config.bugs,
                MissingState::Refuse,
                Damage::Refuse,
            )?;
        }
        let deadline = self.now + self.config.liveness_ticks;
        let applied = |sim: &Sim| -> Vec<u64> {
            (0..sim.config.partitions as usize)
                .map(|p| {
                    sim.applied_entries[p]
                        .keys()
                        .next_back()
                        .copied()
                        .unwrap_or(0)
                })
                .collect()
        };
        let target = applied(self);
        loop {
            if self.now >= deadline {
                return Err(format!(
                    "after the final restart the cluster did not converge within {} ticks",
                    self.config.liveness_ticks
                ));
            }
            self.tick()?;
            self.deliver_all()?;
            self.process_all()?;
            self.check()?;
            let caught_up = self.nodes.iter().all(|n| {
                n.replicas.iter().zip(&target).all(|(r, &t)| {
                    r.as_ref()
                        .is_some_and(|r| r.partition().applied_index().0 >= t)
                })
            });
            if caught_up && self.converged() {
                break;
            }
        }
        let mut acknowledged = 0;
        for client in &self.clients {
            for (id, outcome) in &client.acked {
                acknowledged += 1;
                if !is_recorded(outcome.result) {
                    continue;
                }
                let partition = client.homes[id] as usize;
                for node in &self.nodes {
                    let replica = node.replicas[partition].as_ref().expect("all restarted");
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
        self.check_change_logs()
    }

    /// Every replica of a partition wrote the same change records (they are a pure function
    /// of the committed entries), and each covers what it applied.
    fn check_change_logs(&self) -> Result<(), String> {
        use crate::changes::log::ChangeReader;
        for partition in 0..self.config.partitions {
            let mut first: Option<(u64, BTreeMap<u64, Vec<u8>>)> = None;
            for node in &self.nodes {
                let replica = node.replicas[partition as usize]
                    .as_ref()
                    .expect("all restarted");
                let applied = replica.partition().applied_index().0;
                let dir = node.partition_dir(partition).join("changes");
                let mut reader = ChangeReader::after(&dir, 0).map_err(|e| e.to_string())?;
                let mut records = Vec::new();
                loop {
                    let before = records.len();
                    reader
                        .read(u64::MAX, usize::MAX, &mut records)
                        .map_err(|e| format!("node {} partition {partition}: {e}", node.id))?;
                    if records.len() == before {
                        break;
                    }
                }
                if reader.last() < applied {
                    return Err(format!(
                        "node {} partition {partition}: change log ends at {}, applied {applied}",
                        node.id,
                        reader.last()
                    ));
                }
                // Empty records only say how far a flush reached: when is the node's own.
                let decided: BTreeMap<u64, Vec<u8>> = records
                    .into_iter()
                    .filter(|r| !r.body.is_empty())
                    .map(|r| (r.header.index, r.body))
                    .collect();
                match &first {
                    None => first = Some((applied, decided)),
                    Some((other_applied, other)) => {
                        let upto = applied.min(*other_applied);
                        let mine = decided.range(..=upto);
                        let theirs = other.range(..=upto);
                        if !mine.eq(theirs) {
                            return Err(format!(
                                "node {} partition {partition}: change log differs from node {}'s",
                                node.id, self.nodes[0].id
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
