//! State changes: every one goes through these, for the digest and the undo log.

use super::*;

impl Partition {
    pub(super) fn put_account(&mut self, account: Account) {
        let old = self.accounts.insert(account.id, account);
        match &old {
            Some(old) => {
                // Only balances change after creation; the fields fixed at creation keep
                // their part of the digest.
                debug_assert_eq!(hash_account_fields(old), hash_account_fields(&account));
                self.digest = self.digest.wrapping_sub(hash_account_balances(old));
            }
            None => self.digest = self.digest.wrapping_add(hash_account_fields(&account)),
        }
        self.digest = self.digest.wrapping_add(hash_account_balances(&account));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Account(account.id, old));
        }
    }

    /// Records a transfer whose id is known to be new (the caller looked it up), without
    /// looking it up again.
    pub(super) fn insert_transfer(&mut self, id: TransferId, mut record: TransferRecord) {
        record.id = id;
        debug_assert!(self.transfer(id).is_none(), "transfer {id} inserted twice");
        let slot = self.records.push(record);
        assert!(
            self.transfers.insert(id, slot).is_none(),
            "transfer {id} twice"
        );
        self.digest = self.digest.wrapping_add(hash_transfer(id, &record));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Transfer(id, None));
        }
    }

    /// Records a new transfer, or changes a recorded one. A record on disk can only change
    /// its refunded total, which goes to the overlay.
    pub(super) fn put_transfer(&mut self, id: TransferId, mut record: TransferRecord) {
        record.id = id;
        let old = match self.transfers.get(&id) {
            Some(&slot) => Some(std::mem::replace(self.records.get_mut(slot), record)),
            None => match self.spilled_transfer(id) {
                Some(old) => {
                    assert_eq!(
                        TransferRecord {
                            refunded: old.refunded,
                            ..record
                        },
                        old,
                        "a record on disk changed beyond its refunded total"
                    );
                    let previous = self.refunded_overlay.insert(id, record.refunded);
                    self.digest = self
                        .digest
                        .wrapping_sub(hash_transfer(id, &old))
                        .wrapping_add(hash_transfer(id, &record));
                    if let Some(undo) = &mut self.undo {
                        undo.push(Undo::Refunded(id, previous));
                    }
                    return;
                }
                None => {
                    let slot = self.records.push(record);
                    self.transfers.insert(id, slot);
                    None
                }
            },
        };
        if let Some(old) = &old {
            self.digest = self.digest.wrapping_sub(hash_transfer(id, old));
        }
        self.digest = self.digest.wrapping_add(hash_transfer(id, &record));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Transfer(id, old));
        }
    }

    pub(super) fn insert_expiry(&mut self, deadline: Timestamp, id: TransferId) {
        assert!(self.expiries.insert((deadline, id)));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::ExpiryInserted(deadline, id));
        }
    }

    pub(super) fn remove_expiry(&mut self, deadline: Timestamp, id: TransferId) {
        assert!(self.expiries.remove(&(deadline, id)));
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::ExpiryRemoved(deadline, id));
        }
    }
}
