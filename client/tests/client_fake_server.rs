//! The async client against a scripted fake server.
//!
//! Each test starts one or two fake nodes: tokio `TcpListener`s that speak the wire protocol
//! with the crate's own frame codec. A fake node answers `Hello` (8 partitions) and `Ping`,
//! records every other request it receives (operation and, for `CreateTransfers`, the
//! transfers), and answers it according to a script: a queue of actions consumed one per
//! request, then a default action. Actions: answer normally (every transfer `Ok`, with the
//! transfer id's low 64 bits as its timestamp, so a caller can check it got *its own*
//! outcome), drop the connection, answer `not_leader` with or without a hint, answer
//! `overloaded` with `retry_after_ms`, answer late, answer with one result too many, or answer
//! any other error code.
//!
//! From what the fake nodes record the tests prove: a request is retried with the same ids
//! after a disconnect, a late answer, a wrong result count, `overloaded` and `not_leader`; a
//! `not_leader` hint is followed and then kept; exhausted retries are `Indeterminate` (not
//! `Rejected`) whenever an attempt may have been applied; `malformed` is final; concurrent
//! `create_transfer` calls are coalesced into fewer frames than calls, each caller receiving
//! its own outcome; linked chains are never split or interleaved; `account_id_beside` stays in
//! its account's partition; invalid input never reaches the wire. Nothing waits on a timer for
//! luck: every test awaits the client's answer, and time only enters through the client's own
//! request timeout.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rust_decimal::Decimal;
use tally_client::wire::messages::*;
use tally_client::wire::{encode_body, partition_of, Body, Frame, FrameDecoder, Operation};
use tally_client::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PARTITIONS: u32 = 8;

#[derive(Clone, Debug)]
enum Action {
    Answer,
    Drop,
    NotLeader(Option<String>),
    Overloaded(u32),
    Delay(Duration),
    WrongCount,
    Error(ErrorCode),
    /// Answer, but with result `TimedOut` (a partition that did not answer) for these ids.
    TimedOutFor(Vec<u128>),
}

struct Recorded {
    op: Operation,
    transfers: Vec<NewTransfer>,
}

struct State {
    script: VecDeque<Action>,
    default: Action,
    requests: Vec<Recorded>,
    connections: usize,
}

