//! Frames: the 32-byte header, the incremental decoder, and the encoder.
//!
//! The header layout (all little-endian, see `docs/protocol.md`):
//!
//! | offset | width | field                                   |
//! |-------:|------:|-----------------------------------------|
//! | 0      | 4     | magic [`MAGIC`]                         |
//! | 4      | 2     | protocol version                        |
//! | 6      | 2     | operation                               |
//! | 8      | 8     | request id                              |
//! | 16     | 4     | body size in bytes                      |
//! | 20     | 4     | CRC32 of the body                       |
//! | 24     | 4     | flags, reserved: must be zero           |
//! | 28     | 4     | CRC32 of header bytes 0..28             |
//!
//! Header checks run in a fixed order: magic, then version, then the header checksum, then the
//! reserved flags, the operation and the body size. Magic and version come first because
//! their position is frozen across versions: a peer speaking a newer version is told exactly
//! that, instead of "bad checksum". Everything after them is trusted only once the header
//! checksum matches, so a flipped bit in the size can never make us wait for (or reserve) a
//! body that was never sent.
//!
//! The decoder is poisoned by its first error: after a bad frame the stream position is lost,
//! so the only correct reaction is to answer with an error frame and close the connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::codes::ErrorCode;
use super::scan;
use super::{FRAME_BODY_SIZE_MAX, HEADER_SIZE, MAGIC, PROTOCOL_VERSION};

const _: () = assert!(HEADER_SIZE == 32);
const _: () = assert!(FRAME_BODY_SIZE_MAX <= u32::MAX as usize);

/// Bit set on the operation number of every response.
const RESPONSE_BIT: u16 = 0x8000;

