//! The cursor, the caught-up edge, resuming and rotation as pure functions; then the
//! whole task against a scripted fake node on a loopback socket, which proves that a
//! stream resumes after its cursor on a new connection, delivers each change once, keeps
//! going after a retryable refusal and an end, and stops with one error on `malformed`.

use super::*;
use crate::wire::messages::{HelloResponse, WireChange, WireNewLedger, WireStreamEnd};
use crate::wire::{
    encode_body, encode_frame, ChangeBody, ErrorCode, LedgerId, LedgerResult, NewLedger,
    NodeAddress, PartitionLeader, Timestamp,
};
use crate::ClientOptions;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

fn at(partition: u32, index: u64, event: u32) -> Position {
    Position {
        partition: PartitionId(partition),
        index,
        event,
    }
}

fn change(position: Position) -> Change {
    Change {
        position,
        timestamp: Timestamp(1),
        body: ChangeBody::Ledger {
            ledger: NewLedger {
                id: LedgerId(1),
                scale: 2,
                code: 1,
            },
            result: LedgerResult::Ok,
        },
    }
}

fn frame(changes: &[Position], positions: &[Position], caught_up: bool) -> StreamFrame {
    StreamFrame {
        changes: changes.iter().copied().map(change).collect(),
        positions: positions.to_vec(),
        caught_up,
        end: None,
    }
}

fn delivered(items: &[Streamed]) -> Vec<Position> {
    items
        .iter()
        .filter_map(|i| match i {
            Streamed::Change(c) => Some(c.position),
            Streamed::CaughtUp(_) => None,
        })
        .collect()
}

#[test]
fn replayed_changes_are_dropped_and_the_cursor_only_moves_forward() {
    let mut state = StreamState::default();
    let first = frame(
        &[at(0, 3, 0), at(0, 3, 1), at(1, 7, 0)],
        &[at(0, 3, 1), at(1, 9, 0)],
        false,
    );
    let items = state.absorb(&first, 2).expect("valid frame");
    assert_eq!(delivered(&items), [at(0, 3, 0), at(0, 3, 1), at(1, 7, 0)]);
    // The frame's positions move the cursor past what the filter left out.
    assert_eq!(state.cursor.positions(), [at(0, 3, 1), at(1, 9, 0)]);

    // After a reconnect a node replays from the cursor and a little before it.
    let replay = frame(
        &[at(0, 3, 1), at(0, 4, 0), at(1, 8, 0), at(1, 9, 1)],
        &[at(0, 2, 0), at(1, 9, 1)],
        false,
    );
    let items = state.absorb(&replay, 2).expect("valid frame");
    assert_eq!(delivered(&items), [at(0, 4, 0), at(1, 9, 1)]);
    // A position behind the cursor (a node further behind) does not move it back.
    assert_eq!(state.cursor.positions(), [at(0, 4, 0), at(1, 9, 1)]);
}

#[test]
fn caught_up_is_yielded_on_each_rise_only() {
    let mut state = StreamState::default();
    let rises: Vec<bool> = [true, true, false, false, true, true]
        .iter()
        .map(|&caught_up| {
            let items = state
                .absorb(&frame(&[], &[at(0, 1, 0)], caught_up), 1)
                .expect("valid frame");
            items.iter().any(|i| matches!(i, Streamed::CaughtUp(_)))
        })
        .collect();
    assert_eq!(rises, [true, false, false, false, true, false]);
}

#[test]
fn caught_up_comes_after_the_frames_changes_with_the_cursor() {
    let mut state = StreamState::default();
    let items = state
        .absorb(&frame(&[at(0, 5, 0)], &[at(0, 6, 0)], true), 1)
        .expect("valid frame");
    assert_eq!(
        items.last(),
        Some(&Streamed::CaughtUp(vec![at(0, 6, 0)])),
        "{items:?}"
    );
    assert_eq!(delivered(&items), [at(0, 5, 0)]);
}

#[test]
fn a_partition_outside_the_cluster_breaks_the_protocol_and_changes_nothing() {
    let mut state = StreamState::default();
    assert!(state
        .absorb(&frame(&[at(0, 1, 0)], &[at(2, 1, 0)], true), 2)
        .is_err());
    assert!(state.absorb(&frame(&[at(5, 1, 0)], &[], true), 2).is_err());
    assert_eq!(state, StreamState::default());
}

#[test]
fn the_cursor_starts_at_the_positions_resumed_after() {
    let mut state = StreamState {
        cursor: Cursor::new(&StreamFrom::After(vec![at(0, 10, 2)])),
        caught_up: false,
    };
    let items = state
        .absorb(&frame(&[at(0, 10, 2), at(0, 10, 3)], &[], false), 1)
        .expect("valid frame");
    assert_eq!(delivered(&items), [at(0, 10, 3)]);
}

