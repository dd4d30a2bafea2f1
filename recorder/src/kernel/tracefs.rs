//! tracefs: where tracepoint layouts are published.
//!
//! Record layouts move between kernel versions (`sched_process_fork` gained `__data_loc`
//! comms in 6.x and its pids moved), so offsets are read from the running kernel's `format`
//! files instead of being compiled in. Many hosts do not mount tracefs; the recorder mounts
//! it, as perf and bpftrace do.
use std::{
    ffi::CString,
    fs, io,
    path::{Path, PathBuf},
};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("tracefs is not mounted and mounting it on /sys/kernel/tracing failed")]
    Mount(#[source] io::Error),
    /// Mounted, but closed to this user: with CAP_BPF and CAP_PERFMON and not root, the
    /// mount was reported as missing (helper-88).
    #[error(
        "tracefs at {} cannot be read by this user: run record as root, or give it \
         CAP_DAC_READ_SEARCH as well",
        path.display()
    )]
    Closed {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read tracepoint format {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tracepoint format {} has no field `{field}`", path.display())]
    NoField { path: PathBuf, field: String },
}

/// The tracefs root, mounting it if no mount exists.
pub fn root() -> Result<PathBuf, TracefsError> {
    if let Some(found) = CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(found.to_path_buf());
    }
    for candidate in CANDIDATES.map(Path::new) {
        if let Err(source) = fs::read_dir(candidate)
            && source.kind() == io::ErrorKind::PermissionDenied
        {
            return Err(TracefsError::Closed {
                path: candidate.to_path_buf(),
                source,
            });
        }
    }
    let target = CString::new(CANDIDATES[0]).expect("no NUL");
    let fstype = CString::new("tracefs").expect("no NUL");
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(TracefsError::Mount(io::Error::last_os_error()));
    }
    Ok(PathBuf::from(CANDIDATES[0]))
}

/// Whether tracepoint `category/name` has `field`: its arguments differ between kernels.
pub fn has_field(
    root: &Path,
    category: &str,
    name: &str,
    field: &str,
) -> Result<bool, TracefsError> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(parse_offset(&text, field).is_some())
}

/// Byte offsets of `fields` in the record of tracepoint `category/name`, from one read of
/// its format file.
pub fn field_offsets<const N: usize>(
    root: &Path,
    category: &str,
    name: &str,
    fields: [&str; N],
) -> Result<[u32; N], TracefsError> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
        path: path.clone(),
        source,
    })?;
    let mut offsets = [0; N];
    for (offset, field) in offsets.iter_mut().zip(fields) {
        *offset = parse_offset(&text, field).ok_or_else(|| TracefsError::NoField {
            path: path.clone(),
            field: field.to_string(),
        })?;
    }
    Ok(offsets)
}

/// Finds `offset:N` on the line declaring `field`, e.g.
/// `field:pid_t child_pid; offset:20; size:4; signed:1;` (tab-separated).
fn parse_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let decl = line.trim().strip_prefix("field:")?.split(';').next()?;
        // `pid_t child_pid` or `char child_comm[16]`.
        let name = decl.split_whitespace().last()?.split('[').next()?;
        if name != field {
            return None;
        }
        let offset = line
            .split(';')
            .find_map(|part| part.trim().strip_prefix("offset:"))?;
        offset.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_fork_layouts() {
        let new = "name: sched_process_fork\nID: 300\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:__data_loc char[] parent_comm;\toffset:8;\tsize:4;\tsigned:0;\n\
            \tfield:pid_t parent_pid;\toffset:12;\tsize:4;\tsigned:1;\n\
            \tfield:__data_loc char[] child_comm;\toffset:16;\tsize:4;\tsigned:0;\n\
            \tfield:pid_t child_pid;\toffset:20;\tsize:4;\tsigned:1;\n";
        assert_eq!(parse_offset(new, "child_pid"), Some(20));
        assert_eq!(parse_offset(new, "parent_pid"), Some(12));
        let old = "\tfield:char parent_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\
            \tfield:pid_t parent_pid;\toffset:24;\tsize:4;\tsigned:1;\n\
            \tfield:char child_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\
            \tfield:pid_t child_pid;\toffset:44;\tsize:4;\tsigned:1;\n";
        assert_eq!(parse_offset(old, "child_pid"), Some(44));
        assert_eq!(parse_offset(old, "child_comm"), Some(28));
        assert_eq!(parse_offset(old, "nope"), None);
    }
}
