//! Shows that the decision pipeline allocates only its answer: deciding a
//! request makes exactly as many heap allocations as cloning the decision
//! it returns, and a verdict, which borrows its names from the policy,
//! makes none.

// A global allocator must implement the unsafe `GlobalAlloc` trait. This is
// the only file in the package that allows unsafe code; it forwards every
// call to the system allocator unchanged and only counts.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use triage::classify::Classifier;
use triage::decide::{self, Context, Limits};
use triage::policy::Policy;
use triage::proto::{DecideRequest, Message, QualityTier, Requirements};

struct Counting;

thread_local! {
    /// Allocations made by this thread, so tests running in parallel on
    /// other threads do not disturb the count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds the `GlobalAlloc` contract; counting touches only a thread-local
// `Cell` that needs no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, value)
}

fn request(prompt: &str) -> DecideRequest {
    DecideRequest {
        request_id: "alloc-1".into(),
        prompt: prompt.into(),
        ..DecideRequest::default()
    }
}

fn cases() -> Vec<(&'static str, DecideRequest)> {
    let mut pinned = request("Review this clause.");
    pinned.pinned_model = "beta-large".into();
    let mut rule_pin = request("Review this clause.");
    rule_pin.tenant = "legal".into();
    let mut rule = request("Loving the new update!");
    rule.route = "tweet-sentiment".into();
    let mut bypass = request("Summarize this thread.");
    bypass.latency_budget_ms = 100;
    let mut limited = request("Describe this image.");
    limited.allowed_providers = vec!["beta".into()];
    limited.required = Some(Requirements {
        vision: true,
        ..Requirements::default()
    });
    limited.quality_tier = QualityTier::High.into();
    let mut messages = request("");
    messages.messages = vec![Message {
        role: "user".into(),
        content: "hello there".into(),
    }];
    let mut free = request("hi");
    free.labels.insert("plan".into(), "free".into());
    vec![
        ("pinned", pinned),
        ("rule pin", rule_pin),
        ("rule skip classifier", rule),
        ("latency bypass", bypass),
        ("default", request("Write a haiku about queues.")),
        ("provider and capability limits", limited),
        ("messages", messages),
        ("label rule", free),
    ]
}

/// Runs `check` on every case with the fixture policy and the embedded
/// classifier.
fn for_each_case(check: impl Fn(Context<'_>, &str, &DecideRequest)) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/policy.yaml");
    let policy = Policy::load(&path).unwrap();
    let limits = Limits::default();
    let context = Context {
        policy: &policy,
        limits: &limits,
        classifier: Some(Classifier::embedded()),
    };
    for (case, request) in cases() {
        check(context, case, &request);
    }
}

#[test]
fn verdict_allocates_nothing() {
    for_each_case(|context, case, request| {
        // The first call may initialise lazy statics; count the second.
        decide::verdict(context, request).unwrap();
        let (count, verdict) = allocations(|| decide::verdict(context, request).unwrap());
        assert_eq!(count, 0, "{case}: verdict made {count} allocations");
        let decision = decide::decide(context, request).unwrap();
        assert_eq!(verdict.model(), decision.model, "{case}");
        assert_eq!(verdict.provider(), decision.provider, "{case}");
        let fallbacks: Vec<(&str, &str)> = decision
            .fallbacks
            .iter()
            .map(|f| (f.model.as_str(), f.provider.as_str()))
            .collect();
        assert_eq!(verdict.fallbacks().collect::<Vec<_>>(), fallbacks, "{case}");
    });
}

#[test]
fn decide_allocates_only_the_decision() {
    for_each_case(|context, case, request| {
        // The first call may initialise lazy statics; count the second.
        decide::decide(context, request).unwrap();
        let (decide_count, decision) = allocations(|| decide::decide(context, request).unwrap());
        let (clone_count, copy) = allocations(|| decision.clone());
        assert_eq!(copy, decision);
        assert!(clone_count > 0, "{case}: cloning allocated nothing");
        assert_eq!(
            decide_count, clone_count,
            "{case}: decide made {decide_count} allocations, the decision it returned needs {clone_count}"
        );
    });
}
