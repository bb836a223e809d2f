use serde_json::json;

use super::*;

fn config() -> InjectConfig {
    InjectConfig {
        template: SidecarTemplate::built_in().unwrap(),
        mode: SidecarMode::Native,
        drain_margin_seconds: 5,
    }
}

fn opted_in_pod() -> Value {
    json!({
        "metadata": { "annotations": { "triage.dev/inject": "true" } },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] }
    })
}

fn injected(pod: &Value, scope: Scope) -> Value {
    let Plan::Inject { patch, .. } = plan(pod, &config(), scope).unwrap() else {
        panic!("expected injection");
    };
    let mut pod = pod.clone();
    json_patch::patch(&mut pod, &patch.0).unwrap();
    pod
}

fn skip_reason(pod: &Value, scope: Scope) -> SkipReason {
    match plan(pod, &config(), scope).unwrap() {
        Plan::Skip(reason) => reason,
        Plan::Inject { .. } => panic!("expected a skip"),
    }
}

#[test]
fn injected_pod_has_sidecar_and_mounts() {
    let pod = injected(&opted_in_pod(), Scope::Pod);
    assert_eq!(pod["spec"]["initContainers"][0]["name"], "triage");
    assert_eq!(pod["spec"]["initContainers"][0]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["volumes"][0]["name"], "triage-sockets");
    let app = &pod["spec"]["containers"][0];
    assert_eq!(app["volumeMounts"][0]["mountPath"], "/var/run/triage");
    assert_eq!(app["env"][0]["name"], "TRIAGE_GRPC_SOCKET");
    assert_eq!(
        pod["metadata"]["annotations"]["triage.dev/status"],
        "injected"
    );
}

#[test]
fn injecting_twice_changes_nothing() {
    let once = injected(&opted_in_pod(), Scope::Pod);
    assert_eq!(skip_reason(&once, Scope::Pod), SkipReason::AlreadyInjected);
    assert_eq!(
        skip_reason(&once, Scope::Namespace),
        SkipReason::AlreadyInjected
    );
}

#[test]
fn template_without_metadata_injected() {
    let pod = json!({ "spec": { "containers": [{ "name": "app", "image": "app:1" }] } });
    let pod = injected(&pod, Scope::Namespace);
    assert_eq!(
        pod["metadata"]["annotations"]["triage.dev/status"],
        "injected"
    );
}

#[test]
fn opt_in_rules_by_scope() {
    let plain = json!({ "spec": { "containers": [{ "name": "app" }] } });
    assert_eq!(skip_reason(&plain, Scope::Pod), SkipReason::NotRequested);

    let mut opted_out = opted_in_pod();
    opted_out["metadata"]["annotations"]["triage.dev/inject"] = json!("false");
    assert_eq!(
        skip_reason(&opted_out, Scope::Namespace),
        SkipReason::OptedOut
    );
    assert_eq!(skip_reason(&opted_out, Scope::Pod), SkipReason::OptedOut);
}

#[test]
fn opted_out_pod_ignores_bad_overrides() {
    let pod = json!({
        "metadata": { "annotations": {
            "triage.dev/inject": "false",
            "triage.dev/cpu-limit": "lots"
        } },
        "spec": { "containers": [{ "name": "app" }] }
    });
    assert_eq!(skip_reason(&pod, Scope::Namespace), SkipReason::OptedOut);
}

#[test]
fn host_network_pod_skipped() {
    let mut pod = opted_in_pod();
    pod["spec"]["hostNetwork"] = json!(true);
    let reason = skip_reason(&pod, Scope::Pod);
    assert_eq!(reason, SkipReason::HostNetwork);
    assert!(reason.is_problem());
}

#[test]
fn taken_names_skipped() {
    let mut pod = opted_in_pod();
    pod["spec"]["containers"][0]["name"] = json!("triage");
    assert!(matches!(
        skip_reason(&pod, Scope::Pod),
        SkipReason::NameTaken(_)
    ));

    let mut pod = opted_in_pod();
    pod["spec"]["volumes"] = json!([{ "name": "triage-policy", "emptyDir": {} }]);
    let reason = skip_reason(&pod, Scope::Pod);
    assert!(reason.to_string().contains("triage-policy"), "{reason}");
}

#[test]
fn existing_mount_path_kept_with_warning() {
    let mut pod = opted_in_pod();
    pod["spec"]["volumes"] = json!([{ "name": "own", "emptyDir": {} }]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{ "name": "own", "mountPath": "/var/run/triage" }]);

    let Plan::Inject { patch, warnings } = plan(&pod, &config(), Scope::Pod).unwrap() else {
        panic!("expected injection");
    };
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("/var/run/triage"), "{}", warnings[0]);

    json_patch::patch(&mut pod, &patch.0).unwrap();
    let mounts = pod["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0]["name"], "own");
}

#[test]
fn existing_env_kept() {
    let mut pod = opted_in_pod();
    pod["spec"]["containers"][0]["env"] =
        json!([{ "name": "TRIAGE_GRPC_SOCKET", "value": "/elsewhere.sock" }]);
    let pod = injected(&pod, Scope::Pod);
    let env = pod["spec"]["containers"][0]["env"].as_array().unwrap();
    let socket: Vec<_> = env
        .iter()
        .filter(|e| e["name"] == "TRIAGE_GRPC_SOCKET")
        .collect();
    assert_eq!(socket.len(), 1);
    assert_eq!(socket[0]["value"], "/elsewhere.sock");
    assert_eq!(env.len(), 3);
}

#[test]
fn container_mode_appends_container() {
    let mut pod = opted_in_pod();
    pod["metadata"]["annotations"]["triage.dev/sidecar-mode"] = json!("container");
    let pod = injected(&pod, Scope::Pod);
    assert_eq!(pod["spec"]["containers"][0]["name"], "app");
    assert_eq!(pod["spec"]["containers"][1]["name"], "triage");
    assert!(pod["spec"]["containers"][1].get("restartPolicy").is_none());
    assert!(pod["spec"].get("initContainers").is_none());
}

#[test]
fn grace_period_sets_drain() {
    let mut pod = opted_in_pod();
    pod["spec"]["terminationGracePeriodSeconds"] = json!(120);
    let pod = injected(&pod, Scope::Pod);
    let env = pod["spec"]["initContainers"][0]["env"].as_array().unwrap();
    let drain = env
        .iter()
        .find(|e| e["name"] == "TRIAGE_DRAIN_SECONDS")
        .unwrap();
    assert_eq!(drain["value"], "115");
}

#[test]
fn malformed_pods_are_errors() {
    let cases = [
        json!("a string"),
        json!({ "metadata": { "annotations": { "triage.dev/inject": "true" } } }),
        json!({ "metadata": { "annotations": { "triage.dev/inject": true } }, "spec": {} }),
        json!({ "metadata": {}, "spec": { "containers": "app" } }),
    ];
    for pod in cases {
        let result = plan(&pod, &config(), Scope::Namespace);
        assert!(
            matches!(result, Err(PlanError::InvalidPod(_))),
            "{pod}: {result:?}"
        );
    }
}

#[test]
fn invalid_inject_value_is_error() {
    let mut pod = opted_in_pod();
    pod["metadata"]["annotations"]["triage.dev/inject"] = json!("yes");
    let result = plan(&pod, &config(), Scope::Pod);
    assert!(
        matches!(result, Err(PlanError::InvalidAnnotation(_))),
        "{result:?}"
    );
}