#[derive(Clone)]
struct FakeNode {
    address: String,
    state: Arc<Mutex<State>>,
    /// Answers nothing at all, not even `Hello` or `Ping` (a paused process: its kernel
    /// still accepts connections).
    silent: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeNode {
    async fn start(default: Action) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local addr").to_string();
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            default,
            requests: Vec::new(),
            connections: 0,
        }));
        let node = FakeNode {
            address,
            state,
            silent: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let server = node.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                server.state.lock().expect("lock").connections += 1;
                tokio::spawn(server.clone().serve(stream));
            }
        });
        node
    }

    fn pause(&self) {
        self.silent
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn script(&self, actions: impl IntoIterator<Item = Action>) {
        self.state.lock().expect("lock").script.extend(actions);
    }

    fn count(&self, op: Operation) -> usize {
        let state = self.state.lock().expect("lock");
        state.requests.iter().filter(|r| r.op == op).count()
    }

    /// Every request but `Hello` and `Ping`.
    fn data_requests(&self) -> usize {
        self.state.lock().expect("lock").requests.len()
    }

    /// The transfers of each `CreateTransfers` frame received, in arrival order.
    fn transfer_frames(&self) -> Vec<Vec<NewTransfer>> {
        let state = self.state.lock().expect("lock");
        state
            .requests
            .iter()
            .filter(|r| r.op == Operation::CreateTransfers)
            .map(|r| r.transfers.clone())
            .collect()
    }

    fn connections(&self) -> usize {
        self.state.lock().expect("lock").connections
    }

    async fn serve(self, stream: TcpStream) {
        let (mut read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if write.write_all(&frame).await.is_err() {
                    break;
                }
            }
        });
        let mut buf = BytesMut::new();
        let mut decoder = FrameDecoder::new();
        loop {
            while let Some(frame) = decoder.decode(&mut buf).expect("client sends valid frames") {
                if !self.handle(frame, &tx) {
                    return; // Dropping the sender closes the writer: the connection ends.
                }
            }
            match read.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    /// Answers one frame; `false` means drop the connection.
    fn handle(&self, frame: Frame, tx: &mpsc::UnboundedSender<Bytes>) -> bool {
        if self.silent.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let id = frame.request_id;
        match frame.op {
            Operation::Hello => {
                let response = HelloResponse {
                    node_id: 1,
                    partition_count: PARTITIONS,
                    leaders: Vec::new(),
                    server_version: "fake".into(),
                    ..HelloResponse::default()
                };
                let _ = tx.send(encode(id, &response));
                return true;
            }
            Operation::Ping => {
                let _ = tx.send(encode(id, &PingResponse {}));
                return true;
            }
            _ => {}
        }
        let transfers = if frame.op == Operation::CreateTransfers {
            let request: CreateTransfersRequest = frame.decode_body().expect("valid body");
            request.to_transfers().expect("valid transfers")
        } else {
            Vec::new()
        };
        let action = {
            let mut state = self.state.lock().expect("lock");
            state.requests.push(Recorded {
                op: frame.op,
                transfers: transfers.clone(),
            });
            let default = state.default.clone();
            state.script.pop_front().unwrap_or(default)
        };
        let error = |code: ErrorCode, hint: Option<String>, retry_after_ms: u32| {
            let body = ErrorResponse {
                code: code.code(),
                message: "scripted".into(),
                leader_hint: hint.unwrap_or_default(),
                retry_after_ms,
            };
            encode(id, &body)
        };
        match action {
            Action::Answer => {
                let _ = tx.send(answer(&frame, &transfers, 0));
            }
            Action::Drop => return false,
            Action::NotLeader(hint) => {
                let _ = tx.send(error(ErrorCode::NotLeader, hint, 0));
            }
            Action::Overloaded(ms) => {
                let _ = tx.send(error(ErrorCode::Overloaded, None, ms));
            }
            Action::Error(code) => {
                let _ = tx.send(error(code, None, 0));
            }
            Action::WrongCount => {
                let _ = tx.send(answer(&frame, &transfers, 1));
            }
            Action::TimedOutFor(ids) => {
                let outcomes: Vec<TransferOutcome> = transfers
                    .iter()
                    .map(|t| TransferOutcome {
                        result: if ids.contains(&t.id.0) {
                            TransferResult::TimedOut
                        } else {
                            TransferResult::Ok
                        },
                        ..ok_outcome(t)
                    })
                    .collect();
                let _ = tx.send(encode(id, &CreateTransfersResponse::new(&outcomes)));
            }
            Action::Delay(delay) => {
                let response = answer(&frame, &transfers, 0);
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(response);
                });
            }
        }
        true
    }
}

fn encode<T: Body>(request_id: u64, body: &T) -> Bytes {
    let mut out = BytesMut::new();
    encode_body(request_id, body, &mut out).expect("encode");
    out.freeze()
}

