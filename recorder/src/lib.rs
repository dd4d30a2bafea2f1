//! The recorder: kernel record, then batch, then file.
//!
//! - [`kernel_support`] checks that the kernel has what the programs need.
//! - [`bpf`] loads and attaches the kernel programs and owns their maps.
//! - [`target`] decides which threads are traced; [`launch`] starts a command gated so that
//!   its first traced call is its execve.
//! - [`pipeline`] moves records from the ring buffer through [`reorder`] and [`batch`] into
//!   [`writer`]'s Parquet files.
//! - [`session`] runs one capture from start to stop.
pub mod aggregates;
pub mod batch;
pub mod bpf;
pub mod call;
pub mod capture_dir;
pub mod capture_table;
pub mod cli;
pub mod clock;
pub mod decode;
pub mod fd_effect;
pub mod fd_table;
pub mod kernel_support;
pub mod launch;
pub mod names;
pub mod parquet_file;
pub mod pipeline;
pub mod process_event;
pub mod processes;
pub mod progress;
pub mod reorder;
pub mod scope;
pub mod session;
pub mod signals;
pub mod small_table;
pub mod syscall_table;
pub mod target;
pub mod tracefs;
pub mod writer;
