//! `Gather` is `Send`, `Sync` and `Unpin` exactly when its children (and their outputs)
//! are: checked at compile time.
use std::future::{ready, Future, Ready};
use std::marker::PhantomPinned;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use gather::{gather, FailFast, Gather};

/// Answers "is the type of `$value` `$trait`?" at compile time: the inherent method wins
/// when the bound holds, the trait's fallback otherwise.
macro_rules! is {
    ($trait:ident, $value:expr) => {{
        struct P<T>(std::marker::PhantomData<T>);
        #[allow(dead_code)]
        trait F {
            fn check(&self) -> bool {
                false
            }
        }
        impl<T> F for P<T> {}
        impl<T: $trait> P<T> {
            #[allow(dead_code)]
            fn check(&self) -> bool {
                true
            }
        }
        fn p<T>(_: &T) -> P<T> {
            P(std::marker::PhantomData)
        }
        p(&$value).check()
    }};
}

/// A future whose output is `!Send` although the future is `Send`.
struct RcOutput;

impl Future for RcOutput {
    type Output = Rc<u8>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Rc<u8>> {
        Poll::Ready(Rc::new(0))
    }
}

/// A `!Unpin` future.
struct Pinned(PhantomPinned);

impl Future for Pinned {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

#[test]
fn gather_is_send_and_sync_when_children_and_outputs_are() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let array: Gather<[Ready<u8>; 2]> = gather([ready(1), ready(2)]);
    assert_send_sync(&array);
    assert_send_sync(&gather((ready(1), ready("a"))));
    assert_send_sync(&gather(vec![ready(Ok::<u8, String>(1))]));
    let fail_fast: FailFast<[Ready<Result<u8, ()>>; 1]> = gather([ready(Ok(1))]).fail_fast();
    assert_send_sync(&fail_fast);
    assert!(is!(Send, array));
}

#[test]
fn gather_is_not_send_when_a_child_or_an_output_is_not() {
    assert!(!is!(Send, gather([ready(Rc::new(1))])));
    assert!(!is!(Send, gather((ready(1), ready(Rc::new(1))))));
    assert!(
        !is!(Send, gather(vec![RcOutput])),
        "a !Send output makes it !Send"
    );
    assert!(!is!(Sync, gather([ready(std::cell::Cell::new(1))])));
    assert!(is!(Send, gather([ready(1)])));
}

#[test]
fn gather_is_unpin_when_children_are() {
    assert!(is!(Unpin, gather([ready(1)])));
    assert!(!is!(Unpin, gather([Pinned(PhantomPinned)])));
    assert!(!is!(Unpin, gather((ready(1), Pinned(PhantomPinned)))));
    // A `Vec`'s children live in a boxed slice: moving the gather does not move them.
    assert!(is!(Unpin, gather(vec![Pinned(PhantomPinned)])));
}

#[test]
fn a_group_and_its_handles_are_send_and_sync_when_children_are_and_always_unpin() {
    fn assert_send_sync_unpin<T: Send + Sync + Unpin>(_: &T) {}
    let mut group: gather::Group<Ready<u8>> = gather::Group::new();
    let handle = group.handle();
    assert_send_sync_unpin(&group);
    assert_send_sync_unpin(&handle);

    // Children that are not `Send` (an `Rc` inside): neither is the group nor its handle.
    let mut local: gather::Group<Ready<Rc<u8>>> = gather::Group::new();
    let local_handle = local.handle();
    assert!(!is!(Send, local));
    assert!(!is!(Send, local_handle));
    // `!Unpin` children live in chunks of their own: the group is `Unpin` all the same.
    let pinned: gather::Group<Pinned> = gather::Group::new();
    assert!(is!(Unpin, pinned));
}

#[test]
fn a_graceful_gather_is_send_sync_and_unpin_when_its_children_and_timer_are() {
    let stop = gather::StopSignal::new();
    let children = || [ready(Ok::<u8, gather::Stopped>(1))];
    let plain = gather(children()).graceful(&stop, || ready(()));
    assert!(is!(Send, plain) && is!(Sync, plain) && is!(Unpin, plain));
    // A grace timer that is neither `Send` nor `Unpin` makes the gather neither.
    struct LocalTimer(#[allow(dead_code)] Rc<()>, PhantomPinned);
    impl Future for LocalTimer {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }
    let pinned = gather(children()).graceful(&stop, || LocalTimer(Rc::new(()), PhantomPinned));
    assert!(!is!(Send, pinned) && !is!(Unpin, pinned));
}
