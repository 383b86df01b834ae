//! A `Group` under the same harness as the other targets (`tests/model`): its first child
//! pushed before the first poll, each other one pushed through a `Handle` by the child
//! before it, from inside that child's first poll; every mode (awaited whole, fail-fast,
//! read as a stream and dropped part-way), the layers, the schedules and the panics.
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    model::run_group(bytes);
});
