//! What a node is doing, for Prometheus: `tally start --metrics-address ADDR` serves
//! `/metrics` (OpenMetrics text), `/healthz` and `/readyz` over HTTP.
//!
//! Counters that the request path must bump ([`Metrics`]: requests and events by operation
//! and result, elections, storage errors, connections) are atomics, bumped once per request
//! or per Ready, never per event on a hot loop. Everything else is read when scraped
//! (`NodeCollector`): the per-stage latency histograms of `stages.rs`, each replica's term,
//! leader and indexes as its worker last published them, inbox depths and bytes held.
//! `docs/operations.md` lists every metric.
//!
//! `/healthz` answers 200 while the process serves (a node whose storage failed exits).
//! `/readyz` answers 200 only when the node would apply a write now: its partitions are up,
//! none is recovering, and each knows a leader; otherwise 503 with the reasons, one a line.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::session::Node;
use crate::stages::Stage;

/// Upper bounds of the stage histograms' buckets, in seconds (the last, `+Inf`, is implied).
pub const STAGE_BUCKETS_S: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Labels of a request or event count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationResult {
    operation: &'static str,
    result: &'static str,
}

/// Counts bumped on the request path and by the workers.
#[derive(Debug)]
pub struct Metrics {
    requests: Family<OperationResult, Counter>,
    events: Family<OperationResult, Counter>,
    partitions: Vec<PartitionCounts>,
    storage_errors: Counter,
    connections_accepted: Counter,
    connections_refused: Counter,
}

/// What a partition's worker counts.
#[derive(Debug, Default)]
struct PartitionCounts {
    elections: AtomicU64,
    leader_changes: AtomicU64,
}

impl Metrics {
    /// Counts for a node of `partitions` partitions, all zero.
    pub fn new(partitions: u32) -> Metrics {
        Metrics {
            requests: Family::default(),
            events: Family::default(),
            partitions: (0..partitions)
                .map(|_| PartitionCounts::default())
                .collect(),
            storage_errors: Counter::default(),
            connections_accepted: Counter::default(),
            connections_refused: Counter::default(),
        }
    }

    /// Counts one answered request of `operation` (`result`: `Ok` or the error code's name).
    pub fn request(&self, operation: &'static str, result: &'static str) {
        self.requests
            .get_or_create(&OperationResult { operation, result })
            .inc();
    }

