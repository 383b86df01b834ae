//! The fuzz harness (`tests/model`, also run by `fuzz/`) over a fixed set of seeds, so that
//! the default test command checks every mode, layer, input shape and panic (of a child,
//! an output, the timer or the caller's waker, and where it ends up) against the model
//! without nightly; and the graceful stop in every mode: each trigger, each way a child
//! answers the signal, each way the grace period ends, with every input shape and layer.
//! See `tests/model/mod.rs` for what each run checks.
mod model;

use std::collections::HashSet;

use model::{bytes_from_seed, Ending, Mode, Shape, StopEvent};

fn seeds() -> std::ops::Range<u64> {
    if cfg!(miri) {
        0..40
    } else {
        0..4000
    }
}

#[test]
fn every_seeded_scenario_matches_the_model() {
    let mut covered = HashSet::new();
    for seed in seeds() {
        let bytes = bytes_from_seed(seed, 4096);
        let result = std::panic::catch_unwind(|| model::run(&bytes));
        let (scenario, report) = match result {
            Ok(run) => run,
            Err(panic) => {
                let scenario = model::Scenario::decode(&mut model::Choices::new(&bytes));
                eprintln!("seed {seed} failed: {scenario:?}");
                std::panic::resume_unwind(panic)
            }
        };
        let mode = match scenario.mode {
            Mode::SettleAll => "settle all",
            Mode::FailFast => "fail fast",
            Mode::AsCompleted { .. } => "as completed",
        };
        covered.insert(format!("{mode}: {:?}", report.ending));
        for panic in &report.panics {
            covered.insert(format!("{mode}: {panic}"));
        }
        covered.insert(format!("{:?}", scenario.shape));
        let layers = [
            (scenario.limit.is_some(), "limit"),
            (scenario.deadline, "deadline"),
            (scenario.catch_panics, "catch_panics"),
            (scenario.plans.len() > 128, "over the budget"),
        ];
        for (on, layer) in layers {
            if on {
                covered.insert(format!("{mode} + {layer}"));
            }
        }
        if let Some(grace) = scenario.graceful {
            covered.insert(format!("{mode} + graceful: {:?}", report.ending));
            covered.insert(format!("graceful {:?}", scenario.shape));
            // The graceful layer under the others (a group's come before its gather).
            let first = grace.first && scenario.deadline && scenario.catch_panics;
            let first = (first && scenario.shape != Shape::Group, "first");
            for (on, layer) in layers.into_iter().chain([first]) {
                if on {
                    covered.insert(format!("{mode} + graceful + {layer}"));
                }
            }
            for event in &report.stop {
                covered.insert(format!("{mode} + graceful: {event:?}"));
            }
        }
    }
    if cfg!(miri) {
        return; // too few seeds to cover everything
    }
    // The seeds reach every mode, ending, shape and layer: the check is not vacuous.
    for mode in ["settle all", "fail fast", "as completed"] {
        for ending in [Ending::Completed, Ending::Cancelled, Ending::Poisoned] {
            assert!(
                covered.contains(&format!("{mode}: {ending:?}")),
                "{mode}: {ending:?}"
            );
        }
        for layer in ["limit", "deadline", "catch_panics", "over the budget"] {
            assert!(
                covered.contains(&format!("{mode} + {layer}")),
                "{mode} + {layer}"
            );
        }
    }
    for shape in SHAPES {
        assert!(covered.contains(&format!("{shape:?}")), "{shape:?}");
    }
    // Every panic of the contract, each where it must end up (see `PanicEvent`'s keys:
    // what panicked, where it ran, where it came out), in every mode it applies to.
    for (mode, key) in PANICS_IN_EVERY_MODE
        .iter()
        .chain(PANICS_WHEN_GRACEFUL)
        .flat_map(|key| ["settle all", "fail fast", "as completed"].map(|mode| (mode, *key)))
        .chain(PANICS_IN_FAIL_FAST.iter().map(|key| ("fail fast", *key)))
    {
        assert!(covered.contains(&format!("{mode}: {key}")), "{mode}: {key}");
    }
    // The graceful stop in every mode: every ending, input shape and layer (and the
    // graceful layer under the others), and everything a stop does (see `StopEvent`: what
    // began it, how each child answered, how it ended).
    for mode in ["settle all", "fail fast", "as completed"] {
        for ending in [Ending::Completed, Ending::Cancelled, Ending::Poisoned] {
            let key = format!("{mode} + graceful: {ending:?}");
            assert!(covered.contains(&key), "{key}");
        }
        for layer in [
            "limit",
            "deadline",
            "catch_panics",
            "over the budget",
            "first",
        ] {
            let key = format!("{mode} + graceful + {layer}");
            assert!(covered.contains(&key), "{key}");
        }
        for event in StopEvent::ALL {
            let key = format!("{mode} + graceful: {event:?}");
            assert!(covered.contains(&key), "{key}");
        }
    }
    for shape in SHAPES {
        let key = format!("graceful {shape:?}");
        assert!(covered.contains(&key), "{key}");
    }
}

