//! Ten API calls at once, every outcome kept: the scenario `gather` was written for.
//!
//! Each simulated call takes its own time and some fail, with different error types. The
//! example prints the successes, each failure with the index of the call that failed, the
//! compound error, which kinds of error occurred, and then what `fail_fast` makes of the
//! same calls.
//!
//! Run it with `cargo run --example api_calls`.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use gather::gather;

type BoxError = Box<dyn Error + Send + Sync>;

/// The server answered with an error status.
#[derive(Debug)]
struct HttpError {
    status: u16,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)
    }
}

impl Error for HttpError {}

/// The server did not answer in time.
#[derive(Debug)]
struct Timeout {
    after: Duration,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no answer after {:?}", self.after)
    }
}

impl Error for Timeout {}

/// How each simulated call ends.
#[derive(Clone, Copy)]
enum Reply {
    Body(&'static str),
    Status(u16),
    Silence,
    Garbled,
}

/// One API call: waits `latency_ms`, then answers as `reply` says.
async fn call(user: u32, latency_ms: u64, reply: Reply) -> Result<String, BoxError> {
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    match reply {
        Reply::Body(name) => Ok(format!("call {user}: {name}")),
        Reply::Status(status) => Err(HttpError { status }.into()),
        Reply::Silence => Err(Timeout {
            after: Duration::from_millis(latency_ms),
        }
        .into()),
        // A body that should hold the user's age and does not parse.
        Reply::Garbled => Err("forty-two".parse::<u8>().unwrap_err().into()),
    }
}

const CALLS: [(u64, Reply); 10] = [
    (120, Reply::Body("ada")),
    (40, Reply::Status(503)),
    (90, Reply::Body("grace")),
    (10, Reply::Body("barbara")),
    (150, Reply::Silence),
    (60, Reply::Body("edsger")),
    (30, Reply::Garbled),
    (80, Reply::Status(404)),
    (20, Reply::Body("donald")),
    (70, Reply::Body("frances")),
];

fn calls() -> [impl std::future::Future<Output = Result<String, BoxError>>; 10] {
    let mut user = 0;
    CALLS.map(|(latency, reply)| {
        let call = call(user, latency, reply);
        user += 1;
        call
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let started = Instant::now();
    let gathered = gather(calls()).await;
    println!(
        "settled {} calls in {:?}",
        gathered.len(),
        started.elapsed()
    );

    println!("\n{} succeeded:", gathered.success_count());
    for body in gathered.successes() {
        println!("  {body}");
    }

    println!("\n{} failed:", gathered.error_count());
    for (index, error) in gathered.errors() {
        println!("  call {index}: {error}");
    }

    println!("\nby kind:");
    let statuses: Vec<u16> = gathered
        .errors_of::<HttpError>()
        .map(|(_, e)| e.status)
        .collect();
    println!("  HTTP errors: {statuses:?}");
    println!("  any timeout: {}", gathered.has_error::<Timeout>());
    println!(
        "  any garbled body: {}",
        gathered.has_error::<std::num::ParseIntError>()
    );

    let compound = gathered.into_compound_error().expect("some calls fail");
    println!("\ncompound error: {compound}");
    let (server, other) = compound.split(|e| e.is::<HttpError>());
    println!("  HTTP errors only: {}", server.expect("two HTTP errors"));
    println!(
        "  everything else:  {}",
        other.expect("a timeout and a garbled body")
    );

    let started = Instant::now();
    match gather(calls()).fail_fast().await {
        Ok(bodies) => println!("\nfail_fast: every call succeeded: {bodies:?}"),
        Err(error) => {
            let (index, first) = error.first();
            println!(
                "\nfail_fast: call {index} failed first ({first}) after {:?}; \
                 the calls still running were dropped",
                started.elapsed()
            );
        }
    }
}
