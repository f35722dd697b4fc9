//! Node configuration: from a TOML file, from flags, or the embedded single-node default.
//!
//! Every value is validated before the node starts; a bad value is an error that names the
//! field, never a panic or a silent default. The node's `address` serves clients; `peers`
//! lists every node's *peer* address (this node's own entry is where it listens for peers,
//! and the source address of its outgoing peer connections, so that firewall rules between
//! two nodes on one machine can tell them apart: see the chaos notes). Peers prove to each
//! other that they hold the cluster secret before any Raft message is read
//! (`transport.rs`), so a cluster of more than one node needs `cluster_secret_file`.
//!
//! ```toml
//! node_id = 1
//! address = "127.0.0.2:7000"
//! data_dir = "data/node-1"
//! partitions = 4
//! cluster_secret_file = "data/secret"
//! [peers]
//! 1 = "127.0.0.2:7100"
//! 2 = "127.0.0.3:7100"
//! 3 = "127.0.0.4:7100"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Most partitions a cluster may have.
pub const PARTITIONS_MAX: u32 = 256;
/// Largest per-partition bound of transfer records kept in memory (about 90 GB of records).
pub const TRANSFERS_MEMORY_MAX_LIMIT: usize = 1 << 28;
/// Most nodes a cluster may have.
pub const NODES_MAX: usize = 7;
/// Shortest cluster secret accepted, in bytes.
pub const SECRET_SIZE_MIN: usize = 16;
/// Longest cluster secret accepted, in bytes.
pub const SECRET_SIZE_MAX: usize = 4096;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node configuration.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A field has a value out of range or inconsistent with another.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// One node's configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// This node's id (1..), as listed in `peers`.
    pub node_id: u64,
    /// Where this node listens for clients.
    pub address: SocketAddr,
    /// The peer address of every node of the cluster (including this one, where it listens
    /// for peers and binds its outgoing peer connections), by id. Fixed at cluster creation.
    #[serde(default, deserialize_with = "peers_from_toml")]
    pub peers: BTreeMap<u64, SocketAddr>,
    /// A file holding the cluster secret (at least 16 bytes; trailing whitespace is not part
    /// of it), the same on every node. Required when `peers` lists more than this node.
    #[serde(default)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Partitions (Raft groups); fixed at cluster creation.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Where the node keeps its data.
    pub data_dir: PathBuf,
    /// Milliseconds per Raft tick.
    #[serde(default = "default_tick_ms")]
    pub tick_ms: u64,
    /// Ticks without a leader before an election (each node adds its own spread).
    #[serde(default = "default_election_ticks")]
    pub election_ticks: usize,
    /// Ticks between heartbeats.
    #[serde(default = "default_heartbeat_ticks")]
    pub heartbeat_ticks: usize,
    /// Proposals waiting per partition before the node answers `overloaded`.
    #[serde(default = "default_queue_depth")]
    pub queue_depth_max: usize,
    /// Applied entries between checkpoints.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_entries: u64,
    /// Client connections served at once; more are refused.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// Transfer records each partition keeps in memory (plus every pending hold); older ones
    /// live in transfer run files on disk. 0 keeps every record in memory.
    #[serde(default = "default_transfers_memory_max")]
    pub transfers_memory_max: usize,
    /// Largest log segment file, in bytes (4 KiB to 1 GiB); the next record goes to a new one.
    #[serde(default = "default_segment_size_max")]
    pub segment_size_max: u64,
    /// Bytes of changes that may commit while a change stream's consumer leaves its queue
    /// full; past it the stream ends `TooSlow` (the consumer resumes from disk).
    #[serde(default = "default_stream_behind_bytes_max")]
    pub stream_behind_bytes_max: u64,
    /// Where to serve `/metrics` (Prometheus), `/healthz` and `/readyz` over HTTP; none when
    /// unset.
    #[serde(default)]
    pub metrics_address: Option<SocketAddr>,
    /// Bugs planted on purpose, so that a chaos harness can prove it notices them (only from
    /// the hidden `--unsafe-bug` flag; never in a config file).
    #[serde(skip)]
    pub unsafe_bugs: Vec<UnsafeBug>,
}

/// A bug `tally start --unsafe-bug NAME` plants (see [`NodeConfig::unsafe_bugs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnsafeBug {
    /// Never fsync the log.
    SkipFsync,
    /// Apply (and answer) entries when appended, before they are committed.
    ApplyBeforeCommit,
    /// Never persist term and vote.
    SkipVote,
    /// Serve reads on the leader's lease, without confirming leadership.
    LeaseReads,
}

