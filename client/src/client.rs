//! The async client: typed operations over one pipelined connection to the cluster's leader,
//! with retries that keep the ids of the first attempt.
//!
//! Data flow: an operation validates the caller's input (batch sizes, memo sizes, time
//! ranges; a violation is [`ClientError::Invalid`] and nothing is sent), converts it to the
//! request body, and encodes the body *once*. [`Core::exchange`] then runs the retry loop: it
//! takes the router's current connection (connecting, or following the leader, as needed),
//! frames the encoded body under a fresh request id, waits for the answer up to
//! `request_timeout`, and either returns the decoded response or decides what the failure
//! means. Because every attempt sends the same bytes, a retry carries the same ids by
//! construction, and the server's idempotency (a transfer id returns its original outcome,
//! an existing account or ledger answers `Exists`) makes the retry safe.
//!
//! What a failed attempt means, and what happens next:
//! - no connection could be opened: nothing was sent; back off and retry;
//! - no answer in time, the connection died, or a `timeout`/`internal` error: the request
//!   *may* have been applied; back off and retry, elsewhere first (the node that failed goes
//!   last). A connection that delivers nothing while requests wait is pinged, and presumed
//!   dead (a paused or cut-off node) when the ping goes unanswered for `liveness_timeout`
//!   (`connection.rs`); a `timeout` naming the new leader (from a leader that stepped down) is
//!   retried there at once;
//! - `not_leader`: reconnect to the hint at once (or elsewhere, after a pause, without one);
//! - `unavailable`: nothing was applied; try the other nodes first;
//! - `overloaded`: wait `retry_after_ms` (or back off), then retry;
//! - a response that breaks the protocol (wrong operation, undecodable body, a result count
//!   different from the event count): the connection is replaced and the request retried;
//! - any other error code (`malformed`, `unsupported_version`, `cross_partition`, unknown):
//!   final, [`ClientError::Rejected`].
//!
//! Attempts go on until one gets a definite answer, `retry_deadline` has passed since the
//! first, or `retries_max` attempts were made — the deadline is long enough by default to
//! cover an election and the new leader's first commit, so a failover does not reach the
//! caller. Then the call reports [`ClientError::Indeterminate`] if any attempt may have been
//! applied, else [`ClientError::Rejected`] with the last refusal, else
//! [`ClientError::Connect`]: indeterminate is never reported while a definite answer exists.
//!
//! Per event: in a request over several partitions, the events of a partition that did not
//! answer come back with result `TimedOut` (1001, indeterminate) while the others are
//! definite. The client resends just those events (whole chains), with the same ids, until
//! they are definite or `retry_deadline` has passed; [`Client::create_transfers`] returns any
//! still `TimedOut` as such, and [`Client::create_transfer`] reports one as
//! [`ClientError::Indeterminate`]: never as an outcome.
//!
//! Batches: [`Client::create_transfers`] sends its whole vector as one request, split only
//! when it exceeds [`BATCH_EVENTS_MAX`], and then only between linked chains; the pieces go
//! one after another, each after the previous one's answer, so their order holds.
//! [`Client::create_transfer`] goes through the batcher (`batcher.rs`), which coalesces
//! concurrent single calls. At most `in_flight_max` requests are in flight at once; further
//! calls wait for a slot.
//!
//! Deliberate omissions: no per-partition routing (the cluster serves every partition from
//! one node), no client-side rate limiting beyond `in_flight_max`. Change streams have a
//! connection of their own (`subscription.rs`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::batcher::{self, Submission};
use crate::connection::EncodedRequest;
use crate::error::ClientError;
use crate::ids;
use crate::router::Router;
use crate::wire::messages::{
    AccountFlowsRequest, AccountFlowsResponse, AccountHistoryRequest, AccountHistoryResponse,
    BalanceSeriesRequest, BalanceSeriesResponse, CreateAccountsRequest, CreateAccountsResponse,
    CreateLedgersRequest, CreateLedgersResponse, CreateTransfersRequest, CreateTransfersResponse,
    ErrorResponse, HelloRequest, HelloResponse, LookupAccountsRequest, LookupAccountsResponse,
    LookupTransfersRequest, LookupTransfersResponse, PingRequest, PingResponse,
};
use crate::wire::{
    Account, AccountFlags, AccountId, AccountResult, BalancePoint, ClusterInfo, ErrorCode, Flows,
    FlowsQuery, Frame, HistoryPage, HistoryQuery, LedgerResult, NewAccount, NewLedger, NewTransfer,
    Operation, SeriesQuery, ServerError, Transfer, TransferFlags, TransferId, TransferOutcome,
    TransferResult, BATCH_EVENTS_MAX, HISTORY_ENTRIES_MAX, MEMO_SIZE_MAX, SERIES_POINTS_MAX,
};