    /// Counts the events of one answered request of `operation` by their results' names.
    pub fn events(&self, operation: &'static str, results: impl IntoIterator<Item = &'static str>) {
        // Most batches are all `Ok`: count runs of one result, then add each run once.
        let mut run: Option<(&'static str, u64)> = None;
        for result in results {
            match &mut run {
                Some((name, count)) if *name == result => *count += 1,
                _ => {
                    if let Some((name, count)) = run.take() {
                        self.add_events(operation, name, count);
                    }
                    run = Some((result, 1));
                }
            }
        }
        if let Some((name, count)) = run {
            self.add_events(operation, name, count);
        }
    }

    fn add_events(&self, operation: &'static str, result: &'static str, count: u64) {
        self.events
            .get_or_create(&OperationResult { operation, result })
            .inc_by(count);
    }

    /// Counts a term change seen by `partition`'s replica (an election took place).
    pub fn election(&self, partition: u32) {
        if let Some(counts) = self.partitions.get(partition as usize) {
            counts.elections.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a change of the leader `partition`'s replica follows.
    pub fn leader_change(&self, partition: u32) {
        if let Some(counts) = self.partitions.get(partition as usize) {
            counts.leader_changes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a storage error (it stops the node).
    pub fn storage_error(&self) {
        self.storage_errors.inc();
    }

    /// Counts an accepted client connection.
    pub fn connection_accepted(&self) {
        self.connections_accepted.inc();
    }

    /// Counts a client connection refused (the limit reached, none idle).
    pub fn connection_refused(&self) {
        self.connections_refused.inc();
    }
}

/// Every metric of `node`, ready to encode.
pub fn registry(node: Arc<Node>) -> Registry {
    let mut registry = Registry::with_prefix("tally");
    let metrics = node.metrics.clone();
    registry.register(
        "requests",
        "Client requests answered, by operation and result (Ok or the error code)",
        metrics.requests.clone(),
    );
    registry.register(
        "events",
        "Events of create requests answered, by operation and result",
        metrics.events.clone(),
    );
    registry.register(
        "storage_errors",
        "Storage errors (each stops the node)",
        metrics.storage_errors.clone(),
    );
    registry.register(
        "connections_accepted",
        "Client connections accepted",
        metrics.connections_accepted.clone(),
    );
    registry.register(
        "connections_refused",
        "Client connections refused: the limit was reached and none was idle",
        metrics.connections_refused.clone(),
    );
    registry.register(
        "build",
        "The server's version",
        Info::new(VersionLabel {
            version: env!("CARGO_PKG_VERSION"),
        }),
    );
    registry.register_collector(Box::new(NodeCollector { node }));
    registry
}

/// Reads, when scraped, what the node's parts publish.
struct NodeCollector {
    node: Arc<Node>,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCollector").finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    partition: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// A gauge's value in a replica's status.
type ReplicaGauge = fn(&tally_client::wire::ReplicaStatus) -> u64;

/// One gauge or counter per partition: `(partition, value)` pairs.
fn per_partition(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl IntoIterator<Item = (u32, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (partition, value) in values {
        let label = PartitionLabel { partition };
        let metric = family.encode_family(&label)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(metric)?,
            _ => ConstGauge::new(value).encode(metric)?,
        }
    }
    Ok(())
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let node = &self.node;
        gauge(
            &mut encoder,
            "uptime_seconds",
            "Seconds since the node started",
            node.started.elapsed().as_secs(),
        )?;
        gauge(
            &mut encoder,
            "ready",
            "1 when the node would apply a write now (as /readyz)",
            u64::from(readiness(node).is_empty()),
        )?;
        let statuses = node.local.statuses();
        let gauges: [(&str, &str, ReplicaGauge); 8] = [
            ("term", "The replica's Raft term", |s| s.term),
            (
                "leader",
                "The node id of the leader the replica follows (0: none known)",
                |s| s.leader,
            ),
            ("last_index", "The last index in the replica's log", |s| {
                s.last_index
            }),
            ("commit_index", "The replica's commit index", |s| {
                s.commit_index
            }),
            (
                "applied_index",
                "The last index the replica's state machine applied",
                |s| s.applied_index,
            ),
            (
                "apply_lag",
                "Committed entries the replica has not applied yet",
                |s| s.commit_index.saturating_sub(s.applied_index),
            ),
            (
                "recovering",
                "1 while the replica recovers lost data from its peers",
                |s| u64::from(s.recovering),
            ),
            (
                "inbox_requests",
                "Client requests waiting in the partition's inbox",
                |s| u64::from(s.queue_depth),
            ),
        ];
        for (name, help, value) in gauges {
            per_partition(
                &mut encoder,
                &format!("partition_{name}"),
                help,
                MetricType::Gauge,
                statuses.iter().map(|s| (s.partition.0, value(s))),
            )?;
        }
        per_partition(
            &mut encoder,
            "partition_is_leader",
            "1 when this node leads the partition",
            MetricType::Gauge,
            statuses
                .iter()
                .map(|s| (s.partition.0, u64::from(s.leader == node.config.node_id))),
        )?;
        per_partition(
            &mut encoder,
            "partition_peer_inbox_bytes",
            "Bytes of Raft messages from peers waiting in the partition's inbox",
            MetricType::Gauge,
            node.partitions
                .iter()
                .enumerate()
                .map(|(p, handle)| (p as u32, handle.peer_inbox().bytes() as u64)),
        )?;
        let counts = &node.metrics.partitions;
        per_partition(
            &mut encoder,
            "partition_elections",
            "Term changes the replica saw since the node started (each is an election)",
            MetricType::Counter,
            counts
                .iter()
                .enumerate()
                .map(|(p, c)| (p as u32, c.elections.load(Ordering::Relaxed))),
        )?;
        per_partition(
            &mut encoder,
            "partition_leader_changes",
            "Changes of the leader the replica follows since the node started",
            MetricType::Counter,
            counts
                .iter()
                .enumerate()
                .map(|(p, c)| (p as u32, c.leader_changes.load(Ordering::Relaxed))),
        )?;
        gauge(
            &mut encoder,
            "connections",
            "Open client connections",
            node.connections.open_count() as u64,
        )?;
        gauge(
            &mut encoder,
            "large_frame_bytes",
            "Bytes of large request frames held by connections (bounded by the node's budget)",
            node.connections.large_bytes() as u64,
        )?;
        gauge(
            &mut encoder,
            "answer_bytes_queued",
            "Bytes of answers waiting to be written to clients",
            node.connections.answer_bytes() as u64,
        )?;
        let mut histograms = encoder.encode_descriptor(
            "stage_seconds",
            "Time spent in each stage of the write path (see docs/operations.md)",
            None,
            MetricType::Histogram,
        )?;
        for stage in Stage::ALL {
            let Some(histogram) = node.stages.buckets(stage, &STAGE_BUCKETS_S) else {
                continue;
            };
            let label = StageLabel {
                stage: stage.name(),
            };
            let mut metric = histograms.encode_family(&label)?;
            // The encoder sums the buckets itself: it takes each bucket's own count, and the
            // last one (`+Inf`) holds the rest.
            let mut below = 0;
            let mut buckets: Vec<(f64, u64)> = histogram
                .buckets
                .iter()
                .map(|&(bound, at_most)| {
                    let own = at_most.saturating_sub(below);
                    below = below.max(at_most);
                    (bound, own)
                })
                .collect();
            buckets.push((f64::INFINITY, histogram.count.saturating_sub(below)));
            metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                histogram.sum_s,
                histogram.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}

/// Why the node would not apply a write now; empty when ready.
pub fn readiness(node: &Node) -> Vec<String> {
    if !node.ready.load(Ordering::Relaxed) {
        return vec!["the partitions are not up yet (starting or recovering)".into()];
    }
    let statuses = node.local.statuses();
    let mut reasons = Vec::new();
    for partition in 0..node.partitions.len() as u32 {
        match statuses.iter().find(|s| s.partition.0 == partition) {
            None => reasons.push(format!("partition {partition}: no replica running")),
            Some(s) if s.recovering => {
                reasons.push(format!("partition {partition}: recovering lost data"))
            }
            Some(s) if s.leader == 0 => {
                reasons.push(format!("partition {partition}: no leader known"))
            }
            Some(_) => {}
        }
    }
    reasons
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<Node>) {
    use axum::http::{header, StatusCode};
    use axum::routing::get;

    let registry = Arc::new(registry(node.clone()));
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (
                            StatusCode::OK,
                            [(
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            text,
                        ),
                        Err(_) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                            "the metrics could not be encoded\n".to_string(),
                        ),
                    }
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let node = node.clone();
                async move {
                    let reasons = readiness(&node);
                    if reasons.is_empty() {
                        (StatusCode::OK, "ready\n".to_string())
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready\n{}\n", reasons.join("\n")),
                        )
                    }
                }
            }),
        );
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "the metrics listener stopped");
    }
}

/// Binds the metrics listener (a bind error stops the start, naming the address).
pub async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))
}
