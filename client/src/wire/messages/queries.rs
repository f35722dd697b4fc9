//! Bodies: an account's history, flows and balance series.

use super::*;

/// Body of [`Operation::AccountHistory`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountHistoryRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Zero for the first page, else a previous page's `next_cursor`. Opaque.
    #[prost(uint64, tag = "2")]
    pub cursor: u64,
    /// Most entries to return, at most [`HISTORY_ENTRIES_MAX`].
    #[prost(uint32, tag = "3")]
    pub limit: u32,
    /// The [`Direction`] code.
    #[prost(uint32, tag = "4")]
    pub direction: u32,
    /// Only entries stamped at or after this time (nanoseconds).
    #[prost(uint64, optional, tag = "5")]
    pub time_min: Option<u64>,
    /// Only entries stamped before this time (nanoseconds).
    #[prost(uint64, optional, tag = "6")]
    pub time_max: Option<u64>,
}

impl Body for AccountHistoryRequest {
    const OPERATION: Operation = Operation::AccountHistory;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.limit as usize, HISTORY_ENTRIES_MAX, "history.limit")
    }
}

impl From<&HistoryQuery> for AccountHistoryRequest {
    fn from(q: &HistoryQuery) -> AccountHistoryRequest {
        AccountHistoryRequest {
            account: u128_to_bytes(q.account.0),
            cursor: q.cursor,
            limit: q.limit,
            direction: q.direction.code(),
            time_min: q.time_min.map(|t| t.0),
            time_max: q.time_max.map(|t| t.0),
        }
    }
}

impl AccountHistoryRequest {
    /// The typed query. An unknown direction is an error: the server must not guess.
    pub fn to_query(&self) -> Result<HistoryQuery, FrameError> {
        let direction = Direction::from_code(self.direction);
        if !direction.is_known() {
            return Err(FrameError::InvalidField {
                what: "history.direction",
                reason: "unknown direction",
            });
        }
        Ok(HistoryQuery {
            account: AccountId(u128_from_bytes(&self.account, "history.account")?),
            cursor: self.cursor,
            limit: self.limit,
            direction,
            time_min: self.time_min.map(Timestamp),
            time_max: self.time_max.map(Timestamp),
        })
    }
}

/// Body of [`Operation::AccountHistoryResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountHistoryResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// The entries, at most [`HISTORY_ENTRIES_MAX`].
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<WireHistoryEntry>,
    /// The next page's cursor; absent at the end of the history.
    #[prost(uint64, optional, tag = "3")]
    pub next_cursor: Option<u64>,
}

impl Body for AccountHistoryResponse {
    const OPERATION: Operation = Operation::AccountHistoryResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(2, HISTORY_ENTRIES_MAX, false, "history entries")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.entries.len(), HISTORY_ENTRIES_MAX, "history entries")
    }
}

