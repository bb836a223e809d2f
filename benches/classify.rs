//! Classifier latency on prompts of about 100 B, 1 KB and 8 KB.
//!
//! The prompts are built here from a few hand-written sentences, so the
//! numbers depend only on prompt length and the compiled-in weights.

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
    for (name, len) in [("100B", 100), ("1KB", 1024), ("8KB", 8192)] {
        let prompt = prompt_of(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| b.iter(|| classifier.classify(black_box(&prompt))));
    }
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
