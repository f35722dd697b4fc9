//! The frame layer against truncation, corruption and hostile headers.
//!
//! A small valid frame is cut at every length (the decoder must ask for more bytes, never
//! fail or panic, and must produce the frame once it is whole) and corrupted at every byte
//! position (each position must be caught, by the check that owns it: magic, version, header
//! checksum or body checksum). Hand-built headers then announce a huge body, a newer version,
//! a foreign magic and reserved flags; each must be rejected with only the 32 header bytes
//! buffered, before any body byte is awaited. Finally several pipelined frames split at
//! arbitrary points must come out in order, with their request ids intact.

use bytes::{BufMut, BytesMut};
use tally_client::wire::messages::{CreateLedgersRequest, PingRequest};
use tally_client::wire::*;

fn sample_frame() -> BytesMut {
    let request = CreateLedgersRequest::new(&[
        NewLedger {
            id: LedgerId(1),
            scale: 2,
            code: 3,
        },
        NewLedger {
            id: LedgerId(4),
            scale: 0,
            code: 5,
        },
    ]);
    let mut buf = BytesMut::new();
    encode_body(0x0102_0304_0506_0708, &request, &mut buf).expect("encode the sample");
    assert!(buf.len() > HEADER_SIZE + 4, "the body must not be trivial");
    buf
}

/// A header with the given fields and a correct header checksum (unless told otherwise).
fn header(version: u16, op: u16, body_size: u32, flags: u32) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_slice(&MAGIC);
    buf.put_u16_le(version);
    buf.put_u16_le(op);
    buf.put_u64_le(42);
    buf.put_u32_le(body_size);
    buf.put_u32_le(0);
    buf.put_u32_le(flags);
    let checksum = crc32fast::hash(&buf[..28]);
    buf.put_u32_le(checksum);
    assert_eq!(buf.len(), HEADER_SIZE);
    buf
}

#[test]
fn header_layout_is_as_documented() {
    let frame = sample_frame();
    assert_eq!(&frame[0..4], b"TLY\x01");
    assert_eq!(&frame[4..6], &1u16.to_le_bytes());
    assert_eq!(&frame[6..8], &3u16.to_le_bytes(), "CreateLedgers is 3");
    assert_eq!(&frame[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
    let body_size = (frame.len() - HEADER_SIZE) as u32;
    assert_eq!(&frame[16..20], &body_size.to_le_bytes());
    assert_eq!(&frame[20..24], &crc32fast::hash(&frame[32..]).to_le_bytes());
    assert_eq!(&frame[24..28], &[0; 4]);
    assert_eq!(&frame[28..32], &crc32fast::hash(&frame[..28]).to_le_bytes());
}

#[test]
fn every_prefix_needs_more_bytes() {
    let frame = sample_frame();
    for len in 0..frame.len() {
        let mut buf = BytesMut::from(&frame[..len]);
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.decode(&mut buf), Ok(None), "prefix of {len} bytes");
        assert_eq!(buf.len(), len, "a prefix must not be consumed");
        // The rest arrives: the same decoder now yields the frame.
        buf.extend_from_slice(&frame[len..]);
        let decoded = decoder.decode(&mut buf).unwrap().expect("whole frame");
        assert_eq!(decoded.op, Operation::CreateLedgers);
        assert!(buf.is_empty());
        assert!(matches!(
            decode_frame(&frame[..len]),
            Err(FrameError::Truncated { .. })
        ));
    }
}

#[test]
fn every_corrupted_byte_is_detected() {
    let frame = sample_frame();
    for index in 0..frame.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = frame.clone();
            bad[index] ^= flip;
            let result = FrameDecoder::new().decode(&mut bad);
            let ok = match index {
                0..=3 => matches!(result, Err(FrameError::BadMagic { .. })),
                4..=5 => matches!(result, Err(FrameError::UnsupportedVersion { .. })),
                6..=31 => matches!(result, Err(FrameError::HeaderChecksum { .. })),
                _ => matches!(result, Err(FrameError::BodyChecksum { .. })),
            };
            assert!(ok, "byte {index} ^ {flip:#04x}: {result:?}");
            let mut bad = frame.clone();
            bad[index] ^= flip;
            assert!(decode_frame(&bad).is_err(), "byte {index} ^ {flip:#04x}");
        }
    }
}

