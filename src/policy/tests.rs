use super::*;

const TEST_POLICY: &str = include_str!("../../tests/fixtures/policy.yaml");

fn errors(text: &str) -> Vec<Diagnostic> {
    match Policy::compile("p.yaml", text) {
        Ok(_) => panic!("policy compiled, but errors were expected"),
        Err(errors) => errors,
    }
}

/// The test policy with `from` replaced by `to`, which must occur once.
fn edited(from: &str, to: &str) -> String {
    assert_eq!(
        TEST_POLICY.matches(from).count(),
        1,
        "{from:?} must occur once"
    );
    TEST_POLICY.replacen(from, to, 1)
}

fn line_of(text: &str, needle: &str) -> u64 {
    let index = text.find(needle).expect("needle in text");
    text[..index].lines().count() as u64 + u64::from(text[..index].ends_with('\n'))
}

fn column_of(text: &str, needle: &str) -> u64 {
    let index = text.find(needle).expect("needle in text");
    let line_start = text[..index].rfind('\n').map_or(0, |newline| newline + 1);
    (index - line_start) as u64 + 1
}

#[test]
fn test_policy_compiles() {
    let policy = Policy::compile("p.yaml", TEST_POLICY).unwrap();
    assert_eq!(&*policy.version, "test-1");
    assert_eq!(policy.models.len(), 6);
    assert_eq!(policy.providers.len(), 4);
    assert_eq!(policy.rules.len(), 4);
    assert!(policy.warnings.is_empty(), "{:?}", policy.warnings);
    let small = policy.model(policy.model_id("alpha-small").unwrap());
    assert_eq!(small.quality(TaskType::Code), 0.6);
    assert_eq!(small.quality(TaskType::Chat), 0.72);
}

#[test]
fn encoded_model_ref_decodes_to_names() {
    use prost::Message as _;

    let policy = Policy::compile("p.yaml", TEST_POLICY).unwrap();
    for index in 0..policy.models.len() {
        let id = ModelId(index as u8);
        let decoded = crate::proto::ModelRef::decode(policy.encoded_model_ref(id)).unwrap();
        assert_eq!(decoded.model, &*policy.model(id).name);
        assert_eq!(decoded.provider, policy.provider_name(id));
    }
}

#[test]
fn embedded_policy_compiles_without_warnings() {
    let policy = Policy::embedded().unwrap();
    assert!(policy.warnings.is_empty(), "{:?}", policy.warnings);
}

#[test]
fn unknown_key_names_line_and_column() {
    let text = edited(
        "    max_output_tokens: 2000\n",
        "    max_output_tokens: 2000\n    colour: blue\n",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("colour"), "{}", errors[0]);
    assert_eq!(errors[0].line, line_of(&text, "colour"));
    assert!(errors[0].column > 0);
}

#[test]
fn duplicate_key_names_key_and_position() {
    // Each case gives the edit, the repeated key, and the text at the key's
    // second occurrence, where the error must point.
    let cases = [
        (
            "version: \"test-1\"\n",
            "version: \"test-1\"\nversion: \"test-2\"\n",
            "version",
            "version: \"test-2\"",
        ),
        (
            "    provider: delta\n",
            "    provider: delta\n    provider: gamma-again\n",
            "provider",
            "provider: gamma-again",
        ),
        (
            "quality: {default: 0.5}",
            "quality: {default: 0.5, default: 0.625}",
            "default",
            "default: 0.625",
        ),
        (
            "labels: {plan: free}",
            "labels: {plan: free, plan: paid}",
            "plan",
            "plan: paid",
        ),
    ];
    for (from, to, key, second) in cases {
        let text = edited(from, to);
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{key}: {errors:?}");
        let message = &errors[0].message;
        assert!(
            message.contains(&format!("key {key:?} is duplicated")),
            "{message}"
        );
        assert!(message.contains("remove or rename one"), "{message}");
        assert!(!message.contains("DuplicateKeyPolicy"), "{message}");
        assert_eq!(errors[0].line, line_of(&text, second), "{key}");
        assert_eq!(errors[0].column, column_of(&text, second), "{key}");
    }
}

#[test]
fn unknown_model_in_rule_is_error() {
    let text = edited("action: {pin: alpha-large}", "action: {pin: alpha-huge}");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("unknown model \"alpha-huge\""),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].message.contains("alpha-large"),
        "lists known models: {}",
        errors[0]
    );
    assert_eq!(errors[0].line, line_of(&text, "alpha-huge"));
}

#[test]
fn unknown_provider_is_error() {
    let text = edited(
        "action: {providers: [beta]}",
        "action: {providers: [betta]}",
    );
    let errors = errors(&text);
    assert!(
        errors[0].message.contains("unknown provider \"betta\""),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].line, line_of(&text, "betta"));
}

