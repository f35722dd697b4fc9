//! The gateway's configuration (`--config gateway.toml`): the services allowed to call it,
//! the games they may use, each game's ledgers and catalog, and the rate limits.
//!
//! ```toml
//! [[services]]
//! name = "game-backend"
//! token = "a long random secret, at least 16 bytes"
//! games = [1]
//!
//! [[games]]
//! id = 1
//! credits_ledger = 10     # created by the gateway if missing
//! credits_scale = 2
//! points_ledger = 11
//! items_ledger = 12
//! purchase_timeout_s = 900
//! items = [{ id = "sword", price = "9.99" }, { id = "shield", price = "4.50" }]
//!
//! [rate_limits]
//! player_per_s = 20       # rewards requests per player and second (burst: twice that)
//! global_per_s = 50000
//! ```

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::Deserialize;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Who may call, with which token, for which games.
    #[serde(default)]
    pub services: Vec<Service>,
    /// The games.
    #[serde(default)]
    pub games: Vec<Game>,
    /// Token buckets of the rewards endpoints.
    #[serde(default)]
    pub rate_limits: RateLimits,
}

/// A calling service.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Its name (part of every transfer id it makes: two services' idempotency keys never
    /// collide).
    pub name: String,
    /// The bearer token it presents.
    pub token: String,
    /// The games it may use.
    pub games: Vec<u32>,
}

/// A game: its ledgers and its catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Game {
    /// The game's id, in paths.
    pub id: u32,
    /// The ledger of its credits.
    pub credits_ledger: u32,
    /// Decimals of its credits.
    #[serde(default = "default_credits_scale")]
    pub credits_scale: u8,
    /// The ledger of its reward points (whole points).
    pub points_ledger: u32,
    /// The ledger of its items (whole items).
    pub items_ledger: u32,
    /// Seconds a pending purchase holds its credits before it expires.
    #[serde(default = "default_purchase_timeout")]
    pub purchase_timeout_s: u32,
    /// The catalog: prices are the server's, never the caller's.
    #[serde(default)]
    pub items: Vec<Item>,
}

/// An item of a game's catalog.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Its id, as callers name it.
    pub id: String,
    /// Its price in credits (a decimal string).
    pub price: Decimal,
}

/// Token buckets for the rewards endpoints.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Requests per player and second (the burst is twice this).
    #[serde(default = "default_player_per_s")]
    pub player_per_s: f64,
    /// Requests per second over every player (the burst is twice this).
    #[serde(default = "default_global_per_s")]
    pub global_per_s: f64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            player_per_s: default_player_per_s(),
            global_per_s: default_global_per_s(),
        }
    }
}

fn default_credits_scale() -> u8 {
    2
}
fn default_purchase_timeout() -> u32 {
    900
}
fn default_player_per_s() -> f64 {
    20.0
}
fn default_global_per_s() -> f64 {
    50_000.0
}

/// Longest id of an item, a player or an idempotency key, in bytes.
pub const NAME_SIZE_MAX: usize = 128;

impl GatewayConfig {
    /// Reads and checks `text`.
    pub fn parse(text: &str) -> Result<GatewayConfig, String> {
        let config: GatewayConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Every rule a configuration must follow, each failure naming its field.
    pub fn validate(&self) -> Result<(), String> {
        let mut tokens = BTreeSet::new();
        let mut names = BTreeSet::new();
        let games: BTreeSet<u32> = self.games.iter().map(|g| g.id).collect();
        if games.len() != self.games.len() {
            return Err("games: two games have the same id".into());
        }
        for s in &self.services {
            if s.token.len() < 16 {
                return Err(format!("services.{}: token shorter than 16 bytes", s.name));
            }
            if !tokens.insert(&s.token) || !names.insert(&s.name) {
                return Err(format!("services.{}: name or token used twice", s.name));
            }
            if let Some(g) = s.games.iter().find(|g| !games.contains(g)) {
                return Err(format!("services.{}: game {g} is not configured", s.name));
            }
        }
        for g in &self.games {
            let ledgers = [g.credits_ledger, g.points_ledger, g.items_ledger];
            if ledgers.contains(&0) || BTreeSet::from(ledgers).len() != 3 {
                return Err(format!(
                    "games.{}: credits_ledger, points_ledger and items_ledger must be three \
                     different non-zero ledgers",
                    g.id
                ));
            }
            if g.credits_scale > 18 {
                return Err(format!("games.{}: credits_scale above 18", g.id));
            }
            let mut items = BTreeSet::new();
            for item in &g.items {
                if item.id.is_empty() || item.id.len() > NAME_SIZE_MAX || !items.insert(&item.id) {
                    return Err(format!(
                        "games.{}: item {:?} empty, too long or twice",
                        g.id, item.id
                    ));
                }
                if item.price <= Decimal::ZERO || item.price.scale() > u32::from(g.credits_scale) {
                    return Err(format!(
                        "games.{}: item {}: price must be positive with at most {} decimals",
                        g.id, item.id, g.credits_scale
                    ));
                }
            }
        }
        let limits = &self.rate_limits;
        if !(limits.player_per_s > 0.0 && limits.global_per_s > 0.0) {
            return Err("rate_limits: rates must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [[services]]
        name = "a"
        token = "0123456789abcdef"
        games = [1]
        [[games]]
        id = 1
        credits_ledger = 10
        points_ledger = 11
        items_ledger = 12
        items = [{ id = "sword", price = "9.99" }]
    "#;

    #[test]
    fn a_good_configuration_parses_and_each_bad_field_is_named() {
        let config = GatewayConfig::parse(GOOD).expect("good");
        assert_eq!(config.games[0].credits_scale, 2);
        for (from, to, named) in [
            ("0123456789abcdef", "short", "token"),
            ("games = [1]", "games = [7]", "game 7"),
            ("points_ledger = 11", "points_ledger = 10", "ledgers"),
            ("\"9.99\"", "\"-1\"", "price"),
            ("\"9.99\"", "\"9.999\"", "price"),
            ("id = \"sword\"", "id = \"\"", "item"),
            (
                "items_ledger = 12",
                "items_ledger = 12\nsurprise = 1",
                "unknown field",
            ),
        ] {
            let bad = GOOD.replacen(from, to, 1);
            let error = GatewayConfig::parse(&bad).expect_err(named);
            assert!(error.contains(named), "{named}: {error}");
        }
    }
}
