//! `gather` under embassy, on a desktop: `embassy-executor` with its std platform and
//! `embassy-time` with its std driver. Four simulated sensor reads, one of which fails and
//! one of which is too slow for the deadline, an `embassy_time::Timer`.
//!
//! The same code runs on a microcontroller with a time driver for its hardware timer: see
//! `tests/embedded/` and the README, "On microcontrollers".
//!
//! `cargo run --example embassy`

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant, Timer};
use gather::{gather, TimedOut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SensorError {
    Offline,
    TimedOut,
}

impl From<TimedOut> for SensorError {
    fn from(_: TimedOut) -> Self {
        SensorError::TimedOut
    }
}

/// A sensor read that takes `ms` milliseconds.
async fn read(ms: u64, reading: Result<f32, SensorError>) -> Result<f32, SensorError> {
    Timer::after_millis(ms).await;
    reading
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let start = Instant::now();
    let gathered = gather([
        read(10, Ok(21.5)),
        read(20, Err(SensorError::Offline)),
        read(15, Ok(22.0)),
        read(500, Ok(19.0)),
    ])
    .deadline(Timer::after_millis(50))
    .await;
    let elapsed = start.elapsed();

    for (index, error) in gathered.errors() {
        println!("sensor {index}: {error:?}");
    }
    let successes: Vec<f32> = gathered.successes().copied().collect();
    println!("readings: {successes:?} in {} ms", elapsed.as_millis());

    assert_eq!(successes, [21.5, 22.0]);
    assert_eq!(
        gathered
            .errors()
            .map(|(index, error)| (index, *error))
            .collect::<Vec<_>>(),
        [(1, SensorError::Offline), (3, SensorError::TimedOut)]
    );
    assert!(elapsed >= Duration::from_millis(50) && elapsed < Duration::from_millis(500));
    std::process::exit(0);
}