#[test]
fn resuming_is_after_the_cursor_where_that_is_exact() {
    let empty = Cursor::default();
    let mut partial = Cursor::default();
    partial.advance(&[at(1, 4, 0)]);
    let mut full = partial.clone();
    full.advance(&[at(0, 2, 0)]);
    let after = |c: &Cursor| StreamFrom::After(c.positions());

    assert_eq!(
        resume_from(&StreamFrom::Start, &empty, 2),
        StreamFrom::Start
    );
    assert_eq!(
        resume_from(&StreamFrom::Start, &partial, 2),
        after(&partial)
    );
    let original = StreamFrom::After(vec![at(1, 1, 0)]);
    assert_eq!(resume_from(&original, &partial, 2), after(&partial));
    for original in [StreamFrom::Now, StreamFrom::Time(Timestamp(5))] {
        assert_eq!(resume_from(&original, &empty, 2), original);
        assert_eq!(resume_from(&original, &partial, 2), original);
        assert_eq!(resume_from(&original, &full, 2), after(&full));
    }
}

#[test]
fn nodes_rotate_through_every_reported_address_once() {
    let mut nodes = Nodes::default();
    assert_eq!(nodes.current(), None);
    let node = |node_id, address: &str| NodeAddress {
        node_id,
        address: Some(address.to_owned()),
    };
    let info = ClusterInfo {
        node_id: 2,
        partition_count: 1,
        leaders: vec![PartitionLeader {
            partition: PartitionId(0),
            address: Some("d:1".into()),
        }],
        server_version: String::new(),
        replicas: Vec::new(),
        uptime_ms: 0,
        stages: Vec::new(),
        nodes: vec![
            node(1, "a:1"),
            node(2, "b:1"),
            NodeAddress {
                node_id: 3,
                address: None,
            },
        ],
    };
    nodes.learn(&info);
    nodes.learn(&info);
    assert_eq!(nodes.addresses, ["b:1", "a:1", "d:1"]);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(nodes.current().map(str::to_owned));
        nodes.rotate();
    }
    assert_eq!(
        seen,
        [Some("b:1"), Some("a:1"), Some("d:1"), Some("b:1")].map(|a| a.map(str::to_owned))
    );
}

#[test]
fn bad_subscriptions_are_refused_before_sending() {
    let twice = StreamFrom::After(vec![at(0, 1, 0), at(0, 2, 0)]);
    assert!(matches!(
        validate(&twice, &StreamFilter::default()),
        Err(ClientError::Invalid(_))
    ));
    let wide = StreamFilter {
        codes: vec![1; crate::wire::messages::FILTER_VALUES_MAX + 1],
        ..StreamFilter::default()
    };
    assert!(matches!(
        validate(&StreamFrom::Start, &wide),
        Err(ClientError::Invalid(_))
    ));
    assert!(validate(&StreamFrom::Now, &StreamFilter::default()).is_ok());
}

#[test]
fn backoff_doubles_from_the_minimum_to_the_maximum() {
    for failures in 0..30u32 {
        let full = RESUBSCRIBE_BACKOFF_MIN
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(RESUBSCRIBE_BACKOFF_MAX);
        let pause = backoff(failures);
        assert!(pause <= full && pause >= full / 2, "{failures}: {pause:?}");
    }
    assert_eq!(
        RESUBSCRIBE_BACKOFF_MIN
            .saturating_mul(1 << 6)
            .min(RESUBSCRIBE_BACKOFF_MAX),
        RESUBSCRIBE_BACKOFF_MAX
    );
}

/// How the fake node answers one `Subscribe`.
enum Answer {
    /// These frames, then it closes the connection.
    Frames(Vec<SubscribeResponse>),
    /// An `Error` frame with this code, then it closes the connection.
    Error(ErrorCode),
}

/// A node that answers `Hello` (one partition, itself as the only node) and each
/// `Subscribe` with the next scripted answer, recording the requests; with the script
/// exhausted it holds the connection open and sends nothing.
struct FakeNode {
    address: String,
    requests: Arc<Mutex<Vec<SubscribeRequest>>>,
}

impl FakeNode {
    async fn start(script: Vec<Answer>) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::from(script)));
        let node = FakeNode {
            address: address.clone(),
            requests: requests.clone(),
        };
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (address, requests, script) =
                    (address.clone(), requests.clone(), script.clone());
                tokio::spawn(async move {
                    let mut connection = FrameStream::new(stream);
                    while let Ok(frame) = connection.read().await {
                        let mut out = BytesMut::new();
                        match frame.op {
                            Operation::Hello => {
                                let hello = HelloResponse::from(&info(&address));
                                encode_body(frame.request_id, &hello, &mut out).expect("encode");
                            }
                            Operation::Subscribe => {
                                let request = frame.decode_body().expect("a valid request");
                                requests.lock().expect("lock").push(request);
                                let answer = script.lock().expect("lock").pop_front();
                                match answer {
                                    Some(Answer::Frames(frames)) => {
                                        for body in &frames {
                                            encode_body(frame.request_id, body, &mut out)
                                                .expect("encode");
                                        }
                                    }
                                    Some(Answer::Error(code)) => {
                                        let error = ErrorResponse {
                                            code: code.code(),
                                            message: "scripted".into(),
                                            ..ErrorResponse::default()
                                        };
                                        encode_frame(
                                            Operation::Error,
                                            frame.request_id,
                                            &error,
                                            &mut out,
                                        )
                                        .expect("encode");
                                    }
                                    None => {
                                        std::future::pending::<()>().await;
                                    }
                                }
                                let _ = connection.stream.write_all(&out).await;
                                return;
                            }
                            other => panic!("unexpected {other:?}"),
                        }
                        let _ = connection.stream.write_all(&out).await;
                    }
                });
            }
        });
        node
    }

    fn requests(&self) -> Vec<StreamFrom> {
        let requests = self.requests.lock().expect("lock");
        requests
            .iter()
            .map(|r| r.to_from().expect("valid"))
            .collect()
    }
}

