//! Client requests: a complete frame parsed, routed to partitions, answered.
//!
//! `connection.rs` reads each connection and hands every complete frame to `parse`: the
//! frame is checked (header, checksum, body, limits) before anything else happens; a frame
//! that fails gets an `Error` frame and the connection is closed — the server goes on serving
//! everyone else, and nothing of the bad frame reached any partition. A good request is handled
//! (`handle`) in its own task, so a client may pipeline many requests on one connection;
//! responses carry the request id and may return in any order.
//!
//! Routing: an account belongs to `partition_of(id, P)`; a transfer to its debit account's
//! partition (its credit account's when the debit is zero; for a post, void or refund that
//! names neither, the partition that holds its own id, else its original's; with neither
//! anywhere it is answered not-found here and recorded nowhere). An event routed elsewhere
//! than its id's home partition (`partition_of(id, P)`) first claims its id there
//! (`claim_ids`), so that one id has one outcome in the cluster. A batch is split by
//! partition, each part proposed as one entry to its partition, and the results reassembled
//! in the request's order; the events of a partition that did not answer, when others did,
//! get result 1001 (`timed_out`: indeterminate), never a definite rejection. A transfer,
//! account or linked chain that spans partitions is answered with result code 1000
//! (`cross_partition`) and not applied — never half-applied — until cross-partition
//! transactions exist. Ledgers are created on every partition.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tally_client::wire::changes::{StreamFilter, StreamFrom};
use tally_client::wire::codes::{self, ErrorCode};
use tally_client::wire::messages::*;
use tally_client::wire::types as wt;
use tally_client::wire::{encode_body, partition_of, Frame, Operation};
use tally_engine::command::{Command, TransferFlags};
use tally_engine::outcome::{AccountResult, LedgerResult, Outcome};
use tally_engine::types::{AccountId, TransferId};

use crate::config::NodeConfig;
use crate::convert::{self, RESULT_CROSS_PARTITION, RESULT_TIMED_OUT};
use crate::routing;
use crate::stages::Stage;
use crate::transport::Directory;
use crate::worker::{Answer, PartitionError, PartitionHandle, Query};

/// What every session shares: the node's configuration and its partitions.
pub struct Node {
    /// The configuration.
    pub config: NodeConfig,
    /// One handle per partition, by partition number.
    pub partitions: Arc<Vec<PartitionHandle>>,
    /// The leader of each partition as last seen by its worker (0: unknown).
    pub leaders: Arc<Vec<AtomicU64>>,
    /// Where this node listens for clients.
    pub address: std::net::SocketAddr,
    /// The client addresses peers announced.
    pub directory: Arc<Directory>,
    /// Whether the partitions are up; until then requests are answered `unavailable`.
    pub ready: Arc<AtomicBool>,
    /// The open client connections.
    pub connections: crate::connection::Connections,
    /// What this node's replicas report (probes and status).
    pub local: Arc<crate::recovery::LocalState>,
    /// When the node started.
    pub started: std::time::Instant,
    /// Where the node's time goes, per stage of the write path.
    pub stages: Arc<crate::stages::Stages>,
    /// What the node counts for Prometheus.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Each partition replica's change log, for streams.
    pub changes: Arc<Vec<Arc<crate::changes::ChangeFeed>>>,
}

impl Node {
    /// The client address of `node` (this one's, or what the peer announced).
    fn address_of(&self, node: u64) -> Option<String> {
        if node == 0 {
            None
        } else if node == self.config.node_id {
            Some(self.address.to_string())
        } else {
            self.directory.client_address(node)
        }
    }

    fn partition_count(&self) -> u32 {
        self.partitions.len() as u32
    }
}

/// An error answered for a whole request.
pub(crate) struct Failure {
    code: ErrorCode,
    message: String,
    leader_hint: Option<String>,
    retry_after_ms: Option<u32>,
}

