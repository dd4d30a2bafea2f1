//! Building and writing files: entry-time order, Arrow batches, Parquet files, and the
//! capture directory they live in.
pub mod batch;
pub mod block_queue;
pub mod capture_dir;
pub mod capture_table;
pub mod pages;
pub mod parquet_file;
pub mod pipeline;
pub mod progress;
pub mod reorder;
pub mod room;
pub mod small_table;
pub mod summed_write;
pub mod syscalls_file;
pub mod writer;
