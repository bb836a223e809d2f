//! Feeds arbitrary bytes to the frame decoder, in arbitrary read sizes, the
//! way a connection receives them. The decoder must never panic, and every
//! frame it returns must fit in the bytes it consumed.
//!
//! Run with `RUSTC_BOOTSTRAP=1 cargo fuzz run frame_decode` in this folder.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use triage::frame::{self, Kind};
use triage::proto::{DecideRequest, Decision};

/// A small maximum, so that the length check is reached often.
const MAX_FRAME_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut buffer = BytesMut::new();
    for piece in bytes.chunks(chunk) {
        buffer.extend_from_slice(piece);
        loop {
            match frame::decode(&mut buffer, MAX_FRAME_BYTES) {
                Ok(Some(frame)) => {
                    assert!(frame.payload.len() + frame::HEADER_AFTER_LENGTH <= MAX_FRAME_BYTES);
                    match frame.kind {
                        Kind::Request => drop(DecideRequest::decode(frame.payload)),
                        Kind::Response => drop(Decision::decode(frame.payload)),
                        Kind::Error => drop(frame::decode_error(&frame)),
                    }
                }
                Ok(None) => break,
                // A connection closes on the first error.
                Err(_) => return,
            }
        }
    }
});
