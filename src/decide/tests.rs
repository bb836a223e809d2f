use std::collections::HashMap;

use super::*;
use crate::proto::{DropReason, Message, QualityTier, Requirements, TaskType as ProtoTask};

const TEST_POLICY: &str = include_str!("../../tests/fixtures/policy.yaml");

fn policy() -> Policy {
    Policy::compile("test.yaml", TEST_POLICY).unwrap()
}

fn request(prompt: &str) -> DecideRequest {
    DecideRequest {
        request_id: "r-1".into(),
        prompt: prompt.into(),
        ..Default::default()
    }
}

fn run(policy: &Policy, request: &DecideRequest) -> Result<Decision, DecideError> {
    decide(
        Context {
            policy,
            limits: &Limits::default(),
            classifier: None,
        },
        request,
    )
}

fn path(decision: &Decision) -> Path {
    decision.receipt.as_ref().unwrap().path()
}

fn fallback_models(decision: &Decision) -> Vec<&str> {
    decision
        .fallbacks
        .iter()
        .map(|f| f.model.as_str())
        .collect()
}

#[test]
fn best_model_rule_pins_without_classifying() {
    let policy = policy();
    let mut req = request("Review this indemnity clause.");
    req.tenant = "legal".into();
    let decision = run(&policy, &req).unwrap();
    assert_eq!(decision.model, "alpha-large");
    assert_eq!(decision.provider, "alpha");
    assert_eq!(path(&decision), Path::Rule);
    assert_eq!(decision.receipt.as_ref().unwrap().rule, "legal-best");
}

#[test]
fn single_task_rule_picks_cheapest_capable() {
    let policy = policy();
    let mut req = request("so happy with my new phone!!");
    req.route = "tweet-sentiment".into();
    let decision = run(&policy, &req).unwrap();
    let receipt = decision.receipt.as_ref().unwrap();
    // beta-small (0.78) and alpha-small (0.80) meet the 0.75 bar for
    // classification; beta-small is cheaper.
    assert_eq!(decision.model, "beta-small");
    assert_eq!(receipt.path(), Path::Rule);
    assert_eq!(receipt.task_type(), ProtoTask::Classification);
    assert_eq!(receipt.task_source(), TaskSource::Rule);
    assert_eq!(receipt.quality_bar, 0.75);
}

#[test]
fn provider_rule_holds_for_choice_and_failover() {
    let policy = policy();
    let mut req = request("Summarise the discharge notes.");
    req.tenant = "clinic".into();
    req.quality_tier = QualityTier::Best.into();
    let decision = run(&policy, &req).unwrap();
    assert_eq!(decision.provider, "beta");
    assert!(!decision.fallbacks.is_empty());
    assert!(
        decision.fallbacks.iter().all(|f| f.provider == "beta"),
        "{:?}",
        decision.fallbacks
    );
    let receipt = decision.receipt.unwrap();
    let dropped: Vec<_> = receipt
        .candidates
        .iter()
        .filter(|c| c.provider != "beta")
        .collect();
    assert!(
        dropped
            .iter()
            .all(|c| c.dropped() == DropReason::ProviderNotAllowed)
    );
}

#[test]
fn request_providers_hold_for_failover() {
    let policy = policy();
    let mut req = request("hello");
    req.allowed_providers = vec!["alpha".into(), "gamma".into()];
    let decision = run(&policy, &req).unwrap();
    assert!(["alpha", "gamma"].contains(&decision.provider.as_str()));
    for fallback in &decision.fallbacks {
        assert!(
            ["alpha", "gamma"].contains(&fallback.provider.as_str()),
            "{fallback:?}"
        );
    }
}

#[test]
fn pinned_rule_provider_limit_rejects_pin() {
    let policy = policy();
    let mut req = request("hello");
    req.tenant = "clinic".into();
    req.pinned_model = "alpha-large".into();
    let err = run(&policy, &req).unwrap_err();
    assert_eq!(err.label(), "failed_precondition");
    assert_eq!(err.field(), "pinned_model");
    assert!(err.to_string().contains("health-baa"), "{err}");
}