/// The normal response to `frame`, with `extra` results more than events.
fn answer(frame: &Frame, transfers: &[NewTransfer], extra: usize) -> Bytes {
    let id = frame.request_id;
    match frame.op {
        Operation::CreateTransfers => {
            let mut outcomes: Vec<TransferOutcome> = transfers.iter().map(ok_outcome).collect();
            for _ in 0..extra {
                outcomes.push(ok_outcome(&transfers[0]));
            }
            encode(id, &CreateTransfersResponse::new(&outcomes))
        }
        Operation::CreateAccounts => {
            let request: CreateAccountsRequest = frame.decode_body().expect("valid body");
            let results = vec![AccountResult::Ok; request.accounts.len() + extra];
            encode(id, &CreateAccountsResponse::new(&results))
        }
        Operation::CreateLedgers => {
            let request: CreateLedgersRequest = frame.decode_body().expect("valid body");
            let results = vec![LedgerResult::Ok; request.ledgers.len() + extra];
            encode(id, &CreateLedgersResponse::new(&results))
        }
        Operation::LookupAccounts => encode(id, &LookupAccountsResponse::new(&[])),
        Operation::LookupTransfers => encode(id, &LookupTransfersResponse::new(&[])),
        Operation::AccountHistory => encode(
            id,
            &AccountHistoryResponse {
                scale: 0,
                entries: Vec::new(),
                next_cursor: None,
            },
        ),
        Operation::AccountFlows => encode(id, &AccountFlowsResponse::default()),
        Operation::BalanceSeries => encode(id, &BalanceSeriesResponse::new(0, &[])),
        other => panic!("unexpected request {other:?}"),
    }
}

fn ok_outcome(transfer: &NewTransfer) -> TransferOutcome {
    TransferOutcome {
        result: TransferResult::Ok,
        timestamp: Timestamp(transfer.id.0 as u64),
        debit_balances: Balances::default(),
        credit_balances: Balances::default(),
    }
}

fn transfer(id: u128) -> NewTransfer {
    NewTransfer::plain(
        TransferId(id),
        AccountId(1),
        AccountId(2),
        Decimal::new(5, 0),
        LedgerId(1),
    )
}

fn ids_of(transfers: &[NewTransfer]) -> Vec<u128> {
    transfers.iter().map(|t| t.id.0).collect()
}

fn fast_options() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(300),
        retries_max: 4,
        retry_backoff: Duration::from_millis(1),
        ..ClientOptions::default()
    }
}

async fn connect(nodes: &[&FakeNode], options: ClientOptions) -> Client {
    let addresses: Vec<String> = nodes.iter().map(|n| n.address.clone()).collect();
    Client::connect(&addresses, options).await.expect("connect")
}

#[tokio::test]
async fn a_disconnect_is_retried_with_the_same_ids() {
    let node = FakeNode::start(Action::Answer).await;
    node.script([Action::Drop]);
    let client = connect(&[&node], fast_options()).await;
    let batch = vec![transfer(11), transfer(12), transfer(13)];
    let outcomes = client
        .create_transfers(batch.clone())
        .await
        .expect("retried");
    let stamps: Vec<u64> = outcomes.iter().map(|o| o.timestamp.0).collect();
    assert_eq!(stamps, [11, 12, 13]);
    let frames = node.transfer_frames();
    assert_eq!(frames.len(), 2, "one dropped attempt, one answered");
    assert_eq!(frames[0], batch);
    assert_eq!(
        frames[1], batch,
        "the retry carries the same transfers and ids"
    );
    assert_eq!(node.connections(), 2, "the client reconnected");
}

#[tokio::test]
async fn a_not_leader_hint_is_followed_and_kept() {
    let leader = FakeNode::start(Action::Answer).await;
    let follower = FakeNode::start(Action::NotLeader(Some(leader.address.clone()))).await;
    let client = connect(&[&follower], fast_options()).await;
    let outcome = client
        .create_transfer(transfer(21))
        .await
        .expect("followed");
    assert_eq!(outcome.timestamp.0, 21);
    assert_eq!(ids_of(&follower.transfer_frames().concat()), [21]);
    assert_eq!(ids_of(&leader.transfer_frames().concat()), [21]);
    // Later requests go straight to the leader.
    client.create_transfer(transfer(22)).await.expect("ok");
    client.ping().await.expect("ping");
    assert_eq!(follower.count(Operation::CreateTransfers), 1);
    assert_eq!(ids_of(&leader.transfer_frames().concat()), [21, 22]);
}

