//! Process lifecycle events, completed from /proc the moment they are read from the kernel
//! (a process that lives a few milliseconds is often still there), and /proc snapshots at
//! attach.
use std::fs;

use crate::follow::cgroup_names::CgroupNames;

use tracepost_common::{
    EXIT_STATUS_UNKNOWN, PROCESS_EXEC, PROCESS_EXIT, PROCESS_NEW, ProcessEvent,
};

/// A kernel event plus what /proc could add to it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessUpdate {
    pub event: ProcessEvent,
    pub exe: Option<String>,
    pub cmdline: Option<String>,
    pub cgroup: Option<String>,
    /// The wait status of a process that is a zombie now (`/proc/PID/stat` field 52).
    pub wait_status: Option<i32>,
}

impl ProcessUpdate {
    pub fn read(event: ProcessEvent, cgroups: &mut CgroupNames) -> Self {
        let mut update = Self {
            event,
            ..Default::default()
        };
        // The cgroup the task was in when it forked (the child's) or exec'd, as the kernel
        // said; /proc's only when the id names no cgroup there is now.
        let mut cgroup_then = |pid| cgroups.path(event.cgroup_id).or_else(|| cgroup(pid));
        match event.kind {
            PROCESS_NEW => update.cgroup = cgroup_then(event.child_tid),
            PROCESS_EXEC => {
                update.exe = exe(event.pid);
                // The arguments the kernel saw at execve; /proc when it could not read them.
                update.cmdline = args(&event).or_else(|| cmdline(event.pid));
                update.cgroup = cgroup_then(event.pid);
            }
            PROCESS_EXIT => {
                // The zombie's status is the leader's, which is what wait(2) reports when
                // threads ended one by one; the kernel's is the last thread's, but it is
                // there even after the parent has reaped the process.
                update.wait_status = stat(event.pid)
                    .filter(|s| s.state == 'Z' || s.state == 'X')
                    .and_then(|s| s.exit_code)
                    .or_else(|| {
                        (event.exit_status != EXIT_STATUS_UNKNOWN)
                            .then_some(event.exit_status as i32)
                    });
            }
            _ => {}
        }
        update
    }
}

/// The arguments an exec event carries, quoted for a shell and joined by spaces.
fn args(event: &ProcessEvent) -> Option<String> {
    let len = (event.args_len as usize).min(event.args.len());
    join_args(&event.args[..len])
}

/// Each argument ends in a NUL, so an empty one is two NULs in a row and is kept: `''`.
fn join_args(raw: &[u8]) -> Option<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return None;
    }
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then(|| crate::shell_words::join(args.iter().map(String::as_str)))
}

pub fn exe(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Arguments quoted for a shell and joined by spaces: as `ps` shows them, but an argument
/// with spaces stays one.
pub fn cmdline(pid: u32) -> Option<String> {
    join_args(&fs::read(format!("/proc/{pid}/cmdline")).ok()?)
}

/// The cgroup v2 path (`/system.slice/nginx.service`).
pub fn cgroup(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// A container runtime's id in a cgroup path: the first run of 64 hex digits
/// (`docker-<id>.scope`, `cri-containerd-<id>.scope`, `/docker/<id>`, `libpod-<id>`).
pub fn container_id(cgroup: &str) -> Option<String> {
    let bytes = cgroup.as_bytes();
    let mut run = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_hexdigit() && !b.is_ascii_uppercase() {
            run += 1;
            if run == 64 && bytes.get(i + 1).is_none_or(|n| !n.is_ascii_hexdigit()) {
                return Some(cgroup[i + 1 - 64..=i].to_string());
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Fields of `/proc/PID/stat` the processes table uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: String,
    pub state: char,
    pub ppid: u32,
    /// Clock ticks after boot.
    pub start_ticks: u64,
    pub exit_code: Option<i32>,
}

pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The name is in parentheses and may itself hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    Some(Stat {
        comm,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
        exit_code: fields.get(49).and_then(|f| f.parse().ok()),
    })
}

pub fn uid(pid: u32) -> Option<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
}

/// Wall-clock nanoseconds of a process start given in ticks after boot.
pub fn start_wall_ns(start_ticks: u64) -> Option<i64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|b| b.trim().parse().ok())?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as i64;
    Some(btime * 1_000_000_000 + start_ticks as i64 * (1_000_000_000 / hz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names_parse() {
        // 52 fields, as proc_pid_stat(5) lists them: starttime is the 22nd, exit_code the
        // 52nd.
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[0] = "S".into();
        fields[1] = "7".into();
        fields[19] = "12345".into();
        fields[49] = "256".into();
        let line = format!("42 (a) b (c) {}", fields.join(" "));
        let line = line.as_str();
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c");
        assert_eq!((s.state, s.ppid, s.start_ticks), ('S', 7, 12345));
        assert_eq!(s.exit_code, Some(256));
        let me = stat(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }

    #[test]
    fn arguments_read_back_as_a_shell_would_take_them() {
        assert_eq!(
            join_args(b"/bin/true\0a\0\0b c\0\0").as_deref(),
            Some("/bin/true a '' 'b c' ''")
        );
        assert_eq!(join_args(b"\0"), None);
        assert_eq!(join_args(b"cut-sho").as_deref(), Some("cut-sho"));
    }

    #[test]
    fn container_ids_come_out_of_cgroup_paths() {
        let id = "0123456789abcdef".repeat(4);
        assert_eq!(
            container_id(&format!("/system.slice/docker-{id}.scope")),
            Some(id.clone())
        );
        assert_eq!(
            container_id(&format!("/kubepods/burstable/pod1/{id}")),
            Some(id)
        );
        assert_eq!(
            container_id("/user.slice/user-0.slice/session-1.scope"),
            None
        );
    }
}