/// Every input shape of the harness: each is reached, with and without a graceful stop.
const SHAPES: [Shape; 6] = [
    Shape::Vec,
    Shape::FewVec,
    Shape::SmallVec,
    Shape::Array,
    Shape::Iter,
    Shape::Group,
];

/// The panic cases every mode reaches.
const PANICS_IN_EVERY_MODE: &[&str] = &[
    // A child's poll: caught by catch_panics, or out of the poll (the gather poisoned).
    "ChildPoll in ChildPoll -> Caught",
    "ChildPoll in ChildPoll -> Poll",
    // A child's drop before it finished: when the deadline cuts it off, when catch_panics
    // drops it after its poll panicked (swallowed), when the caller drops it.
    "ChildDropRunning in GatherPoll -> Poll (deadline)",
    "ChildDropRunning in GatherPoll -> Swallowed",
    "ChildDropRunning in CallerDrop -> CallerDrop",
    // A child's drop right after it returned `Ready`.
    "ChildDropFinished in GatherPoll -> Caught",
    "ChildDropFinished in GatherPoll -> Poll",
    // An output's drop, by the caller (the outputs, the stream, the gather).
    "OutputDrop in CallerDrop -> CallerDrop",
    // The timer.
    "TimerPoll in GatherPoll -> Poll",
    "TimerDrop in CallerDrop -> CallerDrop",
    // The caller's waker, called by a child (its panic), by the gather, by the caller's
    // drop, or by a wake from outside any poll (the test's, or a thread's).
    "WakerClone in ChildPoll -> Caught",
    "WakerClone in ChildPoll -> Poll",
    "WakerClone in GatherPoll -> Poll",
    "WakerWake in ChildPoll -> Caught",
    "WakerWake in ChildPoll -> Poll",
    "WakerWake in GatherPoll -> Poll",
    "WakerWake in Environment -> Environment",
    "WakerWake in OtherThread -> OtherThread",
    "WakerDrop in GatherPoll -> Poll",
    "WakerDrop in CallerDrop -> CallerDrop",
    "WakerDrop in Environment -> Environment",
];

/// The panic cases of the graceful layer, in every mode: `grace()`, the grace timer, and a
/// child's drop when the grace period is over.
const PANICS_WHEN_GRACEFUL: &[&str] = &[
    "Grace in GatherPoll -> Poll",
    "GraceTimerPoll in GatherPoll -> Poll",
    "GraceTimerDrop in CallerDrop -> CallerDrop",
    "ChildDropRunning in GatherPoll -> Poll (grace over)",
];

/// The panic cases only fail-fast reaches: the drops it makes in its poll after an error.
const PANICS_IN_FAIL_FAST: &[&str] = &[
    "ChildDropRunning in GatherPoll -> Poll (fail fast)",
    "OutputDrop in GatherPoll -> Poll (fail fast)",
];

/// Inputs the fuzz targets once failed on (`fuzz/regressions/<target>/`), replayed in their
/// target's mode.
#[test]
#[cfg_attr(miri, ignore = "Miri isolates the file system")]
fn every_fuzz_regression_input_matches_the_model() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (target, mode) in [
        ("settle_all", model::ModeKind::SettleAll),
        ("fail_fast", model::ModeKind::FailFast),
        ("as_completed", model::ModeKind::AsCompleted),
    ] {
        let Ok(inputs) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for input in inputs {
            let path = input.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| model::run_in(mode, &bytes));
            if let Err(panic) = result {
                eprintln!("{} failed", path.display());
                std::panic::resume_unwind(panic);
            }
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs found under {}",
        root.display()
    );
}
