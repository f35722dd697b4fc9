//! Runs the deterministic cluster simulator (see `server/src/sim/mod.rs`).
//!
//! - `fixed_seeds`: a fixed list of seeds on 3 and 5 nodes and 1 to 3 partitions; must stay
//!   green.
//! - `random_sweep`: a few fresh seeds each run (the base seed is printed); `SIM_SEEDS=N`
//!   runs N of them, `SIM_STEPS` changes the length of each run.
//! - `SIM_SEED=<n>` (with `SIM_NODES=3|5`, `SIM_PARTITIONS=1..3`) replays one seed exactly;
//!   `SIM_TRACE=1` prints its faults, restarts and leaders.
//! - `injected_*`: each planted bug — the classic ones (no fsync, apply before commit,
//!   forgotten vote) and one per fault the simulator injects (a wiped node rejoining as a
//!   voter, a durable prefix recorded before its fsync, an fsync retried after EIO, the
//!   leader's own clock, lease reads) — must be caught by some seed of a small list: a
//!   simulator that cannot fail proves nothing.
//! - `a_wiped_node_waits_for_the_node_holding_the_data`: the lost-disk scenario of issue 9,
//!   scripted; it fails with the old behaviour (`wipe_rejoins_as_voter`).

use tally_server::sim::{run, Bugs, Scenario, SimConfig};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn steps() -> usize {
    env("SIM_STEPS").unwrap_or(3000) as usize
}

fn check(seed: u64, nodes: usize, partitions: u32) -> u64 {
    let mut config = SimConfig::new(seed, nodes, steps());
    config.partitions = partitions;
    config.trace = std::env::var("SIM_TRACE").is_ok();
    match run(&config) {
        Ok(report) => {
            eprintln!("SIM_SEED={seed} nodes={nodes} partitions={partitions}: ok {report:?}");
            report.transfers_on_disk
        }
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn fixed_seeds() {
    if let Some(seed) = env("SIM_SEED") {
        let nodes = env("SIM_NODES").unwrap_or(3) as usize;
        check(seed, nodes, env("SIM_PARTITIONS").unwrap_or(1) as u32);
        return;
    }
    let mut on_disk = 0;
    for seed in [1, 2, 3, 4, 5, 6, 7, 8] {
        on_disk += check(seed, 3, 1 + (seed % 3) as u32);
    }
    // 8343757374757182322: a repaired replica ended its recovery on an entry its leader had
    // committed in the leader's term, while later entries of that term were still missing;
    // it then voted a stale node leader (fixed: it asks the leader for its commit index).
    on_disk += check(8343757374757182322, 3, 2);
    // 4253632408388199207: a follower's log truncated to 8 (its slot lowered and fsynced)
    // crashed with new entries unsynced; the crash model dropped the lowered slot as if it
    // had never reached the disk, resurrecting the older slot's claim to entries 9-11
    // (fixed in the harness: a slot fsynced by a truncation survives).
    on_disk += check(4253632408388199207, 3, 1);
    // 14579388251767525420: a leader change during setup dropped the setup proposal, which
    // the simulator never proposed again (fixed in the harness).
    for seed in [11, 12, 13, 14, 14579388251767525420] {
        on_disk += check(seed, 5, 1 + (seed % 2) as u32);
    }
    // Most replicas get a small in-memory bound for transfer records: the seeds must have
    // exercised records on disk, or this test proves nothing about them.
    assert!(on_disk > 0, "no seed spilled a transfer record to disk");
}

#[test]
fn random_sweep() {
    let count = env("SIM_SEEDS").unwrap_or(4);
    let base = env("SIM_SWEEP_BASE").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    });
    eprintln!("random sweep: SIM_SWEEP_BASE={base}, {count} seeds");
    for i in 0..count {
        let seed = base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let nodes = if i % 3 == 2 { 5 } else { 3 };
        check(seed, nodes, 1 + (seed % 3) as u32);
    }
}