#[test]
fn short_latency_budget_bypasses_classifier() {
    let policy = policy();
    let mut req = request("hello there");
    req.latency_budget_ms = 100;
    let decision = run(&policy, &req).unwrap();
    assert_eq!(path(&decision), Path::LatencyBypass);
    req.latency_budget_ms = 150;
    assert_eq!(path(&run(&policy, &req).unwrap()), Path::Default);
}

#[test]
fn pinned_model_is_honoured() {
    let policy = policy();
    let mut req = request("anything");
    req.pinned_model = "gamma-mid".into();
    let decision = run(&policy, &req).unwrap();
    assert_eq!(decision.model, "gamma-mid");
    assert_eq!(path(&decision), Path::Pinned);
    assert_eq!(
        decision.receipt.as_ref().unwrap().task_source(),
        TaskSource::None
    );
    assert!(!fallback_models(&decision).contains(&"gamma-mid"));
}

#[test]
fn pinned_model_overrides_rule_pin() {
    let policy = policy();
    let mut req = request("anything");
    req.tenant = "legal".into();
    req.pinned_model = "beta-large".into();
    let decision = run(&policy, &req).unwrap();
    assert_eq!(decision.model, "beta-large");
    assert_eq!(path(&decision), Path::Pinned);
}

#[test]
fn unknown_pinned_model_is_invalid() {
    let policy = policy();
    let mut req = request("anything");
    req.pinned_model = "gpt-17".into();
    let err = run(&policy, &req).unwrap_err();
    assert_eq!(err.label(), "invalid_argument");
    assert_eq!(err.field(), "pinned_model");
    assert!(err.to_string().contains("gpt-17"));
}

#[test]
fn pinned_model_outside_request_providers_fails_precondition() {
    let policy = policy();
    let mut req = request("anything");
    req.pinned_model = "gamma-mid".into();
    req.allowed_providers = vec!["alpha".into()];
    let err = run(&policy, &req).unwrap_err();
    assert_eq!(err.label(), "failed_precondition");
}

#[test]
fn pinned_model_lacking_capability_fails_precondition() {
    let policy = policy();
    let mut req = request("anything");
    req.pinned_model = "delta-tiny".into();
    req.required = Some(Requirements {
        tools: true,
        ..Default::default()
    });
    let err = run(&policy, &req).unwrap_err();
    assert!(err.to_string().contains("tools"), "{err}");
}

#[test]
fn same_request_gives_same_decision() {
    let policy = policy();
    let mut req = request("Write a haiku about rain.");
    req.deterministic = true;
    let mut first = run(&policy, &req).unwrap();
    let mut second = run(&policy, &req).unwrap();
    first.receipt.as_mut().unwrap().decide_nanos = 0;
    second.receipt.as_mut().unwrap().decide_nanos = 0;
    assert_eq!(first, second);
    assert!(first.receipt.unwrap().deterministic);
}

#[test]
fn default_path_uses_policy_task_and_says_so() {
    let policy = policy();
    let decision = run(&policy, &request("hi")).unwrap();
    let receipt = decision.receipt.as_ref().unwrap();
    assert_eq!(receipt.path(), Path::Default);
    assert_eq!(receipt.task_type(), ProtoTask::Chat);
    assert_eq!(receipt.task_source(), TaskSource::PolicyDefault);
    // Standard bar 0.7 for chat: alpha-small (0.72) is the cheapest above it.
    assert_eq!(decision.model, "alpha-small");
}

#[test]
fn declared_task_changes_quality_column() {
    let policy = policy();
    let mut req = request("fn main() {}");
    req.task_type = ProtoTask::Math.into();
    let decision = run(&policy, &req).unwrap();
    assert_eq!(
        decision.receipt.as_ref().unwrap().task_source(),
        TaskSource::Declared
    );
    // For math, gamma-mid scores 0.86 and alpha-small 0.72: both meet 0.7,
    // alpha-small is cheaper.
    assert_eq!(decision.model, "alpha-small");
    req.task_type = ProtoTask::Code.into();
    // For code alpha-small scores 0.6, below the bar; gamma-mid is next.
    assert_eq!(run(&policy, &req).unwrap().model, "gamma-mid");
}

