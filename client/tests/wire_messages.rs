//! Round trips of every operation's request and response, and the body-level bounds.
//!
//! Each test builds typed values, converts them to prost bodies, frames them with
//! `encode_body`, decodes the frame with `FrameDecoder` and `decode_body`, converts back, and
//! requires equality with the original: so the typed conversions, the prost schema and the
//! frame layer are all exercised together, with values chosen to hit the edge cases (zero and
//! maximal 128-bit values, negative and maximally scaled decimals, a full memo). The second
//! half forges bodies that break one bound each (too many events, a long memo, a 15-byte id,
//! a scale of 29, a code beyond `u16`) and requires the matching error.

use bytes::BytesMut;
use rust_decimal::Decimal;
use tally_client::wire::messages::*;
use tally_client::wire::*;

fn round_trip<T: Body + Clone + PartialEq>(request_id: u64, body: &T) -> T {
    let mut buf = BytesMut::new();
    encode_body(request_id, body, &mut buf).expect("encode");
    let mut decoder = FrameDecoder::new();
    let frame = decoder
        .decode(&mut buf)
        .expect("decode")
        .expect("a whole frame");
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    assert_eq!(frame.op, T::OPERATION);
    assert_eq!(frame.request_id, request_id);
    let decoded: T = frame.decode_body().expect("decode body");
    assert!(decoded == *body, "body changed in the round trip");
    decoded
}

fn balances(seed: u128) -> Balances {
    Balances {
        debits_pending: seed,
        debits_posted: u128::MAX - seed,
        credits_pending: 0,
        credits_posted: seed * 3,
    }
}

fn outcome(result: TransferResult) -> TransferOutcome {
    TransferOutcome {
        result,
        timestamp: Timestamp(1_700_000_000_000_000_000),
        debit_balances: balances(5),
        credit_balances: balances(u128::from(u64::MAX)),
    }
}

fn transfers() -> Vec<NewTransfer> {
    let mut full = NewTransfer::plain(
        TransferId(u128::MAX),
        AccountId(1),
        AccountId(u128::MAX - 1),
        Decimal::from_i128_with_scale((1i128 << 96) - 1, 28),
        LedgerId(u32::MAX),
    );
    full.code = u16::MAX;
    full.flags = TransferFlags(TransferFlags::LINKED | TransferFlags::PENDING);
    full.pending_id = TransferId(7);
    full.refund_of = TransferId(8);
    full.timeout_s = u32::MAX;
    full.user_data_128 = 1 << 127;
    full.user_data_64 = u64::MAX;
    full.user_data_32 = 9;
    full.memo = vec![0xAB; MEMO_SIZE_MAX];
    vec![
        NewTransfer::plain(
            TransferId(1),
            AccountId(2),
            AccountId(3),
            Decimal::new(-12345, 2),
            LedgerId(1),
        ),
        // Every optional field zero or empty: the encoder leaves them out entirely.
        NewTransfer::plain(
            TransferId(0),
            AccountId(0),
            AccountId(0),
            Decimal::ZERO,
            LedgerId(0),
        ),
        full,
    ]
}

#[test]
fn hello_and_ping() {
    let request = HelloRequest {
        client_version: "tally-client 0.1.0".into(),
    };
    round_trip(1, &request);
    let info = ClusterInfo {
        node_id: 3,
        partition_count: 2,
        leaders: vec![
            PartitionLeader {
                partition: PartitionId(0),
                address: Some("10.0.0.1:7400".into()),
            },
            PartitionLeader {
                partition: PartitionId(1),
                address: None,
            },
        ],
        server_version: "tally 0.1.0".into(),
        replicas: vec![ReplicaStatus {
            partition: PartitionId(1),
            term: 7,
            leader: 2,
            last_index: 90,
            commit_index: 88,
            applied_index: 87,
            digest: u128::MAX - 5,
            recovering: true,
            queue_depth: 3,
        }],
        uptime_ms: 12_345,
        stages: vec![StageSummary {
            name: "fsync".into(),
            count: 10,
            total_us: 3_000,
            p50_us: 280,
            p99_us: 900,
            max_us: 1_200,
        }],
        nodes: vec![
            NodeAddress {
                node_id: 1,
                address: Some("10.0.0.1:7400".into()),
            },
            NodeAddress {
                node_id: 2,
                address: None,
            },
        ],
    };
    let response = round_trip(1, &HelloResponse::from(&info));
    assert_eq!(response.to_cluster_info(), info);
    round_trip(u64::MAX, &PingRequest {});
    round_trip(u64::MAX, &PingResponse {});
}