impl std::str::FromStr for UnsafeBug {
    type Err = String;

    fn from_str(name: &str) -> Result<UnsafeBug, String> {
        Ok(match name {
            "skip-fsync" => UnsafeBug::SkipFsync,
            "apply-before-commit" => UnsafeBug::ApplyBeforeCommit,
            "skip-vote" => UnsafeBug::SkipVote,
            "lease-reads" => UnsafeBug::LeaseReads,
            other => {
                return Err(format!(
                    "unknown bug {other:?}: skip-fsync, apply-before-commit, skip-vote or \
                     lease-reads"
                ))
            }
        })
    }
}

/// TOML table keys are strings: `[peers]` maps `"1" = "127.0.0.2:7000"`.
fn peers_from_toml<'de, D>(deserializer: D) -> Result<BTreeMap<u64, SocketAddr>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, SocketAddr>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(id, address)| {
            id.parse::<u64>()
                .map(|id| (id, address))
                .map_err(|_| serde::de::Error::custom(format!("peers: bad node id {id:?}")))
        })
        .collect()
}

fn default_partitions() -> u32 {
    1
}
fn default_tick_ms() -> u64 {
    100
}
fn default_election_ticks() -> usize {
    10
}
fn default_heartbeat_ticks() -> usize {
    2
}
fn default_queue_depth() -> usize {
    1024
}
fn default_checkpoint_interval() -> u64 {
    20_000
}
fn default_connections_max() -> usize {
    1024
}
fn default_transfers_memory_max() -> usize {
    tally_engine::transfer_runs::TRANSFERS_MEMORY_MAX_DEFAULT
}
fn default_segment_size_max() -> u64 {
    tally_engine::segment::SEGMENT_SIZE_MAX_DEFAULT
}
fn default_stream_behind_bytes_max() -> u64 {
    crate::changes::stream::BEHIND_BYTES_MAX
}