#[test]
fn best_tier_picks_best_allowed() {
    let policy = policy();
    let mut req = request("hard question");
    req.quality_tier = QualityTier::Best.into();
    assert_eq!(run(&policy, &req).unwrap().model, "alpha-large");
    req.allowed_providers = vec!["beta".into(), "gamma".into()];
    assert_eq!(run(&policy, &req).unwrap().model, "beta-large");
}

#[test]
fn economy_tier_is_cheaper_than_high() {
    let policy = policy();
    let mut req = request("question");
    req.quality_tier = QualityTier::Economy.into();
    let economy = run(&policy, &req).unwrap();
    req.quality_tier = QualityTier::High.into();
    let high = run(&policy, &req).unwrap();
    assert_eq!(economy.model, "delta-tiny");
    assert_eq!(high.model, "beta-large");
    assert!(economy.estimated_cost_usd < high.estimated_cost_usd);
}

#[test]
fn capability_filter_applies_to_failover() {
    let policy = policy();
    let mut req = request("describe this image");
    req.required = Some(Requirements {
        vision: true,
        json_output: true,
        ..Default::default()
    });
    let decision = run(&policy, &req).unwrap();
    let with_both = ["alpha-large", "beta-large"];
    assert!(with_both.contains(&decision.model.as_str()));
    for model in fallback_models(&decision) {
        assert!(with_both.contains(&model), "{model}");
    }
}

#[test]
fn context_requirement_drops_small_models() {
    let policy = policy();
    let mut req = request("long document");
    req.quality_tier = QualityTier::Economy.into();
    req.required = Some(Requirements {
        min_context_tokens: 100_000,
        ..Default::default()
    });
    let decision = run(&policy, &req).unwrap();
    let receipt = decision.receipt.as_ref().unwrap();
    let tiny = receipt
        .candidates
        .iter()
        .find(|c| c.model == "delta-tiny")
        .unwrap();
    assert_eq!(tiny.dropped(), DropReason::ContextTooSmall);
    assert_eq!(decision.model, "beta-small");
}

#[test]
fn failover_ends_with_best_model() {
    let policy = policy();
    let decision = run(&policy, &request("hello")).unwrap();
    let fallbacks = fallback_models(&decision);
    assert_eq!(fallbacks.len(), 3);
    assert_eq!(fallbacks.last(), Some(&"alpha-large"));
}

#[test]
fn label_rule_narrows_candidates() {
    let policy = policy();
    let mut req = request("hello");
    req.labels = HashMap::from([("plan".into(), "free".into())]);
    let decision = run(&policy, &req).unwrap();
    assert_eq!(decision.receipt.as_ref().unwrap().rule, "free-tier");
    assert!(["delta-tiny", "beta-small"].contains(&decision.model.as_str()));
    for model in fallback_models(&decision) {
        assert!(["delta-tiny", "beta-small"].contains(&model), "{model}");
    }
}

#[test]
fn no_candidate_fails_precondition() {
    let policy = policy();
    let mut req = request("hello");
    req.allowed_providers = vec!["delta".into()];
    req.required = Some(Requirements {
        tools: true,
        ..Default::default()
    });
    let err = run(&policy, &req).unwrap_err();
    assert_eq!(err.label(), "failed_precondition");
}

#[test]
fn oversized_prompt_is_invalid() {
    let policy = policy();
    let limits = Limits {
        max_prompt_bytes: 10,
        ..Limits::default()
    };
    let err = decide(
        Context {
            policy: &policy,
            limits: &limits,
            classifier: None,
        },
        &request("eleven bytes"),
    )
    .unwrap_err();
    assert_eq!(err.field(), "prompt");
    assert!(err.to_string().contains("over the limit"));
}