impl Failure {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            leader_hint: None,
            retry_after_ms: None,
        }
    }

    fn from_partition(node: &Node, error: PartitionError) -> Failure {
        match error {
            PartitionError::NotLeader { leader } => {
                let leader = if leader != 0 {
                    leader
                } else {
                    node.leaders[0].load(Ordering::Relaxed)
                };
                Failure {
                    leader_hint: node.address_of(leader),
                    ..Failure::new(
                        ErrorCode::NotLeader,
                        "this node does not lead the partition",
                    )
                }
            }
            PartitionError::Overloaded => Failure {
                retry_after_ms: Some(5),
                ..Failure::new(ErrorCode::Overloaded, "partition queue full")
            },
            PartitionError::TimedOut | PartitionError::Dropped => {
                Failure::new(ErrorCode::Timeout, error.to_string())
            }
            PartitionError::LeaderLost { leader } => Failure {
                leader_hint: node.address_of(leader),
                ..Failure::new(ErrorCode::Timeout, error.to_string())
            },
            PartitionError::Invalid(message) => Failure::new(ErrorCode::Malformed, message),
            PartitionError::Stopped => Failure::new(ErrorCode::Internal, "partition stopped"),
        }
    }

    pub(crate) fn encode(&self, request_id: u64, out: &mut BytesMut) {
        let body = ErrorResponse {
            code: self.code.code(),
            message: self.message.clone(),
            leader_hint: self.leader_hint.clone().unwrap_or_default(),
            retry_after_ms: self.retry_after_ms.unwrap_or(0),
        };
        // An error body is small and always valid.
        let _ = encode_body(request_id, &body, out);
    }
}

/// A request whose body decoded and passed validation.
pub(crate) enum Request {
    Hello,
    Ping,
    CreateLedgers(Vec<wt::NewLedger>),
    CreateAccounts(Vec<wt::NewAccount>),
    CreateTransfers(Vec<wt::NewTransfer>),
    LookupAccounts(Vec<wt::AccountId>),
    LookupTransfers(Vec<wt::TransferId>),
    History(wt::HistoryQuery),
    Flows(wt::FlowsQuery),
    Series(wt::SeriesQuery),
    /// Served by the connection itself (`changes::stream`), never by [`handle`].
    Subscribe(StreamFrom, StreamFilter),
}

impl Request {
    /// Its operation's name in metrics.
    fn operation(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Ping => "ping",
            Request::CreateLedgers(_) => "create_ledgers",
            Request::CreateAccounts(_) => "create_accounts",
            Request::CreateTransfers(_) => "create_transfers",
            Request::LookupAccounts(_) => "lookup_accounts",
            Request::LookupTransfers(_) => "lookup_transfers",
            Request::History(_) => "history",
            Request::Flows(_) => "flows",
            Request::Series(_) => "series",
            Request::Subscribe(..) => "subscribe",
        }
    }
}

/// Decodes and validates a complete frame's request.
pub(crate) fn parse(frame: &Frame) -> Result<Request, tally_client::wire::FrameError> {
    Ok(match frame.op {
        Operation::Hello => {
            let _: HelloRequest = frame.decode_body()?;
            Request::Hello
        }
        Operation::Ping => {
            let _: PingRequest = frame.decode_body()?;
            Request::Ping
        }
        Operation::CreateLedgers => {
            Request::CreateLedgers(frame.decode_body::<CreateLedgersRequest>()?.to_ledgers()?)
        }
        Operation::CreateAccounts => Request::CreateAccounts(
            frame
                .decode_body::<CreateAccountsRequest>()?
                .to_accounts()?,
        ),
        Operation::CreateTransfers => Request::CreateTransfers(
            frame
                .decode_body::<CreateTransfersRequest>()?
                .to_transfers()?,
        ),
        Operation::LookupAccounts => {
            Request::LookupAccounts(frame.decode_body::<LookupAccountsRequest>()?.to_ids()?)
        }
        Operation::LookupTransfers => {
            Request::LookupTransfers(frame.decode_body::<LookupTransfersRequest>()?.to_ids()?)
        }
        Operation::AccountHistory => {
            Request::History(frame.decode_body::<AccountHistoryRequest>()?.to_query()?)
        }
        Operation::AccountFlows => {
            Request::Flows(frame.decode_body::<AccountFlowsRequest>()?.to_query()?)
        }
        Operation::BalanceSeries => {
            Request::Series(frame.decode_body::<BalanceSeriesRequest>()?.to_query()?)
        }
        Operation::Subscribe => {
            let request = frame.decode_body::<SubscribeRequest>()?;
            Request::Subscribe(request.to_from()?, request.to_filter()?)
        }
        other => {
            return Err(tally_client::wire::FrameError::WrongOperation {
                expected: Operation::Hello,
                got: other,
            })
        }
    })
}

