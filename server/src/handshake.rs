//! The peer handshake: how two nodes of a cluster prove they are what they claim before a
//! connection carries anything (`transport.rs`).
//!
//! Both ends prove they hold the cluster secret (HMAC-SHA256 challenge and response over
//! fresh nonces, so nothing recorded can be replayed), and the acceptor checks that the
//! dialer belongs to the same cluster (the id derived from partitions and voters,
//! `identity.rs`) and is a configured node other than itself. Until both proofs verify, the
//! acceptor reads only the fixed-size handshake and nothing reaches raft-rs. Every step has a
//! timeout.
//!
//! | step | from | bytes |
//! |---|---|---|
//! | hello | dialer | `TLYP`, version u16 (2), reserved u16, cluster id u128, from u64, to u64, nonce (16), client address (u8 length + text) |
//! | challenge | acceptor | `TLYP`, version u16, status u16, node id u64, nonce (16), proof (32) = HMAC(secret, `tally-accept` ‖ hello nonce ‖ own nonce ‖ from ‖ to ‖ cluster id) |
//! | proof | dialer | HMAC(secret, `tally-dial` ‖ challenge nonce ‖ hello nonce ‖ from ‖ to ‖ cluster id) (32) |
//! | result | acceptor | status u16, cluster id u128, partitions u32, voter count u8, voter ids (8 each), client address (u8 length + text) |
//!
//! A status other than 0 ends the connection: 1 unsupported version, 2 the acceptor is not
//! node `to` or does not know node `from`, 3 another cluster (the result then says which
//! layout the acceptor has, so the dialer can name both). Only authenticated dialers learn
//! the acceptor's layout.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::transport::{PeerConfig, HANDSHAKE_TIMEOUT, PEER_MAGIC, PEER_VERSION};

/// Longest client address announced in a handshake.
const ADDRESS_SIZE_MAX: usize = 64;
const NONCE_SIZE: usize = 16;
const PROOF_SIZE: usize = 32;
const STATUS_OK: u16 = 0;
const STATUS_VERSION: u16 = 1;
const STATUS_UNKNOWN_NODE: u16 = 2;
const STATUS_OTHER_CLUSTER: u16 = 3;

type HmacSha256 = Hmac<Sha256>;

/// Why a handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The connection failed or timed out.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A step did not arrive in time.
    #[error("no answer within {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    /// The other side does not speak this protocol.
    #[error("not a Tally peer: {0}")]
    Protocol(String),
    /// The other side refused us.
    #[error("refused: {0}")]
    Refused(String),
    /// The other side's proof does not verify: it does not hold the cluster secret.
    #[error("the peer's proof does not verify: it does not hold this cluster's secret")]
    BadProof,
    /// The other side belongs to another cluster.
    #[error("it belongs to another cluster ({0}); this node's is different: check --partitions and --peers")]
    OtherCluster(String),
}

async fn timed<T>(
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, step).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

fn proof(
    secret: &[u8],
    label: &[u8],
    first: &[u8; NONCE_SIZE],
    second: &[u8; NONCE_SIZE],
    from: u64,
    to: u64,
    cluster_id: u128,
) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(label);
    mac.update(first);
    mac.update(second);
    mac.update(&from.to_le_bytes());
    mac.update(&to.to_le_bytes());
    mac.update(&cluster_id.to_le_bytes());
    mac
}

fn nonce() -> [u8; NONCE_SIZE] {
    let mut nonce = [0u8; NONCE_SIZE];
    rand::thread_rng().fill_bytes(&mut nonce);
    nonce
}

async fn read_address<S: AsyncRead + Unpin>(stream: &mut S) -> Result<String, HandshakeError> {
    let length = timed(stream.read_u8()).await? as usize;
    if length > ADDRESS_SIZE_MAX {
        return Err(HandshakeError::Protocol(format!(
            "address of {length} bytes"
        )));
    }
    let mut bytes = vec![0u8; length];
    timed(stream.read_exact(&mut bytes)).await?;
    String::from_utf8(bytes).map_err(|_| HandshakeError::Protocol("address not UTF-8".into()))
}

