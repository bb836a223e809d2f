//! The sidecar template: the triage container, its volumes and what every
//! application container gets, read from one YAML file.

use std::path::Path;

use k8s_openapi::api::core::v1::{Container, EnvVar, Volume, VolumeMount};
use serde::{Deserialize, Serialize};

/// The template compiled into the binary. The Helm chart embeds the same
/// file, so the chart and the binary cannot drift apart.
pub const BUILT_IN: &str = include_str!("../../deploy/helm/triage/files/sidecar.yaml");

/// The volume that carries the policy ConfigMap; its ConfigMap name is set
/// per pod.
pub const POLICY_VOLUME: &str = "triage-policy";

/// The sidecar's log level, set per pod.
pub const LOG_LEVEL_ENV: &str = "TRIAGE_LOG_LEVEL";

/// The sidecar's drain deadline in seconds, set per pod from the
/// termination grace period.
pub const DRAIN_SECONDS_ENV: &str = "TRIAGE_DRAIN_SECONDS";

/// Everything the injector adds to a pod, before per-pod settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarTemplate {
    /// The triage container.
    pub container: Container,
    /// Pod volumes the sidecar needs: the socket directory and the policy.
    pub volumes: Vec<Volume>,
    /// Mounts and environment variables for each application container.
    pub application: ApplicationTemplate,
}

/// The mounts and environment added to every application container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationTemplate {
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
    #[serde(default)]
    pub env: Vec<EnvVar>,
}

/// A template that cannot be read, parsed or used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("failed to read sidecar template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid sidecar template {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("invalid sidecar template {origin}: {problem}")]
    Invalid { origin: String, problem: String },
    #[error("failed to write the sidecar template as YAML: {0}")]
    Render(#[from] serde_yaml_ng::Error),
}

impl SidecarTemplate {
    /// Parses and checks the template compiled into the binary.
    pub fn built_in() -> Result<Self, TemplateError> {
        Self::parse(BUILT_IN, "(built in)")
    }

    /// Reads, parses and checks a template file.
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a template and checks that the injector can fill it in.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TemplateError> {
        let template: Self = serde_saphyr::from_str(text).map_err(|err| TemplateError::Parse {
            origin: origin.to_owned(),
            message: err.to_string(),
        })?;

        template.check().map_err(|problem| TemplateError::Invalid {
            origin: origin.to_owned(),
            problem,
        })?;
        Ok(template)
    }

    /// Writes the template as YAML, the form `--print-sidecar` prints.
    pub fn to_yaml(&self) -> Result<String, TemplateError> {
        Ok(serde_yaml_ng::to_string(self)?)
    }

    /// Returns the names of the volumes the template adds to a pod.
    pub fn volume_names(&self) -> impl Iterator<Item = &str> {
        self.volumes.iter().map(|volume| volume.name.as_str())
    }

    fn check(&self) -> Result<(), String> {
        let container = &self.container;
        if container.name.is_empty() {
            return Err("container.name is empty".to_owned());
        }
        if container.image.as_deref().unwrap_or_default().is_empty() {
            return Err("container.image is empty".to_owned());
        }

        for name in [LOG_LEVEL_ENV, DRAIN_SECONDS_ENV] {
            let env = container.env.as_deref().unwrap_or_default();
            if !env.iter().any(|var| var.name == name) {
                return Err(format!("container.env has no {name}, which is set per pod"));
            }
        }

        let policy = self.volumes.iter().find(|v| v.name == POLICY_VOLUME);
        if policy.and_then(|v| v.config_map.as_ref()).is_none() {
            return Err(format!(
                "volumes has no configMap volume named {POLICY_VOLUME}"
            ));
        }

        let container_mounts = container.volume_mounts.as_deref().unwrap_or_default();
        for mount in container_mounts
            .iter()
            .chain(&self.application.volume_mounts)
        {
            if !self.volume_names().any(|name| name == mount.name) {
                return Err(format!(
                    "volume mount {} names no template volume",
                    mount.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_template_parses() {
        let template = SidecarTemplate::built_in().unwrap();
        assert_eq!(template.container.name, "triage");
        assert_eq!(template.volumes.len(), 2);
        assert!(!template.application.env.is_empty());
    }

    #[test]
    fn yaml_round_trip_is_lossless() {
        let template = SidecarTemplate::built_in().unwrap();
        let yaml = template.to_yaml().unwrap();
        let again = SidecarTemplate::parse(&yaml, "printed").unwrap();
        assert_eq!(again, template);
    }

    #[test]
    fn template_without_policy_volume_rejected() {
        let text = BUILT_IN.replace(
            "name: triage-policy\n    configMap",
            "name: other\n    configMap",
        );
        let err = SidecarTemplate::parse(&text, "edited")
            .unwrap_err()
            .to_string();
        assert!(err.contains("triage-policy"), "{err}");
    }

    #[test]
    fn template_without_log_level_rejected() {
        let text = BUILT_IN.replace("TRIAGE_LOG_LEVEL", "TRIAGE_OTHER");
        let err = SidecarTemplate::parse(&text, "edited")
            .unwrap_err()
            .to_string();
        assert!(err.contains(LOG_LEVEL_ENV), "{err}");
    }

    #[test]
    fn unknown_template_key_rejected() {
        let text = format!("{BUILT_IN}\nextra: 1\n");
        let err = SidecarTemplate::parse(&text, "edited")
            .unwrap_err()
            .to_string();
        assert!(err.contains("extra"), "{err}");
    }
}
