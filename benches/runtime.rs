//! Inside a real runtime: `gather` against the ways tokio users run many futures today,
//! with real timers, real sockets and yield-heavy compute, on tokio's current-thread
//! runtime and on a multi-thread runtime of 2 workers.
//!
//! `cargo bench --bench runtime` prints, for each workload, runtime and number of children
//! N, one row per implementation: wall time and process CPU time (best of 5 runs each,
//! taken apart: the best wall and the best CPU), and each one's ratio to the best of the
//! alternatives in the same run.
//!
//! Workloads (every implementation runs the same child futures):
//! - `timers`: each child sleeps a random 0-20 ms (`tokio::time::sleep`).
//! - `tcp`: each child sends 64 bytes to an echo server on 127.0.0.1 and reads them back,
//!   over a pool of 256 connections (so 256 requests in flight at most); the server runs
//!   on a thread and runtime of its own, started by the benchmark.
//! - `compute`: each child runs 10 rounds of arithmetic, with a `yield_now` after each.
//!
//! Implementations: `gather` (one task polls every child), `gather` of spawned tasks'
//! `JoinHandle`s (children run in parallel on the multi-thread runtime), tokio's
//! `JoinSet`, `tokio::spawn` of each child then awaiting each handle, futures'
//! `FuturesUnordered` and futures-buffered's `join_all`. Each runs inside one spawned
//! task, so that none of them runs on the thread that calls `block_on`.
//!
//! `cargo bench --bench runtime -- quick` runs one short round (for CI); `-- WORKLOAD`
//! runs one workload.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

// ---------------------------------------------------------------------------------------
// Process CPU time.

#[cfg(target_os = "linux")]
fn cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
    let mut time = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid `timespec` for the call to fill.
    let status = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut time) };
    assert_eq!(status, 0, "clock_gettime failed");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

#[cfg(not(target_os = "linux"))]
fn cpu_time() -> Duration {
    // No process clock here: the CPU column repeats the wall time.
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

// ---------------------------------------------------------------------------------------
// The workloads' children.

/// A deterministic stream of numbers (xorshift), for the timers' durations.
fn random(seed: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

async fn sleeper(i: u64) -> u64 {
    let ms = random(i) % 21;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

async fn compute(i: u64) -> u64 {
    let mut x = i;
    for _ in 0..10 {
        for _ in 0..200 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
        }
        tokio::task::yield_now().await;
    }
    x
}

/// 256 connections to the echo server, handed out one request at a time.
struct Pool {
    connections: Mutex<Vec<TcpStream>>,
    free: Semaphore,
}

const CONNECTIONS: usize = 256;

impl Pool {
    async fn connect(address: std::net::SocketAddr) -> Arc<Pool> {
        let mut connections = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let stream = TcpStream::connect(address).await.expect("connect");
            stream.set_nodelay(true).unwrap();
            connections.push(stream);
        }
        Arc::new(Pool {
            connections: Mutex::new(connections),
            free: Semaphore::new(CONNECTIONS),
        })
    }
}

async fn echo_request(pool: Arc<Pool>, i: u64) -> u64 {
    let _permit = pool.free.acquire().await.unwrap();
    let mut stream = pool
        .connections
        .lock()
        .await
        .pop()
        .expect("a free connection");
    let request = [i as u8; 64];
    stream.write_all(&request).await.expect("write");
    let mut reply = [0u8; 64];
    stream.read_exact(&mut reply).await.expect("read");
    assert_eq!(reply, request);
    pool.connections.lock().await.push(stream);
    u64::from(reply[0])
}

/// Starts an echo server on a thread and runtime of its own; returns its address.
fn start_echo_server() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while stream.read_exact(&mut buffer).await.is_ok() {
                        if stream.write_all(&buffer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

// ---------------------------------------------------------------------------------------
// The implementations.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Imp {
    Gather,
    GatherHandles,
    JoinSet,
    SpawnJoin,
    FuturesUnordered,
    BufferedJoinAll,
}

const IMPS: [Imp; 6] = [
    Imp::Gather,
    Imp::GatherHandles,
    Imp::JoinSet,
    Imp::SpawnJoin,
    Imp::FuturesUnordered,
    Imp::BufferedJoinAll,
];

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Gather => "gather",
            Imp::GatherHandles => "gather of spawned JoinHandles",
            Imp::JoinSet => "tokio JoinSet",
            Imp::SpawnJoin => "tokio::spawn + await each",
            Imp::FuturesUnordered => "futures FuturesUnordered",
            Imp::BufferedJoinAll => "futures-buffered join_all",
        }
    }

    /// Runs `n` children made by `child` to the end; returns how many outputs it got.
    async fn run<F>(self, n: u64, child: impl Fn(u64) -> F) -> usize
    where
        F: Future<Output = u64> + Send + 'static,
    {
        let children = (0..n).map(child);
        match self {
            Imp::Gather => gather::gather(children.collect::<Vec<_>>())
                .await
                .results()
                .len(),
            Imp::GatherHandles => {
                // The join error (a panic or a cancellation) would become the child's error.
                let handles: Vec<_> = children.map(tokio::spawn).collect();
                let gathered = gather::gather(handles).await;
                gathered.successes().count()
            }
            Imp::JoinSet => {
                let mut set = JoinSet::new();
                for child in children {
                    set.spawn(child);
                }
                let mut count = 0;
                while let Some(output) = set.join_next().await {
                    output.unwrap();
                    count += 1;
                }
                count
            }
            Imp::SpawnJoin => {
                let handles: Vec<_> = children.map(tokio::spawn).collect();
                let mut count = 0;
                for handle in handles {
                    handle.await.unwrap();
                    count += 1;
                }
                count
            }
            Imp::FuturesUnordered => {
                let mut set: FuturesUnordered<_> = children.collect();
                let mut count = 0;
                while set.next().await.is_some() {
                    count += 1;
                }
                count
            }
            Imp::BufferedJoinAll => futures_buffered::join_all(children).await.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Work {
    Timers,
    Tcp,
    Compute,
}

impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Timers => "timers",
            Work::Tcp => "tcp",
            Work::Compute => "compute",
        }
    }
}