fn put_address(out: &mut Vec<u8>, address: &str) {
    let bytes = &address.as_bytes()[..address.len().min(ADDRESS_SIZE_MAX)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The dialer's side of the handshake with node `to`; returns its client address.
pub async fn dial_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &PeerConfig,
    to: u64,
) -> Result<String, HandshakeError> {
    let own = nonce();
    let mut hello = Vec::with_capacity(64 + ADDRESS_SIZE_MAX);
    hello.extend_from_slice(&PEER_MAGIC);
    hello.extend_from_slice(&PEER_VERSION.to_le_bytes());
    hello.extend_from_slice(&0u16.to_le_bytes());
    hello.extend_from_slice(&config.cluster_id.to_le_bytes());
    hello.extend_from_slice(&config.node_id.to_le_bytes());
    hello.extend_from_slice(&to.to_le_bytes());
    hello.extend_from_slice(&own);
    put_address(&mut hello, &config.client_address);
    timed(stream.write_all(&hello)).await?;

    let mut challenge = [0u8; 4 + 2 + 2 + 8 + NONCE_SIZE + PROOF_SIZE];
    timed(stream.read_exact(&mut challenge)).await?;
    if challenge[..4] != PEER_MAGIC {
        return Err(HandshakeError::Protocol("bad magic".into()));
    }
    let status = u16::from_le_bytes([challenge[6], challenge[7]]);
    match status {
        STATUS_OK => {}
        STATUS_VERSION => {
            return Err(HandshakeError::Refused(
                "it does not speak peer protocol version 2".into(),
            ))
        }
        STATUS_UNKNOWN_NODE => {
            return Err(HandshakeError::Refused(format!(
                "it is not node {to}, or does not know node {}",
                config.node_id
            )))
        }
        other => return Err(HandshakeError::Refused(format!("status {other}"))),
    }
    let their_id = u64::from_le_bytes(challenge[8..16].try_into().expect("8 bytes"));
    if their_id != to {
        return Err(HandshakeError::Refused(format!(
            "it says it is node {their_id}, not {to}"
        )));
    }
    let theirs: [u8; NONCE_SIZE] = challenge[16..32].try_into().expect("16 bytes");
    proof(
        &config.secret,
        b"tally-accept",
        &own,
        &theirs,
        config.node_id,
        to,
        config.cluster_id,
    )
    .verify_slice(&challenge[32..])
    .map_err(|_| HandshakeError::BadProof)?;
    let answer = proof(
        &config.secret,
        b"tally-dial",
        &theirs,
        &own,
        config.node_id,
        to,
        config.cluster_id,
    )
    .finalize()
    .into_bytes();
    timed(stream.write_all(&answer)).await?;

    let mut result = [0u8; 2 + 16 + 4 + 1];
    timed(stream.read_exact(&mut result)).await?;
    let status = u16::from_le_bytes([result[0], result[1]]);
    let partitions = u32::from_le_bytes(result[18..22].try_into().expect("4 bytes"));
    let voter_count = result[22] as usize;
    if voter_count > crate::config::NODES_MAX {
        return Err(HandshakeError::Protocol(format!("{voter_count} voters")));
    }
    let mut voters = vec![0u8; voter_count * 8];
    timed(stream.read_exact(&mut voters)).await?;
    let client_address = read_address(stream).await?;
    if status == STATUS_OTHER_CLUSTER {
        let ids: Vec<String> = voters
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")).to_string())
            .collect();
        return Err(HandshakeError::OtherCluster(format!(
            "{partitions} partition(s), nodes {}",
            ids.join(",")
        )));
    }
    if status != STATUS_OK {
        return Err(HandshakeError::Refused(format!("status {status}")));
    }
    Ok(client_address)
}

/// The acceptor's side of the handshake; returns the dialer's node id and client address.
pub async fn accept_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    config: &PeerConfig,
) -> Result<(u64, String), HandshakeError> {
    let mut hello = [0u8; 4 + 2 + 2 + 16 + 8 + 8 + NONCE_SIZE];
    timed(stream.read_exact(&mut hello)).await?;
    if hello[..4] != PEER_MAGIC {
        return Err(HandshakeError::Protocol("bad magic".into()));
    }
    let version = u16::from_le_bytes([hello[4], hello[5]]);
    let cluster_id = u128::from_le_bytes(hello[8..24].try_into().expect("16 bytes"));
    let from = u64::from_le_bytes(hello[24..32].try_into().expect("8 bytes"));
    let to = u64::from_le_bytes(hello[32..40].try_into().expect("8 bytes"));
    let theirs: [u8; NONCE_SIZE] = hello[40..56].try_into().expect("16 bytes");
    let client_address = read_address(stream).await?;
    let own = nonce();
    let status = if version != PEER_VERSION {
        STATUS_VERSION
    } else if to != config.node_id || from == config.node_id || !config.voters.contains_key(&from) {
        STATUS_UNKNOWN_NODE
    } else {
        STATUS_OK
    };
    let mut challenge = Vec::with_capacity(64);
    challenge.extend_from_slice(&PEER_MAGIC);
    challenge.extend_from_slice(&PEER_VERSION.to_le_bytes());
    challenge.extend_from_slice(&status.to_le_bytes());
    challenge.extend_from_slice(&config.node_id.to_le_bytes());
    challenge.extend_from_slice(&own);
    if status == STATUS_OK {
        let mac = proof(
            &config.secret,
            b"tally-accept",
            &theirs,
            &own,
            from,
            to,
            cluster_id,
        );
        challenge.extend_from_slice(&mac.finalize().into_bytes());
    } else {
        challenge.extend_from_slice(&[0; PROOF_SIZE]);
    }
    timed(stream.write_all(&challenge)).await?;
    if status != STATUS_OK {
        return Err(HandshakeError::Refused(format!(
            "node {from} asked for node {to} with protocol version {version}"
        )));
    }
    let mut answer = [0u8; PROOF_SIZE];
    timed(stream.read_exact(&mut answer)).await?;
    proof(
        &config.secret,
        b"tally-dial",
        &own,
        &theirs,
        from,
        to,
        cluster_id,
    )
    .verify_slice(&answer)
    .map_err(|_| HandshakeError::BadProof)?;
    let status = if cluster_id == config.cluster_id {
        STATUS_OK
    } else {
        STATUS_OTHER_CLUSTER
    };
    let mut result = Vec::with_capacity(64);
    result.extend_from_slice(&status.to_le_bytes());
    result.extend_from_slice(&config.cluster_id.to_le_bytes());
    result.extend_from_slice(&config.partitions.to_le_bytes());
    result.push(config.voters.len() as u8);
    for id in config.voters.keys() {
        result.extend_from_slice(&id.to_le_bytes());
    }
    put_address(&mut result, &config.client_address);
    timed(stream.write_all(&result)).await?;
    if status != STATUS_OK {
        return Err(HandshakeError::OtherCluster(format!(
            "node {from} is configured for another cluster"
        )));
    }
    Ok((from, client_address))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use super::*;

    fn config(node_id: u64, secret: &[u8], partitions: u32) -> PeerConfig {
        let voters: BTreeMap<u64, SocketAddr> = (1..=3)
            .map(|i| (i, format!("127.0.0.{}:7100", i + 1).parse().expect("addr")))
            .collect();
        PeerConfig {
            node_id,
            peer_address: voters[&node_id],
            client_address: format!("127.0.0.{}:7000", node_id + 1),
            cluster_id: crate::identity::cluster_id(partitions, &voters),
            partitions,
            voters,
            secret: secret.to_vec(),
        }
    }

    async fn handshake(
        dialer: PeerConfig,
        acceptor: PeerConfig,
        to: u64,
    ) -> (
        Result<String, HandshakeError>,
        Result<(u64, String), HandshakeError>,
    ) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let dial = async move { dial_handshake(&mut a, &dialer, to).await };
        let accept = async move { accept_handshake(&mut b, &acceptor).await };
        tokio::join!(dial, accept)
    }

    #[tokio::test]
    async fn peers_with_the_secret_connect() {
        let secret = b"a secret of sixteen bytes";
        let (dial, accept) = handshake(config(1, secret, 2), config(2, secret, 2), 2).await;
        assert_eq!(dial.expect("dialer"), "127.0.0.3:7000");
        assert_eq!(accept.expect("acceptor"), (1, "127.0.0.2:7000".to_string()));
    }

    #[tokio::test]
    async fn a_wrong_secret_is_refused_on_both_sides() {
        let (dial, accept) = handshake(
            config(1, b"one secret of sixteen", 2),
            config(2, b"another secret of sixteen", 2),
            2,
        )
        .await;
        assert!(matches!(dial, Err(HandshakeError::BadProof)), "{dial:?}");
        assert!(accept.is_err());
    }

    #[tokio::test]
    async fn another_cluster_is_refused_and_named() {
        let secret = b"a secret of sixteen bytes";
        let (dial, accept) = handshake(config(1, secret, 3), config(2, secret, 2), 2).await;
        match dial {
            Err(HandshakeError::OtherCluster(layout)) => {
                assert!(layout.contains("2 partition(s)"), "{layout}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(accept, Err(HandshakeError::OtherCluster(_))));
    }

    #[tokio::test]
    async fn an_unknown_or_impersonated_node_is_refused() {
        let secret = b"a secret of sixteen bytes";
        let mut stranger = config(1, secret, 2);
        stranger.node_id = 9;
        let (dial, _) = handshake(stranger, config(2, secret, 2), 2).await;
        assert!(matches!(dial, Err(HandshakeError::Refused(_))), "{dial:?}");
        // Asking node 2's port for node 3.
        let (dial, _) = handshake(config(1, secret, 2), config(2, secret, 2), 3).await;
        assert!(matches!(dial, Err(HandshakeError::Refused(_))), "{dial:?}");
    }
}
