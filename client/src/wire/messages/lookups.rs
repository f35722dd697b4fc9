//! Bodies: looking up accounts and transfers.

use super::*;

/// Body of [`Operation::LookupAccounts`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupAccountsRequest {
    /// The account ids (128-bit each), at most [`BATCH_EVENTS_MAX`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub ids: Vec<Bytes>,
}

impl Body for LookupAccountsRequest {
    const OPERATION: Operation = Operation::LookupAccounts;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "account ids")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ids.len(), BATCH_EVENTS_MAX, "account ids")
    }
}

impl LookupAccountsRequest {
    /// A request looking up `ids`.
    pub fn new(ids: &[AccountId]) -> LookupAccountsRequest {
        LookupAccountsRequest {
            ids: ids.iter().map(|id| u128_to_bytes(id.0)).collect(),
        }
    }

    /// The typed ids.
    pub fn to_ids(&self) -> Result<Vec<AccountId>, FrameError> {
        self.ids
            .iter()
            .map(|b| u128_from_bytes(b, "account id").map(AccountId))
            .collect()
    }
}

/// Body of [`Operation::LookupAccountsResponse`]: the accounts found, in request order; ids
/// not found are left out.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupAccountsResponse {
    /// The accounts.
    #[prost(message, repeated, tag = "1")]
    pub accounts: Vec<WireAccount>,
}

impl Body for LookupAccountsResponse {
    const OPERATION: Operation = Operation::LookupAccountsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "accounts")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.accounts.len(), BATCH_EVENTS_MAX, "accounts")
    }
}

impl LookupAccountsResponse {
    /// A response carrying `accounts`.
    pub fn new(accounts: &[Account]) -> LookupAccountsResponse {
        LookupAccountsResponse {
            accounts: accounts.iter().map(WireAccount::from).collect(),
        }
    }

    /// The typed accounts.
    pub fn to_accounts(&self) -> Result<Vec<Account>, FrameError> {
        collect(&self.accounts)
    }
}

/// Body of [`Operation::LookupTransfers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupTransfersRequest {
    /// The transfer ids (128-bit each), at most [`BATCH_EVENTS_MAX`].
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub ids: Vec<Bytes>,
}

impl Body for LookupTransfersRequest {
    const OPERATION: Operation = Operation::LookupTransfers;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfer ids")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ids.len(), BATCH_EVENTS_MAX, "transfer ids")
    }
}

impl LookupTransfersRequest {
    /// A request looking up `ids`.
    pub fn new(ids: &[TransferId]) -> LookupTransfersRequest {
        LookupTransfersRequest {
            ids: ids.iter().map(|id| u128_to_bytes(id.0)).collect(),
        }
    }

    /// The typed ids.
    pub fn to_ids(&self) -> Result<Vec<TransferId>, FrameError> {
        self.ids
            .iter()
            .map(|b| u128_from_bytes(b, "transfer id").map(TransferId))
            .collect()
    }
}

/// Body of [`Operation::LookupTransfersResponse`]: the transfers found, in request order; ids
/// not found are left out.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LookupTransfersResponse {
    /// The transfers.
    #[prost(message, repeated, tag = "1")]
    pub transfers: Vec<WireTransfer>,
}

impl Body for LookupTransfersResponse {
    const OPERATION: Operation = Operation::LookupTransfersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfers")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.transfers.len(), BATCH_EVENTS_MAX, "transfers")?;
        for transfer in &self.transfers {
            check_size(transfer.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        }
        Ok(())
    }
}

impl LookupTransfersResponse {
    /// A response carrying `transfers`.
    pub fn new(transfers: &[Transfer]) -> LookupTransfersResponse {
        LookupTransfersResponse {
            transfers: transfers.iter().map(WireTransfer::from).collect(),
        }
    }

    /// The typed transfers.
    pub fn to_transfers(&self) -> Result<Vec<Transfer>, FrameError> {
        collect(&self.transfers)
    }
}
