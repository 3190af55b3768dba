//! CPU time and memory of a local broker process, read from /proc.
//!
//! When the broker runs on this machine, its cost per produced byte is the number that says
//! whether the data path is efficient, independent of how fast the client is.

use std::fs;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::error::{BenchError, Result};

/// One reading of a process's cumulative CPU time and resident memory.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When the reading was taken.
    pub at: Instant,
    /// User plus system CPU time in seconds since the process started.
    pub cpu_secs: f64,
    /// The user-space part of `cpu_secs`.
    pub user_secs: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// A local process whose resource use is sampled.
#[derive(Debug, Clone)]
pub struct ProcWatcher {
    pid: u32,
    ticks_per_sec: f64,
}

/// Broker resource use over a measurement window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BrokerUsage {
    /// PID of the broker process.
    pub pid: u32,
    /// CPU seconds used during the window.
    pub cpu_secs: f64,
    /// Average CPU use in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    /// The part of `cpu_secs` spent in user space (the broker's own code; the rest is the
    /// kernel working on its behalf: socket and page-cache copies, fsync).
    pub user_cpu_secs: f64,
    /// The part of `cpu_secs` spent in the kernel.
    pub system_cpu_secs: f64,
    /// Resident memory at the end of the window, MiB.
    pub rss_end_mib: f64,
    /// Highest resident memory seen during the window, MiB.
    pub rss_peak_mib: f64,
}

impl ProcWatcher {
    /// Watches process `pid`; fails if it does not exist or /proc is unreadable.
    pub fn new(pid: u32) -> Result<Self> {
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let watcher = ProcWatcher {
            pid,
            ticks_per_sec: if ticks > 0 { ticks as f64 } else { 100.0 },
        };
        watcher.sample()?;
        Ok(watcher)
    }

    /// The watched PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Reads the process's current CPU time and RSS.
    pub fn sample(&self) -> Result<ProcSample> {
        let stat_path = format!("/proc/{}/stat", self.pid);
        let stat = fs::read_to_string(&stat_path).map_err(|e| BenchError::io(&stat_path, e))?;
        let (user_ticks, system_ticks) = parse_stat_cpu_ticks(&stat).ok_or_else(|| {
            BenchError::io(
                &stat_path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected stat format"),
            )
        })?;
        let status_path = format!("/proc/{}/status", self.pid);
        let status =
            fs::read_to_string(&status_path).map_err(|e| BenchError::io(&status_path, e))?;
        Ok(ProcSample {
            at: Instant::now(),
            cpu_secs: (user_ticks + system_ticks) as f64 / self.ticks_per_sec,
            user_secs: user_ticks as f64 / self.ticks_per_sec,
            rss_bytes: parse_status_rss_bytes(&status).unwrap_or(0),
        })
    }
}

impl BrokerUsage {
    /// Usage between two samples, with the peak RSS seen by any sample in between.
    pub fn between(pid: u32, start: &ProcSample, end: &ProcSample, peak_rss_bytes: u64) -> Self {
        let wall = end.at.saturating_duration_since(start.at).as_secs_f64();
        let cpu = (end.cpu_secs - start.cpu_secs).max(0.0);
        let user = (end.user_secs - start.user_secs).clamp(0.0, cpu);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        BrokerUsage {
            pid,
            cpu_secs: cpu,
            cpu_cores: if wall > 0.0 { cpu / wall } else { 0.0 },
            user_cpu_secs: user,
            system_cpu_secs: cpu - user,
            rss_end_mib: mib(end.rss_bytes),
            rss_peak_mib: mib(peak_rss_bytes.max(end.rss_bytes).max(start.rss_bytes)),
        }
    }
}

/// `(utime, stime)` (fields 14 and 15) from a /proc/PID/stat line, in clock ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')'
    // are space-separated, starting with field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// VmRSS from /proc/PID/status, in bytes.
pub fn parse_status_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Inodes of sockets listening on `port` in a /proc/net/tcp or tcp6 table.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const TCP_LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let (_, port_hex) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(port_hex, 16).ok()?;
            if p != port || *f.get(3)? != TCP_LISTEN {
                return None;
            }
            f.get(9)?.parse().ok()
        })
        .collect()
}

/// Finds the local process listening on TCP `port`, by matching the listening socket's inode
/// against every process's open file descriptors. Needs permission to read other processes'
/// fds (same user or root).
pub fn find_listener_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let own = std::process::id();
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        if process_has_socket(&entry.path(), &targets) {
            return Some(pid);
        }
    }
    None
}

