//! Change streams against real `tally` processes: every committed decision once per
//! position, in commit order per partition, with the balances right after; resumable from
//! any position; back-pressure that ends a consumer that reads nothing instead of holding
//! memory for it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{create_ledger_and_accounts, Raw, Server};
use rust_decimal::Decimal;
use tally_client::wire::changes::{Change, ChangeBody, Position, StreamFilter, StreamFrom};
use tally_client::wire::codes::{StreamEnd, TransferKind, TransferResult};
use tally_client::wire::messages::{StreamFrame, SubscribeRequest, SubscribeResponse};
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};

/// What a consumer rebuilds from a stream: every account's balances and the holds open,
/// checked against the balances each change reports.
#[derive(Default)]
struct Model {
    balances: BTreeMap<u128, Balances>,
    holds: BTreeMap<u128, u128>,
    decided: BTreeSet<u128>,
    positions: BTreeMap<u32, (u64, u32)>,
}

impl Model {
    fn apply(&mut self, change: &Change) {
        let p = change.position;
        if let Some(before) = self.positions.insert(p.partition.0, (p.index, p.event)) {
            assert!(
                before < (p.index, p.event),
                "{p} after {before:?}: not in commit order"
            );
        }
        let ChangeBody::Transfer(t) = &change.body else {
            return;
        };
        if t.result != TransferResult::Ok {
            return;
        }
        if t.kind != TransferKind::Expired {
            assert!(
                self.decided.insert(t.id.0),
                "transfer {} decided twice",
                t.id.0
            );
        }
        let a = t.amount;
        let pending_id = t.asked.as_ref().map_or(0, |asked| asked.pending_id.0);
        let (debit, credit) = (t.debit_account.0, t.credit_account.0);
        let released = match t.kind {
            TransferKind::Post | TransferKind::Void => {
                self.holds.remove(&pending_id).expect("the hold was seen")
            }
            TransferKind::Expired => self.holds.remove(&t.id.0).expect("the hold was seen"),
            _ => 0,
        };
        let d = self.balances.entry(debit).or_default();
        d.debits_pending -= released;
        match t.kind {
            TransferKind::Pending => d.debits_pending += a,
            TransferKind::Plain | TransferKind::Post | TransferKind::Refund => d.debits_posted += a,
            _ => {}
        }
        assert_eq!(
            *d, t.debit_balances,
            "debit balances after {}",
            change.position
        );
        let c = self.balances.entry(credit).or_default();
        c.credits_pending -= released;
        match t.kind {
            TransferKind::Pending => c.credits_pending += a,
            TransferKind::Plain | TransferKind::Post | TransferKind::Refund => {
                c.credits_posted += a
            }
            _ => {}
        }
        assert_eq!(
            *c, t.credit_balances,
            "credit balances after {}",
            change.position
        );
        if t.kind == TransferKind::Pending {
            self.holds.insert(t.id.0, a);
        }
    }
}

fn next_frame(raw: &mut Raw, request: u64) -> StreamFrame {
    let frame = raw.receive().expect("a stream frame");
    assert_eq!(frame.request_id, request);
    frame
        .decode_body::<SubscribeResponse>()
        .expect("a SubscribeResponse")
        .to_frame()
        .expect("typed")
}

/// Subscribes on a raw connection and reads until the stream has caught up.
fn read_caught_up(raw: &mut Raw, from: StreamFrom, filter: &StreamFilter) -> Vec<Change> {
    let request = raw.send(&SubscribeRequest::new(&from, filter));
    let mut changes = Vec::new();
    loop {
        let frame = next_frame(raw, request);
        assert!(frame.end.is_none(), "{:?}", frame.end);
        changes.extend(frame.changes);
        if frame.caught_up {
            return changes;
        }
    }
}

fn transfer(id: u128, from: u128, to: u128, amount: i64) -> NewTransfer {
    NewTransfer::plain(
        TransferId(id),
        AccountId(from),
        AccountId(to),
        Decimal::from(amount),
        LedgerId(1),
    )
}