/// Longest pause between two attempts, however many attempts have failed (short: during a
/// failover the next attempt should find the new leader soon after it is elected).
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Longest `retry_after_ms` honoured; a larger value from the server is cut to this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(10);

/// Most seed addresses [`Client::connect`] accepts.
pub const SEED_ADDRESSES_MAX: usize = 64;

/// Most attempts a request may be given ([`ClientOptions::retries_max`]).
pub const ATTEMPTS_MAX: u32 = 1000;

/// Most requests a client may allow in flight at once ([`ClientOptions::in_flight_max`]).
pub const IN_FLIGHT_MAX: usize = 65_536;

const HOUR_NS: u64 = 3_600 * 1_000_000_000;

/// How a [`Client`] talks to the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long one attempt waits for its answer before it counts as failed.
    pub request_timeout: Duration,
    /// How long a request is retried, from its first attempt, before the call gives up.
    pub retry_deadline: Duration,
    /// Attempts per request, the first included; at least 1, at most [`ATTEMPTS_MAX`].
    pub retries_max: u32,
    /// How long a connection may deliver nothing while requests wait on it, and then leave
    /// a ping unanswered, before it is presumed dead and its requests retried elsewhere.
    /// Twice this (at most `request_timeout`) bounds each step of opening a connection (TCP
    /// connect, then `Hello`): a paused node's kernel still accepts connections.
    pub liveness_timeout: Duration,
    /// Pause after the first failed attempt; it doubles with each further failure, up to
    /// [`RETRY_BACKOFF_MAX`], with random jitter of up to half.
    pub retry_backoff: Duration,
    /// Most transfers the batcher puts in one batch; at least 1, at most
    /// [`BATCH_EVENTS_MAX`].
    pub batch_size_max: usize,
    /// How long the batcher may wait to fill a batch. Zero (the default) sends as soon as the
    /// previous batch is written, so batches grow exactly as large as the load makes them.
    pub batch_delay: Duration,
    /// Most requests in flight at once; further calls wait. At least 1, at most
    /// [`IN_FLIGHT_MAX`].
    pub in_flight_max: usize,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            retry_deadline: Duration::from_secs(20),
            retries_max: 200,
            liveness_timeout: Duration::from_millis(750),
            retry_backoff: Duration::from_millis(50),
            batch_size_max: BATCH_EVENTS_MAX,
            batch_delay: Duration::ZERO,
            in_flight_max: 1024,
        }
    }
}

impl ClientOptions {
    fn validate(&self) -> Result<(), ClientError> {
        let invalid = |what: String| Err(ClientError::Invalid(what));
        if self.request_timeout.is_zero() {
            return invalid("request_timeout must not be zero".into());
        }
        if self.liveness_timeout.is_zero() {
            return invalid("liveness_timeout must not be zero".into());
        }
        if !(1..=ATTEMPTS_MAX).contains(&self.retries_max) {
            return invalid(format!(
                "retries_max is {}, must be 1..={ATTEMPTS_MAX}",
                self.retries_max
            ));
        }
        if !(1..=BATCH_EVENTS_MAX).contains(&self.batch_size_max) {
            return invalid(format!(
                "batch_size_max is {}, must be 1..={BATCH_EVENTS_MAX}",
                self.batch_size_max
            ));
        }
        if !(1..=IN_FLIGHT_MAX).contains(&self.in_flight_max) {
            return invalid(format!(
                "in_flight_max is {}, must be 1..={IN_FLIGHT_MAX}",
                self.in_flight_max
            ));
        }
        Ok(())
    }
}

