//! Tally client.
//!
//! For now this crate holds the binary wire protocol ([`wire`]): versioned, checksummed frames
//! with prost-encoded bodies, and the client's own Rust types for ledgers, accounts, transfers
//! and their result codes. The async connection, batching and retry layers will sit on top of
//! it. The crate depends on no other workspace crate (STYLE.md), so the wire format versions
//! apart from the engine's disk format; the server converts between the two.

pub mod wire;
