//! Claims (`Command::ClaimTransfers`): a transfer id claimed on its home partition for a
//! transfer applied elsewhere is taken there for good, through replays and checkpoints, and
//! is never mistaken for a transfer.

use rust_decimal::Decimal;
use tally_engine::checkpoint;
use tally_engine::command::{
    AccountFlags, Command, EntryPayload, NewAccount, NewLedger, NewTransfer, TransferFlags,
};
use tally_engine::outcome::{Outcome, TransferResult};
use tally_engine::partition::{Partition, TransferKind};
use tally_engine::types::{AccountId, LedgerId, LogIndex, PartitionId, Timestamp, TransferId};

fn transfer(id: u128, from: u128, to: u128, amount: i64) -> NewTransfer {
    NewTransfer::plain(
        TransferId(id),
        AccountId(from),
        AccountId(to),
        Decimal::from(amount),
        LedgerId(1),
    )
}

/// Applies `command` as the next entry and returns its transfer results.
fn apply(partition: &mut Partition, command: Command) -> Vec<TransferResult> {
    let index = LogIndex(partition.applied_index().0 + 1);
    let payload = EntryPayload {
        timestamp: Timestamp(1_000 + index.0),
        command,
    };
    match partition.apply(index, &payload) {
        Outcome::Transfers(outcomes) => outcomes.iter().map(|o| o.result).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn a_claimed_id_is_taken_for_good_and_is_no_transfer() {
    use TransferResult as R;
    let mut partition = Partition::new();
    apply(
        &mut partition,
        Command::CreateLedgers(vec![NewLedger {
            id: LedgerId(1),
            scale: 0,
            code: 1,
        }]),
    );
    let accounts = [1, 2].map(|id| NewAccount {
        id: AccountId(id),
        ledger: LedgerId(1),
        code: 1,
        flags: AccountFlags(0),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    });
    apply(&mut partition, Command::CreateAccounts(accounts.to_vec()));
    let digest_before = partition.digest();

    // Claimed for accounts 7 and 8, which live elsewhere: recorded as a claim only.
    let claimed = transfer(50, 7, 8, 5);
    assert_eq!(
        apply(
            &mut partition,
            Command::ClaimTransfers(vec![claimed.clone()])
        ),
        [R::Ok]
    );
    assert_ne!(
        partition.digest(),
        digest_before,
        "the digest covers claims"
    );
    let record = partition
        .transfer(TransferId(50))
        .expect("the claim is kept");
    assert_eq!(record.kind, TransferKind::Claim);
    // Claimed again with the same fields (a retry): still Ok. Other fields: refused.
    assert_eq!(
        apply(
            &mut partition,
            Command::ClaimTransfers(vec![claimed.clone()])
        ),
        [R::Ok]
    );
    assert_eq!(
        apply(
            &mut partition,
            Command::ClaimTransfers(vec![transfer(50, 7, 8, 6), transfer(0, 7, 8, 1)])
        ),
        [R::ExistsWithDifferentFields, R::IdMustNotBeZero]
    );
    // Never applied here, with any fields, and never taken for a hold or an original.
    assert_eq!(
        apply(
            &mut partition,
            Command::CreateTransfers(vec![transfer(50, 1, 2, 5)])
        ),
        [R::ExistsWithDifferentFields]
    );
    let mut post = transfer(51, 0, 0, 0);
    post.ledger = LedgerId(0);
    post.flags = TransferFlags(TransferFlags::POST_PENDING);
    post.pending_id = TransferId(50);
    let mut refund = transfer(52, 2, 1, 1);
    refund.refund_of = TransferId(50);
    assert_eq!(
        apply(&mut partition, Command::CreateTransfers(vec![post, refund])),
        [R::PendingTransferNotFound, R::RefundOfNotFound]
    );
    assert_eq!(
        partition
            .account(AccountId(2))
            .expect("account")
            .balances
            .credits_posted,
        0
    );
    partition.check_invariants().expect("invariants");

    // A checkpoint keeps the claim, and the restored partition refuses the same way.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = checkpoint::write(dir.path(), PartitionId(0), &partition).expect("checkpoint");
    let (mut restored, _) =
        checkpoint::read_with_runs(&path, PartitionId(0), None).expect("restore");
    assert_eq!(restored.digest(), partition.digest());
    assert_eq!(
        restored.transfer(TransferId(50)).map(|r| r.kind),
        Some(TransferKind::Claim)
    );
    assert_eq!(
        apply(&mut restored, Command::ClaimTransfers(vec![claimed])),
        [R::Ok]
    );
    assert_eq!(
        apply(
            &mut restored,
            Command::CreateTransfers(vec![transfer(50, 1, 2, 5)])
        ),
        [R::ExistsWithDifferentFields]
    );
    // The payload round-trips with its own tag.
    let payload = EntryPayload {
        timestamp: Timestamp(9),
        command: Command::ClaimTransfers(vec![transfer(60, 1, 2, 3)]),
    };
    assert_eq!(EntryPayload::decode(&payload.encode()), Ok(payload));
}
