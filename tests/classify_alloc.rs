//! Checks that `Classifier::classify` does not allocate, with a global
//! allocator that counts every allocation in the process. The file contains a
//! single test so that no other test allocates at the same time.

use std::alloc::System;
use std::hint::black_box;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use triage::classify::Classifier;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn allocations_during(f: impl Fn()) -> usize {
    let region = Region::new(GLOBAL);
    f();
    let change = region.change();
    change.allocations + change.reallocations
}

#[test]
fn classify_does_not_allocate() {
    let classifier = Classifier::embedded();
    let long = "Prove that the sum of two even numbers is even. ".repeat(400);
    let prompts = [
        "",
        "hi",
        "Write a haiku about autumn leaves.",
        long.as_str(),
    ];

    let control = allocations_during(|| {
        black_box(vec![1u8; 64]);
    });
    assert!(control >= 1, "the counting allocator must observe a Vec");

    for prompt in prompts {
        let count = allocations_during(|| {
            black_box(classifier.classify(black_box(prompt)));
        });
        assert_eq!(
            count,
            0,
            "{count} allocations for a {}-byte prompt",
            prompt.len()
        );
    }
}
