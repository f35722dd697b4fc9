//! Every id the gateway uses is derived, never stored: accounts from (game, player, purpose),
//! transfers from (service, idempotency key, leg). A retry through any gateway instance,
//! after any crash, therefore names the same transfer, which Tally applies once.
//!
//! Accounts of one player live in the partition of the player's credits account (drawn
//! with a generator seeded by their name, so the same everywhere), and so do the transfers
//! they make and the game's system accounts they meet there (issuer, revenue, inventory:
//! one of each per partition), so no request spans partitions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use tally_client::ids::id_beside_with;
use tally_client::wire::partition_of;

/// SHA-256 of the parts, each length-prefixed, as a non-zero 128-bit id.
fn hash(parts: &[&[u8]]) -> u128 {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let digest = h.finalize();
    u128::from_le_bytes(digest[..16].try_into().expect("16 bytes")).max(1)
}

fn seeded(parts: &[&[u8]]) -> ChaCha8Rng {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    ChaCha8Rng::from_seed(h.finalize().into())
}

/// The ids of one cluster (they depend on its partition count).
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    /// The cluster's partitions.
    pub partitions: u32,
}

impl Ids {
    /// A player's credits account in `game`.
    pub fn wallet(&self, game: u32, player: &str) -> u128 {
        hash(&[b"wallet", &game.to_le_bytes(), player.as_bytes()])
    }

    /// An account of the player's beside its wallet: `purpose` is `points`, or `item:<id>`.
    pub fn beside_wallet(&self, game: u32, player: &str, purpose: &str) -> u128 {
        let wallet = self.wallet(game, player);
        let mut rng = seeded(&[
            b"beside",
            &game.to_le_bytes(),
            player.as_bytes(),
            purpose.as_bytes(),
        ]);
        id_beside_with(wallet, self.partitions, &mut rng)
    }

    /// A game's system account (`issuer`, `revenue`, `points-issuer`, `points-sink`,
    /// `inventory:<item>`) in the partition of `near`.
    pub fn system(&self, game: u32, purpose: &str, near: u128) -> u128 {
        let partition = partition_of(near, self.partitions);
        let mut rng = seeded(&[
            b"system",
            &game.to_le_bytes(),
            purpose.as_bytes(),
            &partition.to_le_bytes(),
        ]);
        id_beside_with(near, self.partitions, &mut rng)
    }

    /// The transfer `leg` of the request `key` of `service`, beside `debit` (its partition
    /// applies it, so no claim of the id elsewhere is needed).
    pub fn transfer(&self, service: &str, key: &str, leg: &str, debit: u128) -> u128 {
        let mut rng = seeded(&[
            b"transfer",
            service.as_bytes(),
            key.as_bytes(),
            leg.as_bytes(),
        ]);
        id_beside_with(debit, self.partitions, &mut rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_stay_beside_the_wallet() {
        for partitions in [1, 2, 4, 7] {
            let ids = Ids { partitions };
            let wallet = ids.wallet(1, "alice");
            assert_eq!(wallet, ids.wallet(1, "alice"));
            assert_ne!(wallet, ids.wallet(2, "alice"));
            assert_ne!(wallet, ids.wallet(1, "bob"));
            let p = partition_of(wallet, partitions);
            for id in [
                ids.beside_wallet(1, "alice", "points"),
                ids.system(1, "issuer", wallet),
                ids.transfer("svc", "key-1", "charge", wallet),
            ] {
                assert_eq!(partition_of(id, partitions), p);
            }
            assert_eq!(
                ids.transfer("svc", "key-1", "charge", wallet),
                ids.transfer("svc", "key-1", "charge", wallet)
            );
            assert_ne!(
                ids.transfer("svc", "key-1", "charge", wallet),
                ids.transfer("other", "key-1", "charge", wallet)
            );
            // One issuer per partition, the same for every player there.
            let bob = ids.wallet(1, "bob");
            if partition_of(bob, partitions) == p {
                assert_eq!(
                    ids.system(1, "issuer", bob),
                    ids.system(1, "issuer", wallet)
                );
            }
        }
    }
}
