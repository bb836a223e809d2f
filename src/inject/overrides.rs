//! The `triage.dev/*` pod annotations: opting in or out, and per-pod
//! overrides of the sidecar's image, policy, resources and log level.

use std::collections::BTreeMap;

use crate::inject::SidecarMode;
use crate::inject::quantity;

/// `"true"` opts a pod in, `"false"` opts it out, even in an opted-in
/// namespace.
pub const INJECT: &str = "triage.dev/inject";
/// Set on every injected pod; a pod that has it is left as it is.
pub const STATUS: &str = "triage.dev/status";
/// The value of [`STATUS`] on an injected pod.
pub const STATUS_INJECTED: &str = "injected";
pub const IMAGE: &str = "triage.dev/image";
pub const POLICY_CONFIGMAP: &str = "triage.dev/policy-configmap";
pub const LOG_LEVEL: &str = "triage.dev/log-level";
pub const CPU_REQUEST: &str = "triage.dev/cpu-request";
pub const CPU_LIMIT: &str = "triage.dev/cpu-limit";
pub const MEMORY_REQUEST: &str = "triage.dev/memory-request";
pub const MEMORY_LIMIT: &str = "triage.dev/memory-limit";
/// `native` (an init container with `restartPolicy: Always`, Kubernetes
/// 1.29 and later) or `container` (a regular container, for older clusters).
pub const SIDECAR_MODE: &str = "triage.dev/sidecar-mode";

const KNOWN: [&str; 10] = [
    INJECT,
    STATUS,
    IMAGE,
    POLICY_CONFIGMAP,
    LOG_LEVEL,
    CPU_REQUEST,
    CPU_LIMIT,
    MEMORY_REQUEST,
    MEMORY_LIMIT,
    SIDECAR_MODE,
];

/// The log levels `triage serve --log-level` accepts.
const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// Per-pod settings read from annotations; `None` keeps the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub image: Option<String>,
    pub policy_config_map: Option<String>,
    pub log_level: Option<String>,
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    pub mode: Option<SidecarMode>,
}

/// An annotation whose value the injector cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid annotation {key}={value:?}: {reason}")]
pub struct InvalidAnnotation {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Reads the opt-in annotation. `None` means the pod does not set it, so the
/// namespace's choice applies.
pub fn inject_requested(
    annotations: &BTreeMap<String, String>,
) -> Result<Option<bool>, InvalidAnnotation> {
    match annotations.get(INJECT).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(invalid(INJECT, other, "expected \"true\" or \"false\"")),
    }
}

/// Reads and checks every override annotation. An unknown `triage.dev/`
/// key is an error, so that a misspelt override is not silently ignored.
pub fn read(annotations: &BTreeMap<String, String>) -> Result<Overrides, InvalidAnnotation> {
    for (key, value) in annotations {
        if key.starts_with("triage.dev/") && !KNOWN.contains(&key.as_str()) {
            let known = KNOWN.join(", ");
            return Err(invalid(
                key,
                value,
                &format!("unknown key; known keys: {known}"),
            ));
        }
    }

    let get = |key: &str| annotations.get(key).map(String::as_str);
    Ok(Overrides {
        image: get(IMAGE).map(check_image).transpose()?,
        policy_config_map: get(POLICY_CONFIGMAP).map(check_config_map).transpose()?,
        log_level: get(LOG_LEVEL).map(check_log_level).transpose()?,
        cpu_request: get(CPU_REQUEST)
            .map(|v| check_quantity(CPU_REQUEST, v))
            .transpose()?,
        cpu_limit: get(CPU_LIMIT)
            .map(|v| check_quantity(CPU_LIMIT, v))
            .transpose()?,
        memory_request: get(MEMORY_REQUEST)
            .map(|v| check_quantity(MEMORY_REQUEST, v))
            .transpose()?,
        memory_limit: get(MEMORY_LIMIT)
            .map(|v| check_quantity(MEMORY_LIMIT, v))
            .transpose()?,
        mode: get(SIDECAR_MODE).map(check_mode).transpose()?,
    })
}

