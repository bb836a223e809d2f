//! The decision pipeline: a pure function from a compiled policy and a
//! request to a decision and its receipt. It does no I/O and takes no lock.
//! [`verdict`] allocates nothing, and [`decide`] allocates only the
//! returned [`Decision`].

mod encode;
mod error;
mod receipt;
mod select;
mod validate;

use std::time::Instant;

pub use encode::EncodedLen;
pub(crate) use encode::{put_string, string_len};
pub use error::DecideError;

use crate::catalog::{ModelId, ModelSet};
use crate::classify::{Classification, Classifier};
use crate::policy::{Action, MatchInput, Policy, Rule, Tier};
use crate::proto::{DecideRequest, Decision, Path, TaskSource};
use crate::task::TaskType;
use receipt::Stage;
pub use receipt::Verdict;
use select::{Choice, Filter, Goal, Tokens};
use validate::Checked;

/// Request size limits, set from the command line.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum bytes of prompt text, summed over prompt and messages.
    pub max_prompt_bytes: usize,
    /// Maximum bytes of each short string field (tenant, route, ids).
    pub max_field_bytes: usize,
    pub max_labels: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_prompt_bytes: 1024 * 1024,
            max_field_bytes: 1024,
            max_labels: 64,
        }
    }
}

/// Everything a decision reads besides the request.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub policy: &'a Policy,
    pub limits: &'a Limits,
    /// The prompt classifier; `None` skips classification, so requests
    /// without a declared task use the policy's default task type.
    pub classifier: Option<&'a Classifier>,
}

/// Decides which model `request` should go to, and returns the wire
/// message with its receipt.
pub fn decide(context: Context<'_>, request: &DecideRequest) -> Result<Decision, DecideError> {
    let started = Instant::now();
    let mut decision = verdict(context, request)?.to_decision();
    if let Some(receipt) = decision.receipt.as_mut() {
        receipt.decide_nanos = nanos_since(started);
    }
    Ok(decision)
}

/// Returns the nanoseconds since `started`, the unit of a receipt's
/// `decide_nanos`, saturating at `u64::MAX`.
pub fn nanos_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Decides which model `request` should go to, without building the wire
/// message. In-process callers that need only the model, provider and
/// failover list read them from the verdict, which allocates nothing.
pub fn verdict<'a>(
    context: Context<'a>,
    request: &'a DecideRequest,
) -> Result<Verdict<'a>, DecideError> {
    let checked = validate::check(context.policy, context.limits, request)?;
    let pipeline = Pipeline {
        policy: context.policy,
        request: &checked,
        classifier: context.classifier,
    };
    pipeline.run()
}

/// Returns the decision for a pipeline that itself failed: the policy's safe default
/// model with path `DEGRADED` and `note` in the receipt.
pub fn degraded(policy: &Policy, request: &DecideRequest, note: &str) -> Decision {
    receipt::degraded(policy, request, note)
}

struct Pipeline<'a, 'c> {
    policy: &'a Policy,
    request: &'c Checked<'a>,
    classifier: Option<&'a Classifier>,
}