/// An account's hourly closing balances, as answered by [`Client::balance_series`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceSeries {
    /// The ledger's scale, to read the minor units.
    pub scale: u8,
    /// One point per hour, oldest first.
    pub points: Vec<BalancePoint>,
}

/// What the client's tasks share: options, the router, the in-flight limit.
pub(crate) struct Core {
    pub(crate) options: ClientOptions,
    router: Router,
    in_flight: Semaphore,
}

/// A connection to a Tally cluster. Cheap to clone (an `Arc` inside); every clone shares the
/// connection, the batcher and the in-flight limit. Must be used inside a tokio runtime.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    core: Arc<Core>,
    submissions: mpsc::Sender<Submission>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.core.options)
            .field("partition_count", &self.partition_count())
            .finish()
    }
}

impl Client {
    /// Connects to the cluster through any of `addresses` (`host:port`; any node will do,
    /// the client finds the leader) and says `Hello`. Fails with [`ClientError::Connect`] if
    /// no address answers, and with [`ClientError::Invalid`] for bad options.
    pub async fn connect(
        addresses: &[String],
        options: ClientOptions,
    ) -> Result<Client, ClientError> {
        options.validate()?;
        if addresses.is_empty() || addresses.len() > SEED_ADDRESSES_MAX {
            return Err(ClientError::Invalid(format!(
                "{} addresses given, must be 1..={SEED_ADDRESSES_MAX}",
                addresses.len()
            )));
        }
        let core = Arc::new(Core {
            router: Router::new(
                addresses.to_vec(),
                options
                    .request_timeout
                    .min(options.liveness_timeout.saturating_mul(2)),
                options.liveness_timeout,
            ),
            in_flight: Semaphore::new(options.in_flight_max),
            options,
        });
        core.router
            .connection()
            .await
            .map_err(ClientError::Connect)?;
        let submissions = batcher::spawn(core.clone());
        Ok(Client {
            inner: Arc::new(Inner { core, submissions }),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.core.options
    }

    /// The cluster's partition count, as reported by the latest `Hello`.
    pub fn partition_count(&self) -> u32 {
        self.inner.core.router.partition_count()
    }

    /// A fresh random account id in the same partition as `account`, so that transfers
    /// between the two never cross partitions (a player's wallet and inventory).
    pub fn account_id_beside(&self, account: AccountId) -> AccountId {
        // `connect` succeeds only after a `Hello` reporting at least one partition.
        AccountId(ids::id_beside(account.0, self.partition_count().max(1)))
    }

    /// Asks the node the client is connected to for the cluster's layout (and records it).
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        let core = &self.inner.core;
        let request = encode(&HelloRequest {
            client_version: crate::connection::CLIENT_VERSION.to_owned(),
        })?;
        let info = core
            .exchange(&request, None, |frame| {
                let response: HelloResponse = frame.decode_body().map_err(|e| e.to_string())?;
                let info = response.to_cluster_info();
                if info.partition_count == 0 {
                    return Err("hello reports zero partitions".to_owned());
                }
                Ok(info)
            })
            .await?;
        core.router.update(info.clone()).await;
        Ok(info)
    }

    /// A round trip to the leader.
    pub async fn ping(&self) -> Result<(), ClientError> {
        let request = encode(&PingRequest {})?;
        self.inner
            .core
            .exchange(&request, None, |frame| {
                frame
                    .decode_body::<PingResponse>()
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
    }

    /// Creates ledgers; one result per ledger, in order.
    pub async fn create_ledgers(
        &self,
        ledgers: Vec<NewLedger>,
    ) -> Result<Vec<LedgerResult>, ClientError> {
        let mut results = Vec::with_capacity(ledgers.len());
        for range in chunk_ranges(&vec![false; ledgers.len()], BATCH_EVENTS_MAX)? {
            let chunk = &ledgers[range];
            let request = encode(&CreateLedgersRequest::new(chunk))?;
            let part = self
                .inner
                .core
                .exchange(&request, None, |frame| {
                    let response: CreateLedgersResponse =
                        frame.decode_body().map_err(|e| e.to_string())?;
                    check_count(response.results.len(), chunk.len())?;
                    Ok(response.to_results())
                })
                .await?;
            results.extend(part);
        }
        Ok(results)
    }

    /// Creates accounts; one result per account, in order. Accounts flagged `linked` form
    /// chains as transfers do; a vector over [`BATCH_EVENTS_MAX`] is split between chains.
    pub async fn create_accounts(
        &self,
        accounts: Vec<NewAccount>,
    ) -> Result<Vec<AccountResult>, ClientError> {
        let linked: Vec<bool> = accounts
            .iter()
            .map(|a| a.flags.has(AccountFlags::LINKED))
            .collect();
        let mut results = Vec::with_capacity(accounts.len());
        for range in chunk_ranges(&linked, BATCH_EVENTS_MAX)? {
            let chunk = &accounts[range];
            let request = encode(&CreateAccountsRequest::new(chunk))?;
            let part = self
                .inner
                .core
                .exchange(&request, None, |frame| {
                    let response: CreateAccountsResponse =
                        frame.decode_body().map_err(|e| e.to_string())?;
                    check_count(response.results.len(), chunk.len())?;
                    Ok(response.to_results())
                })
                .await?;
            results.extend(part);
        }
        Ok(results)
    }

    /// Creates transfers as one request (split between linked chains only if there are more
    /// than [`BATCH_EVENTS_MAX`]); one outcome per transfer, in order. If a later piece of a
    /// split vector fails, the earlier pieces have been applied: resend the whole vector with
    /// the same ids to learn every outcome.
    pub async fn create_transfers(
        &self,
        transfers: Vec<NewTransfer>,
    ) -> Result<Vec<TransferOutcome>, ClientError> {
        for (index, transfer) in transfers.iter().enumerate() {
            check_memo(index, transfer)?;
        }
        let linked: Vec<bool> = transfers
            .iter()
            .map(|t| t.flags.has(TransferFlags::LINKED))
            .collect();
        let mut outcomes = Vec::with_capacity(transfers.len());
        for range in chunk_ranges(&linked, BATCH_EVENTS_MAX)? {
            outcomes
                .extend(create_transfers_once(&self.inner.core, &transfers[range], None).await?);
        }
        Ok(outcomes)
    }

    /// Creates one transfer. Concurrent calls are coalesced into batches. The transfer must
    /// not be flagged `linked` (a chain must be sent whole, with [`Client::create_transfers`]).
    pub async fn create_transfer(
        &self,
        transfer: NewTransfer,
    ) -> Result<TransferOutcome, ClientError> {
        check_memo(0, &transfer)?;
        if transfer.flags.has(TransferFlags::LINKED) {
            return Err(ClientError::Invalid(
                "a single transfer cannot be linked: send the chain with create_transfers".into(),
            ));
        }
        let (reply, outcome) = oneshot::channel();
        self.inner
            .submissions
            .send(Submission { transfer, reply })
            .await
            .map_err(|_| ClientError::Closed)?;
        outcome.await.map_err(|_| ClientError::Closed)?
    }

    /// Looks up accounts; the ones found, in request order (match them by id).
    pub async fn lookup_accounts(&self, ids: Vec<AccountId>) -> Result<Vec<Account>, ClientError> {
        let mut found = Vec::new();
        for range in chunk_ranges(&vec![false; ids.len()], BATCH_EVENTS_MAX)? {
            let chunk = &ids[range];
            let request = encode(&LookupAccountsRequest::new(chunk))?;
            let part = self
                .inner
                .core
                .exchange(&request, None, |frame| {
                    let response: LookupAccountsResponse =
                        frame.decode_body().map_err(|e| e.to_string())?;
                    check_found(response.accounts.len(), chunk.len())?;
                    response.to_accounts().map_err(|e| e.to_string())
                })
                .await?;
            found.extend(part);
        }
        Ok(found)
    }

    /// Looks up transfers; the ones found, in request order (match them by id).
    pub async fn lookup_transfers(
        &self,
        ids: Vec<TransferId>,
    ) -> Result<Vec<Transfer>, ClientError> {
        let mut found = Vec::new();
        for range in chunk_ranges(&vec![false; ids.len()], BATCH_EVENTS_MAX)? {
            let chunk = &ids[range];
            let request = encode(&LookupTransfersRequest::new(chunk))?;
            let part = self
                .inner
                .core
                .exchange(&request, None, |frame| {
                    let response: LookupTransfersResponse =
                        frame.decode_body().map_err(|e| e.to_string())?;
                    check_found(response.transfers.len(), chunk.len())?;
                    response.to_transfers().map_err(|e| e.to_string())
                })
                .await?;
            found.extend(part);
        }
        Ok(found)
    }

    /// One page of an account's history, with the balances after each entry.
    pub async fn account_history(&self, query: HistoryQuery) -> Result<HistoryPage, ClientError> {
        if query.limit as usize > HISTORY_ENTRIES_MAX {
            return Err(ClientError::Invalid(format!(
                "history limit {} exceeds {HISTORY_ENTRIES_MAX}",
                query.limit
            )));
        }
        if let (Some(min), Some(max)) = (query.time_min, query.time_max) {
            check_window(min.0, max.0)?;
        }
        let request = encode(&AccountHistoryRequest::from(&query))?;
        self.inner
            .core
            .exchange(&request, None, |frame| {
                let response: AccountHistoryResponse =
                    frame.decode_body().map_err(|e| e.to_string())?;
                if query.limit > 0 && response.entries.len() > query.limit as usize {
                    return Err(format!(
                        "{} history entries for a limit of {}",
                        response.entries.len(),
                        query.limit
                    ));
                }
                response.to_page().map_err(|e| e.to_string())
            })
            .await
    }

    /// An account's posted incoming and outgoing totals over `[time_min, time_max)`.
    pub async fn account_flows(&self, query: FlowsQuery) -> Result<Flows, ClientError> {
        check_window(query.time_min.0, query.time_max.0)?;
        let request = encode(&AccountFlowsRequest::from(&query))?;
        self.inner
            .core
            .exchange(&request, None, |frame| {
                let response: AccountFlowsResponse =
                    frame.decode_body().map_err(|e| e.to_string())?;
                response.to_flows().map_err(|e| e.to_string())
            })
            .await
    }

    /// An account's closing balance per hour over `[time_min, time_max)`, at most
    /// [`SERIES_POINTS_MAX`] hours.
    pub async fn balance_series(&self, query: SeriesQuery) -> Result<BalanceSeries, ClientError> {
        let hours = series_hours(query.time_min.0, query.time_max.0)?;
        let request = encode(&BalanceSeriesRequest::from(&query))?;
        self.inner
            .core
            .exchange(&request, None, |frame| {
                let response: BalanceSeriesResponse =
                    frame.decode_body().map_err(|e| e.to_string())?;
                if response.points.len() as u64 > hours {
                    return Err(format!(
                        "{} points for a range of {hours} hours",
                        response.points.len()
                    ));
                }
                let (scale, points) = response.to_points().map_err(|e| e.to_string())?;
                Ok(BalanceSeries { scale, points })
            })
            .await
    }
}

/// Sends one `CreateTransfers` request of at most [`BATCH_EVENTS_MAX`] transfers with the
/// retry policy. `written` fires when the first attempt's frame is on the socket (the batcher
/// waits for it).
pub(crate) async fn create_transfers_once(
    core: &Core,
    transfers: &[NewTransfer],
    written: Option<oneshot::Sender<()>>,
) -> Result<Vec<TransferOutcome>, ClientError> {
    let mut outcomes = send_transfers(core, transfers, written).await?;
    // Events of a partition that did not answer, in a request other partitions answered,
    // come back `TimedOut` (indeterminate). Resend them, whole chains at a time, with their
    // ids (a retry answers the original outcome), until they are definite or the retry
    // deadline has passed; what is left stays `TimedOut`.
    let give_up = tokio::time::Instant::now() + core.options.retry_deadline;
    let mut attempt = 1;
    loop {
        let pending = indeterminate_chains(transfers, &outcomes);
        let pause = backoff(core.options.retry_backoff, attempt);
        if pending.is_empty() || tokio::time::Instant::now() + pause >= give_up {
            return Ok(outcomes);
        }
        attempt += 1;
        tokio::time::sleep(pause).await;
        let resend: Vec<NewTransfer> = pending.iter().map(|&i| transfers[i].clone()).collect();
        match send_transfers(core, &resend, None).await {
            Ok(again) => {
                for (&i, outcome) in pending.iter().zip(again) {
                    outcomes[i] = outcome;
                }
            }
            // The resend itself found no definite answer: they stay indeterminate.
            Err(_) => return Ok(outcomes),
        }
    }
}

/// The positions of the events answered `TimedOut`, with every other event of their linked
/// chains (a chain is resent whole), in order.
fn indeterminate_chains(transfers: &[NewTransfer], outcomes: &[TransferOutcome]) -> Vec<usize> {
    let mut pending = Vec::new();
    let mut start = 0;
    for end in 0..transfers.len() {
        if transfers[end].flags.has(TransferFlags::LINKED) && end + 1 < transfers.len() {
            continue;
        }
        if outcomes[start..=end]
            .iter()
            .any(|o| o.result == TransferResult::TimedOut)
        {
            pending.extend(start..=end);
        }
        start = end + 1;
    }
    pending
}

async fn send_transfers(
    core: &Core,
    transfers: &[NewTransfer],
    written: Option<oneshot::Sender<()>>,
) -> Result<Vec<TransferOutcome>, ClientError> {
    let request = encode(&CreateTransfersRequest::new(transfers))?;
    core.exchange(&request, written, |frame| {
        let response: CreateTransfersResponse = frame.decode_body().map_err(|e| e.to_string())?;
        check_count(response.results.len(), transfers.len())?;
        response.to_outcomes().map_err(|e| e.to_string())
    })
    .await
}

impl Core {
    /// Sends `request` until it gets a definite answer or the attempts run out; see the
    /// module documentation for the policy. `decode` turns the response frame into the
    /// result, or says how it breaks the protocol (which counts as a failed attempt).
    pub(crate) async fn exchange<T>(
        &self,
        request: &EncodedRequest,
        mut written: Option<oneshot::Sender<()>>,
        decode: impl Fn(&Frame) -> Result<T, String>,
    ) -> Result<T, ClientError> {
        let expected = request
            .op()
            .response()
            .expect("an encoded request is a request operation");
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| ClientError::Closed)?;
        let attempts = self.options.retries_max;
        let give_up = tokio::time::Instant::now() + self.options.retry_deadline;
        let mut maybe_applied = false;
        let mut refusal: Option<ServerError> = None;
        let mut last = String::from("no attempt made");
        let mut pause = Duration::ZERO;
        let mut redirects = 0u32;
        let mut made = 0;
        for attempt in 1..=attempts {
            if attempt > 1 && tokio::time::Instant::now() + pause >= give_up {
                break;
            }
            made = attempt;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            pause = backoff(self.options.retry_backoff, attempt);
            // Every step of an attempt is bounded, so no attempt can hang.
            let timeout = self.options.request_timeout;
            let connection = match tokio::time::timeout(timeout, self.router.connection()).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(e)) => {
                    last = format!("connect: {e}");
                    continue;
                }
                Err(_) => {
                    last = format!("no connection within {timeout:?}");
                    continue;
                }
            };
            let progress = connection.frames_received();
            let queued = tokio::time::timeout(timeout, connection.send(request, written.take()))
                .await
                .unwrap_or_else(|_| Err(format!("could not queue the request within {timeout:?}")));
            let sent = match queued {
                Ok(sent) => sent,
                Err(e) => {
                    // Not queued, so not sent: this attempt cannot have been applied.
                    last = format!("send to {}: {e}", connection.address());
                    self.router.reset(&connection, &e).await;
                    continue;
                }
            };
            let answer = tokio::time::timeout(self.options.request_timeout, sent.reply).await;
            let frame = match answer {
                Err(_) => {
                    connection.forget(sent.request_id);
                    maybe_applied = true;
                    last = format!(
                        "no answer from {} within {:?}",
                        connection.address(),
                        self.options.request_timeout
                    );
                    if connection.frames_received() == progress {
                        self.router
                            .reset(&connection, "no traffic while a request waited")
                            .await;
                    }
                    continue;
                }
                Ok(Err(_)) => {
                    maybe_applied = true;
                    last = format!("connection to {} lost", connection.address());
                    self.router.reset(&connection, &last).await;
                    pause = Duration::ZERO;
                    continue;
                }
                Ok(Ok(Err(reason))) => {
                    maybe_applied = true;
                    last = format!("connection to {} lost: {reason}", connection.address());
                    self.router.reset(&connection, &last).await;
                    pause = Duration::ZERO;
                    continue;
                }
                Ok(Ok(Ok(frame))) => frame,
            };
            let outcome = if frame.op == Operation::Error {
                frame
                    .decode_body::<ErrorResponse>()
                    .map(|e| Err(e.to_server_error()))
                    .map_err(|e| format!("undecodable error response: {e}"))
            } else if frame.op != expected {
                Err(format!(
                    "{} answered with {}",
                    request.op().name(),
                    frame.op.name()
                ))
            } else {
                decode(&frame).map(Ok)
            };
            let error = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(error)) => error,
                Err(violation) => {
                    // The server broke the protocol: nothing it says on this connection can
                    // be trusted, and the request may have been applied.
                    maybe_applied = true;
                    last = format!(
                        "protocol violation by {}: {violation}",
                        connection.address()
                    );
                    self.router.reset(&connection, &last).await;
                    continue;
                }
            };
            last = format!(
                "{} from {}: {}",
                error.code.name(),
                connection.address(),
                error.message
            );
            match error.code {
                ErrorCode::NotLeader => {
                    // Follow a hint at once the first time; while leadership is moving, two
                    // nodes can point at each other, so later redirects back off.
                    redirects += 1;
                    if error.leader_hint.is_some() && redirects == 1 {
                        pause = Duration::ZERO;
                    }
                    self.router
                        .follow(&connection, error.leader_hint.clone())
                        .await;
                    refusal = Some(error);
                }
                ErrorCode::Unavailable => {
                    // Nothing was applied; this node cannot serve yet: try the others first.
                    self.router.follow(&connection, None).await;
                    refusal = Some(error);
                }
                ErrorCode::Overloaded => {
                    if let Some(ms) = error.retry_after_ms {
                        pause = Duration::from_millis(u64::from(ms)).min(RETRY_AFTER_MAX);
                    }
                    refusal = Some(error);
                }
                ErrorCode::Timeout if error.leader_hint.is_some() => {
                    // A leader that stepped down: the proposal may commit under the new one.
                    maybe_applied = true;
                    redirects += 1;
                    if redirects == 1 {
                        pause = Duration::ZERO;
                    }
                    self.router
                        .follow(&connection, error.leader_hint.clone())
                        .await;
                }
                ErrorCode::Timeout | ErrorCode::Internal => maybe_applied = true,
                _ => return Err(ClientError::Rejected(error)),
            }
        }
        Err(if maybe_applied {
            ClientError::Indeterminate {
                attempts: made,
                last,
            }
        } else if let Some(error) = refusal {
            ClientError::Rejected(error)
        } else {
            ClientError::Connect(last)
        })
    }
}

