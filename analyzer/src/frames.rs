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

/// Distinct chains remembered between batches; past it, the memory starts again.
const MAX_REMEMBERED: usize = 65_536;

/// `name_frames(user_stack)`, over the debug files under `dirs`. `None` without any.
pub fn udf(dirs: &[PathBuf]) -> Result<Option<ScalarUDF>, DebugDirError> {
    if dirs.is_empty() {
        return Ok(None);
    }
    let state = Mutex::new((DebugDirs::new(dirs)?, HashMap::<String, String>::new()));
    let fun = Arc::new(move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let input = as_string_view_array(&arrays[0])?;
        let mut out = StringViewBuilder::with_capacity(input.len());
        // A thread that panicked here left nothing half-changed that matters.
        let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
        let (dirs, named) = &mut *guard;
        for chain in input {
            match chain {
                None => out.append_null(),
                // Only an unnamed frame with a build ID holds a space.
                Some(c) if !c.contains(' ') => out.append_value(c),
                Some(c) => {
                    if let Some(n) = named.get(c) {
                        out.append_value(n);
                        continue;
                    }
                    if named.len() >= MAX_REMEMBERED {
                        named.clear();
                    }
                    let n = dirs.name_chain(c);
                    out.append_value(&n);
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
