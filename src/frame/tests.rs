use super::*;
use crate::proto::{DecideRequest, Decision};

const MAX: usize = DEFAULT_MAX_FRAME_BYTES;

fn request() -> DecideRequest {
    DecideRequest {
        request_id: "r-1".into(),
        prompt: "Summarize this thread".into(),
        ..Default::default()
    }
}

#[test]
fn request_round_trips() {
    let mut buffer = BytesMut::new();
    encode_message(&mut buffer, Kind::Request, 7, &request(), MAX).unwrap();
    let frame = decode(&mut buffer, MAX).unwrap().unwrap();
    assert_eq!(frame.kind, Kind::Request);
    assert_eq!(frame.id, 7);
    assert_eq!(
        <DecideRequest as prost::Message>::decode(frame.payload).unwrap(),
        request()
    );
    assert!(buffer.is_empty());
}

#[test]
fn partial_frame_waits_for_more() {
    let mut whole = BytesMut::new();
    encode_message(&mut whole, Kind::Response, 1, &Decision::default(), MAX).unwrap();
    encode_error(&mut whole, 2, Code::InvalidArgument, "bad");
    let bytes = whole.freeze();
    let mut buffer = BytesMut::new();
    let mut frames = Vec::new();
    for byte in bytes.iter() {
        buffer.put_u8(*byte);
        while let Some(frame) = decode(&mut buffer, MAX).unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].kind, Kind::Response);
    assert_eq!(frames[1].id, 2);
    assert_eq!(
        decode_error(&frames[1]).unwrap(),
        (Code::InvalidArgument, "bad".to_owned())
    );
}

#[test]
fn short_length_is_rejected() {
    let mut buffer = BytesMut::from(&[0, 0, 0, 9][..]);
    let err = decode(&mut buffer, MAX).unwrap_err();
    assert!(matches!(err, FrameError::TooShort { length: 9 }));
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[test]
fn huge_length_is_rejected_before_payload() {
    let mut buffer = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    let err = decode(&mut buffer, MAX).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }));
    assert_eq!(err.code(), Code::ResourceExhausted);
}

#[test]
fn unknown_version_is_rejected_before_payload() {
    let mut buffer = BytesMut::from(&[0, 0, 0, 100, 2][..]);
    let err = decode(&mut buffer, MAX).unwrap_err();
    assert!(matches!(err, FrameError::UnsupportedVersion { version: 2 }));
    assert_eq!(err.code(), Code::Unimplemented);
}

#[test]
fn unknown_kind_is_rejected() {
    let mut buffer = BytesMut::new();
    buffer.put_u32(10);
    buffer.put_u8(VERSION);
    buffer.put_u8(9);
    buffer.put_u64(5);
    let err = decode(&mut buffer, MAX).unwrap_err();
    assert!(matches!(err, FrameError::InvalidKind { kind: 9, id: 5 }));
    assert_eq!(err.request_id(), 5);
}

#[test]
fn oversized_message_is_not_encoded() {
    let mut buffer = BytesMut::new();
    let err = encode_message(&mut buffer, Kind::Request, 1, &request(), 20).unwrap_err();
    assert!(matches!(err, FrameError::TooLarge { .. }));
    assert!(buffer.is_empty());
}

#[test]
fn missing_bytes_counts_rest_of_frame() {
    let mut buffer = BytesMut::new();
    buffer.put_u32(100);
    assert_eq!(missing_bytes(&buffer), 100);
    buffer.put_bytes(0, 60);
    assert_eq!(missing_bytes(&buffer), 40);
}

#[test]
fn short_error_payload_is_rejected() {
    let frame = Frame {
        kind: Kind::Error,
        id: 3,
        payload: Bytes::from_static(&[0, 0]),
    };
    assert!(decode_error(&frame).is_err());
}
