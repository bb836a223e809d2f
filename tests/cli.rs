//! Tests of the `triage` binary as a user runs it: exit codes, output,
//! environment variables and signals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TEST_POLICY: &str = include_str!("fixtures/policy.yaml");

fn triage() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_triage"));
    for (key, _) in std::env::vars() {
        if key.starts_with("TRIAGE_") {
            command.env_remove(key);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn check_accepts_valid_policy() {
    let output = run(triage().args(["check", "tests/fixtures/policy.yaml"]));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("ok: version test-1"));
}

#[test]
fn check_reports_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        TEST_POLICY.replace("pin: alpha-large", "pin: alpha-giant"),
    )
    .unwrap();
    let output = run(triage().arg("check").arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let line = TEST_POLICY
        .lines()
        .position(|l| l.contains("pin: alpha-large"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("bad.yaml:{line}:")), "{err}");
    assert!(err.contains("unknown model \"alpha-giant\""), "{err}");
}

#[test]
fn check_reports_duplicate_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dup.yaml");
    let text = TEST_POLICY.replace(
        "    provider: alpha\n    input_usd_per_mtok: 10.0\n",
        "    provider: alpha\n    provider: alpha-again\n    input_usd_per_mtok: 10.0\n",
    );
    assert_ne!(
        text, TEST_POLICY,
        "the fixture no longer has the edited lines"
    );
    std::fs::write(&path, &text).unwrap();
    let output = run(triage().arg("check").arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let line = text
        .lines()
        .position(|l| l == "    provider: alpha-again")
        .unwrap()
        + 1;
    let expected = format!(
        "dup.yaml:{line}:5: error: key \"provider\" is duplicated in this mapping; remove or \
         rename one of them"
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!err.contains("DuplicateKeyPolicy"), "{err}");
}

