//! Links `analyze` as a position-dependent executable.
//!
//! As a PIE, every start applied 277K relative relocations to 4.7 MB of DataFusion's and
//! Ballista's vtables and constants, faulting each of those pages in privately: 1,400 page
//! faults and 6-7 ms before `main`, most of what a query over a small capture took beyond
//! DuckDB's time (BENCHMARKS.md, "Starting 7 ms sooner"). Linked at a fixed address the
//! pages are mapped from the file as they are used. The cost is that the program's own
//! image is not at a random address (its libraries, heap and stacks still are), as with
//! Go's default builds. `record`, the binary that runs as root on production hosts, stays
//! a PIE. Only the final link changes: the code is the same position-independent code.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
