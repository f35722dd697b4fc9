//! The identity of a data directory: which cluster it belongs to, as which node, with how
//! many partitions and which voters.
//!
//! A node writes its identity file once, when its directory first joins a cluster (it forms
//! a new one, or recovers its place in an existing one: `recovery.rs`), and checks it at every
//! start: a flag or config value that disagrees stops the node with a message that names both
//! values. Without it, a restart with another `--partitions` would silently re-route every
//! account (accounts look missing, and failures get *recorded* under transfer ids), and a
//! node could join a cluster it never belonged to.
//!
//! The cluster id is derived from what the cluster was formed with — the partition count and
//! every voter's id and peer address — so that every node of a new cluster computes the same
//! one without a round of agreement, and two clusters with different layouts never accept
//! each other's peers (the peer handshake carries it: `transport.rs`).
//!
//! Layout (little-endian; written to a temporary file, fsynced, renamed, directory fsynced):
//!
//! | offset | width | field |
//! |---|---|---|
//! | 0 | 8 | magic `TALLYIDN` |
//! | 8 | 2 | version, 1 |
//! | 10 | 2 | reserved, 0 |
//! | 12 | 4 | partition count |
//! | 16 | 16 | cluster id |
//! | 32 | 8 | node id |
//! | 40 | 4 | voter count `n` (1..=7) |
//! | 44 | ... | `n` voters: id (8), address length `l` (1), address (`l` bytes of UTF-8) |
//! | end − 4 | 4 | crc32 of everything before it |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{NodeConfig, NODES_MAX, PARTITIONS_MAX};

/// The identity file's name in the data directory.
pub const IDENTITY_FILE: &str = "identity";
const MAGIC: [u8; 8] = *b"TALLYIDN";
const VERSION: u16 = 1;
/// Longest address text stored per voter.
const ADDRESS_SIZE_MAX: usize = 64;

/// Why an identity could not be read, written, or does not match.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is damaged.
    #[error("identity file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },
    /// The configuration disagrees with the directory's identity.
    #[error("{0}")]
    Mismatch(String),
}

/// A data directory's identity. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The cluster, derived from its founding layout ([`cluster_id`]).
    pub cluster_id: u128,
    /// This node.
    pub node_id: u64,
    /// Partitions of the cluster.
    pub partitions: u32,
    /// Every voter's peer address, by node id.
    pub voters: BTreeMap<u64, SocketAddr>,
}

/// The id of a cluster formed with `partitions` partitions and these voters.
pub fn cluster_id(partitions: u32, voters: &BTreeMap<u64, SocketAddr>) -> u128 {
    let mut bytes = b"tally-cluster-v1".to_vec();
    bytes.extend_from_slice(&partitions.to_le_bytes());
    for (id, address) in voters {
        let address = address.to_string();
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.push(address.len() as u8);
        bytes.extend_from_slice(address.as_bytes());
    }
    xxhash_rust::xxh3::xxh3_128(&bytes)
}

fn describe(voters: &BTreeMap<u64, SocketAddr>) -> String {
    let mut out = String::new();
    for (id, address) in voters {
        if !out.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "{id}={address}");
    }
    out
}

impl Identity {
    /// The identity a node started with `config` has (or will have, once it joins).
    pub fn of_config(config: &NodeConfig) -> Identity {
        Identity {
            cluster_id: cluster_id(config.partitions, &config.peers),
            node_id: config.node_id,
            partitions: config.partitions,
            voters: config.peers.clone(),
        }
    }