/// The pause after failed attempt number `attempt` (1-based): `base` doubled per earlier
/// failure, capped at [`RETRY_BACKOFF_MAX`], times a random factor in `[0.5, 1]` so that many
/// clients that failed together do not retry together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(20);
    let pause = base.saturating_mul(1 << doublings).min(RETRY_BACKOFF_MAX);
    pause.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

fn encode<T: crate::wire::Body>(body: &T) -> Result<EncodedRequest, ClientError> {
    EncodedRequest::new(body).map_err(ClientError::Invalid)
}

fn check_count(results: usize, events: usize) -> Result<(), String> {
    if results != events {
        return Err(format!("{results} results for {events} events"));
    }
    Ok(())
}

fn check_found(found: usize, requested: usize) -> Result<(), String> {
    if found > requested {
        return Err(format!("{found} records for {requested} ids"));
    }
    Ok(())
}

fn check_memo(index: usize, transfer: &NewTransfer) -> Result<(), ClientError> {
    if transfer.memo.len() > MEMO_SIZE_MAX {
        return Err(ClientError::Invalid(format!(
            "transfer {index} (id {}): memo of {} bytes exceeds {MEMO_SIZE_MAX}",
            transfer.id,
            transfer.memo.len()
        )));
    }
    Ok(())
}