/// Answers one request (the encoded response or error frame).
pub(crate) async fn handle(node: &Node, request_id: u64, request: Request) -> BytesMut {
    let mut out = BytesMut::new();
    let operation = request.operation();
    if !node.ready.load(Ordering::Relaxed) && !matches!(request, Request::Hello | Request::Ping) {
        node.metrics
            .request(operation, ErrorCode::Unavailable.name());
        Failure::new(
            ErrorCode::Unavailable,
            "this node is starting or recovering its data; nothing was applied: retry here \
             later or on another node",
        )
        .encode(request_id, &mut out);
        return out;
    }
    let result = match request {
        Request::Hello => Ok(encode_body(request_id, &hello(node), &mut out)),
        Request::Ping => Ok(encode_body(request_id, &PingResponse {}, &mut out)),
        Request::CreateLedgers(ledgers) => create_ledgers(node, ledgers).await.map(|r| {
            node.metrics
                .events(operation, r.iter().map(|result| result.name()));
            encode_body(request_id, &CreateLedgersResponse::new(&r), &mut out)
        }),
        Request::CreateAccounts(accounts) => create_accounts(node, accounts).await.map(|r| {
            node.metrics
                .events(operation, r.iter().map(|result| result.name()));
            encode_body(request_id, &CreateAccountsResponse::new(&r), &mut out)
        }),
        Request::CreateTransfers(transfers) => {
            let started = std::time::Instant::now();
            let result = create_transfers(node, transfers).await.map(|r| {
                node.metrics
                    .events(operation, r.iter().map(|o| o.result.name()));
                encode_body(request_id, &CreateTransfersResponse::new(&r), &mut out)
            });
            node.stages.record(Stage::Request, started.elapsed());
            result
        }
        Request::LookupAccounts(ids) => lookup_accounts(node, ids)
            .await
            .map(|r| encode_body(request_id, &LookupAccountsResponse::new(&r), &mut out)),
        Request::LookupTransfers(ids) => lookup_transfers(node, ids)
            .await
            .map(|r| encode_body(request_id, &LookupTransfersResponse::new(&r), &mut out)),
        Request::History(query) => account_history(node, query)
            .await
            .map(|page| encode_body(request_id, &AccountHistoryResponse::from(&page), &mut out)),
        Request::Flows(query) => account_flows(node, query)
            .await
            .map(|flows| encode_body(request_id, &AccountFlowsResponse::from(&flows), &mut out)),
        Request::Subscribe(..) => Err(Failure::new(
            ErrorCode::Internal,
            "a subscription is served by its connection, not as a request",
        )),
        Request::Series(query) => balance_series(node, query).await.map(|(scale, points)| {
            encode_body(
                request_id,
                &BalanceSeriesResponse::new(scale, &points),
                &mut out,
            )
        }),
    };
    match result {
        Ok(Ok(())) => node.metrics.request(operation, "Ok"),
        Ok(Err(error)) => {
            node.metrics.request(operation, ErrorCode::Internal.name());
            out.clear();
            Failure::new(ErrorCode::Internal, format!("response too large: {error}"))
                .encode(request_id, &mut out);
        }
        Err(failure) => {
            node.metrics.request(operation, failure.code.name());
            out.clear();
            failure.encode(request_id, &mut out);
        }
    }
    out
}

