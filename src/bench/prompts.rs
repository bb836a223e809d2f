//! Prompts for the load generator: a built-in set, or a JSONL file with a
//! `prompt` string or a `turns` list (MT-Bench style) on each line.

use std::path::Path;

use anyhow::Context as _;

use crate::proto::DecideRequest;

/// A small mix of prompt shapes and lengths, written for this benchmark.
const BUILT_IN: [&str; 12] = [
    "Write a Rust function that merges two sorted vectors into one sorted vector without allocating twice.",
    "What is the derivative of x^3 * ln(x)? Show each step.",
    "Summarize the following meeting notes in three bullet points: the team agreed to move the launch to March, the budget for load testing doubles, and the on-call rotation gains two engineers from the platform group.",
    "Extract the invoice number, the total and the due date from this text: Invoice INV-20931, total due EUR 1,240.50, payable by 14 February.",
    "Classify the sentiment of this review as positive, negative or neutral: the battery lasts two days but the screen scratches easily.",
    "Write a short poem about a lighthouse keeper who collects lost letters.",
    "Why does a Kubernetes pod stay in CrashLoopBackOff, and how do I find the cause?",
    "Rewrite this sentence to sound more formal: hey, can u send me the numbers by tmrw?",
    "hi",
    "Explain the difference between a mutex and a read-write lock, with an example of when each is the better choice.",
    "A train leaves at 14:05 and travels 210 km at 84 km/h. When does it arrive, and how long would it take at 120 km/h?",
    "Translate to French: the meeting is postponed until further notice.",
];

/// Loads prompts from `path`, or the built-in set when `path` is `None`.
pub fn load(path: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let Some(path) = path else {
        return Ok(BUILT_IN.iter().map(|p| (*p).to_owned()).collect());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read prompts file {}", path.display()))?;
    let mut prompts = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let prompt = parse_line(line)
            .with_context(|| format!("{}:{}: invalid prompt line", path.display(), index + 1))?;
        prompts.push(prompt);
    }
    if prompts.is_empty() {
        anyhow::bail!("prompts file {} contains no prompts", path.display());
    }
    Ok(prompts)
}

fn parse_line(line: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    if let Some(prompt) = value.get("prompt").and_then(|p| p.as_str()) {
        return Ok(prompt.to_owned());
    }
    let first_turn = value.get("turns").and_then(|t| t.get(0));
    let text = first_turn.and_then(|turn| {
        turn.as_str()
            .or_else(|| turn.get("content").and_then(|c| c.as_str()))
    });
    text.map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("expected a \"prompt\" string or a \"turns\" list"))
}

/// Builds one request per prompt, with a request id like an application's.
pub fn requests(prompts: &[String]) -> Vec<DecideRequest> {
    prompts
        .iter()
        .enumerate()
        .map(|(index, prompt)| DecideRequest {
            request_id: format!("bench-{index:06}"),
            prompt: prompt.clone(),
            ..DecideRequest::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_field_is_read() {
        assert_eq!(parse_line(r#"{"prompt": "a"}"#).unwrap(), "a");
    }

    #[test]
    fn first_turn_is_read() {
        assert_eq!(
            parse_line(r#"{"turns": ["first", "second"]}"#).unwrap(),
            "first"
        );
        assert_eq!(
            parse_line(r#"{"turns": [{"role": "user", "content": "c"}]}"#).unwrap(),
            "c"
        );
    }

    #[test]
    fn line_without_prompt_is_rejected() {
        assert!(parse_line(r#"{"text": "a"}"#).is_err());
        assert!(parse_line("not json").is_err());
    }
}
