//! Helpers of the graceful-stop tests (`tests/graceful.rs`, `tests/graceful_review.rs`):
//! the children's error type, and polling until nothing is left to do.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::StreamExt;
use gather::{Panicked, StopError, Stopped, TimedOut};

use super::CountingWaker;

/// The children's error: a failure of their own, or what the gather made of them.
#[derive(Debug, PartialEq)]
pub enum Error {
    Failed(u32),
    Stopped,
    TimedOut(usize),
    Panicked(usize),
}

impl From<Stopped> for Error {
    fn from(_: Stopped) -> Self {
        Error::Stopped
    }
}

impl StopError for Error {
    fn is_stopped(&self) -> bool {
        matches!(self, Error::Stopped)
    }
}

impl From<TimedOut> for Error {
    fn from(timed_out: TimedOut) -> Self {
        Error::TimedOut(timed_out.index)
    }
}

impl From<Panicked> for Error {
    fn from(panicked: Panicked) -> Self {
        Error::Panicked(panicked.index)
    }
}

/// Polls until ready, or pending with no wake to come; returns the polls it took too.
pub fn settle<F: Future + ?Sized>(mut future: Pin<&mut F>) -> (Poll<F::Output>, usize) {
    let (counter, waker) = CountingWaker::new();
    for polls in 1..10_000 {
        let before = counter.wakes();
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return (Poll::Ready(output), polls);
        }
        if counter.wakes() == before {
            return (Poll::Pending, polls);
        }
    }
    panic!("still busy after 10,000 polls");
}

/// The items a stream hands out until it is pending with no wake to come, or ends.
pub fn ready_items<S: futures::Stream + Unpin + ?Sized>(stream: &mut S) -> Vec<S::Item> {
    let (counter, waker) = CountingWaker::new();
    let mut items = Vec::new();
    loop {
        let before = counter.wakes();
        match stream.poll_next_unpin(&mut Context::from_waker(&waker)) {
            Poll::Ready(Some(item)) => items.push(item),
            Poll::Ready(None) => return items,
            Poll::Pending if counter.wakes() == before => return items,
            Poll::Pending => {}
        }
    }
}