fn process_has_socket(proc_dir: &Path, targets: &[String]) -> bool {
    let Ok(fds) = fs::read_dir(proc_dir.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        fs::read_link(fd.path())
            .ok()
            .and_then(|t| t.to_str().map(|s| targets.iter().any(|x| x == s)))
            .unwrap_or(false)
    })
}

/// The port of a `host:port` bootstrap address (first address if several are given).
pub fn bootstrap_port(bootstrap: &str) -> Option<u16> {
    let first = bootstrap.split(',').next()?.trim();
    first.rsplit_once(':')?.1.parse().ok()
}

/// True if the first bootstrap host is this machine, so a broker PID can be looked up.
pub fn bootstrap_is_local(bootstrap: &str) -> bool {
    let first = bootstrap.split(',').next().unwrap_or("").trim();
    let host = first.rsplit_once(':').map(|(h, _)| h).unwrap_or(first);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host == "::1" || host.starts_with("127.") || host == "0.0.0.0"
}

/// A watcher for the broker: the given PID, or the local process listening on the bootstrap
/// port. `None` (with a log line) when the broker is remote or cannot be found.
pub fn broker_watcher(bootstrap: &str, pid: Option<u32>) -> Option<ProcWatcher> {
    let pid = match pid {
        Some(pid) => pid,
        None if bootstrap_is_local(bootstrap) => {
            let port = bootstrap_port(bootstrap)?;
            match find_listener_pid(port) {
                Some(pid) => pid,
                None => {
                    tracing::warn!(port, "no local process found listening on the bootstrap port; pass --broker-pid to report broker CPU and memory");
                    return None;
                }
            }
        }
        None => return None,
    };
    match ProcWatcher::new(pid) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(pid, error = %e, "cannot read broker process stats; broker CPU and memory will not be reported");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_odd_command_names() {
        let stat = "1234 (my (odd) broker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some((250, 75)));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_rss() {
        let status = "Name:\tsluice\nVmPeak:\t  2000 kB\nVmRSS:\t    1536 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss_bytes(status), Some(1536 * 1024));
        assert_eq!(parse_status_rss_bytes("Name: x\n"), None);
    }

    #[test]
    fn listening_socket_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:2384 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 6666 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes(table, 0x2384), vec![5555]);
        assert_eq!(listening_inodes(table, 8080), vec![7777]);
        assert!(listening_inodes(table, 1).is_empty());
    }

    #[test]
    fn finds_listener_of_another_process() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        // A child process listens on a free loopback port and prints it.
        let script = "import socket,sys,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)";
        let Ok(mut child) = Command::new("python3")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("python3 not available; skipping");
            return;
        };
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let port: u16 = line.trim().parse().unwrap_or(0);
        let found = find_listener_pid(port);
        let _ = child.kill();
        let _ = child.wait();
        assert_ne!(port, 0, "child did not report its port");
        assert_eq!(found, Some(child.id()));
        // Our own listener is skipped on purpose (the bench never watches itself).
        if let Ok(own) = std::net::TcpListener::bind("127.0.0.1:0") {
            let own_port = own.local_addr().map(|a| a.port()).unwrap_or(0);
            assert_eq!(find_listener_pid(own_port), None);
        }
    }

    #[test]
    fn own_process_can_be_sampled() {
        let w = ProcWatcher::new(std::process::id());
        let Ok(w) = w else {
            panic!("own /proc entry must be readable");
        };
        let a = w.sample().ok();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = w.sample().ok();
        let (Some(a), Some(b)) = (a, b) else {
            panic!("sampling failed")
        };
        assert!(b.rss_bytes > 0);
        let u = BrokerUsage::between(w.pid(), &a, &b, 0);
        assert!(u.cpu_secs >= 0.0 && u.rss_peak_mib > 0.0);
    }

    #[test]
    fn bootstrap_parsing() {
        assert_eq!(bootstrap_port("127.0.0.1:9092"), Some(9092));
        assert_eq!(bootstrap_port("[::1]:19092,other:1"), Some(19092));
        assert_eq!(bootstrap_port("nohost"), None);
        assert!(bootstrap_is_local("localhost:9092"));
        assert!(bootstrap_is_local("[::1]:9092"));
        assert!(!bootstrap_is_local("broker.example:9092"));
    }
}
