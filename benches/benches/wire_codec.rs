//! What a batch of 8189 transfers costs to encode and decode on the wire, each way: the
//! client encoding a `CreateTransfers` request and the server decoding it into events, the
//! server encoding the response (every outcome with both accounts' balances) and the client
//! decoding it. These run once per batch on each side of `tally bench`, in series with the
//! state machine, so they bound what a single client can reach.
//!
//! Transfers are realistic: random 128-bit ids and account ids, amounts of 1 to 6 digits,
//! user data on half of them; outcomes carry non-zero balances of every kind. Seeded.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use tally_client::wire::messages::{CreateTransfersRequest, CreateTransfersResponse};
use tally_client::wire::{decode_frame, encode_body, BATCH_EVENTS_MAX};
use tally_client::{
    AccountId, Balances, LedgerId, NewTransfer, Timestamp, TransferId, TransferOutcome,
    TransferResult,
};

fn transfers(rng: &mut ChaCha8Rng) -> Vec<NewTransfer> {
    (0..BATCH_EVENTS_MAX)
        .map(|_| {
            let mut t = NewTransfer::plain(
                TransferId(rng.gen()),
                AccountId(rng.gen()),
                AccountId(rng.gen()),
                Decimal::from(rng.gen_range(1..1_000_000u64)),
                LedgerId(1),
            );
            if rng.gen_bool(0.5) {
                t.user_data_128 = rng.gen();
                t.user_data_64 = rng.gen();
            }
            t
        })
        .collect()
}

fn balances(rng: &mut ChaCha8Rng) -> Balances {
    Balances {
        debits_pending: rng.gen_range(0..1u128 << 40),
        debits_posted: rng.gen_range(0..1u128 << 60),
        credits_pending: rng.gen_range(0..1u128 << 40),
        credits_posted: rng.gen_range(0..1u128 << 60),
    }
}

fn outcomes(rng: &mut ChaCha8Rng) -> Vec<TransferOutcome> {
    (0..BATCH_EVENTS_MAX)
        .map(|i| TransferOutcome {
            result: TransferResult::Ok,
            timestamp: Timestamp(1_800_000_000_000_000_000 + i as u64),
            debit_balances: balances(rng),
            credit_balances: balances(rng),
        })
        .collect()
}

fn codec(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(8189);
    let transfers = transfers(&mut rng);
    let outcomes = outcomes(&mut rng);
    let mut request = BytesMut::new();
    encode_body(1, &CreateTransfersRequest::new(&transfers), &mut request).expect("encode");
    let mut response = BytesMut::new();
    encode_body(1, &CreateTransfersResponse::new(&outcomes), &mut response).expect("encode");

    let mut group = c.benchmark_group("wire_codec");
    group.throughput(Throughput::Elements(BATCH_EVENTS_MAX as u64));
    group.bench_function("request_encode", |b| {
        b.iter(|| {
            let mut out = BytesMut::new();
            encode_body(
                1,
                &CreateTransfersRequest::new(black_box(&transfers)),
                &mut out,
            )
            .expect("encode");
            out
        })
    });
    group.bench_function("request_decode", |b| {
        b.iter(|| {
            let (frame, _) = decode_frame(black_box(&request)).expect("frame");
            let body: CreateTransfersRequest = frame.decode_body().expect("body");
            body.to_transfers().expect("transfers")
        })
    });
    group.bench_function("response_encode", |b| {
        b.iter(|| {
            let mut out = BytesMut::new();
            encode_body(
                1,
                &CreateTransfersResponse::new(black_box(&outcomes)),
                &mut out,
            )
            .expect("encode");
            out
        })
    });
    group.bench_function("response_decode", |b| {
        b.iter(|| {
            let (frame, _) = decode_frame(black_box(&response)).expect("frame");
            let body: CreateTransfersResponse = frame.decode_body().expect("body");
            body.to_outcomes().expect("outcomes")
        })
    });
    group.finish();
    println!(
        "wire_codec: request {} bytes, response {} bytes ({} transfers)",
        request.len(),
        response.len(),
        BATCH_EVENTS_MAX
    );
}

criterion_group!(benches, codec);
criterion_main!(benches);
