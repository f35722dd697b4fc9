//! The gateway's state and what every handler shares: who is calling (bearer token), the
//! idempotency key, names and amounts checked, accounts created on first use, a transfer
//! sent and its outcome turned into an answer.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use rust_decimal::Decimal;
use serde::Serialize;
use tally_client::{
    to_decimal, AccountFlags, AccountId, AccountResult, Balances, Client, LedgerId, LedgerResult,
    NewAccount, NewLedger, NewTransfer, TransferFlags, TransferId, TransferOutcome, TransferResult,
};
use utoipa::ToSchema;

use crate::config::{Game, GatewayConfig, Service, NAME_SIZE_MAX};
use crate::error::ApiError;
use crate::ids::Ids;
use crate::limits::Limits;

/// What every request shares.
pub struct AppState {
    /// The ledger.
    pub client: Client,
    /// Id derivation for the cluster's partition count.
    pub ids: Ids,
    /// Services by token.
    pub services: HashMap<String, Service>,
    /// Games by id.
    pub games: HashMap<u32, Game>,
    /// Accounts known to exist (created, or found existing).
    ensured: Mutex<HashSet<u128>>,
    /// The rewards endpoints' token buckets.
    pub limits: Limits,
}

impl AppState {
    /// The state for `config` over `client`; creates the games' ledgers (or finds them).
    pub async fn new(config: GatewayConfig, client: Client) -> Result<AppState, String> {
        let mut ledgers = Vec::new();
        for g in &config.games {
            ledgers.push(NewLedger {
                id: LedgerId(g.credits_ledger),
                scale: g.credits_scale,
                code: 1,
            });
            for id in [g.points_ledger, g.items_ledger] {
                ledgers.push(NewLedger {
                    id: LedgerId(id),
                    scale: 0,
                    code: 1,
                });
            }
        }
        if !ledgers.is_empty() {
            let results = client
                .create_ledgers(ledgers.clone())
                .await
                .map_err(|e| format!("creating the games' ledgers: {e}"))?;
            for (ledger, result) in ledgers.iter().zip(results) {
                if !matches!(result, LedgerResult::Ok | LedgerResult::Exists) {
                    return Err(format!(
                        "ledger {} cannot be created ({}): is it used with another scale?",
                        ledger.id.0,
                        result.name()
                    ));
                }
            }
        }
        Ok(AppState {
            ids: Ids {
                partitions: client.partition_count().max(1),
            },
            client,
            services: config
                .services
                .iter()
                .map(|s| (s.token.clone(), s.clone()))
                .collect(),
            games: config.games.iter().map(|g| (g.id, g.clone())).collect(),
            ensured: Mutex::new(HashSet::new()),
            limits: Limits::new(&config.rate_limits),
        })
    }

    /// Creates `accounts` unless known to exist (`Exists` is fine: another instance, or a
    /// crash before this one remembered).
    pub async fn ensure(&self, accounts: Vec<NewAccount>) -> Result<(), ApiError> {
        let missing: Vec<NewAccount> = {
            let ensured = self.ensured.lock().unwrap_or_else(|e| e.into_inner());
            accounts
                .into_iter()
                .filter(|a| !ensured.contains(&a.id.0))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let results = self.client.create_accounts(missing.clone()).await?;
        for result in &results {
            if !matches!(result, AccountResult::Ok | AccountResult::Exists) {
                return Err(ApiError::account_refused(*result));
            }
        }
        let mut ensured = self.ensured.lock().unwrap_or_else(|e| e.into_inner());
        ensured.extend(missing.iter().map(|a| a.id.0));
        Ok(())
    }

    /// Sends one transfer; a refusal becomes its error.
    pub async fn transfer(&self, transfer: NewTransfer) -> Result<TransferOutcome, ApiError> {
        let outcome = self.client.create_transfer(transfer).await?;
        if outcome.result != TransferResult::Ok {
            return Err(ApiError::refused(outcome.result));
        }
        Ok(outcome)
    }
}

/// A JSON body; one that does not parse is `400 invalid_request` in the gateway's error
/// format (axum's own rejection is plain text).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Body<T>, ApiError> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|axum::Json(value)| Body(value))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// Path parameters; a malformed one (a game that is not a number) is `400
/// invalid_request`.
pub struct Params<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Params(value))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// Query parameters; malformed ones are `400 invalid_request`.
pub struct QueryParams<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<QueryParams<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| QueryParams(value))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// An account of `ledger` (no overdraft if `guarded`).
pub fn account(id: u128, ledger: u32, guarded: bool) -> NewAccount {
    NewAccount {
        id: AccountId(id),
        ledger: LedgerId(ledger),
        code: if guarded { 1 } else { 2 },
        flags: AccountFlags(if guarded {
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS
        } else {
            0
        }),
        limit: None,
        user_data_128: 0,
        user_data_64: 0,
        user_data_32: 0,
    }
}

