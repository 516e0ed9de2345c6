//! Scheduling priority of bulk work against interactive work.
//!
//! A station server takes a dock's footage (hashing and writing gigabytes) on the same cores
//! that answer reviewers' searches and video reads. Ingest is throughput work: a few
//! milliseconds more per 64 MiB segment change nothing for a dock; a search is latency work,
//! and a reviewer waits for it. So the threads that carry bulk work (tus upload workers, the
//! dock folder's watcher, ingest carried over the control channel) lower their own scheduling
//! priority (the Linux per-thread nice value) by [`BULK_NICE`] steps: when a search and an
//! ingest both want a core, the scheduler gives the search about nine tenths of it (CFS weights
//! 1024 against 110 at ten steps apart); when nothing else runs, ingest has every core as
//! before. Threads they start (the SHA-256 helper of ingest) inherit the lowered priority.
//! Nothing here touches I/O priority: the disk's queue is shared as before (docs/DESIGN.md §24).
//!
//! Invariants:
//! - only threads started for bulk work are lowered: an unprivileged process cannot raise a
//!   thread's priority again, so a pooled thread that may later serve a query (tokio's
//!   blocking pool) is never lowered;
//! - lowering is relative to the thread's priority at the time (a service started with
//!   `Nice=5` runs bulk work at 15), capped at 19, and is a hint: failing to lower is logged
//!   and never fails the work.

use std::thread::JoinHandle;

pub use crate::config::service::BULK_NICE;

/// The lowest priority Linux knows (the highest nice value).
const NICE_MAX: i32 = 19;

/// Lowers the calling thread's scheduling priority by `steps` (nothing when `steps <= 0`).
/// Returns the thread's nice value afterwards, or None when it could not be read or set
/// (logged at debug: a sandbox may forbid it, and the work goes on at normal priority).
pub fn lower_current_thread(steps: i32) -> Option<i32> {
    if steps <= 0 {
        return None;
    }
    imp::lower(steps)
}

/// Starts a named thread for bulk work: it lowers its own priority by `steps` before running
/// `f`.
///
/// # Errors
/// The OS refused to start a thread.
pub fn spawn_bulk<F, T>(name: &str, steps: i32, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_current_thread(steps);
            f()
        })
}

#[cfg(target_os = "linux")]
mod imp {
    use super::NICE_MAX;

    pub(super) fn lower(steps: i32) -> Option<i32> {
        // SAFETY: gettid, getpriority and setpriority take plain integers and touch no memory
        // of ours; on Linux, PRIO_PROCESS with a thread id names that one thread.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let Ok(tid) = libc::id_t::try_from(tid) else {
            return None;
        };
        // getpriority may return -1 as a value: errno tells an error apart.
        let current = unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        };
        if current == -1 && std::io::Error::last_os_error().raw_os_error() != Some(0) {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot read this thread's priority: bulk work runs at normal priority"
            );
            return None;
        }
        let target = current.saturating_add(steps).min(NICE_MAX);
        // SAFETY: as above.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, target) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot lower this thread's priority: bulk work runs at normal priority"
            );
            return None;
        }
        Some(target)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) fn lower(_steps: i32) -> Option<i32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread, from /proc (independent of the code under test).
    fn nice_of_this_thread() -> i32 {
        let tid = unsafe { libc::syscall(libc::SYS_gettid) };
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
        // Field 19 (nice); the command name (field 2) may hold spaces, so count after ')'.
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        after
            .split(' ')
            .nth(16)
            .expect("nice")
            .parse()
            .expect("number")
    }

    #[test]
    fn a_bulk_thread_runs_lowered_and_its_children_inherit_it() {
        let before = nice_of_this_thread();
        let (own, child) = spawn_bulk("bulk-test", 3, || {
            let own = nice_of_this_thread();
            let child = std::thread::spawn(nice_of_this_thread)
                .join()
                .expect("child");
            (own, child)
        })
        .expect("spawn")
        .join()
        .expect("join");
        let want = (before + 3).min(NICE_MAX);
        assert_eq!(own, want);
        assert_eq!(child, want);
        // The spawning thread is untouched.
        assert_eq!(nice_of_this_thread(), before);
    }

    #[test]
    fn zero_steps_leave_the_priority_alone() {
        let got = std::thread::spawn(|| {
            let before = nice_of_this_thread();
            assert_eq!(lower_current_thread(0), None);
            (before, nice_of_this_thread())
        })
        .join()
        .expect("join");
        assert_eq!(got.0, got.1);
    }
}
