//! Fills in the sidecar template for one pod: image, resources, log level,
//! drain deadline, policy ConfigMap and sidecar mode.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::inject::SidecarMode;
use crate::inject::overrides::{self, InvalidAnnotation, Overrides};
use crate::inject::quantity;
use crate::inject::template::{DRAIN_SECONDS_ENV, LOG_LEVEL_ENV, POLICY_VOLUME, SidecarTemplate};

/// The grace period Kubernetes gives a pod that does not set
/// `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE_SECONDS: i64 = 30;

/// Returns the sidecar's drain deadline: the pod's termination grace period
/// minus `margin`, so the server stops before the kubelet kills it. Short
/// grace periods get half of the period instead.
pub fn drain_seconds(grace: Option<i64>, margin: i64) -> i64 {
    let grace = grace.unwrap_or(DEFAULT_GRACE_SECONDS).max(0);
    if grace > 2 * margin {
        grace - margin
    } else {
        grace / 2
    }
}

/// Renders the triage container for one pod.
pub fn sidecar(
    template: &SidecarTemplate,
    overrides: &Overrides,
    mode: SidecarMode,
    drain_seconds: i64,
) -> Result<Container, InvalidAnnotation> {
    let mut container = template.container.clone();
    if let Some(image) = &overrides.image {
        container.image = Some(image.clone());
    }
    if let Some(level) = &overrides.log_level {
        set_env(&mut container, LOG_LEVEL_ENV, level);
    }
    set_env(
        &mut container,
        DRAIN_SECONDS_ENV,
        &drain_seconds.to_string(),
    );

    set_resources(&mut container, overrides);
    check_requests_within_limits(&container)?;

    // An init container with restartPolicy Always is a native sidecar: it
    // starts before the application containers and stops after them.
    if mode == SidecarMode::Native {
        container.restart_policy = Some("Always".to_owned());
    }
    Ok(container)
}

/// Renders the pod volumes, pointing the policy volume at the pod's
/// ConfigMap.
pub fn volumes(template: &SidecarTemplate, overrides: &Overrides) -> Vec<Volume> {
    let mut volumes = template.volumes.clone();
    let Some(name) = &overrides.policy_config_map else {
        return volumes;
    };

    for volume in volumes.iter_mut().filter(|v| v.name == POLICY_VOLUME) {
        if let Some(config_map) = volume.config_map.as_mut() {
            config_map.name = name.clone();
        }
    }
    volumes
}

fn set_env(container: &mut Container, name: &str, value: &str) {
    let env = container.env.get_or_insert_default();
    match env.iter_mut().find(|var| var.name == name) {
        Some(var) => {
            var.value = Some(value.to_owned());
            var.value_from = None;
        }
        None => env.push(EnvVar {
            name: name.to_owned(),
            value: Some(value.to_owned()),
            ..EnvVar::default()
        }),
    }
}

fn set_resources(container: &mut Container, overrides: &Overrides) {
    let resources = container.resources.get_or_insert_default();
    let requests = resources.requests.get_or_insert_default();
    set_quantity(requests, "cpu", &overrides.cpu_request);
    set_quantity(requests, "memory", &overrides.memory_request);

    let limits = resources.limits.get_or_insert_default();
    set_quantity(limits, "cpu", &overrides.cpu_limit);
    set_quantity(limits, "memory", &overrides.memory_limit);
}

fn set_quantity(map: &mut BTreeMap<String, Quantity>, resource: &str, value: &Option<String>) {
    if let Some(value) = value {
        map.insert(resource.to_owned(), Quantity(value.clone()));
    }
}

