use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Encodes `headers` as a client would, with a dynamic table.
fn block(encoder: &mut loona_hpack::Encoder<'_>, headers: &[(&str, &str)]) -> Vec<u8> {
    encoder.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_frame(&mut out, kind, flags, stream_id, payload);
    out.to_vec()
}

/// A frame read back from the rewritten stream.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream_id: u32,
    payload: Vec<u8>,
}

fn parse_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let length =
            usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream_id = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        let payload = bytes[9..9 + length].to_vec();
        frames.push(Frame {
            kind: bytes[3],
            flags: bytes[4],
            stream_id,
            payload,
        });
        bytes = &bytes[9 + length..];
    }
    frames
}

/// Runs `input` through [`AuthorityFix`] and returns what the server reads.
async fn rewrite(input: Vec<u8>) -> io::Result<Vec<u8>> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    client.write_all(&input).await?;
    drop(client);
    let mut fixed = AuthorityFix::new(server);
    let mut out = Vec::new();
    fixed.read_to_end(&mut out).await?;
    Ok(out)
}

/// Decodes the header blocks of the frames after the preface, joining
/// CONTINUATION frames, with a fresh decoder as the server has.
fn decode_blocks(frames: &[Frame]) -> Vec<Vec<(String, String)>> {
    let mut decoder = loona_hpack::Decoder::new();
    let mut blocks = Vec::new();
    let mut current = Vec::new();
    for frame in frames
        .iter()
        .filter(|f| f.kind == HEADERS || f.kind == CONTINUATION)
    {
        current.extend_from_slice(&frame.payload);
        if frame.flags & END_HEADERS != 0 {
            let headers = decoder.decode(&current).unwrap();
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            blocks.push(headers.iter().map(|(n, v)| (text(n), text(v))).collect());
            current.clear();
        }
    }
    blocks
}

fn request_headers(authority: &str) -> Vec<(&str, &str)> {
    vec![
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/triage.v1.Router/Decide"),
        (":authority", authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
}

fn value<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

#[tokio::test]
async fn socket_path_authority_becomes_localhost() {
    let mut encoder = loona_hpack::Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &block(&mut encoder, &request_headers("/tmp/x/grpc.sock")),
    ));
    let out = rewrite(input).await.unwrap();
    assert!(out.starts_with(PREFACE));
    let frames = parse_frames(&out[PREFACE.len()..]);
    let blocks = decode_blocks(&frames);
    assert_eq!(blocks.len(), 1);
    assert_eq!(value(&blocks[0], ":authority"), "localhost");
    assert_eq!(value(&blocks[0], ":path"), "/triage.v1.Router/Decide");
    assert_eq!(value(&blocks[0], "te"), "trailers");
    assert_eq!(frames[0].stream_id, 1);
}

#[tokio::test]
async fn valid_authority_is_kept() {
    let mut encoder = loona_hpack::Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &block(&mut encoder, &request_headers("127.0.0.1:7575")),
    ));
    let out = rewrite(input).await.unwrap();
    let blocks = decode_blocks(&parse_frames(&out[PREFACE.len()..]));
    assert_eq!(value(&blocks[0], ":authority"), "127.0.0.1:7575");
}

#[tokio::test]
async fn valid_first_authority_passes_through() {
    let mut encoder = loona_hpack::Encoder::new();
    let mut input = PREFACE.to_vec();
    input.extend(frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]));
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &block(&mut encoder, &request_headers("localhost")),
    ));
    input.extend(frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02hi"));
    // This block refers to the client's dynamic table, which the server's
    // own decoder follows once the connection passes through.
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        3,
        &block(&mut encoder, &request_headers("localhost")),
    ));
    // Once the connection passes through, later blocks are not read.
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        5,
        &block(&mut encoder, &request_headers("/tmp/x/grpc.sock")),
    ));
    assert_eq!(rewrite(input.clone()).await.unwrap(), input);
}

#[tokio::test]
async fn valid_continued_first_block_unchanged() {
    let mut encoder = loona_hpack::Encoder::new();
    let fragment = block(&mut encoder, &request_headers("127.0.0.1:7575"));
    let (first, rest) = fragment.split_at(10);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_STREAM, 1, first));
    input.extend(frame(CONTINUATION, END_HEADERS, 1, rest));
    input.extend(frame(0x4, 0, 0, &[]));
    assert_eq!(rewrite(input.clone()).await.unwrap(), input);
}

