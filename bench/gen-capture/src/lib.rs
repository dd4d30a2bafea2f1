//! What the benchmark binaries share.
pub mod mix;
