//! Bodies: creating ledgers, accounts and transfers.

use super::*;

/// Body of [`Operation::CreateLedgers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateLedgersRequest {
    /// The ledgers, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub ledgers: Vec<WireNewLedger>,
}

impl Body for CreateLedgersRequest {
    const OPERATION: Operation = Operation::CreateLedgers;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "ledgers")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.ledgers.len(), BATCH_EVENTS_MAX, "ledgers")
    }
}

impl CreateLedgersRequest {
    /// A request creating `ledgers`.
    pub fn new(ledgers: &[NewLedger]) -> CreateLedgersRequest {
        CreateLedgersRequest {
            ledgers: ledgers.iter().map(WireNewLedger::from).collect(),
        }
    }

    /// The typed ledgers.
    pub fn to_ledgers(&self) -> Result<Vec<NewLedger>, FrameError> {
        collect(&self.ledgers)
    }
}

/// Body of [`Operation::CreateLedgersResponse`]: one [`LedgerResult`] code per ledger, in
/// request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateLedgersResponse {
    /// The result codes (packed).
    #[prost(uint32, repeated, packed = "true", tag = "1")]
    pub results: Vec<u32>,
}

impl Body for CreateLedgersResponse {
    const OPERATION: Operation = Operation::CreateLedgersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, true, "ledger results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "ledger results")
    }
}

impl CreateLedgersResponse {
    /// A response carrying `results`.
    pub fn new(results: &[LedgerResult]) -> CreateLedgersResponse {
        CreateLedgersResponse {
            results: results.iter().map(|r| r.code()).collect(),
        }
    }

    /// The typed results.
    pub fn to_results(&self) -> Vec<LedgerResult> {
        self.results
            .iter()
            .copied()
            .map(LedgerResult::from_code)
            .collect()
    }
}

/// Body of [`Operation::CreateAccounts`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateAccountsRequest {
    /// The accounts, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub accounts: Vec<WireNewAccount>,
}

impl Body for CreateAccountsRequest {
    const OPERATION: Operation = Operation::CreateAccounts;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "accounts")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.accounts.len(), BATCH_EVENTS_MAX, "accounts")
    }
}

impl CreateAccountsRequest {
    /// A request creating `accounts`.
    pub fn new(accounts: &[NewAccount]) -> CreateAccountsRequest {
        CreateAccountsRequest {
            accounts: accounts.iter().map(WireNewAccount::from).collect(),
        }
    }

    /// The typed accounts.
    pub fn to_accounts(&self) -> Result<Vec<NewAccount>, FrameError> {
        collect(&self.accounts)
    }
}

/// Body of [`Operation::CreateAccountsResponse`]: one [`AccountResult`] code per account, in
/// request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateAccountsResponse {
    /// The result codes (packed).
    #[prost(uint32, repeated, packed = "true", tag = "1")]
    pub results: Vec<u32>,
}

impl Body for CreateAccountsResponse {
    const OPERATION: Operation = Operation::CreateAccountsResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, true, "account results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "account results")
    }
}

impl CreateAccountsResponse {
    /// A response carrying `results`.
    pub fn new(results: &[AccountResult]) -> CreateAccountsResponse {
        CreateAccountsResponse {
            results: results.iter().map(|r| r.code()).collect(),
        }
    }

    /// The typed results.
    pub fn to_results(&self) -> Vec<AccountResult> {
        self.results
            .iter()
            .copied()
            .map(AccountResult::from_code)
            .collect()
    }
}

/// Body of [`Operation::CreateTransfers`].
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateTransfersRequest {
    /// The transfers, at most [`BATCH_EVENTS_MAX`].
    #[prost(message, repeated, tag = "1")]
    pub transfers: Vec<WireNewTransfer>,
}

impl Body for CreateTransfersRequest {
    const OPERATION: Operation = Operation::CreateTransfers;
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

impl CreateTransfersRequest {
    /// A request creating `transfers`.
    pub fn new(transfers: &[NewTransfer]) -> CreateTransfersRequest {
        CreateTransfersRequest {
            transfers: transfers.iter().map(WireNewTransfer::from).collect(),
        }
    }

    /// The typed transfers.
    pub fn to_transfers(&self) -> Result<Vec<NewTransfer>, FrameError> {
        collect(&self.transfers)
    }
}

/// Body of [`Operation::CreateTransfersResponse`]: one outcome per transfer, in request order.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct CreateTransfersResponse {
    /// The outcomes.
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<WireTransferOutcome>,
}

impl Body for CreateTransfersResponse {
    const OPERATION: Operation = Operation::CreateTransfersResponse;
    const REPEATED_LIMITS: &'static [RepeatedLimit] =
        &[limit(1, BATCH_EVENTS_MAX, false, "transfer results")];

    fn validate(&self) -> Result<(), FrameError> {
        check_count(self.results.len(), BATCH_EVENTS_MAX, "transfer results")
    }
}

impl CreateTransfersResponse {
    /// A response carrying `outcomes`.
    pub fn new(outcomes: &[TransferOutcome]) -> CreateTransfersResponse {
        CreateTransfersResponse {
            results: outcomes.iter().map(WireTransferOutcome::from).collect(),
        }
    }

    /// The typed outcomes.
    pub fn to_outcomes(&self) -> Result<Vec<TransferOutcome>, FrameError> {
        collect(&self.results)
    }
}
