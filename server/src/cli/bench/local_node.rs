//! The temporary node `tally bench` starts when it is given no `--address`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Stdio};

use super::NODE_START_TIMEOUT;

/// A temporary `tally start` child process with its data in a temporary directory; killed
/// and removed when stopped or dropped.
pub(super) struct LocalNode {
    child: Child,
    pub(super) address: String,
    // Kept open so the node never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    _data: tempfile::TempDir,
}

impl LocalNode {
    /// Starts one with `partitions` partitions.
    pub(super) fn start(partitions: u32) -> Result<LocalNode, String> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find the tally executable: {e}"))?;
        let data = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        let log_path = data.path().join("node.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let mut child = std::process::Command::new(&exe)
            .arg("start")
            .arg("--address")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data.path().join("node"))
            .arg("--partitions")
            .arg(partitions.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the local node has no stdout".to_owned());
        };
        // Read the address line on a thread, so that a node that hangs cannot hang us.
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = line_tx.send((read, line, reader));
        });
        let failure = |child: &mut Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            let mut log = String::new();
            let _ = std::fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut log));
            let tail: String = log.lines().rev().take(10).collect::<Vec<_>>().join("\n");
            format!("the local node did not start: {why}\n{tail}")
        };
        let (read, line, reader) = match line_rx.recv_timeout(NODE_START_TIMEOUT) {
            Ok(answer) => answer,
            Err(_) => {
                return Err(failure(
                    &mut child,
                    format!("no address line within {NODE_START_TIMEOUT:?}"),
                ))
            }
        };
        match read {
            Ok(0) => return Err(failure(&mut child, "it exited".to_owned())),
            Err(e) => return Err(failure(&mut child, format!("reading its stdout: {e}"))),
            Ok(_) => {}
        }
        let Some(address) = line.trim().strip_prefix("tally listening on ") else {
            return Err(failure(
                &mut child,
                format!("unexpected first line {line:?}"),
            ));
        };
        let address = address.to_owned();
        eprintln!(
            "bench: started a local node on {address} (pid {})",
            child.id()
        );
        Ok(LocalNode {
            child,
            address,
            _stdout: reader,
            _data: data,
        })
    }

    pub(super) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        self.stop();
    }
}
