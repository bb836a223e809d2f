//! Decides whether and how to inject one pod, and writes the change as a
//! JSON Patch (RFC 6902) against the pod as received.
//!
//! The patch only adds: it never rewrites a field the pod already has, so it
//! applies cleanly after other mutating webhooks and keeps the pod's own
//! settings.

use std::collections::BTreeMap;
use std::fmt;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inject::SidecarMode;
use crate::inject::overrides::{self, InvalidAnnotation};
use crate::inject::render;
use crate::inject::template::SidecarTemplate;

/// Settings shared by every pod the injector handles.
#[derive(Clone, Debug)]
pub struct InjectConfig {
    pub template: SidecarTemplate,
    /// The sidecar mode for pods that do not choose one by annotation.
    pub mode: SidecarMode,
    /// Seconds between the end of the sidecar's drain and the end of the
    /// pod's termination grace period.
    pub drain_margin_seconds: i64,
}

/// The opt-in rule that applies to a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only pods annotated `triage.dev/inject: "true"` are injected.
    Pod,
    /// The namespace opted in: every pod is injected unless it is annotated
    /// `triage.dev/inject: "false"`.
    Namespace,
}

/// The injector's decision for one pod.
#[derive(Clone, Debug, PartialEq)]
pub enum Plan {
    Skip(SkipReason),
    Inject {
        patch: Patch,
        /// Problems that did not stop injection, for the API client.
        warnings: Vec<String>,
    },
}

/// The reason a pod is left as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    AlreadyInjected,
    OptedOut,
    NotRequested,
    HostNetwork,
    NameTaken(String),
}

impl SkipReason {
    /// True when the pod asked for injection but cannot get it, so the
    /// reason goes back to the API client as a warning.
    pub fn is_problem(&self) -> bool {
        matches!(self, SkipReason::HostNetwork | SkipReason::NameTaken(_))
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::AlreadyInjected => {
                write!(f, "already injected ({} is set)", overrides::STATUS)
            }
            SkipReason::OptedOut => write!(f, "opted out with {}: \"false\"", overrides::INJECT),
            SkipReason::NotRequested => {
                write!(f, "not requested: {} is not \"true\"", overrides::INJECT)
            }
            SkipReason::HostNetwork => f.write_str(
                "the pod uses the host network, where the sidecar's admin port would clash \
                 with other pods on the node",
            ),
            SkipReason::NameTaken(what) => f.write_str(what),
        }
    }
}

/// A pod the injector cannot handle.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    InvalidAnnotation(#[from] InvalidAnnotation),
    #[error("invalid pod: {0}")]
    InvalidPod(String),
    #[error("failed to encode the patch: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The parts of a pod, or of a pod template, that the injector reads.
#[derive(Deserialize)]
struct PodView {
    metadata: Option<ObjectMeta>,
    spec: Option<PodSpec>,
}

/// Decides what to do with `pod` (a Pod or a pod template, as JSON) and
/// returns the patch that injects it.
pub fn plan(pod: &Value, config: &InjectConfig, scope: Scope) -> Result<Plan, PlanError> {
    let view = PodView::deserialize(pod).map_err(|err| PlanError::InvalidPod(err.to_string()))?;
    let annotations = view
        .metadata
        .as_ref()
        .and_then(|meta| meta.annotations.clone())
        .unwrap_or_default();
    if let Some(reason) = opt_in_skip(&annotations, scope)? {
        return Ok(Plan::Skip(reason));
    }

    let spec = view
        .spec
        .ok_or_else(|| PlanError::InvalidPod("the pod has no spec".to_owned()))?;
    if let Some(reason) = conflict_skip(&spec, &config.template) {
        return Ok(Plan::Skip(reason));
    }

    let overrides = overrides::read(&annotations)?;
    let mode = overrides.mode.unwrap_or(config.mode);
    let drain = render::drain_seconds(
        spec.termination_grace_period_seconds,
        config.drain_margin_seconds,
    );
    let sidecar = render::sidecar(&config.template, &overrides, mode, drain)?;
    let volumes = render::volumes(&config.template, &overrides);

    let mut writer = PatchWriter::default();
    writer.mark_injected(view.metadata.as_ref());
    writer.append(&["spec", "volumes"], spec.volumes.is_some(), &volumes)?;
    add_sidecar(&mut writer, &spec, &sidecar, mode)?;
    for (index, container) in spec.containers.iter().enumerate() {
        add_application(&mut writer, index, container, &config.template)?;
    }

    Ok(Plan::Inject {
        patch: Patch(writer.operations),
        warnings: writer.warnings,
    })
}