impl NodeConfig {
    /// The embedded default: one node on 127.0.0.1:3000 with its data in `./tally-data`.
    pub fn single_node(address: SocketAddr, data_dir: PathBuf) -> NodeConfig {
        NodeConfig {
            node_id: 1,
            address,
            peers: BTreeMap::from([(1, address)]),
            cluster_secret_file: None,
            partitions: default_partitions(),
            data_dir,
            tick_ms: default_tick_ms(),
            election_ticks: default_election_ticks(),
            heartbeat_ticks: default_heartbeat_ticks(),
            queue_depth_max: default_queue_depth(),
            checkpoint_interval_entries: default_checkpoint_interval(),
            connections_max: default_connections_max(),
            transfers_memory_max: default_transfers_memory_max(),
            segment_size_max: default_segment_size_max(),
            stream_behind_bytes_max: default_stream_behind_bytes_max(),
            metrics_address: None,
            unsafe_bugs: Vec::new(),
        }
    }

    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if config.peers.is_empty() {
            config.peers.insert(config.node_id, config.address);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; the node does not start with an invalid configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(invalid("node_id", "must be at least 1"));
        }
        if self.peers.is_empty() || self.peers.len() > NODES_MAX {
            return Err(invalid(
                "peers",
                format!("1 to {NODES_MAX} nodes, not {}", self.peers.len()),
            ));
        }
        if self.peers.contains_key(&0) {
            return Err(invalid("peers", "node ids start at 1"));
        }
        let Some(own) = self.peers.get(&self.node_id) else {
            return Err(invalid(
                "peers",
                format!("node {} is not listed", self.node_id),
            ));
        };
        if self.is_cluster() {
            if *own == self.address {
                return Err(invalid(
                    "peers",
                    format!(
                        "{own} is node {}'s client address; peers listen on addresses of their own",
                        self.node_id
                    ),
                ));
            }
            if self.cluster_secret_file.is_none() {
                return Err(invalid(
                    "cluster_secret_file",
                    "a cluster of more than one node needs a shared secret file \
                     (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for address in self.peers.values() {
            if !seen.insert(address) {
                return Err(invalid("peers", format!("{address} is listed twice")));
            }
        }
        if self.partitions == 0 || self.partitions > PARTITIONS_MAX {
            return Err(invalid(
                "partitions",
                format!("1 to {PARTITIONS_MAX}, not {}", self.partitions),
            ));
        }
        if !(1..=60_000).contains(&self.tick_ms) {
            return Err(invalid(
                "tick_ms",
                format!("1 to 60000, not {}", self.tick_ms),
            ));
        }
        if !(2..=1000).contains(&self.election_ticks) {
            return Err(invalid(
                "election_ticks",
                format!("2 to 1000, not {}", self.election_ticks),
            ));
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= self.election_ticks {
            return Err(invalid(
                "heartbeat_ticks",
                "at least 1 and below election_ticks",
            ));
        }
        if !(1..=1_000_000).contains(&self.queue_depth_max) {
            return Err(invalid("queue_depth_max", "1 to 1000000"));
        }
        if !(1..=100_000).contains(&self.connections_max) {
            return Err(invalid("connections_max", "1 to 100000"));
        }
        if !(100..=1_000_000_000).contains(&self.checkpoint_interval_entries) {
            // Fewer would write a checkpoint (every account) after nearly every entry.
            return Err(invalid(
                "checkpoint_interval_entries",
                format!(
                    "100 to 1000000000, not {}",
                    self.checkpoint_interval_entries
                ),
            ));
        }
        let segments = tally_engine::segment::SEGMENT_SIZE_MAX_MIN
            ..=tally_engine::segment::SEGMENT_SIZE_MAX_LIMIT;
        if !segments.contains(&self.segment_size_max) {
            return Err(invalid(
                "segment_size_max",
                format!(
                    "{} to {} bytes, not {}",
                    segments.start(),
                    segments.end(),
                    self.segment_size_max
                ),
            ));
        }
        if self.stream_behind_bytes_max == 0 {
            return Err(invalid(
                "stream_behind_bytes_max",
                "at least 1 byte".to_string(),
            ));
        }
        if self.transfers_memory_max > TRANSFERS_MEMORY_MAX_LIMIT {
            return Err(invalid(
                "transfers_memory_max",
                format!("0 (all in memory) or 1 to {TRANSFERS_MEMORY_MAX_LIMIT}"),
            ));
        }
        Ok(())
    }

    /// The voters of every partition.
    pub fn voters(&self) -> Vec<u64> {
        self.peers.keys().copied().collect()
    }

    /// Whether this node has peers (a cluster of more than one node).
    pub fn is_cluster(&self) -> bool {
        self.peers.len() > 1
    }

    /// This node's peer address: where it listens for peers.
    pub fn peer_address(&self) -> SocketAddr {
        self.peers[&self.node_id]
    }

    /// Reads the cluster secret (`None` for a single node without a secret file).
    pub fn read_secret(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = &self.cluster_secret_file else {
            return Ok(None);
        };
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        let secret = bytes[..end].to_vec();
        if !(SECRET_SIZE_MIN..=SECRET_SIZE_MAX).contains(&secret.len()) {
            return Err(invalid(
                "cluster_secret_file",
                format!(
                    "{} holds {} bytes; a secret has {SECRET_SIZE_MIN} to {SECRET_SIZE_MAX}",
                    path.display(),
                    secret.len()
                ),
            ));
        }
        Ok(Some(secret))
    }

    /// The data directory of one partition.
    pub fn partition_dir(&self, partition: u32) -> PathBuf {
        self.data_dir.join(format!("partition-{partition:04}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).expect("write");
        NodeConfig::from_file(&path)
    }

    #[test]
    fn reads_a_cluster_config() {
        let config = parse(
            "node_id = 2\naddress = \"127.0.0.3:7000\"\ndata_dir = \"d\"\npartitions = 4\n\
             cluster_secret_file = \"s\"\n\
             [peers]\n1 = \"127.0.0.2:7100\"\n2 = \"127.0.0.3:7100\"\n3 = \"127.0.0.4:7100\"\n",
        )
        .expect("valid");
        assert_eq!(config.voters(), vec![1, 2, 3]);
        assert_eq!(config.partitions, 4);
    }

    #[test]
    fn rejects_bad_values_with_the_field_name() {
        let cases = [
            ("node_id = 0\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\n", "node_id"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\npartitions = 0\n", "partitions"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntick_ms = 0\n", "tick_ms"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\n[peers]\n2 = \"127.0.0.1:2\"\n", "peers"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\nbogus = 1\n", "bogus"),
            ("node_id = 1\naddress = \"not an address\"\ndata_dir = \"d\"\n", "address"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\ntransfers_memory_max = 99999999999\n", "transfers_memory_max"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\n[peers]\n1 = \"127.0.0.1:2\"\n2 = \"127.0.0.1:3\"\n", "cluster_secret_file"),
            ("node_id = 1\naddress = \"127.0.0.1:1\"\ndata_dir = \"d\"\ncluster_secret_file = \"s\"\n[peers]\n1 = \"127.0.0.1:1\"\n2 = \"127.0.0.1:3\"\n", "client address"),
        ];
        for (text, field) in cases {
            let error = parse(text).expect_err(text).to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }
}
