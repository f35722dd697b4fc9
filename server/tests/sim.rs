//! Runs the deterministic cluster simulator (see `server/src/sim/mod.rs`).
//!
//! - `fixed_seeds`: a fixed list of seeds on 3 and 5 replicas; must stay green.
//! - `random_sweep`: a few fresh seeds each run (the base seed is printed); `SIM_SEEDS=N`
//!   runs N of them, `SIM_STEPS` changes the length of each run.
//! - `SIM_SEED=<n>` (with `SIM_NODES=3|5`) replays one seed exactly, e.g. one that failed.
//! - `injected_*`: each classic bug (no fsync, apply before commit, forgotten vote) must be
//!   caught by some seed of a small list — a simulator that cannot fail proves nothing.

use tally_server::sim::{run, Bugs, SimConfig};

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn steps() -> usize {
    env("SIM_STEPS").unwrap_or(3000) as usize
}

fn check(seed: u64, nodes: usize) -> u64 {
    let config = SimConfig::new(seed, nodes, steps());
    match run(&config) {
        Ok(report) => {
            eprintln!("SIM_SEED={seed} nodes={nodes}: ok {report:?}");
            report.transfers_on_disk
        }
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn fixed_seeds() {
    if let Some(seed) = env("SIM_SEED") {
        check(seed, env("SIM_NODES").unwrap_or(3) as usize);
        return;
    }
    let mut on_disk = 0;
    for seed in [1, 2, 3, 4, 5, 6, 7, 8] {
        on_disk += check(seed, 3);
    }
    // 14579388251767525420: a leader change during setup dropped the setup proposal, which
    // the simulator never proposed again (fixed in the harness).
    for seed in [11, 12, 13, 14, 14579388251767525420] {
        on_disk += check(seed, 5);
    }
    // Most nodes get a small in-memory bound for transfer records: the seeds must have
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
        check(seed, if i % 3 == 2 { 5 } else { 3 });
    }
}

fn caught(bugs: Bugs) -> Option<String> {
    (0..40u64).find_map(|seed| {
        let mut config = SimConfig::new(1000 + seed, 3, 2000);
        config.bugs = bugs;
        run(&config).err()
    })
}

#[test]
fn injected_skip_fsync_is_caught() {
    let failure = caught(Bugs {
        skip_fsync: true,
        ..Bugs::default()
    });
    eprintln!("{failure:?}");
    assert!(failure.is_some(), "skipping the fsync went unnoticed");
}

#[test]
fn injected_apply_before_commit_is_caught() {
    let failure = caught(Bugs {
        apply_before_commit: true,
        ..Bugs::default()
    });
    eprintln!("{failure:?}");
    assert!(failure.is_some(), "applying before commit went unnoticed");
}

#[test]
fn injected_forgotten_vote_is_caught() {
    let failure = caught(Bugs {
        skip_vote: true,
        ..Bugs::default()
    });
    eprintln!("{failure:?}");
    assert!(failure.is_some(), "forgetting the vote went unnoticed");
}
