//! What the benchmark binaries share.
pub mod harness;
pub mod mix;