fn opt_in_skip(
    annotations: &BTreeMap<String, String>,
    scope: Scope,
) -> Result<Option<SkipReason>, InvalidAnnotation> {
    if annotations.contains_key(overrides::STATUS) {
        return Ok(Some(SkipReason::AlreadyInjected));
    }
    match (overrides::inject_requested(annotations)?, scope) {
        (Some(false), _) => Ok(Some(SkipReason::OptedOut)),
        (None, Scope::Pod) => Ok(Some(SkipReason::NotRequested)),
        (Some(true), _) | (None, Scope::Namespace) => Ok(None),
    }
}

/// Finds what would make the injected pod invalid or ambiguous: a name the
/// template uses that the pod already has, or the host network.
fn conflict_skip(spec: &PodSpec, template: &SidecarTemplate) -> Option<SkipReason> {
    if spec.host_network == Some(true) {
        return Some(SkipReason::HostNetwork);
    }

    let name = &template.container.name;
    let init = spec.init_containers.as_deref().unwrap_or_default();
    if spec.containers.iter().chain(init).any(|c| &c.name == name) {
        return Some(SkipReason::NameTaken(format!(
            "a container named {name} already exists"
        )));
    }

    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let taken_volume = template
        .volume_names()
        .find(|name| volumes.iter().any(|v| v.name == *name));
    taken_volume.map(|name| SkipReason::NameTaken(format!("a volume named {name} already exists")))
}

fn add_sidecar(
    writer: &mut PatchWriter,
    spec: &PodSpec,
    sidecar: &Container,
    mode: SidecarMode,
) -> Result<(), PlanError> {
    let sidecar = std::slice::from_ref(sidecar);
    match mode {
        // Appended after the pod's own init containers, so those finish
        // before the sidecar starts, and the application containers wait for
        // its startup probe.
        SidecarMode::Native => {
            let exists = spec.init_containers.is_some();
            writer.append(&["spec", "initContainers"], exists, sidecar)
        }
        // Appended last, so the first container stays the default for
        // `kubectl logs` and `kubectl exec`.
        SidecarMode::Container => writer.append(&["spec", "containers"], true, sidecar),
    }
}

/// Mounts the socket directory into one application container and adds the
/// environment variables that locate the sockets. A mount path or variable
/// the container already sets is kept as the container has it.
fn add_application(
    writer: &mut PatchWriter,
    index: usize,
    container: &Container,
    template: &SidecarTemplate,
) -> Result<(), PlanError> {
    let index = index.to_string();
    let existing_mounts = container.volume_mounts.as_deref().unwrap_or_default();
    let mut mounts = Vec::new();
    for mount in &template.application.volume_mounts {
        if existing_mounts
            .iter()
            .any(|m| m.mount_path == mount.mount_path)
        {
            writer.warnings.push(format!(
                "container {} already mounts {}; the triage sockets are not mounted there",
                container.name, mount.mount_path
            ));
        } else {
            mounts.push(mount.clone());
        }
    }
    let path = ["spec", "containers", &index, "volumeMounts"];
    writer.append(&path, container.volume_mounts.is_some(), &mounts)?;

    let existing_env = container.env.as_deref().unwrap_or_default();
    let env: Vec<_> = template
        .application
        .env
        .iter()
        .filter(|var| !existing_env.iter().any(|e| e.name == var.name))
        .cloned()
        .collect();
    let path = ["spec", "containers", &index, "env"];
    writer.append(&path, container.env.is_some(), &env)
}

#[derive(Default)]
struct PatchWriter {
    operations: Vec<PatchOperation>,
    warnings: Vec<String>,
}

impl PatchWriter {
    fn add(&mut self, tokens: &[&str], value: Value) {
        let path = PointerBuf::from_tokens(tokens.iter().copied());
        self.operations
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// Appends `items` to the array at `tokens`, creating the array when the
    /// pod does not have it.
    fn append<T: Serialize>(
        &mut self,
        tokens: &[&str],
        exists: bool,
        items: &[T],
    ) -> Result<(), PlanError> {
        if items.is_empty() {
            return Ok(());
        }
        if !exists {
            self.add(tokens, serde_json::to_value(items)?);
            return Ok(());
        }

        let mut item_path = tokens.to_vec();
        item_path.push("-");
        for item in items {
            self.add(&item_path, serde_json::to_value(item)?);
        }
        Ok(())
    }

    fn mark_injected(&mut self, metadata: Option<&ObjectMeta>) {
        let key = overrides::STATUS;
        let value = Value::from(overrides::STATUS_INJECTED);
        let annotations = serde_json::json!({ key: value.clone() });
        match metadata {
            None => self.add(
                &["metadata"],
                serde_json::json!({ "annotations": annotations }),
            ),
            Some(meta) if meta.annotations.is_none() => {
                self.add(&["metadata", "annotations"], annotations);
            }
            Some(_) => self.add(&["metadata", "annotations", key], value),
        }
    }
}

#[cfg(test)]
mod tests;
