//! Scripted simulations: a fixed sequence of faults instead of random ones, with the same
//! checks after every step. For scenarios a test must replay exactly, such as a node that
//! lost its disk coming back while the node holding the data is down.

use std::panic::{self, AssertUnwindSafe};

use super::{label, Sim, SimConfig, SimReport};

/// A simulation driven step by step. Every method runs the simulator's checks and returns
/// their first failure (with `SIM_SEED=`); the network still drops, delays and reorders.
pub struct Scenario {
    sim: Sim,
    config: SimConfig,
    _dir: tempfile::TempDir,
}

impl Scenario {
    /// A cluster set up (leaders elected, ledger and accounts created) with no random faults.
    pub fn new(config: SimConfig) -> Result<Scenario, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut sim = Sim::new(config.clone(), dir.path())?;
            sim.faults = false;
            sim.setup()?;
            Ok(sim)
        }));
        let sim = label(&config, result)?;
        Ok(Scenario {
            sim,
            config,
            _dir: dir,
        })
    }

    fn guarded<T>(
        &mut self,
        step: impl FnOnce(&mut Sim) -> Result<T, String>,
    ) -> Result<T, String> {
        let sim = &mut self.sim;
        let result = panic::catch_unwind(AssertUnwindSafe(|| step(sim)));
        label(&self.config, result)
    }

    /// Lets the cluster run `ticks` ticks, delivering every message and letting clients
    /// finish (and retry) their requests without starting new ones.
    pub fn run(&mut self, ticks: u64) -> Result<(), String> {
        self.guarded(|sim| {
            for _ in 0..ticks {
                sim.tick()?;
                sim.deliver_all()?;
                for client in 0..sim.clients.len() {
                    sim.client_step(client, false)?;
                }
                sim.process_all()?;
                sim.check()?;
            }
            Ok(())
        })
    }

    /// Runs until `count` more transfers were acknowledged (clients start new requests), or
    /// fails after `ticks_max` ticks.
    pub fn acknowledge(&mut self, count: usize, ticks_max: u64) -> Result<(), String> {
        self.guarded(|sim| {
            let acked = |sim: &Sim| sim.clients.iter().map(|c| c.acked.len()).sum::<usize>();
            let target = acked(sim) + count;
            for _ in 0..ticks_max {
                sim.tick()?;
                sim.deliver_all()?;
                for client in 0..sim.clients.len() {
                    let idle = sim.clients[client].request.is_none();
                    if !idle || acked(sim) < target {
                        sim.client_step(client, true)?;
                    }
                }
                sim.process_all()?;
                sim.check()?;
                if acked(sim) >= target {
                    return Ok(());
                }
            }
            Err(format!(
                "only {} of {target} transfers acknowledged within {ticks_max} ticks",
                acked(sim)
            ))
        })
    }

    /// Reads partition `partition` linearizably through client 0 until an answer comes
    /// (and passes the checks), or fails after `ticks_max` ticks.
    pub fn read(&mut self, partition: u32, ticks_max: u64) -> Result<(), String> {
        self.guarded(|sim| {
            let before = sim.report.reads;
            for _ in 0..ticks_max {
                sim.read_now(0, partition)?;
                sim.tick()?;
                sim.deliver_all()?;
                sim.process_all()?;
                sim.check()?;
                if sim.report.reads > before {
                    return Ok(());
                }
            }
            Err(format!(
                "no read of partition {partition} answered in {ticks_max} ticks"
            ))
        })
    }

    /// Crashes node `node` (1-based); it stays down until [`Scenario::restart`].
    pub fn crash(&mut self, node: u64) -> Result<(), String> {
        self.guarded(|sim| {
            let i = (node - 1) as usize;
            sim.nodes[i].back_at = u64::MAX;
            sim.crash(i)
        })
    }

    /// Removes node `node`'s directory (crashing it first); it stays down until restarted.
    pub fn wipe(&mut self, node: u64) -> Result<(), String> {
        self.guarded(|sim| {
            let i = (node - 1) as usize;
            sim.wipe(i, u64::MAX - sim.now)?;
            if !sim.nodes[i].wiped {
                return Err(format!("node {node} was not wiped"));
            }
            Ok(())
        })
    }

    /// Restarts node `node` with its usual procedure (a wiped one recovers from its peers,
    /// as soon as enough of them are reachable).
    pub fn restart(&mut self, node: u64) -> Result<(), String> {
        self.guarded(|sim| {
            let i = (node - 1) as usize;
            sim.nodes[i].back_at = sim.now;
            sim.restart(i)
        })
    }

    /// Pauses node `node` (SIGSTOP: messages wait for it) until [`Scenario::resume`].
    pub fn pause(&mut self, node: u64) {
        let node = &mut self.sim.nodes[(node - 1) as usize];
        node.paused = true;
        node.back_at = u64::MAX;
    }

    /// Resumes a paused node (without processing anything yet).
    pub fn resume(&mut self, node: u64) {
        let node = &mut self.sim.nodes[(node - 1) as usize];
        node.paused = false;
        node.back_at = 0;
    }

    /// The node leading `partition`, if one is up.
    pub fn leader(&self, partition: u32) -> Option<u64> {
        self.sim.leader_of(partition).map(|i| i as u64 + 1)
    }

    /// Reads `partition` from node `node` at once (client 0, which then targets that node),
    /// and runs until it is answered and checked (`true`), or `ticks_max` ticks passed
    /// (`false`: a node that is no longer the leader need not answer).
    pub fn read_from(&mut self, node: u64, partition: u32, ticks_max: u64) -> Result<bool, String> {
        self.sim.clients[0].targets[partition as usize] = node;
        self.sim.clients[0].read = None;
        self.guarded(|sim| {
            let before = sim.report.reads;
            sim.read_now(0, partition)?;
            for _ in 0..ticks_max {
                sim.process_all()?;
                sim.check()?;
                if sim.report.reads > before {
                    return Ok(true);
                }
                sim.tick()?;
                sim.deliver_all()?;
            }
            Ok(false)
        })
    }

    /// Whether node `node` is running.
    pub fn is_up(&self, node: u64) -> bool {
        self.sim.nodes[(node - 1) as usize].is_up()
    }

    /// Heals everything and requires convergence, then checks every acknowledged transfer
    /// on every replica (the simulator's liveness phase).
    pub fn finish(mut self) -> Result<SimReport, String> {
        self.guarded(|sim| {
            sim.liveness()?;
            Ok(sim.finish())
        })
    }
}
