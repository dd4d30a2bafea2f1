//! `--debug-dir`: the user-stack frames the host could not name (a stripped program,
//! Debian's libc internals), named from debug files found by their build ID. The recorder
//! wrote each such frame as its binary, address and build ID, so this works on any machine
//! the capture is copied to, and never names a frame from another build's file.
//!
//! Applied to the `syscalls` table's `user_stack` column itself, before any SQL, so that
//! grouping by stack (`off-cpu`, folded flame graphs) puts two addresses of one function
//! together.
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use datafusion::{
    arrow::{
        array::{Array, ArrayRef, StringViewBuilder},
        datatypes::DataType,
    },
    common::cast::as_string_view_array,
    error::Result,
    logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf},
};
use tracepost_symbols::debug_dirs::{DebugDirError, DebugDirs};

/// Bytes of chains remembered between batches, named and not; past it, the memory starts
/// again.
const MAX_REMEMBERED_BYTES: usize = 32 << 20;
/// Longest chain named: `record` writes at most 128 frames of at most about 600 bytes.
/// A longer one comes from elsewhere, and is left as it is rather than named at the cost
/// of memory it chose.
const MAX_CHAIN_BYTES: usize = 128 << 10;

/// `name_frames(user_stack)`, over the debug files under `dirs`. `None` without any.
pub fn udf(dirs: &[PathBuf]) -> Result<Option<ScalarUDF>, DebugDirError> {
    if dirs.is_empty() {
        return Ok(None);
    }
    let debug_dirs = DebugDirs::new(dirs)?;
    for d in debug_dirs.without_build_ids() {
        crate::say!(
            "warning: --debug-dir {}: no .build-id directory in it; debug files are found as \
             DIR/.build-id/xx/rest-of-id.debug",
            d.display()
        );
    }
    let state = Mutex::new((debug_dirs, HashMap::<String, String>::new(), 0usize));
    let fun = Arc::new(move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let input = as_string_view_array(&arrays[0])?;
        let mut out = StringViewBuilder::with_capacity(input.len());
        // A thread that panicked here left nothing half-changed that matters.
        let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
        let (dirs, named, remembered) = &mut *guard;
        for chain in input {
            match chain {
                None => out.append_null(),
                // Only an unnamed frame with a build ID holds a space.
                Some(c) if !c.contains(' ') || c.len() > MAX_CHAIN_BYTES => out.append_value(c),
                Some(c) => {
                    if let Some(n) = named.get(c) {
                        out.append_value(n);
                        continue;
                    }
                    let n = dirs.name_chain(c);
                    out.append_value(&n);
                    *remembered += c.len() + n.len();
                    if *remembered > MAX_REMEMBERED_BYTES {
                        named.clear();
                        *remembered = c.len() + n.len();
                    }
                    named.insert(c.to_string(), n);
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    });
    Ok(Some(create_udf(
        "name_frames",
        vec![DataType::Utf8View],
        DataType::Utf8View,
        Volatility::Immutable,
        fun,
    )))
}
