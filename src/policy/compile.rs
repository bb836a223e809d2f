//! Compilation of a parsed policy file into a [`Policy`]: names become ids,
//! references are checked, and rules become a [`RuleTable`].

use std::collections::HashMap;

use prost::Message as _;
use serde_saphyr::Spanned;

use super::diagnostic::Diagnostic;
use super::rules::{Action, Conditions, MAX_RULES, Rule, RuleTable};
use super::schema::{
    ActionSpec, ClassifierSpec, DefaultsSpec, ModelSpec, PolicyFile, QualityBarsSpec, QualitySpec,
    RuleSpec,
};
use super::{ClassifierPolicy, Defaults, Policy, QualityBars};
use crate::catalog::{
    Capabilities, MAX_MODELS, MAX_PROVIDERS, Model, ModelId, ModelSet, Provider, ProviderId,
    ProviderSet,
};
use crate::policy::schema::Capability;
use crate::proto::ModelRef;
use crate::task::TaskType;

const DEFAULT_LATENCY_BYPASS_MS: u32 = 150;
const DEFAULT_OUTPUT_TOKENS: u32 = 512;
const DEFAULT_MAX_FALLBACKS: u32 = 3;
const MAX_FALLBACKS: u32 = 16;
/// The bar rises with difficulty: easy prompts accept mid-priced models,
/// hard ones need the strongest.
const DEFAULT_CURVE: [(f64, f64); 3] = [(0.0, 0.6), (0.5, 0.75), (1.0, 0.9)];
const DEFAULT_BARS: QualityBars = QualityBars {
    high: 0.85,
    standard: 0.7,
    economy: 0.5,
};

pub fn compile(source: &str, text: &str) -> Result<Policy, Vec<Diagnostic>> {
    let file: PolicyFile = serde_saphyr::from_str(text).map_err(|err| {
        let (line, column) = err.location().map_or((0, 0), |at| (at.line(), at.column()));
        let message = duplicate_key_message(&err).unwrap_or_else(|| parse_message(&err));
        vec![Diagnostic::error(source, line, column, message)]
    })?;

    let mut compiler = Compiler {
        source,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let providers = compiler.providers(&file);
    let provider_ids = index_names(providers.iter().map(|p| &*p.name));
    let models = compiler.models(&file.models, &provider_ids);
    let model_ids = index_names(models.iter().map(|m| &*m.name));
    let names = Names {
        models: &model_ids,
        providers: &provider_ids,
        model_list: &models,
    };
    let defaults = compiler.defaults(&file.defaults, file.classifier.as_ref(), &names);
    let rules = compiler.rules(&file.rules, &names);

    if let Some(version) = &file.version
        && version.value.trim().is_empty()
    {
        compiler.error(
            version,
            "version is empty; give a name such as \"2026-12-04\", or remove the key to use a \
             hash of the file",
        );
    }

    // `defaults` is None only when it recorded an error.
    let Some(defaults) = defaults.filter(|_| compiler.errors.is_empty()) else {
        return Err(compiler.errors);
    };
    let version = match &file.version {
        Some(version) => version.value.clone(),
        None => format!("sha-{:016x}", fnv1a(text.as_bytes())),
    };
    let model_refs = encoded_model_refs(&models, &providers);
    Ok(Policy {
        version: version.into(),
        source: source.into(),
        providers,
        models,
        model_refs,
        defaults,
        rules,
        warnings: compiler.warnings,
        model_ids: model_ids
            .into_iter()
            .map(|(k, v)| (k.into(), ModelId(v)))
            .collect(),
        provider_ids: provider_ids
            .into_iter()
            .map(|(k, v)| (k.into(), ProviderId(v)))
            .collect(),
    })
}

/// Returns each model's `ModelRef` (its name and its provider's name),
/// encoded once here so that decisions copy it rather than encode it.
fn encoded_model_refs(models: &[Model], providers: &[Provider]) -> Vec<Box<[u8]>> {
    models
        .iter()
        .map(|model| {
            let provider = &providers[usize::from(model.provider.0)];
            let model_ref = ModelRef {
                model: model.name.to_string(),
                provider: provider.name.to_string(),
            };
            model_ref.encode_to_vec().into_boxed_slice()
        })
        .collect()
}

/// Returns the message for a repeated mapping key, or `None` for any
/// other parse error. serde-saphyr 2.2 reports the key at its second
/// occurrence, and its own wording suggests a parser option instead of a fix.
fn duplicate_key_message(err: &serde_saphyr::Error) -> Option<String> {
    let mut err = err;
    // Snippet and alias wrappers contain the original error.
    while let serde_saphyr::Error::WithSnippet { error, .. }
    | serde_saphyr::Error::AliasError { error, .. } = err
    {
        err = error;
    }
    let serde_saphyr::Error::DuplicateMappingKey { key, .. } = err else {
        return None;
    };
    let message = match key {
        Some(key) => {
            format!("key {key:?} is duplicated in this mapping; remove or rename one of them")
        }
        // The parser names only scalar keys.
        None => "a key is duplicated in this mapping; remove or rename one of them".to_owned(),
    };
    Some(message)
}

/// Returns the first line of the parser's message, because the diagnostic
/// carries the position.
fn parse_message(err: &serde_saphyr::Error) -> String {
    let text = err.to_string();
    let mut message = text.lines().next().unwrap_or("invalid YAML");
    message = message.strip_prefix("error: ").unwrap_or(message);
    // serde-saphyr 2.2 starts located messages with "line N column M: ".
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, after)) = rest.split_once(": ")
    {
        message = after;
    }
    message.to_owned()
}

