//! Shared helpers for end-to-end tests: start real `tally` processes and speak raw frames.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tally_client::wire::{encode_body, Body, Frame, FrameDecoder};

/// A `tally start` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
}

impl Server {
    /// Starts `tally start` with `args` and waits for the line that gives its address.
    pub fn start(args: &[&str]) -> Server {
        // Logs go to a file named by TALLY_TEST_LOGS (a directory), else nowhere.
        let stderr = match std::env::var_os("TALLY_TEST_LOGS") {
            Some(dir) => {
                let path = Path::new(&dir).join(format!(
                    "tally-{}-{}.log",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0)
                ));
                Stdio::from(std::fs::File::create(path).expect("log file"))
            }
            None => Stdio::null(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .arg("start")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn tally");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the address line");
        let address = line
            .trim()
            .strip_prefix("tally listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        Server { child, address }
    }

    /// Starts a single node with its data in `dir` on a free port.
    pub fn single(dir: &Path) -> Server {
        Server::single_with(dir, &[])
    }

    /// Starts a single node with its data in `dir` on a free port, with more flags.
    pub fn single_with(dir: &Path, more: &[&str]) -> Server {
        let mut args = vec![
            "--address",
            "127.0.0.1:0",
            "--data",
            dir.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(more);
        Server::start(&args)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking raw connection.
pub struct Raw {
    pub stream: TcpStream,
    decoder: FrameDecoder,
    buffer: BytesMut,
    next_id: u64,
}

impl Raw {
    pub fn connect(address: SocketAddr) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpStream::connect(address) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .expect("timeout");
                    return Raw {
                        stream,
                        decoder: FrameDecoder::new(),
                        buffer: BytesMut::new(),
                        next_id: 1,
                    };
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("connect {address}: {e}"),
            }
        }
    }

    pub fn send<T: Body>(&mut self, body: &T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut out = BytesMut::new();
        encode_body(id, body, &mut out).expect("encode");
        self.stream.write_all(&out).expect("write");
        id
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// The next frame, or None if the server closed the connection.
    pub fn receive(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buffer).expect("server frame") {
                return Some(frame);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub fn call<T: Body, R: Body>(
        &mut self,
        body: &T,
    ) -> Result<R, tally_client::wire::messages::ErrorResponse> {
        let id = self.send(body);
        let frame = self.receive().expect("a response");
        assert_eq!(frame.request_id, id);
        match frame.decode_body::<R>() {
            Ok(response) => Ok(response),
            Err(_) => Err(frame.decode_body().expect("an error response")),
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released: the node binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A cluster of real `tally start` processes on loopback, as the README starts one: every
/// node its own client and peer port, the same `--peers` list and secret, its own data
/// directory. `args` are passed to every node.
pub struct Cluster {
    pub dirs: Vec<tempfile::TempDir>,
    pub addresses: Vec<SocketAddr>,
    pub peers: String,
    pub nodes: Vec<Option<Server>>,
    secret: tempfile::TempDir,
    args: Vec<String>,
}

impl Cluster {
    /// A cluster of `size` nodes, none started yet.
    pub fn new(size: usize, args: &[&str]) -> Cluster {
        let addresses: Vec<SocketAddr> = (0..size)
            .map(|_| format!("127.0.0.1:{}", free_port()).parse().expect("addr"))
            .collect();
        let peers = (0..size)
            .map(|i| format!("{}=127.0.0.1:{}", i + 1, free_port()))
            .collect::<Vec<_>>()
            .join(",");
        let secret = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            secret.path().join("secret"),
            "a test cluster's shared secret\n",
        )
        .expect("secret");
        Cluster {
            dirs: (0..size)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect(),
            addresses,
            peers,
            nodes: (0..size).map(|_| None).collect(),
            secret,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// A cluster of `size` nodes, all started.
    pub fn start(size: usize, args: &[&str]) -> Cluster {
        let mut cluster = Cluster::new(size, args);
        for i in 0..size {
            cluster.restart(i);
        }
        cluster
    }

    /// The command line node `i` is started with (the same every time).
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "--node-id".to_string(),
            (i + 1).to_string(),
            "--address".to_string(),
            self.addresses[i].to_string(),
            "--peers".to_string(),
            self.peers.clone(),
            "--cluster-secret-file".to_string(),
            self.secret.path().join("secret").display().to_string(),
            "--data".to_string(),
            self.dirs[i].path().display().to_string(),
        ];
        args.extend(self.args.iter().cloned());
        args
    }

    /// Starts (or restarts) node `i` with its usual command.
    pub fn restart(&mut self, i: usize) {
        let args = self.args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nodes[i] = Some(Server::start(&args));
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.kill();
        }
    }

    /// Stops node `i` with SIGSTOP, or resumes it with SIGCONT.
    pub fn signal(&self, i: usize, signal: &str) {
        let node = self.nodes[i].as_ref().expect("a running node");
        let status = Command::new("kill")
            .args([signal, &node.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    /// The cluster secret's file.
    pub fn secret_file(&self) -> std::path::PathBuf {
        self.secret.path().join("secret")
    }

    /// Whether node `i`'s process is alive (started, and not exited).
    pub fn running(&self, i: usize) -> bool {
        let Some(node) = &self.nodes[i] else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{}/stat", node.child.id()))
            .ok()
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()
                    .map(|rest| rest.trim_start().to_string())
            })
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
    }

    /// Which node has this client address.
    pub fn index_of(&self, address: &str) -> Option<usize> {
        self.addresses.iter().position(|a| a.to_string() == address)
    }

    /// Every live node's client address.
    pub fn live(&self) -> Vec<String> {
        self.nodes
            .iter()
            .zip(&self.addresses)
            .filter(|(n, _)| n.is_some())
            .map(|(_, a)| a.to_string())
            .collect()
    }
}

impl Cluster {
    /// Waits until every partition has a leader that answers (at most 30 s); for tests
    /// without a runtime of their own.
    pub fn wait_for_leaders(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(self.leaders_ready());
    }

    /// The running node that leads partition 0, as `client` learns it (at most 30 s).
    pub async fn leader_of_partition_0(&self, client: &tally_client::Client) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(info) = client.cluster_info().await {
                if let Some(i) = info
                    .leaders
                    .first()
                    .and_then(|l| l.address.as_deref())
                    .and_then(|a| self.index_of(a))
                {
                    if self.nodes[i].is_some() {
                        return i;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every partition has a leader that answers (at most 30 s).
    pub async fn leaders_ready(&self) {
        let addresses = self.live();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let options = tally_client::ClientOptions::default();
            if let Ok(client) = tally_client::Client::connect(&addresses, options).await {
                if let Ok(info) = client.cluster_info().await {
                    let all = info.leaders.len() == info.partition_count as usize
                        && info.leaders.iter().all(|l| l.address.is_some());
                    // A lookup goes through ReadIndex: the leaders have committed.
                    let lookup = client.lookup_accounts(vec![tally_client::AccountId(1)]);
                    if all && lookup.await.is_ok() {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leaders within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An account of ledger 1 with code 1 and no flags or limit.
pub fn plain_account(id: u128) -> tally_client::wire::types::NewAccount {
    use tally_client::wire::types::*;
    NewAccount {
        id: AccountId(id),
        ledger: LedgerId(1),
        code: 1,
        flags: AccountFlags(0),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    }
}

/// Creates ledger 1 (scale 0) and accounts `1..=accounts` in it through `client`.
pub async fn create_ledger_and_accounts(client: &tally_client::Client, accounts: u128) {
    use tally_client::wire::types::*;
    client
        .create_ledgers(vec![NewLedger {
            id: LedgerId(1),
            scale: 0,
            code: 1,
        }])
        .await
        .expect("ledger");
    client
        .create_accounts((1..=accounts).map(plain_account).collect())
        .await
        .expect("accounts");
}

/// Creates ledger 1 (scale 0) over a raw connection.
pub fn create_ledger(raw: &mut Raw) {
    use tally_client::wire::messages::*;
    use tally_client::wire::types::*;
    let _: CreateLedgersResponse = raw
        .call(&CreateLedgersRequest::new(&[NewLedger {
            id: LedgerId(1),
            scale: 0,
            code: 1,
        }]))
        .expect("ledger");
}

/// Creates ledger 1 (scale 0) and accounts 1 and 2 over a raw connection.
pub fn create_ledger_and_two_accounts(raw: &mut Raw) {
    use tally_client::wire::messages::*;
    create_ledger(raw);
    let _: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(&[
            plain_account(1),
            plain_account(2),
        ]))
        .expect("accounts");
}