/// A paused leader: the client finds its connection dead, and does not dial it again when a
/// follower, not knowing yet, names it as the leader (it used to, and waited out the hello
/// timeout there, for as long as the election took).
#[tokio::test]
async fn a_paused_leader_named_by_a_follower_is_not_dialled_again() {
    let paused = FakeNode::start(Action::Answer).await;
    let follower = FakeNode::start(Action::NotLeader(Some(paused.address.clone()))).await;
    let leader = FakeNode::start(Action::Answer).await;
    let options = ClientOptions {
        liveness_timeout: Duration::from_millis(200),
        retry_backoff: Duration::from_millis(1),
        ..ClientOptions::default()
    };
    let client = connect(&[&paused, &follower, &leader], options).await;
    paused.pause();
    let outcome = client
        .create_transfer(transfer(31))
        .await
        .expect("served by the leader");
    assert_eq!(outcome.timestamp.0, 31);
    assert_eq!(follower.count(Operation::CreateTransfers), 1);
    assert_eq!(ids_of(&leader.transfer_frames().concat()), [31]);
    assert_eq!(paused.connections(), 1, "the paused node was dialled again");
}

#[tokio::test]
async fn not_leader_without_a_hint_tries_the_other_addresses() {
    let follower = FakeNode::start(Action::NotLeader(None)).await;
    let leader = FakeNode::start(Action::Answer).await;
    let client = connect(&[&follower, &leader], fast_options()).await;
    let results = client
        .create_accounts(vec![NewAccount {
            id: AccountId(5),
            ledger: LedgerId(1),
            code: 1,
            flags: AccountFlags(0),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        }])
        .await
        .expect("found the leader");
    assert_eq!(results, [AccountResult::Ok]);
    assert_eq!(follower.count(Operation::CreateAccounts), 1);
    assert_eq!(leader.count(Operation::CreateAccounts), 1);
}

#[tokio::test]
async fn exhausted_retries_are_indeterminate_not_rejected() {
    for default in [
        Action::Drop,
        Action::Delay(Duration::from_secs(30)),
        Action::Error(ErrorCode::Timeout),
        Action::WrongCount,
    ] {
        let node = FakeNode::start(default.clone()).await;
        let options = ClientOptions {
            retries_max: 3,
            request_timeout: Duration::from_millis(150),
            ..fast_options()
        };
        let client = connect(&[&node], options).await;
        let error = client
            .create_transfers(vec![transfer(31), transfer(32)])
            .await
            .expect_err("never answered");
        match &error {
            ClientError::Indeterminate { attempts, .. } => assert_eq!(*attempts, 3),
            other => panic!("{default:?}: expected indeterminate, got {other:?}"),
        }
        assert!(!error.is_definite());
        let frames = node.transfer_frames();
        assert_eq!(frames.len(), 3, "{default:?}: one frame per attempt");
        assert!(frames.iter().all(|f| ids_of(f) == [31, 32]), "same ids");
    }
}

#[tokio::test]
async fn a_late_answer_or_a_wrong_count_is_retried() {
    for first in [Action::Delay(Duration::from_secs(30)), Action::WrongCount] {
        let node = FakeNode::start(Action::Answer).await;
        node.script([first.clone()]);
        let client = connect(&[&node], fast_options()).await;
        let outcomes = client
            .create_transfers(vec![transfer(41)])
            .await
            .expect("second attempt answers");
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].timestamp.0, 41);
        let frames = node.transfer_frames();
        assert_eq!(frames.len(), 2, "{first:?}");
        assert_eq!(frames[0], frames[1]);
        // Neither connection can be trusted after this, so the client replaced it.
        assert_eq!(node.connections(), 2, "{first:?}");
    }
}

