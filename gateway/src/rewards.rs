//! Reward points: earned per action (from the game's points issuer), reserved for a
//! redemption (a hold with an expiry), then completed (the hold posted to the game's sink)
//! or released (voided); rate-limited per player and overall.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tally_client::TransferFlags;
use utoipa::ToSchema;

use crate::app::{
    account, amount, check_name, plain, settle, AppState, BalanceView, Body, Caller,
    IdempotencyKey, Params, WriteAnswer,
};
use crate::config::Game;
use crate::credits::account_balance;
use crate::error::{ApiError, ErrorBody};

/// Points to earn.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarnRequest {
    /// Whole points, as a string (`"10"`).
    pub points: String,
    /// What they were earned for (kept by the caller; not stored).
    #[serde(default)]
    pub action: Option<String>,
}

/// Points to reserve.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// Whole points, as a string.
    pub points: String,
    /// Seconds before an uncompleted reservation releases itself (1 to 86400, default 600).
    #[serde(default)]
    pub timeout_s: Option<u32>,
}

/// A reservation made.
#[derive(Serialize, ToSchema)]
pub struct Reservation {
    /// Its name in `/rewards/reservations/{reservation}`: the `Idempotency-Key` it was made
    /// with.
    pub reservation: String,
    /// The hold.
    #[serde(flatten)]
    pub write: WriteAnswer,
}

struct Points {
    account: u128,
    issuer: u128,
    sink: u128,
}

async fn points(state: &AppState, game: &Game, player: &str) -> Result<Points, ApiError> {
    check_name("player", player)?;
    if let Err(seconds) = state.limits.take(game.id, player) {
        return Err(ApiError {
            retry_after_s: Some(seconds),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many rewards requests; retry after the seconds in Retry-After",
            )
        });
    }
    let ids = &state.ids;
    let account_id = ids.beside_wallet(game.id, player, "points");
    let p = Points {
        account: account_id,
        issuer: ids.system(game.id, "points-issuer", account_id),
        sink: ids.system(game.id, "points-sink", account_id),
    };
    state
        .ensure(vec![
            account(p.issuer, game.points_ledger, false),
            account(p.sink, game.points_ledger, false),
            account(p.account, game.points_ledger, true),
        ])
        .await?;
    Ok(p)
}

fn whole(text: &str) -> Result<rust_decimal::Decimal, ApiError> {
    let value = amount("points", text)?;
    if value.fract() != rust_decimal::Decimal::ZERO {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_too_many_decimals",
            "points are whole",
        ));
    }
    Ok(value)
}

/// Credits points for an action.
#[utoipa::path(operation_id = "rewards_earn", post, path = "/v1/games/{game}/players/{player}/rewards/earn", tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = EarnRequest,
    responses((status = 200, body = WriteAnswer), (status = 429, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn earn(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<EarnRequest>,
) -> Result<Json<WriteAnswer>, ApiError> {
    let game = caller.game(&state, game)?;
    let value = whole(&body.points)?;
    let p = points(&state, game, &player).await?;
    let id = state.ids.transfer(&caller.0.name, &key, "0", p.issuer);
    let outcome = state
        .transfer(plain(id, p.issuer, p.account, value, game.points_ledger))
        .await?;
    Ok(Json(WriteAnswer::of(id, &outcome, false, 0)))
}

/// Holds points for a redemption, until completed, released or expired.
#[utoipa::path(operation_id = "rewards_reserve", post, path = "/v1/games/{game}/players/{player}/rewards/reserve", tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = ReserveRequest,
    responses((status = 200, body = Reservation), (status = 409, body = ErrorBody),
              (status = 429, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn reserve(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<ReserveRequest>,
) -> Result<Json<Reservation>, ApiError> {
    let game = caller.game(&state, game)?;
    let value = whole(&body.points)?;
    let timeout = body.timeout_s.unwrap_or(600);
    if !(1..=86_400).contains(&timeout) {
        return Err(ApiError::invalid("timeout_s must be 1 to 86400"));
    }
    let p = points(&state, game, &player).await?;
    let id = state.ids.transfer(&caller.0.name, &key, "0", p.account);
    let mut hold = plain(id, p.account, p.sink, value, game.points_ledger);
    hold.flags = TransferFlags(TransferFlags::PENDING);
    hold.timeout_s = timeout;
    let outcome = state.transfer(hold).await?;
    Ok(Json(Reservation {
        reservation: key,
        write: WriteAnswer::of(id, &outcome, true, 0),
    }))
}

async fn settle_reservation(
    state: &AppState,
    caller: &Caller,
    game: u32,
    player: &str,
    reservation: &str,
    complete: bool,
) -> Result<Json<WriteAnswer>, ApiError> {
    let game = caller.game(state, game)?;
    check_name("reservation", reservation)?;
    let p = points(state, game, player).await?;
    let hold = state
        .ids
        .transfer(&caller.0.name, reservation, "0", p.account);
    // Derived from the reservation: completing (or releasing) twice is the same request.
    let step = if complete { "complete" } else { "release" };
    let id = state
        .ids
        .transfer(&caller.0.name, reservation, step, p.account);
    let flags = if complete {
        TransferFlags::POST_PENDING
    } else {
        TransferFlags::VOID_PENDING
    };
    let outcome = state
        .transfer(settle(id, hold, rust_decimal::Decimal::ZERO, flags, false))
        .await?;
    Ok(Json(WriteAnswer::of(id, &outcome, true, 0)))
}

/// Completes a reservation: the held points are spent (`409` if released or expired).
#[utoipa::path(operation_id = "rewards_complete", post, path = "/v1/games/{game}/players/{player}/rewards/reservations/{reservation}/complete",
    tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path), ("reservation" = String, Path)),
    responses((status = 200, body = WriteAnswer), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn complete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player, reservation)): Params<(u32, String, String)>,
) -> Result<Json<WriteAnswer>, ApiError> {
    settle_reservation(&state, &caller, game, &player, &reservation, true).await
}