#[test]
fn prompt_and_messages_together_are_invalid() {
    let policy = policy();
    let mut req = request("hi");
    req.messages = vec![Message {
        role: "user".into(),
        content: "hi".into(),
    }];
    assert_eq!(run(&policy, &req).unwrap_err().field(), "prompt");
}

#[test]
fn unknown_role_names_message_index() {
    let policy = policy();
    let mut req = request("");
    req.messages = vec![
        Message {
            role: "user".into(),
            content: "hi".into(),
        },
        Message {
            role: "wizard".into(),
            content: "hi".into(),
        },
    ];
    assert_eq!(run(&policy, &req).unwrap_err().field(), "messages[1].role");
}

#[test]
fn unknown_enum_values_are_invalid() {
    let policy = policy();
    let mut req = request("hi");
    req.task_type = 99;
    assert_eq!(run(&policy, &req).unwrap_err().field(), "task_type");
    let mut req = request("hi");
    req.quality_tier = -3;
    assert_eq!(run(&policy, &req).unwrap_err().field(), "quality_tier");
}

#[test]
fn unknown_allowed_provider_is_invalid() {
    let policy = policy();
    let mut req = request("hi");
    req.allowed_providers = vec!["alpha".into(), "omega".into()];
    assert_eq!(
        run(&policy, &req).unwrap_err().field(),
        "allowed_providers[1]"
    );
}

#[test]
fn degraded_respects_request_providers() {
    let policy = policy();
    let mut req = request("hi");
    assert_eq!(degraded(&policy, &req, "test").model, "alpha-small");
    req.allowed_providers = vec!["gamma".into()];
    let decision = degraded(&policy, &req, "test");
    assert_eq!(decision.model, "gamma-mid");
    assert_eq!(path(&decision), Path::Degraded);
}

#[test]
fn receipt_lists_every_candidate() {
    let policy = policy();
    let decision = run(&policy, &request("hi")).unwrap();
    let receipt = decision.receipt.unwrap();
    assert_eq!(receipt.candidates.len(), policy.models.len());
    let chosen = receipt
        .candidates
        .iter()
        .find(|c| c.model == decision.model)
        .unwrap();
    assert_eq!(chosen.dropped(), DropReason::None);
    assert!(receipt.decide_nanos > 0);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_request() -> impl Strategy<Value = DecideRequest> {
        let names = prop::sample::select(vec![
            "",
            "legal",
            "clinic",
            "alpha",
            "beta",
            "delta",
            "alpha-large",
            "delta-tiny",
            "tweet-sentiment",
            "x",
        ]);
        (
            (names.clone(), names.clone(), names.clone(), ".{0,64}"),
            (-2i32..14, -2i32..6, 0u32..400, 0u32..40_000),
            (
                prop::collection::vec(names.clone(), 0..3),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            ),
            (
                0u32..300_000,
                prop::collection::hash_map(names.clone(), names, 0..3),
            ),
        )
            .prop_map(|(strings, numbers, flags, more)| {
                let (tenant, route, pinned, prompt) = strings;
                let (task, tier, budget, output) = numbers;
                let (providers, tools, vision, json) = flags;
                let (context, labels) = more;
                DecideRequest {
                    tenant: tenant.into(),
                    route: route.into(),
                    pinned_model: pinned.into(),
                    prompt,
                    task_type: task,
                    quality_tier: tier,
                    latency_budget_ms: budget,
                    max_output_tokens: output,
                    allowed_providers: providers.into_iter().map(String::from).collect(),
                    required: Some(Requirements {
                        tools,
                        vision,
                        json_output: json,
                        min_context_tokens: context,
                    }),
                    labels: labels
                        .into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                    ..DecideRequest::default()
                }
            })
    }

    proptest! {
        #[test]
        fn decide_never_panics_and_honours_providers(req in any_request()) {
            let policy = policy();
            match run(&policy, &req) {
                Ok(decision) => {
                    prop_assert!(policy.model_id(&decision.model).is_some());
                    if !req.allowed_providers.is_empty() {
                        prop_assert!(req.allowed_providers.contains(&decision.provider));
                        for fallback in &decision.fallbacks {
                            prop_assert!(req.allowed_providers.contains(&fallback.provider));
                        }
                    }
                    prop_assert!(decision.fallbacks.len() <= policy.defaults.max_fallbacks);
                    prop_assert!(decision.fallbacks.iter().all(|f| f.model != decision.model));
                }
                Err(err) => prop_assert!(!err.field().is_empty()),
            }
        }

        #[test]
        fn verdict_encodes_like_its_message(mut req in any_request(), nanos in any::<u64>()) {
            // The request id and the deterministic flag vary with the
            // prompt, so that empty and set values both occur.
            req.request_id = req.prompt.chars().take(12).collect();
            req.deterministic = req.prompt.len() % 2 == 0;
            let policy = policy();
            let limits = Limits::default();
            let context = Context {
                policy: &policy,
                limits: &limits,
                classifier: Some(crate::classify::Classifier::embedded()),
            };
            if let Ok(verdict) = verdict(context, &req) {
                let mut decision = verdict.to_decision();
                if let Some(receipt) = decision.receipt.as_mut() {
                    receipt.decide_nanos = nanos;
                }
                let expected = prost::Message::encode_to_vec(&decision);
                let mut bytes = Vec::new();
                let len = verdict.encoded_len(nanos);
                verdict.encode(nanos, len, &mut bytes);
                prop_assert_eq!(len.total(), expected.len());
                prop_assert_eq!(bytes, expected);
            }
        }

        #[test]
        fn same_request_same_model(req in any_request()) {
            let policy = policy();
            let first = run(&policy, &req).map(|d| (d.model, d.fallbacks));
            let second = run(&policy, &req).map(|d| (d.model, d.fallbacks));
            prop_assert_eq!(first, second);
        }
    }
}