macro_rules! operations {
    ($( $(#[$rmeta:meta])* $request:ident / $(#[$smeta:meta])* $response:ident = $code:literal, )*) => {
        /// What a frame carries. Requests have numbers below `0x8000`; the response to request
        /// `n` is `0x8000 | n`; [`Operation::Error`] (`0xFFFF`) can answer any request.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Operation {
            $(
                $(#[$rmeta])*
                $request = $code,
                $(#[$smeta])*
                $response = RESPONSE_BIT | $code,
            )*
            /// An error answering any request (or the connection, with request id 0).
            Error = 0xFFFF,
        }

        impl Operation {
            /// Every operation, requests and responses, in number order of the requests.
            pub const ALL: &'static [Operation] =
                &[$(Operation::$request, Operation::$response,)* Operation::Error];

            /// The operation with this number, if any.
            pub fn from_u16(value: u16) -> Option<Operation> {
                match value {
                    $(
                        $code => Some(Operation::$request),
                        x if x == RESPONSE_BIT | $code => Some(Operation::$response),
                    )*
                    0xFFFF => Some(Operation::Error),
                    _ => None,
                }
            }

            /// The response operation answering this request, or `None` for a response.
            pub fn response(self) -> Option<Operation> {
                match self {
                    $(Operation::$request => Some(Operation::$response),)*
                    _ => None,
                }
            }

            /// The operation's name, as used in logs and documentation.
            pub fn name(self) -> &'static str {
                match self {
                    $(
                        Operation::$request => stringify!($request),
                        Operation::$response => stringify!($response),
                    )*
                    Operation::Error => "Error",
                }
            }
        }
    };
}

operations! {
    /// Handshake: the client's version; answered with cluster information.
    Hello / /// Cluster information: node id, partition count, leader per partition.
    HelloResponse = 1,
    /// Liveness check with an empty body.
    Ping / /// Answer to [`Operation::Ping`].
    PingResponse = 2,
    /// A batch of ledgers to create.
    CreateLedgers / /// One result code per ledger.
    CreateLedgersResponse = 3,
    /// A batch of accounts to create.
    CreateAccounts / /// One result code per account.
    CreateAccountsResponse = 4,
    /// A batch of transfers to create.
    CreateTransfers / /// One outcome (code, timestamp, balances) per transfer.
    CreateTransfersResponse = 5,
    /// A batch of account ids to look up.
    LookupAccounts / /// The accounts found.
    LookupAccountsResponse = 6,
    /// A batch of transfer ids to look up.
    LookupTransfers / /// The transfers found.
    LookupTransfersResponse = 7,
    /// One page of one account's history.
    AccountHistory / /// The page's entries and the cursor of the next page.
    AccountHistoryResponse = 8,
    /// One account's incoming and outgoing totals over a time window.
    AccountFlows / /// The totals.
    AccountFlowsResponse = 9,
    /// One account's hourly closing balances over a time window.
    BalanceSeries / /// The hourly points.
    BalanceSeriesResponse = 10,
    /// A stream of committed changes from a position, with filters.
    Subscribe / /// Changes, where the stream stands, and at last why it ended (many per request).
    SubscribeResponse = 11,
}

impl Operation {
    /// The operation's number on the wire.
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Whether a client sends this operation (as opposed to a server).
    pub fn is_request(self) -> bool {
        self.as_u16() & RESPONSE_BIT == 0
    }
}

/// Why a frame or its body could not be decoded (or encoded).
///
/// Errors from [`FrameDecoder`] (magic, version, checksums, reserved flags, operation, size)
/// mean the byte stream can no longer be trusted: the server answers with an error frame
/// ([`FrameError::error_code`], request id 0) and closes the connection. Errors from
/// [`Frame::decode_body`] and the typed conversions come from an intact frame: the server
/// answers that request with [`ErrorCode::Malformed`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The first four bytes are not [`MAGIC`]: this is not a Tally peer.
    #[error("bad magic {got:02x?}")]
    BadMagic {
        /// The four bytes received.
        got: [u8; 4],
    },
    /// The peer speaks a protocol version this crate does not.
    #[error("unsupported protocol version {got} (this side speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// The version in the header.
        got: u16,
    },
    /// The header's own CRC32 does not match its first 28 bytes.
    #[error("header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    HeaderChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// The body's CRC32 does not match the header's.
    #[error("body checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BodyChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes received.
        computed: u32,
    },
    /// The body is larger than [`FRAME_BODY_SIZE_MAX`].
    #[error("body of {len} bytes exceeds the maximum of {max}")]
    BodyTooLarge {
        /// The body size, from the header or of the message being encoded.
        len: u64,
        /// The maximum.
        max: usize,
    },
    /// The operation number is not one this crate knows.
    #[error("unknown operation {got:#06x}")]
    UnknownOperation {
        /// The number in the header.
        got: u16,
    },
    /// The input ended inside a frame (only from [`decode_frame`], which sees whole buffers;
    /// the incremental decoder waits for more bytes instead).
    #[error("frame truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// Reserved header flags are set.
    #[error("reserved header flags {flags:#010x} are set")]
    Reserved {
        /// The flags word.
        flags: u32,
    },
    /// The body is not a valid protobuf encoding of the expected message.
    #[error("malformed body: {0}")]
    Body(#[from] prost::DecodeError),
    /// A repeated field holds more elements than its maximum.
    #[error("{what}: {count} elements exceed the maximum of {max}")]
    TooMany {
        /// The field.
        what: &'static str,
        /// Elements counted so far (counting stops just past the maximum).
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// A bytes or string field is longer than its maximum.
    #[error("{what}: {size} bytes exceed the maximum of {max}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The maximum.
        max: usize,
    },
    /// A field holds a value its type cannot (a 7-byte id, a scale above 28, a code above
    /// `u16::MAX`).
    #[error("invalid {what}: {reason}")]
    InvalidField {
        /// The field.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The frame's operation is not the one the caller expected for this body type.
    #[error("expected a {expected:?} frame, got {got:?}")]
    WrongOperation {
        /// The operation of the body type asked for.
        expected: Operation,
        /// The frame's operation.
        got: Operation,
    },
    /// An earlier frame on this stream failed to decode; the stream position is lost.
    #[error("decoder poisoned by an earlier error")]
    Poisoned,
}

impl FrameError {
    /// The error code a server answers this error with: unsupported version, or malformed.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            FrameError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            _ => ErrorCode::Malformed,
        }
    }
}

/// A validated frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the body is.
    pub op: Operation,
    /// Chosen by the client; echoed by the response.
    pub request_id: u64,
    /// The body's size in bytes, at most [`FRAME_BODY_SIZE_MAX`].
    pub body_size: u32,
    /// CRC32 (crc32fast, IEEE) of the body.
    pub body_checksum: u32,
}

impl FrameHeader {
    /// Decodes and validates a header: magic, version, header checksum, reserved flags,
    /// operation, then body size. Never panics.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Result<FrameHeader, FrameError> {
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic { got: magic });
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion { got: version });
        }
        let stored = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
        let computed = crc32fast::hash(&bytes[..28]);
        if stored != computed {
            return Err(FrameError::HeaderChecksum { stored, computed });
        }
        let flags = u32::from_le_bytes([bytes[24], bytes[25], bytes[26], bytes[27]]);
        if flags != 0 {
            return Err(FrameError::Reserved { flags });
        }
        let op_number = u16::from_le_bytes([bytes[6], bytes[7]]);
        let op = Operation::from_u16(op_number)
            .ok_or(FrameError::UnknownOperation { got: op_number })?;
        let mut request_id = [0u8; 8];
        request_id.copy_from_slice(&bytes[8..16]);
        let body_size = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        if body_size as usize > FRAME_BODY_SIZE_MAX {
            return Err(FrameError::BodyTooLarge {
                len: u64::from(body_size),
                max: FRAME_BODY_SIZE_MAX,
            });
        }
        let body_checksum = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        Ok(FrameHeader {
            op,
            request_id: u64::from_le_bytes(request_id),
            body_size,
            body_checksum,
        })
    }

    /// The header's 32 bytes, with flags zero and the header checksum filled in.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        assert!(
            self.body_size as usize <= FRAME_BODY_SIZE_MAX,
            "body of {} bytes",
            self.body_size
        );
        let mut out = [0u8; HEADER_SIZE];
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out[6..8].copy_from_slice(&self.op.as_u16().to_le_bytes());
        out[8..16].copy_from_slice(&self.request_id.to_le_bytes());
        out[16..20].copy_from_slice(&self.body_size.to_le_bytes());
        out[20..24].copy_from_slice(&self.body_checksum.to_le_bytes());
        // Bytes 24..28 are the reserved flags: zero.
        let checksum = crc32fast::hash(&out[..28]);
        out[28..32].copy_from_slice(&checksum.to_le_bytes());
        out
    }
}