#[test]
fn duplicate_model_is_error() {
    let text = edited("  - name: gamma-mid\n", "  - name: alpha-small\n");
    let errors = errors(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("duplicate model \"alpha-small\"")),
        "{errors:?}"
    );
}

#[test]
fn duplicate_rule_is_error() {
    let text = edited("  - name: free-tier\n", "  - name: sentiment\n");
    let errors = errors(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("duplicate rule \"sentiment\"")),
        "{errors:?}"
    );
}

#[test]
fn empty_candidate_set_is_error() {
    let text = edited(
        "action: {providers: [beta]}",
        "action: {providers: [gamma], candidates: [beta-small]}",
    );
    let errors = errors(&text);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("leaves no candidate")),
        "{errors:?}"
    );
}

#[test]
fn missing_quality_without_default_is_error() {
    let text = edited("quality: {default: 0.5}", "quality: {chat: 0.5}");
    let errors = errors(&text);
    assert!(
        errors[0].message.contains("no quality score for code"),
        "{}",
        errors[0]
    );
}

#[test]
fn quality_out_of_range_is_error() {
    let text = edited("quality: {default: 0.5}", "quality: {default: 1.5}");
    assert!(errors(&text)[0].message.contains("out of range"));
}

#[test]
fn unknown_task_type_is_error() {
    let text = edited("task_type: chat", "task_type: poetry");
    let errors = errors(&text);
    assert!(errors[0].message.contains("poetry"), "{}", errors[0]);
}

#[test]
fn every_error_is_reported() {
    let text = edited("action: {pin: alpha-large}", "action: {pin: nope-one}");
    let text = text.replacen("model: alpha-small", "model: nope-two", 1);
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn shadowed_rule_is_warning() {
    let text = format!(
        "{TEST_POLICY}  - name: legal-again\n    match: {{tenants: [legal], routes: [x]}}\n    action: {{pin: beta-large}}\n"
    );
    let policy = Policy::compile("p.yaml", &text).unwrap();
    assert_eq!(policy.warnings.len(), 1);
    assert!(policy.warnings[0].message.contains("legal-again"));
    assert!(policy.warnings[0].message.contains("legal-best"));
}

#[test]
fn empty_action_is_error() {
    let text = edited(
        "action: {candidates: [delta-tiny, beta-small]}",
        "action: {}",
    );
    assert!(errors(&text)[0].message.contains("empty action"));
}

#[test]
fn version_defaults_to_content_hash() {
    let text = edited("version: \"test-1\"\n", "");
    let first = Policy::compile("p.yaml", &text).unwrap();
    let second = Policy::compile("p.yaml", &text).unwrap();
    assert!(first.version.starts_with("sha-"));
    assert_eq!(first.version, second.version);
}

#[test]
fn unreadable_file_is_error() {
    let errors = Policy::load(std::path::Path::new("/nonexistent/policy.yaml")).unwrap_err();
    assert!(errors[0].message.contains("cannot read policy file"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn compile_never_panics_on_edited_policy(
            position in 0..TEST_POLICY.len(),
            length in 0usize..40,
            insert in ".{0,12}",
        ) {
            let mut text = TEST_POLICY.as_bytes().to_vec();
            let end = (position + length).min(text.len());
            text.splice(position..end, insert.bytes());
            let text = String::from_utf8_lossy(&text);
            let _ = Policy::compile("fuzz.yaml", &text);
        }

        #[test]
        fn compile_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = Policy::compile("fuzz.yaml", &text);
        }
    }
}

#[test]
fn difficulty_curve_interpolates() {
    let text = format!("{TEST_POLICY}classifier:\n  difficulty_curve: [[0.2, 0.5], [0.6, 0.9]]\n");
    let policy = Policy::compile("p.yaml", &text).unwrap();
    let curve = &policy.defaults.classifier;
    assert_eq!(curve.bar_for(0.0), 0.5);
    assert!((curve.bar_for(0.4) - 0.7).abs() < 1e-9);
    assert_eq!(curve.bar_for(1.0), 0.9);
}

#[test]
fn default_curve_rises_with_difficulty() {
    let policy = Policy::compile("p.yaml", TEST_POLICY).unwrap();
    let curve = &policy.defaults.classifier;
    assert!(curve.bar_for(0.1) < curve.bar_for(0.5));
    assert!(curve.bar_for(0.5) < curve.bar_for(0.9));
    assert_eq!(curve.min_confidence, 0.5);
}

#[test]
fn difficulty_curve_must_rise() {
    let text = format!("{TEST_POLICY}classifier:\n  difficulty_curve: [[0.5, 0.5], [0.5, 0.9]]\n");
    let errors = errors(&text);
    assert!(errors[0].message.contains("rise strictly"), "{}", errors[0]);
    assert_eq!(errors[0].line, line_of(&text, "difficulty_curve"));
}

#[test]
fn difficulty_curve_needs_two_points() {
    let text = format!("{TEST_POLICY}classifier:\n  difficulty_curve: [[0.5, 0.5]]\n");
    assert!(errors(&text)[0].message.contains("at least two"));
}

#[test]
fn classifier_thresholds_are_fractions() {
    let text = format!("{TEST_POLICY}classifier:\n  min_confidence: 2\n");
    assert!(
        errors(&text)[0]
            .message
            .contains("min_confidence 2 is out of range")
    );
}

#[test]
fn output_tokens_above_every_model_is_error() {
    let text = edited("  output_tokens: 500\n", "  output_tokens: 4294967295\n");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("4294967295"), "{}", errors[0]);
    assert!(errors[0].message.contains("32000"), "{}", errors[0]);
    assert_eq!(errors[0].line, line_of(&text, "output_tokens: 4294967295"));
}

