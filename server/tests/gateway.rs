//! `tally gateway` end to end: a real node, a real gateway process, a real HTTP client, for
//! every flow: credits with retries and races, the shop (pending, completed, cancelled,
//! refunds, a gateway killed between steps), rewards, transfers and their queries, the
//! OpenAPI document, and the refusals (no token, another game, no key).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Server;
use serde_json::{json, Value};

const TOKEN: &str = "test-token-of-the-game-backend";
const OTHER: &str = "test-token-of-another-service";

const CONFIG: &str = r#"
[[services]]
name = "backend"
token = "test-token-of-the-game-backend"
games = [1]

[[services]]
name = "other"
token = "test-token-of-another-service"
games = [2]

[[games]]
id = 1
credits_ledger = 10
credits_scale = 2
points_ledger = 11
items_ledger = 12
items = [{ id = "sword", price = "9.99" }, { id = "shield", price = "4.50" }]

[[games]]
id = 2
credits_ledger = 20
points_ledger = 21
items_ledger = 22

[rate_limits]
player_per_s = 1000
"#;

/// A `tally gateway` process, killed when dropped.
struct Gateway {
    child: Child,
    base: String,
}

impl Gateway {
    fn start(node: &Server, config: &std::path::Path) -> Gateway {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["gateway", "--listen", "127.0.0.1:0", "--tally"])
            .arg(node.address.to_string())
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tally gateway");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the address line");
        let base = line
            .trim()
            .strip_prefix("tally gateway listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Gateway { child, base }
    }

    /// `METHOD path` with the token and key given: the status and the JSON body.
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let url = format!("{}{path}", self.base);
        let mut response = match method {
            "GET" => {
                let mut request = agent.get(&url);
                if let Some(token) = token {
                    request = request.header("Authorization", &format!("Bearer {token}"));
                }
                request.call()
            }
            _ => {
                let mut request = agent.post(&url).header("Content-Type", "application/json");
                if let Some(token) = token {
                    request = request.header("Authorization", &format!("Bearer {token}"));
                }
                if let Some(key) = key {
                    request = request.header("Idempotency-Key", key);
                }
                request.send(body.unwrap_or(json!({})).to_string())
            }
        }
        .expect("an HTTP answer");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(TOKEN), Some(key), Some(body))
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, Some(TOKEN), None, None)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn setup() -> (tempfile::TempDir, Server, Gateway, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Server::single(&dir.path().join("data"));
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, CONFIG).expect("the gateway's config");
    let gateway = Gateway::start(&node, &config);
    (dir, node, gateway, config)
}

const ALICE: &str = "/v1/games/1/players/alice";

