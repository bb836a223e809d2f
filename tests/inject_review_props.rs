//! Property tests: the webhook responds to every input with a well-formed
//! AdmissionReview and never panics, and every patch it returns applies to
//! the pod it was made for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};
use triage::inject::SidecarMode;
use triage::inject::patch::{InjectConfig, Scope};
use triage::inject::review;
use triage::inject::template::SidecarTemplate;

fn config() -> InjectConfig {
    InjectConfig {
        template: SidecarTemplate::built_in().unwrap(),
        mode: SidecarMode::Native,
        drain_margin_seconds: 5,
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z/.-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_owned()),
                    Just("spec".to_owned()),
                    Just("containers".to_owned()),
                    Just("annotations".to_owned()),
                    Just("name".to_owned()),
                    Just("volumes".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn annotation_key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("triage.dev/inject".to_owned()),
        Just("triage.dev/image".to_owned()),
        Just("triage.dev/log-level".to_owned()),
        Just("triage.dev/cpu-request".to_owned()),
        Just("triage.dev/cpu-limit".to_owned()),
        Just("triage.dev/memory-request".to_owned()),
        Just("triage.dev/memory-limit".to_owned()),
        Just("triage.dev/policy-configmap".to_owned()),
        Just("triage.dev/sidecar-mode".to_owned()),
        Just("triage.dev/status".to_owned()),
        "[a-z.]{1,10}/[a-z-]{1,10}",
    ]
}

fn annotation_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("container".to_owned()),
        Just("debug".to_owned()),
        "[0-9]{1,4}(m|Mi|Gi|k|e3)?",
        ".{0,12}",
    ]
}

fn pod_review(object: Value) -> Vec<u8> {
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee00-0000-4000-8000-000000000001",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": { "username": "test" },
            "object": object
        }
    });
    serde_json::to_vec(&review).unwrap()
}

fn decode_response(json: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(json).expect("response is JSON");
    assert_eq!(review["kind"], "AdmissionReview");
    assert!(review["response"]["allowed"].is_boolean());
    review["response"].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_allowed(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let result = review::respond(&body, &config(), Scope::Pod);
        let response = decode_response(&result.json);
        prop_assert_eq!(&response["allowed"], &json!(true));
    }

    #[test]
    fn any_object_gets_response(object in any_json(), namespace_scope in any::<bool>()) {
        let scope = if namespace_scope { Scope::Namespace } else { Scope::Pod };
        let result = review::respond(&pod_review(object), &config(), scope);
        let response = decode_response(&result.json);
        prop_assert_eq!(&response["uid"], &json!("c0ffee00-0000-4000-8000-000000000001"));
    }

    #[test]
    fn patches_apply_to_their_pod(
        annotations in prop::collection::btree_map(annotation_key(), annotation_value(), 0..6),
        grace in prop::option::of(-5i64..100_000),
        containers in 1usize..4,
    ) {
        let containers: Vec<Value> = (0..containers)
            .map(|i| json!({ "name": format!("app-{i}"), "image": "app:1" }))
            .collect();
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "p", "annotations": annotations },
            "spec": { "containers": containers }
        });
        if let Some(grace) = grace {
            pod["spec"]["terminationGracePeriodSeconds"] = json!(grace);
        }

        let result = review::respond(&pod_review(pod.clone()), &config(), Scope::Namespace);
        let response = decode_response(&result.json);
        if let Some(encoded) = response["patch"].as_str() {
            let bytes = BASE64_STANDARD.decode(encoded).unwrap();
            let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
            json_patch::patch(&mut pod, &patch.0).unwrap();
            prop_assert_eq!(&pod["metadata"]["annotations"]["triage.dev/status"], &json!("injected"));
        } else if response["allowed"] == json!(false) {
            let message = response["status"]["message"].as_str().unwrap();
            prop_assert!(message.contains("triage.dev/"), "{}", message);
        }
    }
}
