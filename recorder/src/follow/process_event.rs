//! Process lifecycle events, completed from /proc the moment they are read from the kernel
//! (a process that lives a few milliseconds is often still there), and /proc snapshots at
//! attach.
use std::fs;

use crate::follow::cgroup_names::CgroupNames;
use tracepost_schema::processes::CMDLINE_CUT;

use tracepost_common::{
    ARG_MAX_LEN, ARGS_LEN, EXIT_STATUS_UNKNOWN, MAX_ARGS, PROCESS_EXEC, PROCESS_EXIT, PROCESS_NEW,
    ProcessEvent,
};

/// `clone3`'s flag for a child started in another cgroup (`linux/sched.h`); libc's is a
/// `c_int` too narrow for it.
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

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
            // The kernel's id is the parent's: `clone3(CLONE_INTO_CGROUP)` put the child in a
            // cgroup its caller chose, which only the child's /proc names. NULL once it is
            // gone, never the parent's.
            PROCESS_NEW if event.clone_flags & CLONE_INTO_CGROUP != 0 => {
                update.cgroup = cgroup(event.child_tid)
            }
            PROCESS_NEW => update.cgroup = cgroup_then(event.child_tid),
            PROCESS_EXEC => {
                // When the process is gone, the writer names the program the kernel ran, from
                // the cwd and root it followed (`ProcessTable::on_update`).
                update.exe = exe(event.pid);
                // The arguments the kernel saw at execve; /proc when it could not read them.
                update.cmdline = exec_cmdline(&event, || {
                    fs::read(format!("/proc/{}/cmdline", event.pid)).ok()
                });
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

/// An absolute name of a program, as /proc/PID/exe would show it: symlinks followed, or
/// the name itself for a file gone since. None for a name this process cannot resolve for
/// another ([`resolvable_here`]).
pub fn resolved_here(name: &str) -> Option<String> {
    if !resolvable_here(name) {
        return None;
    }
    Some(
        fs::canonicalize(name)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| name.to_string()),
    )
}

/// Whether an absolute name means the same file to the recorder as to the process that
/// used it: not one through `/proc` or `/dev/fd`, which each process resolves as its own.
pub fn resolvable_here(name: &str) -> bool {
    name.starts_with('/') && !name.starts_with("/proc/") && !name.starts_with("/dev/fd/")
}

