//! How the frames of a user-space chain are named, on the host and after.
//!
//! The recorder names each frame from the binary it ran in ([`SymbolTable`]). A frame the
//! host's binary cannot name (a stripped program, Debian's libc internals) is written as
//! [`frame::Unnamed`]: the binary, the address within it and its build ID. That is what
//! symbolizing needs later: `analyze --debug-dir` finds the binary's debug file by build ID
//! ([`debug_dirs`]) and names the frame, on any machine the capture is copied to.
pub mod debug_dirs;
pub mod demangle;
pub mod frame;
mod table;

pub use table::{SymbolTable, build_id};
