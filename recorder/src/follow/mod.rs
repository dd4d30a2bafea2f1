//! Following processes and fds: which threads are traced, the command `record` starts, the
//! processes table, and what each fd refers to.
pub mod cgroup_names;
pub mod cgroup_watch;
pub mod fd_effect;
pub mod fd_table;
pub mod held_names;
pub mod launch;
pub mod place;
pub mod process_event;
pub mod processes;
pub mod scope;
pub mod sharing;
pub mod target;
