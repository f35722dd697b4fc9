//! The shop: a purchase of catalog items (prices from the configuration, never from the
//! caller) is created PENDING — the credits held from the player's wallet and the items
//! reserved, both as holds of one linked chain — then COMPLETED (both posted together: the
//! charge and the entitlements commit as one) or CANCELLED (both voided), or EXPIRED when its
//! timeout passes. Refunds give back credits and take back items, together, never more than
//! was bought. Nothing is stored outside the ledger: an order is found again from its
//! `Idempotency-Key` (the ids of its holds are derived from it), so a crash at any step leaves
//! the chain wholly applied or not at all, and retrying the step finishes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tally_client::{
    to_decimal, AccountId, HoldStatus, NewTransfer, TransferFlags, TransferId, TransferResult,
};
use utoipa::ToSchema;

use crate::app::{
    account, check_name, plain, settle, AppState, Body, Caller, IdempotencyKey, Params,
};
use crate::config::Game;
use crate::credits::{wallet, Wallet};
use crate::error::{ApiError, ErrorBody};

/// Most lines of one purchase.
const LINES_MAX: usize = 64;

/// Items and quantities.
#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// A catalog item's id.
    pub item: String,
    /// How many (at least 1).
    pub quantity: u32,
}

/// A purchase, or a refund of part of one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinesRequest {
    /// The items; each item at most once.
    pub items: Vec<Line>,
}

/// Where an order stands.
#[derive(Serialize, ToSchema)]
pub struct OrderView {
    /// The order: the `Idempotency-Key` it was created with.
    pub order: String,
    /// `pending`, `completed`, `cancelled` or `expired`.
    pub status: String,
    /// What it costs, in credits.
    pub total: String,
    /// Credits refunded so far.
    pub refunded: String,
    /// The items bought.
    pub items: Vec<Line>,
}

/// A catalog item.
#[derive(Serialize, ToSchema)]
pub struct CatalogItem {
    /// Its id.
    pub item: String,
    /// Its price in credits.
    pub price: String,
}

/// What a player owns of an item.
#[derive(Serialize, ToSchema)]
pub struct Entitlement {
    /// The item.
    pub item: String,
    /// Owned (bought, completed, not refunded).
    pub owned: u64,
    /// Reserved by pending purchases.
    pub reserved: u64,
}

struct Accounts {
    wallet: Wallet,
    /// Per item: the player's account and the game's inventory beside it.
    items: BTreeMap<String, (u128, u128)>,
}

async fn accounts(state: &AppState, game: &Game, player: &str) -> Result<Accounts, ApiError> {
    let wallet = wallet(state, game, player).await?;
    let mut items = BTreeMap::new();
    let mut new = Vec::new();
    for item in &game.items {
        let mine = state
            .ids
            .beside_wallet(game.id, player, &format!("item:{}", item.id));
        let inventory = state
            .ids
            .system(game.id, &format!("inventory:{}", item.id), mine);
        new.push(account(inventory, game.items_ledger, false));
        new.push(account(mine, game.items_ledger, true));
        items.insert(item.id.clone(), (mine, inventory));
    }
    state.ensure(new).await?;
    Ok(Accounts { wallet, items })
}

/// The lines checked against the catalog, and their total.
fn priced(game: &Game, lines: &[Line]) -> Result<Decimal, ApiError> {
    if lines.is_empty() || lines.len() > LINES_MAX {
        return Err(ApiError::invalid(format!("1 to {LINES_MAX} items")));
    }
    let mut total = Decimal::ZERO;
    let mut seen = std::collections::BTreeSet::new();
    for line in lines {
        let item = game
            .items
            .iter()
            .find(|i| i.id == line.item)
            .ok_or_else(|| {
                ApiError::not_found(format!("no item {:?} in the catalog", line.item))
            })?;
        if line.quantity == 0 || !seen.insert(&line.item) {
            return Err(ApiError::invalid(
                "each item once, with a quantity of at least 1",
            ));
        }
        total = item
            .price
            .checked_mul(Decimal::from(line.quantity))
            .and_then(|cost| total.checked_add(cost))
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    "amount_overflow",
                    "the purchase costs more than an amount can hold",
                )
            })?;
    }
    Ok(total)
}

/// Sends `chain` linked as one request: every event applied, or none. The answer is the
/// first event's result that is not a consequence of another's failure.
async fn chain(state: &AppState, mut chain: Vec<NewTransfer>) -> Result<(), ApiError> {
    let last = chain.len() - 1;
    for (n, t) in chain.iter_mut().enumerate() {
        if n < last {
            t.flags = TransferFlags(t.flags.0 | TransferFlags::LINKED);
        }
    }
    let outcomes = state.client.create_transfers(chain).await?;
    let failed = outcomes
        .iter()
        .map(|o| o.result)
        .find(|r| !matches!(r, TransferResult::Ok | TransferResult::LinkedEventFailed));
    match failed {
        None if outcomes.iter().all(|o| o.result == TransferResult::Ok) => Ok(()),
        None => Err(ApiError::refused(TransferResult::LinkedEventFailed)),
        Some(result) => Err(ApiError::refused(result)),
    }
}