#[test]
fn check_prints_warnings_and_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow.yaml");
    let text = format!(
        "{TEST_POLICY}  - name: never\n    match: {{tenants: [legal]}}\n    action: {{pin: beta-large}}\n"
    );
    std::fs::write(&path, text).unwrap();
    let output = run(triage().arg("check").arg(&path));
    assert!(output.status.success());
    assert!(
        stderr(&output).contains("warning: rule \"never\" can never match"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn explain_prints_decision_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(
        &path,
        r#"{"request_id": "e-1", "prompt": "hi", "route": "tweet-sentiment"}"#,
    )
    .unwrap();
    let output = run(triage()
        .args(["explain", "--policy", "tests/fixtures/policy.yaml"])
        .arg(&path));
    assert!(output.status.success(), "{}", stderr(&output));
    let decision: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(decision["request_id"], "e-1");
    assert_eq!(decision["model"], "beta-small");
    assert_eq!(decision["receipt"]["path"], "PATH_RULE");
    assert_eq!(decision["receipt"]["rule"], "sentiment");
    assert_eq!(decision["receipt"]["task_type"], "TASK_TYPE_CLASSIFICATION");
}

#[test]
fn explain_rejects_json_array() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, r#"["r1", "legal", "contract-review"]"#).unwrap();
    let output = run(triage().arg("explain").arg(&path));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("expected an object"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn explain_rejects_unknown_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("request.json");
    std::fs::write(&path, r#"{"prompt": "hi", "tenat": "legal"}"#).unwrap();
    let output = run(triage().arg("explain").arg(&path));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown field `tenat`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn route_uses_embedded_policy() {
    let output = run(triage().args(["route", "--prompt", "What is the capital of France?"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let decision: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(decision["model"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(
        decision["policy_version"]
            .as_str()
            .unwrap()
            .starts_with("default-")
    );
    assert!(decision["receipt"]["candidates"].as_array().unwrap().len() >= 12);
}

#[test]
fn route_reads_policy_from_environment() {
    let output = run(triage()
        .args(["route", "--prompt", "hi", "--tenant", "legal"])
        .env("TRIAGE_POLICY", "tests/fixtures/policy.yaml"));
    assert!(output.status.success(), "{}", stderr(&output));
    let decision: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(decision["model"], "alpha-large");
}

/// A prompt long enough that its token estimate, and so every cost in the
/// decision, differs from that of an empty or truncated prompt.
const FILE_PROMPT: &str = "Summarize the following meeting notes in three bullet points.\n\
    The team agreed to move the release to Thursday, because the migration \
    tests still fail on the staging database. Ana will fix the flaky test, \
    and Ben will write the announcement for customers.\n";

/// Runs `triage route` with `args` on the test policy, with `stdin` as its
/// standard input, and returns the decision without its timing field.
fn route_decision(args: &[&str], stdin: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let mut child = triage()
        .arg("route")
        .args(["--policy", "tests/fixtures/policy.yaml"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let mut decision: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    decision["receipt"]
        .as_object_mut()
        .unwrap()
        .remove("decide_nanos");
    decision
}

#[test]
fn route_reads_prompt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompt.txt");
    std::fs::write(&path, FILE_PROMPT).unwrap();
    let from_file = route_decision(&["--prompt-file", path.to_str().unwrap()], b"");
    let inline = route_decision(&["--prompt", FILE_PROMPT], b"");
    assert_eq!(from_file, inline);
}

#[test]
fn route_reads_prompt_from_stdin() {
    let from_stdin = route_decision(&["--prompt-file", "-"], FILE_PROMPT.as_bytes());
    let inline = route_decision(&["--prompt", FILE_PROMPT], b"");
    assert_eq!(from_stdin, inline);
}

#[test]
fn route_reports_missing_prompt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.txt");
    let output = run(triage().args(["route", "--prompt-file"]).arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("cannot read the prompt from {}", path.display())),
        "{err}"
    );
}

#[test]
fn route_rejects_non_utf8_prompt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.txt");
    std::fs::write(&path, b"caf\xe9 au lait").unwrap();
    let output = run(triage().args(["route", "--prompt-file"]).arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("latin1.txt is not valid UTF-8"), "{err}");
    assert!(err.contains("at offset 3"), "{err}");
}

#[test]
fn route_prompt_file_honours_max_prompt_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.txt");
    std::fs::write(&path, "x".repeat(200)).unwrap();
    let file = path.to_str().unwrap();
    let output = run(triage().args(["route", "--prompt-file", file, "--max-prompt-bytes", "199"]));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("over the limit of 199 bytes"), "{err}");
    assert!(err.contains("--max-prompt-bytes"), "{err}");
    let output = run(triage().args(["route", "--prompt-file", file, "--max-prompt-bytes", "200"]));
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn route_prompt_sources_conflict() {
    let output = run(triage().args(["route", "--prompt", "hi", "--prompt-file", "-"]));
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("--prompt-file"), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    let output = run(triage().arg("route"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--prompt"), "{}", stderr(&output));
}

#[test]
fn route_rejects_unknown_tier() {
    let output = run(triage().args(["route", "--prompt", "hi", "--tier", "gold"]));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("gold"), "{}", stderr(&output));
}

#[test]
fn serve_help_documents_environment() {
    let output = run(triage().args(["serve", "--help"]));
    let help = stdout(&output);
    for variable in [
        "TRIAGE_POLICY",
        "TRIAGE_GRPC_SOCKET",
        "TRIAGE_GRPC_LISTEN",
        "TRIAGE_ADMIN_LISTEN",
        "TRIAGE_DRAIN_SECONDS",
        "TRIAGE_MAX_PROMPT_BYTES",
        "TRIAGE_LOG_LEVEL",
    ] {
        assert!(
            help.contains(variable),
            "--help does not mention {variable}"
        );
    }
}

#[test]
fn serve_rejects_bad_address_from_environment() {
    let output = run(triage()
        .arg("serve")
        .env("TRIAGE_ADMIN_LISTEN", "localhost:x"));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("TRIAGE_ADMIN_LISTEN"), "{err}");
    assert!(err.contains("localhost:x"), "{err}");
}

#[test]
fn serve_rejects_every_listener_off() {
    let output = run(triage()
        .args(["serve", "--grpc-socket", "off", "--frame-socket", "off"])
        .args(["--grpc-listen", "off", "--admin-listen", "off"]));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("no listener for decisions"), "{err}");
    assert!(err.contains("--grpc-listen"), "{err}");
}

/// A `triage serve` child process that is killed when dropped.
struct Server {
    child: Child,
    admin: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_server(dir: &Path) -> Server {
    let admin = format!("127.0.0.1:{}", free_port());
    let child = triage()
        .arg("serve")
        .env("TRIAGE_POLICY", dir.join("policy.yaml"))
        .env("TRIAGE_GRPC_SOCKET", dir.join("grpc.sock"))
        .env("TRIAGE_GRPC_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("TRIAGE_ADMIN_LISTEN", &admin)
        .env("TRIAGE_POD_NAME", "web-7f9c")
        .env("TRIAGE_POD_NAMESPACE", "shop")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server { child, admin };
    wait_for_log(&mut server, "ready");
    server
}

/// Reads the server's log until a line contains `needle`, for up to 20 s.
fn wait_for_log(server: &mut Server, needle: &str) -> String {
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_owned();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&needle) {
                let _ = tx.send(seen.clone());
            }
        }
        let _ = tx.send(seen);
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap()
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn signal(server: &Server, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sighup_reloads_policy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), TEST_POLICY).unwrap();
    let server = spawn_server(dir.path());
    assert!(http_get(&server.admin, "/policy").contains("\"version\":\"test-1\""));

    signal(&server, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = http_get(&server.admin, "/metrics");
        if one_successful_reload(&metrics) || Instant::now() > deadline {
            break metrics;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(one_successful_reload(&metrics), "{metrics}");
}

/// Whether the scrape shows exactly one successful reload; the series also
/// carries the pod labels, in an order the exporter chooses.
fn one_successful_reload(metrics: &str) -> bool {
    metrics.lines().any(|line| {
        line.starts_with("triage_policy_reloads_total{")
            && line.contains("result=\"success\"")
            && line.ends_with(" 1")
    })
}

#[test]
fn pod_identity_labels_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), TEST_POLICY).unwrap();
    let server = spawn_server(dir.path());
    let metrics = http_get(&server.admin, "/metrics");
    let rules = metrics
        .lines()
        .find(|l| l.starts_with("triage_policy_rules{"))
        .unwrap_or_default();
    assert!(rules.contains("pod=\"web-7f9c\""), "{metrics}");
    assert!(rules.contains("namespace=\"shop\""), "{metrics}");
}

#[test]
fn sigterm_removes_socket_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.yaml"), TEST_POLICY).unwrap();
    let mut server = spawn_server(dir.path());
    assert!(dir.path().join("grpc.sock").exists());
    signal(&server, "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(!dir.path().join("grpc.sock").exists());
}

/// Writes a small labelled task file and returns its path.
fn write_tasks(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tasks.jsonl");
    let rows = [
        ("Write a Python function that parses dates.", "code"),
        ("What is 12 times 7?", "math"),
        ("Write a short poem about autumn.", "creative_writing"),
    ];
    let lines: Vec<String> = rows
        .iter()
        .map(|(prompt, task)| format!("{{\"prompt\": \"{prompt}\", \"task_type\": \"{task}\"}}"))
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn closed_stdout_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let tasks = write_tasks(dir.path());
    // The report has many lines, so a write after the reader has gone
    // fails with a broken pipe.
    let mut child = triage()
        .args(["eval", "--tasks", tasks.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[test]
fn train_rejects_non_finite_rates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.tcw");
    let tasks = write_tasks(dir.path());
    for (flag, value) in [
        ("--learning-rate", "nan"),
        ("--learning-rate", "0"),
        ("--l2", "-1"),
        ("--difficulty-learning-rate", "inf"),
    ] {
        let output = run(triage().args([
            "train",
            "--tasks",
            tasks.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            flag,
            value,
        ]));
        assert!(!output.status.success(), "{flag} {value}");
        assert!(
            stderr(&output).contains(value),
            "{flag} {value}: {}",
            stderr(&output)
        );
        assert!(!out.exists(), "{flag} {value} wrote a file");
    }
}

#[test]
fn route_honours_max_prompt_bytes() {
    let long = "x".repeat(200);
    let output = run(triage().args(["route", "--prompt", &long, "--max-prompt-bytes", "100"]));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--max-prompt-bytes"),
        "{}",
        stderr(&output)
    );
    let output = run(triage().args(["route", "--prompt", &long, "--max-prompt-bytes", "300"]));
    assert!(output.status.success(), "{}", stderr(&output));
}