    /// The identity stored in `data_dir`, if any.
    pub fn read(data_dir: &Path) -> Result<Option<Identity>, IdentityError> {
        let path = data_dir.join(IDENTITY_FILE);
        match fs::read(&path) {
            Ok(bytes) => decode(&bytes)
                .map(Some)
                .map_err(|reason| IdentityError::Corrupt { path, reason }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(IdentityError::Io { path, source }),
        }
    }

    /// Writes this identity into `data_dir`, durably.
    pub fn write(&self, data_dir: &Path) -> Result<(), IdentityError> {
        let path = data_dir.join(IDENTITY_FILE);
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        let temporary = data_dir.join(format!("{IDENTITY_FILE}.tmp"));
        {
            let mut file = File::create(&temporary).map_err(io)?;
            file.write_all(&encode(self)).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        fs::rename(&temporary, &path).map_err(io)?;
        File::open(data_dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Checks that a node started with `config` may use a directory with this identity;
    /// the error names both values.
    pub fn check(&self, config: &NodeConfig) -> Result<(), IdentityError> {
        let dir = config.data_dir.display();
        if config.node_id != self.node_id {
            return Err(IdentityError::Mismatch(format!(
                "node id: started as node {}, but {dir} belongs to node {} (its identity file \
                 says so); start it with --node-id {} or give node {} a directory of its own",
                config.node_id, self.node_id, self.node_id, config.node_id
            )));
        }
        if config.partitions != self.partitions {
            return Err(IdentityError::Mismatch(format!(
                "partitions: started with --partitions {}, but {dir} belongs to a cluster with \
                 {} partitions (fixed when it was formed); start it with --partitions {}",
                config.partitions, self.partitions, self.partitions
            )));
        }
        if config.peers != self.voters {
            return Err(IdentityError::Mismatch(format!(
                "peers: started with --peers {}, but {dir} belongs to a cluster of {} (fixed \
                 when it was formed); start it with that list",
                describe(&config.peers),
                describe(&self.voters)
            )));
        }
        if self.cluster_id != cluster_id(self.partitions, &self.voters) {
            return Err(IdentityError::Mismatch(format!(
                "{dir}: its identity names cluster {:032x}, which does not match its own \
                 layout: the file was edited",
                self.cluster_id
            )));
        }
        Ok(())
    }

    /// A one-line description for messages: partitions and voters.
    pub fn summary(&self) -> String {
        format!(
            "{} partition(s), nodes {}",
            self.partitions,
            describe(&self.voters)
        )
    }
}

/// Encodes an identity (the layout of the module documentation).
pub fn encode(identity: &Identity) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + identity.voters.len() * 32);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&identity.partitions.to_le_bytes());
    out.extend_from_slice(&identity.cluster_id.to_le_bytes());
    out.extend_from_slice(&identity.node_id.to_le_bytes());
    out.extend_from_slice(&(identity.voters.len() as u32).to_le_bytes());
    for (id, address) in &identity.voters {
        let address = address.to_string();
        assert!(
            address.len() <= ADDRESS_SIZE_MAX,
            "address {address} too long"
        );
        out.extend_from_slice(&id.to_le_bytes());
        out.push(address.len() as u8);
        out.extend_from_slice(address.as_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and validates an identity. Never panics.
pub fn decode(bytes: &[u8]) -> Result<Identity, String> {
    const FIXED: usize = 44;
    if bytes.len() < FIXED + 4 {
        return Err(format!("{} bytes is too short", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| "crc")?);
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    if body[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let u16_at = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
    let u32_at =
        |at: usize| u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    if u16_at(8) != VERSION || u16_at(10) != 0 {
        return Err(format!(
            "unknown version {} or flags {}",
            u16_at(8),
            u16_at(10)
        ));
    }
    let partitions = u32_at(12);
    if partitions == 0 || partitions > PARTITIONS_MAX {
        return Err(format!("{partitions} partitions"));
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&body[16..32]);
    let cluster_id = u128::from_le_bytes(id);
    let node_id = u64_at(32);
    let count = u32_at(40) as usize;
    if count == 0 || count > NODES_MAX {
        return Err(format!("{count} voters"));
    }
    let mut voters = BTreeMap::new();
    let mut at = FIXED;
    for _ in 0..count {
        if body.len() < at + 9 {
            return Err("voters truncated".into());
        }
        let voter = u64_at(at);
        let length = body[at + 8] as usize;
        at += 9;
        if length > ADDRESS_SIZE_MAX || body.len() < at + length {
            return Err("voter address truncated".into());
        }
        let address: SocketAddr = std::str::from_utf8(&body[at..at + length])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or("voter address does not parse")?;
        at += length;
        if voter == 0 || voters.insert(voter, address).is_some() {
            return Err(format!("voter {voter} is invalid or listed twice"));
        }
    }
    if at != body.len() {
        return Err(format!("{} trailing bytes", body.len() - at));
    }
    if !voters.contains_key(&node_id) {
        return Err(format!("node {node_id} is not among its voters"));
    }
    Ok(Identity {
        cluster_id,
        node_id,
        partitions,
        voters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        let voters: BTreeMap<u64, SocketAddr> = [
            (1, "127.0.0.2:7100".parse().expect("addr")),
            (2, "127.0.0.3:7100".parse().expect("addr")),
            (3, "[::1]:7100".parse().expect("addr")),
        ]
        .into();
        Identity {
            cluster_id: cluster_id(4, &voters),
            node_id: 2,
            partitions: 4,
            voters,
        }
    }

    #[test]
    fn round_trips_and_rejects_every_damage() {
        let identity = identity();
        let bytes = encode(&identity);
        assert_eq!(decode(&bytes), Ok(identity));
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at {i}");
            assert!(decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn the_cluster_id_follows_the_layout() {
        let a = identity();
        let mut voters = a.voters.clone();
        assert_ne!(cluster_id(4, &voters), cluster_id(5, &voters));
        voters.insert(4, "127.0.0.5:7100".parse().expect("addr"));
        assert_ne!(cluster_id(4, &voters), a.cluster_id);
    }

    #[test]
    fn a_disagreeing_config_is_refused_with_both_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config =
            NodeConfig::single_node("127.0.0.1:7000".parse().expect("addr"), dir.path().into());
        config.node_id = 2;
        config.partitions = 4;
        config.peers = identity().voters;
        let identity = identity();
        identity.check(&config).expect("matches");
        identity.write(dir.path()).expect("write");
        assert_eq!(
            Identity::read(dir.path()).expect("read"),
            Some(identity.clone())
        );
        config.partitions = 3;
        let message = identity.check(&config).expect_err("refused").to_string();
        assert!(
            message.contains("--partitions 3") && message.contains("4 partitions"),
            "{message}"
        );
        config.partitions = 4;
        config.peers.remove(&3);
        let message = identity.check(&config).expect_err("refused").to_string();
        assert!(message.contains("3=[::1]:7100"), "{message}");
    }
}