#[test]
fn create_ledgers() {
    let ledgers = vec![
        NewLedger {
            id: LedgerId(1),
            scale: 2,
            code: 978,
        },
        NewLedger {
            id: LedgerId(u32::MAX),
            scale: u8::MAX,
            code: u16::MAX,
        },
    ];
    let request = round_trip(10, &CreateLedgersRequest::new(&ledgers));
    assert_eq!(request.to_ledgers().unwrap(), ledgers);
    let mut results = LedgerResult::KNOWN.to_vec();
    results.push(LedgerResult::Unknown(1000));
    let response = round_trip(10, &CreateLedgersResponse::new(&results));
    assert_eq!(response.to_results(), results);
}

#[test]
fn create_accounts() {
    let accounts = vec![
        NewAccount {
            id: AccountId(u128::MAX),
            ledger: LedgerId(2),
            code: 3,
            flags: AccountFlags(AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            limit: Some(Decimal::new(-5, 1)),
            user_data_128: 1,
            user_data_64: 2,
            user_data_32: 3,
        },
        NewAccount {
            id: AccountId(1),
            ledger: LedgerId(2),
            code: 0,
            flags: AccountFlags(0),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        },
        NewAccount {
            id: AccountId(2),
            ledger: LedgerId(2),
            code: 0,
            flags: AccountFlags(0),
            // A zero limit is still a limit: it must not turn into "none".
            limit: Some(Decimal::ZERO),
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
        },
    ];
    let request = round_trip(11, &CreateAccountsRequest::new(&accounts));
    assert_eq!(request.to_accounts().unwrap(), accounts);
    let mut results = AccountResult::KNOWN.to_vec();
    results.push(AccountResult::Unknown(u32::MAX));
    let response = round_trip(11, &CreateAccountsResponse::new(&results));
    assert_eq!(response.to_results(), results);
}

#[test]
fn create_transfers() {
    let transfers = transfers();
    let request = round_trip(12, &CreateTransfersRequest::new(&transfers));
    assert_eq!(request.to_transfers().unwrap(), transfers);
    let mut outcomes: Vec<_> = TransferResult::KNOWN.iter().map(|r| outcome(*r)).collect();
    outcomes.push(outcome(TransferResult::Unknown(41)));
    let response = round_trip(12, &CreateTransfersResponse::new(&outcomes));
    assert_eq!(response.to_outcomes().unwrap(), outcomes);
}

#[test]
fn lookups() {
    let account_ids = vec![AccountId(0), AccountId(1), AccountId(u128::MAX)];
    let request = round_trip(13, &LookupAccountsRequest::new(&account_ids));
    assert_eq!(request.to_ids().unwrap(), account_ids);
    let accounts = vec![
        Account {
            id: AccountId(1),
            ledger: LedgerId(1),
            scale: 2,
            code: 1,
            flags: AccountFlags(AccountFlags::CREDITS_MUST_NOT_EXCEED_DEBITS),
            limit: Some(0),
            user_data_128: u128::MAX,
            user_data_64: 1,
            user_data_32: 2,
            timestamp: Timestamp(99),
            balances: balances(77),
        },
        Account {
            id: AccountId(2),
            ledger: LedgerId(1),
            scale: 0,
            code: 0,
            flags: AccountFlags(0),
            limit: None,
            user_data_128: 0,
            user_data_64: 0,
            user_data_32: 0,
            timestamp: Timestamp(0),
            balances: Balances::default(),
        },
    ];
    let response = round_trip(13, &LookupAccountsResponse::new(&accounts));
    assert_eq!(response.to_accounts().unwrap(), accounts);

    let transfer_ids = vec![TransferId(5), TransferId(u128::MAX)];
    let request = round_trip(14, &LookupTransfersRequest::new(&transfer_ids));
    assert_eq!(request.to_ids().unwrap(), transfer_ids);
    let transfers = vec![Transfer {
        id: TransferId(5),
        kind: TransferKind::Refund,
        debit_account: AccountId(1),
        credit_account: AccountId(2),
        ledger: LedgerId(1),
        scale: 2,
        amount: u128::MAX,
        reference: TransferId(4),
        timeout_s: 60,
        code: 7,
        flags: TransferFlags(TransferFlags::LINKED),
        user_data_128: 1,
        user_data_64: 2,
        user_data_32: 3,
        memo: b"refund".to_vec(),
        outcome: outcome(TransferResult::Ok),
        hold: HoldStatus::Unknown(9),
        refunded: 10,
    }];
    let response = round_trip(14, &LookupTransfersResponse::new(&transfers));
    assert_eq!(response.to_transfers().unwrap(), transfers);
}

#[test]
fn account_history() {
    let query = HistoryQuery {
        account: AccountId(42),
        cursor: 17,
        limit: HISTORY_ENTRIES_MAX as u32,
        direction: Direction::Backward,
        time_min: Some(Timestamp(0)),
        time_max: None,
    };
    let request = round_trip(15, &AccountHistoryRequest::from(&query));
    assert_eq!(request.to_query().unwrap(), query);
    for next_cursor in [None, Some(0), Some(u64::MAX)] {
        let page = HistoryPage {
            scale: 2,
            entries: vec![HistoryEntry {
                transfer_id: TransferId(9),
                timestamp: Timestamp(10),
                kind: TransferKind::Post,
                is_debit: true,
                counterparty: AccountId(43),
                amount: 500,
                balances: balances(1),
            }],
            next_cursor,
        };
        let response = round_trip(15, &AccountHistoryResponse::from(&page));
        assert_eq!(response.to_page().unwrap(), page);
    }
}

#[test]
fn account_flows_and_balance_series() {
    let query = FlowsQuery {
        account: AccountId(42),
        time_min: Timestamp(1),
        time_max: Timestamp(u64::MAX),
    };
    let request = round_trip(16, &AccountFlowsRequest::from(&query));
    assert_eq!(request.to_query().unwrap(), query);
    let flows = Flows {
        scale: 0,
        debits_total: u128::MAX,
        credits_total: 1,
        debit_count: 2,
        credit_count: 3,
    };
    let response = round_trip(16, &AccountFlowsResponse::from(&flows));
    assert_eq!(response.to_flows().unwrap(), flows);

    let query = SeriesQuery {
        account: AccountId(42),
        time_min: Timestamp(3_600),
        time_max: Timestamp(7_200),
    };
    let request = round_trip(17, &BalanceSeriesRequest::from(&query));
    assert_eq!(request.to_query().unwrap(), query);
    let points: Vec<_> = (0..SERIES_POINTS_MAX as u64)
        .map(|hour| BalancePoint {
            time_start: Timestamp(hour * 3_600_000_000_000),
            balances: balances(u128::from(hour)),
        })
        .collect();
    let response = round_trip(17, &BalanceSeriesResponse::new(4, &points));
    assert_eq!(response.to_points().unwrap(), (4, points));
}

#[test]
fn error_response() {
    for error in [
        ServerError {
            code: ErrorCode::NotLeader,
            message: "not the leader of partition 3".into(),
            leader_hint: Some("10.0.0.2:7400".into()),
            retry_after_ms: None,
        },
        ServerError {
            code: ErrorCode::Overloaded,
            message: String::new(),
            leader_hint: None,
            retry_after_ms: Some(250),
        },
        ServerError {
            code: ErrorCode::Unknown(99),
            message: "from the future".into(),
            leader_hint: None,
            retry_after_ms: None,
        },
    ] {
        let response = round_trip(0, &ErrorResponse::from(&error));
        assert_eq!(response.to_server_error(), error);
    }
}

#[test]
fn full_batch_fits_and_one_more_is_rejected() {
    let mut transfer = transfers().pop().unwrap();
    let batch: Vec<_> = (0..BATCH_EVENTS_MAX as u128)
        .map(|i| {
            transfer.id = TransferId(u128::MAX - i);
            transfer.clone()
        })
        .collect();
    let request = CreateTransfersRequest::new(&batch);
    let mut buf = BytesMut::new();
    encode_body(1, &request, &mut buf).unwrap();
    assert!(
        buf.len() < FRAME_BODY_SIZE_MAX / 4,
        "full batch is {} bytes",
        buf.len()
    );
    round_trip(1, &request);

    let mut too_many = request;
    too_many.transfers.push(too_many.transfers[0].clone());
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_body(1, &too_many, &mut buf),
        Err(FrameError::TooMany {
            count: 8191,
            max: 8190,
            ..
        })
    ));
    // A peer that skips validation is caught by the decoder before prost allocates.
    encode_frame(Operation::CreateTransfers, 1, &too_many, &mut buf).unwrap();
    let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    assert!(matches!(
        frame.decode_body::<CreateTransfersRequest>(),
        Err(FrameError::TooMany {
            count: 8191,
            max: 8190,
            ..
        })
    ));
}

