//! Commands that work on a policy without serving: `check`, `explain` and
//! `route`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::output::{errln, outln};
use super::request_json::{RequestJson, decision_to_json};
use crate::classify::Classifier;
use crate::decide::{self, Context, Limits};
use crate::policy::{Policy, Severity};
use crate::proto::{DecideRequest, QualityTier};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Policy file (YAML) to check.
    #[arg(value_name = "POLICY")]
    policy: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Policy file (YAML); without it the embedded default policy is used.
    #[arg(long, env = "TRIAGE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Classifier weights file (.tcw); without it the built-in weights are used.
    #[arg(long, env = "TRIAGE_CLASSIFIER", value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Largest prompt accepted, in bytes, summed over prompt and messages,
    /// as `serve --max-prompt-bytes` sets it.
    #[arg(long, env = "TRIAGE_MAX_PROMPT_BYTES", value_name = "BYTES", default_value_t = Limits::default().max_prompt_bytes)]
    max_prompt_bytes: usize,
    /// Request as JSON, with the proto field names of DecideRequest; "-"
    /// reads standard input.
    #[arg(value_name = "REQUEST.json")]
    request: PathBuf,
}

#[derive(Debug, Args)]
pub struct RouteArgs {
    /// Prompt text to route; --prompt-file reads it from a file instead.
    #[arg(long, value_name = "TEXT", required_unless_present = "prompt_file")]
    prompt: Option<String>,
    /// File whose whole content, UTF-8 text, is the prompt to route; "-"
    /// reads standard input. It must fit in --max-prompt-bytes.
    #[arg(long, value_name = "PATH", conflicts_with = "prompt")]
    prompt_file: Option<PathBuf>,
    /// Policy file (YAML); without it the embedded default policy is used.
    #[arg(long, env = "TRIAGE_POLICY", value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Classifier weights file (.tcw); without it the built-in weights are used.
    #[arg(long, env = "TRIAGE_CLASSIFIER", value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Tenant name to match rules against.
    #[arg(long, value_name = "NAME", default_value = "")]
    tenant: String,
    /// Route name to match rules against.
    #[arg(long, value_name = "NAME", default_value = "")]
    route: String,
    /// Quality tier: best, high, standard or economy.
    #[arg(long, value_name = "TIER")]
    tier: Option<String>,
    /// Declared task type, such as code or summarization.
    #[arg(long, value_name = "TASK")]
    task: Option<String>,
    /// Largest prompt accepted, in bytes, summed over prompt and messages,
    /// as `serve --max-prompt-bytes` sets it.
    #[arg(long, env = "TRIAGE_MAX_PROMPT_BYTES", value_name = "BYTES", default_value_t = Limits::default().max_prompt_bytes)]
    max_prompt_bytes: usize,
}

/// Prints every diagnostic; exits non-zero when any is an error.
pub fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    match Policy::load(&args.policy) {
        Ok(policy) => {
            for warning in &policy.warnings {
                errln!("{warning}");
            }
            outln!(
                "{}: ok: version {}, {} providers, {} models, {} rules, {} warnings",
                args.policy.display(),
                policy.version,
                policy.providers.len(),
                policy.models.len(),
                policy.rules.len(),
                policy.warnings.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            for diagnostic in &diagnostics {
                errln!("{diagnostic}");
            }
            let errors = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            errln!("{}: {errors} errors", args.policy.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn explain(args: &ExplainArgs) -> anyhow::Result<ExitCode> {
    let text = read_input(&args.request)?;
    // serde reads a struct from a JSON array too, by position, which would
    // silently give array items the meaning of the first fields.
    if !text.trim_start().starts_with('{') {
        anyhow::bail!(
            "invalid request JSON in {}: expected an object such as {{\"prompt\": \"...\"}}",
            args.request.display()
        );
    }
    let parsed: RequestJson = serde_json::from_str(&text).map_err(|err| {
        anyhow::anyhow!("invalid request JSON in {}: {err}", args.request.display())
    })?;
    let request = parsed.into_request()?;
    decide_and_print(
        args.policy.as_deref(),
        args.classifier.as_deref(),
        args.max_prompt_bytes,
        &request,
    )
}

pub fn route(args: &RouteArgs) -> anyhow::Result<ExitCode> {
    let request = RequestJson::default();
    let mut request = request.into_request()?;
    request.prompt = match (&args.prompt, &args.prompt_file) {
        (_, Some(path)) => read_prompt(path, args.max_prompt_bytes)?,
        (Some(prompt), None) => prompt.clone(),
        // clap requires one of the two.
        (None, None) => anyhow::bail!("no prompt; pass --prompt TEXT or --prompt-file PATH"),
    };
    request.tenant = args.tenant.clone();
    request.route = args.route.clone();
    if let Some(tier) = &args.tier {
        let json = serde_json::json!({ "quality_tier": tier });
        request.quality_tier = serde_json::from_value::<RequestJson>(json)?
            .into_request()?
            .quality_tier;
        if request.quality_tier == i32::from(QualityTier::Unspecified) {
            anyhow::bail!("invalid --tier {tier:?}; use best, high, standard or economy");
        }
    }
    if let Some(task) = &args.task {
        let json = serde_json::json!({ "task_type": task });
        request.task_type = serde_json::from_value::<RequestJson>(json)?
            .into_request()?
            .task_type;
    }
    decide_and_print(
        args.policy.as_deref(),
        args.classifier.as_deref(),
        args.max_prompt_bytes,
        &request,
    )
}

fn decide_and_print(
    policy: Option<&Path>,
    classifier: Option<&Path>,
    max_prompt_bytes: usize,
    request: &DecideRequest,
) -> anyhow::Result<ExitCode> {
    let policy = match policy {
        Some(path) => Policy::load(path),
        None => Policy::embedded(),
    }
    .map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("policy has errors:\n{}", lines.join("\n"))
    })?;
    let limits = Limits {
        max_prompt_bytes,
        ..Limits::default()
    };
    let classifier = match classifier {
        Some(path) => Classifier::load(path)?,
        None => Classifier::embedded().clone(),
    };
    let context = Context {
        policy: &policy,
        limits: &limits,
        classifier: Some(&classifier),
    };
    let decision = decide::decide(context, request)?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&decision_to_json(&decision))?
    );
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))
}

/// Reads a prompt from `path`, or from standard input when it is "-". It
/// reads at most one byte more than `max_bytes`, so an oversized input is
/// rejected without being held in memory.
fn read_prompt(path: &Path, max_bytes: usize) -> anyhow::Result<String> {
    let from_stdin = path == Path::new("-");
    let name = if from_stdin {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    };
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut bytes = Vec::new();
    let read = if from_stdin {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|file| file.take(limit).read_to_end(&mut bytes))
    };
    read.map_err(|err| anyhow::anyhow!("cannot read the prompt from {name}: {err}"))?;
    if bytes.len() > max_bytes {
        anyhow::bail!(
            "prompt from {name} is over the limit of {max_bytes} bytes; raise --max-prompt-bytes \
             or send less text"
        );
    }
    String::from_utf8(bytes).map_err(|err| {
        anyhow::anyhow!(
            "prompt from {name} is not valid UTF-8 (the first invalid byte is at offset {}); \
             convert it to UTF-8",
            err.utf8_error().valid_up_to()
        )
    })
}
