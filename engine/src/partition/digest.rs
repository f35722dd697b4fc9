//! The digest's hashes of ledgers, accounts and transfer records.

use super::*;

pub(super) fn hash_ledger(ledger: &Ledger) -> u128 {
    let mut bytes = [0u8; 8];
    bytes[0..4].copy_from_slice(&ledger.id.0.to_le_bytes());
    bytes[4] = ledger.scale;
    bytes[5..7].copy_from_slice(&ledger.code.to_le_bytes());
    bytes[7] = b'L';
    xxh3_128(&bytes)
}

/// The digest part of an account's fields fixed at creation.
pub(super) fn hash_account_fields(a: &Account) -> u128 {
    let mut bytes = [0u8; 96];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'A');
    w.u128(a.id.0);
    w.u32(a.ledger.0);
    w.u16(a.code);
    w.u16(a.flags.0);
    w.u8(u8::from(a.limit.is_some()));
    w.u128(a.limit.unwrap_or(0));
    w.u128(a.user_data_128);
    w.u64(a.user_data_64);
    w.u32(a.user_data_32);
    w.u64(a.timestamp.0);
    let len = w.pos;
    xxh3_128(&bytes[..len])
}

/// The digest part of an account's balances (the only fields that change).
pub(super) fn hash_account_balances(a: &Account) -> u128 {
    let mut bytes = [0u8; 81];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'B');
    w.u128(a.id.0);
    w.balances(&a.balances);
    assert_eq!(w.pos, bytes.len());
    xxh3_128(&bytes)
}

pub(super) fn hash_transfer(id: TransferId, r: &TransferRecord) -> u128 {
    let mut bytes = [0u8; 352];
    let mut w = Writer::new(&mut bytes);
    w.u8(b'T');
    w.u128(id.0);
    w.u128(r.fingerprint);
    w.u8(r.kind as u8);
    w.u128(r.debit_account.0);
    w.u128(r.credit_account.0);
    w.u32(r.ledger.0);
    w.u128(r.amount);
    w.u128(r.reference.0);
    w.u32(r.timeout_s);
    w.u32(r.outcome.result.code());
    w.u64(r.outcome.timestamp.0);
    w.balances(&r.outcome.debit_balances);
    w.balances(&r.outcome.credit_balances);
    w.u8(r.hold as u8);
    w.u128(r.refunded);
    let d = &r.details;
    w.u16(d.code);
    w.u16(d.flags.0);
    w.u128(d.user_data_128);
    w.u64(d.user_data_64);
    w.u32(d.user_data_32);
    w.u8(d.memo.len);
    w.put(d.memo.as_bytes());
    let len = w.pos;
    xxh3_128(&bytes[..len])
}

pub(super) struct Writer<'a> {
    pub(super) bytes: &'a mut [u8],
    pub(super) pos: usize,
}

impl<'a> Writer<'a> {
    pub(super) fn new(bytes: &'a mut [u8]) -> Self {
        Writer { bytes, pos: 0 }
    }
    pub(super) fn put(&mut self, value: &[u8]) {
        self.bytes[self.pos..self.pos + value.len()].copy_from_slice(value);
        self.pos += value.len();
    }
    pub(super) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    pub(super) fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    pub(super) fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    pub(super) fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
    pub(super) fn u128(&mut self, v: u128) {
        self.put(&v.to_le_bytes());
    }
    pub(super) fn balances(&mut self, b: &Balances) {
        self.u128(b.debits_pending);
        self.u128(b.debits_posted);
        self.u128(b.credits_pending);
        self.u128(b.credits_posted);
    }
}
