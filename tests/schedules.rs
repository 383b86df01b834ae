//! The fuzz harness (`tests/model`, also run by `fuzz/`) over a fixed set of seeds, so that
//! the default test command checks every mode, layer and input shape against the model
//! without nightly. See `tests/model/mod.rs` for what each run checks.
mod model;

use std::collections::HashSet;

use model::{bytes_from_seed, Ending, Mode, Shape};

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
        let (scenario, ending) = match result {
            Ok(run) => run,
            Err(panic) => {
                eprintln!("seed {seed} failed");
                std::panic::resume_unwind(panic)
            }
        };
        let mode = match scenario.mode {
            Mode::SettleAll => "settle all",
            Mode::FailFast => "fail fast",
            Mode::AsCompleted { .. } => "as completed",
        };
        covered.insert(format!("{mode}: {ending:?}"));
        covered.insert(format!("{:?}", scenario.shape));
        for (on, layer) in [
            (scenario.limit.is_some(), "limit"),
            (scenario.deadline, "deadline"),
            (scenario.catch_panics, "catch_panics"),
            (scenario.plans.len() > 128, "over the budget"),
        ] {
            if on {
                covered.insert(format!("{mode} + {layer}"));
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
    for shape in [Shape::Vec, Shape::SmallVec, Shape::Array, Shape::Iter] {
        assert!(covered.contains(&format!("{shape:?}")), "{shape:?}");
    }
}

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
