//! The fail-open client against a real server on every transport, and
//! against mock servers that are down, too slow, or close in the middle of
//! a frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tonic::Code;
use triage::client::{Client, ClientError, Config, Endpoint, Fallback, Source};
use triage::decide::Limits;
use triage::frame::{self, DEFAULT_MAX_FRAME_BYTES, Kind};
use triage::proto::{DecideRequest, Decision, Path as DecisionPath};
use triage::serve::{self, Running, Settings};

const TEST_POLICY: &str = include_str!("fixtures/policy.yaml");

struct Harness {
    running: Running,
    dir: tempfile::TempDir,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, TEST_POLICY).unwrap();
    let settings = Settings {
        policy: Some(policy),
        grpc_socket: Some(dir.path().join("grpc.sock")),
        frame_socket: Some(dir.path().join("frame.sock")),
        classifier: None,
        pod: None,
        grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
        admin_listen: None,
        drain: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_in_flight: 64,
        limits: Limits::default(),
    };
    let running = serve::start(settings).await.unwrap();
    Harness { running, dir }
}

fn fallback() -> Fallback {
    Fallback {
        model: "safe-model".into(),
        provider: "safe-provider".into(),
    }
}

fn client(endpoint: Endpoint, deadline: Duration) -> Client {
    let mut config = Config::new(endpoint, fallback());
    config.deadline = deadline;
    Client::new(config).unwrap()
}

/// A request whose answer does not depend on the classifier: its latency
/// budget skips it, so the policy's default task decides.
fn request(id: &str) -> DecideRequest {
    DecideRequest {
        request_id: id.into(),
        prompt: "Summarize this thread".into(),
        latency_budget_ms: 100,
        ..Default::default()
    }
}

fn endpoints(harness: &Harness) -> Vec<Endpoint> {
    let addr = harness.running.grpc_addr.unwrap();
    vec![
        Endpoint::Frames(harness.running.frame_socket.clone().unwrap()),
        Endpoint::GrpcUnix(harness.running.grpc_socket.clone().unwrap()),
        Endpoint::GrpcTcp(format!("http://{addr}")),
    ]
}

fn assert_fail_open(routed: &triage::client::Routed, label: &str) {
    assert_eq!(routed.decision.model, "safe-model");
    assert_eq!(routed.decision.provider, "safe-provider");
    assert_eq!(routed.decision.request_id, "r-1");
    let receipt = routed.decision.receipt.as_ref().unwrap();
    assert_eq!(receipt.path(), DecisionPath::Degraded);
    match &routed.source {
        Source::FailOpen(err) => assert_eq!(err.label(), label, "{err}"),
        Source::Sidecar => panic!("expected fail-open, got a sidecar decision"),
    }
}

#[tokio::test]
async fn every_transport_decides() {
    let harness = start().await;
    for endpoint in endpoints(&harness) {
        let client = client(endpoint.clone(), Duration::from_secs(5));
        for round in 0..3 {
            let routed = client.decide(request("r-1")).await;
            assert_eq!(routed.source, Source::Sidecar, "{endpoint:?} round {round}");
            assert_eq!(routed.decision.model, "alpha-small", "{endpoint:?}");
            assert_eq!(routed.decision.request_id, "r-1");
        }
    }
}

#[tokio::test]
async fn rejected_request_fails_open_with_code() {
    let harness = start().await;
    for endpoint in endpoints(&harness) {
        let client = client(endpoint.clone(), Duration::from_secs(5));
        let mut req = request("r-1");
        req.pinned_model = "no-such-model".into();
        let routed = client.decide(req).await;
        assert_fail_open(&routed, "rejected");
        let Source::FailOpen(ClientError::Rejected { code, .. }) = routed.source else {
            panic!("{endpoint:?}: expected a rejection");
        };
        assert_eq!(code, Code::InvalidArgument, "{endpoint:?}");
        // The connection stays usable after a rejection.
        assert!(!client.decide(request("r-2")).await.is_fail_open());
    }
}

