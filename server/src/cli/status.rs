//! `tally status`: how the cluster stands, from any node. The first node that answers
//! `Hello` names every node of the cluster and its client address; each is then asked
//! `Hello` itself (in parallel, [`NODE_TIMEOUT`] each), and the answers are put together: per
//! node its version, uptime and whether it answered; per partition its leader and term, and
//! per replica its role, term, last, commit and applied index, its lag behind the highest
//! commit index any replica of the partition reports, and its inbox depth; then what is
//! degraded (a node that did not answer, a partition without a leader, a replica recovering
//! lost data, which takes no part in elections until it holds what the cluster committed).
//!
//! Each node reports its own replicas (not a linearizable read): a status is a snapshot of
//! what the nodes said within a second or two. A degraded cluster is not an error (exit 0);
//! no node answering is (exit 1).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use tally_client::{Client, ClientOptions, ClusterInfo};

use super::Connection;

/// How long one node may take to connect and answer.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(2);

/// `tally status` flags.
#[derive(Args, Clone, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub connection: Connection,
}

/// What one node said, or why it said nothing.
struct NodeView {
    id: u64,
    address: Option<String>,
    answer: Result<ClusterInfo, String>,
}

/// Asks the nodes and prints the cluster's status.
pub async fn run(args: StatusArgs) -> Result<(), String> {
    let mut refused = Vec::new();
    let mut first = None;
    for address in &args.connection.address {
        match hello(address).await {
            Ok(info) => {
                first = Some((address.clone(), info));
                break;
            }
            Err(error) => refused.push(format!("{address}: {error}")),
        }
    }
    let Some((asked, info)) = first else {
        return Err(format!("no node answered: {}", refused.join("; ")));
    };
    let nodes = ask_every_node(&asked, &info).await;
    let report = Status::new(&asked, &info, &nodes);
    if args.connection.json {
        println!("{}", report.to_json());
    } else {
        report.print();
    }
    Ok(())
}

/// Every node `info` names, each asked in parallel (the one that answered already is not
/// asked again).
async fn ask_every_node(asked: &str, info: &ClusterInfo) -> Vec<NodeView> {
    let mut known = info.nodes.clone();
    if known.is_empty() {
        known.push(tally_client::NodeAddress {
            node_id: info.node_id,
            address: Some(asked.to_owned()),
        });
    }
    let mut tasks = Vec::new();
    for node in known {
        let first = (node.node_id == info.node_id).then(|| info.clone());
        tasks.push(tokio::spawn(async move {
            let answer = match (first, &node.address) {
                (Some(info), _) => Ok(info),
                (None, Some(address)) => hello(address).await,
                (None, None) => Err("its client address is not known yet".to_owned()),
            };
            NodeView {
                id: node.node_id,
                address: node.address,
                answer,
            }
        }));
    }
    let mut nodes = Vec::new();
    for task in tasks {
        if let Ok(view) = task.await {
            nodes.push(view);
        }
    }
    nodes.sort_by_key(|n| n.id);
    nodes
}

