//! The nodes of a run: real `tally start` processes, each on its own loopback address inside
//! the run's private network namespace, started the way the README starts a cluster.
//!
//! Node `i` (1-based) listens for clients on `127.0.0.(i+1):7000` and for peers on port 7100
//! of the same address (its outgoing peer connections leave from it too, so a firewall rule
//! can cut one link). Its directory `nodes/n<i>/` holds its log (appended across restarts),
//! its data directory, and — when the clock nemesis is on — the offset file libfaketime reads
//! once a second. With the disk-full nemesis the data lives on a small tmpfs of its own.
//! Every process the harness starts is killed when it ends (and, through
//! `PR_SET_PDEATHSIG`, if the harness dies).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a node process is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Plainly.
    Normal,
    /// Under strace, every fdatasync from the `n`th on failing with EIO.
    FailSyncFrom(u32),
}

/// Everything the nodes share.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The `tally` binary.
    pub tally: PathBuf,
    /// Nodes.
    pub nodes: usize,
    /// Partitions.
    pub partitions: u32,
    /// The run directory.
    pub out: PathBuf,
    /// libfaketime, when clocks are faked.
    pub faketime: Option<PathBuf>,
    /// Data directories on a tmpfs of their own (disk-full nemesis).
    pub tmpfs: bool,
    /// Bugs to plant (`--unsafe-bug`).
    pub unsafe_bugs: Vec<String>,
}

struct Process {
    /// The process the harness spawned (strace, or tally itself).
    child: Child,
    /// The tally process (the child of strace, when under it).
    pid: i32,
}

/// The running cluster.
pub struct Cluster {
    layout: Layout,
    processes: Vec<Option<Process>>,
    paused: Vec<bool>,
}

/// Client address of node `i` (1-based).
pub fn client_address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, (i + 1) as u8], 7000))
}

/// Peer address of node `i`.
pub fn peer_address(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, (i + 1) as u8], 7100))
}