fn info(address: &str) -> ClusterInfo {
    ClusterInfo {
        node_id: 1,
        partition_count: 1,
        leaders: Vec::new(),
        server_version: String::new(),
        replicas: Vec::new(),
        uptime_ms: 0,
        stages: Vec::new(),
        nodes: vec![NodeAddress {
            node_id: 1,
            address: Some(address.to_owned()),
        }],
    }
}

/// A stream frame of ledger changes at `indexes` of partition 0, standing at `stands`.
fn wire_frame(indexes: &[u64], stands: u64, caught_up: bool) -> SubscribeResponse {
    let ledger = WireNewLedger::from(&NewLedger {
        id: LedgerId(1),
        scale: 2,
        code: 1,
    });
    SubscribeResponse {
        changes: indexes
            .iter()
            .map(|&index| WireChange {
                index,
                timestamp: index,
                kind: crate::wire::ChangeKind::Ledger.code(),
                ledger: Some(ledger.clone()),
                ..WireChange::default()
            })
            .collect(),
        positions: vec![(&at(0, stands, 0)).into()],
        caught_up,
        end: None,
    }
}

async fn subscribed(node: &FakeNode) -> Subscription {
    let client = Client::connect(
        std::slice::from_ref(&node.address),
        ClientOptions::default(),
    )
    .await
    .expect("connect");
    client.subscribe(StreamFrom::Start, StreamFilter::default())
}

/// The next `count` items, failing the test after 10 s.
async fn next_items(subscription: &mut Subscription, count: usize) -> Vec<Item> {
    let mut items = Vec::new();
    while items.len() < count {
        let item = tokio::time::timeout(Duration::from_secs(10), subscription.recv())
            .await
            .expect("an item within 10 s")
            .expect("the stream goes on");
        items.push(item);
    }
    items
}

fn change_at(index: u64) -> Item {
    Ok(Streamed::Change(change_with_time(at(0, index, 0))))
}

fn change_with_time(position: Position) -> Change {
    Change {
        timestamp: Timestamp(position.index),
        ..change(position)
    }
}

#[tokio::test]
async fn a_stream_resumes_after_its_cursor_and_delivers_each_change_once() {
    let node = FakeNode::start(vec![
        Answer::Frames(vec![wire_frame(&[1, 2], 2, false)]),
        Answer::Frames(vec![wire_frame(&[2, 3], 3, true), wire_frame(&[], 4, true)]),
    ])
    .await;
    let mut subscription = subscribed(&node).await;
    let items = next_items(&mut subscription, 4).await;
    assert_eq!(
        items,
        [
            change_at(1),
            change_at(2),
            change_at(3),
            Ok(Streamed::CaughtUp(vec![at(0, 3, 0)]))
        ]
    );
    // The second connection asked for what follows the last change delivered.
    assert_eq!(
        node.requests()[..2],
        [StreamFrom::Start, StreamFrom::After(vec![at(0, 2, 0)])]
    );
}

#[tokio::test]
async fn a_retryable_refusal_and_a_stream_end_are_resumed() {
    let mut ended = wire_frame(&[1], 1, true);
    ended.end = Some(WireStreamEnd {
        result: StreamEnd::TooSlow.code(),
        message: "scripted".into(),
    });
    let node = FakeNode::start(vec![
        Answer::Error(ErrorCode::Unavailable),
        Answer::Frames(vec![ended]),
        Answer::Frames(vec![wire_frame(&[2], 2, true)]),
    ])
    .await;
    let mut subscription = subscribed(&node).await;
    let items = next_items(&mut subscription, 3).await;
    // Still caught up across the reconnect: no second `CaughtUp`.
    assert_eq!(
        items,
        [
            change_at(1),
            Ok(Streamed::CaughtUp(vec![at(0, 1, 0)])),
            change_at(2)
        ]
    );
    assert_eq!(
        node.requests()[..3],
        [
            StreamFrom::Start,
            StreamFrom::Start,
            StreamFrom::After(vec![at(0, 1, 0)])
        ]
    );
}

#[tokio::test]
async fn malformed_ends_the_stream_with_one_error() {
    let node = FakeNode::start(vec![Answer::Error(ErrorCode::Malformed)]).await;
    let mut subscription = subscribed(&node).await;
    match next_items(&mut subscription, 1).await.pop() {
        Some(Err(ClientError::Rejected(e))) => assert_eq!(e.code, ErrorCode::Malformed),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(subscription.recv().await.is_none(), "the stream ended");
    assert_eq!(node.requests().len(), 1, "not retried");
}
