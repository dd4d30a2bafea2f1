//! Parquet pages written directly from the recorder's values, for the one table whose
//! rate matters (`syscalls`); the small tables go through Arrow.
pub mod chunk;
pub mod delta;
pub mod hybrid;
pub mod levels;
