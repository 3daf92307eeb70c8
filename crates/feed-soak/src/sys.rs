//! What the process knows about itself: resident memory (VmRSS, VmHWM), open file descriptors,
//! the open-files limit, and a sampler thread that keeps the peak fd count while a scenario runs.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the sampler counts descriptors: often enough to catch a plateau, rarely enough that
/// reading a directory of a few thousand entries costs next to nothing.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// A `kB` field of `/proc/self/status`, in KiB.
fn status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

fn read_status() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default()
}

/// Resident memory now, in KiB (0 when /proc is unreadable).
pub(crate) fn rss_kib() -> u64 {
    status_kib(&read_status(), "VmRSS").unwrap_or(0)
}

/// The peak resident memory of this process so far (VmHWM), in KiB.
pub(crate) fn peak_rss_kib() -> u64 {
    status_kib(&read_status(), "VmHWM").unwrap_or(0)
}

/// Open file descriptors now (entries of /proc/self/fd, less the one reading it).
pub(crate) fn fd_count() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| (dir.count() as u64).saturating_sub(1))
        .unwrap_or(0)
}

/// The open-files limit: soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoFile {
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// The current RLIMIT_NOFILE.
pub(crate) fn nofile() -> io::Result<NoFile> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the pointer, which points at one.
    #[allow(unsafe_code)] // reading a resource limit has no safe std API; one FFI call
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(NoFile {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// Raises the soft open-files limit to the hard limit (children inherit it); returns the limit
/// before and after.
pub(crate) fn raise_nofile() -> io::Result<(NoFile, NoFile)> {
    let before = nofile()?;
    if before.soft < before.hard {
        let limit = libc::rlimit {
            rlim_cur: before.hard,
            rlim_max: before.hard,
        };
        // SAFETY: setrlimit reads one `rlimit` from the pointer, which points at one.
        #[allow(unsafe_code)] // raising a resource limit has no safe std API; one FFI call
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((before, nofile()?))
}

/// Counts descriptors on its own thread until dropped; keeps the peak.
pub(crate) struct FdSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FdSampler {
    pub(crate) fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(fd_count()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("fd-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(fd_count(), Ordering::Relaxed);
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        Self { peak, stop, thread }
    }

    /// Counts now as well (call it where the peak is expected) and returns the count.
    #[cfg_attr(
        not(feature = "socks"),
        expect(dead_code, reason = "only the SOCKS load scenarios use it")
    )]
    pub(crate) fn sample(&self) -> u64 {
        let now = fd_count();
        self.peak.fetch_max(now, Ordering::Relaxed);
        now
    }

    /// The most descriptors seen open so far.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed).max(fd_count())
    }
}

impl Drop for FdSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `12.3 MiB` from KiB.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_of_proc_status() {
        let text = "Name:\tfeed-soak\nVmHWM:\t   20480 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
        assert_eq!(status_kib(text, "VmHWM"), Some(20480));
        assert_eq!(status_kib(text, "VmRSS"), Some(1234));
        assert_eq!(status_kib(text, "VmSwap"), None);
        assert_eq!(status_kib(text, "Threads"), None, "not a kB field");
        assert_eq!(status_kib("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn this_process_has_memory_descriptors_and_a_limit() {
        assert!(rss_kib() > 0);
        assert!(peak_rss_kib() >= rss_kib() / 2);
        // Other tests run beside this one and open files too: no exact counts.
        let before = fd_count();
        assert!(before >= 3, "stdin, stdout, stderr at least: {before}");
        let limit = nofile().expect("getrlimit");
        assert!(limit.soft <= limit.hard);
        let sampler = FdSampler::start();
        assert!(sampler.peak() >= before);
    }
}
