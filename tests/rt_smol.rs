//! The shared behaviour cases under smol, spawned onto a multi-threaded executor.
mod common;

use std::future::Future;

fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    smol::block_on(smol::spawn(future))
}

runtime_cases!(run, smol::Timer::after);
