//! Credits: per player and game, added from the game's issuer, spent to its revenue account
//! (never beyond the balance), refunded from a spend (in parts, never beyond it), read, and
//! listed.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tally_client::{to_decimal, AccountId, Direction, HistoryQuery, TransferKind};
use utoipa::{IntoParams, ToSchema};

use crate::app::{
    account, amount, check_name, plain, settle, AppState, BalanceView, Body, Caller,
    IdempotencyKey, Params, QueryParams, WriteAnswer,
};
use crate::config::Game;
use crate::error::{ApiError, ErrorBody};

/// An amount of credits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditsRequest {
    /// A positive decimal string, at most the game's decimals (`"10.50"`).
    pub amount: String,
}

/// A refund of (part of) a spend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The `Idempotency-Key` the spend was made with.
    pub spend_key: String,
    /// How much of it to give back (all refunds of a spend add up to at most the spend).
    pub amount: String,
}

/// The accounts of a player's credits: wallet, and the game's issuer and revenue beside it.
pub struct Wallet {
    pub(crate) wallet: u128,
    pub(crate) issuer: u128,
    pub(crate) revenue: u128,
}

/// The player's credit accounts, created on first use.
pub async fn wallet(state: &AppState, game: &Game, player: &str) -> Result<Wallet, ApiError> {
    check_name("player", player)?;
    let ids = &state.ids;
    let wallet = ids.wallet(game.id, player);
    let w = Wallet {
        wallet,
        issuer: ids.system(game.id, "issuer", wallet),
        revenue: ids.system(game.id, "revenue", wallet),
    };
    state
        .ensure(vec![
            account(w.issuer, game.credits_ledger, false),
            account(w.revenue, game.credits_ledger, false),
            account(w.wallet, game.credits_ledger, true),
        ])
        .await?;
    Ok(w)
}

/// Adds credits from the game's issuer.
#[utoipa::path(operation_id = "credits_add", post, path = "/v1/games/{game}/players/{player}/credits/add", tag = "credits",
    params(("game" = u32, Path), ("player" = String, Path),
           ("Idempotency-Key" = String, Header, description = "the request's key: a retry with it is answered the original result")),
    request_body = CreditsRequest,
    responses((status = 200, body = WriteAnswer), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<CreditsRequest>,
) -> Result<Json<WriteAnswer>, ApiError> {
    move_credits(&state, &caller, &key, (game, &player), &body, Move::Add).await
}

/// Which way [`move_credits`] moves them.
enum Move {
    /// From the game's issuer to the player.
    Add,
    /// From the player to the game's revenue.
    Spend,
}

/// Adds or spends credits: the one transfer of the request `key`, beside its debit account.
async fn move_credits(
    state: &AppState,
    caller: &Caller,
    key: &str,
    (game, player): (u32, &str),
    body: &CreditsRequest,
    how: Move,
) -> Result<Json<WriteAnswer>, ApiError> {
    let game = caller.game(state, game)?;
    let value = amount("amount", &body.amount)?;
    let w = wallet(state, game, player).await?;
    let (from, to) = match how {
        Move::Add => (w.issuer, w.wallet),
        Move::Spend => (w.wallet, w.revenue),
    };
    let id = state.ids.transfer(&caller.0.name, key, "0", from);
    let outcome = state
        .transfer(plain(id, from, to, value, game.credits_ledger))
        .await?;
    let player_debited = matches!(how, Move::Spend);
    Ok(Json(WriteAnswer::of(
        id,
        &outcome,
        player_debited,
        game.credits_scale,
    )))
}

