// Generic code that calls `.deadline()` without `E: From<TimedOut>`.
use std::future::Future;

async fn with_deadline<F, T, E>(calls: Vec<F>, timer: impl Future)
where
    F: Future<Output = Result<T, E>>,
{
    let _ = gather::gather(calls).deadline(timer).await;
}

fn main() {}
