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
    let accounts: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(&[
            plain_account(1),
            plain_account(2),
        ]))
        .expect("accounts");
    assert_eq!(accounts.results, vec![0, 0]);
    let mut transfer = NewTransfer::plain(
        TransferId(7),
        AccountId(1),
        AccountId(2),
        Decimal::new(1050, 2),
        LedgerId(1),
    );
    transfer.code = 12;
    transfer.user_data_128 = 0xFEED_0000_0000_0000_0000_0000_0000_BEEF;
    transfer.user_data_64 = 64;
    transfer.user_data_32 = 32;
    transfer.memo = b"sword of dawn".to_vec();
    let outcomes: CreateTransfersResponse = raw
        .call(&CreateTransfersRequest::new(std::slice::from_ref(
            &transfer,
        )))
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
    // A lookup returns what the client sent, details included.
    let found: LookupTransfersResponse = raw
        .call(&LookupTransfersRequest::new(&[TransferId(7)]))
        .expect("lookup transfer");
    let found = found.to_transfers().expect("transfers");
    assert_eq!(found.len(), 1);
    let t = &found[0];
    assert_eq!(t.amount, 1050);
    assert_eq!(t.code, 12);
    assert_eq!(t.user_data_128, transfer.user_data_128);
    assert_eq!((t.user_data_64, t.user_data_32), (64, 32));
    assert_eq!(t.memo, b"sword of dawn");
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

#[test]
fn transfers_across_partitions_are_refused_whole() {
    use tally_client::wire::partition_of;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single_with(dir.path(), &["--partitions", "2"]);
    let mut raw = Raw::connect(server.address);
    create_ledger(&mut raw);
    // Two accounts in partition 0 and one in partition 1.
    let mut ids = (1u128..).filter(|id| partition_of(*id, 2) == 0);
    let (a, b) = (ids.next().expect("id"), ids.next().expect("id"));
    let c = (1u128..).find(|id| partition_of(*id, 2) == 1).expect("id");
    let created: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(&[
            plain_account(a),
            plain_account(b),
            plain_account(c),
        ]))
        .expect("accounts");
    assert_eq!(created.results, vec![0, 0, 0]);
    let amount = Decimal::from(5);
    let within = NewTransfer::plain(
        TransferId(1),
        AccountId(a),
        AccountId(b),
        amount,
        LedgerId(1),
    );
    let across = NewTransfer::plain(
        TransferId(2),
        AccountId(a),
        AccountId(c),
        amount,
        LedgerId(1),
    );
    // A chain whose first leg stays in partition 0 and whose second crosses: refused whole.
    let mut leg1 = NewTransfer::plain(
        TransferId(3),
        AccountId(b),
        AccountId(a),
        amount,
        LedgerId(1),
    );
    leg1.flags = TransferFlags(TransferFlags::LINKED);
    let leg2 = NewTransfer::plain(
        TransferId(4),
        AccountId(c),
        AccountId(a),
        amount,
        LedgerId(1),
    );
    let response: CreateTransfersResponse = raw
        .call(&CreateTransfersRequest::new(&[within, across, leg1, leg2]))
        .expect("transfers");
    let results: Vec<u32> = response
        .to_outcomes()
        .expect("outcomes")
        .iter()
        .map(|o| o.result.code())
        .collect();
    assert_eq!(results, vec![0, 1000, 1000, 1000]);
    let found: LookupAccountsResponse = raw
        .call(&LookupAccountsRequest::new(&[
            AccountId(a),
            AccountId(b),
            AccountId(c),
        ]))
        .expect("lookup");
    let posted: Vec<(u128, u128)> = found
        .to_accounts()
        .expect("accounts")
        .iter()
        .map(|x| (x.balances.debits_posted, x.balances.credits_posted))
        .collect();
    assert_eq!(
        posted,
        vec![(5, 0), (0, 5), (0, 0)],
        "only the transfer within a partition applied"
    );
}