#[test]
fn many_empty_elements_are_rejected_before_decoding() {
    // 1 MiB of empty transfer elements: two bytes each on the wire, hundreds in memory.
    let mut body = Vec::new();
    for _ in 0..(1 << 19) {
        body.extend_from_slice(&[0x0a, 0x00]);
    }
    let error = decode_body_bytes::<CreateTransfersRequest>(body.into()).unwrap_err();
    assert_eq!(
        error,
        FrameError::TooMany {
            what: "transfers",
            count: BATCH_EVENTS_MAX + 1,
            max: BATCH_EVENTS_MAX
        }
    );
    // The same for packed result codes: one byte per element.
    let mut body = vec![0x0a, 0x80, 0x80, 0x04]; // field 1, packed, 65536 bytes
    body.resize(4 + 65536, 0);
    assert!(matches!(
        decode_body_bytes::<CreateAccountsResponse>(body.into()),
        Err(FrameError::TooMany { .. })
    ));
}

#[test]
fn long_memo_is_rejected() {
    let mut transfer = transfers().remove(0);
    transfer.memo = vec![1; MEMO_SIZE_MAX + 1];
    let request = CreateTransfersRequest::new(&[transfer]);
    let mut buf = BytesMut::new();
    assert_eq!(
        encode_body(1, &request, &mut buf),
        Err(FrameError::TooLong {
            what: "transfer.memo",
            size: 33,
            max: 32
        })
    );
    encode_frame(Operation::CreateTransfers, 1, &request, &mut buf).unwrap();
    let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    assert!(matches!(
        frame.decode_body::<CreateTransfersRequest>(),
        Err(FrameError::TooLong { .. })
    ));
    assert!(matches!(
        NewTransfer::try_from(&request.transfers[0]),
        Err(FrameError::TooLong { .. })
    ));
}

