//! Five calls at once, each reported the moment it finishes: `asyncio.as_completed`.
//!
//! Run it with `cargo run --example as_completed`.

use std::pin::pin;
use std::time::{Duration, Instant};

use gather::gather;

/// A simulated call that takes `latency_ms` and fails when `fails` says so.
async fn call(latency_ms: u64, fails: bool) -> Result<String, String> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    if fails {
        Err(format!("failed after {latency_ms} ms"))
    } else {
        Ok(format!("answered in {latency_ms} ms"))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let plan = [
        (120, false),
        (40, true),
        (90, false),
        (10, false),
        (150, true),
    ];
    let started = Instant::now();
    let mut calls = pin!(gather(plan.map(|(ms, fails)| call(ms, fails))).as_completed());
    while let Some((index, outcome)) = calls.as_mut().next_completed().await {
        let (at, remaining) = (started.elapsed().as_millis(), calls.len());
        match outcome {
            Ok(body) => println!("{at:>4} ms  call {index}: ok, {body}; {remaining} left"),
            Err(error) => println!("{at:>4} ms  call {index}: error, {error}; {remaining} left"),
        }
    }
}