#[tokio::test]
async fn overloaded_is_retried_after_the_given_pause() {
    let node = FakeNode::start(Action::Answer).await;
    node.script([Action::Overloaded(40), Action::Overloaded(40)]);
    let client = connect(&[&node], fast_options()).await;
    let start = Instant::now();
    client
        .create_transfer(transfer(51))
        .await
        .expect("third attempt");
    assert!(
        start.elapsed() >= Duration::from_millis(80),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(node.count(Operation::CreateTransfers), 3);
    assert_eq!(
        node.connections(),
        1,
        "overload does not cost the connection"
    );

    // Overloaded on every attempt: definitely not applied, so rejected, not indeterminate.
    let busy = FakeNode::start(Action::Overloaded(1)).await;
    let client = connect(&[&busy], fast_options()).await;
    match client.create_transfer(transfer(52)).await {
        Err(ClientError::Rejected(e)) => assert_eq!(e.code, ErrorCode::Overloaded),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(busy.count(Operation::CreateTransfers), 4);
}

#[tokio::test]
async fn malformed_is_final() {
    let node = FakeNode::start(Action::Error(ErrorCode::Malformed)).await;
    let client = connect(&[&node], fast_options()).await;
    match client.create_transfer(transfer(61)).await {
        Err(ClientError::Rejected(e)) => assert_eq!(e.code, ErrorCode::Malformed),
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(node.count(Operation::CreateTransfers), 1, "not retried");
}

#[tokio::test]
async fn connect_fails_cleanly_without_a_node() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr").to_string();
    drop(listener);
    match Client::connect(&[address], fast_options()).await {
        Err(ClientError::Connect(message)) => assert!(!message.is_empty()),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

/// On the current-thread runtime every spawned call queues its transfer before the batcher
/// runs again, so the calls must share frames.
#[tokio::test]
async fn concurrent_single_transfers_are_coalesced() {
    let node = FakeNode::start(Action::Answer).await;
    let client = connect(&[&node], fast_options()).await;
    let calls = 300u128;
    let mut handles = Vec::new();
    for id in 1..=calls {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            let outcome = client.create_transfer(transfer(1000 + id)).await;
            (id, outcome)
        }));
    }
    for handle in handles {
        let (id, outcome) = handle.await.expect("task");
        let outcome = outcome.expect("answered");
        assert_eq!(
            outcome.timestamp.0 as u128,
            1000 + id,
            "each caller gets its own"
        );
    }
    let frames = node.transfer_frames();
    assert!(
        (frames.len() as u128) * 10 <= calls,
        "{} frames for {calls} calls",
        frames.len()
    );
    let ids: BTreeSet<u128> = frames.iter().flat_map(|f| ids_of(f)).collect();
    assert_eq!(ids.len() as u128, calls, "every transfer sent exactly once");
    assert_eq!(frames.iter().map(Vec::len).sum::<usize>() as u128, calls);
}

#[tokio::test]
async fn batches_respect_batch_size_max() {
    let node = FakeNode::start(Action::Answer).await;
    let options = ClientOptions {
        batch_size_max: 16,
        ..fast_options()
    };
    let client = connect(&[&node], options).await;
    let mut handles = Vec::new();
    for id in 1..=100u128 {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            client.create_transfer(transfer(id)).await
        }));
    }
    for handle in handles {
        handle.await.expect("task").expect("answered");
    }
    let frames = node.transfer_frames();
    assert!(
        frames.iter().all(|f| f.len() <= 16),
        "{:?}",
        frames.iter().map(Vec::len)
    );
    assert!(frames.len() >= 100 / 16);
}

fn chain(chain_id: u64, length: usize, first_id: u128) -> Vec<NewTransfer> {
    (0..length)
        .map(|i| {
            let mut t = transfer(first_id + i as u128);
            t.user_data_64 = chain_id;
            if i + 1 < length {
                t.flags = TransferFlags(TransferFlags::LINKED);
            }
            t
        })
        .collect()
}

