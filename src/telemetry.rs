//! Metrics and logs. Every metric is declared here once, with its unit and
//! help text. Label values come only from the policy (models, rules, versions)
//! or from fixed sets, never from request content, so cardinality stays
//! bounded.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const DECISIONS: &str = "triage_decisions_total";
pub const DECISION_ERRORS: &str = "triage_decision_errors_total";
pub const DECISION_DURATION: &str = "triage_decision_duration_seconds";
pub const DEGRADED: &str = "triage_degraded_decisions_total";
pub const CLASSIFIER_LOAD_FAILURES: &str = "triage_classifier_load_failures_total";
pub const RELOADS: &str = "triage_policy_reloads_total";
pub const POLICY_INFO: &str = "triage_policy_info";
pub const POLICY_RULES: &str = "triage_policy_rules";
pub const POLICY_MODELS: &str = "triage_policy_models";

/// Histogram buckets for decision latency, in seconds: 1 µs to 10 ms.
const DECISION_BUCKETS: [f64; 14] = [
    1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 50e-3,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process-wide `metrics` recorder
/// on first use and returns the handle that renders /metrics. Later calls,
/// such as from several servers in one test process, share it.
pub fn metrics_handle() -> &'static PrometheusHandle {
    install_metrics(&[])
}

/// Like [`metrics_handle`], and on first use adds `global_labels` to every
/// series. Labels passed after the recorder is installed are ignored.
pub fn install_metrics(global_labels: &[(&'static str, String)]) -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let mut builder = PrometheusBuilder::new();
        for (key, value) in global_labels {
            builder = builder.add_global_label(*key, value.clone());
        }
        // set_buckets_for_metric fails only on an empty bucket list.
        let recorder = match builder
            .set_buckets_for_metric(Matcher::Full(DECISION_DURATION.to_owned()), &DECISION_BUCKETS)
        {
            Ok(builder) => builder.build_recorder(),
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only triage's own registry");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        DECISIONS,
        Unit::Count,
        "Decisions answered, by path, chosen model and matched rule."
    );
    describe_counter!(
        DECISION_ERRORS,
        Unit::Count,
        "Requests rejected, by gRPC status (invalid_argument, failed_precondition)."
    );
    describe_histogram!(
        DECISION_DURATION,
        Unit::Seconds,
        "Time spent in the decision pipeline, by path."
    );
    describe_counter!(
        DEGRADED,
        Unit::Count,
        "Decisions that fell back to the safe default model after an internal failure."
    );
    describe_counter!(
        RELOADS,
        Unit::Count,
        "Policy reload attempts, by result (success, failure)."
    );
    describe_gauge!(
        POLICY_INFO,
        Unit::Count,
        "1 for the policy version that is serving, 0 for versions served before."
    );
    describe_gauge!(POLICY_RULES, Unit::Count, "Rules in the serving policy.");
    describe_gauge!(POLICY_MODELS, Unit::Count, "Models in the serving policy.");
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Starts logging to standard error at `level` (a tracing filter such as
/// `info` or `triage=debug`). Returns an error for an invalid filter.
pub fn init_logs(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).map_err(|err| {
        anyhow::anyhow!("invalid log level {level:?}: {err}; use error, warn, info, debug or trace")
    })?;
    // Colour codes only help a terminal; in a file or a log collector they
    // are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("cannot start logging: {err}"))
}
