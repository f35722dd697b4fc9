//! Element messages: the records inside bodies (ledgers, accounts, transfers, history
//! entries, points, status) and their conversions.

use super::*;

/// A ledger to create.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNewLedger {
    /// The ledger id.
    #[prost(uint32, tag = "1")]
    pub id: u32,
    /// Digits after the decimal point (`u8`).
    #[prost(uint32, tag = "2")]
    pub scale: u32,
    /// Application classification (`u16`).
    #[prost(uint32, tag = "3")]
    pub code: u32,
}

impl From<&NewLedger> for WireNewLedger {
    fn from(l: &NewLedger) -> WireNewLedger {
        WireNewLedger {
            id: l.id.0,
            scale: u32::from(l.scale),
            code: u32::from(l.code),
        }
    }
}

impl TryFrom<&WireNewLedger> for NewLedger {
    type Error = FrameError;

    fn try_from(w: &WireNewLedger) -> Result<NewLedger, FrameError> {
        Ok(NewLedger {
            id: LedgerId(w.id),
            scale: to_u8(w.scale, "ledger.scale")?,
            code: to_u16(w.code, "ledger.code")?,
        })
    }
}

/// An account to create.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireNewAccount {
    /// The account id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// Its ledger.
    #[prost(uint32, tag = "2")]
    pub ledger: u32,
    /// Its kind (`u16`).
    #[prost(uint32, tag = "3")]
    pub code: u32,
    /// [`AccountFlags`] (`u16`).
    #[prost(uint32, tag = "4")]
    pub flags: u32,
    /// The optional limit; absent means none.
    #[prost(message, optional, tag = "5")]
    pub limit: Option<WireDecimal>,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "6")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "7")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "8")]
    pub user_data_32: u32,
}

impl From<&NewAccount> for WireNewAccount {
    fn from(a: &NewAccount) -> WireNewAccount {
        WireNewAccount {
            id: u128_to_bytes(a.id.0),
            ledger: a.ledger.0,
            code: u32::from(a.code),
            flags: u32::from(a.flags.0),
            limit: a.limit.map(WireDecimal::from),
            user_data_128: u128_to_bytes(a.user_data_128),
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
        }
    }
}

impl TryFrom<&WireNewAccount> for NewAccount {
    type Error = FrameError;

    fn try_from(w: &WireNewAccount) -> Result<NewAccount, FrameError> {
        Ok(NewAccount {
            id: AccountId(u128_from_bytes(&w.id, "account.id")?),
            ledger: LedgerId(w.ledger),
            code: to_u16(w.code, "account.code")?,
            flags: AccountFlags(to_u16(w.flags, "account.flags")?),
            limit: w.limit.as_ref().map(Decimal::try_from).transpose()?,
            user_data_128: u128_from_bytes(&w.user_data_128, "account.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
        })
    }
}

/// What one transfer event came to.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireTransferOutcome {
    /// The [`TransferResult`] code.
    #[prost(uint32, tag = "1")]
    pub result: u32,
    /// The timestamp assigned, in nanoseconds.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The debit account's balances after the transfer.
    #[prost(message, optional, tag = "3")]
    pub debit_balances: Option<WireBalances>,
    /// The credit account's balances after the transfer.
    #[prost(message, optional, tag = "4")]
    pub credit_balances: Option<WireBalances>,
}

impl From<&TransferOutcome> for WireTransferOutcome {
    fn from(o: &TransferOutcome) -> WireTransferOutcome {
        WireTransferOutcome {
            result: o.result.code(),
            timestamp: o.timestamp.0,
            debit_balances: Some(WireBalances::from(&o.debit_balances)),
            credit_balances: Some(WireBalances::from(&o.credit_balances)),
        }
    }
}

impl TryFrom<&WireTransferOutcome> for TransferOutcome {
    type Error = FrameError;

    fn try_from(w: &WireTransferOutcome) -> Result<TransferOutcome, FrameError> {
        Ok(TransferOutcome {
            result: TransferResult::from_code(w.result),
            timestamp: Timestamp(w.timestamp),
            debit_balances: balances_or_zero(w.debit_balances.as_ref())?,
            credit_balances: balances_or_zero(w.credit_balances.as_ref())?,
        })
    }
}

