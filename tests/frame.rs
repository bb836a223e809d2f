//! The frame protocol over a real Unix socket: pipelining, error frames for
//! every kind of malformed frame, isolation between connections, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tonic::Code;
use triage::decide::Limits;
use triage::frame::{self, DEFAULT_MAX_FRAME_BYTES, Frame, Kind};
use triage::proto::{DecideRequest, Decision};
use triage::serve::{self, Running, Settings};

const TEST_POLICY: &str = include_str!("fixtures/policy.yaml");

struct Harness {
    running: Running,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, TEST_POLICY).unwrap();
    let socket = dir.path().join("run/frame.sock");
    let settings = Settings {
        policy: Some(policy),
        grpc_socket: None,
        frame_socket: Some(socket.clone()),
        classifier: None,
        pod: None,
        grpc_listen: None,
        admin_listen: None,
        drain: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_in_flight: 64,
        limits: Limits::default(),
    };
    let running = serve::start(settings).await.unwrap();
    Harness {
        running,
        socket,
        _dir: dir,
    }
}

/// A request whose answer does not depend on the classifier: its latency
/// budget skips it, so the policy's default task decides.
fn request(id: &str, prompt: &str) -> DecideRequest {
    DecideRequest {
        request_id: id.into(),
        prompt: prompt.into(),
        latency_budget_ms: 100,
        ..Default::default()
    }
}

fn encode(id: u64, request: &DecideRequest) -> BytesMut {
    let mut buffer = BytesMut::new();
    frame::encode_message(
        &mut buffer,
        Kind::Request,
        id,
        request,
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap();
    buffer
}

/// Reads frames until `count` have arrived, or the peer closes.
async fn read_frames(stream: &mut UnixStream, count: usize) -> Vec<Frame> {
    let mut input = BytesMut::new();
    let mut frames = Vec::new();
    while frames.len() < count {
        while let Some(frame) = frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES).unwrap() {
            frames.push(frame);
        }
        if frames.len() >= count {
            break;
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut input))
            .await
            .expect("no frame within 5 s")
            .unwrap();
        if read == 0 {
            break;
        }
    }
    frames
}

/// Asserts that the peer has closed the connection.
async fn assert_closed(stream: &mut UnixStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("connection still open after 5 s");
    assert_eq!(
        read.unwrap_or(0),
        0,
        "unexpected bytes after the error frame"
    );
}

async fn decide_once(stream: &mut UnixStream, id: u64) -> Decision {
    stream
        .write_all(&encode(id, &request("check", "hello")))
        .await
        .unwrap();
    let frames = read_frames(stream, 1).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].kind, Kind::Response);
    assert_eq!(frames[0].id, id);
    Decision::decode(frames[0].payload.clone()).unwrap()
}

#[tokio::test]
async fn pipelined_requests_answer_in_order() {
    let harness = start().await;
    let mut stream = UnixStream::connect(&harness.socket).await.unwrap();
    let mut burst = BytesMut::new();
    for id in 1..=50u64 {
        let mut req = request(&format!("req-{id}"), "Summarize this thread");
        if id.is_multiple_of(10) {
            req.pinned_model = "no-such-model".into();
        }
        burst.extend_from_slice(&encode(id * 3, &req));
    }
    stream.write_all(&burst).await.unwrap();

    let frames = read_frames(&mut stream, 50).await;
    assert_eq!(frames.len(), 50);
    for (index, frame) in frames.iter().enumerate() {
        let id = index as u64 + 1;
        assert_eq!(frame.id, id * 3, "frame {index} out of order");
        if id.is_multiple_of(10) {
            assert_eq!(frame.kind, Kind::Error);
            let (code, message) = frame::decode_error(frame).unwrap();
            assert_eq!(code, Code::InvalidArgument);
            assert!(message.contains("pinned_model"), "{message}");
        } else {
            assert_eq!(frame.kind, Kind::Response);
            let decision = Decision::decode(frame.payload.clone()).unwrap();
            assert_eq!(decision.request_id, format!("req-{id}"));
            assert_eq!(decision.model, "alpha-small");
        }
    }
    // A rejected request leaves the connection open.
    decide_once(&mut stream, 999).await;
}