#[test]
fn malformed_values_are_rejected_on_conversion() {
    let good = WireNewTransfer::from(&transfers()[0]);

    // 128-bit fields of a wrong length: `messages/fixed.rs`, which decodes them.
    let mut bad = good.clone();
    bad.amount = Some(WireDecimal::new(1, 29));
    assert!(matches!(
        NewTransfer::try_from(&bad),
        Err(FrameError::InvalidField {
            what: "decimal",
            ..
        })
    ));
    // A mantissa beyond Decimal's 96 bits.
    bad.amount = Some(WireDecimal::new(1i128 << 96, 0));
    assert!(NewTransfer::try_from(&bad).is_err());

    let mut bad = good.clone();
    bad.code = 1 << 16;
    assert!(NewTransfer::try_from(&bad).is_err());
    let mut bad = good.clone();
    bad.flags = 1 << 16;
    assert!(NewTransfer::try_from(&bad).is_err());

    let mut bad = WireNewLedger::from(&NewLedger {
        id: LedgerId(1),
        scale: 2,
        code: 3,
    });
    bad.scale = 256;
    assert!(NewLedger::try_from(&bad).is_err());

    // An absent amount is zero, the proto3 default.
    let mut absent = good;
    absent.amount = None;
    assert_eq!(
        NewTransfer::try_from(&absent).unwrap().amount,
        Decimal::ZERO
    );

    let bad_ids = LookupAccountsRequest {
        ids: vec![vec![0u8; 8].into()],
    };
    assert!(bad_ids.to_ids().is_err());

    let mut bad_transfer = WireTransfer::from(&Transfer {
        id: TransferId(1),
        kind: TransferKind::Plain,
        debit_account: AccountId(1),
        credit_account: AccountId(2),
        ledger: LedgerId(1),
        scale: 0,
        amount: 1,
        reference: TransferId(0),
        timeout_s: 0,
        code: 0,
        flags: TransferFlags(0),
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
        memo: Vec::new(),
        outcome: outcome(TransferResult::Ok),
        hold: HoldStatus::NotAHold,
        refunded: 0,
    });
    bad_transfer.outcome = None;
    assert!(matches!(
        Transfer::try_from(&bad_transfer),
        Err(FrameError::InvalidField {
            what: "transfer.outcome",
            ..
        })
    ));

    let mut history = AccountHistoryRequest::from(&HistoryQuery {
        account: AccountId(1),
        cursor: 0,
        limit: 10,
        direction: Direction::Forward,
        time_min: None,
        time_max: None,
    });
    history.direction = 2;
    assert!(history.to_query().is_err());
    history.direction = 0;
    history.limit = HISTORY_ENTRIES_MAX as u32 + 1;
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_body(1, &history, &mut buf),
        Err(FrameError::TooMany { .. })
    ));
}

#[test]
fn body_of_another_operation_is_rejected() {
    let mut buf = BytesMut::new();
    encode_body(5, &PingRequest {}, &mut buf).unwrap();
    let frame = FrameDecoder::new().decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        frame.decode_body::<PingResponse>(),
        Err(FrameError::WrongOperation {
            expected: Operation::PingResponse,
            got: Operation::Ping
        })
    );
}

