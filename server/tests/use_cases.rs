//! The four use cases of DESIGN §1 through the client crate, end to end: the example programs
//! of `client/examples/` (credits, shop purchase with refund, rewards reserve/complete,
//! transfers with 24h flows and the hourly series) run against one real node and against a
//! real 3-node cluster with 2 partitions. Each example exits non-zero if a step fails
//! unexpectedly; this test also checks the lines that prove the rules held (an over-refund
//! refused, a double completion refused, the final balances).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Server;

fn examples_dir() -> PathBuf {
    // target/<profile>/deps/use_cases-<hash> -> target/<profile>/examples
    let exe = std::env::current_exe().expect("test executable");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let dir = profile.join("examples");
    if !dir.join("credits").exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "tally-client", "--examples"]);
        if profile.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build --examples");
        assert!(status.success(), "building the client examples failed");
    }
    dir
}

fn run(example: &str, address: &str) -> String {
    let output = Command::new(examples_dir().join(example))
        .arg(address)
        .output()
        .expect("run example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{example} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn has(output: &str, words: &[&str]) -> bool {
    output
        .lines()
        .any(|line| words.iter().all(|w| line.contains(w)))
}

fn all_use_cases(address: &str) {
    let credits = run("credits", address);
    assert!(
        has(&credits, &["refused", "RefundExceedsRemaining"]),
        "{credits}"
    );
    assert!(has(&credits, &["player", "balance", "100"]), "{credits}");
    assert!(
        has(&credits, &["Refund", "+20", "balance", "100"]),
        "audit history:\n{credits}"
    );
    let shop = run("shop", address);
    assert!(has(&shop, &["player wallet", "balance", "350"]), "{shop}");
    assert!(has(&shop, &["player's shield", "balance", " 0"]), "{shop}");
    assert!(has(&shop, &["player's sword", "balance", "1"]), "{shop}");
    let rewards = run("rewards", address);
    assert!(
        has(&rewards, &["refused", "PendingTransferAlreadyPosted"]),
        "{rewards}"
    );
    assert!(has(&rewards, &["2000/2000 ok"]), "{rewards}");
    let transfers = run("transfers", address);
    assert!(
        has(&transfers, &["refused", "AmountTooManyDecimals"]),
        "{transfers}"
    );
    assert!(
        has(&transfers, &["in ", "105.01"]),
        "24h flows:\n{transfers}"
    );
    assert!(
        has(&transfers, &["hourly points"]),
        "30-day series:\n{transfers}"
    );
}

#[test]
fn use_cases_on_one_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::single(dir.path());
    all_use_cases(&server.address.to_string());
}

#[test]
fn use_cases_on_three_nodes() {
    let cluster = common::Cluster::start(3, &["--partitions", "2", "--tick-ms", "20"]);
    cluster.wait_for_leaders();
    // Any node will do: the client finds the leader.
    all_use_cases(&cluster.addresses[2].to_string());
}