mod classified {
    use super::*;
    use crate::classify::{Classification, Classifier};
    use crate::task::TaskType;

    /// Runs the classified stage with a chosen classifier output, so the
    /// pipeline's use of it is tested apart from the trained weights.
    fn with_output(policy: &Policy, req: &DecideRequest, output: Classification) -> Decision {
        let limits = Limits::default();
        let checked = validate::check(policy, &limits, req).unwrap();
        let pipeline = Pipeline {
            policy,
            request: &checked,
            classifier: None,
        };
        pipeline.classified(output, None).unwrap().to_decision()
    }

    fn output(task: TaskType, confidence: f32, difficulty: f32) -> Classification {
        Classification {
            task,
            confidence,
            difficulty,
        }
    }

    #[test]
    fn easy_prompt_costs_less_than_hard() {
        let policy = policy();
        let req = request("some prompt");
        let easy = with_output(&policy, &req, output(TaskType::Chat, 0.9, 0.05));
        let hard = with_output(&policy, &req, output(TaskType::Chat, 0.9, 0.95));
        assert!(
            easy.estimated_cost_usd < hard.estimated_cost_usd,
            "{} vs {}",
            easy.model,
            hard.model
        );
        let (easy_bar, hard_bar) = (
            easy.receipt.unwrap().quality_bar,
            hard.receipt.unwrap().quality_bar,
        );
        assert!(easy_bar < hard_bar);
    }

    #[test]
    fn task_head_picks_quality_column() {
        let policy = policy();
        let req = request("some prompt");
        // At difficulty 0.5 the default curve's bar is 0.75. For code,
        // alpha-small scores 0.6 and gamma-mid 0.8; for chat alpha-small's
        // 0.72 also misses, so the column changes the answer only through
        // the scores compared with the bar.
        let code = with_output(&policy, &req, output(TaskType::Code, 0.9, 0.5));
        let receipt = code.receipt.as_ref().unwrap();
        assert_eq!(receipt.task_type(), ProtoTask::Code);
        assert_eq!(receipt.task_source(), TaskSource::Classifier);
        let chosen = receipt
            .candidates
            .iter()
            .find(|c| c.model == code.model)
            .unwrap();
        assert!(chosen.quality >= receipt.quality_bar);
        let small = receipt
            .candidates
            .iter()
            .find(|c| c.model == "alpha-small")
            .unwrap();
        assert_eq!(small.quality, 0.6);
        assert_eq!(small.dropped(), DropReason::BelowQualityBar);
    }

