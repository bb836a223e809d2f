//! The frame protocol codec, shared by the frame server and the client.
//!
//! A frame is a 14-byte header and a payload, with every integer big-endian:
//!
//! ```text
//! offset  size  field
//!      0     4  length: bytes after this field (10 + payload length)
//!      4     1  version: 1
//!      5     1  kind: 1 request, 2 response, 3 error
//!      6     8  request id, chosen by the client and echoed by the server
//!     14     …  payload: a protobuf DecideRequest or Decision, or an error
//! ```
//!
//! An error payload is a 4-byte gRPC status code followed by a UTF-8
//! message. docs/frame-protocol.md is the full specification.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tonic::Code;

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes of the length field.
pub const LENGTH_BYTES: usize = 4;
/// Bytes of header after the length field: version, kind and request id.
pub const HEADER_AFTER_LENGTH: usize = 10;
/// Bytes of the whole header.
pub const HEADER_BYTES: usize = LENGTH_BYTES + HEADER_AFTER_LENGTH;
/// Default maximum of the length field. It leaves room for a 1 MiB prompt
/// (the server's default prompt limit) plus messages and labels.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The payload type of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A protobuf `DecideRequest`, client to server.
    Request = 1,
    /// A protobuf `Decision`, server to client.
    Response = 2,
    /// A gRPC status code and message, server to client.
    Error = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Request),
            2 => Some(Kind::Response),
            3 => Some(Kind::Error),
            _ => None,
        }
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub id: u64,
    pub payload: Bytes,
}

/// A frame that breaks the protocol. The connection that sent it is closed
/// after an error frame with [`FrameError::code`].
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("invalid frame length {length}: the minimum is {HEADER_AFTER_LENGTH}")]
    TooShort { length: u32 },
    #[error("frame length {length} exceeds the maximum of {max} bytes")]
    TooLarge { length: usize, max: usize },
    #[error("unsupported frame version {version}: this peer speaks version {VERSION}")]
    UnsupportedVersion { version: u8 },
    #[error("invalid frame kind {kind} in frame {id}")]
    InvalidKind { kind: u8, id: u64 },
    #[error("invalid protobuf payload in frame {id}: {source}")]
    InvalidPayload { id: u64, source: prost::DecodeError },
    #[error("invalid error payload in frame {id}: {reason}")]
    InvalidErrorPayload { id: u64, reason: &'static str },
}

impl FrameError {
    /// Returns the gRPC status code sent in the error frame.
    pub fn code(&self) -> Code {
        match self {
            FrameError::TooLarge { .. } => Code::ResourceExhausted,
            FrameError::UnsupportedVersion { .. } => Code::Unimplemented,
            FrameError::TooShort { .. }
            | FrameError::InvalidKind { .. }
            | FrameError::InvalidPayload { .. }
            | FrameError::InvalidErrorPayload { .. } => Code::InvalidArgument,
        }
    }

    /// Returns a fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FrameError::TooShort { .. } => "too_short",
            FrameError::TooLarge { .. } => "too_large",
            FrameError::UnsupportedVersion { .. } => "unsupported_version",
            FrameError::InvalidKind { .. } => "invalid_kind",
            FrameError::InvalidPayload { .. } => "invalid_payload",
            FrameError::InvalidErrorPayload { .. } => "invalid_error_payload",
        }
    }

    /// Returns the request id of the offending frame, or 0 when the header was not
    /// read far enough to know it.
    pub fn request_id(&self) -> u64 {
        match self {
            FrameError::InvalidKind { id, .. }
            | FrameError::InvalidPayload { id, .. }
            | FrameError::InvalidErrorPayload { id, .. } => *id,
            _ => 0,
        }
    }
}

