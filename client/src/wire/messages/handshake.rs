//! Bodies: `Hello` and `Ping`.

use super::*;

/// Body of [`Operation::Hello`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloRequest {
    /// The client's software version, for the server's logs.
    #[prost(string, tag = "1")]
    pub client_version: String,
}

impl Body for HelloRequest {
    const OPERATION: Operation = Operation::Hello;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_size(self.client_version.len(), TEXT_SIZE_MAX, "client_version")
    }
}

/// Body of [`Operation::HelloResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloResponse {
    /// The answering node.
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Partitions in the cluster.
    #[prost(uint32, tag = "2")]
    pub partition_count: u32,
    /// The known leader of each partition.
    #[prost(message, repeated, tag = "3")]
    pub leaders: Vec<WirePartitionLeader>,
    /// The server's software version.
    #[prost(string, tag = "4")]
    pub server_version: String,
    /// The answering node's own replica of each partition.
    #[prost(message, repeated, tag = "5")]
    pub replicas: Vec<WireReplicaStatus>,
    /// How long the answering node has run, in milliseconds.
    #[prost(uint64, tag = "6")]
    pub uptime_ms: u64,
    /// Where the answering node's time went, per stage.
    #[prost(message, repeated, tag = "7")]
    pub stages: Vec<WireStageSummary>,
    /// Every node of the cluster and its client address.
    #[prost(message, repeated, tag = "8")]
    pub nodes: Vec<WireNodeAddress>,
}

/// A node and its client address.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNodeAddress {
    /// The node's id.
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// Its client address; empty while unknown.
    #[prost(string, tag = "2")]
    pub address: String,
}

impl Body for HelloResponse {
    const OPERATION: Operation = Operation::HelloResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[
        limit(3, PARTITIONS_MAX, false, "hello.leaders"),
        limit(5, PARTITIONS_MAX, false, "hello.replicas"),
        limit(7, STAGES_MAX, false, "hello.stages"),
        limit(8, NODES_MAX, false, "hello.nodes"),
    ];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.leaders.len(), PARTITIONS_MAX, "hello.leaders")?;
        check_count(self.replicas.len(), PARTITIONS_MAX, "hello.replicas")?;
        check_count(self.stages.len(), STAGES_MAX, "hello.stages")?;
        check_count(self.nodes.len(), NODES_MAX, "hello.nodes")?;
        for node in &self.nodes {
            check_size(node.address.len(), ADDRESS_SIZE_MAX, "node.address")?;
        }
        for stage in &self.stages {
            check_size(stage.name.len(), TEXT_SIZE_MAX, "stage.name")?;
        }
        for leader in &self.leaders {
            check_size(leader.address.len(), ADDRESS_SIZE_MAX, "leader.address")?;
        }
        check_size(self.server_version.len(), TEXT_SIZE_MAX, "server_version")
    }
}

impl From<&ClusterInfo> for HelloResponse {
    fn from(c: &ClusterInfo) -> HelloResponse {
        HelloResponse {
            node_id: c.node_id,
            partition_count: c.partition_count,
            leaders: c.leaders.iter().map(WirePartitionLeader::from).collect(),
            server_version: c.server_version.clone(),
            replicas: c.replicas.iter().map(WireReplicaStatus::from).collect(),
            uptime_ms: c.uptime_ms,
            stages: c.stages.iter().map(WireStageSummary::from).collect(),
            nodes: c
                .nodes
                .iter()
                .map(|n| WireNodeAddress {
                    node_id: n.node_id,
                    address: n.address.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl HelloResponse {
    /// The typed cluster information.
    pub fn to_cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            node_id: self.node_id,
            partition_count: self.partition_count,
            leaders: self.leaders.iter().map(PartitionLeader::from).collect(),
            server_version: self.server_version.clone(),
            replicas: self.replicas.iter().map(ReplicaStatus::from).collect(),
            uptime_ms: self.uptime_ms,
            stages: self.stages.iter().map(StageSummary::from).collect(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeAddress {
                    node_id: n.node_id,
                    address: optional_text(&n.address),
                })
                .collect(),
        }
    }
}

/// Body of [`Operation::Ping`]: empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PingRequest {}

impl Body for PingRequest {
    const OPERATION: Operation = Operation::Ping;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

/// Body of [`Operation::PingResponse`]: empty.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PingResponse {}

impl Body for PingResponse {
    const OPERATION: Operation = Operation::PingResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}