    #[test]
    fn declared_task_overrides_task_head() {
        let policy = policy();
        let mut req = request("some prompt");
        req.task_type = ProtoTask::Math.into();
        let decision = with_output(&policy, &req, output(TaskType::Code, 0.9, 0.5));
        let receipt = decision.receipt.unwrap();
        assert_eq!(receipt.task_type(), ProtoTask::Math);
        assert_eq!(receipt.task_source(), TaskSource::Declared);
        assert_eq!(receipt.path(), Path::Classified);
    }

    #[test]
    fn low_confidence_routes_up() {
        let policy = policy();
        let req = request("some prompt");
        let sure = with_output(&policy, &req, output(TaskType::Chat, 0.9, 0.05));
        let unsure = with_output(&policy, &req, output(TaskType::Chat, 0.2, 0.05));
        let (sure_receipt, unsure_receipt) = (sure.receipt.unwrap(), unsure.receipt.unwrap());
        assert!(unsure_receipt.quality_bar > sure_receipt.quality_bar);
        assert_eq!(
            unsure_receipt.quality_bar,
            policy.defaults.classifier.low_confidence_bar
        );
        assert!(unsure.estimated_cost_usd >= sure.estimated_cost_usd);
        assert!(unsure_receipt.note.contains("unsure"));
    }

    #[test]
    fn tier_shifts_difficulty_bar() {
        let policy = policy();
        let mut req = request("some prompt");
        let standard = with_output(&policy, &req, output(TaskType::Chat, 0.9, 0.5));
        req.quality_tier = QualityTier::Economy.into();
        let economy = with_output(&policy, &req, output(TaskType::Chat, 0.9, 0.5));
        let (standard_bar, economy_bar) = (
            standard.receipt.unwrap().quality_bar,
            economy.receipt.unwrap().quality_bar,
        );
        let bars = policy.defaults.quality_bars;
        assert!((standard_bar - economy_bar - (bars.standard - bars.economy)).abs() < 1e-9);
    }

    #[test]
    fn receipt_carries_classifier_output() {
        let policy = policy();
        let decision = with_output(
            &policy,
            &request("x"),
            output(TaskType::Summarization, 0.75, 0.25),
        );
        let receipt = decision.receipt.unwrap();
        assert_eq!(receipt.path(), Path::Classified);
        assert_eq!(receipt.confidence, 0.75);
        assert_eq!(receipt.difficulty, 0.25);
    }

    #[test]
    fn code_prompt_goes_to_code_column() {
        let policy = policy();
        let context = Context {
            policy: &policy,
            limits: &Limits::default(),
            classifier: Some(Classifier::embedded()),
        };
        let prompt = "Write a Python function that parses a CSV file and returns the rows as dictionaries. \
                      Include type hints and a unit test using pytest.";
        let decision = decide(context, &request(prompt)).unwrap();
        let receipt = decision.receipt.unwrap();
        assert_eq!(receipt.path(), Path::Classified);
        assert_eq!(receipt.task_type(), ProtoTask::Code);
        assert_eq!(receipt.task_source(), TaskSource::Classifier);
    }

    #[test]
    fn best_tier_and_bypass_skip_classifier() {
        let policy = policy();
        let context = Context {
            policy: &policy,
            limits: &Limits::default(),
            classifier: Some(Classifier::embedded()),
        };
        let mut req = request("Write a Python function that sorts a list.");
        req.quality_tier = QualityTier::Best.into();
        assert_eq!(
            decide(context, &req).unwrap().receipt.unwrap().path(),
            Path::Default
        );
        let mut req = request("Write a Python function that sorts a list.");
        req.latency_budget_ms = 50;
        assert_eq!(
            decide(context, &req).unwrap().receipt.unwrap().path(),
            Path::LatencyBypass
        );
    }
}
