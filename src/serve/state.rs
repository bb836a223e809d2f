//! State shared by every listener: the serving policy behind an atomic
//! pointer, request limits and readiness.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::classify::Classifier;
use crate::decide::{self, Context, DecideError, Limits, Verdict};
use crate::policy::Policy;
use crate::proto::{DecideRequest, Decision, Path};
use crate::telemetry;

/// A compiled policy and when it was loaded.
pub struct Loaded {
    pub policy: Policy,
    pub loaded_at_unix: u64,
}

impl Loaded {
    pub fn new(policy: Policy) -> Self {
        let loaded_at_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Loaded {
            policy,
            loaded_at_unix,
        }
    }
}

pub struct State {
    policy: ArcSwap<Loaded>,
    classifier: Arc<Classifier>,
    pub limits: Limits,
    ready: AtomicBool,
    /// Hash of the policy text last compiled, so an unchanged file is not
    /// compiled and swapped again.
    last_text_hash: AtomicU64,
}

impl State {
    /// A state that classifies with the built-in weights.
    pub fn new(policy: Policy, limits: Limits) -> Arc<Self> {
        State::with_classifier(policy, limits, Arc::new(Classifier::embedded().clone()))
    }

    pub fn with_classifier(
        policy: Policy,
        limits: Limits,
        classifier: Arc<Classifier>,
    ) -> Arc<Self> {
        let state = State {
            policy: ArcSwap::from_pointee(Loaded::new(policy)),
            classifier,
            limits,
            ready: AtomicBool::new(false),
            last_text_hash: AtomicU64::new(0),
        };
        state.publish_policy_metrics(None);
        Arc::new(state)
    }

    /// Returns the serving policy without taking a lock.
    pub fn policy(&self) -> arc_swap::Guard<Arc<Loaded>> {
        self.policy.load()
    }

    /// Swaps in a new policy; decisions already running finish on the old one.
    pub fn swap_policy(&self, policy: Policy) {
        let previous = self.policy.swap(Arc::new(Loaded::new(policy)));
        self.publish_policy_metrics(Some(&previous.policy));
    }

    pub(crate) fn text_changed(&self, hash: u64) -> bool {
        self.last_text_hash.swap(hash, Ordering::Relaxed) != hash
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn publish_policy_metrics(&self, previous: Option<&Policy>) {
        let current = self.policy();
        if let Some(previous) = previous
            && previous.version != current.policy.version
        {
            metrics::gauge!(telemetry::POLICY_INFO, "version" => previous.version.to_string())
                .set(0.0);
        }
        let policy = &current.policy;
        metrics::gauge!(telemetry::POLICY_INFO, "version" => policy.version.to_string()).set(1.0);
        metrics::gauge!(telemetry::POLICY_RULES).set(policy.rules.len() as f64);
        metrics::gauge!(telemetry::POLICY_MODELS).set(policy.models.len() as f64);
    }

    /// Decides one request and records its metrics. A panic inside the
    /// pipeline is caught, and the policy's safe default model is returned.
    pub fn decide(&self, request: &DecideRequest) -> Result<Decision, DecideError> {
        let loaded = self.policy();
        match self.answer(&loaded, request)? {
            Answer::Decided {
                verdict,
                decide_nanos,
            } => {
                let mut decision = verdict.to_decision();
                if let Some(receipt) = decision.receipt.as_mut() {
                    receipt.decide_nanos = decide_nanos;
                }
                Ok(decision)
            }
            Answer::Degraded(decision) => Ok(decision),
        }
    }

    /// Decides one request with the policy in `loaded` and records its
    /// metrics, leaving the wire message to the caller. A panic inside the
    /// pipeline is caught, and the policy's safe default model is returned.
    pub fn answer<'a>(
        &'a self,
        loaded: &'a Loaded,
        request: &'a DecideRequest,
    ) -> Result<Answer<'a>, DecideError> {
        let context = Context {
            policy: &loaded.policy,
            limits: &self.limits,
            classifier: Some(&self.classifier),
        };
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| decide::verdict(context, request)));
        match result {
            Ok(Ok(verdict)) => {
                let decide_nanos = decide::nanos_since(started);
                super::decision_metrics::record_parts(
                    verdict.path(),
                    verdict.model(),
                    verdict.rule(),
                    decide_nanos,
                );
                Ok(Answer::Decided {
                    verdict,
                    decide_nanos,
                })
            }
            Ok(Err(err)) => {
                metrics::counter!(telemetry::DECISION_ERRORS, "code" => err.label()).increment(1);
                Err(err)
            }
            Err(_) => {
                tracing::error!(request_id = %request.request_id, "decision pipeline panicked; returning the safe default model");
                metrics::counter!(telemetry::DEGRADED).increment(1);
                let decision = decide::degraded(
                    &loaded.policy,
                    request,
                    "internal error in the decision pipeline",
                );
                record_decision(&decision);
                Ok(Answer::Degraded(decision))
            }
        }
    }
}

/// A decision whose metrics are recorded, before it becomes a wire
/// message.
pub enum Answer<'a> {
    /// The pipeline decided; `decide_nanos` is the time it took.
    Decided {
        verdict: Verdict<'a>,
        decide_nanos: u64,
    },
    /// The pipeline panicked, and this is the safe default decision.
    Degraded(Decision),
}

/// Records a decision's counters and latency. Model and rule label values
/// come from the policy, because the decision names only policy models and
/// rules. Handles are cached, so this allocates only for the first decision
/// of each (path, model, rule).
pub fn record_decision(decision: &Decision) {
    super::decision_metrics::record(decision);
}

pub fn path_label(path: Path) -> &'static str {
    match path {
        Path::Unspecified => "unspecified",
        Path::Pinned => "pinned",
        Path::Rule => "rule",
        Path::LatencyBypass => "latency_bypass",
        Path::Classified => "classified",
        Path::Default => "default",
        Path::Degraded => "degraded",
    }
}
