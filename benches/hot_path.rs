//! Hot-path benchmarks: the decision pipeline on each path that does not
//! need the classifier, the frame codec, and recording decision metrics.
//!
//! Run with `cargo bench --bench hot_path`; results are in
//! docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use bytes::BytesMut;
use criterion::{Criterion, criterion_group, criterion_main};
use triage::classify::Classifier;
use triage::decide::{self, Context, Limits};
use triage::frame::{self, DEFAULT_MAX_FRAME_BYTES, Kind};
use triage::policy::Policy;
use triage::proto::{DecideRequest, Decision};
use triage::serve::State;
use triage::serve::state::{path_label, record_decision};

/// The allocator of the triage binary, so that building messages costs here
/// what it costs in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn policy() -> Policy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy.yaml");
    Policy::load(&path).unwrap()
}

fn request(prompt: &str) -> DecideRequest {
    DecideRequest {
        request_id: "bench-000001".into(),
        prompt: prompt.into(),
        ..DecideRequest::default()
    }
}

/// Builds one request per path, named as in the benchmark ids.
/// A code-review prompt of about 1 KB, the size the classified-path target
/// is stated for.
fn classified_prompt_1k() -> String {
    let mut prompt = String::from(
        "Please review the following Rust function for correctness and performance. \
         It parses a configuration file, validates every key, and returns a map of \
         settings. Point out any panics on malformed input, unnecessary allocations, \
         and places where the error message would not help the user fix the file.\n\n",
    );
    while prompt.len() < 1000 {
        prompt.push_str("fn parse(line: &str) -> Option<(&str, &str)> { line.split_once('=') }\n");
    }
    prompt.truncate(1024);
    prompt
}

fn requests() -> Vec<(&'static str, DecideRequest)> {
    let mut pinned = request("Review this contract clause for liability limits.");
    pinned.pinned_model = "beta-large".into();
    let mut rule = request("Is this tweet positive or negative? Loving the new update!");
    rule.route = "tweet-sentiment".into();
    let mut bypass = request("Summarize this thread in two sentences.");
    bypass.latency_budget_ms = 100;
    let short = request("Write a haiku about queues.");
    let long = request(&classified_prompt_1k());
    vec![
        ("pinned", pinned),
        ("rule", rule),
        ("latency_bypass", bypass),
        ("classified_short", short),
        ("classified_1k", long),
    ]
}

/// Returns a decision context with the embedded classifier.
fn context<'a>(policy: &'a Policy, limits: &'a Limits) -> Context<'a> {
    Context {
        policy,
        limits,
        classifier: Some(Classifier::embedded()),
    }
}

fn bench_decide(c: &mut Criterion) {
    let policy = policy();
    let limits = Limits::default();
    let context = context(&policy, &limits);
    let mut group = c.benchmark_group("decide");
    for (name, request) in requests() {
        group.bench_function(name, |b| {
            b.iter(|| decide::decide(context, black_box(&request)).unwrap())
        });
    }
    group.finish();

    // The same pipeline without building the wire message: what an
    // in-process caller pays when it reads only the model, provider and
    // failover list.
    let mut group = c.benchmark_group("verdict");
    for (name, request) in requests() {
        group.bench_function(name, |b| {
            b.iter(|| decide::verdict(context, black_box(&request)).unwrap())
        });
    }
    group.finish();

    let sample = decide::decide(context, &requests()[1].1).unwrap();
    c.bench_function("decide/clone_decision_baseline", |b| {
        b.iter(|| black_box(&sample).clone())
    });
}

fn bench_state_decide(c: &mut Criterion) {
    triage::telemetry::metrics_handle();
    let state = State::new(policy(), Limits::default());
    let mut group = c.benchmark_group("state_decide");
    for (name, request) in requests() {
        group.bench_function(name, |b| {
            b.iter(|| state.decide(black_box(&request)).unwrap())
        });
    }
    group.finish();
}

fn bench_frames(c: &mut Criterion) {
    let state = State::new(policy(), Limits::default());
    let request = &requests()[1].1;
    let decision = state.decide(request).unwrap();
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    let mut group = c.benchmark_group("frame");
    group.bench_function("encode_decision", |b| {
        b.iter(|| {
            buffer.clear();
            frame::encode_message(
                &mut buffer,
                Kind::Response,
                7,
                black_box(&decision),
                DEFAULT_MAX_FRAME_BYTES,
            )
            .unwrap();
        })
    });
    // The frame server's path: the same decision encoded from its verdict,
    // without building the message.
    let policy = policy();
    let limits = Limits::default();
    let context = context(&policy, &limits);
    let verdict = decide::verdict(context, request).unwrap();
    group.bench_function("encode_verdict", |b| {
        b.iter(|| {
            buffer.clear();
            let verdict = black_box(&verdict);
            let len = verdict.encoded_len(1_000);
            frame::encode_with(
                &mut buffer,
                Kind::Response,
                7,
                len.total(),
                |buf| verdict.encode(1_000, len, buf),
                DEFAULT_MAX_FRAME_BYTES,
            )
            .unwrap();
        })
    });
    let mut encoded = BytesMut::new();
    frame::encode_message(
        &mut encoded,
        Kind::Request,
        7,
        request,
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap();
    group.bench_function("decode_request", |b| {
        b.iter(|| {
            let mut input = encoded.clone();
            let frame = frame::decode(&mut input, DEFAULT_MAX_FRAME_BYTES)
                .unwrap()
                .unwrap();
            <DecideRequest as prost::Message>::decode(frame.payload).unwrap()
        })
    });
    group.finish();
}

/// Records the way `record_decision` did before its handles were cached:
/// label strings allocated and looked up in the registry on every call.
fn record_by_macro(decision: &Decision) {
    let receipt = decision.receipt.as_ref().unwrap();
    let path = path_label(receipt.path());
    let rule = if receipt.rule.is_empty() {
        "none".to_owned()
    } else {
        receipt.rule.clone()
    };
    metrics::counter!("triage_decisions_total", "path" => path, "model" => decision.model.clone(), "rule" => rule)
        .increment(1);
    metrics::histogram!("triage_decision_duration_seconds", "path" => path)
        .record(receipt.decide_nanos as f64 / 1e9);
}

fn bench_record(c: &mut Criterion) {
    triage::telemetry::metrics_handle();
    let state = State::new(policy(), Limits::default());
    let decision = state.decide(&requests()[1].1).unwrap();
    let mut group = c.benchmark_group("record_decision");
    group.bench_function("cached_handles", |b| {
        b.iter(|| record_decision(black_box(&decision)))
    });
    group.bench_function("macro_lookup", |b| {
        b.iter(|| record_by_macro(black_box(&decision)))
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_decide,
    bench_state_decide,
    bench_frames,
    bench_record
);
criterion_main!(benches);
