//! Little-endian integers read from byte slices of exactly their width: the on-disk formats'
//! decoders check bounds first, then read fields with these.

/// The bytes of `bytes` as an array. Panics if the length is not `N` (a decoder bug).
pub(crate) fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    out
}

pub(crate) fn u16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes(array(bytes))
}

pub(crate) fn u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(array(bytes))
}

pub(crate) fn u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(array(bytes))
}

pub(crate) fn u128(bytes: &[u8]) -> u128 {
    u128::from_le_bytes(array(bytes))
}
