//! The faults, on a schedule drawn from the run's seed.
//!
//! The nemesis alternates quiet periods and faults until the time limit: each fault lasts
//! `--fault-seconds` (3 to 6 s by default) and is then healed. Its first faults take every enabled kind in turn (so a
//! short run sees each once), later ones are drawn at random. Every fault and heal goes to
//! `nemesis.jsonl` with its time and the nodes it touched.
//!
//! - `partition`: one node isolated, the leader isolated, the nodes split into a majority
//!   and a minority, or a bridge (two sides that only one node joins) — iptables rules on
//!   the links between node addresses;
//! - `loss`: 30% of the packets on the leader's links dropped (iptables `statistic`);
//! - `kill`: a node (the leader, half the time) killed with SIGKILL, restarted on its
//!   directory;
//! - `pause`: a node (the leader, half the time) stopped with SIGSTOP past an election
//!   timeout, then resumed;
//! - `clock`: a node's clock (the leader's, half the time) an hour ahead or behind, or
//!   strobing between the two, through libfaketime;
//! - `wipe`: a node killed, its data directory removed, restarted with its usual command
//!   (the documented replacement procedure);
//! - `corrupt`: a node killed, one byte flipped in a sealed log segment, restarted;
//! - `truncate`: a node killed, the tail of its last log segment cut or a record in it
//!   zeroed (written out of order), restarted;
//! - `disk-full`: a node's small tmpfs filled until its writes fail, then emptied and the
//!   node restarted if it stopped;
//! - `eio`: a node restarted under strace so that its fsyncs fail with EIO, then restarted
//!   normally;
//! - `power`: every node loses power at once — killed, every log write since its last fsync
//!   dropped (`disk.rs`) — and restarted.
//!
//! Storage faults touch one node at a time, and only when every other node is running: more
//! than a minority of nodes without their data is beyond what replication survives.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cluster::{self, Cluster, Start};
use crate::disk;
use crate::history::Recorder;

/// The kinds of fault, as named on the command line.
pub const KINDS: &[&str] = &[
    "partition",
    "loss",
    "kill",
    "pause",
    "clock",
    "wipe",
    "corrupt",
    "truncate",
    "disk-full",
    "eio",
    "power",
];

/// One line of `nemesis.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the run started.
    pub time_ns: u64,
    /// `start` or `stop`.
    pub phase: String,
    /// The fault's kind.
    pub kind: String,
    /// What exactly was done.
    pub detail: String,
    /// The nodes it touched.
    pub nodes: Vec<usize>,
    /// The wall-clock time (UTC, RFC 3339), to find it in the nodes' logs.
    #[serde(default)]
    pub wall: String,
}

/// The nemesis's state: the cluster it acts on and what it did.
pub struct Nemesis {
    cluster: Arc<Mutex<Cluster>>,
    kinds: Vec<String>,
    /// How long a fault lasts: drawn from this range, in milliseconds.
    hold_ms: (u64, u64),
    rng: ChaCha8Rng,
    recorder: Arc<Recorder>,
    events: Vec<Event>,
    /// The fault in force, for progress lines.
    pub current: Arc<Mutex<String>>,
    next_kind: usize,
}