fn hello(node: &Node) -> HelloResponse {
    let info = wt::ClusterInfo {
        node_id: node.config.node_id,
        partition_count: node.partition_count(),
        leaders: node
            .leaders
            .iter()
            .enumerate()
            .map(|(p, leader)| wt::PartitionLeader {
                partition: wt::PartitionId(p as u32),
                address: node.address_of(leader.load(Ordering::Relaxed)),
            })
            .collect(),
        server_version: env!("CARGO_PKG_VERSION").to_string(),
        replicas: node.local.statuses(),
        uptime_ms: node.started.elapsed().as_millis() as u64,
        stages: node.stages.summary(),
        nodes: {
            let mut ids = node.config.voters();
            if ids.is_empty() {
                ids.push(node.config.node_id);
            }
            ids.into_iter()
                .map(|id| wt::NodeAddress {
                    node_id: id,
                    address: node.address_of(id),
                })
                .collect()
        },
    };
    HelloResponse::from(&info)
}

/// Proposes one command per partition at once, then waits for all of them: each
/// partition's outcome, or why it has none.
async fn propose_all(
    node: &Node,
    commands: Vec<(u32, Command)>,
) -> Vec<(u32, Result<Outcome, Failure>)> {
    let mut waiting = Vec::with_capacity(commands.len());
    for (partition, command) in commands {
        let handle = node.partitions[partition as usize].clone();
        waiting.push((
            partition,
            tokio::spawn(async move { handle.propose(command).await }),
        ));
    }
    let mut answers = Vec::with_capacity(waiting.len());
    for (partition, task) in waiting {
        let answer = match task.await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(error)) => Err(Failure::from_partition(node, error)),
            Err(_) => Err(Failure::new(ErrorCode::Internal, "task failed")),
        };
        answers.push((partition, answer));
    }
    answers
}

/// When no partition of a request answered, the request's error: an indeterminate one if
/// any partition's is (its command may have been applied), else the first. `None` when
/// some partition answered, or when nothing was proposed.
fn all_failed(answers: &mut Vec<(u32, Result<Outcome, Failure>)>) -> Option<Failure> {
    if answers.is_empty() || answers.iter().any(|(_, answer)| answer.is_ok()) {
        return None;
    }
    let definite = |f: &Failure| {
        matches!(
            f.code,
            ErrorCode::NotLeader | ErrorCode::Overloaded | ErrorCode::Unavailable
        )
    };
    let pick = answers
        .iter()
        .position(|(_, answer)| answer.as_ref().is_err_and(|f| !definite(f)))
        .unwrap_or(0);
    answers.swap_remove(pick).1.err()
}

async fn create_ledgers(
    node: &Node,
    ledgers: Vec<wt::NewLedger>,
) -> Result<Vec<codes::LedgerResult>, Failure> {
    let events: Vec<_> = ledgers.iter().map(convert::ledger).collect();
    let commands = (0..node.partition_count())
        .map(|p| (p, Command::CreateLedgers(events.clone())))
        .collect();
    let mut answers = propose_all(node, commands).await;
    if let Some(failure) = all_failed(&mut answers) {
        return Err(failure);
    }
    if answers.iter().any(|(_, answer)| answer.is_err()) {
        // Created on some partitions only: not a definite answer. A retry finds them
        // created there and creates them on the others.
        return Err(Failure::new(
            ErrorCode::Timeout,
            "some partitions did not answer; the ledgers may be created on some of them: \
             retry",
        ));
    }
    // Every partition got the same ledgers; a ledger is created if any partition created it
    // (a retry after a partial failure finds it on the others).
    let mut combined: Vec<LedgerResult> = Vec::new();
    for (_, outcome) in answers {
        let Ok(outcome) = outcome else { continue };
        let Outcome::Ledgers(results) = outcome else {
            return Err(Failure::new(ErrorCode::Internal, "unexpected outcome"));
        };
        if combined.is_empty() {
            combined = results;
        } else {
            for (have, new) in combined.iter_mut().zip(results) {
                if *have == LedgerResult::Exists && new == LedgerResult::Ok {
                    *have = LedgerResult::Ok;
                }
            }
        }
    }
    Ok(combined
        .into_iter()
        .map(|r| codes::LedgerResult::from_code(r.code()))
        .collect())
}

