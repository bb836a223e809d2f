//! Repairs the HTTP/2 `:authority` header that gRPC clients send over Unix
//! sockets.
//!
//! grpcurl (`-unix`) and grpcio (`unix:` targets) put the socket path in
//! `:authority`. The h2 server under tonic rejects a path there as a
//! malformed authority and resets the stream. [`AuthorityFix`] wraps a
//! server-side connection and reads the client's first header block. When
//! its `:authority` is valid (a tonic client with an `http://localhost`
//! endpoint sends `localhost`), the rest of the connection passes through
//! untouched. Otherwise the wrapper decodes every header block of the
//! connection, replaces an `:authority` that is not a valid URI authority
//! with `localhost`, and encodes the block again. All other frames and the
//! whole write direction pass through unchanged.
//!
//! NOTE: a client that sends a valid authority first and a socket path in a
//! later request of the same connection (a per-call authority override)
//! gets that request reset by h2, as without this wrapper.
//!
//! A re-encoded block uses only literals without indexing, so the server's
//! HPACK decoder never gains dynamic table entries, while the decoder here
//! follows the client's dynamic table as the server's would have.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Largest frame payload this module emits: the HTTP/2 minimum of
/// SETTINGS_MAX_FRAME_SIZE, which every peer accepts.
const MAX_EMITTED_PAYLOAD: usize = 16_384;
/// Largest header block accepted across HEADERS and CONTINUATION frames.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Largest frame accepted from the client; h2's default
/// SETTINGS_MAX_FRAME_SIZE is the HTTP/2 minimum, 16,384 bytes.
const MAX_FRAME_PAYLOAD: usize = 16_384;
/// HPACK dynamic table size that h2 advertises by default (4,096 bytes).
const HPACK_TABLE_SIZE: usize = 4096;
const REPLACEMENT_AUTHORITY: &[u8] = b"localhost";
/// Free space ensured in the input buffer before each read.
const READ_CHUNK: usize = 8 * 1024;

enum Stage {
    Preface,
    /// Frames up to the end of the first header block, which selects
    /// [`Stage::Rewrite`] or [`Stage::Passthrough`].
    FirstBlock,
    /// Decoding and encoding again of every header block.
    Rewrite,
    /// Bytes passing through unchanged: the first header block had a valid
    /// authority, or the connection is not HTTP/2 with prior knowledge, or
    /// this module cannot follow it, so the server decides.
    Passthrough,
}

/// A header block split over HEADERS and CONTINUATION frames.
struct PendingBlock {
    stream_id: u32,
    end_stream: bool,
    block: Vec<u8>,
    /// The block's frames as the client sent them. Only the first block
    /// keeps them, because it passes on unchanged when its authority is valid.
    frames: BytesMut,
}

pub struct AuthorityFix<S> {
    inner: S,
    input: BytesMut,
    output: BytesMut,
    stage: Stage,
    decoder: loona_hpack::Decoder<'static>,
    pending: Option<PendingBlock>,
    eof: bool,
}

