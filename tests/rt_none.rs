//! The shared behaviour cases with no runtime at all: a thread-parking `block_on`.
mod common;

runtime_cases!(common::block_on, common::delay);