#[tokio::test]
async fn concurrent_frame_calls_share_a_connection() {
    let harness = start().await;
    let socket = harness.running.frame_socket.clone().unwrap();
    let client = Arc::new(client(Endpoint::Frames(socket), Duration::from_secs(5)));
    let mut calls = tokio::task::JoinSet::new();
    for index in 0..200 {
        let client = client.clone();
        calls.spawn(async move {
            let id = format!("call-{index}");
            let routed = client.decide(request(&id)).await;
            assert_eq!(routed.source, Source::Sidecar);
            assert_eq!(routed.decision.request_id, id);
        });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap();
    }
}

#[tokio::test]
async fn server_down_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    let unused_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = [
        Endpoint::Frames(missing.clone()),
        Endpoint::GrpcUnix(missing),
        Endpoint::GrpcTcp(format!("http://{unused_port}")),
    ];
    for endpoint in down {
        let client = client(endpoint, Duration::from_secs(2));
        let routed = client.decide(request("r-1")).await;
        assert_fail_open(&routed, "unreachable");
    }
}

/// A frame server that reads requests and never answers.
fn silent_server(path: &Path) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
}

#[tokio::test]
async fn slow_server_fails_open_at_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.sock");
    let _server = silent_server(&path);
    let client = client(Endpoint::Frames(path), Duration::from_millis(100));
    let started = std::time::Instant::now();
    let routed = client.decide(request("r-1")).await;
    assert_fail_open(&routed, "deadline_exceeded");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn slow_grpc_server_fails_open_at_deadline() {
    // A TCP listener that accepts and never speaks HTTP/2.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let client = client(
        Endpoint::GrpcTcp(format!("http://{addr}")),
        Duration::from_millis(100),
    );
    let routed = client.decide(request("r-1")).await;
    assert_fail_open(&routed, "deadline_exceeded");
}

/// A frame server that answers the first request with half a frame and
/// then closes the connection.
fn half_frame_server(path: &Path) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut input = BytesMut::new();
        let request = loop {
            stream.read_buf(&mut input).await.unwrap();
            if let Some(frame) = frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES).unwrap() {
                break frame;
            }
        };
        let decision = Decision {
            model: "never-seen".into(),
            ..Decision::default()
        };
        let mut output = BytesMut::new();
        frame::encode_message(
            &mut output,
            Kind::Response,
            request.id,
            &decision,
            DEFAULT_MAX_FRAME_BYTES,
        )
        .unwrap();
        stream.write_all(&output[..output.len() / 2]).await.unwrap();
    })
}

#[tokio::test]
async fn server_closing_mid_frame_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.sock");
    let server = half_frame_server(&path);
    let client = client(Endpoint::Frames(path.clone()), Duration::from_secs(5));
    let routed = client.decide(request("r-1")).await;
    assert_fail_open(&routed, "connection_lost");
    server.await.unwrap();
    // The next call reconnects and, with nothing listening, fails open too.
    drop(std::fs::remove_file(&path));
    let routed = client.decide(request("r-1")).await;
    assert_fail_open(&routed, "unreachable");
}

#[tokio::test]
async fn client_reconnects_after_restart() {
    let harness = start().await;
    let socket: PathBuf = harness.running.frame_socket.clone().unwrap();
    let client = client(Endpoint::Frames(socket.clone()), Duration::from_secs(2));
    assert!(!client.decide(request("r-1")).await.is_fail_open());
    harness.running.shutdown();
    harness.running.wait().await;
    // The old connection may still look open, so the reason varies.
    assert!(client.decide(request("r-1")).await.is_fail_open());

    let dir = harness.dir;
    let policy = dir.path().join("policy.yaml");
    let settings = Settings {
        policy: Some(policy),
        grpc_socket: None,
        frame_socket: Some(socket),
        classifier: None,
        pod: None,
        grpc_listen: None,
        admin_listen: None,
        drain: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_in_flight: 64,
        limits: Limits::default(),
    };
    let _restarted = serve::start(settings).await.unwrap();
    assert!(!client.decide(request("r-1")).await.is_fail_open());
}
