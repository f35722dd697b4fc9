//! `tally gateway`: credits, a shop, rewards and transfers as a JSON API over HTTP, on a Tally
//! cluster. Stateless: every id is derived from what the caller sends (`ids.rs`), so any
//! number of instances serve the same players, and a retry with the same `Idempotency-Key`
//! through any of them, after any crash, is applied once and answered the original result.
//!
//! - `config`: services (bearer tokens and the games they may use), games (ledgers, catalog),
//!   rate limits.
//! - `app`: state, authentication, idempotency keys, account creation on first use.
//! - `credits`, `shop`, `rewards`, `transfers`: the four services.
//! - `error`: JSON errors with stable codes and conventional statuses.
//! - `limits`: token buckets for the rewards endpoints.
//! - `ui`: `/ui/accounts/{id}`, a page with the balance, history and a 30-day chart.
//!
//! The API is described by an OpenAPI 3 document generated from the handlers (utoipa),
//! served at `/openapi.json`.

pub mod app;
pub mod config;
pub mod credits;
pub mod error;
pub mod ids;
pub mod limits;
pub mod rewards;
pub mod shop;
pub mod transfers;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use app::AppState;
pub use config::GatewayConfig;

/// The OpenAPI document of the gateway.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tally gateway", description = "Credits, shop, rewards and transfers on Tally. \
        Every write takes an Idempotency-Key header; amounts are decimal strings; errors are \
        {\"error\": {\"code\", \"message\"}} with the ledger's result name as code."),
    paths(
        credits::add, credits::spend, credits::refund, credits::balance, credits::history,
        shop::catalog, shop::purchase, shop::show, shop::complete, shop::cancel, shop::refund,
        shop::entitlements,
        rewards::earn, rewards::reserve, rewards::complete, rewards::release, rewards::balance,
        rewards::events,
        transfers::create, transfers::flows, transfers::series,
        health,
    ),
    modifiers(&Bearer),
    tags((name = "credits"), (name = "shop"), (name = "rewards"), (name = "transfers"))
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Whether the gateway can reach the ledger.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable`.
    pub status: String,
    /// The ledger's partitions, when reachable.
    pub partitions: Option<u32>,
}

/// 200 when the ledger answers, 503 when not.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Health>) {
    match state.client.cluster_info().await {
        Ok(info) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                partitions: Some(info.partition_count),
            }),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                partitions: None,
            }),
        ),
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The gateway's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let player = "/v1/games/{game}/players/{player}";
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(health))
        .route(&format!("{player}/credits"), get(credits::balance))
        .route(&format!("{player}/credits/add"), post(credits::add))
        .route(&format!("{player}/credits/spend"), post(credits::spend))
        .route(&format!("{player}/credits/refund"), post(credits::refund))
        .route(&format!("{player}/credits/history"), get(credits::history))
        .route("/v1/games/{game}/items", get(shop::catalog))
        .route(&format!("{player}/purchases"), post(shop::purchase))
        .route(&format!("{player}/purchases/{{order}}"), get(shop::show))
        .route(
            &format!("{player}/purchases/{{order}}/complete"),
            post(shop::complete),
        )
        .route(
            &format!("{player}/purchases/{{order}}/cancel"),
            post(shop::cancel),
        )
        .route(
            &format!("{player}/purchases/{{order}}/refunds"),
            post(shop::refund),
        )
        .route(&format!("{player}/entitlements"), get(shop::entitlements))
        .route(&format!("{player}/rewards"), get(rewards::balance))
        .route(&format!("{player}/rewards/earn"), post(rewards::earn))
        .route(&format!("{player}/rewards/events"), get(rewards::events))
        .route(&format!("{player}/rewards/reserve"), post(rewards::reserve))
        .route(
            &format!("{player}/rewards/reservations/{{reservation}}/complete"),
            post(rewards::complete),
        )
        .route(
            &format!("{player}/rewards/reservations/{{reservation}}/release"),
            post(rewards::release),
        )
        .route("/ui/accounts/{id}", get(ui::account_page))
        .route("/v1/games/{game}/transfers", post(transfers::create))
        .route(&format!("{player}/flows"), get(transfers::flows))
        .route(&format!("{player}/series"), get(transfers::series))
        .with_state(state)
}

/// Connects to the cluster at `tally`, and serves on `listen` until the process ends.
/// Prints `tally gateway listening on http://ADDR` once it accepts requests.
pub async fn serve(
    config: GatewayConfig,
    tally: &[String],
    listen: SocketAddr,
) -> Result<(), String> {
    let client = tally_client::Client::connect(tally, tally_client::ClientOptions::default())
        .await
        .map_err(|e| format!("cannot reach the cluster at {}: {e}", tally.join(",")))?;
    let state = Arc::new(AppState::new(config, client).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tally gateway listening on http://{address}");
        let _ = out.flush();
    }
    axum::serve(listener, router(state))
        .await
        .map_err(|e| format!("the gateway stopped: {e}"))
}