async fn create_accounts(
    node: &Node,
    accounts: Vec<wt::NewAccount>,
) -> Result<Vec<codes::AccountResult>, Failure> {
    let count = node.partition_count();
    let partitions: Vec<Option<u32>> = accounts
        .iter()
        .map(|a| Some(partition_of(a.id.0, count)))
        .collect();
    let linked: Vec<bool> = accounts
        .iter()
        .map(|a| a.flags.0 & tally_engine::command::AccountFlags::LINKED != 0)
        .collect();
    let routed = routing::route(&partitions, &linked);
    let events: Vec<_> = accounts.iter().map(convert::account).collect();
    let groups = routing::group(&events, &routed);
    let mut positions = BTreeMap::new();
    let mut commands = Vec::new();
    for (partition, members) in groups {
        positions.insert(
            partition,
            members.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        );
        commands.push((
            partition,
            Command::CreateAccounts(members.into_iter().map(|(_, e)| e).collect()),
        ));
    }
    let mut results = vec![codes::AccountResult::from_code(RESULT_CROSS_PARTITION); accounts.len()];
    let mut answers = propose_all(node, commands).await;
    if let Some(failure) = all_failed(&mut answers) {
        return Err(failure);
    }
    for (partition, answer) in answers {
        let codes = match answer {
            Ok(Outcome::Accounts(codes)) => codes,
            Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected outcome")),
            Err(_) => {
                // Its partition did not answer while others did: each of its events is
                // indeterminate, never reported as rejected.
                for &i in &positions[&partition] {
                    results[i] = codes::AccountResult::from_code(RESULT_TIMED_OUT);
                }
                continue;
            }
        };
        for (i, code) in positions[&partition].iter().zip(codes) {
            results[*i] = codes::AccountResult::from_code(AccountResult::code(code));
        }
    }
    Ok(results)
}