/// One decoded frame whose checksums have been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the body is.
    pub op: Operation,
    /// Chosen by the client; echoed by the response.
    pub request_id: u64,
    /// The prost-encoded body (a slice of the receive buffer, not a copy).
    pub body: Bytes,
}

impl Frame {
    /// Decodes the body as `T`, checking first that the frame's operation is `T`'s, then that
    /// its repeated fields are within their maximums (before prost allocates for them), and
    /// after decoding that every other bound holds ([`Body::validate`]).
    pub fn decode_body<T: Body>(&self) -> Result<T, FrameError> {
        if self.op != T::OPERATION {
            return Err(FrameError::WrongOperation {
                expected: T::OPERATION,
                got: self.op,
            });
        }
        decode_body_bytes(self.body.clone())
    }
}

/// Decodes `body` as `T` with the same checks as [`Frame::decode_body`] except the operation.
/// Exposed for fuzzing and for tests of single bodies.
pub fn decode_body_bytes<T: Body>(body: Bytes) -> Result<T, FrameError> {
    for limit in T::REPEATED_LIMITS {
        scan::check_repeated(&body, limit)?;
    }
    let message = T::decode(body)?;
    message.validate()?;
    Ok(message)
}

/// The maximum element count of one top-level repeated field of a body, checked by scanning
/// the encoded body before prost decodes it. Without this, a 16 MiB body of two-byte empty
/// elements would make prost build millions of structs, each far larger than two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepeatedLimit {
    /// The field's protobuf tag.
    pub tag: u32,
    /// Most elements allowed.
    pub max: usize,
    /// Whether the field is a packed scalar (each element of a packed run counts).
    pub packed: bool,
    /// The field's name, for errors.
    pub what: &'static str,
}

/// A message that travels as the body of one operation's frames.
pub trait Body: prost::Message + Default {
    /// The operation whose frames carry this body.
    const OPERATION: Operation;
    /// The top-level repeated fields and their maximums, checked before decoding.
    const REPEATED_LIMITS: &'static [RepeatedLimit];

    /// Checks the bounds prost cannot express: element counts again, byte sizes of memos and
    /// strings. Called after decoding and before encoding, so both sides enforce the same
    /// limits.
    fn validate(&self) -> Result<(), FrameError>;
}

/// Appends one frame (header and prost-encoded `body`) to `out`. Fails, writing nothing, if the
/// body would exceed [`FRAME_BODY_SIZE_MAX`]. Prefer [`encode_body`], which also picks the
/// operation from the body type and validates the body.
pub fn encode_frame(
    op: Operation,
    request_id: u64,
    body: &impl prost::Message,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    let body_size = body.encoded_len();
    if body_size > FRAME_BODY_SIZE_MAX {
        return Err(FrameError::BodyTooLarge {
            len: body_size as u64,
            max: FRAME_BODY_SIZE_MAX,
        });
    }
    out.reserve(HEADER_SIZE + body_size);
    let start = out.len();
    out.put_bytes(0, HEADER_SIZE);
    body.encode(out)
        .expect("BytesMut grows on demand, so encoding cannot run out of space");
    let body_start = start + HEADER_SIZE;
    assert_eq!(
        out.len() - body_start,
        body_size,
        "prost encoded_len mismatch"
    );
    let header = FrameHeader {
        op,
        request_id,
        body_size: u32::try_from(body_size).expect("checked against FRAME_BODY_SIZE_MAX"),
        body_checksum: crc32fast::hash(&out[body_start..]),
    };
    out[start..body_start].copy_from_slice(&header.encode());
    Ok(())
}

