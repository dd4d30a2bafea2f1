//! Talking to the kernel: what it must offer, loading the programs, and what their records
//! and numbers mean.
pub mod aggregates;
pub mod bpf;
pub mod btf;
pub mod call;
pub mod clock;
pub mod decode;
pub mod intern;
pub mod kernel_stacks;
pub mod kernel_support;
pub mod mapping;
pub mod names;
pub mod stage;
pub mod syscall_table;
pub mod traced;
pub mod tracefs;