/// Releases a reservation: the held points are back (`409` if completed or expired).
#[utoipa::path(operation_id = "rewards_release", post, path = "/v1/games/{game}/players/{player}/rewards/reservations/{reservation}/release",
    tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path), ("reservation" = String, Path)),
    responses((status = 200, body = WriteAnswer), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player, reservation)): Params<(u32, String, String)>,
) -> Result<Json<WriteAnswer>, ApiError> {
    settle_reservation(&state, &caller, game, &player, &reservation, false).await
}

/// A player's points (`pending`: what reservations hold).
#[utoipa::path(operation_id = "rewards_balance", get, path = "/v1/games/{game}/players/{player}/rewards", tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path)),
    responses((status = 200, body = BalanceView)),
    security(("bearer" = [])))]
pub async fn balance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
) -> Result<Json<BalanceView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let id = state.ids.beside_wallet(game.id, &player, "points");
    Ok(Json(account_balance(&state, id, 0).await?))
}

/// The notifications of one player's points, as server-sent events.
struct Notifications {
    subscription: tally_client::Subscription,
    account: u128,
    /// Changes that came while the stream was being anchored (sent first).
    early: std::collections::VecDeque<tally_client::Change>,
}

impl futures_core::Stream for Notifications {
    type Item = Result<axum::response::sse::Event, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            let item = match self.early.pop_front() {
                Some(change) => Ok(tally_client::Streamed::Change(change)),
                None => match std::pin::Pin::new(&mut self.subscription).poll_next(cx) {
                    Poll::Ready(Some(item)) => item,
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => return Poll::Pending,
                },
            };
            let change = match item {
                Ok(tally_client::Streamed::Change(change)) => change,
                Ok(tally_client::Streamed::CaughtUp(_)) => continue,
                // The stream ends (a refused subscription); the client reconnects.
                Err(_) => return Poll::Ready(None),
            };
            let tally_client::ChangeBody::Transfer(t) = &change.body else {
                continue;
            };
            if t.result != tally_client::TransferResult::Ok {
                continue;
            }
            let mine_debited = t.debit_account.0 == self.account;
            let kind = match (t.kind, mine_debited) {
                (tally_client::TransferKind::Plain, false) => "earned",
                (tally_client::TransferKind::Pending, true) => "reserved",
                (tally_client::TransferKind::Post, true) => "completed",
                (tally_client::TransferKind::Void, true) => "released",
                (tally_client::TransferKind::Expired, true) => "expired",
                _ => "changed",
            };
            let after = if mine_debited {
                t.debit_balances
            } else {
                t.credit_balances
            };
            let view = BalanceView::of(&after, 0);
            let data = serde_json::json!({
                "kind": kind,
                "points": t.amount.to_string(),
                "balance": view.balance,
                "available": view.available,
                "transfer_id": t.id.0.to_string(),
                "position": change.position.to_string(),
                "timestamp": change.timestamp.0,
            });
            let event = axum::response::sse::Event::default()
                .event(kind)
                .id(change.position.to_string())
                .data(data.to_string());
            return Poll::Ready(Some(Ok(event)));
        }
    }
}

/// A player's points as they change (earned, reserved, completed, released, expired), as
/// server-sent events from the ledger's change stream; from now on.
#[utoipa::path(operation_id = "rewards_events", get, path = "/v1/games/{game}/players/{player}/rewards/events", tag = "rewards",
    params(("game" = u32, Path), ("player" = String, Path)),
    responses((status = 200, description = "text/event-stream: one event per change, `data` a JSON object")),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_core::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let account = state.ids.beside_wallet(game.id, &player, "points");
    let filter = tally_client::StreamFilter {
        accounts: vec![tally_client::AccountId(account)],
        ..tally_client::StreamFilter::default()
    };
    let mut subscription = state
        .client
        .subscribe(tally_client::StreamFrom::Now, filter);
    // "Now" is when the node takes the subscription, which the client does in the
    // background: answer only once the stream stands somewhere, so that every change
    // committed after this answer is in it.
    let mut early = std::collections::VecDeque::new();
    let anchored = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(item) = subscription.recv().await {
            match item {
                Ok(tally_client::Streamed::CaughtUp(_)) => return Ok(()),
                Ok(tally_client::Streamed::Change(change)) => early.push_back(change),
                Err(e) => return Err(ApiError::from(e)),
            }
        }
        Err(ApiError::unavailable(
            "unavailable",
            "the change stream ended",
            1,
        ))
    })
    .await;
    match anchored {
        Ok(result) => result?,
        Err(_) => {
            return Err(ApiError::unavailable(
                "unavailable",
                "the ledger's change stream did not start within 10 s",
                1,
            ))
        }
    }
    Ok(axum::response::sse::Sse::new(Notifications {
        subscription,
        account,
        early,
    })
    .keep_alive(axum::response::sse::KeepAlive::default()))
}
