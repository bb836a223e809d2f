//! Classifier latency on prompts of about 100 B, 1 KB and 8 KB.
//!
//! By default the prompts are built here from a few hand-written
//! sentences, so the numbers depend only on prompt length and the
//! compiled-in weights. `TRIAGE_BENCH_PROMPTS` can name a JSONL file with
//! a `prompt` string on each line. The `real` group then classifies, in
//! turn, the prompts of that file whose length is within 25% of each size,
//! and reports the mean time per prompt.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use triage::classify::Classifier;

const SENTENCES: [&str; 6] = [
    "Write a Rust function that merges two sorted vectors into one sorted vector. ",
    "The function should run in linear time and must not allocate more than once. ",
    "Explain why the borrow checker rejects the first version shown below. ",
    "fn merge(a: &[i32], b: &[i32]) -> Vec<i32> { let mut out = Vec::new(); out } ",
    "What is the expected output for the inputs [1, 4, 9] and [2, 3, 10]? ",
    "Summarize the trade-offs in two short paragraphs for a code review. ",
];

const SIZES: [(&str, usize); 3] = [("100B", 100), ("1KB", 1024), ("8KB", 8192)];

/// Repeats the sentences until the prompt is `len` bytes long.
fn prompt_of(len: usize) -> String {
    let mut prompt = String::with_capacity(len + 100);
    for sentence in SENTENCES.iter().cycle() {
        if prompt.len() >= len {
            break;
        }
        prompt.push_str(sentence);
    }
    prompt.truncate(len);
    prompt
}

fn classify(c: &mut Criterion) {
    let classifier = Classifier::embedded();
    let mut group = c.benchmark_group("classify");
    for (name, len) in SIZES {
        let prompt = prompt_of(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| b.iter(|| classifier.classify(black_box(&prompt))));
    }
    group.finish();
}

/// Reads the `prompt` strings of a JSONL file, skipping lines without one.
fn read_prompts(path: &str) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => panic!("cannot read TRIAGE_BENCH_PROMPTS file {path}: {err}"),
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|value| value.get("prompt")?.as_str().map(str::to_owned))
        .collect()
}

fn classify_real(c: &mut Criterion) {
    let Ok(path) = std::env::var("TRIAGE_BENCH_PROMPTS") else {
        return;
    };
    let prompts = read_prompts(&path);
    let classifier = Classifier::embedded();
    let mut group = c.benchmark_group("real");
    for (name, len) in SIZES {
        let near: Vec<&String> = prompts
            .iter()
            .filter(|p| p.len() * 4 >= len * 3 && p.len() * 4 <= len * 5)
            .collect();
        if near.is_empty() {
            continue;
        }
        let mut next = near.iter().cycle();
        group.bench_function(format!("{name}_{}_prompts", near.len()), |b| {
            b.iter(|| classifier.classify(black_box(next.next().map_or("", |p| p.as_str()))))
        });
    }
    group.finish();
}

criterion_group!(benches, classify, classify_real);
criterion_main!(benches);