/// A plain transfer of `amount` on `ledger`.
pub fn plain(id: u128, from: u128, to: u128, amount: Decimal, ledger: u32) -> NewTransfer {
    NewTransfer::plain(
        TransferId(id),
        AccountId(from),
        AccountId(to),
        amount,
        LedgerId(ledger),
    )
}

/// A post, void or refund naming `reference`.
pub fn settle(id: u128, reference: u128, amount: Decimal, flags: u16, refund: bool) -> NewTransfer {
    let mut t = plain(id, 0, 0, amount, 0);
    t.flags = TransferFlags(flags);
    if refund {
        t.refund_of = TransferId(reference);
    } else {
        t.pending_id = TransferId(reference);
    }
    t
}

/// The calling service, from `Authorization: Bearer <token>`.
pub struct Caller(pub Service);

impl FromRequestParts<std::sync::Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<AppState>,
    ) -> Result<Caller, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "present a valid token: Authorization: Bearer <token>",
            )
        };
        let header = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let token = header.strip_prefix("Bearer ").ok_or_else(unauthorized)?;
        state
            .services
            .get(token.trim())
            .cloned()
            .map(Caller)
            .ok_or_else(unauthorized)
    }
}

impl Caller {
    /// The game `id`, if this service may use it.
    pub fn game<'a>(&self, state: &'a AppState, id: u32) -> Result<&'a Game, ApiError> {
        let game = state
            .games
            .get(&id)
            .ok_or_else(|| ApiError::not_found(format!("no game {id}")))?;
        if !self.0.games.contains(&id) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("service {} may not use game {id}", self.0.name),
            ));
        }
        Ok(game)
    }
}

/// The `Idempotency-Key` header every write takes.
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<IdempotencyKey, ApiError> {
        let key = parts
            .headers
            .get("idempotency-key")
            .ok_or_else(|| ApiError::invalid("every write takes an Idempotency-Key header"))?
            .to_str()
            .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII"))?;
        check_name("Idempotency-Key", key)?;
        Ok(IdempotencyKey(key.to_string()))
    }
}

/// A player, item or key: 1 to 128 bytes of letters, digits and `._:@-`.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_SIZE_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "{what} must be 1 to {NAME_SIZE_MAX} letters, digits or ._:@-"
        )))
    }
}

/// A positive decimal amount given as a string.
pub fn amount(what: &str, text: &str) -> Result<Decimal, ApiError> {
    let value = Decimal::from_str(text.trim()).map_err(|_| {
        ApiError::invalid(format!("{what} must be a decimal string, like \"10.50\""))
    })?;
    if value <= Decimal::ZERO {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_must_be_positive",
            format!("{what} must be positive"),
        ));
    }
    Ok(value)
}

/// A balance as callers read it.
#[derive(Serialize, ToSchema)]
pub struct BalanceView {
    /// Posted credits minus posted debits.
    pub balance: String,
    /// What can be spent now: the balance minus what pending holds keep.
    pub available: String,
    /// Held by pending holds (purchases, reservations) debiting the account.
    pub pending: String,
}

impl BalanceView {
    /// The view of `b` in a ledger of `scale`.
    pub fn of(b: &Balances, scale: u8) -> BalanceView {
        let d = |v: u128| to_decimal(v, scale).unwrap_or_default();
        let balance = d(b.credits_posted) - d(b.debits_posted);
        BalanceView {
            balance: balance.to_string(),
            available: (balance - d(b.debits_pending)).to_string(),
            pending: d(b.debits_pending).to_string(),
        }
    }
}

/// What a write answers.
#[derive(Serialize, ToSchema)]
pub struct WriteAnswer {
    /// The ledger transfer (decimal), the same on every retry.
    pub transfer_id: String,
    /// `ok`.
    pub result: String,
    /// When the ledger applied it, ns since the Unix epoch.
    pub timestamp: u64,
    /// The player's account right after.
    pub after: BalanceView,
}

impl WriteAnswer {
    /// The answer for `outcome` of transfer `id`; `debit` says whether the player's account
    /// was its debit side.
    pub fn of(id: u128, outcome: &TransferOutcome, debit: bool, scale: u8) -> WriteAnswer {
        WriteAnswer {
            transfer_id: id.to_string(),
            result: "ok".into(),
            timestamp: outcome.timestamp.0,
            after: BalanceView::of(
                if debit {
                    &outcome.debit_balances
                } else {
                    &outcome.credit_balances
                },
                scale,
            ),
        }
    }
}

/// The wall clock, ns since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
