//! A first end-to-end check: one real node, raw frames.
mod common;
use common::*;
use rust_decimal::Decimal;
use tally_client::wire::messages::*;
use tally_client::wire::types::*;

#[test]
fn single_node_serves_a_transfer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let mut raw = Raw::connect(server.address);
    let hello: HelloResponse = raw
        .call(&HelloRequest {
            client_version: "test".into(),
        })
        .expect("hello");
    assert_eq!(hello.partition_count, 1);
    let ledgers: CreateLedgersResponse = raw
        .call(&CreateLedgersRequest::new(&[NewLedger {
            id: LedgerId(1),
            scale: 2,
            code: 1,
        }]))
        .expect("ledgers");
    assert_eq!(ledgers.results, vec![0]);
    let account = |id| NewAccount {
        id: AccountId(id),
        ledger: LedgerId(1),
        code: 1,
        flags: AccountFlags(0),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    };
    let accounts: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(&[account(1), account(2)]))
        .expect("accounts");
    assert_eq!(accounts.results, vec![0, 0]);
    let transfer = NewTransfer::plain(
        TransferId(7),
        AccountId(1),
        AccountId(2),
        Decimal::new(1050, 2),
        LedgerId(1),
    );
    let outcomes: CreateTransfersResponse = raw
        .call(&CreateTransfersRequest::new(&[transfer]))
        .expect("transfer");
    let outcomes = outcomes.to_outcomes().expect("outcomes");
    assert_eq!(outcomes[0].result.code(), 0);
    assert_eq!(outcomes[0].credit_balances.credits_posted, 1050);
    let found: LookupAccountsResponse = raw
        .call(&LookupAccountsRequest::new(&[AccountId(2)]))
        .expect("lookup");
    assert_eq!(
        found.to_accounts().expect("accounts")[0]
            .balances
            .credits_posted,
        1050
    );
}

#[test]
fn a_second_node_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Server::single(dir.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "start",
            "--address",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().expect("utf-8"),
        ])
        .output()
        .expect("run tally");
    assert!(
        !output.status.success(),
        "a second node started on a locked directory"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use by another process"), "{stderr}");
}
