//! The one-line progress display on stderr and the broker resource monitor that runs beside it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::broker_proc::{BrokerUsage, ProcSample, ProcWatcher};

const TICK: Duration = Duration::from_millis(250);

/// A background thread that redraws a status line on stderr about once a second.
pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing `line()` every second; does nothing when `enabled` is false.
    pub fn start(enabled: bool, mut line: impl FnMut() -> String + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = enabled.then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // A terminal gets one line redrawn every second; a log file gets a plain line
                // every five seconds instead of carriage returns and escape codes.
                let tty = std::io::stderr().is_terminal();
                let every = if tty { 4 } else { 20 };
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    ticks += 1;
                    if ticks == every {
                        ticks = 0;
                        let mut err = std::io::stderr().lock();
                        let _ = if tty {
                            write!(err, "\r{}\x1b[K", line())
                        } else {
                            writeln!(err, "{}", line())
                        };
                        let _ = err.flush();
                    }
                }
                if tty {
                    let _ = writeln!(std::io::stderr());
                }
            })
        });
        Progress { stop, handle }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Samples a local broker's RSS in the background so measurement windows can report the peak.
pub struct BrokerMonitor {
    watcher: ProcWatcher,
    peak_rss: Arc<AtomicU64>,
    last: Arc<Mutex<Option<ProcSample>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl BrokerMonitor {
    /// Starts sampling the watched process every 250 ms.
    pub fn start(watcher: ProcWatcher) -> Self {
        let peak_rss = Arc::new(AtomicU64::new(0));
        let last = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (watcher, peak_rss, last, stop) = (
                watcher.clone(),
                peak_rss.clone(),
                last.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(s) = watcher.sample() {
                        peak_rss.fetch_max(s.rss_bytes, Ordering::Relaxed);
                        if let Ok(mut l) = last.lock() {
                            *l = Some(s);
                        }
                    }
                    std::thread::sleep(TICK);
                }
            })
        };
        BrokerMonitor {
            watcher,
            peak_rss,
            last,
            stop,
            handle: Some(handle),
        }
    }

    /// Begins a measurement window: returns the starting sample and resets the peak RSS.
    pub fn window_start(&self) -> Option<ProcSample> {
        let s = self.watcher.sample().ok()?;
        self.peak_rss.store(s.rss_bytes, Ordering::Relaxed);
        Some(s)
    }

    /// Ends a window begun with [`BrokerMonitor::window_start`].
    pub fn window_end(&self, start: Option<ProcSample>) -> Option<BrokerUsage> {
        let start = start?;
        let end = self.watcher.sample().ok()?;
        Some(BrokerUsage::between(
            self.watcher.pid(),
            &start,
            &end,
            self.peak_rss.load(Ordering::Relaxed),
        ))
    }

    /// The latest background sample, for the progress line.
    pub fn latest(&self) -> Option<ProcSample> {
        self.last.lock().ok().and_then(|l| *l)
    }
}

impl Drop for BrokerMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Starts a window on an optional monitor.
pub fn window_start(m: Option<&BrokerMonitor>) -> Option<ProcSample> {
    m.and_then(BrokerMonitor::window_start)
}

/// Ends a window on an optional monitor.
pub fn window_end(m: Option<&BrokerMonitor>, start: Option<ProcSample>) -> Option<BrokerUsage> {
    m.and_then(|m| m.window_end(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_reports_window_for_own_process() {
        let Ok(w) = ProcWatcher::new(std::process::id()) else {
            panic!("own process must be readable")
        };
        let m = BrokerMonitor::start(w);
        let start = window_start(Some(&m));
        let v: Vec<u8> = vec![1; 8 << 20];
        std::hint::black_box(&v);
        std::thread::sleep(Duration::from_millis(300));
        let usage = window_end(Some(&m), start);
        let Some(u) = usage else {
            panic!("window must be measurable")
        };
        assert_eq!(u.pid, std::process::id());
        assert!(u.rss_peak_mib >= u.rss_end_mib * 0.5 && u.rss_peak_mib > 0.0);
        assert!(m.latest().is_some());
        assert!(window_end(None, None).is_none());
    }

    #[test]
    fn progress_disabled_spawns_nothing() {
        let p = Progress::start(false, || "x".to_string());
        assert!(p.handle.is_none());
        let p2 = Progress::start(true, || "tick".to_string());
        drop(p2); // must stop promptly
        drop(p);
    }
}