/// One price of a model and the token count it is charged on.
struct PriceTerm<'a> {
    field: &'static str,
    price: &'a Spanned<f64>,
    tokens: u64,
}

impl PriceTerm<'_> {
    /// Returns the cost of these tokens in millionths of a USD, the unit in
    /// which [`Model::cost_usd`] adds the two terms before it divides.
    fn micro_usd(&self) -> f64 {
        self.tokens as f64 * self.price.value
    }

    /// Returns the field and its value as a message shows them, such as
    /// `input_usd_per_mtok 1e308`.
    fn setting(&self) -> String {
        format!("{} {}", self.field, number_text(self.price.value))
    }
}

/// Formats a number as `Display` does, but in exponent notation from 1e15
/// up, where `Display` would print every digit.
fn number_text(value: f64) -> String {
    if value.abs() >= 1e15 {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

fn index_names<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<String, u8> {
    names
        .enumerate()
        .map(|(i, name)| (name.to_owned(), i as u8))
        .collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Names<'a> {
    models: &'a HashMap<String, u8>,
    providers: &'a HashMap<String, u8>,
    model_list: &'a [Model],
}

struct Compiler<'a> {
    source: &'a str,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Compiler<'_> {
    fn error<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let (line, column) = (at.referenced.line(), at.referenced.column());
        self.errors
            .push(Diagnostic::error(self.source, line, column, message));
    }

    fn warn<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let (line, column) = (at.referenced.line(), at.referenced.column());
        self.warnings
            .push(Diagnostic::warning(self.source, line, column, message));
    }

    fn error_at_start(&mut self, message: impl Into<String>) {
        self.errors
            .push(Diagnostic::error(self.source, 1, 1, message));
    }

    fn providers(&mut self, file: &PolicyFile) -> Vec<Provider> {
        let mut providers: Vec<Provider> = Vec::new();
        for spec in &file.providers {
            let name = spec.name.value.trim();
            if name.is_empty() {
                self.error(&spec.name, "provider name is empty");
            } else if providers.iter().any(|p| &*p.name == name) {
                self.error(
                    &spec.name,
                    format!("duplicate provider {name:?}; provider names must be unique"),
                );
            } else if providers.len() == MAX_PROVIDERS {
                self.error(
                    &spec.name,
                    format!("too many providers; at most {MAX_PROVIDERS} are supported"),
                );
            } else {
                providers.push(Provider { name: name.into() });
            }
        }
        if file.providers.is_empty() {
            self.error_at_start(
                "the policy lists no providers; add at least one under `providers`",
            );
        }
        providers
    }

    fn models(&mut self, specs: &[ModelSpec], providers: &HashMap<String, u8>) -> Vec<Model> {
        let mut models: Vec<Model> = Vec::new();
        for spec in specs {
            let name = spec.name.value.trim();
            if name.is_empty() {
                self.error(&spec.name, "model name is empty");
                continue;
            }
            if models.iter().any(|m| &*m.name == name) {
                self.error(
                    &spec.name,
                    format!("duplicate model {name:?}; model names must be unique"),
                );
                continue;
            }
            if models.len() == MAX_MODELS {
                self.error(
                    &spec.name,
                    format!("too many models; at most {MAX_MODELS} are supported"),
                );
                continue;
            }
            let Some(&provider) = providers.get(spec.provider.value.as_str()) else {
                self.error(
                    &spec.provider,
                    unknown("provider", &spec.provider.value, providers.keys()),
                );
                continue;
            };
            let input_price_valid = self.check_price(&spec.input_usd_per_mtok);
            let output_price_valid = self.check_price(&spec.output_usd_per_mtok);
            if spec.context_tokens.value == 0 {
                self.error(
                    &spec.context_tokens,
                    "context_tokens must be greater than 0",
                );
            }
            if spec.max_output_tokens.value == 0 {
                self.error(
                    &spec.max_output_tokens,
                    "max_output_tokens must be greater than 0",
                );
            }
            let quality = self.quality(name, &spec.quality);
            let model = Model {
                name: name.into(),
                provider: ProviderId(provider),
                input_usd_per_mtok: spec.input_usd_per_mtok.value,
                output_usd_per_mtok: spec.output_usd_per_mtok.value,
                context_tokens: spec.context_tokens.value,
                max_output_tokens: spec.max_output_tokens.value,
                capabilities: capabilities(&spec.capabilities),
                quality,
            };
            if input_price_valid && output_price_valid {
                self.check_full_call_cost(spec, &model);
            }
            models.push(model);
        }
        if specs.is_empty() {
            self.error_at_start("the policy lists no models; add at least one under `models`");
        }
        models
    }

    /// Reports a price that is negative or not finite, and returns whether
    /// the price is valid.
    fn check_price(&mut self, price: &Spanned<f64>) -> bool {
        let valid = price.value.is_finite() && price.value >= 0.0;
        if !valid {
            self.error(
                price,
                format!(
                    "price {} is invalid; use a number of USD, 0 or more",
                    price.value
                ),
            );
        }
        valid
    }

    /// Reports prices at which [`Model::cost_usd`] for a call that fills the
    /// model's context window and max output is not finite, because such an
    /// estimate is written as null in decisions.
    fn check_full_call_cost(&mut self, spec: &ModelSpec, model: &Model) {
        // NOTE: a receipt also lists the cost estimate of every model dropped
        // for a small context window, computed with the request's token
        // counts, which can still overflow for prices just below this limit.
        let input_tokens = u64::from(model.context_tokens);
        let output_tokens = u64::from(model.max_output_tokens);
        if model.cost_usd(input_tokens, output_tokens).is_finite() {
            return;
        }

        let input = PriceTerm {
            field: "input_usd_per_mtok",
            price: &spec.input_usd_per_mtok,
            tokens: input_tokens,
        };
        let output = PriceTerm {
            field: "output_usd_per_mtok",
            price: &spec.output_usd_per_mtok,
            tokens: output_tokens,
        };
        let call = format!(
            "the estimated cost of a call that fills its {input_tokens}-token context window \
             and {output_tokens} max output tokens"
        );
        let name = &model.name;

        let infinite_alone: Vec<&PriceTerm> = [&input, &output]
            .into_iter()
            .filter(|term| !term.micro_usd().is_finite())
            .collect();
        for term in &infinite_alone {
            let largest = f64::MAX / term.tokens as f64;
            self.error(
                term.price,
                format!(
                    "model {name:?} has {}, so {call} is not a finite number; set {} to a \
                     number from 0 to about {largest:.3e}",
                    term.setting(),
                    term.field
                ),
            );
        }
        if !infinite_alone.is_empty() {
            return;
        }

        // Each term is finite alone and only their sum overflows, so report
        // the larger term and the range it has with the other price fixed.
        let (larger, other) = if input.micro_usd() >= output.micro_usd() {
            (&input, &output)
        } else {
            (&output, &input)
        };
        let largest = (f64::MAX - other.micro_usd()) / larger.tokens as f64;
        self.error(
            larger.price,
            format!(
                "model {name:?} has {} and {}, so {call} is not a finite number; set {} to a \
                 number from 0 to about {largest:.3e}, or lower {}",
                larger.setting(),
                other.setting(),
                larger.field,
                other.field
            ),
        );
    }

    fn check_fraction(&mut self, value: &Spanned<f64>, what: &str) -> f64 {
        if !(0.0..=1.0).contains(&value.value) {
            self.error(
                value,
                format!(
                    "{what} {} is out of range; use a number from 0 to 1",
                    value.value
                ),
            );
        }
        value.value
    }

    fn quality(&mut self, model: &str, spec: &Spanned<QualitySpec>) -> [f64; TaskType::COUNT] {
        let fallback = spec
            .value
            .default
            .as_ref()
            .map(|d| self.check_fraction(d, "quality"));
        let mut scores = [0.0; TaskType::COUNT];
        let mut missing = Vec::new();
        for task in TaskType::ALL {
            match (spec.value.get(task), fallback) {
                (Some(score), _) => scores[task.index()] = self.check_fraction(score, "quality"),
                (None, Some(fallback)) => scores[task.index()] = fallback,
                (None, None) => missing.push(task.name()),
            }
        }
        if !missing.is_empty() {
            self.error(
                spec,
                format!(
                    "model {model:?} has no quality score for {}; add them or a `default` score",
                    missing.join(", ")
                ),
            );
        }
        scores
    }

    fn defaults(
        &mut self,
        spec: &DefaultsSpec,
        classifier: Option<&ClassifierSpec>,
        names: &Names<'_>,
    ) -> Option<Defaults> {
        let classifier = self.classifier(classifier);
        let model = self.model_ref(&spec.model, names);
        let max_fallbacks = spec
            .max_fallbacks
            .as_ref()
            .map_or(DEFAULT_MAX_FALLBACKS, |m| m.value);
        if let Some(at) = &spec.max_fallbacks
            && max_fallbacks > MAX_FALLBACKS
        {
            self.error(
                at,
                format!("max_fallbacks {max_fallbacks} is too large; use at most {MAX_FALLBACKS}"),
            );
        }
        let bars = spec.quality_bars.as_ref();
        let mut bar = |value: Option<&Spanned<f64>>, default: f64| {
            value.map_or(default, |v| self.check_fraction(v, "quality bar"))
        };
        let quality_bars = QualityBars {
            high: bar(bars.and_then(|b| b.high.as_ref()), DEFAULT_BARS.high),
            standard: bar(
                bars.and_then(|b| b.standard.as_ref()),
                DEFAULT_BARS.standard,
            ),
            economy: bar(bars.and_then(|b| b.economy.as_ref()), DEFAULT_BARS.economy),
        };
        if let Some(at) = &spec.output_tokens {
            let largest = names.model_list.iter().map(|m| m.max_output_tokens).max();
            if let Some(largest) = largest
                && at.value > largest
            {
                self.error(
                    at,
                    format!(
                        "output_tokens {} is more than any model can produce, so every request \
                         without max_output_tokens would fail; use at most {largest}, the largest \
                         max_output_tokens in the catalog",
                        at.value
                    ),
                );
            }
        }
        self.check_bar_order(bars, &quality_bars);
        Some(Defaults {
            task_type: spec.task_type.value,
            model: model?,
            latency_bypass_ms: spec
                .latency_bypass_ms
                .as_ref()
                .map_or(DEFAULT_LATENCY_BYPASS_MS, |v| v.value),
            output_tokens: spec
                .output_tokens
                .as_ref()
                .map_or(DEFAULT_OUTPUT_TOKENS, |v| v.value),
            max_fallbacks: max_fallbacks.min(MAX_FALLBACKS) as usize,
            quality_bars,
            classifier,
        })
    }

    /// Reports quality bars that fall from economy to standard to high, since
    /// a better tier would then accept worse models than a cheaper one.
    fn check_bar_order(&mut self, spec: Option<&QualityBarsSpec>, bars: &QualityBars) {
        if bars.economy <= bars.standard && bars.standard <= bars.high {
            return;
        }
        let Some(at) = spec.and_then(|b| {
            b.economy
                .as_ref()
                .or(b.standard.as_ref())
                .or(b.high.as_ref())
        }) else {
            return;
        };
        self.error(
            at,
            format!(
                "quality bars must rise from economy to standard to high, but they are \
                 economy {}, standard {}, high {} (unset bars take their defaults); reorder them",
                bars.economy, bars.standard, bars.high
            ),
        );
    }

    fn classifier(&mut self, spec: Option<&ClassifierSpec>) -> ClassifierPolicy {
        let curve = match spec.and_then(|s| s.difficulty_curve.as_ref()) {
            Some(curve) => self.curve(curve),
            None => DEFAULT_CURVE.to_vec(),
        };
        let fraction =
            |compiler: &mut Self, value: Option<&Spanned<f64>>, default: f64, what: &str| {
                value.map_or(default, |v| compiler.check_fraction(v, what))
            };
        ClassifierPolicy {
            difficulty_curve: curve,
            min_confidence: fraction(
                self,
                spec.and_then(|s| s.min_confidence.as_ref()),
                0.5,
                "min_confidence",
            ),
            low_confidence_bar: fraction(
                self,
                spec.and_then(|s| s.low_confidence_bar.as_ref()),
                DEFAULT_BARS.high,
                "low_confidence_bar",
            ),
        }
    }

    fn curve(&mut self, spec: &Spanned<Vec<[f64; 2]>>) -> Vec<(f64, f64)> {
        let points: Vec<(f64, f64)> = spec.value.iter().map(|[x, y]| (*x, *y)).collect();
        let in_range = |v: f64| (0.0..=1.0).contains(&v);
        if points.len() < 2 {
            self.error(
                spec,
                "difficulty_curve needs at least two [difficulty, bar] points",
            );
        } else if !points.iter().all(|(x, y)| in_range(*x) && in_range(*y)) {
            self.error(spec, "difficulty_curve values must be from 0 to 1");
        } else if !points.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            self.error(
                spec,
                "difficulty_curve difficulties must rise strictly from one point to the next",
            );
        }
        points
    }

    fn model_ref(&mut self, name: &Spanned<String>, names: &Names<'_>) -> Option<ModelId> {
        match names.models.get(name.value.as_str()) {
            Some(&id) => Some(ModelId(id)),
            None => {
                self.error(name, unknown("model", &name.value, names.models.keys()));
                None
            }
        }
    }

    fn provider_ref(&mut self, name: &Spanned<String>, names: &Names<'_>) -> Option<ProviderId> {
        match names.providers.get(name.value.as_str()) {
            Some(&id) => Some(ProviderId(id)),
            None => {
                self.error(
                    name,
                    unknown("provider", &name.value, names.providers.keys()),
                );
                None
            }
        }
    }

    fn rules(&mut self, specs: &[RuleSpec], names: &Names<'_>) -> RuleTable {
        let mut rules: Vec<Rule> = Vec::new();
        let mut conditions: Vec<Conditions> = Vec::new();
        for spec in specs {
            let name = spec.name.value.trim();
            if name.is_empty() {
                self.error(&spec.name, "rule name is empty");
                continue;
            }
            if rules.iter().any(|r| &*r.name == name) {
                self.error(
                    &spec.name,
                    format!("duplicate rule {name:?}; rule names must be unique"),
                );
                continue;
            }
            if rules.len() == MAX_RULES {
                self.error(
                    &spec.name,
                    format!("too many rules; at most {MAX_RULES} are supported"),
                );
                continue;
            }
            let condition = self.conditions(spec);
            let action = self.action(name, &spec.action, names);
            self.warn_if_shadowed(spec, &condition, &rules, &conditions);
            rules.push(Rule {
                name: name.into(),
                action,
            });
            conditions.push(condition);
        }
        RuleTable::build(rules, &conditions)
    }

    fn conditions(&mut self, spec: &RuleSpec) -> Conditions {
        let when = &spec.conditions;
        let mut strings = |list: &Option<Vec<Spanned<String>>>, field: &str| {
            let list = list.as_ref()?;
            if list.is_empty() {
                self.error(&spec.name, format!("rule {:?} has an empty `{field}` list, so it can never match; remove the key or list values", spec.name.value));
            }
            Some(list.iter().map(|v| v.value.clone()).collect::<Vec<_>>())
        };
        let tenants = strings(&when.tenants, "tenants");
        let routes = strings(&when.routes, "routes");
        let labels = when
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Conditions {
            tenants,
            routes,
            labels,
            tasks: when
                .tasks
                .as_ref()
                .map(|l| l.iter().map(|t| t.value).collect()),
            tiers: when
                .tiers
                .as_ref()
                .map(|l| l.iter().map(|t| t.value).collect()),
        }
    }

    fn warn_if_shadowed(
        &mut self,
        spec: &RuleSpec,
        condition: &Conditions,
        rules: &[Rule],
        earlier: &[Conditions],
    ) {
        if let Some(index) = earlier.iter().position(|e| e.covers(condition)) {
            let covering = &rules[index].name;
            self.warn(
                &spec.name,
                format!(
                    "rule {:?} can never match because the earlier rule {covering:?} matches every request it does",
                    spec.name.value
                ),
            );
        }
    }

    fn action(&mut self, rule: &str, spec: &Spanned<ActionSpec>, names: &Names<'_>) -> Action {
        let action = &spec.value;
        let pin = action.pin.as_ref().and_then(|p| self.model_ref(p, names));
        let providers = action.providers.as_ref().map(|list| {
            let mut set = ProviderSet::empty();
            list.iter()
                .filter_map(|p| self.provider_ref(p, names))
                .for_each(|id| set.insert(id));
            set
        });
        let candidates = action.candidates.as_ref().map(|list| {
            let mut set = ModelSet::empty();
            list.iter()
                .filter_map(|m| self.model_ref(m, names))
                .for_each(|id| set.insert(id));
            set
        });
        let quality_bar = action
            .quality_bar
            .as_ref()
            .map(|b| self.check_fraction(b, "quality_bar"));
        let compiled = Action {
            pin,
            providers,
            candidates,
            quality_bar,
            task_type: action.task_type.as_ref().map(|t| t.value),
            skip_classifier: action.skip_classifier.unwrap_or(false),
        };
        self.check_action(rule, spec, &compiled, names);
        compiled
    }

    fn check_action(
        &mut self,
        rule: &str,
        spec: &Spanned<ActionSpec>,
        action: &Action,
        names: &Names<'_>,
    ) {
        let a = &spec.value;
        let empty = a.pin.is_none()
            && a.providers.is_none()
            && a.candidates.is_none()
            && a.quality_bar.is_none()
            && a.task_type.is_none()
            && a.skip_classifier.is_none();
        if empty {
            self.error(spec, format!("rule {rule:?} has an empty action; set pin, providers, candidates, quality_bar, task_type or skip_classifier"));
            return;
        }
        let allowed = allowed_models(action, names.model_list);
        if allowed.is_empty() && (a.providers.is_some() || a.candidates.is_some()) {
            self.error(spec, format!("rule {rule:?} leaves no candidate model: no listed candidate belongs to a listed provider"));
        }
        if let (Some(pin), Some(at)) = (action.pin, &a.pin)
            && !allowed.contains(pin)
        {
            self.error(
                at,
                format!(
                    "rule {rule:?} pins {:?}, which its own providers or candidates exclude",
                    at.value
                ),
            );
        }
    }
}

/// Returns the models that a rule's provider and candidate limits allow.
fn allowed_models(action: &Action, models: &[Model]) -> ModelSet {
    let mut set = action.candidates.unwrap_or(ModelSet::first(models.len()));
    if let Some(providers) = action.providers {
        for (i, model) in models.iter().enumerate() {
            if !providers.contains(model.provider) {
                set.remove(ModelId(i as u8));
            }
        }
    }
    set
}

fn capabilities(list: &[Spanned<Capability>]) -> Capabilities {
    list.iter().fold(Capabilities::empty(), |all, cap| {
        all.union(match cap.value {
            Capability::Tools => Capabilities::TOOLS,
            Capability::Vision => Capabilities::VISION,
            Capability::JsonOutput => Capabilities::JSON_OUTPUT,
        })
    })
}

fn unknown<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a String>) -> String {
    let mut known: Vec<&str> = known.map(String::as_str).collect();
    known.sort_unstable();
    format!(
        "unknown {kind} {name:?}; known {kind}s are: {}",
        known.join(", ")
    )
}