fn iptables(args: &[&str]) -> Result<(), String> {
    let output = Command::new("iptables")
        .args(args)
        .output()
        .map_err(|e| format!("iptables: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Cuts the links between nodes `a` and `b`, both ways.
fn cut(a: usize, b: usize) -> Result<(), String> {
    drop_between(a, b, &[])
}

/// Drops the packets between nodes `a` and `b`, both ways, that also match `matches`
/// (iptables match options; none: every packet).
fn drop_between(a: usize, b: usize, matches: &[&str]) -> Result<(), String> {
    for (from, to) in [(a, b), (b, a)] {
        let (from, to) = (cluster::ip(from), cluster::ip(to));
        let mut rule = vec!["-A", "INPUT", "-s", &from, "-d", &to];
        rule.extend_from_slice(matches);
        rule.extend_from_slice(&["-j", "DROP"]);
        iptables(&rule)?;
    }
    Ok(())
}

/// Removes every rule: the network is whole again.
pub fn heal_network() -> Result<(), String> {
    iptables(&["-F", "INPUT"])
}

impl Nemesis {
    /// A nemesis of the given kinds, seeded.
    pub fn new(
        cluster: Arc<Mutex<Cluster>>,
        kinds: Vec<String>,
        seed: u64,
        recorder: Arc<Recorder>,
        hold_ms: (u64, u64),
    ) -> Nemesis {
        Nemesis {
            cluster,
            kinds,
            hold_ms,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x006e_656d_6573_6973),
            recorder,
            events: Vec::new(),
            current: Arc::new(Mutex::new("none".into())),
            next_kind: 0,
        }
    }

    /// What it did.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    fn note(&mut self, phase: &str, kind: &str, detail: String, nodes: Vec<usize>) {
        let event = Event {
            time_ns: self.recorder.now_ns(),
            phase: phase.into(),
            kind: kind.into(),
            detail: detail.clone(),
            nodes,
            wall: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        };
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = if phase == "start" {
            format!("{kind}: {detail}")
        } else {
            "none".into()
        };
        self.events.push(event);
    }

    fn nodes(&self) -> usize {
        self.lock().layout().nodes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node leading partition 0, or a random one.
    async fn leader_or_random(&mut self, leader: Option<usize>) -> usize {
        let nodes = self.nodes();
        match leader {
            Some(i) if self.rng.gen_bool(0.5) => i,
            _ => self.rng.gen_range(1..=nodes),
        }
    }

    /// Runs faults until `until` (ns since the run started). `leader` finds the current
    /// leader.
    pub async fn run<F, Fut>(&mut self, until: u64, leader: F) -> Result<(), String>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Option<usize>>,
    {
        if self.kinds.is_empty() {
            tokio::time::sleep(Duration::from_nanos(until)).await;
            return Ok(());
        }
        loop {
            let quiet = self.rng.gen_range(1_000..3_000);
            tokio::time::sleep(Duration::from_millis(quiet)).await;
            let hold = Duration::from_millis(self.rng.gen_range(self.hold_ms.0..=self.hold_ms.1));
            if self.recorder.now_ns() + hold.as_nanos() as u64 + 1_000_000_000 > until {
                return Ok(());
            }
            let kind = if self.next_kind < self.kinds.len() {
                self.next_kind += 1;
                self.kinds[self.next_kind - 1].clone()
            } else {
                self.kinds
                    .choose(&mut self.rng)
                    .cloned()
                    .unwrap_or_default()
            };
            let leader = leader().await;
            self.fault(&kind, hold, leader).await?;
        }
    }

    async fn fault(
        &mut self,
        kind: &str,
        hold: Duration,
        leader: Option<usize>,
    ) -> Result<(), String> {
        let nodes = self.nodes();
        match kind {
            "partition" => {
                let (detail, cuts) = self.partition(nodes, leader);
                let touched: BTreeSet<usize> = cuts.iter().flat_map(|&(a, b)| [a, b]).collect();
                for &(a, b) in &cuts {
                    cut(a, b)?;
                }
                self.note("start", kind, detail, touched.iter().copied().collect());
                tokio::time::sleep(hold).await;
                heal_network()?;
                self.note("stop", kind, "healed".into(), touched.into_iter().collect());
            }
            "loss" => {
                let target = leader.unwrap_or(1);
                for other in (1..=nodes).filter(|&o| o != target) {
                    let random = [
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        "0.3",
                    ];
                    drop_between(target, other, &random)?;
                }
                self.note(
                    "start",
                    kind,
                    format!("30% loss on node {target}'s links"),
                    vec![target],
                );
                tokio::time::sleep(hold).await;
                heal_network()?;
                self.note("stop", kind, "healed".into(), vec![target]);
            }
            "kill" => {
                let target = self.leader_or_random(leader).await;
                self.lock().kill(target);
                self.note("start", kind, format!("node {target} killed"), vec![target]);
                tokio::time::sleep(hold).await;
                self.lock().start(target, Start::Normal)?;
                self.note(
                    "stop",
                    kind,
                    format!("node {target} restarted"),
                    vec![target],
                );
            }
            "pause" => {
                let target = self.leader_or_random(leader).await;
                self.lock().pause(target, true);
                self.note("start", kind, format!("node {target} paused"), vec![target]);
                tokio::time::sleep(hold).await;
                self.lock().pause(target, false);
                self.note("stop", kind, format!("node {target} resumed"), vec![target]);
            }
            "clock" => {
                let target = self.leader_or_random(leader).await;
                let file = self.lock().clock_file(target);
                let strobe = self.rng.gen_bool(0.3);
                let offset: i64 = if self.rng.gen_bool(0.5) { 3600 } else { -3600 };
                let detail = if strobe {
                    format!("node {target}'s clock strobing ±1 h")
                } else {
                    format!("node {target}'s clock {offset:+} s")
                };
                self.note("start", kind, detail, vec![target]);
                if strobe {
                    let end = tokio::time::Instant::now() + hold;
                    let mut sign = 1;
                    while tokio::time::Instant::now() < end {
                        write_offset(&file, sign * offset)?;
                        sign = -sign;
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                    }
                } else {
                    write_offset(&file, offset)?;
                    tokio::time::sleep(hold).await;
                }
                write_offset(&file, 0)?;
                self.note(
                    "stop",
                    kind,
                    format!("node {target}'s clock right"),
                    vec![target],
                );
            }
            "power" => {
                let everyone_up = (1..=nodes).all(|i| self.lock().is_running(i));
                if !everyone_up {
                    return Ok(());
                }
                let mut lost = Vec::new();
                for i in 1..=nodes {
                    self.lock().kill(i);
                }
                for i in 1..=nodes {
                    let data = self.lock().data_dir(i);
                    lost.push(format!("node {i} {} bytes", disk::cut_unsynced(&data)?));
                }
                let all: Vec<usize> = (1..=nodes).collect();
                self.note(
                    "start",
                    kind,
                    format!("power cut: unsynced log writes lost ({})", lost.join(", ")),
                    all.clone(),
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                for i in 1..=nodes {
                    self.lock().start(i, Start::Normal)?;
                }
                tokio::time::sleep(hold).await;
                self.note("stop", kind, "power back: every node restarted".into(), all);
            }
            "wipe" | "corrupt" | "truncate" | "disk-full" | "eio" => {
                // One node without its data at a time, and only with every other node up.
                let everyone_up = (1..=nodes).all(|i| self.lock().is_running(i));
                if !everyone_up {
                    return Ok(());
                }
                let target = self.rng.gen_range(1..=nodes);
                self.storage(kind, target, hold).await?;
            }
            other => return Err(format!("unknown nemesis {other:?}")),
        }
        Ok(())
    }

    fn partition(&mut self, nodes: usize, leader: Option<usize>) -> (String, Vec<(usize, usize)>) {
        let all: Vec<usize> = (1..=nodes).collect();
        let isolate = |target: usize| -> Vec<(usize, usize)> {
            all.iter()
                .filter(|&&o| o != target)
                .map(|&o| (target, o))
                .collect()
        };
        // The leader's isolation is the partition that tests the most: twice as likely.
        match self.rng.gen_range(0..5) {
            0 => {
                let target = self.rng.gen_range(1..=nodes);
                (format!("node {target} isolated"), isolate(target))
            }
            1 | 2 => {
                let target = leader.unwrap_or(1);
                (format!("leader {target} isolated"), isolate(target))
            }
            3 => {
                let mut shuffled = all.clone();
                shuffled.shuffle(&mut self.rng);
                let (minority, majority) = shuffled.split_at(nodes / 2);
                let cuts = minority
                    .iter()
                    .flat_map(|&a| majority.iter().map(move |&b| (a, b)))
                    .collect();
                (format!("{minority:?} apart from {majority:?}"), cuts)
            }
            _ => {
                let mut shuffled = all.clone();
                shuffled.shuffle(&mut self.rng);
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let (left, right) = rest.split_at(rest.len() / 2);
                let cuts = left
                    .iter()
                    .flat_map(|&a| right.iter().map(move |&b| (a, b)))
                    .collect();
                (
                    format!("bridge {bridge} between {left:?} and {right:?}"),
                    cuts,
                )
            }
        }
    }

    async fn storage(&mut self, kind: &str, target: usize, hold: Duration) -> Result<(), String> {
        let data = self.lock().data_dir(target);
        match kind {
            "wipe" => {
                self.lock().kill(target);
                disk::remove_contents(&data)?;
                self.note(
                    "start",
                    kind,
                    format!("node {target}'s data directory removed"),
                    vec![target],
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.lock().start(target, Start::Normal)?;
                tokio::time::sleep(hold).await;
                self.note(
                    "stop",
                    kind,
                    format!("node {target} restarted with its usual command"),
                    vec![target],
                );
            }
            "corrupt" | "truncate" => {
                self.lock().kill(target);
                let detail = disk::damage(&data, kind == "corrupt", &mut self.rng)?;
                self.note(
                    "start",
                    kind,
                    format!("node {target}: {detail}"),
                    vec![target],
                );
                self.lock().start(target, Start::Normal)?;
                tokio::time::sleep(hold).await;
                self.note(
                    "stop",
                    kind,
                    format!("node {target} restarted"),
                    vec![target],
                );
            }
            "disk-full" => {
                let filler = self.lock().filler(target);
                let filled = disk::fill(&filler);
                self.note(
                    "start",
                    kind,
                    format!("node {target}'s disk filled ({filled} bytes)"),
                    vec![target],
                );
                tokio::time::sleep(hold).await;
                let _ = fs::remove_file(&filler);
                let mut cluster = self.lock();
                let stopped = !cluster.is_running(target);
                if stopped {
                    cluster.kill(target);
                    cluster.start(target, Start::Normal)?;
                }
                drop(cluster);
                self.note(
                    "stop",
                    kind,
                    format!("node {target}'s disk emptied (stopped and restarted: {stopped})"),
                    vec![target],
                );
            }
            "eio" => {
                let from = self.rng.gen_range(3..40);
                {
                    let mut cluster = self.lock();
                    cluster.kill(target);
                    cluster.start(target, Start::FailSyncFrom(from))?;
                }
                self.note(
                    "start",
                    kind,
                    format!("node {target}: fsync fails with EIO from call {from} on"),
                    vec![target],
                );
                tokio::time::sleep(hold).await;
                {
                    let mut cluster = self.lock();
                    cluster.kill(target);
                    cluster.start(target, Start::Normal)?;
                }
                self.note(
                    "stop",
                    kind,
                    format!("node {target} restarted without faults"),
                    vec![target],
                );
            }
            _ => unreachable!("storage kinds are listed above"),
        }
        Ok(())
    }
}

fn write_offset(file: &Path, seconds: i64) -> Result<(), String> {
    let mut f = fs::File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    writeln!(f, "{seconds:+}").map_err(|e| e.to_string())
}
