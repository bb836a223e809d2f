//! Tests of `triage inject --manifest` and `--print-sidecar`, run as the
//! built binary the way a GitOps pipeline would run it.
//!
//! Set `TRIAGE_UPDATE_GOLDEN=1` to rewrite `workloads.injected.yaml` after a
//! deliberate change, then review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use triage::inject::template::SidecarTemplate;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inject")
        .join(name)
}

fn triage(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn documents(yaml: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(yaml).unwrap();
    serde_saphyr::from_multiple(text).unwrap()
}

#[test]
fn manifest_matches_golden() {
    let input = fixture("workloads.yaml");
    let output = triage(&["inject", "--manifest", input.to_str().unwrap()], None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let golden = fixture("workloads.injected.yaml");
    if std::env::var_os("TRIAGE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &output.stdout).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn manifest_reads_stdin() {
    let input = std::fs::read(fixture("workloads.yaml")).unwrap();
    let from_stdin = triage(&["inject", "--manifest", "-"], Some(&input));
    let path = fixture("workloads.yaml");
    let from_file = triage(&["inject", "--manifest", path.to_str().unwrap()], None);
    assert!(from_stdin.status.success());
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

#[test]
fn manifest_reports_each_template() {
    let path = fixture("workloads.yaml");
    let output = triage(&["inject", "--manifest", path.to_str().unwrap()], None);
    let report = String::from_utf8(output.stderr).unwrap();
    for line in [
        "Pod chat/scratch: injected",
        "Deployment chat/chat-api: injected",
        "StatefulSet chat/memory-store: injected",
        "DaemonSet chat/node-agent: injected",
        "Job chat/nightly-eval: injected",
        "CronJob chat/digest: injected",
        "ReplicaSet chat/canary: not requested",
        "Deployment chat/batch-export: opted out",
        "PodTemplate chat/worker: injected",
    ] {
        assert!(report.contains(line), "missing {line:?} in:\n{report}");
    }
}

#[test]
fn manifest_all_injects_unannotated() {
    let path = fixture("workloads.yaml");
    let output = triage(
        &["inject", "--all", "--manifest", path.to_str().unwrap()],
        None,
    );
    let docs = documents(&output.stdout);
    let canary = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "canary")
        .unwrap();
    let status = &canary["spec"]["template"]["metadata"]["annotations"]["triage.dev/status"];
    assert_eq!(status, "injected");

    let export = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "batch-export")
        .unwrap();
    let init = &export["spec"]["template"]["spec"]["initContainers"];
    assert!(init.is_null(), "opted-out template was injected: {init}");
}

#[test]
fn injected_manifest_is_stable() {
    let path = fixture("workloads.yaml");
    let once = triage(
        &["inject", "--all", "--manifest", path.to_str().unwrap()],
        None,
    );
    let twice = triage(&["inject", "--all", "--manifest", "-"], Some(&once.stdout));
    assert!(twice.status.success());
    assert_eq!(documents(&once.stdout), documents(&twice.stdout));
}

#[test]
fn service_left_unchanged() {
    let path = fixture("workloads.yaml");
    let input = documents(&std::fs::read(&path).unwrap());
    let output = triage(&["inject", "--manifest", path.to_str().unwrap()], None);
    let output = documents(&output.stdout);
    assert_eq!(input.len(), output.len());

    let is_service = |doc: &&Value| doc["kind"] == "Service";
    let service_in = input.iter().find(is_service).unwrap();
    let service_out = output.iter().find(is_service).unwrap();
    assert_eq!(service_in, service_out);
}

#[test]
fn invalid_annotation_fails_manifest() {
    let yaml = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    triage.dev/inject: \"true\"\n    triage.dev/cpu-limit: lots\nspec:\n  containers:\n    - name: a\n      image: a\n";
    let output = triage(&["inject", "--manifest", "-"], Some(yaml));
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Pod p"), "{stderr}");
    assert!(stderr.contains("triage.dev/cpu-limit"), "{stderr}");
}

#[test]
fn printed_sidecar_matches_chart_file() {
    let output = triage(&["inject", "--print-sidecar"], None);
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let printed = SidecarTemplate::parse(&printed, "printed").unwrap();

    let chart_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/triage/files/sidecar.yaml");
    let chart = SidecarTemplate::load(&chart_file).unwrap();
    assert_eq!(printed, chart);
}

#[test]
fn template_flag_replaces_built_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sidecar.yaml");
    let text = triage::inject::template::BUILT_IN.replace(
        "ghcr.io/triage-dev/triage:0.1.0",
        "registry.example/triage:custom",
    );
    std::fs::write(&path, text).unwrap();

    let output = triage(
        &[
            "inject",
            "--print-sidecar",
            "--template",
            path.to_str().unwrap(),
        ],
        None,
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains("registry.example/triage:custom"),
        "{printed}"
    );
}

#[test]
fn missing_tls_flags_explained() {
    let output = triage(&["inject", "--listen", "127.0.0.1:0"], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}

#[test]
fn chart_policy_matches_embedded_policy() {
    let chart_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/triage/files/policy.yaml");
    let chart = std::fs::read_to_string(chart_file).unwrap();
    assert!(
        chart == triage::policy::EMBEDDED_POLICY,
        "deploy/helm/triage/files/policy.yaml differs from policies/default.yaml; copy it over"
    );
}