/// The `hello` answer of the node at `address` itself: a client seeded with that address
/// alone, asked for its cluster information.
async fn hello(address: &str) -> Result<ClusterInfo, String> {
    let options = ClientOptions {
        request_timeout: NODE_TIMEOUT,
        retry_deadline: NODE_TIMEOUT,
        ..ClientOptions::default()
    };
    let exchange = async {
        let client = Client::connect(&[address.to_owned()], options)
            .await
            .map_err(|e| e.to_string())?;
        client.cluster_info().await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(NODE_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", NODE_TIMEOUT.as_secs()))?
}

/// One replica's line.
struct ReplicaLine {
    node: u64,
    role: &'static str,
    term: u64,
    last_index: u64,
    commit_index: u64,
    applied_index: u64,
    lag: u64,
    queue_depth: u32,
}

/// The status put together.
struct Status<'a> {
    asked: &'a str,
    answered_by: u64,
    partition_count: u32,
    nodes: &'a [NodeView],
    /// Per partition: the leader (0: none agreed on), its term, and the replicas that
    /// reported.
    partitions: BTreeMap<u32, (u64, u64, Vec<ReplicaLine>)>,
    degraded: Vec<String>,
}

impl<'a> Status<'a> {
    fn new(asked: &'a str, info: &ClusterInfo, nodes: &'a [NodeView]) -> Status<'a> {
        let mut degraded = Vec::new();
        let mut partitions: BTreeMap<u32, (u64, u64, Vec<ReplicaLine>)> = (0..info.partition_count)
            .map(|p| (p, (0, 0, Vec::new())))
            .collect();
        for node in nodes {
            let info = match &node.answer {
                Ok(info) => info,
                Err(error) => {
                    degraded.push(format!("node {} did not answer ({error})", node.id));
                    continue;
                }
            };
            for replica in &info.replicas {
                let leads = replica.leader == node.id;
                let role = if replica.recovering {
                    "recovering"
                } else if leads {
                    "leader"
                } else {
                    "follower"
                };
                let entry = partitions.entry(replica.partition.0).or_default();
                // The leader with the highest term a replica reports is the partition's.
                if replica.leader != 0 && replica.term >= entry.1 {
                    entry.0 = replica.leader;
                    entry.1 = replica.term;
                }
                entry.2.push(ReplicaLine {
                    node: node.id,
                    role,
                    term: replica.term,
                    last_index: replica.last_index,
                    commit_index: replica.commit_index,
                    applied_index: replica.applied_index,
                    lag: 0,
                    queue_depth: replica.queue_depth,
                });
            }
        }
        for (partition, (leader, _, replicas)) in &mut partitions {
            let commit = replicas.iter().map(|r| r.commit_index).max().unwrap_or(0);
            for replica in replicas.iter_mut() {
                replica.lag = commit.saturating_sub(replica.applied_index);
                if replica.role == "recovering" {
                    degraded.push(format!(
                        "node {}'s replica of partition {partition} is recovering lost data",
                        replica.node
                    ));
                }
            }
            if *leader == 0 {
                degraded.push(format!("partition {partition} has no leader"));
            }
        }
        Status {
            asked,
            answered_by: info.node_id,
            partition_count: info.partition_count,
            nodes,
            partitions,
            degraded,
        }
    }

    fn print(&self) {
        println!(
            "cluster     {} node(s), {} partition(s) (asked {}, answered by node {})",
            self.nodes.len(),
            self.partition_count,
            self.asked,
            self.answered_by
        );
        for node in self.nodes {
            let address = node.address.as_deref().unwrap_or("(address unknown)");
            match &node.answer {
                Ok(info) => println!(
                    "node {:<6} {address:<22} up {}, version {}",
                    node.id,
                    uptime(info.uptime_ms),
                    info.server_version
                ),
                Err(error) => println!("node {:<6} {address:<22} did not answer: {error}", node.id),
            }
        }
        for (partition, (leader, term, replicas)) in &self.partitions {
            match leader {
                0 => println!("partition {partition}: no leader"),
                leader => println!("partition {partition}: leader node {leader}, term {term}"),
            }
            for r in replicas {
                println!(
                    "  node {:<6} {:<10} term {:<5} last {:<10} commit {:<10} applied {:<10} lag {:<8} queue {}",
                    r.node,
                    r.role,
                    r.term,
                    r.last_index,
                    r.commit_index,
                    r.applied_index,
                    r.lag,
                    r.queue_depth
                );
            }
        }
        if self.degraded.is_empty() {
            println!("healthy: every node answered, every partition has a leader");
        }
        for line in &self.degraded {
            println!("degraded: {line}");
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| match &n.answer {
                Ok(info) => json!({
                    "id": n.id,
                    "address": n.address,
                    "answered": true,
                    "version": info.server_version,
                    "uptime_ms": info.uptime_ms,
                }),
                Err(error) => json!({
                    "id": n.id,
                    "address": n.address,
                    "answered": false,
                    "error": error,
                }),
            })
            .collect();
        let partitions: Vec<_> = self
            .partitions
            .iter()
            .map(|(partition, (leader, term, replicas))| {
                json!({
                    "partition": partition,
                    "leader": (*leader != 0).then_some(*leader),
                    "term": term,
                    "replicas": replicas.iter().map(|r| json!({
                        "node": r.node,
                        "role": r.role,
                        "term": r.term,
                        "last_index": r.last_index,
                        "commit_index": r.commit_index,
                        "applied_index": r.applied_index,
                        "lag": r.lag,
                        "queue_depth": r.queue_depth,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "asked": self.asked,
            "answered_by": self.answered_by,
            "partition_count": self.partition_count,
            "nodes": nodes,
            "partitions": partitions,
            "healthy": self.degraded.is_empty(),
            "degraded": self.degraded,
        })
    }
}

/// Whole seconds, as humantime writes them (`2h 3m 4s`); `0s` for less than a second.
fn uptime(ms: u64) -> String {
    humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(uptime(12_345), "12s");
        assert_eq!(uptime(125_000), "2m 5s");
        assert_eq!(uptime(7_384_000), "2h 3m 4s");
        assert_eq!(uptime(93_784_000), "1day 2h 3m 4s");
    }
}
