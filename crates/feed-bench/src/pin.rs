//! Pinning the bench's two threads (the client's, which runs `block_on`, and the background
//! runtime's one worker, which runs the relays and the server) to one CPU, for the CPU per
//! connection rows that show what the arms cost when no round trip wakes a thread on another
//! CPU.

use std::io;

use tokio::runtime::Runtime;

/// One thread's CPU mask (`sched_getaffinity`).
#[derive(Clone, Copy)]
struct Mask(libc::cpu_set_t);

impl Mask {
    /// The calling thread's mask.
    fn of_this_thread() -> io::Result<Self> {
        let mut set = Self::empty();
        // SAFETY: sched_getaffinity writes at most `size_of::<cpu_set_t>()` bytes into the
        // pointer, which points at one `cpu_set_t`; pid 0 is the calling thread.
        #[allow(unsafe_code)] // the only way to read a thread's CPU mask; one FFI call
        let status = unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set.0)
        };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }

    fn empty() -> Self {
        // SAFETY: cpu_set_t is an array of integers; all zeroes is the empty set (CPU_ZERO).
        #[allow(unsafe_code)] // libc offers no safe constructor for cpu_set_t
        Self(unsafe { std::mem::zeroed() })
    }

    /// The set holding `cpu` only.
    fn only(cpu: usize) -> Self {
        let mut set = Self::empty();
        // SAFETY: CPU_SET writes one bit of the set it is given; `cpu` comes from `cpus`,
        // so it is below CPU_SETSIZE.
        #[allow(unsafe_code)] // libc's CPU_SET is an unsafe fn
        unsafe {
            libc::CPU_SET(cpu, &mut set.0);
        }
        set
    }

    /// The CPUs in the set, lowest first.
    fn cpus(&self) -> impl Iterator<Item = usize> + '_ {
        // SAFETY: CPU_ISSET reads one bit of the set; every index is below CPU_SETSIZE.
        #[allow(unsafe_code)] // libc's CPU_ISSET is an unsafe fn
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &self.0) })
    }

    /// Makes this the calling thread's mask.
    fn apply(&self) -> io::Result<()> {
        // SAFETY: sched_setaffinity reads `size_of::<cpu_set_t>()` bytes from the pointer,
        // which points at one `cpu_set_t`; pid 0 is the calling thread.
        #[allow(unsafe_code)] // the only way to set a thread's CPU mask; one FFI call
        let status =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if status != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The calling thread and `background`'s worker pinned to one CPU (the lowest the calling
/// thread may use), until `restore` or drop gives each thread back its own mask. `background`
/// must have exactly one worker thread (its blocking pool, unused by the CPU arms, is not
/// pinned).
pub(crate) struct OneCpu<'a> {
    background: &'a Runtime,
    main: Mask,
    worker: Mask,
    cpu: usize,
    restored: bool,
}

impl<'a> OneCpu<'a> {
    pub(crate) fn pin(background: &'a Runtime) -> io::Result<Self> {
        let main = Mask::of_this_thread()?;
        let cpu = main
            .cpus()
            .next()
            .ok_or_else(|| io::Error::other("the calling thread's CPU mask is empty"))?;
        let only = Mask::only(cpu);
        let worker = on_worker(background, move || {
            let old = Mask::of_this_thread()?;
            only.apply()?;
            Ok(old)
        })?;
        let pinned = Self {
            background,
            main,
            worker,
            cpu,
            restored: false,
        };
        // On an error here, dropping `pinned` gives the worker its mask back.
        only.apply()?;
        Ok(pinned)
    }

    /// The CPU both threads run on.
    pub(crate) fn cpu(&self) -> usize {
        self.cpu
    }

    /// Gives both threads their masks back (both tried; the first error returned).
    pub(crate) fn restore(mut self) -> io::Result<()> {
        self.restored = true;
        self.give_back()
    }

    fn give_back(&self) -> io::Result<()> {
        let main = self.main.apply();
        let worker = self.worker;
        main.and(on_worker(self.background, move || worker.apply()))
    }
}

impl Drop for OneCpu<'_> {
    fn drop(&mut self) {
        if !self.restored {
            // Best effort on an error path (the error being reported is the one that
            // matters); a thread left pinned only slows the benchmarks after it.
            let _ = self.give_back();
        }
    }
}

/// Runs `f` on `background`'s worker thread (a spawned task; `block_on` would run it on the
/// calling thread).
fn on_worker<T: Send + 'static>(
    background: &Runtime,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    background
        .block_on(background.spawn(async move { f() }))
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(mask: &Mask) -> Vec<usize> {
        mask.cpus().collect()
    }

    fn worker_cpus(background: &Runtime) -> Vec<usize> {
        let mask = on_worker(background, Mask::of_this_thread).expect("worker mask");
        cpus(&mask)
    }

    #[test]
    fn pins_both_threads_to_one_cpu_and_restores_their_masks() {
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let main_before = cpus(&Mask::of_this_thread().expect("mask"));
        let worker_before = worker_cpus(&background);
        let pinned = OneCpu::pin(&background).expect("pin");
        assert_eq!(pinned.cpu(), main_before[0]);
        assert_eq!(cpus(&Mask::of_this_thread().expect("mask")), [pinned.cpu()]);
        assert_eq!(worker_cpus(&background), [pinned.cpu()]);
        pinned.restore().expect("restore");
        assert_eq!(cpus(&Mask::of_this_thread().expect("mask")), main_before);
        assert_eq!(worker_cpus(&background), worker_before);

        // Dropped without restore (an error path): the masks come back too.
        drop(OneCpu::pin(&background).expect("pin"));
        assert_eq!(cpus(&Mask::of_this_thread().expect("mask")), main_before);
        assert_eq!(worker_cpus(&background), worker_before);
    }
}
