//! The frame socket of the `triage serve` binary: its default path, the
//! flag and environment variable that move or disable it, and its removal
//! on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use prost::Message as _;
use triage::frame::{self, DEFAULT_MAX_FRAME_BYTES, Kind};
use triage::proto::{DecideRequest, Decision};

const TEST_POLICY: &str = include_str!("fixtures/policy.yaml");

/// A `triage serve` child process that is killed when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `triage serve` with its gRPC socket in `dir`, no TCP listeners,
/// and `extra` arguments.
fn spawn(dir: &Path, extra: &[&str]) -> Server {
    std::fs::write(dir.join("policy.yaml"), TEST_POLICY).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_triage"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TRIAGE_") {
            command.env_remove(key);
        }
    }
    let child = command
        .arg("serve")
        .args(extra)
        .env("TRIAGE_POLICY", dir.join("policy.yaml"))
        .env("TRIAGE_GRPC_SOCKET", dir.join("grpc.sock"))
        .env("TRIAGE_GRPC_LISTEN", "off")
        .env("TRIAGE_ADMIN_LISTEN", "off")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Server { child }
}

/// Waits up to 20 s for `path` to exist.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn decide_over(path: &Path) -> Decision {
    let mut stream = UnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = DecideRequest {
        request_id: "cli-1".into(),
        prompt: "hello".into(),
        // Skips the classifier, so the policy's default task decides.
        latency_budget_ms: 100,
        ..DecideRequest::default()
    };
    let mut output = BytesMut::new();
    frame::encode_message(
        &mut output,
        Kind::Request,
        1,
        &request,
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap();
    stream.write_all(&output).unwrap();

    let mut input = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(answer) = frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES).unwrap() {
            assert_eq!(answer.kind, Kind::Response);
            assert_eq!(answer.id, 1);
            return Decision::decode(answer.payload).unwrap();
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "server closed before answering");
        input.extend_from_slice(&chunk[..read]);
    }
}

/// Reads the server's log until it reports ready, for up to 20 s. Every
/// listener is bound by then.
fn wait_until_ready(server: &mut Server) {
    use std::io::{BufRead, BufReader};
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("server did not report ready");
}

fn terminate(server: &mut Server) {
    let status = Command::new("kill")
        .args(["-s", "TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn default_frame_socket_sits_beside_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path(), &[]);
    let socket = dir.path().join("frame.sock");
    wait_for(&socket);
    let decision = decide_over(&socket);
    assert_eq!(decision.request_id, "cli-1");
    assert_eq!(decision.model, "alpha-small");

    terminate(&mut server);
    assert!(!socket.exists());
}

#[test]
fn frame_socket_flag_sets_path() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("elsewhere/frames.sock");
    let socket_arg = socket.to_str().unwrap().to_owned();
    let _server = spawn(dir.path(), &["--frame-socket", &socket_arg]);
    wait_for(&socket);
    assert_eq!(decide_over(&socket).request_id, "cli-1");
    assert!(!dir.path().join("frame.sock").exists());
}

#[test]
fn frame_socket_off_disables_listener() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path(), &["--frame-socket", "off"]);
    wait_until_ready(&mut server);
    assert!(dir.path().join("grpc.sock").exists());
    assert!(!dir.path().join("frame.sock").exists());
    terminate(&mut server);
}
