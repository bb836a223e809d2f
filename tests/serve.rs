//! Integration tests against a real server: gRPC over a Unix socket and TCP
//! with tonic clients, the admin HTTP listener, hot reload and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::Code;
use tonic::transport::{Channel, Endpoint, Uri};
use triage::decide::Limits;
use triage::proto::router_client::RouterClient;
use triage::proto::{DecideRequest, GetPolicyRequest, Path as DecisionPath};
use triage::serve::{self, Running, Settings};

const TEST_POLICY: &str = include_str!("fixtures/policy.yaml");

struct Harness {
    running: Running,
    policy_path: PathBuf,
    _dir: tempfile::TempDir,
}

async fn start() -> Harness {
    start_with(64).await
}

async fn start_with(max_in_flight: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.yaml");
    std::fs::write(&policy_path, TEST_POLICY).unwrap();
    let settings = Settings {
        policy: Some(policy_path.clone()),
        grpc_socket: Some(dir.path().join("run/grpc.sock")),
        frame_socket: None,
        classifier: None,
        pod: None,
        grpc_listen: Some("127.0.0.1:0".parse().unwrap()),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        drain: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
        max_in_flight,
        limits: Limits::default(),
    };
    let running = serve::start(settings).await.unwrap();
    Harness {
        running,
        policy_path,
        _dir: dir,
    }
}

async fn uds_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .unwrap()
}