fn hold_ids(
    state: &AppState,
    service: &str,
    order: &str,
    a: &Accounts,
) -> (u128, BTreeMap<String, u128>) {
    let credits = state.ids.transfer(service, order, "0", a.wallet.wallet);
    let items = a
        .items
        .iter()
        .map(|(item, (_, inventory))| {
            (
                item.clone(),
                state
                    .ids
                    .transfer(service, order, &format!("item:{item}"), *inventory),
            )
        })
        .collect();
    (credits, items)
}

/// Creates a purchase: credits held, items reserved (`409 exceeds_credits` without enough).
#[utoipa::path(operation_id = "shop_purchase", post, path = "/v1/games/{game}/players/{player}/purchases", tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path),
           ("Idempotency-Key" = String, Header, description = "names the order")),
    request_body = LinesRequest,
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn purchase(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(order): IdempotencyKey,
    Params((game, player)): Params<(u32, String)>,
    Body(body): Body<LinesRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let game = caller.game(&state, game)?;
    let total = priced(game, &body.items)?;
    let a = accounts(&state, game, &player).await?;
    let (credits, items) = hold_ids(&state, &caller.0.name, &order, &a);
    let mut hold = plain(
        credits,
        a.wallet.wallet,
        a.wallet.revenue,
        total,
        game.credits_ledger,
    );
    hold.flags = TransferFlags(TransferFlags::PENDING);
    hold.timeout_s = game.purchase_timeout_s;
    let mut events = vec![hold];
    for line in &body.items {
        let (mine, inventory) = a.items[&line.item];
        let mut reserve = plain(
            items[&line.item],
            inventory,
            mine,
            Decimal::from(line.quantity),
            game.items_ledger,
        );
        reserve.flags = TransferFlags(TransferFlags::PENDING);
        reserve.timeout_s = game.purchase_timeout_s;
        events.push(reserve);
    }
    chain(&state, events).await?;
    order_view(&state, game, &caller, &order, &a).await
}

async fn order_view(
    state: &AppState,
    game: &Game,
    caller: &Caller,
    order: &str,
    a: &Accounts,
) -> Result<Json<OrderView>, ApiError> {
    let (credits, items) = hold_ids(state, &caller.0.name, order, a);
    let complete = state
        .ids
        .transfer(&caller.0.name, order, "complete", a.wallet.wallet);
    let mut ids = vec![TransferId(credits), TransferId(complete)];
    ids.extend(items.values().map(|&id| TransferId(id)));
    let found = state.client.lookup_transfers(ids).await?;
    let by_id: BTreeMap<u128, _> = found.iter().map(|t| (t.id.0, t)).collect();
    let hold = by_id
        .get(&credits)
        .filter(|t| t.outcome.result == TransferResult::Ok)
        .ok_or_else(|| ApiError::not_found(format!("no order {order}")))?;
    let status = match hold.hold {
        HoldStatus::Posted => "completed",
        HoldStatus::Voided => "cancelled",
        HoldStatus::Expired => "expired",
        _ => "pending",
    };
    let d = |v: u128| {
        to_decimal(v, game.credits_scale)
            .unwrap_or_default()
            .to_string()
    };
    let refunded = by_id.get(&complete).map_or(0, |t| t.refunded);
    let lines = items
        .iter()
        .filter_map(|(item, id)| {
            let t = by_id.get(id)?;
            (t.outcome.result == TransferResult::Ok).then(|| Line {
                item: item.clone(),
                quantity: u32::try_from(t.amount).unwrap_or(u32::MAX),
            })
        })
        .collect();
    Ok(Json(OrderView {
        order: order.to_string(),
        status: status.into(),
        total: d(hold.amount),
        refunded: d(refunded),
        items: lines,
    }))
}

async fn finish(
    state: &AppState,
    caller: &Caller,
    game: u32,
    player: &str,
    order: &str,
    complete: bool,
) -> Result<Json<OrderView>, ApiError> {
    let game = caller.game(state, game)?;
    check_name("order", order)?;
    let a = accounts(state, game, player).await?;
    let view = order_view(state, game, caller, order, &a).await?;
    let (credits, items) = hold_ids(state, &caller.0.name, order, &a);
    let flags = if complete {
        TransferFlags::POST_PENDING
    } else {
        TransferFlags::VOID_PENDING
    };
    let step = if complete { "complete" } else { "cancel" };
    let mut events = vec![settle(
        state
            .ids
            .transfer(&caller.0.name, order, step, a.wallet.wallet),
        credits,
        Decimal::ZERO,
        flags,
        false,
    )];
    for line in &view.items {
        let (_, inventory) = a.items[&line.item];
        events.push(settle(
            state.ids.transfer(
                &caller.0.name,
                order,
                &format!("{step}:{}", line.item),
                inventory,
            ),
            items[&line.item],
            Decimal::ZERO,
            flags,
            false,
        ));
    }
    chain(state, events).await?;
    order_view(state, game, caller, order, &a).await
}

