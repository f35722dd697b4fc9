//! Threads that do derived or deferred work beside the applying thread — index flushes and
//! merges, transfer spills, checkpoints — started at a lower CPU priority (nice 10), so that
//! on a machine with few cores the applying thread and the network threads are not slowed
//! down by them: a batch applied while a checkpoint encodes must not wait for the CPU.
//! The work itself is the same; it only yields the CPU to latency-critical threads.

use std::io;
use std::thread::{Builder, JoinHandle};

/// How much nicer than the process's other threads a background thread is.
pub const BACKGROUND_NICE: i32 = 10;

/// Spawns `f` on a thread named `name` at [`BACKGROUND_NICE`].
pub fn spawn<F, T>(name: String, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().name(name).spawn(move || {
        lower_priority();
        f()
    })
}

/// Lowers the calling thread's CPU priority. On Linux a thread is a task of its own, and
/// `setpriority(PRIO_PROCESS, 0, …)` applies to the calling thread only. Failing (a
/// sandbox forbidding it) only leaves the thread at its priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    unsafe {
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn a_background_thread_runs_nicer_than_its_parent() {
        // SAFETY: getpriority reads the calling thread's priority.
        let parent = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let child = super::spawn("nice-test".into(), || unsafe {
            libc::getpriority(libc::PRIO_PROCESS, 0)
        })
        .expect("spawn")
        .join()
        .expect("join");
        assert_eq!(child, (parent + super::BACKGROUND_NICE).min(19));
    }
}
