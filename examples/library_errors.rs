//! Library code with `thiserror`: a query crate whose public error type holds every
//! failed shard at once, whatever the shape of the gather that found them (a `Vec` of
//! shards under a deadline, or a fixed pair).
//!
//! Run it with `cargo run --example library_errors`.

use std::time::Duration;

use gather::{gather, CompoundError, TimedOut};
use thiserror::Error;

/// What one shard can say.
#[derive(Debug, Error)]
pub enum ShardError {
    /// The shard did not answer.
    #[error("shard {0} unreachable")]
    Unreachable(usize),
    /// The query's deadline passed first.
    #[error("timed out")]
    TimedOut,
}

impl From<TimedOut> for ShardError {
    fn from(_: TimedOut) -> Self {
        ShardError::TimedOut
    }
}

/// The library's public error: every failed shard, with its index.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The query named no shard.
    #[error("no shard to ask")]
    NoShards,
    /// Some shards failed: each with its index.
    // The compound names every failure in its message, so it is not a `#[source]`.
    #[error("the query failed: {0}")]
    Shards(CompoundError<ShardError>),
}

async fn ask(shard: usize, latency_ms: u64) -> Result<u64, ShardError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    if shard == 2 {
        return Err(ShardError::Unreachable(shard));
    }
    Ok(shard as u64 * 100)
}

/// Asks every shard, at most 50 ms each; every failure comes back together.
pub async fn query_all(latencies: &[u64]) -> Result<Vec<u64>, QueryError> {
    if latencies.is_empty() {
        return Err(QueryError::NoShards);
    }
    let calls: Vec<_> = latencies
        .iter()
        .enumerate()
        .map(|(shard, &latency)| ask(shard, latency))
        .collect();
    let timer = tokio::time::sleep(Duration::from_millis(50));
    gather(calls)
        .deadline(timer)
        .await
        .into_result()
        .map_err(QueryError::Shards)
}

/// Asks two shards at once: an array gather, whose errors live inline, converted to the
/// same public error type.
pub async fn query_pair() -> Result<[u64; 2], QueryError> {
    gather([ask(0, 1), ask(2, 1)])
        .fail_fast()
        .await
        .map_err(|inline| QueryError::Shards(inline.into()))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match query_all(&[5, 10, 5, 500]).await {
        Ok(rows) => println!("rows: {rows:?}"),
        Err(error) => println!("error: {error}"),
    }
    match query_pair().await {
        Ok(rows) => println!("rows: {rows:?}"),
        Err(error) => println!("error: {error}"),
    }
    assert!(matches!(query_all(&[]).await, Err(QueryError::NoShards)));
}