#[tokio::test]
async fn a_large_vector_is_split_only_between_chains() {
    let node = FakeNode::start(Action::Answer).await;
    let client = connect(&[&node], fast_options()).await;
    let mut transfers = Vec::new();
    for c in 0..1171u64 {
        transfers.extend(chain(c + 1, 7, transfers.len() as u128 + 1));
    }
    assert_eq!(transfers.len(), 8197);
    let outcomes = client
        .create_transfers(transfers.clone())
        .await
        .expect("sent");
    assert_eq!(outcomes.len(), transfers.len());
    let frames = node.transfer_frames();
    assert_eq!(frames.len(), 2);
    for frame in &frames {
        assert!(frame.len() <= 8190);
        let last = frame.last().expect("non-empty");
        assert!(
            !last.flags.has(TransferFlags::LINKED),
            "a frame ends inside a chain"
        );
    }
    assert_eq!(frames.concat(), transfers, "order preserved");

    // A single chain longer than a batch cannot be sent atomically: refused, never sent.
    let before = node.data_requests();
    let too_long = chain(9, 8191, 1);
    assert!(matches!(
        client.create_transfers(too_long).await,
        Err(ClientError::Invalid(_))
    ));
    assert_eq!(node.data_requests(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_are_never_interleaved_with_coalesced_singles() {
    let node = FakeNode::start(Action::Answer).await;
    let client = connect(&[&node], fast_options()).await;
    let mut handles = Vec::new();
    for i in 0..40u64 {
        let client = client.clone();
        handles.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let first = 100_000 + u128::from(i) * 10;
                let outcomes = client.create_transfers(chain(i + 1, 3, first)).await?;
                assert_eq!(outcomes.len(), 3);
            } else {
                client
                    .create_transfer(transfer(200_000 + u128::from(i)))
                    .await?;
            }
            Ok::<(), ClientError>(())
        }));
    }
    for handle in handles {
        handle.await.expect("task").expect("answered");
    }
    // Every chain arrives whole, contiguous and in order, in exactly one frame.
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for frame in node.transfer_frames() {
        let mut i = 0;
        while i < frame.len() {
            let chain_id = frame[i].user_data_64;
            if chain_id == 0 {
                assert!(
                    !frame[i].flags.has(TransferFlags::LINKED),
                    "singles are never linked"
                );
                i += 1;
                continue;
            }
            let run = &frame[i..(i + 3).min(frame.len())];
            assert_eq!(run.len(), 3, "chain {chain_id} cut at the end of a frame");
            assert!(
                run.iter().all(|t| t.user_data_64 == chain_id),
                "chain interleaved"
            );
            assert!(run[0].flags.has(TransferFlags::LINKED));
            assert!(run[1].flags.has(TransferFlags::LINKED));
            assert!(!run[2].flags.has(TransferFlags::LINKED));
            *seen.entry(chain_id).or_default() += 1;
            i += 3;
        }
    }
    assert_eq!(seen.len(), 20);
    assert!(seen.values().all(|&n| n == 1));
}

#[tokio::test]
async fn account_id_beside_stays_in_the_partition() {
    let node = FakeNode::start(Action::Answer).await;
    let client = connect(&[&node], fast_options()).await;
    assert_eq!(client.partition_count(), PARTITIONS);
    let info = client.cluster_info().await.expect("hello");
    assert_eq!(info.partition_count, PARTITIONS);
    let mut distinct = BTreeSet::new();
    for _ in 0..50 {
        let wallet = AccountId(ids::new_id());
        let inventory = client.account_id_beside(wallet);
        assert_ne!(inventory, wallet);
        assert_eq!(
            partition_of(inventory.0, PARTITIONS),
            partition_of(wallet.0, PARTITIONS)
        );
        distinct.insert(inventory);
    }
    assert_eq!(distinct.len(), 50);
    assert_eq!(node.data_requests(), 0, "id helpers need no round trip");
}