#[tokio::test]
async fn dynamic_table_entries_resolve_in_later_blocks() {
    let mut encoder = loona_hpack::Encoder::new();
    let headers = request_headers("/run/triage/grpc.sock");
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &block(&mut encoder, &headers),
    ));
    let second = block(&mut encoder, &headers);
    input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &second));
    let out = rewrite(input).await.unwrap();
    let frames = parse_frames(&out[PREFACE.len()..]);
    let blocks = decode_blocks(&frames);
    assert_eq!(blocks.len(), 2);
    assert_eq!(value(&blocks[1], ":authority"), "localhost");
    assert_eq!(value(&blocks[1], "content-type"), "application/grpc");
    assert_eq!(frames[1].flags & END_STREAM, END_STREAM);
}

#[tokio::test]
async fn padding_and_priority_are_removed() {
    let mut encoder = loona_hpack::Encoder::new();
    let fragment = block(&mut encoder, &request_headers("/s.sock"));
    let mut payload = vec![3u8];
    payload.extend([0, 0, 0, 0, 16]);
    payload.extend(&fragment);
    payload.extend([0, 0, 0]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 5, &payload));
    let out = rewrite(input).await.unwrap();
    let frames = parse_frames(&out[PREFACE.len()..]);
    assert_eq!(frames[0].flags & (PADDED | PRIORITY), 0);
    assert_eq!(value(&decode_blocks(&frames)[0], ":authority"), "localhost");
}

#[tokio::test]
async fn continuation_frames_are_joined_and_split() {
    let mut encoder = loona_hpack::Encoder::new();
    let big = "v".repeat(20_000);
    let mut headers = request_headers("/s.sock");
    headers.push(("x-big", &big));
    let fragment = block(&mut encoder, &headers);
    let (first, rest) = fragment.split_at(100);
    let mut input = PREFACE.to_vec();
    input.extend(frame(HEADERS, 0, 1, first));
    for (i, chunk) in rest.chunks(9000).enumerate() {
        let last = (i + 1) * 9000 >= rest.len();
        input.extend(frame(
            CONTINUATION,
            if last { END_HEADERS } else { 0 },
            1,
            chunk,
        ));
    }
    let out = rewrite(input).await.unwrap();
    let frames = parse_frames(&out[PREFACE.len()..]);
    assert!(frames.len() >= 2);
    assert!(
        frames
            .iter()
            .all(|f| f.payload.len() <= MAX_EMITTED_PAYLOAD)
    );
    assert_eq!(frames[0].kind, HEADERS);
    assert!(frames[1..].iter().all(|f| f.kind == CONTINUATION));
    let blocks = decode_blocks(&frames);
    assert_eq!(value(&blocks[0], "x-big").len(), 20_000);
    assert_eq!(value(&blocks[0], ":authority"), "localhost");
}

#[tokio::test]
async fn other_frames_pass_unchanged() {
    let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02hi");
    let mut input = PREFACE.to_vec();
    input.extend(&settings);
    input.extend(&data);
    let out = rewrite(input.clone()).await.unwrap();
    assert_eq!(out, input);
}

#[tokio::test]
async fn non_http2_bytes_pass_through() {
    let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert_eq!(rewrite(input.clone()).await.unwrap(), input);
}

#[tokio::test]
async fn corrupt_header_block_is_an_error() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        HEADERS,
        END_HEADERS,
        1,
        &[0xff, 0xff, 0xff, 0xff, 0xff],
    ));
    let err = rewrite(input).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn integer_encoding_matches_rfc_examples() {
    // RFC 7541 appendix C.1: 10 and 1337 with a 5-bit prefix, 42 with 8 bits.
    let mut out = Vec::new();
    encode_integer(&mut out, 10, 5, 0);
    assert_eq!(out, [10]);
    out.clear();
    encode_integer(&mut out, 1337, 5, 0);
    assert_eq!(out, [31, 154, 10]);
    out.clear();
    encode_integer(&mut out, 42, 8, 0);
    assert_eq!(out, [42]);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_frames_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut input = PREFACE.to_vec();
            input.extend(body);
            let _ = runtime.block_on(rewrite(input));
        }

        #[test]
        fn arbitrary_header_blocks_never_panic(block in prop::collection::vec(any::<u8>(), 0..256)) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut input = PREFACE.to_vec();
            input.extend(frame(HEADERS, END_HEADERS, 1, &block));
            let _ = runtime.block_on(rewrite(input));
        }
    }
}
