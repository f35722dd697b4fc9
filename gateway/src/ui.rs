//! `/ui/accounts/{id}`: a page a person can look at — an account's balance, its recent
//! history, and its hourly balance over the past 30 days as a chart, rendered on the server
//! (HTML with an inline SVG drawn by plotters; no script). The token comes as
//! `?token=` (a browser cannot set a bearer header) or as a bearer header, and the account's
//! ledger must belong to one of the service's games.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use plotters::prelude::*;
use tally_client::{to_decimal, AccountId, Direction, HistoryQuery, SeriesQuery, Timestamp};

use crate::app::{now_ns, AppState, Params, QueryParams};
use crate::error::ApiError;

const HOUR_NS: u64 = 3_600_000_000_000;

/// The page of account `id`.
pub async fn account_page(
    State(state): State<Arc<AppState>>,
    Params(id): Params<String>,
    QueryParams(query): QueryParams<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    let token = query.get("token").cloned().or_else(|| {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
    });
    let service = token
        .and_then(|t| state.services.get(&t).cloned())
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "give ?token="))?;
    let id: u128 = id
        .parse()
        .map_err(|_| ApiError::invalid("the account id is a decimal number"))?;
    let account = state
        .client
        .lookup_accounts(vec![AccountId(id)])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
    let allowed = service
        .games
        .iter()
        .filter_map(|g| state.games.get(g))
        .any(|g| [g.credits_ledger, g.points_ledger, g.items_ledger].contains(&account.ledger.0));
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the account is not on a ledger of this service's games",
        ));
    }
    let scale = account.scale;
    let d = |v: u128| to_decimal(v, scale).unwrap_or_default();
    let history = state
        .client
        .account_history(HistoryQuery {
            account: AccountId(id),
            cursor: 0,
            limit: 20,
            direction: Direction::Backward,
            time_min: None,
            time_max: None,
        })
        .await?;
    let to = now_ns() / HOUR_NS * HOUR_NS + HOUR_NS;
    let from = to - 30 * 24 * HOUR_NS;
    let series = state
        .client
        .balance_series(SeriesQuery {
            account: AccountId(id),
            time_min: Timestamp(from),
            time_max: Timestamp(to),
        })
        .await?;
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .map(|p| {
            let days = (p.time_start.0.saturating_sub(from)) as f64 / (24.0 * HOUR_NS as f64);
            let balance = d(p.balances.credits_posted) - d(p.balances.debits_posted);
            (
                days - 30.0,
                balance.to_string().parse::<f64>().unwrap_or(0.0),
            )
        })
        .collect();
    let chart = chart(&points).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("chart: {e}"),
        )
    })?;
    let b = account.balances;
    let balance = d(b.credits_posted) - d(b.debits_posted);
    let mut rows = String::new();
    for e in &history.entries {
        let after = d(e.balances.credits_posted) - d(e.balances.debits_posted);
        let sign = if e.is_debit { "-" } else { "+" };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class=\"amount\">{sign}{}</td><td>{after}</td></tr>",
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_nanos(e.timestamp.0)
            ),
            crate::error::snake_case(e.kind.name()),
            d(e.amount),
        );
    }
    Ok(Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Account {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td{{padding:2px 10px}}</style></head>\
         <body><h1>Account {id}</h1><p>Ledger {ledger}. Balance <strong id=\"balance\">{balance}</strong> \
         (pending out {pending_out}, pending in {pending_in}).</p>\
         <h2>Balance, hourly, past 30 days</h2><div id=\"chart\">{chart}</div>\
         <h2>Recent history</h2><table id=\"history\"><tr><th>time</th><th>kind</th><th>amount</th>\
         <th>balance after</th></tr>{rows}</table></body></html>",
        ledger = account.ledger.0,
        pending_out = d(b.debits_pending),
        pending_in = d(b.credits_pending),
    )))
}

/// The balance chart as SVG: days from now on x, balance on y.
fn chart(points: &[(f64, f64)]) -> Result<String, Box<dyn std::error::Error>> {
    let (low, high) = points
        .iter()
        .fold((0f64, 0f64), |(l, h), &(_, y)| (l.min(y), h.max(y)));
    let pad = ((high - low) * 0.1).max(1.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 300)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(-30f64..0f64, (low - pad)..(high + pad))?;
        chart
            .configure_mesh()
            .x_desc("days ago")
            .y_desc("balance")
            .draw()?;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))?;
        root.present()?;
    }
    Ok(svg)
}
