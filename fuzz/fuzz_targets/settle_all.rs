//! Arbitrary children, layers (limit, deadline, catch_panics), input shapes, poll and
//! drop schedules, and panics (of a child's poll or drop, an output's drop, the timer, the
//! caller's waker), driven in the settle-all mode and checked against the model in
//! `tests/model` (the same harness `tests/schedules.rs` runs over fixed seeds).
#![no_main]

#[path = "../../tests/model/mod.rs"]
mod model;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    model::run_in(model::ModeKind::SettleAll, bytes);
});
