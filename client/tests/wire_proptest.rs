//! Property tests: decoders never panic on hostile input, and typed values round-trip.
//!
//! Random byte streams are fed to `FrameDecoder` in random chunk sizes, sometimes behind a
//! valid header so that the body paths are reached too; random bytes are decoded as every
//! body type; single-byte mutations of a valid frame must either be rejected or decode to a
//! frame whose bytes re-encode identically. None of these may panic, and every error must be
//! one of the typed variants. Random typed transfers and accounts must survive
//! typed → prost → frame → prost → typed unchanged.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rust_decimal::Decimal;
use tally_client::wire::messages::*;
use tally_client::wire::*;

/// Decodes `body` as every body type; only the absence of panics is checked.
fn decode_as_every_body(body: &Bytes) {
    fn one<T: Body>(body: &Bytes) {
        if let Ok(message) = decode_body_bytes::<T>(body.clone()) {
            // Whatever decodes must also pass the encoder's validation.
            assert!(message.validate().is_ok());
        }
    }
    one::<HelloRequest>(body);
    one::<HelloResponse>(body);
    one::<PingRequest>(body);
    one::<CreateLedgersRequest>(body);
    one::<CreateLedgersResponse>(body);
    one::<CreateAccountsRequest>(body);
    one::<CreateAccountsResponse>(body);
    one::<CreateTransfersRequest>(body);
    one::<CreateTransfersResponse>(body);
    one::<LookupAccountsRequest>(body);
    one::<LookupAccountsResponse>(body);
    one::<LookupTransfersRequest>(body);
    one::<LookupTransfersResponse>(body);
    one::<AccountHistoryRequest>(body);
    one::<AccountHistoryResponse>(body);
    one::<AccountFlowsRequest>(body);
    one::<AccountFlowsResponse>(body);
    one::<BalanceSeriesRequest>(body);
    one::<BalanceSeriesResponse>(body);
    one::<ErrorResponse>(body);
    // The typed conversions must not panic either.
    if let Ok(request) = decode_body_bytes::<CreateTransfersRequest>(body.clone()) {
        let _ = request.to_transfers();
    }
    if let Ok(request) = decode_body_bytes::<CreateAccountsRequest>(body.clone()) {
        let _ = request.to_accounts();
    }
    if let Ok(response) = decode_body_bytes::<LookupTransfersResponse>(body.clone()) {
        let _ = response.to_transfers();
    }
    if let Ok(response) = decode_body_bytes::<LookupAccountsResponse>(body.clone()) {
        let _ = response.to_accounts();
    }
    if let Ok(response) = decode_body_bytes::<AccountHistoryResponse>(body.clone()) {
        let _ = response.to_page();
    }
}

/// Feeds `stream` to a decoder in chunks of the given sizes (cycled), decoding the body of
/// every frame that comes out, until the decoder fails or the input ends.
fn feed(stream: &[u8], chunk_sizes: &[usize]) {
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::new();
    let mut pos = 0;
    for size in chunk_sizes.iter().cycle() {
        if pos >= stream.len() {
            break;
        }
        let end = (pos + size).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.body.len() <= FRAME_BODY_SIZE_MAX);
                    decode_as_every_body(&frame.body);
                }
                Ok(None) => break,
                Err(_) => {
                    assert_eq!(decoder.decode(&mut buf), Err(FrameError::Poisoned));
                    return;
                }
            }
        }
    }
}