/// Appends one frame whose body is `body`, already encoded (a server relaying stored
/// messages). Fails, writing nothing, if the body exceeds [`FRAME_BODY_SIZE_MAX`].
pub fn encode_raw_frame(
    op: Operation,
    request_id: u64,
    body: &[u8],
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    if body.len() > FRAME_BODY_SIZE_MAX {
        return Err(FrameError::BodyTooLarge {
            len: body.len() as u64,
            max: FRAME_BODY_SIZE_MAX,
        });
    }
    let header = FrameHeader {
        op,
        request_id,
        body_size: u32::try_from(body.len()).expect("checked against FRAME_BODY_SIZE_MAX"),
        body_checksum: crc32fast::hash(body),
    };
    out.reserve(HEADER_SIZE + body.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(body);
    Ok(())
}

/// Validates `body`, then appends a frame carrying it (with `T`'s operation) to `out`.
pub fn encode_body<T: Body>(
    request_id: u64,
    body: &T,
    out: &mut BytesMut,
) -> Result<(), FrameError> {
    body.validate()?;
    encode_frame(T::OPERATION, request_id, body, out)
}

/// Decodes the one frame at the start of `bytes`, returning it and the number of bytes it
/// occupied. For whole buffers (fuzzing, tests); a stream uses [`FrameDecoder`].
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame, usize), FrameError> {
    check_magic_prefix(bytes)?;
    let raw: &[u8; HEADER_SIZE] = bytes
        .get(..HEADER_SIZE)
        .and_then(|slice| slice.try_into().ok())
        .ok_or(FrameError::Truncated {
            needed: HEADER_SIZE,
            available: bytes.len(),
        })?;
    let header = FrameHeader::decode(raw)?;
    let frame_size = HEADER_SIZE + header.body_size as usize;
    let body = bytes
        .get(HEADER_SIZE..frame_size)
        .ok_or(FrameError::Truncated {
            needed: frame_size,
            available: bytes.len(),
        })?;
    check_body(&header, body)?;
    let frame = Frame {
        op: header.op,
        request_id: header.request_id,
        body: Bytes::copy_from_slice(body),
    };
    Ok((frame, frame_size))
}

/// Rejects a stream whose first four bytes are not the magic as soon as they arrive, so that a
/// stray short message (an HTTP request, a health-check probe) fails at once instead of
/// waiting for 32 bytes that may never come.
fn check_magic_prefix(bytes: &[u8]) -> Result<(), FrameError> {
    if let Some(&[a, b, c, d]) = bytes.get(..4) {
        if [a, b, c, d] != MAGIC {
            return Err(FrameError::BadMagic { got: [a, b, c, d] });
        }
    }
    Ok(())
}

fn check_body(header: &FrameHeader, body: &[u8]) -> Result<(), FrameError> {
    let computed = crc32fast::hash(body);
    if computed != header.body_checksum {
        return Err(FrameError::BodyChecksum {
            stored: header.body_checksum,
            computed,
        });
    }
    Ok(())
}

/// Splits frames off a byte stream as they complete.
///
/// Feed it the connection's receive buffer after every read. It keeps the header of the frame
/// in progress, so each header is validated once, as soon as its 32 bytes are buffered; a
/// header announcing more than [`FRAME_BODY_SIZE_MAX`] is rejected before any body byte is
/// awaited. Once a header is accepted the decoder reserves room for the rest of its frame in
/// the buffer (at most the maximum), so the body arrives without reallocation.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// The validated header of the frame whose body is still arriving.
    header: Option<FrameHeader>,
    /// Set by the first error; every later call fails with [`FrameError::Poisoned`].
    poisoned: bool,
}

impl FrameDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Splits the next complete frame off the front of `buf`. Returns `Ok(None)` while more
    /// bytes are needed (leaving `buf` as it is), and an error,
    /// after which the decoder is poisoned, on the first invalid byte it can detect.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if self.poisoned {
            return Err(FrameError::Poisoned);
        }
        let result = self.decode_inner(buf);
        if result.is_err() {
            self.poisoned = true;
            self.header = None;
        }
        result
    }

    fn decode_inner(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let header = match self.header {
            Some(header) => header,
            None => {
                check_magic_prefix(buf)?;
                let Some(raw) = buf
                    .get(..HEADER_SIZE)
                    .and_then(|slice| slice.try_into().ok())
                else {
                    return Ok(None);
                };
                let header = FrameHeader::decode(raw)?;
                self.header = Some(header);
                header
            }
        };
        let frame_size = HEADER_SIZE + header.body_size as usize;
        if buf.len() < frame_size {
            // Nothing reserved for the announced body: the caller's buffer grows as its bytes
            // arrive, so a header alone never makes a reader hold the body's size.
            return Ok(None);
        }
        self.header = None;
        let mut frame = buf.split_to(frame_size);
        frame.advance(HEADER_SIZE);
        let body = frame.freeze();
        check_body(&header, &body)?;
        Ok(Some(Frame {
            op: header.op,
            request_id: header.request_id,
            body,
        }))
    }
}