#[tokio::test]
async fn invalid_input_never_reaches_the_wire() {
    let node = FakeNode::start(Action::Answer).await;
    let client = connect(&[&node], fast_options()).await;
    let invalid = |r: Result<(), ClientError>| matches!(r, Err(ClientError::Invalid(_)));

    let mut long_memo = transfer(71);
    long_memo.memo = vec![b'x'; 33];
    assert!(invalid(
        client.create_transfer(long_memo.clone()).await.map(|_| ())
    ));
    assert!(invalid(
        client
            .create_transfers(vec![transfer(72), long_memo])
            .await
            .map(|_| ())
    ));
    let mut linked = transfer(73);
    linked.flags = TransferFlags(TransferFlags::LINKED);
    assert!(invalid(client.create_transfer(linked).await.map(|_| ())));
    let history = HistoryQuery {
        account: AccountId(1),
        cursor: 0,
        limit: 8191,
        direction: Direction::Forward,
        time_min: None,
        time_max: None,
    };
    assert!(invalid(client.account_history(history).await.map(|_| ())));
    let hour = 3_600 * 1_000_000_000u64;
    let series = SeriesQuery {
        account: AccountId(1),
        time_min: Timestamp(0),
        time_max: Timestamp(400 * 24 * hour),
    };
    assert!(invalid(client.balance_series(series).await.map(|_| ())));
    let flows = FlowsQuery {
        account: AccountId(1),
        time_min: Timestamp(10),
        time_max: Timestamp(5),
    };
    assert!(invalid(client.account_flows(flows).await.map(|_| ())));
    assert_eq!(node.data_requests(), 0, "nothing invalid was sent");

    // The valid forms of the same calls do reach the server.
    client.create_transfer(transfer(74)).await.expect("valid");
    let ok_history = HistoryQuery {
        limit: 10,
        ..history
    };
    client.account_history(ok_history).await.expect("valid");
    let ok_series = SeriesQuery {
        time_max: Timestamp(30 * 24 * hour),
        ..series
    };
    client.balance_series(ok_series).await.expect("valid");
    assert_eq!(node.data_requests(), 3);

    let options = ClientOptions {
        batch_size_max: 8191,
        ..fast_options()
    };
    assert!(matches!(
        Client::connect(std::slice::from_ref(&node.address), options).await,
        Err(ClientError::Invalid(_))
    ));
}

/// Events answered `TimedOut` (their partition did not answer) are indeterminate, not
/// outcomes: the client resends just them, whole chains, with the same ids, and returns what
/// the resend answers; one still `TimedOut` at the deadline is `Indeterminate` for a single
/// transfer. (Before, `TimedOut` reached the caller as if it were the transfer's outcome.)
#[tokio::test]
async fn events_answered_timed_out_are_resent_not_reported() {
    let node = FakeNode::start(Action::Answer).await;
    node.script([Action::TimedOutFor(vec![62, 64])]);
    let client = connect(&[&node], fast_options()).await;
    let mut chain = vec![transfer(63), transfer(64)];
    chain[0].flags = TransferFlags(TransferFlags::LINKED);
    let mut transfers = vec![transfer(61), transfer(62)];
    transfers.extend(chain);
    transfers.push(transfer(65));
    let outcomes = client.create_transfers(transfers).await.expect("answered");
    assert!(
        outcomes.iter().all(|o| o.result == TransferResult::Ok),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1].timestamp, Timestamp(62), "its own outcome");
    let frames: Vec<Vec<u128>> = node.transfer_frames().iter().map(|f| ids_of(f)).collect();
    assert_eq!(frames, [vec![61, 62, 63, 64, 65], vec![62, 63, 64]]);

    let never = FakeNode::start(Action::TimedOutFor(vec![71])).await;
    let options = ClientOptions {
        retry_deadline: Duration::from_millis(200),
        ..fast_options()
    };
    let client = connect(&[&never], options).await;
    let error = client
        .create_transfer(transfer(71))
        .await
        .expect_err("never definite");
    assert!(
        matches!(error, ClientError::Indeterminate { .. }),
        "{error:?}"
    );
    assert!(
        never.transfer_frames().len() >= 2,
        "resent before giving up"
    );
}