/// A valid header announcing `body.len()` bytes with the right checksums, followed by `body`.
fn framed(op: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out.extend_from_slice(&op.to_le_bytes());
    out.extend_from_slice(&7u64.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let checksum = crc32fast::hash(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (any::<i64>(), any::<u32>(), 0u32..=28).prop_map(|(high, low, scale)| {
        let mantissa = (i128::from(high) << 32) | i128::from(low);
        Decimal::from_i128_with_scale(mantissa, scale)
    })
}

fn new_transfer() -> impl Strategy<Value = NewTransfer> {
    (
        (any::<u128>(), any::<u128>(), any::<u128>(), decimal()),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u128>(),
            any::<u128>(),
        ),
        (
            any::<u32>(),
            any::<u128>(),
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..=MEMO_SIZE_MAX),
        ),
    )
        .prop_map(
            |(
                (id, debit, credit, amount),
                (ledger, code, flags, pending, refund),
                (timeout_s, ud128, ud64, ud32, memo),
            )| NewTransfer {
                id: TransferId(id),
                debit_account: AccountId(debit),
                credit_account: AccountId(credit),
                amount,
                ledger: LedgerId(ledger),
                code,
                flags: TransferFlags(flags),
                pending_id: TransferId(pending),
                refund_of: TransferId(refund),
                timeout_s,
                user_data_128: ud128,
                user_data_64: ud64,
                user_data_32: ud32,
                memo,
            },
        )
}

fn new_account() -> impl Strategy<Value = NewAccount> {
    (
        any::<u128>(),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        proptest::option::of(decimal()),
        any::<u128>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(
            |(id, ledger, code, flags, limit, ud128, ud64, ud32)| NewAccount {
                id: AccountId(id),
                ledger: LedgerId(ledger),
                code,
                flags: AccountFlags(flags),
                limit,
                user_data_128: ud128,
                user_data_64: ud64,
                user_data_32: ud32,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_streams_never_panic(
        stream in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk_sizes in proptest::collection::vec(1usize..64, 1..8),
    ) {
        feed(&stream, &chunk_sizes);
        // Behind a valid magic and version, the later header checks are reached too.
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        with_magic.extend_from_slice(&stream);
        feed(&with_magic, &chunk_sizes);
    }

    #[test]
    fn random_bodies_in_valid_frames_never_panic(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..512), 1..4),
        op_index in any::<prop::sample::Index>(),
        chunk_sizes in proptest::collection::vec(1usize..100, 1..8),
    ) {
        let op = op_index.get(Operation::ALL).as_u16();
        let stream: Vec<u8> = bodies.iter().flat_map(|body| framed(op, body)).collect();
        feed(&stream, &chunk_sizes);
    }

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        decode_as_every_body(&Bytes::from(body));
    }

    #[test]
    fn mutated_frames_are_rejected_or_identical(
        transfers in proptest::collection::vec(new_transfer(), 1..4),
        index in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut buf = BytesMut::new();
        encode_body(3, &CreateTransfersRequest::new(&transfers), &mut buf).unwrap();
        let original = buf.clone();
        let index = index.index(buf.len());
        buf[index] = byte;
        match FrameDecoder::new().decode(&mut buf) {
            Ok(Some(_)) => prop_assert_eq!(original[index], byte, "corruption accepted"),
            Ok(None) => prop_assert!(false, "a whole frame must decode or fail"),
            Err(_) => prop_assert_ne!(original[index], byte),
        }
    }

    #[test]
    fn typed_values_round_trip(
        transfers in proptest::collection::vec(new_transfer(), 0..16),
        accounts in proptest::collection::vec(new_account(), 0..16),
        request_id in any::<u64>(),
    ) {
        let mut buf = BytesMut::new();
        encode_body(request_id, &CreateTransfersRequest::new(&transfers), &mut buf).unwrap();
        encode_body(request_id, &CreateAccountsRequest::new(&accounts), &mut buf).unwrap();
        let mut decoder = FrameDecoder::new();
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        prop_assert_eq!(frame.request_id, request_id);
        let decoded = frame.decode_body::<CreateTransfersRequest>().unwrap();
        prop_assert_eq!(decoded.to_transfers().unwrap(), transfers);
        let frame = decoder.decode(&mut buf).unwrap().unwrap();
        let decoded = frame.decode_body::<CreateAccountsRequest>().unwrap();
        prop_assert_eq!(decoded.to_accounts().unwrap(), accounts);
        prop_assert!(buf.is_empty());
    }
}