async fn create_transfers(
    node: &Node,
    transfers: Vec<wt::NewTransfer>,
) -> Result<Vec<wt::TransferOutcome>, Failure> {
    let count = node.partition_count();
    let events: Vec<_> = transfers.iter().map(convert::transfer).collect();
    let (mut partitions, unresolved) = routing::transfer_partitions(&events, count);
    // Events answered here without being proposed (so without being recorded).
    let mut answered: BTreeMap<usize, u32> = BTreeMap::new();
    if !unresolved.is_empty() {
        // The original lives with its debit account, and a retry of the event itself with
        // the original's: find the event's own id, or else its original, on every partition.
        let mut ids: Vec<TransferId> = unresolved.iter().map(|(i, _)| events[*i].id).collect();
        ids.extend(unresolved.iter().map(|(_, original)| *original));
        let mut own = vec![None; unresolved.len()];
        let mut original = vec![None; unresolved.len()];
        for p in 0..count {
            match node.partitions[p as usize]
                .read(Query::Transfers(ids.clone()))
                .await
            {
                Ok(Answer::Transfers(found)) => {
                    let (found_own, found_original) = found.split_at(unresolved.len());
                    for (k, record) in found_own.iter().enumerate() {
                        if let Some((record, _)) = record {
                            own[k] = Some(partition_of(record.debit_account.0, count));
                        }
                    }
                    for (k, record) in found_original.iter().enumerate() {
                        if let Some((record, _)) = record {
                            original[k] = Some(partition_of(record.debit_account.0, count));
                        }
                    }
                }
                Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected answer")),
                Err(error) => return Err(Failure::from_partition(node, error)),
            }
        }
        for (k, &(i, _)) in unresolved.iter().enumerate() {
            match own[k].or(original[k]) {
                Some(partition) => partitions[i] = Some(partition),
                // Nothing to post, void or refund anywhere: answered here and recorded
                // nowhere, so that a retry once the original exists is applied where it
                // lives and that stays the id's one outcome (recording the failure on some
                // partition would give the id two).
                None => {
                    answered.insert(i, not_found_result(&events[i]));
                }
            }
        }
    }
    let linked: Vec<bool> = events
        .iter()
        .map(|t| t.flags.has(TransferFlags::LINKED))
        .collect();
    // A chain with an event answered here is answered here whole, as it would fail whole.
    for (start, end) in routing::chains(&linked) {
        if start < end && (start..=end).any(|i| answered.contains_key(&i)) {
            for (i, partition) in partitions.iter_mut().enumerate().take(end + 1).skip(start) {
                answered
                    .entry(i)
                    .or_insert(tally_engine::outcome::TransferResult::LinkedEventFailed.code());
                *partition = None;
            }
        }
    }
    for &i in answered.keys() {
        partitions[i] = None;
    }
    let mut routed = routing::route(&partitions, &linked);
    claim_ids(node, &events, &linked, &mut routed, &mut answered).await?;
    let groups = routing::group(&events, &routed);
    let mut positions = BTreeMap::new();
    let mut commands = Vec::new();
    for (partition, members) in groups {
        positions.insert(
            partition,
            members.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        );
        commands.push((
            partition,
            Command::CreateTransfers(members.into_iter().map(|(_, e)| e).collect()),
        ));
    }
    let mut results = vec![convert::failed_outcome(RESULT_CROSS_PARTITION); events.len()];
    for (&i, &code) in &answered {
        results[i] = convert::failed_outcome(code);
    }
    let mut answers = propose_all(node, commands).await;
    if let Some(failure) = all_failed(&mut answers) {
        return Err(failure);
    }
    for (partition, answer) in answers {
        let outcomes = match answer {
            Ok(Outcome::Transfers(outcomes)) => outcomes,
            Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected outcome")),
            Err(_) => {
                // Its partition did not answer while others did: each of its events is
                // indeterminate, never reported as rejected.
                for &i in &positions[&partition] {
                    results[i] = convert::failed_outcome(RESULT_TIMED_OUT);
                }
                continue;
            }
        };
        for (i, outcome) in positions[&partition].iter().zip(outcomes.iter()) {
            results[*i] = convert::outcome(outcome);
        }
    }
    Ok(results)
}

/// Claims, on each id's home partition (`partition_of(id)`), the ids of the events routed
/// to another partition, before anything is applied: so that one transfer id has one outcome
/// in the whole cluster (the same id with accounts on two partitions would otherwise be
/// applied on both). An event whose claim finds the id taken by other fields is answered
/// `ExistsWithDifferentFields` here (its chain `LinkedEventFailed`) and not proposed. A home
/// partition that does not answer fails the whole request (nothing was applied yet, so its
/// error is the truth, and the client retries the same ids).
async fn claim_ids(
    node: &Node,
    events: &[tally_engine::command::NewTransfer],
    linked: &[bool],
    routed: &mut [Option<u32>],
    answered: &mut BTreeMap<usize, u32>,
) -> Result<(), Failure> {
    let count = node.partition_count();
    if count == 1 {
        return Ok(());
    }
    let mut claims: BTreeMap<u32, Vec<(usize, tally_engine::command::NewTransfer)>> =
        BTreeMap::new();
    for (i, (event, partition)) in events.iter().zip(routed.iter()).enumerate() {
        let home = partition_of(event.id.0, count);
        if partition.is_some_and(|p| p != home) {
            claims.entry(home).or_default().push((i, event.clone()));
        }
    }
    if claims.is_empty() {
        return Ok(());
    }
    let mut positions = BTreeMap::new();
    let mut commands = Vec::new();
    for (home, members) in claims {
        positions.insert(home, members.iter().map(|(i, _)| *i).collect::<Vec<_>>());
        commands.push((
            home,
            Command::ClaimTransfers(members.into_iter().map(|(_, e)| e).collect()),
        ));
    }
    let mut refused = BTreeMap::new();
    for (home, answer) in propose_all(node, commands).await {
        match answer {
            Ok(Outcome::Transfers(outcomes)) => {
                for (&i, outcome) in positions[&home].iter().zip(&outcomes) {
                    if outcome.result != tally_engine::outcome::TransferResult::Ok {
                        refused.insert(i, outcome.result.code());
                    }
                }
            }
            Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected outcome")),
            Err(failure) => return Err(failure),
        }
    }
    // A refused claim fails its chain, whole, here.
    for (start, end) in routing::chains(linked) {
        if (start..=end).any(|i| refused.contains_key(&i)) {
            for (i, partition) in routed.iter_mut().enumerate().take(end + 1).skip(start) {
                let code = refused
                    .get(&i)
                    .copied()
                    .unwrap_or(tally_engine::outcome::TransferResult::LinkedEventFailed.code());
                answered.insert(i, code);
                *partition = None;
            }
        }
    }
    Ok(())
}