/// Removes one frame from the front of `buffer`. Returns `Ok(None)` when
/// the buffer does not yet hold a whole frame. A bad length or version is
/// reported as soon as its bytes arrive, before the payload is awaited.
pub fn decode(buffer: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<Frame>, FrameError> {
    let Some(length) = peek_length(buffer, max_frame_bytes)? else {
        return Ok(None);
    };
    if let Some(&version) = buffer.get(LENGTH_BYTES)
        && version != VERSION
    {
        return Err(FrameError::UnsupportedVersion { version });
    }
    if buffer.len() < LENGTH_BYTES + length {
        return Ok(None);
    }
    buffer.advance(LENGTH_BYTES + 1);
    let kind = buffer.get_u8();
    let id = buffer.get_u64();
    let payload = buffer.split_to(length - HEADER_AFTER_LENGTH).freeze();
    let kind = Kind::from_byte(kind).ok_or(FrameError::InvalidKind { kind, id })?;
    Ok(Some(Frame { kind, id, payload }))
}

/// Bytes still missing before `buffer` contains its first whole frame, or
/// 0 when it contains one or its header is still incomplete. Readers use it to
/// reserve room for a large frame in one step.
pub fn missing_bytes(buffer: &BytesMut) -> usize {
    match buffer.first_chunk::<LENGTH_BYTES>() {
        Some(prefix) => {
            let whole = LENGTH_BYTES + u32::from_be_bytes(*prefix) as usize;
            whole.saturating_sub(buffer.len())
        }
        None => 0,
    }
}

fn peek_length(buffer: &BytesMut, max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buffer.first_chunk::<LENGTH_BYTES>() else {
        return Ok(None);
    };
    let length = u32::from_be_bytes(*prefix);
    if (length as usize) < HEADER_AFTER_LENGTH {
        return Err(FrameError::TooShort { length });
    }
    if length as usize > max_frame_bytes {
        return Err(FrameError::TooLarge {
            length: length as usize,
            max: max_frame_bytes,
        });
    }
    Ok(Some(length as usize))
}

/// Appends a frame carrying `message` to `buffer`. On a `TooLarge` error
/// the buffer is left as it was.
pub fn encode_message(
    buffer: &mut BytesMut,
    kind: Kind,
    id: u64,
    message: &impl prost::Message,
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    begin_frame(buffer, kind, id, message.encoded_len(), max_frame_bytes)?;
    // The buffer has room reserved for the whole message, so encoding
    // cannot fail for lack of space.
    message.encode_raw(buffer);
    Ok(())
}

/// Appends a frame whose payload of `payload_len` bytes `write` puts into
/// the buffer, such as a message encoded without building it first.
/// `write` must put exactly `payload_len` bytes.
pub fn encode_with(
    buffer: &mut BytesMut,
    kind: Kind,
    id: u64,
    payload_len: usize,
    write: impl FnOnce(&mut BytesMut),
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    begin_frame(buffer, kind, id, payload_len, max_frame_bytes)?;
    let start = buffer.len();
    write(buffer);
    debug_assert_eq!(buffer.len() - start, payload_len, "frame payload length");
    Ok(())
}

/// Appends a frame whose payload is already encoded, such as a request
/// encoded once and sent many times.
pub fn encode_payload(
    buffer: &mut BytesMut,
    kind: Kind,
    id: u64,
    payload: &[u8],
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    begin_frame(buffer, kind, id, payload.len(), max_frame_bytes)?;
    buffer.put_slice(payload);
    Ok(())
}

/// Checks that a frame with a payload of `payload_len` bytes fits in
/// `max_frame_bytes`, reserves room for all of it and writes its header.
/// On a `TooLarge` error the buffer is left as it was.
fn begin_frame(
    buffer: &mut BytesMut,
    kind: Kind,
    id: u64,
    payload_len: usize,
    max_frame_bytes: usize,
) -> Result<(), FrameError> {
    let length = HEADER_AFTER_LENGTH + payload_len;
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge {
            length,
            max: max_frame_bytes,
        });
    }
    buffer.reserve(LENGTH_BYTES + length);
    put_header(buffer, length, kind, id);
    Ok(())
}

/// Appends an error frame for request `id` with a gRPC status `code`.
pub fn encode_error(buffer: &mut BytesMut, id: u64, code: Code, message: &str) {
    let length = HEADER_AFTER_LENGTH + 4 + message.len();
    buffer.reserve(LENGTH_BYTES + length);
    put_header(buffer, length, Kind::Error, id);
    buffer.put_u32(code as u32);
    buffer.put_slice(message.as_bytes());
}

fn put_header(buffer: &mut BytesMut, length: usize, kind: Kind, id: u64) {
    // Callers check `length` against the maximum frame size, which fits u32.
    buffer.put_u32(length as u32);
    buffer.put_u8(VERSION);
    buffer.put_u8(kind as u8);
    buffer.put_u64(id);
}

/// Reads the status code and message of an error frame's payload.
pub fn decode_error(frame: &Frame) -> Result<(Code, String), FrameError> {
    let invalid = |reason| FrameError::InvalidErrorPayload {
        id: frame.id,
        reason,
    };
    let Some((code, text)) = frame.payload.split_first_chunk::<4>() else {
        return Err(invalid("shorter than its 4-byte status code"));
    };
    let code = i32::try_from(u32::from_be_bytes(*code))
        .map_err(|_| invalid("status code out of range"))?;
    let text = std::str::from_utf8(text).map_err(|_| invalid("message is not UTF-8"))?;
    Ok((Code::from_i32(code), text.to_owned()))
}

#[cfg(test)]
mod tests;