/// The loopback address node `i` uses, as text.
pub fn ip(i: usize) -> String {
    format!("127.0.0.{}", i + 1)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

impl Cluster {
    /// Prepares the nodes' directories (nothing runs yet).
    pub fn new(layout: Layout) -> Result<Cluster, String> {
        let secret = layout.out.join("secret");
        fs::write(
            &secret,
            format!("tally-jepsen {:032x}\n", rand::random::<u128>()),
        )
        .map_err(|e| format!("{}: {e}", secret.display()))?;
        for i in 1..=layout.nodes {
            let dir = node_dir(&layout.out, i);
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            if layout.tmpfs {
                let disk = dir.join("disk");
                fs::create_dir_all(&disk).map_err(|e| format!("{}: {e}", disk.display()))?;
                let target = disk.to_str().ok_or("a run directory that is not UTF-8")?;
                run(
                    "mount",
                    &["-t", "tmpfs", "-o", "size=256m", "tmpfs", target],
                )?;
            }
            fs::write(dir.join("clock"), "+0\n").map_err(|e| e.to_string())?;
        }
        Ok(Cluster {
            processes: (0..layout.nodes).map(|_| None).collect(),
            paused: vec![false; layout.nodes],
            layout,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        let dir = node_dir(&self.layout.out, i);
        if self.layout.tmpfs {
            dir.join("disk").join("data")
        } else {
            dir.join("data")
        }
    }

    /// Where the disk-full nemesis writes its filler (beside the data, on the same disk).
    pub fn filler(&self, i: usize) -> PathBuf {
        node_dir(&self.layout.out, i).join("disk").join("filler")
    }

    /// Node `i`'s clock offset file (libfaketime reads it once a second).
    pub fn clock_file(&self, i: usize) -> PathBuf {
        node_dir(&self.layout.out, i).join("clock")
    }

    /// Every node's client address, as text.
    pub fn addresses(&self) -> Vec<String> {
        (1..=self.layout.nodes)
            .map(|i| client_address(i).to_string())
            .collect()
    }

    /// The command line node `i` is started with, every time.
    pub fn command_line(&self, i: usize) -> Vec<String> {
        let peers = (1..=self.layout.nodes)
            .map(|j| format!("{j}={}", peer_address(j)))
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "start".to_string(),
            "--node-id".into(),
            i.to_string(),
            "--address".into(),
            client_address(i).to_string(),
            "--peers".into(),
            peers,
            "--cluster-secret-file".into(),
            self.layout.out.join("secret").display().to_string(),
            "--data".into(),
            self.data_dir(i).display().to_string(),
            "--partitions".into(),
            self.layout.partitions.to_string(),
            // Small segments, so that logs have sealed segments to damage.
            "--segment-size-max".into(),
            "262144".into(),
        ];
        for bug in &self.layout.unsafe_bugs {
            args.push("--unsafe-bug".into());
            args.push(bug.clone());
        }
        args
    }

    /// Starts node `i` (if it is not running).
    pub fn start(&mut self, i: usize, how: Start) -> Result<(), String> {
        if self.is_running(i) {
            return Ok(());
        }
        let dir = node_dir(&self.layout.out, i);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("node.log"))
            .map_err(|e| format!("node {i} log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let tally = self.layout.tally.display().to_string();
        let mut command = match how {
            Start::Normal => Command::new(&tally),
            Start::FailSyncFrom(n) => {
                let mut c = Command::new("strace");
                c.args([
                    "-f",
                    "--seccomp-bpf",
                    "-e",
                    "trace=fdatasync,fsync",
                    "-e",
                    &format!("inject=fdatasync,fsync:error=EIO:when={n}+"),
                    "-o",
                    "/dev/null",
                    "--",
                    &tally,
                ]);
                c
            }
        };
        command
            .args(self.command_line(i))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .env("RUST_LOG", "info");
        if let Some(faketime) = &self.layout.faketime {
            command
                .env("LD_PRELOAD", faketime)
                .env("FAKETIME_TIMESTAMP_FILE", self.clock_file(i))
                .env("FAKETIME_CACHE_DURATION", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        // SAFETY: prctl is async-signal-safe; the closure touches nothing else.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("start node {i}: {e}"))?;
        let spawned = child.id() as i32;
        let pid = match how {
            Start::Normal => spawned,
            Start::FailSyncFrom(_) => traced_child(spawned).unwrap_or(spawned),
        };
        self.processes[i - 1] = Some(Process { child, pid });
        self.paused[i - 1] = false;
        Ok(())
    }

    /// Whether node `i` runs (it may have exited on its own: a storage failure).
    pub fn is_running(&mut self, i: usize) -> bool {
        let Some(process) = &mut self.processes[i - 1] else {
            return false;
        };
        match process.child.try_wait() {
            Ok(None) => {
                // Under strace, the tally child may be gone while strace lingers.
                process.pid == process.child.id() as i32 || alive(process.pid)
            }
            _ => false,
        }
    }

    /// Kills node `i` (SIGKILL) and waits for it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.processes[i - 1].take() {
            // SAFETY: a plain kill(2) of a pid this harness started.
            unsafe {
                libc::kill(process.pid, libc::SIGKILL);
            }
            let _ = process.child.kill();
            let _ = process.child.wait();
            wait_gone(process.pid);
        }
        self.paused[i - 1] = false;
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) node `i`.
    pub fn pause(&mut self, i: usize, pause: bool) {
        if let Some(process) = &self.processes[i - 1] {
            let signal = if pause { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: a plain kill(2) of a pid this harness started.
            unsafe {
                libc::kill(process.pid, signal);
            }
            self.paused[i - 1] = pause;
        }
    }

    /// Whether node `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.paused[i - 1]
    }

    /// Stops every node.
    pub fn stop_all(&mut self) {
        for i in 1..=self.layout.nodes {
            if self.paused[i - 1] {
                self.pause(i, false);
            }
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Node `i`'s directory in the run.
pub fn node_dir(out: &Path, i: usize) -> PathBuf {
    out.join("nodes").join(format!("n{i}"))
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: reaps the pid if it is our child; harmless otherwise.
        unsafe {
            libc::waitpid(pid, &mut status, libc::WNOHANG);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid of the process strace `pid` traces (its child), once it exists.
fn traced_child(pid: i32) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let path = format!("/proc/{pid}/task/{pid}/children");
        if let Ok(text) = fs::read_to_string(&path) {
            if let Some(child) = text.split_whitespace().next().and_then(|c| c.parse().ok()) {
                return Some(child);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