async fn lookup_accounts(
    node: &Node,
    ids: Vec<wt::AccountId>,
) -> Result<Vec<wt::Account>, Failure> {
    let count = node.partition_count();
    let mut by_partition: BTreeMap<u32, Vec<AccountId>> = BTreeMap::new();
    for id in &ids {
        by_partition
            .entry(partition_of(id.0, count))
            .or_default()
            .push(AccountId(id.0));
    }
    let mut found = BTreeMap::new();
    for (partition, ids) in by_partition {
        match node.partitions[partition as usize]
            .read(Query::Accounts(ids))
            .await
        {
            Ok(Answer::Accounts(accounts)) => {
                for (account, scale) in accounts.into_iter().flatten() {
                    found.insert(account.id, convert::account_out(&account, scale));
                }
            }
            Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected answer")),
            Err(error) => return Err(Failure::from_partition(node, error)),
        }
    }
    // In the order asked; ids not found are left out.
    Ok(ids
        .iter()
        .filter_map(|id| found.get(&AccountId(id.0)).cloned())
        .collect())
}

async fn lookup_transfers(
    node: &Node,
    ids: Vec<wt::TransferId>,
) -> Result<Vec<wt::Transfer>, Failure> {
    let wanted: Vec<TransferId> = ids.iter().map(|id| TransferId(id.0)).collect();
    let mut found = BTreeMap::new();
    // A transfer id does not say which partition holds it: ask all of them.
    for handle in node.partitions.iter() {
        match handle.read(Query::Transfers(wanted.clone())).await {
            Ok(Answer::Transfers(records)) => {
                for (record, scale) in records.into_iter().flatten() {
                    found.entry(record.id).or_insert((record, scale));
                }
            }
            Ok(_) => return Err(Failure::new(ErrorCode::Internal, "unexpected answer")),
            Err(error) => return Err(Failure::from_partition(node, error)),
        }
    }
    Ok(wanted
        .iter()
        .filter_map(|id| found.get(id))
        .map(|(record, scale)| convert::transfer_out(record, *scale))
        .collect())
}

/// What a post, void or refund naming no account gets when neither it nor its original is
/// recorded on any partition (answered by the session, not recorded).
fn not_found_result(event: &tally_engine::command::NewTransfer) -> u32 {
    use tally_engine::outcome::TransferResult as R;
    if event.id.0 == 0 {
        R::IdMustNotBeZero.code()
    } else if event.pending_id.0 != 0 {
        R::PendingTransferNotFound.code()
    } else {
        R::RefundOfNotFound.code()
    }
}

/// Reads from the partition that owns `account`.
async fn read_account(node: &Node, account: u128, query: Query) -> Result<Answer, Failure> {
    let partition = partition_of(account, node.partition_count());
    node.partitions[partition as usize]
        .read(query)
        .await
        .map_err(|error| Failure::from_partition(node, error))
}

fn index_failure(error: tally_engine::index::IndexError) -> Failure {
    match error {
        tally_engine::index::IndexError::InvalidQuery(message) => {
            Failure::new(ErrorCode::Malformed, message)
        }
        other => Failure::new(ErrorCode::Internal, other.to_string()),
    }
}

fn unexpected() -> Failure {
    Failure::new(ErrorCode::Internal, "unexpected answer")
}