/// An account record, as looked up.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireAccount {
    /// The account id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// Its ledger.
    #[prost(uint32, tag = "2")]
    pub ledger: u32,
    /// Its ledger's scale (`u8`).
    #[prost(uint32, tag = "3")]
    pub scale: u32,
    /// Its kind (`u16`).
    #[prost(uint32, tag = "4")]
    pub code: u32,
    /// [`AccountFlags`] (`u16`).
    #[prost(uint32, tag = "5")]
    pub flags: u32,
    /// The limit in minor units (128-bit); absent means none.
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub limit: Option<Bytes>,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "7")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "8")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "9")]
    pub user_data_32: u32,
    /// Creation time, in nanoseconds.
    #[prost(uint64, tag = "10")]
    pub timestamp: u64,
    /// Its balances.
    #[prost(message, optional, tag = "11")]
    pub balances: Option<WireBalances>,
}

impl From<&Account> for WireAccount {
    fn from(a: &Account) -> WireAccount {
        WireAccount {
            id: u128_to_bytes(a.id.0),
            ledger: a.ledger.0,
            scale: u32::from(a.scale),
            code: u32::from(a.code),
            flags: u32::from(a.flags.0),
            limit: a.limit.map(u128_to_bytes),
            user_data_128: u128_to_bytes(a.user_data_128),
            user_data_64: a.user_data_64,
            user_data_32: a.user_data_32,
            timestamp: a.timestamp.0,
            balances: Some(WireBalances::from(&a.balances)),
        }
    }
}

impl TryFrom<&WireAccount> for Account {
    type Error = FrameError;

