//! Memory figures of a process, read from `/proc`.

use std::path::PathBuf;

/// A `kB` field of `/proc/<pid>/status` (`VmHWM` is the peak resident set,
/// `VmRSS` the current one), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the peak resident set (`VmHWM`) to the current one, so the next
/// reading is the peak of what ran in between (Linux: `5` in `clear_refs`).
pub fn reset_peak(pid: u32) -> std::io::Result<()> {
    std::fs::write(PathBuf::from(format!("/proc/{pid}/clear_refs")), "5")
}

/// Linux reports process CPU time in `USER_HZ` ticks, 100 per second on
/// every architecture the kernel exposes to user space this way.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time (user + system, every thread) a process has used so far, in
/// microseconds, from `/proc/<pid>/stat`: what a proxy costs per statement
/// once divided by the statements served in between.
pub fn cpu_micros(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields
    // after its closing parenthesis (state is field 3; utime, stime 14, 15).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * 1e6 / TICKS_PER_SECOND)
}

/// The 1-minute load average, for the record of a run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU model, core count, memory and kernel, for the record of a run.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!(
        "{model}, {cores} cores, {:.0} GiB RAM, Linux {kernel}",
        mem_kib as f64 / 1024.0 / 1024.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_peak_memory() {
        let pid = std::process::id();
        // The current set first: the peak, read after it, can only be as
        // large or larger (memory may grow between the two reads).
        let rss = status_kib(pid, "VmRSS").expect("VmRSS of this process");
        let hwm = status_kib(pid, "VmHWM").expect("VmHWM of this process");
        assert!(hwm >= rss && rss > 0);
    }
}
