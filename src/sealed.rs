//! The supertraits that seal the public traits users may name but not implement: one
//! module, one trait per family of sealed traits (one trait for all would make `[F; N]` as
//! an input and `[Result<T, E>; N]` as outcomes overlap).

pub trait Input {}
pub trait Layers {}
pub trait Outcomes {}
pub trait ErrorStore {}
#[cfg(feature = "alloc")]
pub trait DynError {}
pub trait Done {}
