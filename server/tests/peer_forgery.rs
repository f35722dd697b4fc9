//! Forged peer traffic against every port a real 3-node cluster listens on: the client
//! ports (the old peer magic, raw frames), the peer ports without the secret (garbage,
//! wrong proofs, another cluster's id), and the peer ports *with* the secret, as a
//! configured node, sending every kind of Raft message a peer never sends or that raft-rs
//! would abort on (snapshots, proposals, elections and leadership transfers on demand,
//! logs with gaps, commit indexes past the log, term 0, misaddressed messages, undecodable
//! bodies, bad checksums, huge lengths), and `TimeoutNow` from a node that does not lead.
//!
//! Afterwards every node still runs, partition 0 has the same leader in the same term on
//! every node, the replicas agree, the transfers made before are all there with the same
//! balances, and a new transfer commits.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Cluster;
use raft::eraftpb::{ConfState, Entry, EntryType, Message, MessageType, Snapshot};
use rust_decimal::Decimal;
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};
use tally_server::transport::{dial_handshake, encode, PeerConfig, PeerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Partition 0's (leader, term) as node `address` sees it.
async fn view(address: &str) -> (u64, u64, u64, u128) {
    let client = Client::connect(&[address.to_string()], ClientOptions::default())
        .await
        .expect("connect");
    let info = client.cluster_info().await.expect("hello");
    let r = &info.replicas[0];
    (r.leader, r.term, r.applied_index, r.digest)
}

/// Sends `bytes` and waits (briefly) for the other side to close or answer; returns whether
/// the connection was closed.
async fn poke(address: SocketAddr, bytes: &[u8]) -> bool {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return true;
    };
    let _ = stream.write_all(bytes).await;
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) if Instant::now() > deadline => return false,
            Err(_) => {}
        }
    }
}

fn raft(kind: MessageType, from: u64, to: u64, term: u64) -> Message {
    let mut m = Message::default();
    m.set_msg_type(kind);
    m.from = from;
    m.to = to;
    m.term = term;
    m
}

fn frame(message: &PeerMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode(&mut out, message);
    out
}

