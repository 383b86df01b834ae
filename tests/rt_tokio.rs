//! The shared behaviour cases under tokio: on a current-thread runtime, and spawned onto
//! the workers of a multi-thread runtime (wakes arrive from other threads, and the gather
//! may move between workers).
mod common;

use std::future::Future;

fn current_thread<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn multi_thread<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(future).await.unwrap() })
}

mod current {
    use super::*;
    runtime_cases!(current_thread, tokio::time::sleep);
}

mod multi {
    use super::*;
    runtime_cases!(multi_thread, tokio::time::sleep);
}