fn invalid(key: &str, value: &str, reason: &str) -> InvalidAnnotation {
    InvalidAnnotation {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn check_image(value: &str) -> Result<String, InvalidAnnotation> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(invalid(
            IMAGE,
            value,
            "expected an image reference without spaces",
        ));
    }
    Ok(value.to_owned())
}

/// Checks a ConfigMap name against the DNS subdomain rule of RFC 1123, the
/// rule the API server applies to object names.
fn check_config_map(value: &str) -> Result<String, InvalidAnnotation> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = value.len() <= 253
        && value.chars().all(allowed)
        && ends_ok(value.chars().next())
        && ends_ok(value.chars().last());

    if !valid {
        let reason = "expected a ConfigMap name: lowercase letters, digits, '-' and '.'";
        return Err(invalid(POLICY_CONFIGMAP, value, reason));
    }
    Ok(value.to_owned())
}

fn check_log_level(value: &str) -> Result<String, InvalidAnnotation> {
    if !LOG_LEVELS.contains(&value) {
        let reason = format!("expected one of {}", LOG_LEVELS.join(", "));
        return Err(invalid(LOG_LEVEL, value, &reason));
    }
    Ok(value.to_owned())
}

fn check_quantity(key: &str, value: &str) -> Result<String, InvalidAnnotation> {
    if !quantity::is_valid(value) {
        return Err(invalid(
            key,
            value,
            "expected a quantity such as 250m or 128Mi",
        ));
    }
    Ok(value.to_owned())
}

fn check_mode(value: &str) -> Result<SidecarMode, InvalidAnnotation> {
    value
        .parse()
        .map_err(|_| invalid(SIDECAR_MODE, value, "expected \"native\" or \"container\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn inject_values_parsed() {
        assert_eq!(inject_requested(&annotations(&[])), Ok(None));
        assert_eq!(
            inject_requested(&annotations(&[(INJECT, "true")])),
            Ok(Some(true))
        );
        assert_eq!(
            inject_requested(&annotations(&[(INJECT, "false")])),
            Ok(Some(false))
        );
        assert!(inject_requested(&annotations(&[(INJECT, "yes")])).is_err());
    }

    #[test]
    fn overrides_read_all_keys() {
        let read = read(&annotations(&[
            (IMAGE, "registry.example/triage:2"),
            (POLICY_CONFIGMAP, "team-policy"),
            (LOG_LEVEL, "debug"),
            (CPU_REQUEST, "100m"),
            (MEMORY_LIMIT, "256Mi"),
            (SIDECAR_MODE, "container"),
        ]))
        .unwrap();
        assert_eq!(read.image.as_deref(), Some("registry.example/triage:2"));
        assert_eq!(read.policy_config_map.as_deref(), Some("team-policy"));
        assert_eq!(read.log_level.as_deref(), Some("debug"));
        assert_eq!(read.cpu_request.as_deref(), Some("100m"));
        assert_eq!(read.memory_limit.as_deref(), Some("256Mi"));
        assert_eq!(read.mode, Some(SidecarMode::Container));
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases = [
            (MEMORY_LIMIT, "lots"),
            (LOG_LEVEL, "loud"),
            (POLICY_CONFIGMAP, "Team_Policy"),
            (IMAGE, "a b"),
            (SIDECAR_MODE, "sidecar"),
            ("triage.dev/imgae", "x"),
        ];
        for (key, value) in cases {
            let err = read(&annotations(&[(key, value)])).unwrap_err();
            assert_eq!(err.key, key);
            assert_eq!(err.value, value);
        }
    }

    #[test]
    fn other_annotations_ignored() {
        let read = read(&annotations(&[("example.com/owner", "team-a")])).unwrap();
        assert_eq!(read, Overrides::default());
    }
}
