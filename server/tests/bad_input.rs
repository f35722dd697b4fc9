//! Bad input against a live server: random bytes, truncated frames, huge length prefixes,
//! wrong magic and versions, corrupted checksums, bodies that do not decode. Each bad
//! connection gets an error frame or is closed; a well-behaved client connected the whole
//! time keeps being served; and the ledger's state is unchanged (checked by looking up the
//! accounts and a known transfer before and after). The random inputs come from a seed that
//! is printed.

mod common;

use bytes::BytesMut;
use common::*;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use tally_client::wire::messages::*;
use tally_client::wire::types::*;
use tally_client::wire::{encode_body, HEADER_SIZE};

fn setup(raw: &mut Raw) {
    create_ledger_and_two_accounts(raw);
    let transfer = NewTransfer::plain(
        TransferId(1),
        AccountId(1),
        AccountId(2),
        Decimal::from(5),
        LedgerId(1),
    );
    let _: CreateTransfersResponse = raw
        .call(&CreateTransfersRequest::new(&[transfer]))
        .expect("transfer");
}

fn state(raw: &mut Raw) -> Vec<Account> {
    let found: LookupAccountsResponse = raw
        .call(&LookupAccountsRequest::new(&[AccountId(1), AccountId(2)]))
        .expect("lookup");
    found.to_accounts().expect("accounts")
}

fn valid_transfer_frame(id: u128) -> Vec<u8> {
    let transfer = NewTransfer::plain(
        TransferId(id),
        AccountId(1),
        AccountId(2),
        Decimal::from(1),
        LedgerId(1),
    );
    let mut out = BytesMut::new();
    encode_body(9, &CreateTransfersRequest::new(&[transfer]), &mut out).expect("encode");
    out.to_vec()
}

/// Sends `bytes` on a fresh connection, then half-closes it; returns what came back: an
/// error frame (decoded) or nothing, and whether the server closed the connection.
fn probe(server: &Server, bytes: &[u8]) -> Option<ErrorResponse> {
    let mut raw = Raw::connect(server.address);
    raw.send_bytes(bytes);
    let _ = raw.stream.shutdown(std::net::Shutdown::Write);
    let frame = raw.receive()?;
    let error: ErrorResponse = frame.decode_body().ok()?;
    // After an error frame the server closes the connection.
    assert!(
        raw.receive().is_none(),
        "connection left open after an error frame"
    );
    Some(error)
}

#[test]
fn bad_frames_are_refused_and_leave_no_trace() {
    let seed: u64 = std::env::var("BAD_INPUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xBAD);
    eprintln!("BAD_INPUT_SEED={seed}");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let mut good = Raw::connect(server.address);
    setup(&mut good);
    let before = state(&mut good);

    // A frame that would move money, damaged in every way but one must never apply.
    let valid = valid_transfer_frame(99);

    // Wrong magic: plain text.
    let error = probe(&server, b"GET / HTTP/1.1\r\n\r\n").expect("an error frame");
    assert_eq!(error.code, 1, "{error:?}");
    // Wrong version.
    let mut wrong_version = valid.clone();
    wrong_version[4] = 9;
    let error = probe(&server, &wrong_version).expect("an error frame");
    assert_eq!(error.code, 2, "{error:?}");
    // Huge length prefix: answered without waiting for (or allocating) the body.
    let mut huge = valid[..HEADER_SIZE].to_vec();
    huge[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let header_crc = crc32fast::hash(&huge[..28]);
    huge[28..32].copy_from_slice(&header_crc.to_le_bytes());
    let error = probe(&server, &huge).expect("an error frame");
    assert_eq!(error.code, 1, "{error:?}");
    // Every truncation: the server waits for more, then sees the connection close.
    for cut in [1, 4, 8, 31, 32, 33, valid.len() - 1] {
        assert!(
            probe(&server, &valid[..cut]).is_none(),
            "cut at {cut} got an answer"
        );
    }
    // A flipped bit anywhere: an error frame (or, for the request id, a valid frame for
    // another id — which is why the transfer id is fresh).
    for i in 0..valid.len() {
        if (8..16).contains(&i) {
            continue; // request id
        }
        let mut damaged = valid.clone();
        damaged[i] ^= 0x04;
        let error = probe(&server, &damaged);
        assert!(
            error.is_some(),
            "flip at byte {i} was not answered with an error"
        );
    }
    // Random garbage, with a seed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..50 {
        let len = rng.gen_range(1..300);
        let mut garbage: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) {
            // Start with a valid-looking header prefix to get past the magic check.
            garbage[..4.min(len)].copy_from_slice(&valid[..4.min(len)]);
        }
        let _ = probe(&server, &garbage);
    }
    // The good connection still works, and nothing changed.
    let after = state(&mut good);
    assert_eq!(before, after, "state changed by bad input");
    let lookup: LookupTransfersResponse = good
        .call(&LookupTransfersRequest::new(&[TransferId(99)]))
        .expect("lookup");
    assert!(
        lookup.transfers.is_empty(),
        "a damaged frame applied transfer 99"
    );
    // And a valid request on a fresh connection is served.
    let mut fresh = Raw::connect(server.address);
    let ok: CreateTransfersResponse = fresh
        .call(&CreateTransfersRequest::new(&[NewTransfer::plain(
            TransferId(100),
            AccountId(1),
            AccountId(2),
            Decimal::from(1),
            LedgerId(1),
        )]))
        .expect("served");
    assert_eq!(ok.results.len(), 1);
}