impl From<&HistoryPage> for AccountHistoryResponse {
    fn from(p: &HistoryPage) -> AccountHistoryResponse {
        AccountHistoryResponse {
            scale: u32::from(p.scale),
            entries: p.entries.iter().map(WireHistoryEntry::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl AccountHistoryResponse {
    /// The typed page.
    pub fn to_page(&self) -> Result<HistoryPage, FrameError> {
        Ok(HistoryPage {
            scale: to_u8(self.scale, "history.scale")?,
            entries: collect(&self.entries)?,
            next_cursor: self.next_cursor,
        })
    }
}

/// Body of [`Operation::AccountFlows`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountFlowsRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Start of the window, inclusive (nanoseconds).
    #[prost(uint64, tag = "2")]
    pub time_min: u64,
    /// End of the window, exclusive (nanoseconds).
    #[prost(uint64, tag = "3")]
    pub time_max: u64,
}

impl Body for AccountFlowsRequest {
    const OPERATION: Operation = Operation::AccountFlows;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&FlowsQuery> for AccountFlowsRequest {
    fn from(q: &FlowsQuery) -> AccountFlowsRequest {
        AccountFlowsRequest {
            account: u128_to_bytes(q.account.0),
            time_min: q.time_min.0,
            time_max: q.time_max.0,
        }
    }
}

impl AccountFlowsRequest {
    /// The typed query.
    pub fn to_query(&self) -> Result<FlowsQuery, FrameError> {
        Ok(FlowsQuery {
            account: AccountId(u128_from_bytes(&self.account, "flows.account")?),
            time_min: Timestamp(self.time_min),
            time_max: Timestamp(self.time_max),
        })
    }
}

/// Body of [`Operation::AccountFlowsResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct AccountFlowsResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// Total posted debits in the window, minor units (128-bit).
    #[prost(bytes = "bytes", tag = "2")]
    pub debits_total: Bytes,
    /// Total posted credits in the window, minor units (128-bit).
    #[prost(bytes = "bytes", tag = "3")]
    pub credits_total: Bytes,
    /// Number of posted debits in the window.
    #[prost(uint64, tag = "4")]
    pub debit_count: u64,
    /// Number of posted credits in the window.
    #[prost(uint64, tag = "5")]
    pub credit_count: u64,
}

impl Body for AccountFlowsResponse {
    const OPERATION: Operation = Operation::AccountFlowsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&Flows> for AccountFlowsResponse {
    fn from(f: &Flows) -> AccountFlowsResponse {
        AccountFlowsResponse {
            scale: u32::from(f.scale),
            debits_total: u128_to_bytes(f.debits_total),
            credits_total: u128_to_bytes(f.credits_total),
            debit_count: f.debit_count,
            credit_count: f.credit_count,
        }
    }
}

impl AccountFlowsResponse {
    /// The typed flows.
    pub fn to_flows(&self) -> Result<Flows, FrameError> {
        Ok(Flows {
            scale: to_u8(self.scale, "flows.scale")?,
            debits_total: u128_from_bytes(&self.debits_total, "flows.debits_total")?,
            credits_total: u128_from_bytes(&self.credits_total, "flows.credits_total")?,
            debit_count: self.debit_count,
            credit_count: self.credit_count,
        })
    }
}

/// Body of [`Operation::BalanceSeries`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BalanceSeriesRequest {
    /// The account (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub account: Bytes,
    /// Start of the range, inclusive (nanoseconds).
    #[prost(uint64, tag = "2")]
    pub time_min: u64,
    /// End of the range, exclusive (nanoseconds), at most [`SERIES_POINTS_MAX`] hours on.
    #[prost(uint64, tag = "3")]
    pub time_max: u64,
}

impl Body for BalanceSeriesRequest {
    const OPERATION: Operation = Operation::BalanceSeries;
    const REPEATED_LIMITS: &'static [RepeatedLimit] = &[];

    fn validate(&self) -> Result<(), FrameError> {
        Ok(())
    }
}

impl From<&SeriesQuery> for BalanceSeriesRequest {
    fn from(q: &SeriesQuery) -> BalanceSeriesRequest {
        BalanceSeriesRequest {
            account: u128_to_bytes(q.account.0),
            time_min: q.time_min.0,
            time_max: q.time_max.0,
        }
    }
}

impl BalanceSeriesRequest {
    /// The typed query.
    pub fn to_query(&self) -> Result<SeriesQuery, FrameError> {
        Ok(SeriesQuery {
            account: AccountId(u128_from_bytes(&self.account, "series.account")?),
            time_min: Timestamp(self.time_min),
            time_max: Timestamp(self.time_max),
        })
    }
}

/// Body of [`Operation::BalanceSeriesResponse`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BalanceSeriesResponse {
    /// The account's ledger scale (`u8`).
    #[prost(uint32, tag = "1")]
    pub scale: u32,
    /// One point per hour, oldest first, at most [`SERIES_POINTS_MAX`].
    #[prost(message, repeated, tag = "2")]
    pub points: Vec<WireBalancePoint>,
}

impl Body for BalanceSeriesResponse {
    const OPERATION: Operation = Operation::BalanceSeriesResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(2, SERIES_POINTS_MAX, false, "series points")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.points.len(), SERIES_POINTS_MAX, "series points")
    }
}

impl BalanceSeriesResponse {
    /// A response carrying `points` of a ledger with `scale`.
    pub fn new(scale: u8, points: &[BalancePoint]) -> BalanceSeriesResponse {
        BalanceSeriesResponse {
            scale: u32::from(scale),
            points: points.iter().map(WireBalancePoint::from).collect(),
        }
    }

    /// The ledger scale and the typed points.
    pub fn to_points(&self) -> Result<(u8, Vec<BalancePoint>), FrameError> {
        Ok((to_u8(self.scale, "series.scale")?, collect(&self.points)?))
    }
}
