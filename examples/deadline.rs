//! Five calls and a 100 ms deadline: what finished in time, and what was cut off.
//!
//! Run it with `cargo run --example deadline`.

use std::time::{Duration, Instant};

use gather::{gather, TimedOut};

#[derive(Debug)]
enum CallError {
    TimedOut,
}

impl From<TimedOut> for CallError {
    fn from(_: TimedOut) -> Self {
        CallError::TimedOut
    }
}

async fn call(latency_ms: u64) -> Result<String, CallError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    Ok(format!("answered in {latency_ms} ms"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let calls = [30, 250, 80, 1_000, 10].map(call);
    let timer = tokio::time::sleep(Duration::from_millis(100));
    let gathered = gather(calls).deadline(timer).await;
    println!("settled in {} ms", started.elapsed().as_millis());
    for (index, outcome) in gathered.results().iter().enumerate() {
        match outcome {
            Ok(body) => println!("  call {index}: {body}"),
            Err(CallError::TimedOut) => println!("  call {index}: cut off by the deadline"),
        }
    }
    println!(
        "{} in time, {} cut off",
        gathered.success_count(),
        gathered.error_count()
    );
}
