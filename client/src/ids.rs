//! Id generation.
//!
//! Ledger ids are small numbers an operator chooses; account and transfer ids are 128-bit
//! values the *client* chooses, and a transfer id is also its idempotency key: a retry must
//! reuse it, so an application creates the id once, stores it with its own record (the
//! purchase, the reward claim) and only then sends the transfer.
//!
//! Three generators:
//! - [`new_id`]: 128 random bits (never zero). Collisions are negligible (birthday bound near
//!   2^64 ids) and the server handles random ids well.
//! - [`time_ordered_id`]: like a ULID, a 48-bit millisecond timestamp followed by 80 random
//!   bits, so ids sort roughly by creation time (useful as keys in the application's own
//!   database). The order is not strict within one millisecond.
//! - [`id_beside`]: a random id that lands in the same partition as a given account, so that
//!   a player's wallet and inventory can move money between them without a cross-partition
//!   transfer. `Client::account_id_beside` calls it with the cluster's partition count. A
//!   *transfer* id drawn beside its debit account is also at home on the partition that
//!   applies it, which spares the server a claim of the id on another partition (one more
//!   commit; `docs/architecture.md`, "Routing").
//!
//! Each has a `_with` form taking an explicit RNG, so tests can use a seeded one.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::wire::partition_of;

/// Bits of a [`time_ordered_id`] taken by the random part.
pub const TIME_ORDERED_RANDOM_BITS: u32 = 80;

/// Most ids [`id_beside`] draws before giving up. A draw matches with probability
/// `1 / partition_count` (at least 1/4096), so reaching this bound has probability below
/// e^-4096: it cannot happen, and is asserted rather than returned as an error.
pub const ID_BESIDE_DRAWS_MAX: u32 = 1 << 24;

/// A random non-zero 128-bit id from the thread's RNG.
pub fn new_id() -> u128 {
    new_id_with(&mut rand::thread_rng())
}

/// A random non-zero 128-bit id from `rng`.
pub fn new_id_with<R: Rng + ?Sized>(rng: &mut R) -> u128 {
    // Zero is never a valid id; mapping it to 1 biases one value in 2^128, which is nothing.
    rng.gen::<u128>().max(1)
}

/// A ULID-like id: milliseconds since the Unix epoch in the top 48 bits, random below.
pub fn time_ordered_id() -> u128 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    time_ordered_id_with(
        u64::try_from(ms).unwrap_or(u64::MAX),
        &mut rand::thread_rng(),
    )
}

/// A ULID-like id for the time `ms` (milliseconds since the Unix epoch; only its low 48 bits
/// are kept, which last until the year 10889) with random bits from `rng`. Never zero.
pub fn time_ordered_id_with<R: Rng + ?Sized>(ms: u64, rng: &mut R) -> u128 {
    let time_mask: u128 = (1 << 48) - 1;
    let random_mask: u128 = (1 << TIME_ORDERED_RANDOM_BITS) - 1;
    let id = ((u128::from(ms) & time_mask) << TIME_ORDERED_RANDOM_BITS)
        | (rng.gen::<u128>() & random_mask);
    id.max(1)
}

/// A fresh random id in the same partition as `account` in a cluster of `partition_count`
/// partitions (see [`partition_of`]).
pub fn id_beside(account: u128, partition_count: u32) -> u128 {
    id_beside_with(account, partition_count, &mut rand::thread_rng())
}

/// [`id_beside`] with an explicit RNG. Draws random ids until one lands in the partition;
/// the expected number of draws is `partition_count`.
pub fn id_beside_with<R: Rng + ?Sized>(account: u128, partition_count: u32, rng: &mut R) -> u128 {
    assert!(partition_count > 0, "a cluster has at least one partition");
    let target = partition_of(account, partition_count);
    for _ in 0..ID_BESIDE_DRAWS_MAX {
        let id = new_id_with(rng);
        if id != account && partition_of(id, partition_count) == target {
            return id;
        }
    }
    panic!("no id in partition {target} of {partition_count} after {ID_BESIDE_DRAWS_MAX} draws");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn id_beside_lands_in_the_partition() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for partition_count in [1, 2, 7, 64, 4096] {
            for _ in 0..20 {
                let account = new_id_with(&mut rng);
                let id = id_beside_with(account, partition_count, &mut rng);
                assert_ne!(id, 0);
                assert_ne!(id, account);
                assert_eq!(
                    partition_of(id, partition_count),
                    partition_of(account, partition_count)
                );
            }
        }
    }

    #[test]
    fn time_ordered_ids_sort_by_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut previous = 0u128;
        for ms in [1u64, 2, 1_000, 1_700_000_000_000, (1 << 48) - 1] {
            let id = time_ordered_id_with(ms, &mut rng);
            assert!(id > previous, "{id:x} after {previous:x}");
            assert_eq!((id >> TIME_ORDERED_RANDOM_BITS) as u64, ms);
            previous = id;
        }
        // The random parts differ within one millisecond.
        let a = time_ordered_id_with(5, &mut rng);
        let b = time_ordered_id_with(5, &mut rng);
        assert_ne!(a, b);
        assert_ne!(time_ordered_id(), 0);
    }

    #[test]
    fn new_ids_are_nonzero_and_distinct() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let ids: std::collections::BTreeSet<u128> =
            (0..1000).map(|_| new_id_with(&mut rng)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
        assert_ne!(new_id(), new_id());
    }
}
