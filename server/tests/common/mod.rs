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
        Server::start(&[
            "--address",
            "127.0.0.1:0",
            "--data",
            dir.to_str().expect("utf-8"),
        ])
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