impl<'a> Pipeline<'a, '_> {
    fn run(&self) -> Result<Verdict<'a>, DecideError> {
        let rule = self.policy.rules.find(&MatchInput {
            tenant: &self.request.request.tenant,
            route: &self.request.request.route,
            labels: &self.request.request.labels,
            task: self.request.declared_task,
            tier: self.request.tier,
        });

        if let Some(pinned) = self.request.pinned {
            return self.pinned(pinned, rule);
        }
        if let Some(rule) = rule
            && (rule.action.pin.is_some() || rule.action.skip_classifier)
        {
            return self.by_rule(rule);
        }
        if self.bypasses_classifier() {
            let (task, source) = self.task(rule);
            return self.select(Stage::new(Path::LatencyBypass, rule, task, source));
        }
        if self.request.tier != Tier::Best
            && let Some(classifier) = self.classifier
            && !self.request.text.is_empty()
        {
            return self.classified(classifier.classify(self.request.text), rule);
        }
        let (task, source) = self.task(rule);
        self.select(Stage::new(Path::Default, rule, task, source))
    }

    /// Selection with the classifier's task and difficulty. A declared task
    /// replaces the classifier's, and a rule's quality bar replaces the
    /// curve. Low confidence in a guessed task raises the bar, never lowers
    /// it.
    fn classified(
        &self,
        classification: Classification,
        rule: Option<&'a Rule>,
    ) -> Result<Verdict<'a>, DecideError> {
        let action = rule.map(|r| &r.action);
        let curve = &self.policy.defaults.classifier;
        let (task, source) = match self.request.declared_task {
            Some(task) => (task, TaskSource::Declared),
            None => (classification.task, TaskSource::Classifier),
        };
        let mut bar = match action.and_then(|a| a.quality_bar) {
            Some(bar) => bar,
            None => {
                // The tier shifts the whole curve: high requires more than
                // standard at every difficulty, economy less.
                let shift = self.bar(None) - self.policy.defaults.quality_bars.standard;
                (curve.bar_for(f64::from(classification.difficulty)) + shift).clamp(0.0, 1.0)
            }
        };
        let confidence = f64::from(classification.confidence);
        let unsure = source == TaskSource::Classifier && confidence < curve.min_confidence;
        if unsure {
            bar = bar.max(curve.low_confidence_bar);
        }

        let stage = Stage {
            classification: Some(classification),
            low_confidence: unsure,
            ..Stage::new(Path::Classified, rule, task, source)
        };
        self.finish(stage, &self.filter(action), Goal::Cheapest { bar })
    }

    fn bypasses_classifier(&self) -> bool {
        let budget = self.request.request.latency_budget_ms;
        budget > 0 && budget < self.policy.defaults.latency_bypass_ms
    }

    /// Returns the declared task, else the rule's, else the policy default.
    fn task(&self, rule: Option<&Rule>) -> (TaskType, TaskSource) {
        if let Some(task) = self.request.declared_task {
            return (task, TaskSource::Declared);
        }
        match rule.and_then(|r| r.action.task_type) {
            Some(task) => (task, TaskSource::Rule),
            None => (self.policy.defaults.task_type, TaskSource::PolicyDefault),
        }
    }

    fn filter(&self, action: Option<&Action>) -> Filter {
        let request = self.request;
        let mut providers = request.providers;
        let mut candidates = ModelSet::first(self.policy.models.len());
        if let Some(action) = action {
            providers = providers.intersect(action.providers.unwrap_or(providers));
            candidates = candidates.intersect(action.candidates.unwrap_or(candidates));
        }
        let needed = request.input_tokens + u64::from(request.output_tokens);
        Filter {
            providers,
            candidates,
            capabilities: request.capabilities,
            context_tokens: needed.max(u64::from(request.min_context_tokens)),
            output_tokens: request.output_tokens,
        }
    }

    fn tokens(&self) -> Tokens {
        Tokens {
            input: self.request.input_tokens,
            output: u64::from(self.request.output_tokens),
        }
    }

    fn bar(&self, action: Option<&Action>) -> f64 {
        if let Some(bar) = action.and_then(|a| a.quality_bar) {
            return bar;
        }
        let bars = self.policy.defaults.quality_bars;
        match self.request.tier {
            Tier::Best | Tier::High => bars.high,
            Tier::Standard => bars.standard,
            Tier::Economy => bars.economy,
        }
    }

    /// The caller's pin: checked against the provider limits of the request
    /// and of any matching rule, and against the required capabilities.
    fn pinned(&self, pinned: ModelId, rule: Option<&'a Rule>) -> Result<Verdict<'a>, DecideError> {
        let action = rule.map(|r| Action {
            providers: r.action.providers,
            ..Action::default()
        });
        let filter = self.filter(action.as_ref());
        if let Some(reason) = filter.reason(self.policy, pinned) {
            let model = &self.policy.model(pinned).name;
            let why = receipt::reason_text(reason);
            let message = match rule.filter(|r| r.action.providers.is_some()) {
                Some(rule) => format!(
                    "model {model:?} {why} (provider limit of rule {:?})",
                    rule.name
                ),
                None => format!("model {model:?} {why}"),
            };
            return Err(DecideError::precondition("pinned_model", message));
        }
        let task = self
            .request
            .declared_task
            .unwrap_or(self.policy.defaults.task_type);
        self.pin(
            Stage::new(Path::Pinned, rule, task, TaskSource::None),
            pinned,
            &filter,
        )
    }

    fn by_rule(&self, rule: &'a Rule) -> Result<Verdict<'a>, DecideError> {
        let filter = self.filter(Some(&rule.action));
        let (task, source) = self.task(Some(rule));
        let stage = Stage::new(Path::Rule, Some(rule), task, source);
        match rule.action.pin {
            Some(pin) if filter.reason(self.policy, pin).is_none() => self.pin(stage, pin, &filter),
            // A pin the request's own limits exclude falls back to the best
            // model the limits allow, because the rule asked for a strong one.
            Some(_) => self.finish(stage, &filter, Goal::Best),
            None => self.finish(stage, &filter, self.goal(Some(&rule.action))),
        }
    }

    /// A decision for a pinned model. Its failover list contains the cheapest
    /// candidates at least as good as the pin for the task, then the best.
    fn pin(
        &self,
        stage: Stage<'a>,
        pin: ModelId,
        filter: &Filter,
    ) -> Result<Verdict<'a>, DecideError> {
        let task = stage.task;
        let bar = self.policy.model(pin).quality(task);
        let mut others = filter.eligible(self.policy);
        others.remove(pin);
        let max = self.policy.defaults.max_fallbacks;
        let alternatives = select::choose(
            self.policy,
            others,
            task,
            Goal::Cheapest { bar },
            self.tokens(),
            max,
        );
        let choice = Choice::pinned(pin, alternatives, max);
        Ok(self.verdict(stage, bar, filter, choice))
    }

    fn goal(&self, action: Option<&Action>) -> Goal {
        match (self.request.tier, action.and_then(|a| a.quality_bar)) {
            (Tier::Best, None) => Goal::Best,
            _ => Goal::Cheapest {
                bar: self.bar(action),
            },
        }
    }

    fn select(&self, stage: Stage<'a>) -> Result<Verdict<'a>, DecideError> {
        let action = stage.rule.map(|r| &r.action);
        self.finish(stage, &self.filter(action), self.goal(action))
    }

    fn finish(
        &self,
        stage: Stage<'a>,
        filter: &Filter,
        goal: Goal,
    ) -> Result<Verdict<'a>, DecideError> {
        let task = stage.task;
        let eligible = filter.eligible(self.policy);
        let max = self.policy.defaults.max_fallbacks;
        let choice = select::choose(self.policy, eligible, task, goal, self.tokens(), max)
            .ok_or_else(|| no_candidate(self.request))?;
        let bar = match goal {
            Goal::Cheapest { bar } => bar,
            Goal::Best => self.policy.model(choice.chosen).quality(task),
        };
        Ok(self.verdict(stage, bar, filter, choice))
    }

    fn verdict(&self, stage: Stage<'a>, bar: f64, filter: &Filter, choice: Choice) -> Verdict<'a> {
        Verdict {
            policy: self.policy,
            request: self.request.request,
            stage,
            bar,
            filter: *filter,
            tokens: self.tokens(),
            choice,
        }
    }
}

fn no_candidate(request: &Checked<'_>) -> DecideError {
    let field = if request.request.allowed_providers.is_empty() {
        "required"
    } else {
        "allowed_providers"
    };
    DecideError::precondition(
        field,
        "no model in the policy meets the request's provider, capability and context limits; relax them or add a model",
    )
}

#[cfg(test)]
mod tests;
