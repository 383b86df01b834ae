//! Tuples of futures with different output types: one slot storage per arity.
//!
//! Each arity gets a `pin_project!` struct with one named slot per child, so every slot is
//! projected by `pin-project-lite` and no `unsafe` is needed here.

use core::future::Future;
use core::pin::Pin;
use core::task::Context;

use super::Input;
use crate::engine::readiness::Visit;
use crate::engine::slots::{CutOff, ErrorOf, ResultSlots, Slots};
use crate::engine::sweep::Sweep;
use crate::raw::for_each_to_the_end;
use crate::raw::slot::{Slot, Step};
use crate::results::compound::{CompoundError, Inline};
use crate::results::gathered::{unwrap_ok, Outcomes, SOME_ERR};

macro_rules! tuple {
    ($Slots:ident $len:literal { $($idx:tt $s:ident $F:ident $T:ident)+ }) => {
        pin_project_lite::pin_project! {
            /// Slot storage for a tuple of this arity.
            pub struct $Slots<$($F),+>
            where
                $($F: Future),+
            {
                $(#[pin] $s: Slot<$F>,)+
            }
        }

        impl<$($F: Future),+> crate::sealed::Input for ($($F,)+) {}

        impl<$($F: Future),+> Input for ($($F,)+) {
            type Slots = $Slots<$($F),+>;

            fn into_slots(self) -> Self::Slots {
                $Slots { $($s: Slot::new(self.$idx)),+ }
            }
        }

        impl<$($F: Future),+> Slots for $Slots<$($F),+> {
            type Outputs = ($($F::Output,)+);
            type Readiness = Sweep;

            fn readiness(&self) -> Sweep {
                Sweep::default()
            }

            #[inline]
            fn len(&self) -> usize {
                $len
            }

            #[inline]
            fn visit_all(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut visit: impl FnMut(Pin<&mut Self>, usize, &mut Context<'_>) -> Visit,
            ) -> Option<usize> {
                // Unrolled: each visit polls its own field, with no match on the index.
                $(if visit(self.as_mut(), $idx, cx) == Visit::Stop {
                    return Some($idx);
                })+
                None
            }

            #[inline]
            fn poll_step(self: Pin<&mut Self>, index: usize, cx: &mut Context<'_>) -> Step {
                let this = self.project();
                match index {
                    $($idx => this.$s.poll_step(cx),)+
                    _ => Step::NotRunning,
                }
            }

            fn has_output(&self, index: usize) -> bool {
                match index {
                    $($idx => self.$s.is_finished(),)+
                    _ => false,
                }
            }

            fn discard(self: Pin<&mut Self>, index: usize) {
                let this = self.project();
                match index {
                    $($idx => this.$s.clear(),)+
                    _ => {}
                }
            }

            #[inline]
            fn take_outputs(self: Pin<&mut Self>) -> Self::Outputs {
                // Every slot checked first, as for arrays (`slots.rs`): the copies below then
                // read each output on its own, not in wide loads that straddle the state
                // words the last pass has just written.
                assert!(
                    true $(&& self.$s.is_finished())+,
                    "gather: outputs taken before every child finished"
                );
                let this = self.project();
                ($(this.$s.take_output(),)+)
            }

            fn clear(self: Pin<&mut Self>) {
                // Every slot, even if one's drop panics (the rest go while it unwinds).
                let mut this = self.project();
                for_each_to_the_end(0..$len, |i| match i {
                    $($idx => this.$s.as_mut().clear(),)+
                    _ => {}
                });
            }
        }

        impl<E, $($T,)+ $($F),+> ResultSlots for $Slots<$($F),+>
        where
            $($F: Future<Output = Result<$T, E>>),+
        {
            fn is_err(&self, index: usize) -> bool {
                match index {
                    $($idx => self.$s.is_err(),)+
                    _ => false,
                }
            }

            fn take_err_if(
                self: Pin<&mut Self>,
                index: usize,
                pred: impl FnOnce(&ErrorOf<Self>) -> bool,
            ) -> Option<ErrorOf<Self>> {
                let this = self.project();
                match index {
                    $($idx => this.$s.take_err_if(pred),)+
                    _ => None,
                }
            }
        }

        impl<X, E: From<X>, $($T,)+ $($F),+> CutOff<X> for $Slots<$($F),+>
        where
            $($F: Future<Output = Result<$T, E>>),+
        {
            fn cut_off(self: Pin<&mut Self>, index: usize, cause: impl FnOnce() -> X) -> bool {
                let this = self.project();
                let error = || E::from(cause());
                match index {
                    $($idx => this.$s.cut_off(error),)+
                    _ => false,
                }
            }

            fn fail(self: Pin<&mut Self>, index: usize, cause: X) {
                let this = self.project();
                match index {
                    $($idx => this.$s.fail(E::from(cause)),)+
                    _ => {}
                }
            }
        }

        impl<E, $($T),+> crate::sealed::Outcomes for ($(Result<$T, E>,)+) {}

        impl<E, $($T),+> Outcomes for ($(Result<$T, E>,)+) {
            type Error = E;
            type Successes = ($($T,)+);
            type Store = Inline<$len>;

            fn len(&self) -> usize {
                $len
            }

            fn error_at(&self, index: usize) -> Option<&E> {
                match index {
                    $($idx => self.$idx.as_ref().err(),)+
                    _ => None,
                }
            }

            fn into_split(self) -> Result<Self::Successes, CompoundError<E, Inline<$len>>> {
                if true $(&& self.$idx.is_ok())+ {
                    return Ok(self.into_successes());
                }
                let mut errors = [$(self.$idx.err()),+];
                Err(CompoundError::collect($len, $len, |i| errors[i].take()).expect(SOME_ERR))
            }

            fn into_successes(self) -> Self::Successes {
                ($(unwrap_ok(self.$idx),)+)
            }
        }
    };
}

tuple!(Tuple1 1 { 0 s0 F0 T0 });
tuple!(Tuple2 2 { 0 s0 F0 T0 1 s1 F1 T1 });
tuple!(Tuple3 3 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 });
tuple!(Tuple4 4 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 });
tuple!(Tuple5 5 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 });
tuple!(Tuple6 6 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 });
tuple!(Tuple7 7 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 });
tuple!(Tuple8 8 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 7 s7 F7 T7 });
tuple!(Tuple9 9 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 7 s7 F7 T7 8 s8 F8 T8 });
tuple!(Tuple10 10 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 7 s7 F7 T7 8 s8 F8 T8 9 s9 F9 T9 });
tuple!(Tuple11 11 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 7 s7 F7 T7 8 s8 F8 T8 9 s9 F9 T9 10 s10 F10 T10 });
tuple!(Tuple12 12 { 0 s0 F0 T0 1 s1 F1 T1 2 s2 F2 T2 3 s3 F3 T3 4 s4 F4 T4 5 s5 F5 T5 6 s6 F6 T6 7 s7 F7 T7 8 s8 F8 T8 9 s9 F9 T9 10 s10 F10 T10 11 s11 F11 T11 });