/// Rejects a request above its limit here, with the annotation to fix,
/// because the API server would reject the pod with a less specific message.
fn check_requests_within_limits(container: &Container) -> Result<(), InvalidAnnotation> {
    let Some(resources) = &container.resources else {
        return Ok(());
    };
    let empty = BTreeMap::new();
    let requests = resources.requests.as_ref().unwrap_or(&empty);
    let limits = resources.limits.as_ref().unwrap_or(&empty);

    let pairs = [
        ("cpu", overrides::CPU_REQUEST, overrides::CPU_LIMIT),
        ("memory", overrides::MEMORY_REQUEST, overrides::MEMORY_LIMIT),
    ];
    for (resource, request_key, limit_key) in pairs {
        let (Some(request), Some(limit)) = (requests.get(resource), limits.get(resource)) else {
            continue;
        };
        let (Some(request_value), Some(limit_value)) =
            (quantity::to_f64(&request.0), quantity::to_f64(&limit.0))
        else {
            continue;
        };
        if request_value > limit_value {
            return Err(InvalidAnnotation {
                key: request_key.to_owned(),
                value: request.0.clone(),
                reason: format!(
                    "the {resource} request is above the limit {}; raise {limit_key} too",
                    limit.0
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> SidecarTemplate {
        SidecarTemplate::built_in().unwrap()
    }

    fn env_value(container: &Container, name: &str) -> Option<String> {
        let env = container.env.as_ref()?;
        env.iter().find(|var| var.name == name)?.value.clone()
    }

    #[test]
    fn drain_leaves_a_margin() {
        assert_eq!(drain_seconds(None, 5), 25);
        assert_eq!(drain_seconds(Some(60), 5), 55);
        assert_eq!(drain_seconds(Some(8), 5), 4);
        assert_eq!(drain_seconds(Some(0), 5), 0);
        assert_eq!(drain_seconds(Some(-3), 5), 0);
    }

    #[test]
    fn native_sidecar_restarts_always() {
        let container = sidecar(&template(), &Overrides::default(), SidecarMode::Native, 25);
        let container = container.unwrap();
        assert_eq!(container.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            env_value(&container, DRAIN_SECONDS_ENV).as_deref(),
            Some("25")
        );
    }

    #[test]
    fn regular_container_has_no_restart_policy() {
        let container = sidecar(
            &template(),
            &Overrides::default(),
            SidecarMode::Container,
            9,
        );
        let container = container.unwrap();
        assert_eq!(container.restart_policy, None);
        assert_eq!(
            env_value(&container, DRAIN_SECONDS_ENV).as_deref(),
            Some("9")
        );
    }

    #[test]
    fn overrides_replace_defaults() {
        let overrides = Overrides {
            image: Some("registry.example/triage:2".to_owned()),
            log_level: Some("debug".to_owned()),
            memory_limit: Some("1Gi".to_owned()),
            ..Overrides::default()
        };
        let container = sidecar(&template(), &overrides, SidecarMode::Native, 25).unwrap();
        assert_eq!(
            container.image.as_deref(),
            Some("registry.example/triage:2")
        );
        assert_eq!(
            env_value(&container, LOG_LEVEL_ENV).as_deref(),
            Some("debug")
        );
        let limits = container.resources.unwrap().limits.unwrap();
        assert_eq!(limits["memory"], Quantity("1Gi".to_owned()));
    }

    #[test]
    fn request_above_limit_rejected() {
        let overrides = Overrides {
            cpu_request: Some("2".to_owned()),
            ..Overrides::default()
        };
        let err = sidecar(&template(), &overrides, SidecarMode::Native, 25).unwrap_err();
        assert_eq!(err.key, overrides::CPU_REQUEST);
        assert!(err.reason.contains(overrides::CPU_LIMIT), "{err}");
    }

    #[test]
    fn policy_volume_uses_override() {
        let overrides = Overrides {
            policy_config_map: Some("team-policy".to_owned()),
            ..Overrides::default()
        };
        let volumes = volumes(&template(), &overrides);
        let policy = volumes.iter().find(|v| v.name == POLICY_VOLUME).unwrap();
        assert_eq!(policy.config_map.as_ref().unwrap().name, "team-policy");
    }
}