struct Row {
    work: &'static str,
    runtime: &'static str,
    n: u64,
    imp: Imp,
    wall: Duration,
    cpu: Duration,
}

/// One run of `imp` over `n` children of `work`, inside a task spawned on `rt`.
fn run_once(rt: &Runtime, pool: &Arc<Pool>, work: Work, imp: Imp, n: u64) -> (Duration, Duration) {
    let pool = pool.clone();
    let (wall, cpu) = (Instant::now(), cpu_time());
    let count = rt.block_on(async move {
        tokio::spawn(async move {
            match work {
                Work::Timers => imp.run(n, sleeper).await,
                Work::Compute => imp.run(n, compute).await,
                Work::Tcp => imp.run(n, |i| echo_request(pool.clone(), i)).await,
            }
        })
        .await
        .unwrap()
    });
    let elapsed = (wall.elapsed(), cpu_time() - cpu);
    assert_eq!(count as u64, n, "{} lost outputs", imp.name());
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let quick = args.iter().any(|a| a == "quick");
    let runs = if quick { 1 } else { 5 };
    let sizes: &[u64] = if quick {
        &[1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    // `cargo bench --bench runtime -- compute` runs one workload.
    let chosen = |work: &str| args.iter().all(|a| a == "quick") || args.iter().any(|a| a == work);
    let address = start_echo_server();
    let mut rows = Vec::new();
    for (runtime, workers) in [("current-thread", 0), ("multi-thread (2)", 2)] {
        let rt = if workers == 0 {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .unwrap()
        };
        let pool = rt.block_on(Pool::connect(address));
        for work in [Work::Timers, Work::Tcp, Work::Compute] {
            if !chosen(work.name()) {
                continue;
            }
            for &n in sizes {
                if work == Work::Tcp && n > 10_000 {
                    continue;
                }
                // Each implementation's best wall and best CPU over the runs, which
                // alternate between implementations so that a slow spell hits them all.
                let mut best = [(Duration::MAX, Duration::MAX); IMPS.len()];
                for _ in 0..runs {
                    for (k, &imp) in IMPS.iter().enumerate() {
                        let (wall, cpu) = run_once(&rt, &pool, work, imp, n);
                        best[k] = (best[k].0.min(wall), best[k].1.min(cpu));
                    }
                }
                for (k, &imp) in IMPS.iter().enumerate() {
                    rows.push(Row {
                        work: work.name(),
                        runtime,
                        n,
                        imp,
                        wall: best[k].0,
                        cpu: best[k].1,
                    });
                }
            }
        }
    }
    print(&rows, runs);
}

fn print(rows: &[Row], runs: usize) {
    println!(
        "gather in a runtime: {} (best of {runs} runs); wall and process CPU time in ms, \
         and the ratio to the best alternative to `gather` in the same group",
        std::env::consts::ARCH
    );
    println!(
        "{:<8} {:<17} {:>7} {:<30} {:>9} {:>6} {:>9} {:>6}",
        "work", "runtime", "N", "implementation", "wall ms", "ratio", "CPU ms", "ratio"
    );
    for group in rows.chunks(IMPS.len()) {
        // The alternatives: every row but `gather` itself.
        let alternatives = || group.iter().filter(|r| r.imp != Imp::Gather);
        let best_wall = alternatives().map(|r| r.wall).min().unwrap();
        let best_cpu = alternatives().map(|r| r.cpu).min().unwrap();
        println!();
        for row in group {
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:<8} {:<17} {:>7} {:<30} {:>9.2} {:>6.2} {:>9.2} {:>6.2}",
                row.work,
                row.runtime,
                row.n,
                row.imp.name(),
                ms(row.wall),
                ms(row.wall) / ms(best_wall),
                ms(row.cpu),
                ms(row.cpu) / ms(best_cpu),
            );
        }
    }
}