async fn tcp_channel(harness: &Harness) -> Channel {
    let addr = harness.running.grpc_addr.unwrap();
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn admin_get(harness: &Harness, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = harness.running.admin_addr.unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn request(prompt: &str) -> DecideRequest {
    DecideRequest {
        request_id: "req-1".into(),
        prompt: prompt.into(),
        ..Default::default()
    }
}

async fn policy_version(client: &mut RouterClient<Channel>) -> String {
    client
        .get_policy(GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner()
        .version
}

/// Polls until the serving policy version is `expected`, for up to 10 s.
async fn wait_for_version(client: &mut RouterClient<Channel>, expected: &str) {
    for _ in 0..200 {
        if policy_version(client).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("policy version did not become {expected}");
}

#[tokio::test]
async fn decide_over_unix_socket() {
    let harness = start().await;
    let channel = uds_channel(harness.running.grpc_socket.as_ref().unwrap()).await;
    let mut client = RouterClient::new(channel);
    let mut req = request("Review this clause");
    req.tenant = "legal".into();
    let decision = client.decide(req).await.unwrap().into_inner();
    assert_eq!(decision.model, "alpha-large");
    assert_eq!(decision.request_id, "req-1");
    assert_eq!(decision.policy_version, "test-1");
    let receipt = decision.receipt.unwrap();
    assert_eq!(receipt.path(), DecisionPath::Rule);
    assert_eq!(receipt.rule, "legal-best");
}

#[tokio::test]
async fn decide_over_tcp() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let mut req = request("hello");
    req.latency_budget_ms = 100;
    let decision = client.decide(req).await.unwrap().into_inner();
    assert_eq!(decision.model, "alpha-small");
    assert_eq!(decision.fallbacks.len(), 3);
    assert!(decision.receipt.unwrap().decide_nanos > 0);
}

#[tokio::test]
async fn server_classifies_prompts() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let prompt = "Write a Rust function that reverses a linked list in place, with unit tests.";
    let decision = client.decide(request(prompt)).await.unwrap().into_inner();
    let receipt = decision.receipt.unwrap();
    assert_eq!(receipt.path(), DecisionPath::Classified);
    assert_eq!(receipt.task_type(), triage::proto::TaskType::Code);
    assert!(receipt.confidence > 0.0);
    assert!(receipt.confidence <= 1.0);
    assert!((0.0..=1.0).contains(&receipt.difficulty));
}

#[tokio::test]
async fn get_policy_reports_counts() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let info = client
        .get_policy(GetPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.version, "test-1");
    assert_eq!(info.rule_count, 4);
    assert_eq!(info.model_count, 6);
    assert_eq!(info.provider_count, 4);
    assert!(info.source.ends_with("policy.yaml"));
}

#[tokio::test]
async fn bad_requests_get_named_status() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);

    let mut req = request("hi");
    req.pinned_model = "no-such-model".into();
    let status = client.decide(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("pinned_model"),
        "{}",
        status.message()
    );

    let mut req = request("hi");
    req.task_type = 42;
    let status = client.decide(req).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("task_type"),
        "{}",
        status.message()
    );

    let status = client
        .decide(request(&"x".repeat(1024 * 1024 + 1)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("prompt"), "{}", status.message());

    let mut req = request("hi");
    req.pinned_model = "gamma-mid".into();
    req.allowed_providers = vec!["alpha".into()];
    let status = client.decide(req).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn calls_over_limit_are_shed() {
    // With no call allowed in flight, every call is shed at once rather
    // than queued.
    let harness = start_with(0).await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let status = client.decide(request("hi")).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn health_service_reports_serving() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let harness = start().await;
    let mut health = HealthClient::new(tcp_channel(&harness).await);
    for service in ["", "triage.v1.Router"] {
        let response = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap();
        assert_eq!(
            response.into_inner().status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
}

#[tokio::test]
async fn reflection_lists_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let harness = start().await;
    let mut reflection = ServerReflectionClient::new(tcp_channel(&harness).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"triage.v1.Router".to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_lists_router() {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let harness = start().await;
    let mut reflection = ServerReflectionClient::new(tcp_channel(&harness).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = stream.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    assert!(list.service.iter().any(|s| s.name == "triage.v1.Router"));
}

#[tokio::test]
async fn admin_endpoints_answer() {
    let harness = start().await;
    assert_eq!(admin_get(&harness, "/healthz").await.0, 200);
    assert_eq!(
        admin_get(&harness, "/readyz").await,
        (200, "ready\n".to_owned())
    );
    assert_eq!(admin_get(&harness, "/nope").await.0, 404);
    let (status, body) = admin_get(&harness, "/policy").await;
    assert_eq!(status, 200);
    let policy: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(policy["version"], "test-1");
    assert_eq!(policy["models"].as_array().unwrap().len(), 6);
    assert_eq!(policy["rules"][0], "legal-best");
    let (status, body) = admin_get(&harness, "/config").await;
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["max_in_flight"], 64);
    assert!(
        config["grpc_socket"]
            .as_str()
            .unwrap()
            .ends_with("grpc.sock")
    );
}

/// A series with its labels, and its value.
type Sample = (String, f64);

/// Parses Prometheus text into (name with labels, value) samples and the
/// declared type of each metric family.
fn parse_metrics(text: &str) -> (Vec<Sample>, Vec<(String, String)>) {
    let mut samples = Vec::new();
    let mut types = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.push((name.to_owned(), kind.to_owned()));
        } else if !line.starts_with('#') {
            let (series, value) = line.rsplit_once(' ').unwrap();
            samples.push((series.to_owned(), value.parse().unwrap()));
        }
    }
    (samples, types)
}

#[tokio::test]
async fn metrics_count_decisions() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let mut req = request("hi");
    req.tenant = "legal".into();
    for _ in 0..3 {
        client.decide(req.clone()).await.unwrap();
    }
    let (status, body) = admin_get(&harness, "/metrics").await;
    assert_eq!(status, 200);
    let (samples, types) = parse_metrics(&body);
    let kind = |name: &str| {
        types
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, k)| k.as_str())
    };
    assert_eq!(kind("triage_decisions_total"), Some("counter"));
    assert_eq!(kind("triage_decision_duration_seconds"), Some("histogram"));
    assert_eq!(kind("triage_policy_info"), Some("gauge"));
    // Servers in this test binary share one recorder, so count at least 3.
    let decisions = samples
        .iter()
        .find(|(s, _)| {
            s.starts_with("triage_decisions_total{")
                && s.contains("path=\"rule\"")
                && s.contains("model=\"alpha-large\"")
                && s.contains("rule=\"legal-best\"")
        })
        .map(|(_, v)| *v);
    assert!(decisions.unwrap_or(0.0) >= 3.0, "{body}");
    assert!(
        samples.iter().any(
            |(s, _)| s.starts_with("triage_decision_duration_seconds_bucket{")
                && s.contains("le=\"0.00001\"")
        ),
        "{body}"
    );
}