fn check_window(time_min: u64, time_max: u64) -> Result<(), ClientError> {
    if time_max < time_min {
        return Err(ClientError::Invalid(format!(
            "time_max {time_max} is before time_min {time_min}"
        )));
    }
    Ok(())
}

/// The number of hourly points a series over `[time_min, time_max)` has, checked against
/// [`SERIES_POINTS_MAX`].
fn series_hours(time_min: u64, time_max: u64) -> Result<u64, ClientError> {
    check_window(time_min, time_max)?;
    let start = time_min - time_min % HOUR_NS;
    let hours = (time_max - start).div_ceil(HOUR_NS);
    if hours > SERIES_POINTS_MAX as u64 {
        return Err(ClientError::Invalid(format!(
            "a series of {hours} hours exceeds {SERIES_POINTS_MAX}"
        )));
    }
    Ok(hours)
}

/// Splits `linked.len()` events into consecutive ranges of at most `size_max` events without
/// cutting a linked chain (a run of events flagged linked plus the first unflagged event
/// after them; an open chain at the end runs to the end). Fails if one chain alone exceeds
/// `size_max`.
pub(crate) fn chunk_ranges(
    linked: &[bool],
    size_max: usize,
) -> Result<Vec<Range<usize>>, ClientError> {
    assert!(size_max > 0, "chunks hold at least one event");
    if linked.is_empty() {
        return Ok(Vec::new());
    }
    if linked.len() <= size_max {
        return Ok(std::iter::once(0..linked.len()).collect());
    }
    let mut chunks = Vec::new();
    let mut chunk_start = 0;
    let mut chain_start = 0;
    for (index, &is_linked) in linked.iter().enumerate() {
        let chain_end = index + 1;
        if is_linked && chain_end < linked.len() {
            continue;
        }
        if chain_end - chain_start > size_max {
            return Err(ClientError::Invalid(format!(
                "the linked chain at events {chain_start}..{chain_end} exceeds {size_max} events"
            )));
        }
        if chain_end - chunk_start > size_max {
            chunks.push(chunk_start..chain_start);
            chunk_start = chain_start;
        }
        chain_start = chain_end;
    }
    chunks.push(chunk_start..linked.len());
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn chunks_never_cut_a_chain() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..200 {
            let len = rng.gen_range(1..200);
            let size_max = rng.gen_range(8..40);
            let linked: Vec<bool> = (0..len).map(|_| rng.gen_bool(0.6)).collect();
            let Ok(chunks) = chunk_ranges(&linked, size_max) else {
                // Only legitimate when some chain is longer than the maximum.
                let mut run = 0;
                let mut longest = 0;
                for &l in &linked {
                    run += 1;
                    longest = longest.max(run);
                    if !l {
                        run = 0;
                    }
                }
                assert!(longest > size_max, "refused without a long chain");
                continue;
            };
            let mut next = 0;
            for chunk in &chunks {
                assert_eq!(chunk.start, next, "chunks are consecutive");
                assert!(!chunk.is_empty());
                assert!(chunk.len() <= size_max, "{chunk:?} over {size_max}");
                if chunk.end < len {
                    assert!(!linked[chunk.end - 1], "{chunk:?} ends inside a chain");
                }
                next = chunk.end;
            }
            assert_eq!(next, len, "chunks cover every event");
        }
    }

    #[test]
    fn series_hours_are_bounded() {
        assert_eq!(series_hours(0, HOUR_NS).ok(), Some(1));
        assert_eq!(series_hours(HOUR_NS / 2, HOUR_NS + 1).ok(), Some(2));
        assert_eq!(series_hours(0, 30 * 24 * HOUR_NS).ok(), Some(720));
        assert!(series_hours(0, 8785 * HOUR_NS).is_err());
        assert!(series_hours(5, 4).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(100);
        for attempt in 1..40 {
            let pause = backoff(base, attempt);
            let full = base
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(RETRY_BACKOFF_MAX);
            assert!(pause <= full && pause >= full / 2, "{attempt}: {pause:?}");
        }
    }
}
