//! `tally start --metrics-address`: `/metrics` scraped with a real HTTP client during a load,
//! parsed as Prometheus text, agrees with what the load itself counted; `/healthz` and
//! `/readyz` answer beside it.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use rust_decimal::Decimal;
use tally_client::wire::types::*;
use tally_client::{Client, ClientOptions};

const WRITERS: u128 = 4;
const BATCHES: u128 = 25;
const BATCH: u128 = 40;
const ACCOUNTS: u128 = 20;

/// `GET url`: the status and the body (any status; ureq's errors for non-2xx are off).
fn get(url: &str) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// The samples of a scrape, by name and labels (`name{k=v,...}` with sorted labels).
fn scrape(base: &str) -> BTreeMap<String, f64> {
    let (status, body) = get(&format!("{base}/metrics")).expect("scrape");
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("Prometheus text");
    let mut samples = BTreeMap::new();
    for sample in parsed.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        labels.sort();
        let value = match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(buckets) => {
                // Keep the +Inf bucket: it must equal the count.
                buckets
                    .iter()
                    .find(|b| b.less_than.is_infinite())
                    .map_or(f64::NAN, |b| b.count)
            }
            prometheus_parse::Value::Summary(_) => continue,
        };
        samples.insert(format!("{}{{{}}}", sample.metric, labels.join(",")), value);
    }
    samples
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_agree_with_the_load_that_made_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let metrics = format!("127.0.0.1:{port}");
    let server = Server::single_with(&dir.path().join("data"), &["--metrics-address", &metrics]);
    let base = format!("http://{metrics}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match get(&format!("{base}/readyz")) {
            Ok((200, body)) => {
                assert_eq!(body, "ready\n");
                break;
            }
            other => {
                assert!(Instant::now() < deadline, "never ready: {other:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(get(&format!("{base}/healthz")), Ok((200, "ok\n".into())));

    let addresses = vec![server.address.to_string()];
    let client = Client::connect(&addresses, ClientOptions::default())
        .await
        .expect("connect");
    common::create_ledger_and_accounts(&client, ACCOUNTS).await;

    // Writers send batches in which every fifth transfer credits an account that does not
    // exist; each counts the results it got.
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let addresses = addresses.clone();
        writers.push(tokio::spawn(async move {
            let client = Client::connect(&addresses, ClientOptions::default())
                .await
                .expect("connect");
            let mut results: BTreeMap<&'static str, u64> = BTreeMap::new();
            for b in 0..BATCHES {
                let batch = (0..BATCH)
                    .map(|i| {
                        let id = (w << 64) | (b * BATCH + i + 1);
                        let credit = if i % 5 == 4 {
                            9_999
                        } else {
                            1 + (id + 1) % ACCOUNTS
                        };
                        NewTransfer::plain(
                            TransferId(id),
                            AccountId(1 + id % ACCOUNTS),
                            AccountId(credit),
                            Decimal::from(1),
                            LedgerId(1),
                        )
                    })
                    .collect();
                let outcomes = client.create_transfers(batch).await.expect("batch");
                for outcome in outcomes {
                    *results.entry(outcome.result.name()).or_default() += 1;
                }
            }
            results
        }));
    }
    // Scrape while the load runs: every scrape parses, and no counter goes back.
    let scraper = {
        let base = base.clone();
        let done = done.clone();
        tokio::task::spawn_blocking(move || {
            let mut scrapes = 0;
            let mut last: BTreeMap<String, f64> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                let now = scrape(&base);
                for (key, value) in &last {
                    if key.contains("_total{") {
                        assert!(sample(&now, key) >= *value, "{key} went back");
                    }
                }
                last = now;
                scrapes += 1;
            }
            scrapes
        })
    };
    let mut expected: BTreeMap<&'static str, u64> = BTreeMap::new();
    for writer in writers {
        for (result, count) in writer.await.expect("writer") {
            *expected.entry(result).or_default() += count;
        }
    }
    done.store(true, Ordering::Relaxed);
    assert!(
        scraper.await.expect("scraper") > 0,
        "no scrape during the load"
    );

    let samples = scrape(&base);
    let total = (WRITERS * BATCHES * BATCH) as u64;
    assert_eq!(expected.values().sum::<u64>(), total);
    assert_eq!(expected.get("CreditAccountNotFound"), Some(&(total / 5)));
    for (result, count) in &expected {
        let key = format!("tally_events_total{{operation=create_transfers,result={result}}}");
        assert_eq!(
            sample(&samples, &key),
            *count as f64,
            "{key} in {samples:#?}"
        );
    }
    let requests = sample(
        &samples,
        "tally_requests_total{operation=create_transfers,result=Ok}",
    );
    assert_eq!(requests, (WRITERS * BATCHES) as f64);
    assert_eq!(
        sample(
            &samples,
            "tally_events_total{operation=create_accounts,result=Ok}"
        ),
        ACCOUNTS as f64
    );
    // The request stage timed every create-transfers request.
    let timed = sample(&samples, "tally_stage_seconds_count{stage=request}");
    assert_eq!(timed, requests);
    assert_eq!(
        sample(&samples, "tally_stage_seconds{stage=request}"),
        timed,
        "the +Inf bucket holds every request"
    );
    assert_eq!(
        sample(&samples, "tally_partition_is_leader{partition=0}"),
        1.0
    );
    assert_eq!(sample(&samples, "tally_ready{}"), 1.0);
    assert_eq!(
        sample(&samples, "tally_partition_commit_index{partition=0}"),
        sample(&samples, "tally_partition_applied_index{partition=0}")
    );
    assert!(sample(&samples, "tally_connections{}") >= 1.0);
    assert!(sample(&samples, "tally_connections_accepted_total{}") >= (WRITERS + 1) as f64);
    drop(client);
}

/// Polls `GET url` until it answers `status`, returning the body.
async fn wait_for(url: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = get(url);
        if let Ok((got, body)) = &answer {
            if *got == status {
                return body.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url} never answered {status}: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_why_a_cluster_node_cannot_take_writes() {
    let mut cluster = common::Cluster::new(3, &[]);
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut args = cluster.args(0);
    args.extend(["--metrics-address".to_string(), metrics.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Alone, node 1 waits for its peers to form the cluster: alive, not ready.
    let _first = Server::start(&args);
    let readyz = format!("http://{metrics}/readyz");
    let body = wait_for(&readyz, 503).await;
    assert!(body.contains("not up yet"), "{body}");
    assert_eq!(
        get(&format!("http://{metrics}/healthz")),
        Ok((200, "ok\n".into()))
    );

    cluster.restart(1);
    cluster.restart(2);
    assert_eq!(wait_for(&readyz, 200).await, "ready\n");
    let samples = scrape(&format!("http://{metrics}"));
    assert!(sample(&samples, "tally_partition_elections_total{partition=0}") >= 1.0);
    assert!(sample(&samples, "tally_partition_leader{partition=0}") >= 1.0);

    // Without a quorum no leader holds on: not ready, and the reason says so.
    cluster.kill(1);
    cluster.kill(2);
    let body = wait_for(&readyz, 503).await;
    assert!(body.contains("partition 0: no leader known"), "{body}");
    let samples = scrape(&format!("http://{metrics}"));
    assert_eq!(sample(&samples, "tally_ready{}"), 0.0);
}
