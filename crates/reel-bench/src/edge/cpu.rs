//! CPU accounting and placement: priority, pinning, `/proc` tick counts.

use super::*;

/// Asks for nice [`NICE`] (root only) before anything is spawned, so the
/// caches, the origin and the load generator all inherit it and other work
/// on a shared machine disturbs the latencies less; returns the nice value
/// in force.
pub(super) fn raise_priority() -> i32 {
    // SAFETY: setpriority and getpriority only read their integer
    // arguments; `who` 0 is the calling thread, whose value threads and
    // processes created later inherit.
    unsafe {
        if libc::setpriority(libc::PRIO_PROCESS, 0, NICE) != 0 {
            eprintln!(
                "could not raise priority to nice {NICE} ({}); measuring at the default",
                std::io::Error::last_os_error()
            );
        }
        libc::getpriority(libc::PRIO_PROCESS, 0)
    }
}

pub(super) fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only read and write that set.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    anyhow::ensure!(
        result == 0,
        "pinning the load generator to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

pub(super) fn count_lines(path: &Path) -> anyhow::Result<u64> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.iter().filter(|byte| **byte == b'\n').count() as u64)
}

pub(super) fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of every process of a cache, in clock ticks.
pub(super) fn cpu_ticks(pids: &Pids) -> anyhow::Result<u64> {
    match pids {
        Pids::Process(pid) => process_ticks(*pid),
        Pids::NginxMaster(master) => {
            let mut total = process_ticks(*master)?;
            for child in children_of(*master)? {
                // A worker may exit between the listing and the read.
                total += process_ticks(child).unwrap_or(0);
            }
            Ok(total)
        }
    }
}

/// The fields of `/proc/PID/stat` after the command name.
pub(super) fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc stat")?;
    Ok(rest.split_whitespace().map(str::to_string).collect())
}

pub(super) fn process_ticks(pid: u32) -> anyhow::Result<u64> {
    let fields = stat_fields(pid)?;
    // proc(5): utime and stime are fields 14 and 15; field 3 is the first
    // after the command name.
    let field = |number: usize| -> anyhow::Result<u64> {
        fields
            .get(number - 3)
            .context("short /proc stat")?
            .parse()
            .context("malformed /proc stat")
    };
    Ok(field(14)? + field(15)?)
}

pub(super) fn children_of(parent: u32) -> anyhow::Result<Vec<u32>> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fields) = stat_fields(pid) else {
            continue;
        };
        if fields.get(1).and_then(|ppid| ppid.parse::<u32>().ok()) == Some(parent) {
            children.push(pid);
        }
    }
    Ok(children)
}
