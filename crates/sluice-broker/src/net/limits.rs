//! Connection caps (Kafka's `max.connections` and `max.connections.per.ip`).
//!
//! Each accepted socket takes a [`ConnectionPermit`] before it is served; a connection over a
//! cap is closed at once, so a flood of sockets from one address can neither exhaust the
//! process's file descriptors nor lock out clients from elsewhere.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

/// Open connections, overall and per client address.
#[derive(Debug)]
pub struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max.connections` reached.
    #[error("the broker has {0} connections open (max.connections)")]
    Total(usize),
    /// `max.connections.per.ip` reached.
    #[error("{0} connections are open from this address (max.connections.per.ip)")]
    PerIp(usize),
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionPermit {
    ip: IpAddr,
    open: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    /// Caps of `max_total` connections and `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionLimits {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            open: Arc::default(),
        }
    }

    /// Admits a connection from `ip`, or says which cap it hits.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionPermit, Refused> {
        let mut counts = self.open.lock();
        if counts.total >= self.max_total {
            return Err(Refused::Total(counts.total));
        }
        let from_ip = counts.per_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(Refused::PerIp(*from_ip));
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            ip,
            open: self.open.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.open.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

/// File descriptors kept free for segments, indexes and the broker's own files.
const RESERVED_FDS: u64 = 256;

/// `configured`, lowered so connections cannot use more than half the file descriptors the
/// process may open. Raises the soft open-file limit to the hard one first (as Kafka's start
/// scripts advise), so a default `ulimit -n 1024` does not cap a broker that may have more.
pub fn effective_max_connections(configured: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by reference.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return configured;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let by_fds = soft.saturating_sub(RESERVED_FDS) / 2;
    let allowed = usize::try_from(by_fds.max(16)).unwrap_or(usize::MAX);
    if allowed < configured {
        tracing::info!(
            configured,
            allowed,
            open_file_limit = soft,
            "max.connections lowered to half the open-file limit; raise `ulimit -n` for more"
        );
    }
    configured.min(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_and_free_places() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = limits.admit(a).unwrap();
        let _a2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).unwrap_err(), Refused::PerIp(2));
        let _b1 = limits.admit(b).unwrap();
        assert_eq!(limits.admit(b).unwrap_err(), Refused::Total(3));
        drop(a1);
        assert_eq!(limits.open(), 2);
        assert!(limits.admit(b).is_ok());
    }
}