impl<S> AuthorityFix<S> {
    pub fn new(inner: S) -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(HPACK_TABLE_SIZE);
        AuthorityFix {
            inner,
            input: BytesMut::with_capacity(8 * 1024),
            output: BytesMut::with_capacity(8 * 1024),
            stage: Stage::Preface,
            decoder,
            pending: None,
            eof: false,
        }
    }

    /// Moves as many complete units as possible from `input` to `output`.
    fn process(&mut self) -> io::Result<()> {
        loop {
            match self.stage {
                Stage::Passthrough => {
                    let all = self.input.split();
                    self.output.unsplit(all);
                    return Ok(());
                }
                Stage::Preface => {
                    let seen = self.input.len().min(PREFACE.len());
                    if self.input[..seen] != PREFACE[..seen] {
                        self.stage = Stage::Passthrough;
                        continue;
                    }
                    if seen < PREFACE.len() {
                        return Ok(());
                    }
                    let preface = self.input.split_to(PREFACE.len());
                    self.output.unsplit(preface);
                    self.stage = Stage::FirstBlock;
                }
                Stage::FirstBlock | Stage::Rewrite => {
                    if !self.process_frame()? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Handles one complete frame from `input`; false when none is complete.
    fn process_frame(&mut self) -> io::Result<bool> {
        if self.input.len() < FRAME_HEADER_LEN {
            return Ok(false);
        }
        let length = usize::from(self.input[0]) << 16
            | usize::from(self.input[1]) << 8
            | usize::from(self.input[2]);
        if length > MAX_FRAME_PAYLOAD {
            // The server rejects this frame itself; stop rewriting.
            self.stage = Stage::Passthrough;
            return Ok(true);
        }
        if self.input.len() < FRAME_HEADER_LEN + length {
            return Ok(false);
        }
        let kind = self.input[3];
        let flags = self.input[4];
        let stream_id =
            u32::from_be_bytes([self.input[5], self.input[6], self.input[7], self.input[8]])
                & 0x7fff_ffff;
        let mut frame = self.input.split_to(FRAME_HEADER_LEN + length);
        let first_block = matches!(self.stage, Stage::FirstBlock);

        match (kind, self.pending.is_some()) {
            (HEADERS, false) => {
                let original = if first_block {
                    frame.clone()
                } else {
                    BytesMut::new()
                };
                frame.advance(FRAME_HEADER_LEN);
                let fragment = header_fragment(&frame, flags)?;
                let pending = PendingBlock {
                    stream_id,
                    end_stream: flags & END_STREAM != 0,
                    block: fragment.to_vec(),
                    frames: original,
                };
                self.pending = Some(pending);
                if flags & END_HEADERS != 0 {
                    self.finish_block()?;
                }
            }
            (CONTINUATION, true) => {
                let pending = self
                    .pending
                    .as_mut()
                    .ok_or_else(|| invalid("CONTINUATION without HEADERS"))?;
                if pending.stream_id != stream_id || pending.block.len() + length > MAX_HEADER_BLOCK
                {
                    return Err(invalid("invalid CONTINUATION frame"));
                }
                if first_block {
                    pending.frames.extend_from_slice(&frame);
                }
                pending.block.extend_from_slice(&frame[FRAME_HEADER_LEN..]);
                if flags & END_HEADERS != 0 {
                    self.finish_block()?;
                }
            }
            (_, true) => return Err(invalid("frame interleaved with a header block")),
            (_, false) => self.output.unsplit(frame),
        }
        Ok(true)
    }

    /// Writes a complete header block to the output. The first block goes
    /// unchanged when its authority is valid, and the connection then passes
    /// through. Any other block is encoded again with a valid authority.
    fn finish_block(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let mut encoded = Vec::with_capacity(pending.block.len() + 16);
        let mut replaced = false;
        let mut result = Ok(());
        self.decoder
            .decode_with_cb(&pending.block, |name, value| {
                let value: &[u8] = if &*name == b":authority" && !is_valid_authority(&value) {
                    replaced = true;
                    REPLACEMENT_AUTHORITY
                } else {
                    &value
                };
                if encoded.len() > MAX_HEADER_BLOCK {
                    result = Err(invalid("header block too large"));
                }
                encode_literal(&mut encoded, &name, value);
            })
            .map_err(|err| invalid(&format!("invalid HPACK header block: {err:?}")))?;
        result?;
        if matches!(self.stage, Stage::FirstBlock) {
            if !replaced {
                self.output.unsplit(pending.frames);
                self.stage = Stage::Passthrough;
                return Ok(());
            }
            self.stage = Stage::Rewrite;
        }
        write_header_frames(
            &mut self.output,
            pending.stream_id,
            pending.end_stream,
            &encoded,
        );
        Ok(())
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

/// The header block fragment of a HEADERS payload, without padding and
/// priority fields.
fn header_fragment(payload: &[u8], flags: u8) -> io::Result<&[u8]> {
    let mut start = 0;
    let mut end = payload.len();
    if flags & PADDED != 0 {
        let pad = usize::from(
            *payload
                .first()
                .ok_or_else(|| invalid("empty padded HEADERS"))?,
        );
        start = 1;
        end = end
            .checked_sub(pad)
            .ok_or_else(|| invalid("HEADERS padding too long"))?;
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    payload
        .get(start..end)
        .ok_or_else(|| invalid("HEADERS frame too short"))
}

fn is_valid_authority(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok()
}

/// Appends a "literal header field without indexing, new name" with plain
/// (not Huffman) strings, as RFC 7541 section 6.2.2 defines it.
fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    encode_string(out, name);
    encode_string(out, value);
}

fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_integer(out, bytes.len(), 7, 0x00);
    out.extend_from_slice(bytes);
}

/// Appends `value` as an HPACK integer with an N-bit prefix (RFC 7541
/// section 5.1); `first` holds the bits above the prefix.
fn encode_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, first: u8) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// Writes `block` as one HEADERS frame and as many CONTINUATION frames as
/// the 16,384-byte payload limit needs.
fn write_header_frames(out: &mut BytesMut, stream_id: u32, end_stream: bool, block: &[u8]) {
    let mut chunks = block.chunks(MAX_EMITTED_PAYLOAD).peekable();
    let mut kind = HEADERS;
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        write_frame(out, HEADERS, flags | END_HEADERS, stream_id, &[]);
        return;
    }
    while let Some(chunk) = chunks.next() {
        if chunks.peek().is_none() {
            flags |= END_HEADERS;
        }
        write_frame(out, kind, flags, stream_id, chunk);
        kind = CONTINUATION;
        flags = 0;
    }
}

fn write_frame(out: &mut BytesMut, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
    let length = payload.len() as u32;
    out.put_slice(&length.to_be_bytes()[1..]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream_id);
    out.put_slice(payload);
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.output.is_empty() {
                let count = this.output.len().min(buf.remaining());
                buf.put_slice(&this.output[..count]);
                this.output.advance(count);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if matches!(this.stage, Stage::Passthrough) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            this.input.reserve(READ_CHUNK);
            let read = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.input
            ))?;
            if read == 0 {
                this.eof = true;
                let rest = this.input.split();
                this.output.unsplit(rest);
                continue;
            }
            this.process()?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests;

impl<S: tonic::transport::server::Connected> tonic::transport::server::Connected
    for AuthorityFix<S>
{
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