#[test]
fn huge_body_is_rejected_from_the_header_alone() {
    for body_size in [FRAME_BODY_SIZE_MAX as u32 + 1, u32::MAX] {
        let mut buf = header(PROTOCOL_VERSION, 2, body_size, 0);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::BodyTooLarge {
                len: u64::from(body_size),
                max: FRAME_BODY_SIZE_MAX
            })
        );
        assert!(buf.capacity() < 1024, "nothing reserved for the body");
    }
    // The maximum itself is accepted: the decoder waits for the body.
    let mut buf = header(PROTOCOL_VERSION, 2, FRAME_BODY_SIZE_MAX as u32, 0);
    assert_eq!(FrameDecoder::new().decode(&mut buf), Ok(None));
}

#[test]
fn wrong_version_magic_flags_and_operation_are_rejected() {
    let mut buf = header(2, 2, 0, 0);
    assert_eq!(
        FrameDecoder::new().decode(&mut buf),
        Err(FrameError::UnsupportedVersion { got: 2 })
    );
    assert_eq!(
        FrameError::UnsupportedVersion { got: 2 }.error_code(),
        ErrorCode::UnsupportedVersion
    );
    let mut buf = header(0, 2, 0, 0);
    assert_eq!(
        FrameDecoder::new().decode(&mut buf),
        Err(FrameError::UnsupportedVersion { got: 0 })
    );

    let mut buf = header(PROTOCOL_VERSION, 2, 0, 0);
    buf[3] = b'2';
    assert_eq!(
        FrameDecoder::new().decode(&mut buf),
        Err(FrameError::BadMagic { got: *b"TLY2" })
    );

    for flags in [1u32, 1 << 31] {
        let mut buf = header(PROTOCOL_VERSION, 2, 0, flags);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::Reserved { flags })
        );
    }

    for op in [0u16, 12, 0x7fff, 0x8000, 0x800c, 0xfffe] {
        let mut buf = header(PROTOCOL_VERSION, op, 0, 0);
        assert_eq!(
            FrameDecoder::new().decode(&mut buf),
            Err(FrameError::UnknownOperation { got: op })
        );
        assert_eq!(
            FrameError::UnknownOperation { got: op }.error_code(),
            ErrorCode::Malformed
        );
    }
}

#[test]
fn foreign_traffic_fails_at_four_bytes() {
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
    assert_eq!(
        FrameDecoder::new().decode(&mut buf),
        Err(FrameError::BadMagic { got: *b"GET " })
    );
}

#[test]
fn decoder_is_poisoned_after_an_error() {
    let mut decoder = FrameDecoder::new();
    let mut bad = header(PROTOCOL_VERSION, 0, 0, 0);
    assert!(decoder.decode(&mut bad).is_err());
    let mut good = sample_frame();
    assert_eq!(decoder.decode(&mut good), Err(FrameError::Poisoned));
}

#[test]
fn pipelined_frames_come_out_in_order_whatever_the_split() {
    let mut stream = BytesMut::new();
    for request_id in 0..20u64 {
        if request_id % 2 == 0 {
            encode_body(request_id, &PingRequest {}, &mut stream).unwrap();
        } else {
            let request = CreateLedgersRequest::new(&[NewLedger {
                id: LedgerId(request_id as u32),
                scale: 0,
                code: 0,
            }]);
            encode_body(request_id, &request, &mut stream).unwrap();
        }
    }
    for chunk_size in [1usize, 7, 31, 32, 33, 100, stream.len()] {
        let mut decoder = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut ids = Vec::new();
        for chunk in stream.chunks(chunk_size) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                let expected = if frame.request_id % 2 == 0 {
                    Operation::Ping
                } else {
                    Operation::CreateLedgers
                };
                assert_eq!(frame.op, expected);
                ids.push(frame.request_id);
            }
        }
        assert_eq!(ids, (0..20).collect::<Vec<_>>(), "chunks of {chunk_size}");
        assert!(buf.is_empty());
    }
}

#[test]
fn decode_frame_reports_the_size_consumed() {
    let mut two = sample_frame();
    let first_len = two.len();
    encode_body(9, &PingRequest {}, &mut two).unwrap();
    let (frame, used) = decode_frame(&two).unwrap();
    assert_eq!(used, first_len);
    assert_eq!(frame.op, Operation::CreateLedgers);
    let (frame, used) = decode_frame(&two[used..]).unwrap();
    assert_eq!(
        (frame.op, frame.request_id, used),
        (Operation::Ping, 9, HEADER_SIZE)
    );
}

#[test]
fn oversized_body_is_refused_by_the_encoder() {
    let request = messages::LookupAccountsRequest {
        ids: vec![vec![0u8; FRAME_BODY_SIZE_MAX].into()],
    };
    let mut buf = BytesMut::new();
    assert!(matches!(
        encode_frame(Operation::LookupAccounts, 1, &request, &mut buf),
        Err(FrameError::BodyTooLarge { .. })
    ));
    assert!(buf.is_empty(), "nothing written on failure");
}