/// An exec event's command line, quoted for a shell. The kernel copies at most
/// `MAX_ARGS` arguments of `ARG_MAX_LEN - 1` bytes each, `ARGS_LEN` bytes in all: a JVM's
/// classpath or a long `sh -c` script is cut. Such a line is completed from /proc
/// (`proc_cmdline`, read only then) when the process still has every argument the kernel
/// saw at their start; a process that rewrote its title (PostgreSQL's backends do) or is
/// gone keeps the kernel's copy, marked [`CMDLINE_CUT`]. /proc alone when the kernel read nothing.
fn exec_cmdline(
    event: &ProcessEvent,
    proc_cmdline: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<String> {
    let len = (event.args_len as usize).min(event.args.len());
    let raw = &event.args[..len];
    if raw.is_empty() {
        return join_args(without_padding(&proc_cmdline()?));
    }
    if !maybe_cut(raw) {
        return join_args(raw);
    }
    match proc_cmdline() {
        Some(full) if completes(raw, &full) => join_args(&full),
        _ => join_args(raw).map(|line| line + CMDLINE_CUT),
    }
}

/// Whether the kernel's copy may lack something: an argument at the length limit, the
/// buffer filled, or as many arguments as it reads.
fn maybe_cut(raw: &[u8]) -> bool {
    if raw.last() != Some(&0) {
        return true;
    }
    let args = split_args(raw);
    raw.len() >= ARGS_LEN
        || args.len() >= MAX_ARGS
        || args.iter().any(|a| a.len() >= ARG_MAX_LEN - 1)
}

/// Whether /proc's arguments begin with those the kernel saw: each the same, or a cut one
/// (at the limit, or the last one left unterminated) the start of its own.
fn completes(raw: &[u8], full: &[u8]) -> bool {
    let terminated = raw.last() == Some(&0);
    let (kernel, proc) = (split_args(raw), split_args(full));
    proc.len() >= kernel.len()
        && kernel.iter().zip(&proc).enumerate().all(|(i, (k, p))| {
            let cut = k.len() >= ARG_MAX_LEN - 1 || (!terminated && i == kernel.len() - 1);
            k == p || (cut && p.starts_with(k))
        })
}

/// The arguments in `raw`: each ends in a NUL, so an empty one is two NULs in a row and is
/// kept; the last may be cut before its NUL.
fn split_args(raw: &[u8]) -> Vec<&[u8]> {
    raw.strip_suffix(&[0])
        .unwrap_or(raw)
        .split(|&b| b == 0)
        .collect()
}

/// The arguments quoted for a shell and joined by spaces; an empty one is `''`.
fn join_args(raw: &[u8]) -> Option<String> {
    if raw.is_empty() || raw == [0] {
        return None;
    }
    let args: Vec<String> = split_args(raw)
        .into_iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(crate::shell_words::join(args.iter().map(String::as_str)))
}

pub fn exe(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Arguments quoted for a shell and joined by spaces: as `ps` shows them, but an argument
/// with spaces stays one.
pub fn cmdline(pid: u32) -> Option<String> {
    join_args(without_padding(
        &fs::read(format!("/proc/{pid}/cmdline")).ok()?,
    ))
}

/// /proc's arguments without trailing empty ones. A process that rewrote its title over
/// its arguments (PostgreSQL's `postgres: checkpointer`) leaves the rest of their space as
/// NULs, which read as dozens of `''`; `ps` shows the title alone, and so does this. An
/// empty last argument of a command that passed one is lost with them.
fn without_padding(raw: &[u8]) -> &[u8] {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &raw[..(end + 1).min(raw.len())]
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
    /// `PF_*` flags (`PF_KTHREAD` marks a kernel thread).
    pub flags: u64,
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
        flags: fields.get(6)?.parse().ok()?,
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
///
/// The kernel counts a start from boot on `CLOCK_BOOTTIME`, so boot is placed on the wall
/// clock as `CLOCK_REALTIME - CLOCK_BOOTTIME`, to the nanosecond. `/proc/stat`'s `btime`
/// is whole seconds (truncated), which put the command and every `-p` process up to a
/// second before they began, before their own first calls.
pub fn start_wall_ns(start_ticks: u64) -> Option<i64> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as i64;
    Some(crate::kernel::clock::boot_wall_ns() + start_ticks as i64 * (1_000_000_000 / hz))
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

    /// A process's start on the wall clock is when it began, to the tick: not before the
    /// second it began in, as `btime` put it.
    #[test]
    fn a_start_is_placed_on_the_wall_clock_to_the_tick() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let mut child = std::process::Command::new("sleep")
            .arg("1")
            .spawn()
            .unwrap();
        let after = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let start = start_wall_ns(stat(child.id()).unwrap().start_ticks).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // A tick is 10 ms, and a start is counted down to its tick.
        let tick = 1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as i64;
        assert!(
            start > before - tick && start <= after,
            "started {} ns after the spawn began (it ended {} ns after)",
            start - before,
            after - before
        );
    }

    fn cmdline_of(proc: &[u8]) -> String {
        join_args(without_padding(proc)).unwrap()
    }

    fn exec_event(raw: &[u8]) -> ProcessEvent {
        let mut e = ProcessEvent {
            args_len: raw.len() as u32,
            ..Default::default()
        };
        e.args[..raw.len()].copy_from_slice(raw);
        e
    }

    #[test]
    fn a_command_line_the_kernel_cut_is_completed_from_proc_or_marked() {
        let long = "x".repeat(300);
        let full = format!("java\0-cp\0{long}\0Main\0");
        // As the kernel copies it: the classpath cut to 127 bytes.
        let raw = format!("java\0-cp\0{}\0Main\0", &long[..ARG_MAX_LEN - 1]);
        let event = exec_event(raw.as_bytes());
        let proc = || Some(full.clone().into_bytes());
        assert_eq!(
            exec_cmdline(&event, proc).unwrap(),
            format!("java -cp {long} Main")
        );
        // Gone, or its title rewritten: the kernel's copy, marked.
        let cut = format!("java -cp {} Main \u{2026}", &long[..ARG_MAX_LEN - 1]);
        assert_eq!(exec_cmdline(&event, || None).unwrap(), cut);
        let title = || Some(b"postgres: idle\0".to_vec());
        assert_eq!(exec_cmdline(&event, title).unwrap(), cut);
        // Not cut: /proc is not read (a title set since would be taken for the command).
        let short = exec_event(b"postgres\0-D\0/data\0");
        let unread = || -> Option<Vec<u8>> { panic!("read /proc for a whole command line") };
        assert_eq!(exec_cmdline(&short, unread).unwrap(), "postgres -D /data");
        // Sixteen arguments, the most the kernel reads: there may have been more.
        let many: String = (0..MAX_ARGS).map(|i| format!("{i}\0")).collect();
        let more = format!("{many}16\017\0");
        let words: Vec<String> = (0..18).map(|i| i.to_string()).collect();
        assert_eq!(
            exec_cmdline(&exec_event(many.as_bytes()), || Some(more.into_bytes())).unwrap(),
            words.join(" ")
        );
        // The buffer full in the middle of an argument, which then has no NUL.
        let filled = exec_event(&[b'a'; ARGS_LEN]);
        let longer = [vec![b'a'; 500], vec![0]].concat();
        assert_eq!(
            exec_cmdline(&filled, || Some(longer)).unwrap(),
            "a".repeat(500)
        );
        // A title written over the arguments, padded with NULs: the title alone.
        assert_eq!(
            cmdline_of(b"postgres: checkpointer \0\0\0\0\0\0"),
            "'postgres: checkpointer '"
        );
        assert_eq!(cmdline_of(b"sh\0-c\0x\0"), "sh -c x");
        // The kernel read nothing: /proc's, unmarked.
        assert_eq!(
            exec_cmdline(&exec_event(b""), || Some(b"sh\0-c\0x\0".to_vec())).unwrap(),
            "sh -c x"
        );
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

    #[test]
    fn a_program_name_is_resolved_here_only_where_it_means_the_same_file() {
        let sh = fs::canonicalize("/bin/sh").unwrap();
        assert_eq!(resolved_here("/bin/sh").as_deref(), sh.to_str());
        assert_eq!(resolved_here("sh"), None);
        // Resolved by the recorder, these would name its own binary and fds.
        assert_eq!(resolved_here("/proc/self/exe"), None);
        assert_eq!(resolved_here("/dev/fd/3"), None);
        assert_eq!(resolved_here(""), None);
    }
}