/// Spends credits, only with enough balance (`409 exceeds_credits` otherwise).
#[utoipa::path(operation_id = "credits_spend", post, path = "/v1/games/{game}/players/{player}/credits/spend", tag = "credits",
    params(("game" = u32, Path), ("player" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = CreditsRequest,
    responses((status = 200, body = WriteAnswer), (status = 409, body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn spend(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<CreditsRequest>,
) -> Result<Json<WriteAnswer>, ApiError> {
    move_credits(&state, &caller, &key, (game, &player), &body, Move::Spend).await
}

/// Gives back (part of) a spend; all refunds of one spend add up to at most the spend
/// (`409 refund_exceeds_remaining`).
#[utoipa::path(operation_id = "credits_refund", post, path = "/v1/games/{game}/players/{player}/credits/refund", tag = "credits",
    params(("game" = u32, Path), ("player" = String, Path), ("Idempotency-Key" = String, Header)),
    request_body = RefundRequest,
    responses((status = 200, body = WriteAnswer), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<RefundRequest>,
) -> Result<Json<WriteAnswer>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("spend_key", &body.spend_key)?;
    let value = amount("amount", &body.amount)?;
    let w = wallet(&state, game, &player).await?;
    let spend = state
        .ids
        .transfer(&caller.0.name, &body.spend_key, "0", w.wallet);
    let id = state.ids.transfer(&caller.0.name, &key, "0", w.revenue);
    let outcome = state.transfer(settle(id, spend, value, 0, true)).await?;
    Ok(Json(WriteAnswer::of(
        id,
        &outcome,
        false,
        game.credits_scale,
    )))
}

/// A player's credits.
#[utoipa::path(operation_id = "credits_balance", get, path = "/v1/games/{game}/players/{player}/credits", tag = "credits",
    params(("game" = u32, Path), ("player" = String, Path)),
    responses((status = 200, body = BalanceView), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn balance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
) -> Result<Json<BalanceView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let id = state.ids.wallet(game.id, &player);
    Ok(Json(account_balance(&state, id, game.credits_scale).await?))
}

/// The balances of account `id` (zeros if it was never used).
pub async fn account_balance(
    state: &AppState,
    id: u128,
    scale: u8,
) -> Result<BalanceView, ApiError> {
    let found = state.client.lookup_accounts(vec![AccountId(id)]).await?;
    let balances = found.first().map(|a| a.balances).unwrap_or_default();
    Ok(BalanceView::of(&balances, scale))
}

/// A page of history.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Entries per page (1 to 500, default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<u64>,
}

/// One entry of a player's history, newest first.
#[derive(Serialize, ToSchema)]
pub struct HistoryItem {
    /// The ledger transfer.
    pub transfer_id: String,
    /// When, ns since the Unix epoch.
    pub timestamp: u64,
    /// `plain`, `pending`, `post`, `void`, `refund` or `expired`.
    pub kind: String,
    /// `in` or `out`.
    pub direction: String,
    /// The amount.
    pub amount: String,
    /// The balance right after.
    pub balance: String,
}

/// A page of history.
#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    /// The entries.
    pub entries: Vec<HistoryItem>,
    /// Pass as `cursor` for the next page; absent at the end.
    pub next_cursor: Option<u64>,
}

/// A player's credits history, newest first, paged.
#[utoipa::path(operation_id = "credits_history", get, path = "/v1/games/{game}/players/{player}/credits/history", tag = "credits",
    params(("game" = u32, Path), ("player" = String, Path), HistoryParams),
    responses((status = 200, body = HistoryView)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
    QueryParams(params): QueryParams<HistoryParams>,
) -> Result<Json<HistoryView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit must be 1 to 500"));
    }
    let account = state.ids.wallet(game.id, &player);
    let page = state
        .client
        .account_history(HistoryQuery {
            account: AccountId(account),
            cursor: params.cursor.unwrap_or(0),
            limit,
            direction: Direction::Backward,
            time_min: None,
            time_max: None,
        })
        .await?;
    let d = |v: u128| to_decimal(v, page.scale).unwrap_or_default();
    Ok(Json(HistoryView {
        entries: page
            .entries
            .iter()
            .map(|e| HistoryItem {
                transfer_id: e.transfer_id.0.to_string(),
                timestamp: e.timestamp.0,
                kind: kind_name(e.kind),
                direction: if e.is_debit { "out" } else { "in" }.into(),
                amount: d(e.amount).to_string(),
                balance: (d(e.balances.credits_posted) - d(e.balances.debits_posted)).to_string(),
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

fn kind_name(kind: TransferKind) -> String {
    crate::error::snake_case(kind.name())
}