/// Completes a pending purchase: the charge and the items commit together.
#[utoipa::path(operation_id = "shop_complete", post, path = "/v1/games/{game}/players/{player}/purchases/{order}/complete",
    tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path), ("order" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "cancelled or expired")),
    security(("bearer" = [])))]
pub async fn complete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player, order)): Params<(u32, String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    finish(&state, &caller, game, &player, &order, true).await
}

/// Cancels a pending purchase: the credits and items are released.
#[utoipa::path(operation_id = "shop_cancel", post, path = "/v1/games/{game}/players/{player}/purchases/{order}/cancel",
    tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path), ("order" = String, Path)),
    responses((status = 200, body = OrderView), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player, order)): Params<(u32, String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    finish(&state, &caller, game, &player, &order, false).await
}

/// Where an order stands.
#[utoipa::path(operation_id = "shop_show", get, path = "/v1/games/{game}/players/{player}/purchases/{order}", tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path), ("order" = String, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player, order)): Params<(u32, String, String)>,
) -> Result<Json<OrderView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("order", &order)?;
    let a = accounts(&state, game, &player).await?;
    order_view(&state, game, &caller, &order, &a).await
}

/// Refunds items of a completed purchase: their credits back, the items taken back,
/// together; never more than was bought (`409 refund_exceeds_remaining`).
#[utoipa::path(operation_id = "shop_refund", post, path = "/v1/games/{game}/players/{player}/purchases/{order}/refunds",
    tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path), ("order" = String, Path),
           ("Idempotency-Key" = String, Header)),
    request_body = LinesRequest,
    responses((status = 200, body = OrderView), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn refund(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    Params((game, player, order)): Params<(u32, String, String)>,
    Body(body): Body<LinesRequest>,
) -> Result<Json<OrderView>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("order", &order)?;
    let amount = priced(game, &body.items)?;
    let a = accounts(&state, game, &player).await?;
    let view = order_view(&state, game, &caller, &order, &a).await?;
    for line in &body.items {
        let bought = view
            .items
            .iter()
            .find(|l| l.item == line.item)
            .map_or(0, |l| l.quantity);
        if line.quantity > bought {
            return Err(ApiError::refused(TransferResult::RefundExceedsRemaining));
        }
    }
    let complete = state
        .ids
        .transfer(&caller.0.name, &order, "complete", a.wallet.wallet);
    let mut events = vec![settle(
        state
            .ids
            .transfer(&caller.0.name, &key, "0", a.wallet.revenue),
        complete,
        amount,
        0,
        true,
    )];
    for line in &body.items {
        let (mine, inventory) = a.items[&line.item];
        events.push(plain(
            state
                .ids
                .transfer(&caller.0.name, &key, &format!("item:{}", line.item), mine),
            mine,
            inventory,
            Decimal::from(line.quantity),
            game.items_ledger,
        ));
    }
    chain(&state, events).await?;
    order_view(&state, game, &caller, &order, &a).await
}

/// The game's catalog.
#[utoipa::path(operation_id = "shop_catalog", get, path = "/v1/games/{game}/items", tag = "shop",
    params(("game" = u32, Path)),
    responses((status = 200, body = [CatalogItem])),
    security(("bearer" = [])))]
pub async fn catalog(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(game): Params<u32>,
) -> Result<Json<Vec<CatalogItem>>, ApiError> {
    let game = caller.game(&state, game)?;
    Ok(Json(
        game.items
            .iter()
            .map(|i| CatalogItem {
                item: i.id.clone(),
                price: i.price.to_string(),
            })
            .collect(),
    ))
}

/// What a player owns of each item.
#[utoipa::path(operation_id = "shop_entitlements", get, path = "/v1/games/{game}/players/{player}/entitlements", tag = "shop",
    params(("game" = u32, Path), ("player" = String, Path)),
    responses((status = 200, body = [Entitlement])),
    security(("bearer" = [])))]
pub async fn entitlements(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params((game, player)): Params<(u32, String)>,
) -> Result<Json<Vec<Entitlement>>, ApiError> {
    let game = caller.game(&state, game)?;
    check_name("player", &player)?;
    let ids: Vec<(String, u128)> = game
        .items
        .iter()
        .map(|i| {
            (
                i.id.clone(),
                state
                    .ids
                    .beside_wallet(game.id, &player, &format!("item:{}", i.id)),
            )
        })
        .collect();
    let found = state
        .client
        .lookup_accounts(ids.iter().map(|(_, id)| AccountId(*id)).collect())
        .await?;
    let by_id: BTreeMap<u128, _> = found.iter().map(|a| (a.id.0, a.balances)).collect();
    let n = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    Ok(Json(
        ids.iter()
            .map(|(item, id)| {
                let b = by_id.get(id).copied().unwrap_or_default();
                Entitlement {
                    item: item.clone(),
                    owned: n(b.credits_posted.saturating_sub(b.debits_posted)),
                    reserved: n(b.credits_pending),
                }
            })
            .collect(),
    ))
}
