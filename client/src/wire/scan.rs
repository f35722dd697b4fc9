//! A flat scan of a protobuf message's top-level fields, to count repeated elements before
//! prost decodes (and allocates for) them.
//!
//! prost decodes a repeated message field by pushing one default struct per occurrence. An
//! empty element costs two bytes on the wire but a few hundred bytes in memory, so a body at
//! the size maximum could otherwise make the decoder allocate gigabytes. This scan walks the
//! top level only (it never descends into nested messages, so it cannot recurse on peer
//! input), counts the occurrences of one field, and stops with an error as soon as the count
//! passes the maximum. Elements of a packed scalar run are counted one by one: each varint
//! ends with a byte whose high bit is clear.
//!
//! The scan accepts everything prost accepts at the top level except groups (wire types 3
//! and 4), which this protocol never uses and which prost would skip without our counting
//! them. Where the scan finds a structural error it reports it as malformed; prost would
//! reject the same bytes.

use super::frame::{FrameError, RepeatedLimit};

const WIRE_VARINT: u64 = 0;
const WIRE_FIXED64: u64 = 1;
const WIRE_LEN: u64 = 2;
const WIRE_FIXED32: u64 = 5;

/// Longest varint: ten bytes carry 64 bits.
const VARINT_SIZE_MAX: usize = 10;

/// Fails if the top-level field `limit.tag` of `body` has more than `limit.max` elements.
pub(crate) fn check_repeated(body: &[u8], limit: &RepeatedLimit) -> Result<(), FrameError> {
    let mut pos = 0usize;
    let mut count = 0usize;
    // Each iteration consumes at least one byte (the key), so the loop ends within
    // `body.len()` iterations.
    while pos < body.len() {
        let key = read_varint(body, &mut pos)?;
        let field = key >> 3;
        let wire_type = key & 7;
        let this_field = field == u64::from(limit.tag);
        match wire_type {
            WIRE_VARINT => {
                read_varint(body, &mut pos)?;
                if this_field {
                    count += 1;
                }
            }
            WIRE_FIXED64 => skip(body, &mut pos, 8)?,
            WIRE_FIXED32 => skip(body, &mut pos, 4)?,
            WIRE_LEN => {
                let len = read_varint(body, &mut pos)?;
                let len = usize::try_from(len).map_err(|_| malformed())?;
                let start = pos;
                skip(body, &mut pos, len)?;
                if this_field {
                    if limit.packed {
                        let run = body.get(start..pos).ok_or_else(malformed)?;
                        count += run.iter().filter(|byte| **byte & 0x80 == 0).count();
                    } else {
                        count += 1;
                    }
                }
            }
            _ => return Err(malformed()),
        }
        if count > limit.max {
            return Err(FrameError::TooMany {
                what: limit.what,
                count,
                max: limit.max,
            });
        }
    }
    Ok(())
}

fn malformed() -> FrameError {
    FrameError::InvalidField {
        what: "body",
        reason: "malformed protobuf structure",
    }
}

fn skip(body: &[u8], pos: &mut usize, len: usize) -> Result<(), FrameError> {
    let end = pos.checked_add(len).ok_or_else(malformed)?;
    if end > body.len() {
        return Err(malformed());
    }
    *pos = end;
    Ok(())
}

fn read_varint(body: &[u8], pos: &mut usize) -> Result<u64, FrameError> {
    let mut value = 0u64;
    for index in 0..VARINT_SIZE_MAX {
        let byte = *body.get(*pos).ok_or_else(malformed)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RepeatedLimit = RepeatedLimit {
        tag: 1,
        max: 3,
        packed: false,
        what: "things",
    };

    #[test]
    fn counts_messages_and_packed_runs() {
        // Field 1, length-delimited, empty: four times.
        let body = [0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x12, 0x00];
        assert_eq!(check_repeated(&body, &LIMIT), Ok(()));
        let body = [0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00];
        assert!(matches!(
            check_repeated(&body, &LIMIT),
            Err(FrameError::TooMany { count: 4, .. })
        ));
        // A packed run of four one-byte varints and one two-byte varint.
        let packed = RepeatedLimit {
            packed: true,
            max: 4,
            ..LIMIT
        };
        let body = [0x0a, 0x06, 1, 2, 3, 0x80, 0x01, 4];
        assert!(matches!(
            check_repeated(&body, &packed),
            Err(FrameError::TooMany { count: 5, .. })
        ));
    }

    #[test]
    fn rejects_groups_and_overruns() {
        assert!(check_repeated(&[0x0b], &LIMIT).is_err());
        assert!(check_repeated(&[0x0a, 0x05, 0x00], &LIMIT).is_err());
        assert!(check_repeated(&[0x08, 0xff], &LIMIT).is_err());
        assert!(check_repeated(&[0x08; 1], &LIMIT).is_err());
    }
}