async fn account_history(node: &Node, query: wt::HistoryQuery) -> Result<wt::HistoryPage, Failure> {
    use tally_engine::index::{Direction, HistoryCursor, HistoryQuery};
    // Wire cursors are engine cursors plus one, so that zero can mean "the first page".
    let cursor = match query.cursor {
        0 => None,
        c => Some(HistoryCursor::from_bytes((c - 1).to_le_bytes())),
    };
    let history = HistoryQuery {
        cursor,
        limit: query.limit as usize,
        direction: match query.direction {
            tally_client::wire::codes::Direction::Backward => Direction::NewestFirst,
            _ => Direction::OldestFirst,
        },
        from: query.time_min.map(|t| tally_engine::types::Timestamp(t.0)),
        to: query.time_max.map(|t| tally_engine::types::Timestamp(t.0)),
    };
    let answer = read_account(
        node,
        query.account.0,
        Query::History(AccountId(query.account.0), history),
    )
    .await?;
    let Answer::History(result) = answer else {
        return Err(unexpected());
    };
    let (items, next, scale) = result.map_err(index_failure)?;
    Ok(wt::HistoryPage {
        scale,
        entries: items.iter().map(convert::history_entry).collect(),
        next_cursor: next.map(|c| u64::from_le_bytes(c.to_bytes()).saturating_add(1)),
    })
}

async fn account_flows(node: &Node, query: wt::FlowsQuery) -> Result<wt::Flows, Failure> {
    let (from, to) = (
        tally_engine::types::Timestamp(query.time_min.0),
        tally_engine::types::Timestamp(query.time_max.0),
    );
    let answer = read_account(
        node,
        query.account.0,
        Query::Flows(AccountId(query.account.0), from, to),
    )
    .await?;
    let Answer::Flows(result) = answer else {
        return Err(unexpected());
    };
    let (flows, scale) = result.map_err(index_failure)?;
    Ok(wt::Flows {
        scale,
        debits_total: flows.outgoing,
        credits_total: flows.incoming,
        debit_count: 0,
        credit_count: 0,
    })
}

async fn balance_series(
    node: &Node,
    query: wt::SeriesQuery,
) -> Result<(u8, Vec<wt::BalancePoint>), Failure> {
    let (from, to) = (
        tally_engine::types::Timestamp(query.time_min.0),
        tally_engine::types::Timestamp(query.time_max.0),
    );
    let answer = read_account(
        node,
        query.account.0,
        Query::Series(AccountId(query.account.0), from, to),
    )
    .await?;
    let Answer::Series(result) = answer else {
        return Err(unexpected());
    };
    let (hours, scale) = result.map_err(index_failure)?;
    Ok((
        scale,
        hours
            .iter()
            .map(|h| wt::BalancePoint {
                time_start: wt::Timestamp(h.hour_start.0),
                balances: convert::balances(&h.closing),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(code: ErrorCode) -> Result<Outcome, Failure> {
        Err(Failure::new(code, "test"))
    }

    #[test]
    fn a_request_fails_whole_only_when_no_partition_answered() {
        let mut answers = vec![(0, Ok(Outcome::Tick)), (1, failed(ErrorCode::NotLeader))];
        assert!(all_failed(&mut answers).is_none(), "one partition answered");
        assert!(
            all_failed(&mut Vec::new()).is_none(),
            "nothing was proposed"
        );
        let mut answers = vec![
            (0, failed(ErrorCode::NotLeader)),
            (1, failed(ErrorCode::Timeout)),
            (2, failed(ErrorCode::Overloaded)),
        ];
        let failure = all_failed(&mut answers).expect("all failed");
        assert_eq!(
            failure.code,
            ErrorCode::Timeout,
            "indeterminate wins: partition 1 may have applied"
        );
        let mut answers = vec![
            (0, failed(ErrorCode::Overloaded)),
            (1, failed(ErrorCode::NotLeader)),
        ];
        assert_eq!(
            all_failed(&mut answers).expect("all failed").code,
            ErrorCode::Overloaded,
            "definite only: the first"
        );
    }
}
