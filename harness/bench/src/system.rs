//! The machine a benchmark ran on, and peak memory of processes.

use serde::Serialize;

/// What the figures came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub cpu_model: String,
    pub os: String,
    /// `debug` or `release`: the harness's own code is unoptimised in a
    /// debug build (dependencies are built with opt-level 1).
    pub build_profile: String,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the bench started: other
    /// work on the machine slows every figure.
    pub load_average: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            memory_gib: meminfo_total_kib(&read("/proc/meminfo"))
                .map(|kib| (kib as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0)
                .unwrap_or(0.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu_model: cpu_model(&read("/proc/cpuinfo")).unwrap_or_else(|| "unknown".into()),
            os: os_name(&read("/etc/os-release")).unwrap_or_else(|| "unknown".into()),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            load_average: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// One line: `2 × Intel(R) Xeon(R) ..., 23.5 GiB, Linux 6.1.0 (Debian GNU/Linux 12)`.
    pub fn one_line(&self) -> String {
        format!(
            "{} × {}, {} GiB RAM, Linux {} ({}), {} build, load average {} at the start",
            self.nproc,
            self.cpu_model,
            self.memory_gib,
            self.kernel,
            self.os,
            self.build_profile,
            self.load_average
        )
    }
}

fn meminfo_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_string())
        })
        .filter(|m| !m.is_empty())
}

fn os_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// Peak resident set size (`VmHWM`) of `pid` in KiB; `None` when the
/// process is gone or the field is missing.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm_kib(&status)
}

/// Peak resident set size of this process in KiB.
pub fn own_peak_rss_kib() -> Option<u64> {
    vm_hwm_kib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        assert_eq!(
            vm_hwm_kib("Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t  1234 kB\nVmRSS:\t 1000 kB\n"),
            Some(1234)
        );
        assert_eq!(
            meminfo_total_kib("MemTotal:       24604712 kB\n"),
            Some(24604712)
        );
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(
            os_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn this_process_has_a_peak_rss() {
        assert!(own_peak_rss_kib().is_some_and(|k| k > 0));
    }
}