#[tokio::test]
async fn responses_equal_in_process_decisions() {
    let harness = start().await;
    let policy = triage::policy::Policy::compile("policy.yaml", TEST_POLICY).unwrap();
    let limits = Limits::default();
    let context = triage::decide::Context {
        policy: &policy,
        limits: &limits,
        classifier: Some(triage::classify::Classifier::embedded()),
    };
    let mut pinned = request("pinned", "Review this clause.");
    pinned.pinned_model = "beta-large".into();
    pinned.deterministic = true;
    let mut classified = request("classified", "Write a Rust function that merges two lists.");
    classified.latency_budget_ms = 0;
    let mut rule = request("", "Loving the new update!");
    rule.route = "tweet-sentiment".into();
    let cases = [
        pinned,
        classified,
        rule,
        request("bypass", "Summarize this."),
    ];

    let mut stream = UnixStream::connect(&harness.socket).await.unwrap();
    for (id, req) in cases.iter().enumerate() {
        stream.write_all(&encode(id as u64, req)).await.unwrap();
        let frames = read_frames(&mut stream, 1).await;
        assert_eq!(frames[0].kind, Kind::Response, "case {id}");
        let mut over_frames = Decision::decode(frames[0].payload.clone()).unwrap();
        let mut in_process = triage::decide::decide(context, req).unwrap();
        // Only the measured time may differ.
        for decision in [&mut over_frames, &mut in_process] {
            decision.receipt.as_mut().unwrap().decide_nanos = 0;
        }
        assert_eq!(over_frames, in_process, "case {id}");
    }
}

/// A header with the given length, version and kind, and no payload.
fn header(length: u32, version: u8, kind: u8, id: u64) -> BytesMut {
    let mut buffer = BytesMut::new();
    buffer.put_u32(length);
    buffer.put_u8(version);
    buffer.put_u8(kind);
    buffer.put_u64(id);
    buffer
}

fn malformed_frames() -> Vec<(&'static str, BytesMut, Code, u64)> {
    let mut bad_protobuf = header(10 + 3, frame::VERSION, Kind::Request as u8, 41);
    bad_protobuf.put_slice(&[0xff, 0xff, 0xff]);
    let mut unknown_version = encode(42, &request("v", "hello"));
    unknown_version[4] = 9;
    let huge = (DEFAULT_MAX_FRAME_BYTES + 1) as u32;
    vec![
        (
            "short length",
            header(3, frame::VERSION, 1, 40),
            Code::InvalidArgument,
            0,
        ),
        (
            "huge length",
            header(huge, frame::VERSION, 1, 40),
            Code::ResourceExhausted,
            0,
        ),
        ("bad protobuf", bad_protobuf, Code::InvalidArgument, 41),
        ("unknown version", unknown_version, Code::Unimplemented, 0),
        (
            "unknown kind",
            header(10, frame::VERSION, 7, 43),
            Code::InvalidArgument,
            43,
        ),
        (
            "response kind",
            header(10, frame::VERSION, 2, 44),
            Code::InvalidArgument,
            44,
        ),
    ]
}

#[tokio::test]
async fn malformed_frames_close_only_their_connection() {
    let harness = start().await;
    let mut healthy = UnixStream::connect(&harness.socket).await.unwrap();
    decide_once(&mut healthy, 1).await;

    for (case, bytes, expected_code, expected_id) in malformed_frames() {
        let mut bad = UnixStream::connect(&harness.socket).await.unwrap();
        bad.write_all(&bytes).await.unwrap();
        let frames = read_frames(&mut bad, 1).await;
        assert_eq!(frames.len(), 1, "{case}: no error frame");
        assert_eq!(frames[0].kind, Kind::Error, "{case}");
        assert_eq!(frames[0].id, expected_id, "{case}");
        let (code, message) = frame::decode_error(&frames[0]).unwrap();
        assert_eq!(code, expected_code, "{case}: {message}");
        assert_closed(&mut bad).await;

        let decision = decide_once(&mut healthy, 2).await;
        assert_eq!(decision.request_id, "check", "{case}");
    }
}

#[tokio::test]
async fn frame_split_across_writes_is_answered() {
    let harness = start().await;
    let mut stream = UnixStream::connect(&harness.socket).await.unwrap();
    let bytes = encode(5, &request("split", "hello there"));
    for chunk in bytes.chunks(3) {
        stream.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let frames = read_frames(&mut stream, 1).await;
    assert_eq!(frames[0].id, 5);
    assert_eq!(frames[0].kind, Kind::Response);
}

#[tokio::test]
async fn shutdown_closes_connections_and_removes_socket() {
    let harness = start().await;
    let socket = harness.socket.clone();
    assert!(socket.exists());
    let mut idle = UnixStream::connect(&socket).await.unwrap();
    decide_once(&mut idle, 1).await;

    harness.running.shutdown();
    tokio::time::timeout(Duration::from_secs(10), harness.running.wait())
        .await
        .expect("shutdown did not finish");
    assert!(!socket.exists());
    assert_closed(&mut idle).await;
    assert!(UnixStream::connect(&socket).await.is_err());
}

#[tokio::test]
async fn connections_are_counted() {
    let harness = start().await;
    let mut stream = UnixStream::connect(&harness.socket).await.unwrap();
    decide_once(&mut stream, 1).await;
    let text = triage::telemetry::metrics_handle().render();
    let opened = text
        .lines()
        .find(|l| l.starts_with("triage_connections_opened_total{transport=\"frames\"}"));
    assert!(opened.is_some(), "{text}");
    assert!(
        text.contains("triage_connections_open{transport=\"frames\"}"),
        "{text}"
    );
}