#[test]
fn zero_is_encoded_as_empty_bytes() {
    assert!(u128_to_bytes(0).is_empty());
    assert_eq!(u128_to_bytes(1).len(), U128_SIZE);
    assert_eq!(u128_from_bytes(&[], "x"), Ok(0));
    assert_eq!(u128_from_bytes(&[0; 16], "x"), Ok(0));
    let mut one = [0u8; 16];
    one[0] = 1;
    assert_eq!(u128_from_bytes(&one, "x"), Ok(1));
    assert_eq!(&u128_to_bytes(0x0102)[..2], &[0x02, 0x01], "little-endian");
}

#[test]
fn operations_pair_requests_with_responses() {
    for op in Operation::ALL {
        assert_eq!(Operation::from_u16(op.as_u16()), Some(*op));
        if let Some(response) = op.response() {
            assert!(op.is_request());
            assert!(!response.is_request());
            assert_eq!(response.as_u16(), op.as_u16() | 0x8000);
        } else {
            assert!(!op.is_request());
        }
    }
    assert_eq!(Operation::from_u16(0), None);
    assert_eq!(Operation::from_u16(12), None);
}

#[test]
fn subscriptions_round_trip_and_refuse_what_they_cannot_mean() {
    let position = Position {
        partition: PartitionId(1),
        index: 42,
        event: 3,
    };
    let filter = StreamFilter {
        ledgers: vec![LedgerId(7)],
        accounts: vec![AccountId(u128::MAX)],
        codes: vec![65535],
    };
    for from in [
        StreamFrom::Start,
        StreamFrom::Now,
        StreamFrom::Time(Timestamp(123)),
        StreamFrom::After(vec![position]),
    ] {
        let request = SubscribeRequest::new(&from, &filter);
        let bytes = prost::Message::encode_to_vec(&request);
        let decoded: SubscribeRequest = prost::Message::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.to_from().unwrap(), from);
        assert_eq!(decoded.to_filter().unwrap(), filter);
    }
    let twice = SubscribeRequest::new(&StreamFrom::After(vec![position, position]), &filter);
    assert!(twice.to_from().is_err(), "two positions of one partition");
    let unknown = SubscribeRequest {
        from: 9,
        ..SubscribeRequest::default()
    };
    assert!(unknown.to_from().is_err());
    let wide = SubscribeRequest {
        codes: vec![65536],
        ..SubscribeRequest::default()
    };
    assert!(wide.to_filter().is_err(), "a code must fit in u16");
    assert_eq!("1:42.3".parse::<Position>(), Ok(position));
    assert_eq!(position.to_string(), "1:42.3");
    assert!("1:42".parse::<Position>().is_err());

    // A change of each kind; one that lacks its part, or of an unknown kind, is refused.
    let ledger = WireChange {
        kind: ChangeKind::Ledger.code(),
        ledger: Some(WireNewLedger {
            id: 7,
            scale: 2,
            code: 1,
        }),
        partition: 1,
        index: 42,
        event: 3,
        timestamp: 99,
        ..WireChange::default()
    };
    let expired = WireChange {
        kind: ChangeKind::HoldExpired.code(),
        transfer_kind: TransferKind::Expired.code(),
        transfer_id: u128_to_bytes(5),
        amount: u128_to_bytes(250),
        debit_account: u128_to_bytes(1),
        credit_account: u128_to_bytes(2),
        ..WireChange::default()
    };
    let response = SubscribeResponse {
        changes: vec![ledger.clone(), expired],
        positions: vec![WirePosition::from(&position)],
        caught_up: true,
        end: None,
    };
    let frame = response.to_frame().unwrap();
    assert_eq!(frame.changes[0].position, position);
    assert_eq!(frame.changes[0].kind(), ChangeKind::Ledger);
    assert_eq!(frame.changes[1].kind(), ChangeKind::HoldExpired);
    assert_eq!(frame.positions, vec![position]);
    let ChangeBody::Transfer(t) = &frame.changes[1].body else {
        panic!("an expiry is a transfer change")
    };
    assert_eq!(
        (t.id, t.amount, t.asked.is_none()),
        (TransferId(5), 250, true)
    );
    for broken in [
        WireChange {
            ledger: None,
            ..ledger.clone()
        },
        WireChange {
            kind: 9,
            ..ledger.clone()
        },
        WireChange {
            kind: ChangeKind::Transfer.code(),
            ..WireChange::default()
        },
    ] {
        assert!(Change::try_from(&broken).is_err(), "{broken:?}");
    }
}
