//! Identities and positions used across the engine.
//!
//! Every identity is a newtype so that two of them can never be swapped by accident
//! (STYLE.md: "never pass a bare `u64` where two of them could be swapped").

use std::fmt;

macro_rules! newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

newtype!(
    /// An account, chosen by the client. Zero is never a valid account id.
    AccountId(u128)
);
newtype!(
    /// A transfer, chosen by the client; it is also the idempotency key. Zero is never valid.
    TransferId(u128)
);
newtype!(
    /// A ledger: one asset or currency. Zero is never valid.
    LedgerId(u32)
);
newtype!(
    /// A position in a partition's log (the Raft index). The first entry has index 1.
    LogIndex(u64)
);
newtype!(
    /// A Raft term.
    Term(u64)
);
newtype!(
    /// A segment file of a partition's log, numbered from 0 in the order they were created.
    SegmentId(u32)
);
newtype!(
    /// A partition: one Raft group and one state machine.
    PartitionId(u32)
);
newtype!(
    /// Nanoseconds since the Unix epoch, as stamped into log entries by the leader.
    /// The state machine never reads a clock: this is its only source of time.
    Timestamp(u64)
);

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.checked_add(1).expect("log index overflow"))
    }
}