/// A post naming no account, sent before its hold exists, is answered not-found and recorded
/// nowhere: the same post sent once the hold exists (in partition 1) posts it, a retry gets
/// the same answer, and a lookup shows the one outcome the id has. On the old code the first
/// answer was recorded on partition 0, so the lookup showed a failure for a post that had
/// applied: two outcomes for one id (issue 13).
#[test]
fn a_post_sent_before_its_hold_has_one_outcome_once_the_hold_exists() {
    use tally_client::wire::codes::TransferResult;
    use tally_client::wire::partition_of;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single_with(dir.path(), &["--partitions", "2"]);
    let mut raw = Raw::connect(server.address);
    create_ledger(&mut raw);
    let mut ids = (1u128..).filter(|id| partition_of(*id, 2) == 1);
    let (a, b) = (ids.next().expect("id"), ids.next().expect("id"));
    let created: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(&[
            plain_account(a),
            plain_account(b),
        ]))
        .expect("accounts");
    assert_eq!(created.results, vec![0, 0]);
    let mut post = NewTransfer::plain(
        TransferId(119),
        AccountId(0),
        AccountId(0),
        Decimal::ZERO,
        LedgerId(0),
    );
    post.flags = TransferFlags(TransferFlags::POST_PENDING);
    post.pending_id = TransferId(110);
    let mut send = |transfers: &[NewTransfer]| send_transfers(&mut raw, transfers);
    assert_eq!(
        send(std::slice::from_ref(&post)),
        vec![TransferResult::PendingTransferNotFound]
    );
    let mut hold = NewTransfer::plain(
        TransferId(110),
        AccountId(a),
        AccountId(b),
        Decimal::from(5),
        LedgerId(1),
    );
    hold.flags = TransferFlags(TransferFlags::PENDING);
    assert_eq!(send(&[hold]), vec![TransferResult::Ok]);
    assert_eq!(send(std::slice::from_ref(&post)), vec![TransferResult::Ok]);
    assert_eq!(
        send(std::slice::from_ref(&post)),
        vec![TransferResult::Ok],
        "a retry gets the id's outcome"
    );
    let found: LookupTransfersResponse = raw
        .call(&LookupTransfersRequest::new(&[TransferId(119)]))
        .expect("lookup");
    let found = found.to_transfers().expect("transfers");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].outcome.result, TransferResult::Ok);
    assert_eq!(found[0].debit_account, AccountId(a));
    assert_eq!(found[0].amount, 5);
}

/// One transfer id, one outcome in the whole cluster: the same id sent again with accounts
/// on another partition is refused (`ExistsWithDifferentFields`), not applied a second time
/// there, whichever partition is the id's home; a retry of the original keeps its outcome.
/// (Before ids were claimed on their home partition, the second was applied too.)
#[test]
fn an_id_used_on_one_partition_is_refused_on_another() {
    use tally_client::wire::codes::TransferResult;
    use tally_client::wire::partition_of;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single_with(dir.path(), &["--partitions", "2"]);
    let mut raw = Raw::connect(server.address);
    create_ledger(&mut raw);
    let on = |p: u32| (1u128..).filter(move |id| partition_of(*id, 2) == p);
    let (mut zero, mut one) = (on(0), on(1));
    let accounts: Vec<u128> = vec![
        zero.next().expect("id"),
        zero.next().expect("id"),
        one.next().expect("id"),
        one.next().expect("id"),
    ];
    let created: CreateAccountsResponse = raw
        .call(&CreateAccountsRequest::new(
            &accounts
                .iter()
                .map(|&id| plain_account(id))
                .collect::<Vec<_>>(),
        ))
        .expect("accounts");
    assert_eq!(created.results, vec![0, 0, 0, 0]);
    let mut send = |transfers: &[NewTransfer]| send_transfers(&mut raw, transfers);
    let transfer = |id: u128, from: u128, to: u128| {
        NewTransfer::plain(
            TransferId(id),
            AccountId(from),
            AccountId(to),
            Decimal::from(3),
            LedgerId(1),
        )
    };
    // Ids at home on partition 0 and on partition 1, each used first on either partition.
    let (pair0, pair1) = ((0, 1), (2, 3));
    let cases = [
        (on(0).nth(10).expect("id"), pair0, pair1),
        (on(0).nth(11).expect("id"), pair1, pair0),
        (on(1).nth(10).expect("id"), pair0, pair1),
        (on(1).nth(11).expect("id"), pair1, pair0),
    ];
    for (id, first, second) in cases {
        let original = transfer(id, accounts[first.0], accounts[first.1]);
        let other = transfer(id, accounts[second.0], accounts[second.1]);
        assert_eq!(
            send(std::slice::from_ref(&original)),
            vec![TransferResult::Ok]
        );
        assert_eq!(
            send(std::slice::from_ref(&other)),
            vec![TransferResult::ExistsWithDifferentFields],
            "id {id} (home {}) applied on both partitions",
            partition_of(id, 2)
        );
        assert_eq!(
            send(std::slice::from_ref(&original)),
            vec![TransferResult::Ok],
            "a retry gets the id's outcome"
        );
    }
    // Nothing reached the second pair of accounts but what was meant for them.
    let looked: LookupAccountsResponse = raw
        .call(&LookupAccountsRequest::new(
            &accounts.iter().map(|&id| AccountId(id)).collect::<Vec<_>>(),
        ))
        .expect("lookup");
    let credited: Vec<u128> = looked
        .to_accounts()
        .expect("accounts")
        .iter()
        .map(|a| a.balances.credits_posted)
        .collect();
    assert_eq!(
        credited,
        vec![0, 6, 0, 6],
        "each pair moved two transfers of 3"
    );
}

/// Sends `transfers` as one request over `raw` and returns each event's result.
fn send_transfers(
    raw: &mut Raw,
    transfers: &[NewTransfer],
) -> Vec<tally_client::wire::codes::TransferResult> {
    let response: CreateTransfersResponse = raw
        .call(&CreateTransfersRequest::new(transfers))
        .expect("transfers");
    response
        .to_outcomes()
        .expect("outcomes")
        .iter()
        .map(|o| o.result)
        .collect()
}