#[test]
fn output_tokens_of_largest_model_is_accepted() {
    let text = edited("  output_tokens: 500\n", "  output_tokens: 32000\n");
    assert!(Policy::compile("p.yaml", &text).is_ok());
}

#[test]
fn empty_version_is_error() {
    let text = edited("version: \"test-1\"", "version: \"\"");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("version is empty"),
        "{}",
        errors[0]
    );
}

#[test]
fn inverted_quality_bars_are_error() {
    let text = edited(
        "quality_bars: {high: 0.88, standard: 0.7, economy: 0.5}",
        "quality_bars: {high: 0.3, standard: 0.7, economy: 0.9}",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.contains("economy 0.9"), "{}", errors[0]);
    assert_eq!(errors[0].line, line_of(&text, "quality_bars"));
}

#[test]
fn one_bar_above_its_default_neighbour_is_error() {
    // standard defaults to 0.7, so economy 0.8 alone is out of order.
    let text = edited(
        "quality_bars: {high: 0.88, standard: 0.7, economy: 0.5}",
        "quality_bars: {economy: 0.8}",
    );
    assert_eq!(errors(&text).len(), 1);
}

#[test]
fn price_overflowing_full_call_cost_is_error() {
    // alpha-large has a 200000-token context window, so an input price
    // above f64::MAX / 200000 (about 8.988e302) makes its cost infinite.
    let text = edited(
        "    input_usd_per_mtok: 10.0\n",
        "    input_usd_per_mtok: 1e308\n",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors[0].message;
    assert!(message.contains("model \"alpha-large\""), "{message}");
    assert!(message.contains("input_usd_per_mtok 1e308"), "{message}");
    assert!(message.contains("not a finite number"), "{message}");
    assert!(message.contains("from 0 to about 8.988e302"), "{message}");
    assert_eq!(errors[0].line, line_of(&text, "input_usd_per_mtok: 1e308"));
}

#[test]
fn both_prices_overflowing_are_errors() {
    let text = edited(
        "    input_usd_per_mtok: 10.0\n    output_usd_per_mtok: 30.0\n",
        "    input_usd_per_mtok: 1e308\n    output_usd_per_mtok: 1e306\n",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].message.contains("input_usd_per_mtok 1e308"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].message.contains("output_usd_per_mtok 1e306"),
        "{}",
        errors[1]
    );
    // 16000 max output tokens: f64::MAX / 16000 is about 1.124e304.
    assert!(
        errors[1].message.contains("about 1.124e304"),
        "{}",
        errors[1]
    );
}

#[test]
fn prices_overflowing_only_in_sum_are_error() {
    // Each term is finite alone (1.6e308 and 1e308 millionths of a USD), but
    // their sum is not. The larger one, the input term, is reported.
    let text = edited(
        "    input_usd_per_mtok: 10.0\n    output_usd_per_mtok: 30.0\n",
        "    input_usd_per_mtok: 8e302\n    output_usd_per_mtok: 6.25e303\n",
    );
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = &errors[0].message;
    assert!(
        message.contains("input_usd_per_mtok 8e302 and output_usd_per_mtok 6.25e303"),
        "{message}"
    );
    // (f64::MAX - 1e308) / 200000
    assert!(message.contains("about 3.988e302"), "{message}");
    assert!(
        message.contains("or lower output_usd_per_mtok"),
        "{message}"
    );
    assert_eq!(errors[0].line, line_of(&text, "input_usd_per_mtok: 8e302"));
}

#[test]
fn price_just_below_overflow_is_accepted() {
    let text = edited(
        "    input_usd_per_mtok: 10.0\n",
        "    input_usd_per_mtok: 8.98e302\n",
    );
    let policy = Policy::compile("p.yaml", &text).unwrap();
    let model = policy.model(policy.model_id("alpha-large").unwrap());
    assert!(model.cost_usd(200_000, 16_000).is_finite());
}