    fn try_from(w: &WireAccount) -> Result<Account, FrameError> {
        Ok(Account {
            id: AccountId(u128_from_bytes(&w.id, "account.id")?),
            ledger: LedgerId(w.ledger),
            scale: to_u8(w.scale, "account.scale")?,
            code: to_u16(w.code, "account.code")?,
            flags: AccountFlags(to_u16(w.flags, "account.flags")?),
            limit: w
                .limit
                .as_ref()
                .map(|b| u128_from_bytes(b, "account.limit"))
                .transpose()?,
            user_data_128: u128_from_bytes(&w.user_data_128, "account.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
            timestamp: Timestamp(w.timestamp),
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// A decided transfer, as looked up.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireTransfer {
    /// The transfer id (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub id: Bytes,
    /// The [`TransferKind`] code.
    #[prost(uint32, tag = "2")]
    pub kind: u32,
    /// The debit account (128-bit).
    #[prost(bytes = "bytes", tag = "3")]
    pub debit_account: Bytes,
    /// The credit account (128-bit).
    #[prost(bytes = "bytes", tag = "4")]
    pub credit_account: Bytes,
    /// The ledger.
    #[prost(uint32, tag = "5")]
    pub ledger: u32,
    /// The ledger's scale (`u8`).
    #[prost(uint32, tag = "6")]
    pub scale: u32,
    /// The amount in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "7")]
    pub amount: Bytes,
    /// The hold posted or voided, or the transfer refunded (128-bit).
    #[prost(bytes = "bytes", tag = "8")]
    pub reference: Bytes,
    /// Hold timeout in seconds.
    #[prost(uint32, tag = "9")]
    pub timeout_s: u32,
    /// Application classification (`u16`).
    #[prost(uint32, tag = "10")]
    pub code: u32,
    /// [`TransferFlags`] (`u16`).
    #[prost(uint32, tag = "11")]
    pub flags: u32,
    /// External reference (128-bit).
    #[prost(bytes = "bytes", tag = "12")]
    pub user_data_128: Bytes,
    /// External reference.
    #[prost(uint64, tag = "13")]
    pub user_data_64: u64,
    /// External reference.
    #[prost(uint32, tag = "14")]
    pub user_data_32: u32,
    /// The memo, at most [`MEMO_SIZE_MAX`] bytes.
    #[prost(bytes = "bytes", tag = "15")]
    pub memo: Bytes,
    /// The outcome; required.
    #[prost(message, optional, tag = "16")]
    pub outcome: Option<WireTransferOutcome>,
    /// The [`HoldStatus`] code.
    #[prost(uint32, tag = "17")]
    pub hold: u32,
    /// Total refunded so far, in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "18")]
    pub refunded: Bytes,
}

impl From<&Transfer> for WireTransfer {
    fn from(t: &Transfer) -> WireTransfer {
        WireTransfer {
            id: u128_to_bytes(t.id.0),
            kind: t.kind.code(),
            debit_account: u128_to_bytes(t.debit_account.0),
            credit_account: u128_to_bytes(t.credit_account.0),
            ledger: t.ledger.0,
            scale: u32::from(t.scale),
            amount: u128_to_bytes(t.amount),
            reference: u128_to_bytes(t.reference.0),
            timeout_s: t.timeout_s,
            code: u32::from(t.code),
            flags: u32::from(t.flags.0),
            user_data_128: u128_to_bytes(t.user_data_128),
            user_data_64: t.user_data_64,
            user_data_32: t.user_data_32,
            memo: Bytes::copy_from_slice(&t.memo),
            outcome: Some(WireTransferOutcome::from(&t.outcome)),
            hold: t.hold.code(),
            refunded: u128_to_bytes(t.refunded),
        }
    }
}

impl TryFrom<&WireTransfer> for Transfer {
    type Error = FrameError;

    fn try_from(w: &WireTransfer) -> Result<Transfer, FrameError> {
        check_size(w.memo.len(), MEMO_SIZE_MAX, "transfer.memo")?;
        let outcome = w.outcome.as_ref().ok_or(FrameError::InvalidField {
            what: "transfer.outcome",
            reason: "missing",
        })?;
        Ok(Transfer {
            id: TransferId(u128_from_bytes(&w.id, "transfer.id")?),
            kind: TransferKind::from_code(w.kind),
            debit_account: AccountId(u128_from_bytes(&w.debit_account, "transfer.debit_account")?),
            credit_account: AccountId(u128_from_bytes(
                &w.credit_account,
                "transfer.credit_account",
            )?),
            ledger: LedgerId(w.ledger),
            scale: to_u8(w.scale, "transfer.scale")?,
            amount: u128_from_bytes(&w.amount, "transfer.amount")?,
            reference: TransferId(u128_from_bytes(&w.reference, "transfer.reference")?),
            timeout_s: w.timeout_s,
            code: to_u16(w.code, "transfer.code")?,
            flags: TransferFlags(to_u16(w.flags, "transfer.flags")?),
            user_data_128: u128_from_bytes(&w.user_data_128, "transfer.user_data_128")?,
            user_data_64: w.user_data_64,
            user_data_32: w.user_data_32,
            memo: w.memo.to_vec(),
            outcome: TransferOutcome::try_from(outcome)?,
            hold: HoldStatus::from_code(w.hold),
            refunded: u128_from_bytes(&w.refunded, "transfer.refunded")?,
        })
    }
}

/// One entry of an account's history.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireHistoryEntry {
    /// The transfer (128-bit).
    #[prost(bytes = "bytes", tag = "1")]
    pub transfer_id: Bytes,
    /// When it was applied, in nanoseconds.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The [`TransferKind`] code.
    #[prost(uint32, tag = "3")]
    pub kind: u32,
    /// Whether the account was debited (else credited).
    #[prost(bool, tag = "4")]
    pub is_debit: bool,
    /// The other account (128-bit).
    #[prost(bytes = "bytes", tag = "5")]
    pub counterparty: Bytes,
    /// The amount in minor units (128-bit).
    #[prost(bytes = "bytes", tag = "6")]
    pub amount: Bytes,
    /// The account's balances after the entry.
    #[prost(message, optional, tag = "7")]
    pub balances: Option<WireBalances>,
}

impl From<&HistoryEntry> for WireHistoryEntry {
    fn from(e: &HistoryEntry) -> WireHistoryEntry {
        WireHistoryEntry {
            transfer_id: u128_to_bytes(e.transfer_id.0),
            timestamp: e.timestamp.0,
            kind: e.kind.code(),
            is_debit: e.is_debit,
            counterparty: u128_to_bytes(e.counterparty.0),
            amount: u128_to_bytes(e.amount),
            balances: Some(WireBalances::from(&e.balances)),
        }
    }
}

impl TryFrom<&WireHistoryEntry> for HistoryEntry {
    type Error = FrameError;

    fn try_from(w: &WireHistoryEntry) -> Result<HistoryEntry, FrameError> {
        Ok(HistoryEntry {
            transfer_id: TransferId(u128_from_bytes(&w.transfer_id, "entry.transfer_id")?),
            timestamp: Timestamp(w.timestamp),
            kind: TransferKind::from_code(w.kind),
            is_debit: w.is_debit,
            counterparty: AccountId(u128_from_bytes(&w.counterparty, "entry.counterparty")?),
            amount: u128_from_bytes(&w.amount, "entry.amount")?,
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// An account's balances at the close of one hour.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireBalancePoint {
    /// Start of the hour, in nanoseconds.
    #[prost(uint64, tag = "1")]
    pub time_start: u64,
    /// The closing balances.
    #[prost(message, optional, tag = "2")]
    pub balances: Option<WireBalances>,
}

impl From<&BalancePoint> for WireBalancePoint {
    fn from(p: &BalancePoint) -> WireBalancePoint {
        WireBalancePoint {
            time_start: p.time_start.0,
            balances: Some(WireBalances::from(&p.balances)),
        }
    }
}

impl TryFrom<&WireBalancePoint> for BalancePoint {
    type Error = FrameError;

    fn try_from(w: &WireBalancePoint) -> Result<BalancePoint, FrameError> {
        Ok(BalancePoint {
            time_start: Timestamp(w.time_start),
            balances: balances_or_zero(w.balances.as_ref())?,
        })
    }
}

/// The leader of one partition.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WirePartitionLeader {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// The leader's client address (`host:port`); empty while unknown.
    #[prost(string, tag = "2")]
    pub address: String,
}

impl From<&PartitionLeader> for WirePartitionLeader {
    fn from(l: &PartitionLeader) -> WirePartitionLeader {
        WirePartitionLeader {
            partition: l.partition.0,
            address: l.address.clone().unwrap_or_default(),
        }
    }
}

impl From<&WirePartitionLeader> for PartitionLeader {
    fn from(w: &WirePartitionLeader) -> PartitionLeader {
        PartitionLeader {
            partition: PartitionId(w.partition),
            address: optional_text(&w.address),
        }
    }
}

/// One replica's status, as its node reports it.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireReplicaStatus {
    /// The partition.
    #[prost(uint32, tag = "1")]
    pub partition: u32,
    /// Current term.
    #[prost(uint64, tag = "2")]
    pub term: u64,
    /// The leader it follows (0: none known).
    #[prost(uint64, tag = "3")]
    pub leader: u64,
    /// Last log index.
    #[prost(uint64, tag = "4")]
    pub last_index: u64,
    /// Commit index.
    #[prost(uint64, tag = "5")]
    pub commit_index: u64,
    /// Applied index.
    #[prost(uint64, tag = "6")]
    pub applied_index: u64,
    /// State digest, low 64 bits.
    #[prost(fixed64, tag = "7")]
    pub digest_low: u64,
    /// State digest, high 64 bits.
    #[prost(fixed64, tag = "8")]
    pub digest_high: u64,
    /// Recovering lost data.
    #[prost(bool, tag = "9")]
    pub recovering: bool,
    /// Client requests in its inbox.
    #[prost(uint32, tag = "10")]
    pub queue_depth: u32,
}

impl From<&ReplicaStatus> for WireReplicaStatus {
    fn from(r: &ReplicaStatus) -> WireReplicaStatus {
        WireReplicaStatus {
            partition: r.partition.0,
            term: r.term,
            leader: r.leader,
            last_index: r.last_index,
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            digest_low: r.digest as u64,
            digest_high: (r.digest >> 64) as u64,
            recovering: r.recovering,
            queue_depth: r.queue_depth,
        }
    }
}

impl From<&WireReplicaStatus> for ReplicaStatus {
    fn from(w: &WireReplicaStatus) -> ReplicaStatus {
        ReplicaStatus {
            partition: PartitionId(w.partition),
            term: w.term,
            leader: w.leader,
            last_index: w.last_index,
            commit_index: w.commit_index,
            applied_index: w.applied_index,
            digest: u128::from(w.digest_high) << 64 | u128::from(w.digest_low),
            recovering: w.recovering,
            queue_depth: w.queue_depth,
        }
    }
}

/// One stage's timings, as a node reports them.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct WireStageSummary {
    /// The stage's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Times timed.
    #[prost(uint64, tag = "2")]
    pub count: u64,
    /// Total microseconds.
    #[prost(uint64, tag = "3")]
    pub total_us: u64,
    /// Median microseconds.
    #[prost(uint64, tag = "4")]
    pub p50_us: u64,
    /// 99th percentile microseconds.
    #[prost(uint64, tag = "5")]
    pub p99_us: u64,
    /// Longest, microseconds.
    #[prost(uint64, tag = "6")]
    pub max_us: u64,
}

impl From<&StageSummary> for WireStageSummary {
    fn from(s: &StageSummary) -> WireStageSummary {
        WireStageSummary {
            name: s.name.clone(),
            count: s.count,
            total_us: s.total_us,
            p50_us: s.p50_us,
            p99_us: s.p99_us,
            max_us: s.max_us,
        }
    }
}

impl From<&WireStageSummary> for StageSummary {
    fn from(w: &WireStageSummary) -> StageSummary {
        StageSummary {
            name: w.name.clone(),
            count: w.count,
            total_us: w.total_us,
            p50_us: w.p50_us,
            p99_us: w.p99_us,
            max_us: w.max_us,
        }
    }
}

pub(super) fn collect<'a, W: 'a, T>(
    wire: impl IntoIterator<Item = &'a W>,
) -> Result<Vec<T>, FrameError>
where
    T: TryFrom<&'a W, Error = FrameError>,
{
    wire.into_iter().map(T::try_from).collect()
}