/// Accounts of one partition each (`account_id_beside`), so transfers stay within one.
async fn pairs(client: &Client, count: u128) -> Vec<(AccountId, AccountId)> {
    let mut out = Vec::new();
    let mut accounts = Vec::new();
    for n in 0..count {
        let a = AccountId(1000 + n * 7919);
        let b = client.account_id_beside(a);
        accounts.push(common::plain_account(a.0));
        accounts.push(common::plain_account(b.0));
        out.push((a, b));
    }
    client.create_accounts(accounts).await.expect("accounts");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_carries_each_decision_once_in_order_with_the_balances_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::single_with(dir.path(), &["--partitions", "2"]);
    let client = Client::connect(&[server.address.to_string()], ClientOptions::default())
        .await
        .unwrap();
    create_ledger_and_accounts(&client, 0).await;
    let pairs = pairs(&client, 6).await;
    let mut next_id = 1u128;
    let mut id = || {
        next_id += 1;
        next_id
    };
    for round in 0..20 {
        let mut batch = Vec::new();
        for (n, (a, b)) in pairs.iter().enumerate() {
            batch.push(transfer(id(), a.0, b.0, (round * 7 + n) as i64 % 13 + 1));
            let mut hold = transfer(id(), b.0, a.0, 5);
            hold.flags = TransferFlags(TransferFlags::PENDING);
            let hold_id = hold.id;
            batch.push(hold);
            let mut settle = transfer(id(), 0, 0, 0);
            settle.debit_account = AccountId(0);
            settle.credit_account = AccountId(0);
            settle.ledger = LedgerId(0);
            settle.flags = TransferFlags(if round % 2 == 0 {
                TransferFlags::POST_PENDING
            } else {
                TransferFlags::VOID_PENDING
            });
            settle.pending_id = hold_id;
            if round % 2 == 0 {
                settle.amount = Decimal::from(3);
            }
            batch.push(settle);
            // Refused: not the accounts' ledger.
            let mut refused = transfer(id(), a.0, b.0, 1);
            refused.ledger = LedgerId(2);
            batch.push(refused);
        }
        let sent = batch.clone();
        client.create_transfers(batch).await.expect("transfers");
        // A retry of the whole batch decides nothing new.
        client.create_transfers(sent).await.expect("retry");
    }

    let mut raw = Raw::connect(server.address);
    let all = read_caught_up(&mut raw, StreamFrom::Start, &StreamFilter::default());
    let mut model = Model::default();
    for change in &all {
        model.apply(change);
    }
    let ok = 20 * pairs.len() * 3;
    assert_eq!(model.decided.len(), ok, "every successful transfer once");
    let refused = all
        .iter()
        .filter(|c| matches!(&c.body, ChangeBody::Transfer(t) if t.result != TransferResult::Ok))
        .count();
    assert_eq!(refused, 20 * pairs.len(), "every refusal once, no retry");
    let ids: Vec<AccountId> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
    for account in client.lookup_accounts(ids).await.unwrap() {
        assert_eq!(
            model.balances[&account.id.0], account.balances,
            "account {}",
            account.id.0
        );
    }

    // Resuming after any change gives exactly what followed it on that partition.
    let cut = &all[all.len() / 3];
    let last_of = |partition: u32| {
        all.iter()
            .rev()
            .find(|c| c.position.partition.0 == partition)
            .map(|c| c.position)
    };
    let other = 1 - cut.position.partition.0;
    let mut after = vec![cut.position];
    after.extend(last_of(other));
    let mut raw = Raw::connect(server.address);
    let resumed = read_caught_up(&mut raw, StreamFrom::After(after), &StreamFilter::default());
    let expected: Vec<&Change> = all
        .iter()
        .filter(|c| c.position.partition == cut.position.partition && c.position > cut.position)
        .collect();
    assert_eq!(resumed.iter().collect::<Vec<_>>(), expected);

    // A filter keeps what names the account, and positions still say where the stream is.
    let (a, _) = pairs[2];
    let filter = StreamFilter {
        accounts: vec![a],
        ..StreamFilter::default()
    };
    let mut raw = Raw::connect(server.address);
    let kept = read_caught_up(&mut raw, StreamFrom::Start, &filter);
    let names = |c: &Change| match &c.body {
        ChangeBody::Transfer(t) => t.debit_account == a || t.credit_account == a,
        ChangeBody::Account { account, .. } => account.id == a,
        ChangeBody::Ledger { .. } => false,
    };
    assert_eq!(
        kept,
        all.iter().filter(|c| names(c)).cloned().collect::<Vec<_>>()
    );

    // From now: nothing old, then what commits next.
    let mut raw = Raw::connect(server.address);
    let request = raw.send(&SubscribeRequest::new(
        &StreamFrom::Now,
        &StreamFilter::default(),
    ));
    let first = next_frame(&mut raw, request);
    assert!(first.caught_up && first.changes.is_empty());
    let (a, b) = pairs[0];
    client
        .create_transfers(vec![transfer(999_999, a.0, b.0, 1)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the new transfer never came");
        let frame = next_frame(&mut raw, request);
        if let Some(change) = frame.changes.first() {
            let ChangeBody::Transfer(t) = &change.body else {
                panic!("{change:?}")
            };
            assert_eq!(t.id, TransferId(999_999));
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_reads_nothing_is_ended_and_catches_up_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::single_with(dir.path(), &["--stream-behind-bytes-max", "100000"]);
    let client = Client::connect(&[server.address.to_string()], ClientOptions::default())
        .await
        .unwrap();
    create_ledger_and_accounts(&client, 8).await;
    let mut raw = Raw::connect(server.address);
    let request = raw.send(&SubscribeRequest::new(
        &StreamFrom::Start,
        &StreamFilter::default(),
    ));
    // The consumer reads nothing while transfers commit, until its stream ends.
    let mut next_id = 1u128;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut end = None;
    let mut changes = Vec::new();
    let mut stood_at: Vec<Position> = Vec::new();
    // Commit in rounds; after each, look (without blocking for long) whether the end came.
    raw.stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    while end.is_none() {
        assert!(
            Instant::now() < deadline,
            "the stream never ended; {sent} transfers sent"
        );
        let batch: Vec<NewTransfer> = (0..4000)
            .map(|n| {
                next_id += 1;
                transfer(next_id, 1 + n % 4, 5 + n % 4, 1)
            })
            .collect();
        client.create_transfers(batch).await.expect("transfers");
        sent += 4000;
        if sent >= 40_000 {
            // Now read everything queued: the frames, then the end.
            raw.stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            loop {
                let frame = next_frame(&mut raw, request);
                changes.extend(frame.changes);
                if let Some(e) = frame.end {
                    stood_at = frame.positions;
                    end = Some(e);
                    break;
                }
            }
        }
    }
    let (why, message) = end.unwrap();
    assert_eq!(why, StreamEnd::TooSlow, "{message}");
    assert!(
        changes.len() < sent,
        "the end came before everything was sent"
    );
    // Resume where it stood: the rest comes from the change log on disk.
    let mut raw = Raw::connect(server.address);
    let rest = read_caught_up(
        &mut raw,
        StreamFrom::After(stood_at),
        &StreamFilter::default(),
    );
    changes.extend(rest);
    let mut model = Model::default();
    for change in &changes {
        model.apply(change);
    }
    assert_eq!(
        model.decided.len(),
        sent,
        "every transfer once, across the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_goes_on_through_a_killed_node_on_another_one() {
    use std::sync::{Arc, Mutex};
    use tally_client::Streamed;
    let mut cluster = common::Cluster::start(3, &[]);
    cluster.leaders_ready().await;
    let client = Client::connect(&cluster.live(), ClientOptions::default())
        .await
        .unwrap();
    create_ledger_and_accounts(&client, 8).await;
    // The subscriber knows only the leader's node, the one killed below: it must find the
    // others by itself and resume there.
    let leader = cluster.leader_of_partition_0(&client).await;
    let subscriber = Client::connect(
        &[cluster.addresses[leader].to_string()],
        ClientOptions::default(),
    )
    .await
    .unwrap();
    let mut stream = subscriber.subscribe(StreamFrom::Start, StreamFilter::default());
    let model = Arc::new(Mutex::new(Model::default()));
    let consumer = {
        let model = model.clone();
        tokio::spawn(async move {
            while let Some(item) = stream.recv().await {
                match item.expect("the stream goes on") {
                    Streamed::Change(change) => model.lock().unwrap().apply(&change),
                    Streamed::CaughtUp(_) => {}
                }
            }
        })
    };
    let mut acknowledged = BTreeSet::new();
    let mut maybe = BTreeSet::new();
    let mut next_id = 1u128;
    for round in 0..30 {
        if round == 10 {
            cluster.kill(leader);
        }
        if round == 20 {
            cluster.restart(leader);
        }
        let batch: Vec<NewTransfer> = (0..50)
            .map(|n| {
                next_id += 1;
                transfer(next_id, 1 + n % 4, 5 + n % 4, 1 + (n % 3) as i64)
            })
            .collect();
        let ids: Vec<u128> = batch.iter().map(|t| t.id.0).collect();
        match client.create_transfers(batch).await {
            Ok(outcomes) => {
                for (id, outcome) in ids.iter().zip(outcomes) {
                    if outcome.result == TransferResult::Ok {
                        acknowledged.insert(*id);
                    } else {
                        maybe.insert(*id);
                    }
                }
            }
            Err(_) => maybe.extend(ids),
        }
    }
    // Everything acknowledged reaches the subscriber, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(!consumer.is_finished(), "the consumer stopped");
        let decided = model.lock().unwrap().decided.clone();
        if acknowledged.is_subset(&decided) {
            let unexpected: Vec<_> = decided
                .difference(&acknowledged)
                .filter(|id| !maybe.contains(id))
                .collect();
            assert!(unexpected.is_empty(), "never sent: {unexpected:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged transfers streamed",
            acknowledged.intersection(&decided).count(),
            acknowledged.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    consumer.abort();
}

/// `tally subscribe --from start --json` is an audit log: replayed into a fresh model it
/// gives the balances the ledger has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_stream_replays_to_the_ledgers_balances() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::single(dir.path());
    let client = Client::connect(&[server.address.to_string()], ClientOptions::default())
        .await
        .unwrap();
    create_ledger_and_accounts(&client, 4).await;
    let mut batch = vec![
        transfer(1, 1, 2, 40),
        transfer(2, 2, 3, 15),
        transfer(3, 3, 4, 5),
    ];
    let mut hold = transfer(4, 1, 4, 9);
    hold.flags = TransferFlags(TransferFlags::PENDING);
    batch.push(hold);
    let mut post = transfer(5, 0, 0, 6);
    post.ledger = LedgerId(0);
    post.flags = TransferFlags(TransferFlags::POST_PENDING);
    post.pending_id = TransferId(4);
    batch.push(post);
    let mut hold = transfer(6, 2, 1, 3);
    hold.flags = TransferFlags(TransferFlags::PENDING);
    batch.push(hold);
    let mut void = transfer(7, 0, 0, 0);
    void.ledger = LedgerId(0);
    void.flags = TransferFlags(TransferFlags::VOID_PENDING);
    void.pending_id = TransferId(6);
    batch.push(void);
    let mut refund = transfer(8, 0, 0, 10);
    refund.ledger = LedgerId(0);
    refund.refund_of = TransferId(1);
    batch.push(refund);
    client.create_transfers(batch).await.unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["subscribe", "--from", "start", "--json", "--address"])
        .arg(server.address.to_string())
        .output()
        .expect("tally subscribe");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut balances: BTreeMap<String, [Decimal; 4]> = BTreeMap::new();
    let mut holds: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let change: serde_json::Value = serde_json::from_str(line).expect(line);
        let kind = change["kind"].as_str().unwrap();
        if !(kind == "transfer" || kind == "hold_expired") || change["result"] != "Ok" {
            continue;
        }
        let amount: Decimal = change["amount"].as_str().unwrap().parse().unwrap();
        let id = change["id"].as_str().unwrap().to_string();
        let transfer_kind = change["transfer_kind"].as_str().unwrap();
        let released = match transfer_kind {
            "Post" | "Void" => holds
                .remove(change["asked"]["pending_id"].as_str().unwrap())
                .expect("the hold was streamed"),
            "Expired" => holds.remove(&id).expect("the hold was streamed"),
            _ => Decimal::ZERO,
        };
        if transfer_kind == "Pending" {
            holds.insert(id, amount);
        }
        let posted = matches!(transfer_kind, "Plain" | "Post" | "Refund");
        // [debits_pending, debits_posted, credits_pending, credits_posted]
        let debit = balances
            .entry(change["debit_account"].as_str().unwrap().to_string())
            .or_default();
        debit[0] -= released;
        if transfer_kind == "Pending" {
            debit[0] += amount;
        }
        if posted {
            debit[1] += amount;
        }
        let credit = balances
            .entry(change["credit_account"].as_str().unwrap().to_string())
            .or_default();
        credit[2] -= released;
        if transfer_kind == "Pending" {
            credit[2] += amount;
        }
        if posted {
            credit[3] += amount;
        }
    }
    let accounts = client
        .lookup_accounts((1..=4).map(AccountId).collect())
        .await
        .unwrap();
    for account in accounts {
        let b = account.balances;
        let d = |v: u128| tally_client::to_decimal(v, account.scale).unwrap();
        let expected = [
            d(b.debits_pending),
            d(b.debits_posted),
            d(b.credits_pending),
            d(b.credits_posted),
        ];
        assert_eq!(
            balances
                .get(&account.id.0.to_string())
                .copied()
                .unwrap_or_default(),
            expected,
            "account {}",
            account.id.0
        );
    }
}

/// A node cut off from its peers would stream nothing new: once it has known no leader for
/// a while it ends its streams `Isolated`, so that consumers move to another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_leader_ends_its_streams_isolated() {
    let cluster = common::Cluster::start(3, &[]);
    cluster.leaders_ready().await;
    let mut raw = Raw::connect(cluster.addresses[0]);
    let request = raw.send(&SubscribeRequest::new(
        &StreamFrom::Now,
        &StreamFilter::default(),
    ));
    assert!(next_frame(&mut raw, request).end.is_none());
    // Its peers stop answering (as when the network cuts it off).
    cluster.signal(1, "-STOP");
    cluster.signal(2, "-STOP");
    let deadline = Instant::now() + Duration::from_secs(60);
    let end = loop {
        assert!(Instant::now() < deadline, "the stream never ended");
        if let Some(end) = next_frame(&mut raw, request).end {
            break end;
        }
    };
    cluster.signal(1, "-CONT");
    cluster.signal(2, "-CONT");
    assert_eq!(end.0, StreamEnd::Isolated, "{}", end.1);
}
