//! What a client can make a node hold, against a live node: the attacks of issue 10, each
//! run while a well-behaved client keeps working. The node's resident memory (VmRSS of the
//! process) must stay within twice what it used idle, and the good client is served
//! throughout.
//!
//! - 64 connections that each announce a 16 MiB body and send 15 MiB of it;
//! - a client that pipelines lookups and never reads an answer (then disconnects);
//! - 1024 connections that send the 4-byte magic and nothing else.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Raw, Server};
use tally_client::wire::messages::*;
use tally_client::wire::types::*;
use tally_client::wire::{encode_body, FrameHeader, Operation, MAGIC};

fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The good client: a lookup answered within a few seconds, on a fresh connection.
fn served(address: SocketAddr) {
    let started = Instant::now();
    let mut raw = Raw::connect(address);
    let found: LookupAccountsResponse = raw
        .call(&LookupAccountsRequest::new(&[AccountId(1), AccountId(2)]))
        .expect("the good client is served");
    assert_eq!(found.to_accounts().expect("accounts").len(), 2);
    eprintln!("good client served in {:?}", started.elapsed());
}

/// A node, set up, with its idle memory measured.
fn node() -> (tempfile::TempDir, Server, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let mut raw = Raw::connect(server.address);
    common::create_ledger_and_two_accounts(&mut raw);
    drop(raw);
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(&server);
    eprintln!("idle: {idle} KiB");
    (dir, server, idle)
}

fn assert_within(server: &Server, idle: u64, what: &str) {
    let now = rss_kib(server);
    eprintln!("{what}: {now} KiB (idle {idle} KiB)");
    assert!(
        now <= 2 * idle,
        "{what}: {now} KiB, more than twice idle ({idle} KiB)"
    );
}

#[test]
fn huge_announced_bodies_hold_no_memory() {
    let (_dir, server, idle) = node();
    let header = FrameHeader {
        op: Operation::LookupAccounts,
        request_id: 1,
        body_size: 16 << 20,
        body_checksum: 0,
    }
    .encode();
    let senders: Vec<_> = (0..64)
        .map(|_| {
            let address = server.address;
            std::thread::spawn(move || {
                let Ok(mut stream) = TcpStream::connect(address) else {
                    return;
                };
                let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
                let _ = stream.write_all(&header);
                let chunk = vec![0x5Au8; 1 << 20];
                for _ in 0..15 {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
                // Hold the connection open a while, as a slow attacker would.
                std::thread::sleep(Duration::from_secs(1));
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    served(server.address);
    assert_within(&server, idle, "64 huge partial frames");
    for sender in senders {
        let _ = sender.join();
    }
    served(server.address);
}

#[test]
fn answers_a_client_never_reads_are_bounded() {
    let (_dir, server, idle) = node();
    let mut stream = TcpStream::connect(server.address).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    // Lookups of 8190 ids each: small requests, answered with what exists (two accounts),
    // but many; the answers pile up unread.
    let ids: Vec<AccountId> = (1..=8190).map(AccountId).collect();
    let mut frame = bytes::BytesMut::new();
    for request_id in 1..=2000u64 {
        frame.clear();
        encode_body(request_id, &LookupAccountsRequest::new(&ids), &mut frame).expect("encode");
        if stream.write_all(&frame).is_err() {
            break; // The node stopped reading from us: backpressure.
        }
    }
    served(server.address);
    assert_within(&server, idle, "a client that reads nothing");
    drop(stream);
    std::thread::sleep(Duration::from_millis(500));
    served(server.address);
}

#[test]
fn idle_connections_cannot_lock_clients_out() {
    let (_dir, server, idle) = node();
    let idlers: Vec<TcpStream> = (0..1024)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(server.address).ok()?;
            stream.write_all(&MAGIC).ok()?;
            Some(stream)
        })
        .collect();
    eprintln!("{} idle connections open", idlers.len());
    std::thread::sleep(Duration::from_millis(300));
    served(server.address);
    assert_within(&server, idle, "1024 idle connections");
    drop(idlers);
}
