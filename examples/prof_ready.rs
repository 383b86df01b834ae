use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
struct R(u64);
impl Future for R {
    type Output = Result<u64, u64>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(if self.0 % 7 == 6 { Err(self.0) } else { Ok(self.0) })
    }
}
struct Noop;
impl Wake for Noop { fn wake(self: Arc<Self>) {} }
fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let iters: usize = std::env::args().nth(2).map_or(200, |s| s.parse().unwrap());
    let mut best = f64::MAX;
    for _ in 0..7 {
    let start = std::time::Instant::now();
    for _ in 0..iters {
        let children: Vec<_> = (0..n as u64).map(R).collect();
        let mut g = pin!(gather::gather(children));
        loop { if let Poll::Ready(o) = g.as_mut().poll(&mut cx) { std::hint::black_box(o); break; } }
    }
    best = best.min(start.elapsed().as_nanos() as f64 / (iters * n) as f64);
    }
    println!("{best:.2} ns/child");
}