#[tokio::test]
async fn valid_reload_swaps_policy() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    assert_eq!(policy_version(&mut client).await, "test-1");
    let edited = TEST_POLICY.replace("version: \"test-1\"", "version: \"test-2\"");
    std::fs::write(&harness.policy_path, edited).unwrap();
    wait_for_version(&mut client, "test-2").await;
    let decision = client.decide(request("hi")).await.unwrap().into_inner();
    assert_eq!(decision.policy_version, "test-2");
}

/// Lays out `dir` the way the kubelet mounts a ConfigMap volume:
/// `policy.yaml -> ..data/policy.yaml` and `..data -> ..VERSION`.
fn write_configmap(dir: &Path, version: &str, text: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).unwrap();
    std::fs::write(versioned.join("policy.yaml"), text).unwrap();
    let staging = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &staging).unwrap();
    std::fs::rename(&staging, dir.join("..data")).unwrap();
    let link = dir.join("policy.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("..data/policy.yaml", &link).unwrap();
    }
}

#[tokio::test]
async fn configmap_symlink_swap_reloads() {
    let dir = tempfile::tempdir().unwrap();
    write_configmap(dir.path(), "v1", TEST_POLICY);
    let settings = Settings {
        policy: Some(dir.path().join("policy.yaml")),
        grpc_socket: None,
        frame_socket: None,
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
    let addr = running.grpc_addr.unwrap();
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = RouterClient::new(channel);
    assert_eq!(policy_version(&mut client).await, "test-1");

    let swapped = TEST_POLICY.replace("version: \"test-1\"", "version: \"from-configmap\"");
    write_configmap(dir.path(), "v2", &swapped);
    wait_for_version(&mut client, "from-configmap").await;
    running.shutdown();
    running.wait().await;
}

#[tokio::test]
async fn invalid_reload_keeps_old_policy() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    let broken = TEST_POLICY
        .replace("version: \"test-1\"", "version: \"broken\"")
        .replace("pin: alpha-large", "pin: nowhere");
    std::fs::write(&harness.policy_path, broken).unwrap();
    // The watcher reloads within about 100 ms of the write; give it time.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(policy_version(&mut client).await, "test-1");
    let decision = client.decide(request("hi")).await.unwrap().into_inner();
    assert_eq!(decision.policy_version, "test-1");
    let (_, body) = admin_get(&harness, "/metrics").await;
    let (samples, _) = parse_metrics(&body);
    let failures = samples
        .iter()
        .find(|(s, _)| s == "triage_policy_reloads_total{result=\"failure\"}");
    assert!(failures.is_some_and(|(_, v)| *v >= 1.0), "{body}");
}

#[tokio::test]
async fn shutdown_removes_socket_and_unreadies() {
    let harness = start().await;
    let socket = harness.running.grpc_socket.clone().unwrap();
    assert!(socket.exists());
    let state = harness.running.state.clone();
    harness.running.shutdown();
    harness.running.wait().await;
    assert!(!socket.exists());
    assert!(!state.is_ready());
}

#[tokio::test]
async fn in_flight_call_finishes_during_drain() {
    let harness = start().await;
    let mut client = RouterClient::new(tcp_channel(&harness).await);
    client.decide(request("warm up")).await.unwrap();
    harness.running.shutdown();
    let waiter = tokio::spawn(harness.running.wait());
    // Calls already on an open connection get a response or a clean refusal,
    // never left hanging past the drain deadline.
    let result = tokio::time::timeout(Duration::from_secs(5), client.decide(request("late"))).await;
    assert!(result.is_ok(), "call hung during drain");
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
}
