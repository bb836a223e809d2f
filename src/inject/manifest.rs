//! Offline injection for GitOps: reads Kubernetes YAML, injects every pod
//! template with the same [`plan`](crate::inject::patch::plan) the webhook
//! runs, and writes the documents back as YAML.
//!
//! NOTE: the output drops comments, because documents pass through
//! `serde_json::Value` (which keeps key order: serde_json's `preserve_order`
//! feature is on).

use serde_json::Value;

use crate::inject::patch::{self, InjectConfig, Plan, PlanError, Scope};

/// A manifest that cannot be read or injected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid YAML: {0}")]
    Parse(String),
    #[error("{object}: {source}")]
    Object { object: String, source: PlanError },
    #[error("{object}: failed to apply the patch: {message}")]
    Apply { object: String, message: String },
    #[error("failed to write YAML: {0}")]
    Render(#[from] serde_yaml_ng::Error),
}

/// The injected manifest and one line per pod template found.
#[derive(Debug)]
pub struct Injected {
    pub yaml: String,
    pub report: Vec<String>,
}

/// Injects every pod template in the YAML documents of `text`.
pub fn inject(text: &str, config: &InjectConfig, scope: Scope) -> Result<Injected, ManifestError> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|err| ManifestError::Parse(err.to_string()))?;

    let mut report = Vec::new();
    let mut out = Vec::new();
    for mut document in documents.into_iter().filter(|doc| !doc.is_null()) {
        inject_object(&mut document, config, scope, &mut report)?;
        out.push(serde_yaml_ng::to_string(&document)?);
    }
    Ok(Injected {
        yaml: out.join("---\n"),
        report,
    })
}

fn inject_object(
    object: &mut Value,
    config: &InjectConfig,
    scope: Scope,
    report: &mut Vec<String>,
) -> Result<(), ManifestError> {
    let name = describe(object);
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            inject_object(item, config, scope, report)?;
        }
        return Ok(());
    }
    let Some(template) = pod_template_pointer(object).and_then(|p| object.pointer_mut(p)) else {
        return Ok(());
    };

    let plan = patch::plan(template, config, scope).map_err(|source| ManifestError::Object {
        object: name.clone(),
        source,
    })?;
    match plan {
        Plan::Skip(reason) => report.push(format!("{name}: {reason}")),
        Plan::Inject { patch, warnings } => {
            json_patch::patch(template, &patch.0).map_err(|err| ManifestError::Apply {
                object: name.clone(),
                message: err.to_string(),
            })?;
            report.push(format!("{name}: injected"));
            report.extend(
                warnings
                    .into_iter()
                    .map(|w| format!("{name}: warning: {w}")),
            );
        }
    }
    Ok(())
}

/// Returns where the pod template sits in an object of a workload kind, or
/// `None` for other kinds. A Pod is its own template.
fn pod_template_pointer(object: &Value) -> Option<&'static str> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    match (api_version, kind) {
        ("v1", "Pod") => Some(""),
        ("v1", "PodTemplate") => Some("/template"),
        ("v1", "ReplicationController") => Some("/spec/template"),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            Some("/spec/template")
        }
        ("batch/v1", "Job") => Some("/spec/template"),
        ("batch/v1", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

fn describe(object: &Value) -> String {
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let kind = field("/kind").unwrap_or("object");
    let name = field("/metadata/name").unwrap_or("(unnamed)");
    match field("/metadata/namespace") {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}
