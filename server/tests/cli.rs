//! The operator commands and `tally bench`, run as an operator runs them.
//!
//! Each test starts a real node (`tally start` on a free port, data in a temporary
//! directory), then runs the `tally` binary itself through `std::process::Command` and checks
//! its stdout, stderr and exit code: a ledger, accounts and transfers created and shown in
//! text and in JSON; rejections and bad flags exit non-zero with a message; `tally bench`
//! against the node and against a node of its own ends with one JSON line carrying the
//! required fields, every transfer sent and none failed; a bench whose node dies stops and
//! fails.

mod common;

use std::process::{Command, Output};

use common::Server;

fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .output()
        .expect("run tally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `tally` with `args` plus `--address`, and requires success.
fn ok(address: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--address", address]);
    let output = tally(&all);
    assert!(
        output.status.success(),
        "tally {all:?} failed: {}\n{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Runs `tally` with `args` plus `--address`, and requires failure; returns stderr.
fn fails(address: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--address", address]);
    let output = tally(&all);
    assert!(
        !output.status.success(),
        "tally {all:?} succeeded: {}",
        stdout(&output)
    );
    stderr(&output)
}

fn last_json_line(text: &str) -> serde_json::Value {
    let line = text.lines().last().expect("a line of output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
}

#[test]
fn operator_commands_create_and_show() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let address = server.address.to_string();
    let address = address.as_str();

    let out = ok(address, &["ledger", "create", "--id", "1", "--scale", "2"]);
    assert_eq!(out.trim(), "ledger 1 (scale 2, code 1): Ok");
    // The same ledger again is a retry: Exists, success. Other fields: a failure.
    assert!(ok(address, &["ledger", "create", "--id", "1", "--scale", "2"]).contains("Exists"));
    let err = fails(address, &["ledger", "create", "--id", "1", "--scale", "3"]);
    assert!(err.contains("ExistsWithDifferentFields"), "{err}");

    ok(
        address,
        &["account", "create", "--id", "1", "--ledger", "1"],
    );
    let out = ok(
        address,
        &[
            "account",
            "create",
            "--id",
            "2",
            "--ledger",
            "1",
            "--no-overdraft",
            "--json",
        ],
    );
    let created = last_json_line(&out);
    assert_eq!(created["account"], "2");
    assert_eq!(created["result"], "Ok");
    let out = ok(
        address,
        &["account", "create", "--id", "new", "--ledger", "1"],
    );
    let new_id: u128 = out
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {out:?}"));
    assert_ne!(new_id, 0);

    let out = ok(
        address,
        &[
            "transfer",
            "--id",
            "10",
            "--from",
            "1",
            "--to",
            "2",
            "--amount",
            "10.50",
            "--ledger",
            "1",
            "--user-data",
            "77",
            "--memo",
            "order 77",
        ],
    );
    assert!(out.starts_with("transfer 10: Ok"), "{out}");
    let shown = last_json_line(&ok(address, &["transfer", "show", "10", "--json"]));
    assert_eq!(shown["user_data_128"], "77");
    assert_eq!(shown["memo"], "order 77");
    assert!(out.contains("balance -10.50"), "{out}");
    assert!(out.contains("balance 10.50"), "{out}");

    // Account 2 may not overdraw: a rejection is printed and exits non-zero.
    let err = fails(
        address,
        &[
            "transfer", "--id", "11", "--from", "2", "--to", "1", "--amount", "100", "--ledger",
            "1",
        ],
    );
    assert!(err.contains("ExceedsCredits"), "{err}");

    // A hold, then a partial post of it.
    let out = ok(
        address,
        &[
            "transfer",
            "--id",
            "12",
            "--from",
            "2",
            "--to",
            "1",
            "--amount",
            "3",
            "--ledger",
            "1",
            "--pending",
            "--timeout-s",
            "600",
            "--json",
        ],
    );
    let hold = last_json_line(&out);
    assert_eq!(hold["result"], "Ok");
    assert_eq!(hold["kind"], "Pending");
    assert_eq!(hold["from_balances"]["debits_pending"], "3.00");
    let out = ok(
        address,
        &["transfer", "--id", "13", "--post", "12", "--amount", "2"],
    );
    assert!(out.starts_with("transfer 13: Ok (Post 2.00)"), "{out}");

    let out = ok(address, &["account", "show", "1", "2"]);
    assert!(out.contains("account 1\n"), "{out}");
    assert!(out.contains("balance -8.50"), "{out}");
    assert!(out.contains("flags no_overdraft"), "{out}");
    let out = ok(address, &["account", "show", "2", "--json"]);
    let shown = last_json_line(&out);
    assert_eq!(shown["balances"]["balance"], "8.50");
    assert_eq!(shown["balances"]["debits_posted"], "2.00");
    assert_eq!(shown["scale"], 2);
    let err = fails(address, &["account", "show", "1", "404"]);
    assert!(err.contains("not found: 404"), "{err}");
    // History, flows and series: of an account, or an error (not zeros) for none.
    let out = ok(address, &["history", "2", "--json"]);
    assert_eq!(last_json_line(&out)["account"], "2");
    let out = ok(address, &["flows", "2", "--json"]);
    assert_eq!(last_json_line(&out)["out"], "2.00");
    ok(address, &["series", "2", "--days", "1"]);
    for command in ["history", "flows", "series"] {
        let err = fails(address, &[command, "404"]);
        assert!(err.contains("404: no such account"), "{command}: {err}");
    }

    let out = ok(address, &["transfer", "show", "12", "--json"]);
    let shown = last_json_line(&out);
    assert_eq!(shown["hold"], "Posted");
    assert_eq!(shown["amount"], "3.00");

    // Bad flags: clap refuses them before anything is sent, with a message.
    for bad in [
        &[
            "transfer", "--id", "14", "--from", "1", "--to", "2", "--amount", "x", "--ledger", "1",
        ][..],
        &["account", "create", "--id", "0", "--ledger", "1"][..],
        &[
            "account", "create", "--id", "3", "--ledger", "1", "--limit", "5",
        ][..],
        &["transfer", "--from", "1", "--to", "2", "--amount", "1"][..],
        &[
            "transfer",
            "--id",
            "15",
            "--from",
            "1",
            "--to",
            "2",
            "--amount",
            "1",
            "--ledger",
            "1",
            "--memo",
            "a memo far longer than thirty-two bytes",
        ][..],
        &["bench", "--batch-size", "9000"][..],
        &["bench", "--accounts", "0"][..],
        &["bench", "--distribution", "pareto"][..],
        &["bench", "--zipf-s", "-1"][..],
    ] {
        let err = fails(address, bad);
        assert!(err.contains("error:"), "{bad:?}: {err}");
    }
    let err = fails(address, &["bench", "--batch-size", "9000"]);
    assert!(err.contains("1..=8190"), "{err}");
    // A negative amount reaches the ledger's own answer, not an argument-parsing error.
    let err = fails(
        address,
        &[
            "transfer", "--id", "16", "--from", "1", "--to", "2", "--amount", "-5", "--ledger", "1",
        ],
    );
    assert!(err.contains("AmountMustNotBeNegative"), "{err}");
    // A refused transfer shows as refused, with what it asked.
    let out = ok(address, &["transfer", "show", "16"]);
    assert!(out.contains("refused, AmountMustNotBeNegative"), "{out}");
    assert!(
        out.contains("asked: amount 0 (or none the ledger can hold) from 1 to 2 on ledger 1"),
        "{out}"
    );
    fails(
        address,
        &[
            "transfer",
            "--id",
            "17",
            "--from",
            "1",
            "--to",
            "999",
            "--amount",
            "3.25",
            "--ledger",
            "1",
            "--pending",
            "--timeout-s",
            "60",
        ],
    );
    let out = ok(address, &["transfer", "show", "17"]);
    assert!(
        out.contains("refused, CreditAccountNotFound")
            && out.contains("asked: hold of 3.25 for 60 s from 1 to 999 on ledger 1, code 1"),
        "{out}"
    );
    let shown = last_json_line(&ok(address, &["transfer", "show", "17", "--json"]));
    assert_eq!(shown["result"], "CreditAccountNotFound");
    assert_eq!(shown["kind"], "Pending");
    assert_eq!(shown["amount"], "3.25");
    assert_eq!(shown["to"], "999");
    fails(address, &["transfer", "--id", "18", "--post", "4242"]);
    let out = ok(address, &["transfer", "show", "18"]);
    assert!(
        out.contains("refused, PendingTransferNotFound")
            && out.contains("asked: post of hold 4242 (all of it), code 1"),
        "{out}"
    );

    // An unreachable cluster is a clear error, not a hang.
    let err = fails("127.0.0.1:1", &["account", "show", "1"]);
    assert!(err.contains("cannot connect"), "{err}");
}

fn check_bench_report(report: &serde_json::Value) {
    for key in [
        "transfers",
        "seconds",
        "transfers_per_second",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "errors",
        "batch_size",
        "clients",
        "distribution",
        "accounts",
    ] {
        assert!(report.get(key).is_some(), "{key} missing from {report}");
    }
    assert_eq!(report["transfers"], 20_000, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["batch_size"], 1_000);
    assert!(report["transfers_per_second"].as_f64().unwrap_or(0.0) > 0.0);
    let p50 = report["p50_ms"].as_f64().expect("p50");
    let max = report["max_ms"].as_f64().expect("max");
    assert!(p50 > 0.0 && p50 <= max, "{report}");
}

const BENCH: [&str; 8] = [
    "bench",
    "--transfers",
    "20000",
    "--accounts",
    "1000",
    "--batch-size",
    "1000",
    "--json",
];

#[test]
fn bench_against_a_node_reports_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let address = server.address.to_string();
    let out = ok(&address, &BENCH);
    check_bench_report(&last_json_line(&out));
    // Twice on the same node: the accounts exist, the transfer ids are new.
    let out = ok(
        &address,
        &[&BENCH[..], &["--distribution", "hot", "--clients", "2"]].concat(),
    );
    let report = last_json_line(&out);
    check_bench_report(&report);
    assert_eq!(report["distribution"], "hot");
    assert_eq!(report["clients"], 2);
}

#[test]
fn bench_starts_its_own_node() {
    let output = tally(&[&BENCH[..], &["--distribution", "zipfian"]].concat());
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    // --json: the report is the only line on stdout.
    assert_eq!(out.lines().count(), 1, "{out}");
    check_bench_report(&last_json_line(&out));
    assert!(stderr(&output).contains("started a local node"));
}

#[test]
fn bench_starts_a_node_of_several_partitions() {
    let output = tally(&[&BENCH[..], &["--partitions", "3"]].concat());
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let report = last_json_line(&stdout(&output));
    check_bench_report(&report);
    assert_eq!(report["partitions"], 3, "{report}");
    // A running cluster keeps the partitions it was formed with.
    let output = tally(
        &[
            &BENCH[..],
            &["--partitions", "3", "--address", "127.0.0.1:1"],
        ]
        .concat(),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--partitions sets up the temporary node"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bench_open_loop_holds_the_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    let address = server.address.to_string();
    let out = ok(
        &address,
        &[
            "bench",
            "--transfers",
            "2000",
            "--accounts",
            "100",
            "--batch-size",
            "10",
            "--rate",
            "2000",
            "--json",
        ],
    );
    let report = last_json_line(&out);
    assert_eq!(report["mode"], "open");
    assert_eq!(report["transfers"], 2_000);
    assert_eq!(report["errors"], 0);
    // 200 batches scheduled over one second: the run cannot be much shorter.
    let seconds = report["seconds"].as_f64().expect("seconds");
    assert!(seconds > 0.9, "{report}");
}

/// `tally start --help` names every default, and each TOML key is also a flag, validated
/// like the file's value.
#[test]
fn start_flags_have_defaults_and_are_validated() {
    let help = stdout(&tally(&["start", "--help"]));
    for expected in [
        "[default: 127.0.0.1:3000]",
        "[default: ./tally-data]",
        "--queue-depth-max",
        "--connections-max",
        "--election-ticks",
        "--heartbeat-ticks",
        "--checkpoint-interval-entries",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("d");
    for (flag, value, field) in [
        ("--queue-depth-max", "0", "queue_depth_max"),
        ("--connections-max", "0", "connections_max"),
        ("--election-ticks", "1", "election_ticks"),
        ("--heartbeat-ticks", "10", "heartbeat_ticks"),
        (
            "--checkpoint-interval-entries",
            "0",
            "checkpoint_interval_entries",
        ),
    ] {
        let output = tally(&[
            "start",
            "--address",
            "127.0.0.1:0",
            "--data",
            data.to_str().expect("utf-8"),
            flag,
            value,
        ]);
        assert!(!output.status.success(), "{flag} {value} accepted");
        assert!(stderr(&output).contains(field), "{}", stderr(&output));
    }
}

/// A bench whose node dies stops on its own and exits non-zero, saying how many transfers
/// failed and why (it used to fail a batch a second for minutes, then exit 0).
#[test]
fn bench_stops_and_fails_when_its_node_dies() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::single(dir.path());
    let address = server.address.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "bench",
            "--address",
            &address,
            "--transfers",
            "100000000",
            "--accounts",
            "100",
            "--batch-size",
            "10",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bench");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // Wait for progress, then kill the node.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("bench progress within 60 s");
        if line.starts_with("bench:") && line.contains("transfers/s") {
            break;
        }
    }
    server.kill();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut said = Vec::new();
    let status = loop {
        while let Ok(line) = received.try_recv() {
            said.push(line);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "bench still running 120 s after its node died"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    while let Ok(line) = received.recv_timeout(Duration::from_secs(1)) {
        said.push(line);
    }
    let said = said.join("\n");
    assert!(
        !status.success(),
        "bench exited 0 after its node died:\n{said}"
    );
    assert!(
        said.contains("stopped: no batch succeeded for 30 s") && said.contains("failed ("),
        "{said}"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout"), &mut out)
        .expect("stdout");
    let report = last_json_line(&out);
    assert!(report["errors"].as_u64().expect("errors") > 0, "{report}");
    assert!(report["stalled"].is_string(), "{report}");
}

#[test]
fn start_writes_json_logs_and_names_planted_bugs() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["start", "--address", "127.0.0.1:0", "--data", data])
        .args(["--log-format", "json", "--unsafe-bug", "skip-fsync"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tally");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    std::io::BufReader::new(stderr)
        .read_line(&mut line)
        .expect("a log line");
    let _ = child.kill();
    let _ = child.wait();
    let entry: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    // The first line warns, loudly, that the node loses data on purpose.
    assert_eq!(entry["level"], "ERROR", "{line}");
    let message = entry["fields"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("UNSAFE"), "{line}");
    assert!(
        entry["fields"]["bugs"].to_string().contains("SkipFsync"),
        "{line}"
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["start", "--data", data, "--unsafe-bug", "no-such-bug"])
        .output()
        .expect("run tally");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("skip-fsync, apply-before-commit"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// `tally status` from any node of a 3-node, 2-partition cluster shows every node answering
/// and every partition led, each with three replicas; with one node killed, asked of another
/// node, it names the dead node as degraded and still exits 0. Asked only of a dead
/// address, it fails.
#[test]
fn status_shows_every_node_and_what_is_degraded() {
    let mut cluster = common::Cluster::start(3, &["--partitions", "2", "--tick-ms", "20"]);
    cluster.wait_for_leaders();
    let address = cluster.addresses[2].to_string();
    let status = |address: &str| -> serde_json::Value {
        let text = ok(address, &["status", "--json"]);
        serde_json::from_str(text.trim()).expect("one JSON object")
    };
    // Leaders known to every node may take a few ticks after the first answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let healthy = loop {
        let s = status(&address);
        if s["healthy"] == true {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "never healthy: {s}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(healthy["nodes"].as_array().expect("nodes").len(), 3);
    assert_eq!(healthy["answered_by"], 3);
    let partitions = healthy["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 2);
    for partition in partitions {
        assert!(partition["leader"].is_u64(), "{partition}");
        let replicas = partition["replicas"].as_array().expect("replicas");
        assert_eq!(replicas.len(), 3, "{partition}");
        let leaders = replicas.iter().filter(|r| r["role"] == "leader").count();
        assert_eq!(leaders, 1, "{partition}");
    }
    let text = ok(&address, &["status"]);
    assert!(text.contains("healthy"), "{text}");

    cluster.kill(0);
    let degraded = status(&address);
    assert_eq!(degraded["healthy"], false);
    let nodes = degraded["nodes"].as_array().expect("nodes");
    let dead = nodes.iter().find(|n| n["id"] == 1).expect("node 1");
    assert_eq!(dead["answered"], false, "{degraded}");
    assert!(
        degraded["degraded"]
            .as_array()
            .expect("degraded")
            .iter()
            .any(|d| d
                .as_str()
                .is_some_and(|d| d.starts_with("node 1 did not answer"))),
        "{degraded}"
    );
    let refused = tally(&["status", "--address", &cluster.addresses[0].to_string()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no node answered"),
        "{}",
        stderr(&refused)
    );
}

/// A shop purchase from a shell: the charge and the item granted in one linked chain, applied
/// together or not at all.
#[test]
fn batch_applies_a_linked_chain_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(&dir.path().join("data"));
    let address = server.address.to_string();
    let address = address.as_str();
    ok(address, &["ledger", "create", "--id", "1", "--scale", "2"]);
    ok(address, &["ledger", "create", "--id", "2", "--scale", "0"]);
    for (id, ledger, flags) in [
        ("10", "1", &["--no-overdraft"][..]),
        ("11", "1", &[][..]),
        ("12", "1", &[][..]),
        ("20", "2", &[][..]),
        ("21", "2", &[][..]),
    ] {
        let mut args = vec!["account", "create", "--id", id, "--ledger", ledger];
        args.extend_from_slice(flags);
        ok(address, &args);
    }
    // The player (10) gets 5.00 of credits from the issuer (12).
    ok(
        address,
        &[
            "transfer", "--id", "1", "--from", "12", "--to", "10", "--amount", "5", "--ledger", "1",
        ],
    );

    let purchase = |first: u64| {
        format!(
            "{{\"id\": {first}, \"from\": 10, \"to\": 11, \"amount\": \"4.99\", \"ledger\": 1, \"linked\": true}}\n\
             {{\"id\": \"{}\", \"from\": 20, \"to\": 21, \"amount\": 1, \"ledger\": 2, \"memo\": \"sword\"}}\n",
            first + 1
        )
    };
    let file = dir.path().join("purchase.jsonl");
    std::fs::write(&file, purchase(100)).expect("write");
    let out = ok(address, &["batch", file.to_str().expect("utf-8")]);
    assert!(
        out.contains("transfer 100: Ok (Plain 4.99 from 10 to 11)"),
        "{out}"
    );
    assert!(
        out.contains("transfer 101: Ok (Plain 1 from 20 to 21)"),
        "{out}"
    );

    // Again, from stdin, as JSON: 0.01 left, so the charge fails and takes the item with it.
    let output = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["batch", "-", "--json", "--address", address])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(purchase(200).as_bytes())?;
            child.wait_with_output()
        })
        .expect("run tally batch");
    assert!(!output.status.success(), "{}", stdout(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["result"], "ExceedsCredits");
    assert_eq!(lines[1]["result"], "LinkedEventFailed");
    assert!(stderr(&output).contains("2 of 2 transfers not applied"));
    let items = ok(address, &["account", "show", "21", "--json"]);
    assert_eq!(
        last_json_line(&items)["balances"]["balance"],
        "1",
        "{items}"
    );

    // A bad line stops everything before anything is sent.
    std::fs::write(
        &file,
        format!("{}{{\"id\": 302, \"from\": 20}}\n", purchase(300)),
    )
    .expect("write");
    let err = fails(address, &["batch", file.to_str().expect("utf-8")]);
    assert!(err.contains("line 3: to is required"), "{err}");
    let err = fails(address, &["transfer", "show", "300"]);
    assert!(err.contains("not found"), "{err}");
}