/// What a forger dialling as node `node_id` presents.
fn forger(
    node_id: u64,
    secret: Vec<u8>,
    cluster_id: u128,
    peers: &BTreeMap<u64, SocketAddr>,
) -> PeerConfig {
    PeerConfig {
        node_id,
        peer_address: "127.0.0.1:0".parse().expect("address"),
        client_address: "127.0.0.1:1".into(),
        cluster_id,
        partitions: 1,
        voters: peers.clone(),
        secret,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_peer_traffic_moves_no_leader_and_touches_no_data() {
    let cluster = Cluster::start(3, &[]);
    cluster.leaders_ready().await;
    let client = Client::connect(&cluster.live(), ClientOptions::default())
        .await
        .expect("connect");
    common::create_ledger_and_accounts(&client, 2).await;
    for id in 1..=50u128 {
        let transfer = NewTransfer::plain(
            TransferId(id),
            AccountId(1),
            AccountId(2),
            Decimal::from(id as u64),
            LedgerId(1),
        );
        let outcome = client.create_transfer(transfer).await.expect("transfer");
        assert_eq!(outcome.result, tally_client::TransferResult::Ok);
    }
    let balances = |accounts: &[Account]| -> Vec<(u128, u128)> {
        accounts
            .iter()
            .map(|a| (a.balances.debits_posted, a.balances.credits_posted))
            .collect()
    };
    let before = balances(
        &client
            .lookup_accounts(vec![AccountId(1), AccountId(2)])
            .await
            .expect("lookup"),
    );
    let (leader, term, _, _) = view(&cluster.addresses[0].to_string()).await;
    assert_ne!(leader, 0, "no leader to keep");

    let peers: BTreeMap<u64, SocketAddr> = cluster
        .peers
        .split(',')
        .map(|entry| {
            let (id, address) = entry.split_once('=').expect("id=address");
            (id.parse().expect("id"), address.parse().expect("address"))
        })
        .collect();
    let cluster_id = tally_server::identity::cluster_id(1, &peers);
    // As the node reads it: trailing whitespace is not part of the secret.
    let secret = std::fs::read_to_string(cluster.secret_file())
        .expect("secret")
        .trim_end()
        .as_bytes()
        .to_vec();

    // 1. Client ports: the old peer handshake and raw peer frames are not peers.
    for address in &cluster.addresses {
        let mut old = b"TLYP".to_vec();
        old.extend_from_slice(&2u64.to_le_bytes());
        old.extend_from_slice(&frame(&PeerMessage::Raft {
            partition: 0,
            message: raft(MessageType::MsgHeartbeat, 2, 1, term + 100),
        }));
        assert!(
            poke(*address, &old).await,
            "{address} kept a peer-magic connection open"
        );
    }

    // 2. Peer ports without the secret.
    for (&id, &address) in &peers {
        let others: Vec<u64> = peers.keys().copied().filter(|&o| o != id).collect();
        assert!(
            poke(address, &[0xAB; 512]).await,
            "garbage kept open on {address}"
        );
        let mut huge = b"TLYP".to_vec();
        huge.extend_from_slice(&[0xFF; 200]);
        assert!(
            poke(address, &huge).await,
            "bad hello kept open on {address}"
        );
        for (secret, cluster_id, from, what) in [
            (
                b"not the secret".to_vec(),
                cluster_id,
                others[0],
                "a wrong secret",
            ),
            (
                secret.clone(),
                cluster_id ^ 1,
                others[0],
                "another cluster's id",
            ),
            (secret.clone(), cluster_id, 9, "an unknown node id"),
            (secret.clone(), cluster_id, id, "the acceptor's own id"),
        ] {
            let config = forger(from, secret, cluster_id, &peers);
            let mut stream = TcpStream::connect(address).await.expect("connect");
            let result = dial_handshake(&mut stream, &config, id).await;
            assert!(result.is_err(), "node {id} accepted a dialer with {what}");
        }
    }

    // 3. With the secret, as a configured node, every message a peer never sends or that
    //    raft-rs would abort on; and frames the transport must refuse.
    for (&id, &address) in &peers {
        let claimed = if id == leader {
            peers
                .keys()
                .copied()
                .find(|&o| o != id)
                .expect("another node")
        } else {
            leader
        };
        let config = forger(claimed, secret.clone(), cluster_id, &peers);
        let mut stream = TcpStream::connect(address).await.expect("connect");
        dial_handshake(&mut stream, &config, id)
            .await
            .unwrap_or_else(|e| panic!("a real handshake with node {id} failed: {e}"));
        let mut forged = Vec::new();
        let mut snapshot = raft(MessageType::MsgSnapshot, claimed, id, term);
        let mut body = Snapshot::default();
        body.mut_metadata().index = 1_000_000;
        body.mut_metadata().term = term;
        body.mut_metadata().set_conf_state(ConfState::default());
        snapshot.set_snapshot(body);
        forged.push(snapshot);
        let mut propose = raft(MessageType::MsgPropose, claimed, id, term);
        propose.entries = vec![Entry {
            data: b"forged".to_vec().into(),
            ..Entry::default()
        }]
        .into();
        forged.push(propose);
        for kind in [
            MessageType::MsgHup,
            MessageType::MsgBeat,
            MessageType::MsgTransferLeader,
            MessageType::MsgCheckQuorum,
            MessageType::MsgUnreachable,
        ] {
            forged.push(raft(kind, claimed, id, term));
        }
        let mut gap = raft(MessageType::MsgAppend, claimed, id, term);
        gap.index = 1;
        gap.log_term = 1;
        gap.entries = vec![Entry {
            index: 5,
            term,
            ..Entry::default()
        }]
        .into();
        forged.push(gap);
        let mut conf = raft(MessageType::MsgAppend, claimed, id, term);
        conf.entries = vec![Entry {
            index: 1_000_000,
            term,
            entry_type: EntryType::EntryConfChangeV2,
            ..Entry::default()
        }]
        .into();
        conf.index = 999_999;
        forged.push(conf);
        let mut commit = raft(MessageType::MsgHeartbeat, claimed, id, term);
        commit.commit = u64::MAX;
        if claimed == leader {
            forged.push(commit);
        }
        forged.push(raft(MessageType::MsgHeartbeat, claimed, id, 0));
        let mut bytes = Vec::new();
        for message in forged {
            encode(
                &mut bytes,
                &PeerMessage::Raft {
                    partition: 0,
                    message,
                },
            );
        }
        stream.write_all(&bytes).await.expect("send");
        // Then frames the transport refuses, each ending the connection: a message for
        // another node.
        let misaddressed = frame(&PeerMessage::Raft {
            partition: 0,
            message: raft(MessageType::MsgHeartbeat, claimed, 77, term + 1),
        });
        stream.write_all(&misaddressed).await.expect("send");
        let mut buffer = [0u8; 64];
        let closed = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "node {id} kept a connection that sent a misaddressed message"
        );
        for bad in [
            {
                let mut f = frame(&PeerMessage::ClockPing { sent: 1 });
                f[4] ^= 1; // checksum
                f
            },
            {
                let mut f = vec![0u8; 8];
                f[..4].copy_from_slice(&u32::MAX.to_le_bytes()); // length
                f
            },
            {
                let mut f = frame(&PeerMessage::ClockPing { sent: 1 });
                f[8] = 42; // kind
                let crc = crc32fast::hash(&f[8..]);
                f[4..8].copy_from_slice(&crc.to_le_bytes());
                f
            },
            {
                let mut f = frame(&PeerMessage::Raft {
                    partition: 0,
                    message: raft(MessageType::MsgHeartbeat, claimed, id, term),
                });
                f[9..13].copy_from_slice(&7u32.to_le_bytes()); // partition
                let crc = crc32fast::hash(&f[8..]);
                f[4..8].copy_from_slice(&crc.to_le_bytes());
                f
            },
            {
                let mut f = vec![0u8; 8];
                let body = [0u8, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
                f[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
                f[4..8].copy_from_slice(&crc32fast::hash(&body).to_le_bytes());
                f.extend_from_slice(&body); // undecodable protobuf
                f
            },
        ] {
            let mut stream = TcpStream::connect(address).await.expect("connect");
            dial_handshake(&mut stream, &config, id)
                .await
                .expect("handshake");
            stream.write_all(&bad).await.expect("send");
            let closed =
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer)).await;
            assert!(
                matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
                "node {id} kept a connection that broke the frame rules"
            );
        }
    }

    // 4. Only the leader may tell a node to stand for election at once: a follower told so
    //    by another follower (one that holds the secret) stays put.
    for (&id, &address) in peers.iter().filter(|(&id, _)| id != leader) {
        let other = peers
            .keys()
            .copied()
            .find(|&o| o != id && o != leader)
            .expect("a third node");
        let config = forger(other, secret.clone(), cluster_id, &peers);
        let mut stream = TcpStream::connect(address).await.expect("connect");
        dial_handshake(&mut stream, &config, id)
            .await
            .expect("handshake");
        let timeout_now = frame(&PeerMessage::Raft {
            partition: 0,
            message: raft(MessageType::MsgTimeoutNow, other, id, term),
        });
        stream.write_all(&timeout_now).await.expect("send");
    }

    // The cluster is as it was, and works.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for address in &cluster.addresses {
            views.push(view(&address.to_string()).await);
        }
        for (i, v) in views.iter().enumerate() {
            assert_eq!(
                (v.0, v.1),
                (leader, term),
                "node {} changed leader or term",
                i + 1
            );
        }
        if views.iter().all(|v| (v.2, v.3) == (views[0].2, views[0].3)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas never agreed: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..3 {
        assert!(cluster.running(i), "node {} stopped", i + 1);
    }
    let after = balances(
        &client
            .lookup_accounts(vec![AccountId(1), AccountId(2)])
            .await
            .expect("lookup"),
    );
    assert_eq!(before, after, "balances changed");
    let found = client
        .lookup_transfers((1..=50).map(TransferId).collect())
        .await
        .expect("lookup transfers");
    assert_eq!(found.len(), 50);
    let outcome = client
        .create_transfer(NewTransfer::plain(
            TransferId(51),
            AccountId(1),
            AccountId(2),
            Decimal::from(1),
            LedgerId(1),
        ))
        .await
        .expect("a transfer after the attacks");
    assert_eq!(outcome.result, tally_client::TransferResult::Ok);
}