fn caught(bugs: Bugs) -> Option<String> {
    (0..40u64).find_map(|seed| {
        let mut config = SimConfig::new(1000 + seed, 3, 2000);
        config.partitions = 1 + (seed % 2) as u32;
        config.bugs = bugs;
        run(&config).err()
    })
}

macro_rules! injected {
    ($name:ident, $field:ident, $what:expr) => {
        #[test]
        fn $name() {
            let failure = caught(Bugs {
                $field: true,
                ..Bugs::default()
            });
            eprintln!("{failure:?}");
            assert!(failure.is_some(), "{} went unnoticed", $what);
        }
    };
}

injected!(
    injected_skip_fsync_is_caught,
    skip_fsync,
    "skipping the fsync"
);
injected!(
    injected_apply_before_commit_is_caught,
    apply_before_commit,
    "applying before commit"
);
injected!(
    injected_forgotten_vote_is_caught,
    skip_vote,
    "forgetting the vote"
);
injected!(
    injected_wiped_node_as_voter_is_caught,
    wipe_rejoins_as_voter,
    "a wiped node voting at once"
);
injected!(
    injected_slot_before_sync_is_caught,
    slot_before_sync,
    "recording durability before the fsync"
);
injected!(
    injected_retried_fsync_is_caught,
    retry_failed_sync,
    "carrying on after a failed fsync"
);
injected!(
    injected_own_clock_is_caught,
    trust_own_clock,
    "stamping with the leader's own clock"
);

/// Node 3 down while transfers commit on nodes 1 and 2; node 2 loses its disk; node 1 dies;
/// node 2 restarts the documented way; node 3 comes back. Node 2 must wait for node 1 —
/// with the old behaviour it votes at once, and nodes 2 and 3 lose the transfers.
fn wiped_node_scenario(bugs: Bugs) -> Result<(), String> {
    let mut config = SimConfig::new(77, 3, 0);
    config.bugs = bugs;
    let mut scenario = Scenario::new(config)?;
    scenario.crash(3)?;
    scenario.acknowledge(20, 2000)?;
    scenario.wipe(2)?;
    scenario.crash(1)?;
    scenario.restart(2)?;
    scenario.restart(3)?;
    scenario.run(400)?;
    if !bugs.wipe_rejoins_as_voter && scenario.is_up(2) {
        return Err("node 2 came back without node 1's answer".into());
    }
    scenario.restart(1)?;
    scenario.run(100)?;
    scenario.finish().map(|_| ())
}

#[test]
fn a_wiped_node_waits_for_the_node_holding_the_data() {
    wiped_node_scenario(Bugs::default()).expect("the scenario passes");
    let old = wiped_node_scenario(Bugs {
        wipe_rejoins_as_voter: true,
        ..Bugs::default()
    });
    eprintln!("{old:?}");
    assert!(old.is_err(), "the old behaviour went unnoticed");
}

/// A leader paused past an election timeout wakes up deposed, its state behind what the new
/// leader committed; a read sent to it at once must not answer from that state. With reads on
/// the leader's lease, it does.
fn deposed_leader_scenario(bugs: Bugs) -> Result<(), String> {
    let mut config = SimConfig::new(78, 3, 0);
    config.bugs = bugs;
    let mut scenario = Scenario::new(config)?;
    scenario.acknowledge(5, 2000)?;
    let old = scenario.leader(0).ok_or("no leader")?;
    scenario.pause(old);
    scenario.acknowledge(5, 2000)?;
    scenario.resume(old);
    // Answered or not in time (it is no longer the leader), but never stale.
    let answered = scenario.read_from(old, 0, 50)?;
    eprintln!("the deposed leader answered: {answered}");
    scenario.finish().map(|_| ())
}

#[test]
fn a_deposed_leader_serves_no_stale_read() {
    deposed_leader_scenario(Bugs::default()).expect("the scenario passes");
    let lease = deposed_leader_scenario(Bugs {
        lease_reads: true,
        ..Bugs::default()
    });
    eprintln!("{lease:?}");
    assert!(lease.is_err(), "a stale read on a lease went unnoticed");
}
