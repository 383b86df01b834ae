//! The shared behaviour cases under async-std, spawned onto its executor.
mod common;

use std::future::Future;

fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    async_std::task::block_on(async_std::task::spawn(future))
}

runtime_cases!(run, async_std::task::sleep);
