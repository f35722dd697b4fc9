//! Postings: what the state machine tells the per-account index about each balance change.
//!
//! Every change of an account's balances made by a successful transfer event (plain, hold,
//! post, void, refund) or by a hold expiring produces one [`Posting`] per account touched:
//! the debit side and the credit side. The state machine records them, in apply order, into a
//! buffer when postings are enabled ([`crate::partition::Partition::set_postings_enabled`]),
//! and rolls them back with a failed linked chain. The index consumes the buffer after each
//! entry. A posting is a pure function of the applied entries, so the index is derived state.
//!
//! Hold expiry has no transfer event of its own. It appears as kind [`PostingKind::Expired`]
//! under the hold's transfer id, at the timestamp `now` of the entry whose arrival expired it
//! (the timestamp the entry's first event also gets; the expiry is ordered before it), with
//! the hold's amount and the balances after the release.

use crate::outcome::Balances;
use crate::types::{AccountId, LogIndex, Timestamp, TransferId};

/// What an entry of an account's history did to its balances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PostingKind {
    /// A plain transfer: `amount` added to a posted balance.
    Plain = 0,
    /// A pending hold: `amount` added to a pending balance.
    Pending = 1,
    /// The post of a hold: the whole hold left the pending balance, `amount` (at most the
    /// hold) was added to the posted balance.
    Post = 2,
    /// The void of a hold: `amount` (the hold) left the pending balance.
    Void = 3,
    /// A refund: `amount` added to a posted balance (the original's sides swapped).
    Refund = 4,
    /// A hold expired: `amount` (the hold) left the pending balance. The transfer id is the
    /// hold's.
    Expired = 5,
}

impl PostingKind {
    /// The kind with this on-disk code, if any.
    pub fn from_code(code: u8) -> Option<PostingKind> {
        Some(match code {
            0 => PostingKind::Plain,
            1 => PostingKind::Pending,
            2 => PostingKind::Post,
            3 => PostingKind::Void,
            4 => PostingKind::Refund,
            5 => PostingKind::Expired,
            _ => return None,
        })
    }

    /// Whether `amount` was added to a posted balance (and so counts as a flow).
    pub fn is_posted(self) -> bool {
        matches!(
            self,
            PostingKind::Plain | PostingKind::Post | PostingKind::Refund
        )
    }
}

/// Which side of the transfer the account was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// The account was debited: money out (posted kinds) or held out (pending kinds).
    Debit = 0,
    /// The account was credited: money in.
    Credit = 1,
}

impl Side {
    /// The side with this on-disk code, if any.
    pub fn from_code(code: u8) -> Option<Side> {
        match code {
            0 => Some(Side::Debit),
            1 => Some(Side::Credit),
            _ => None,
        }
    }
}

/// One balance change of one account, with the account's balances right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    /// The account whose balances changed.
    pub account: AccountId,
    /// The event's timestamp (for an expiry: the expiring entry's `now`).
    pub timestamp: Timestamp,
    /// The log entry that caused it.
    pub log_index: LogIndex,
    /// The transfer (for an expiry: the hold).
    pub transfer: TransferId,
    /// What happened.
    pub kind: PostingKind,
    /// Which side the account was on.
    pub side: Side,
    /// The amount in minor units (see [`PostingKind`] for its meaning per kind).
    pub amount: u128,
    /// The account's balances right after the change.
    pub balances: Balances,
}
