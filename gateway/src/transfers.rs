//! Transfers of credits between two players of a game, and each player's flows over the past
//! hours and hourly balances over the past days.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tally_client::{to_decimal, AccountId, FlowsQuery, SeriesQuery, Timestamp};
use utoipa::{IntoParams, ToSchema};

use crate::app::{
    amount, check_name, now_ns, plain, AppState, Body, Caller, IdempotencyKey, Params, QueryParams,
    WriteAnswer,
};
use crate::credits::wallet;
use crate::error::{ApiError, ErrorBody};

const HOUR_NS: u64 = 3_600_000_000_000;

/// A transfer between two players.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The paying player.
    pub from: String,
    /// The paid player.
    pub to: String,
    /// A positive decimal string.
    pub amount: String,
}

/// Moves credits from one player to another, only with enough balance.
#[utoipa::path(operation_id = "transfers_create", post, path = "/v1/games/{game}/transfers", tag = "transfers",
    params(("game" = u32, Path), ("Idempotency-Key" = String, Header)),
    request_body = TransferRequest,
    responses((status = 200, body = WriteAnswer, description = "`after` is the payer's account"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params(game): Params<u32>,
    Body(body): Body<TransferRequest>,
) -> Result<Json<WriteAnswer>, ApiError> {
    let game = caller.game(&state, game)?;
    let value = amount("amount", &body.amount)?;
    let from = wallet(&state, game, &body.from).await?;
    let to = wallet(&state, game, &body.to).await?;
    let id = state.ids.transfer(&caller.0.name, &key, "0", from.wallet);
    let outcome = state
        .transfer(plain(
            id,
            from.wallet,
            to.wallet,
            value,
            game.credits_ledger,
        ))
        .await?;
    Ok(Json(WriteAnswer::of(
        id,
        &outcome,
        true,
        game.credits_scale,
    )))
}

/// The window of a flows query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsParams {
    /// Hours back from now (1 to 8784, default 24).
    pub hours: Option<u32>,
}

/// Money in and out over a window.
#[derive(Serialize, ToSchema)]
pub struct FlowsView {
    /// Start of the window, ns since the Unix epoch (inclusive).
    pub from: u64,
    /// End of the window (exclusive): now.
    pub to: u64,
    /// Credits that came in.
    pub incoming: String,
    /// Credits that went out.
    pub outgoing: String,
}

/// A player's credits in and out over the past hours (24 by default).
#[utoipa::path(operation_id = "transfers_flows", get, path = "/v1/games/{game}/players/{player}/flows", tag = "transfers",
    params(("game" = u32, Path), ("player" = String, Path), FlowsParams),
    responses((status = 200, body = FlowsView)),
    security(("bearer" = [])))]
pub async fn flows(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
    QueryParams(params): QueryParams<FlowsParams>,
) -> Result<Json<FlowsView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let hours = params.hours.unwrap_or(24);
    if !(1..=8784).contains(&hours) {
        return Err(ApiError::invalid("hours must be 1 to 8784"));
    }
    let to = now_ns();
    let from = to.saturating_sub(u64::from(hours) * HOUR_NS);
    let flows = state
        .client
        .account_flows(FlowsQuery {
            account: AccountId(state.ids.wallet(game.id, &player)),
            time_min: Timestamp(from),
            time_max: Timestamp(to),
        })
        .await?;
    let d = |v: u128| {
        to_decimal(v, game.credits_scale)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Json(FlowsView {
        from,
        to,
        incoming: d(flows.credits_total),
        outgoing: d(flows.debits_total),
    }))
}

/// The range of a series.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Days back from now (1 to 366, default 30).
    pub days: Option<u32>,
}

/// One hour's closing balance.
#[derive(Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the hour, ns since the Unix epoch.
    pub hour: u64,
    /// Posted credits minus debits at its end.
    pub balance: String,
}

/// A player's hourly closing balances over the past days (30 by default), oldest first.
#[utoipa::path(operation_id = "transfers_series", get, path = "/v1/games/{game}/players/{player}/series", tag = "transfers",
    params(("game" = u32, Path), ("player" = String, Path), SeriesParams),
    responses((status = 200, body = [SeriesPoint])),
    security(("bearer" = [])))]
pub async fn series(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
    QueryParams(params): QueryParams<SeriesParams>,
) -> Result<Json<Vec<SeriesPoint>>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let points = hourly(
        &state,
        game.id,
        game.credits_scale,
        &player,
        params.days.unwrap_or(30),
    )
    .await?;
    Ok(Json(points))
}

/// The hourly series of a player's credits over `days` days.
pub async fn hourly(
    state: &AppState,
    game: u32,
    scale: u8,
    player: &str,
    days: u32,
) -> Result<Vec<SeriesPoint>, ApiError> {
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days must be 1 to 366"));
    }
    let to = now_ns() / HOUR_NS * HOUR_NS + HOUR_NS;
    let from = to - u64::from(days) * 24 * HOUR_NS;
    let series = state
        .client
        .balance_series(SeriesQuery {
            account: AccountId(state.ids.wallet(game, player)),
            time_min: Timestamp(from),
            time_max: Timestamp(to),
        })
        .await?;
    let d = |v: u128| to_decimal(v, scale).unwrap_or_default();
    Ok(series
        .points
        .iter()
        .map(|p| SeriesPoint {
            hour: p.time_start.0,
            balance: (d(p.balances.credits_posted) - d(p.balances.debits_posted)).to_string(),
        })
        .collect())
}
