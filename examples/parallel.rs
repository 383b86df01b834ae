//! A gather runs its children concurrently inside one task: one thread at a time polls
//! them. For CPU-heavy children on a multi-threaded runtime, spawn each one as a task of
//! its own and gather the `JoinHandle`s: the children then run in parallel, and the gather
//! still hands back every outcome in input order, with the join error (a panic, or a
//! cancelled task) mapped into the child's error type.
//!
//! Run with `cargo run --example parallel`.

use gather::gather;

#[derive(Debug)]
enum Error {
    /// The child itself failed.
    Invalid(u64),
    /// The task running it panicked or was cancelled.
    Task(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(seed) => write!(f, "invalid seed {seed}"),
            Error::Task(why) => write!(f, "task failed: {why}"),
        }
    }
}

/// CPU-heavy work: no `.await` inside, so only another thread can run beside it.
fn checksum(seed: u64) -> Result<u64, Error> {
    if seed == 13 {
        return Err(Error::Invalid(seed));
    }
    let mut x = seed;
    for _ in 0..2_000_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
    }
    Ok(x)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tasks: Vec<_> = (10..16u64)
        .map(|seed| {
            let handle = tokio::task::spawn_blocking(move || checksum(seed));
            // The join error becomes the child's error.
            async move {
                handle
                    .await
                    .unwrap_or_else(|join| Err(Error::Task(join.to_string())))
            }
        })
        .collect();
    let gathered = gather(tasks).await;
    assert_eq!(gathered.len(), 6);
    assert_eq!(gathered.error_count(), 1);
    let (index, error) = gathered.errors().next().unwrap();
    assert_eq!(index, 3);
    assert!(matches!(error, Error::Invalid(13)));
    println!(
        "{} checksums computed in parallel; child {index} failed: {error}",
        gathered.successes().count()
    );
}