#[test]
fn credits_are_exactly_once_never_overdrawn_and_refunded_at_most_in_full() {
    let (_dir, _node, gw, _) = setup();
    let (status, added) = gw.post(
        &format!("{ALICE}/credits/add"),
        "add-1",
        json!({"amount": "10.00"}),
    );
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["after"]["balance"], "10.00");
    // A retry is answered the original result; the same key with another body is refused.
    let (status, again) = gw.post(
        &format!("{ALICE}/credits/add"),
        "add-1",
        json!({"amount": "10.00"}),
    );
    assert_eq!((status, &again), (200, &added));
    let (status, reused) = gw.post(
        &format!("{ALICE}/credits/add"),
        "add-1",
        json!({"amount": "5"}),
    );
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (409, Some("exists_with_different_fields"))
    );
    let (status, _) = gw.post(
        &format!("{ALICE}/credits/spend"),
        "add-1",
        json!({"amount": "1"}),
    );
    assert_eq!(
        status, 409,
        "a key names one request, whatever the operation"
    );

    let (status, spent) = gw.post(
        &format!("{ALICE}/credits/spend"),
        "spend-1",
        json!({"amount": "4"}),
    );
    assert_eq!(
        (status, spent["after"]["balance"].as_str()),
        (200, Some("6.00")),
        "{spent}"
    );
    let (status, refused) = gw.post(
        &format!("{ALICE}/credits/spend"),
        "spend-2",
        json!({"amount": "100"}),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("exceeds_credits"))
    );
    let (status, _) = gw.post(
        &format!("{ALICE}/credits/refund"),
        "refund-1",
        json!({"spend_key": "spend-1", "amount": "3"}),
    );
    assert_eq!(status, 200);
    let (status, over) = gw.post(
        &format!("{ALICE}/credits/refund"),
        "refund-2",
        json!({"spend_key": "spend-1", "amount": "2"}),
    );
    assert_eq!(
        (status, over["error"]["code"].as_str()),
        (409, Some("refund_exceeds_remaining"))
    );
    let (status, missing) = gw.post(
        &format!("{ALICE}/credits/refund"),
        "refund-3",
        json!({"spend_key": "never", "amount": "1"}),
    );
    assert_eq!(status, 404, "{missing}");
    let (_, balance) = gw.get(&format!("{ALICE}/credits"));
    assert_eq!(balance["balance"], "9.00");
    let (_, history) = gw.get(&format!("{ALICE}/credits/history?limit=10"));
    let kinds: Vec<&str> = history["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["refund", "plain", "plain"], "newest first");

    // Bad input changes nothing.
    let (status, _) = gw.call(
        "POST",
        &format!("{ALICE}/credits/add"),
        None,
        Some("x"),
        Some(json!({"amount": "1"})),
    );
    assert_eq!(status, 401);
    let (status, _) = gw.call(
        "POST",
        &format!("{ALICE}/credits/add"),
        Some("wrong-token-wrong-token"),
        Some("x"),
        Some(json!({"amount": "1"})),
    );
    assert_eq!(status, 401);
    let (status, _) = gw.call(
        "POST",
        "/v1/games/1/players/alice/credits/add",
        Some(OTHER),
        Some("x"),
        Some(json!({"amount": "1"})),
    );
    assert_eq!(status, 403, "the other service may not use game 1");
    let (status, _) = gw.call(
        "POST",
        &format!("{ALICE}/credits/add"),
        Some(TOKEN),
        None,
        Some(json!({"amount": "1"})),
    );
    assert_eq!(status, 400, "no Idempotency-Key");
    for bad in [
        json!({"amount": "-1"}),
        json!({"amount": "ten"}),
        json!({"amount": "1.001"}),
        json!({"amount": 1}),
    ] {
        let (status, body) = gw.post(&format!("{ALICE}/credits/add"), "bad", bad.clone());
        assert!((400..500).contains(&status), "{bad} gave {status} {body}");
    }
    // Bodies and paths that do not parse are refused in the same JSON form.
    let (status, body) = gw.post(&format!("{ALICE}/credits/add"), "bad", json!({"amount": 1}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = gw.post(
        "/v1/games/one/players/alice/credits/add",
        "bad",
        json!({"amount": "1"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (_, balance) = gw.get(&format!("{ALICE}/credits"));
    assert_eq!(balance["balance"], "9.00");
}

#[test]
fn concurrent_spends_racing_for_the_last_credits_never_overdraw() {
    let (_dir, _node, gw, _) = setup();
    let bob = "/v1/games/1/players/bob";
    assert_eq!(
        gw.post(
            &format!("{bob}/credits/add"),
            "fund",
            json!({"amount": "10"})
        )
        .0,
        200
    );
    let gw = std::sync::Arc::new(gw);
    let threads: Vec<_> = (0..20)
        .map(|n| {
            let gw = gw.clone();
            std::thread::spawn(move || {
                gw.post(
                    &format!("{bob}/credits/spend"),
                    &format!("race-{n}"),
                    json!({"amount": "1"}),
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(gw.get(&format!("{bob}/credits")).1["balance"], "0.00");
}

#[test]
fn a_purchase_is_pending_then_completed_or_cancelled_and_refunds_take_items_back() {
    let (_dir, node, gw, config) = setup();
    assert_eq!(
        gw.post(
            &format!("{ALICE}/credits/add"),
            "fund",
            json!({"amount": "30"})
        )
        .0,
        200
    );
    let items =
        json!({"items": [{"item": "sword", "quantity": 2}, {"item": "shield", "quantity": 1}]});
    let (status, order) = gw.post(&format!("{ALICE}/purchases"), "order-1", items.clone());
    assert_eq!(
        (status, order["status"].as_str(), order["total"].as_str()),
        (200, Some("pending"), Some("24.48")),
        "{order}"
    );
    let credits = gw.get(&format!("{ALICE}/credits")).1;
    assert_eq!(
        (credits["balance"].as_str(), credits["available"].as_str()),
        (Some("30.00"), Some("5.52"))
    );
    // The gateway dies between creating and completing; another one finishes the order.
    drop(gw);
    let gw = Gateway::start(&node, &config);
    let (status, again) = gw.post(&format!("{ALICE}/purchases"), "order-1", items);
    assert_eq!(
        (status, again["status"].as_str()),
        (200, Some("pending")),
        "a retry finds the order"
    );
    let (status, done) = gw.post(
        &format!("{ALICE}/purchases/order-1/complete"),
        "c",
        json!({}),
    );
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("completed")),
        "{done}"
    );
    let (status, done) = gw.post(
        &format!("{ALICE}/purchases/order-1/complete"),
        "c",
        json!({}),
    );
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("completed")),
        "completing twice is one completion"
    );
    assert_eq!(
        gw.get(&format!("{ALICE}/credits")).1["balance"],
        "5.52",
        "charged once"
    );
    let owned = gw.get(&format!("{ALICE}/entitlements")).1;
    assert_eq!(
        owned,
        json!([{"item": "sword", "owned": 2, "reserved": 0}, {"item": "shield", "owned": 1, "reserved": 0}])
    );

    let (status, refunded) = gw.post(
        &format!("{ALICE}/purchases/order-1/refunds"),
        "r1",
        json!({"items": [{"item": "sword", "quantity": 1}]}),
    );
    assert_eq!(
        (status, refunded["refunded"].as_str()),
        (200, Some("9.99")),
        "{refunded}"
    );
    assert_eq!(gw.get(&format!("{ALICE}/credits")).1["balance"], "15.51");
    assert_eq!(gw.get(&format!("{ALICE}/entitlements")).1[0]["owned"], 1);
    let (status, _) = gw.post(
        &format!("{ALICE}/purchases/order-1/refunds"),
        "r2",
        json!({"items": [{"item": "sword", "quantity": 2}]}),
    );
    assert_eq!(status, 409, "never more than was bought");

    // Cancelled: the hold is released; then it cannot be completed.
    let (status, _) = gw.post(
        &format!("{ALICE}/purchases"),
        "order-2",
        json!({"items": [{"item": "shield", "quantity": 2}]}),
    );
    assert_eq!(status, 200);
    assert_eq!(gw.get(&format!("{ALICE}/credits")).1["available"], "6.51");
    let (status, cancelled) = gw.post(&format!("{ALICE}/purchases/order-2/cancel"), "x", json!({}));
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled"))
    );
    assert_eq!(gw.get(&format!("{ALICE}/credits")).1["available"], "15.51");
    assert_eq!(
        gw.post(
            &format!("{ALICE}/purchases/order-2/complete"),
            "x",
            json!({})
        )
        .0,
        409
    );
    // More than the wallet holds, and items not in the catalog, are refused whole.
    let (status, poor) = gw.post(
        &format!("{ALICE}/purchases"),
        "order-3",
        json!({"items": [{"item": "sword", "quantity": 9}]}),
    );
    assert_eq!(
        (status, poor["error"]["code"].as_str()),
        (409, Some("exceeds_credits"))
    );
    assert_eq!(
        gw.post(
            &format!("{ALICE}/purchases"),
            "order-4",
            json!({"items": [{"item": "castle", "quantity": 1}]})
        )
        .0,
        404
    );
    assert_eq!(gw.get(&format!("{ALICE}/entitlements")).1[0]["reserved"], 0);
}

#[test]
fn rewards_are_reserved_then_completed_or_released() {
    let (_dir, _node, gw, _) = setup();
    let carol = "/v1/games/1/players/carol";
    assert_eq!(
        gw.post(
            &format!("{carol}/rewards/earn"),
            "e1",
            json!({"points": "10", "action": "level"})
        )
        .0,
        200
    );
    let (status, r) = gw.post(
        &format!("{carol}/rewards/reserve"),
        "r1",
        json!({"points": "4"}),
    );
    assert_eq!(
        (status, r["reservation"].as_str()),
        (200, Some("r1")),
        "{r}"
    );
    assert_eq!(gw.get(&format!("{carol}/rewards")).1["available"], "6");
    assert_eq!(
        gw.post(
            &format!("{carol}/rewards/reservations/r1/complete"),
            "k",
            json!({})
        )
        .0,
        200
    );
    assert_eq!(gw.get(&format!("{carol}/rewards")).1["balance"], "6");
    assert_eq!(
        gw.post(
            &format!("{carol}/rewards/reserve"),
            "r2",
            json!({"points": "3"})
        )
        .0,
        200
    );
    assert_eq!(
        gw.post(
            &format!("{carol}/rewards/reservations/r2/release"),
            "k",
            json!({})
        )
        .0,
        200
    );
    let (status, late) = gw.post(
        &format!("{carol}/rewards/reservations/r2/complete"),
        "k",
        json!({}),
    );
    assert_eq!(
        (status, late["error"]["code"].as_str()),
        (409, Some("pending_transfer_already_voided"))
    );
    let points = gw.get(&format!("{carol}/rewards")).1;
    assert_eq!(
        (points["balance"].as_str(), points["available"].as_str()),
        (Some("6"), Some("6"))
    );
    assert_eq!(
        gw.post(
            &format!("{carol}/rewards/reserve"),
            "r3",
            json!({"points": "7"})
        )
        .0,
        409,
        "more than earned"
    );
}

#[test]
fn transfers_and_their_flows_and_series_and_the_openapi_document() {
    let (_dir, _node, gw, _) = setup();
    assert_eq!(
        gw.post(
            &format!("{ALICE}/credits/add"),
            "fund",
            json!({"amount": "5"})
        )
        .0,
        200
    );
    let (status, sent) = gw.post(
        "/v1/games/1/transfers",
        "t1",
        json!({"from": "alice", "to": "dave", "amount": "2.25"}),
    );
    assert_eq!(
        (status, sent["after"]["balance"].as_str()),
        (200, Some("2.75")),
        "{sent}"
    );
    let flows = gw.get(&format!("{ALICE}/flows")).1;
    assert_eq!(
        (flows["incoming"].as_str(), flows["outgoing"].as_str()),
        (Some("5.00"), Some("2.25")),
        "{flows}"
    );
    let series = gw.get(&format!("{ALICE}/series?days=30")).1;
    let points = series.as_array().expect("points");
    assert_eq!(points.len(), 30 * 24);
    assert_eq!(points.last().unwrap()["balance"], "2.75");
    assert_eq!(
        gw.get("/v1/games/1/players/dave/credits").1["balance"],
        "2.25"
    );

    let (status, doc) = gw.call("GET", "/openapi.json", None, None, None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/games/{game}/players/{player}/credits/add",
        "/v1/games/{game}/players/{player}/purchases",
        "/v1/games/{game}/transfers",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert_eq!(gw.call("GET", "/healthz", None, None, None).0, 200);
    // The document validates as OpenAPI (PyPI's openapi-spec-validator; .ci/run installs it).
    let file = _dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let checked = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        checked.status.success(),
        "openapi-spec-validator (pip install openapi-spec-validator): {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // A client generated from the document calls the gateway (PyPI's openapi-python-client;
    // .ci/run installs it).
    let generated = _dir.path().join("generated");
    let made = Command::new("openapi-python-client")
        .args(["generate", "--path"])
        .arg(&file)
        .arg("--output-path")
        .arg(&generated)
        .output()
        .expect("openapi-python-client (pip install openapi-python-client)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let script = r#"
import sys
from tally_gateway_client import AuthenticatedClient
from tally_gateway_client.api.credits_ import credits_add, credits_balance
from tally_gateway_client.models import CreditsRequest
client = AuthenticatedClient(base_url=sys.argv[1], token=sys.argv[2])
answer = credits_add.sync(1, "zoe", client=client, body=CreditsRequest(amount="3.50"), idempotency_key="generated-1")
print(answer.after.balance, credits_balance.sync(1, "zoe", client=client).balance)
"#;
    let called = Command::new("python3")
        .args(["-c", script, &gw.base, TOKEN])
        .env("PYTHONPATH", &generated)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&called.stdout).trim(),
        "3.50 3.50",
        "{}",
        String::from_utf8_lossy(&called.stderr)
    );
}

#[test]
fn rewards_changes_arrive_as_server_sent_events() {
    use std::io::Read;
    let (_dir, _node, gw, _) = setup();
    let erin = "/v1/games/1/players/erin";
    // The player's accounts exist once the first reward is earned.
    assert_eq!(
        gw.post(
            &format!("{erin}/rewards/earn"),
            "e0",
            json!({"points": "1"})
        )
        .0,
        200
    );
    let address = gw.base.strip_prefix("http://").unwrap().to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    use std::io::Write;
    write!(
        stream,
        "GET {erin}/rewards/events HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    // Read the response head, then earn and reserve; both arrive as events.
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut sent = false;
    while !(seen.contains("event: earned") && seen.contains("event: reserved")) {
        assert!(
            std::time::Instant::now() < deadline,
            "events never came: {seen}"
        );
        let n = stream.read(&mut buf).expect("the event stream");
        assert!(n > 0, "the event stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !sent && seen.contains("text/event-stream") {
            sent = true;
            assert_eq!(
                gw.post(
                    &format!("{erin}/rewards/earn"),
                    "e1",
                    json!({"points": "5"})
                )
                .0,
                200
            );
            assert_eq!(
                gw.post(
                    &format!("{erin}/rewards/reserve"),
                    "r1",
                    json!({"points": "2"})
                )
                .0,
                200
            );
        }
    }
    assert!(seen.contains("\"available\":\"4\""), "{seen}");
}

#[test]
fn the_account_page_shows_balance_history_and_a_chart_in_a_browser() {
    let (dir, _node, gw, _) = setup();
    let (_, added) = gw.post(
        &format!("{ALICE}/credits/add"),
        "fund",
        json!({"amount": "12.34"}),
    );
    assert_eq!(
        gw.post(
            &format!("{ALICE}/credits/spend"),
            "s",
            json!({"amount": "2.34"})
        )
        .0,
        200
    );
    // The wallet's id, from the history of the transfer that funded it.
    let _ = added;
    let history = gw.get(&format!("{ALICE}/credits/history")).1;
    assert_eq!(history["entries"].as_array().unwrap().len(), 2);
    let (status, page) = gw.call("GET", "/ui/accounts/1?token=x", None, None, None);
    assert_eq!(status, 401, "{page}");
    let wallet = tally_gateway_wallet(1, "alice");
    let url = format!("{}/ui/accounts/{wallet}?token={TOKEN}", gw.base);
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("headless Chromium (Debian's chromium; .ci/run installs it)");
    let output = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("chromium").display()
        ))
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains("id=\"balance\">10.00<"), "{dom}");
    assert!(
        dom.contains("<svg") && dom.contains("days ago"),
        "no chart: {dom}"
    );
    assert_eq!(
        dom.matches("<tr>").count(),
        3,
        "a header and two history rows: {dom}"
    );
}

/// The id the gateway gives a player's credits account (ids are derived, not stored).
fn tally_gateway_wallet(game: u32, player: &str) -> u128 {
    tally_gateway::ids::Ids { partitions: 1 }.wallet(game, player)
}
