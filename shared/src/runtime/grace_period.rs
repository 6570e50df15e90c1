//! Starting early the kernel wait that a container's start is sure to hit.
//!
//! Moving a process into a cgroup (libcontainer's processes join the
//! container's cgroups) takes the kernel's `cgroup_threadgroup_rwsem` for
//! writing. While the lock is idle its readers (every fork and exit on the
//! machine) take a per-CPU fast path, so a writer first waits out an RCU
//! grace period; a writer that comes within about one grace period of
//! another finds the slow path still on and waits for nothing. Measured
//! here: the first move took 9-12 ms of a ~21 ms `ctr-run --rm IMAGE true`,
//! every following one 0.02 ms.
//!
//! [`begin`] has a thread of ours make that first move while the image is
//! resolved, the record written and the root mounted: the thread writes
//! `0` ("the writer") into the `cgroup.procs` of the cgroup we are already
//! in, which moves nothing. Hosts whose cgroups are mounted with
//! `favordynmods` never wait; there this costs one system call.
//!
//! A move that comes more than about one grace period after the last one
//! waits again. img-build's first RUN step may come long after its first
//! cache miss (a COPY of a large context, a layer compressed): there the
//! build holds [`keep_warm`] from the miss, and the thread moves again
//! every 2 ms, so the wait is paid once, behind the COPY, and never by the
//! step.
//!
//! The thread allocates nothing: libcontainer forks with a raw `clone3`,
//! which runs no fork handlers, so a thread of ours holding an allocator
//! lock at that instant would leave the child deadlocked.

use std::ffi::{CString, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The `cgroup.procs` the thread writes to; set only while no thread runs.
static TARGET: Mutex<Option<CString>> = Mutex::new(None);
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);
/// How many [`Warm`] guards are alive: while any is, the thread keeps on.
static HOLDERS: AtomicUsize = AtomicUsize::new(0);
/// Moves made, for the tests.
static MOVES: AtomicUsize = AtomicUsize::new(0);
/// The pause between moves while kept warm: well within a grace period
/// (4 ms at least here: one tick at 250 Hz).
const REWARM_NANOS: libc::c_long = 2_000_000;

/// Keeps the grace period passed while it lives: see the module.
#[must_use = "the period is kept passed only while the guard lives"]
pub struct Warm(());

impl Drop for Warm {
    fn drop(&mut self) {
        HOLDERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Begins the grace period and keeps it passed until the guard is dropped.
pub fn keep_warm() -> Warm {
    HOLDERS.fetch_add(1, Ordering::AcqRel);
    begin();
    Warm(())
}

/// Starts the grace period in the background, unless a start is already
/// under way. Never fails: without a writable cgroup file it does nothing.
pub fn begin() {
    if IN_FLIGHT.swap(true, Ordering::AcqRel) {
        return;
    }
    let Some(path) = own_procs_file() else {
        IN_FLIGHT.store(false, Ordering::Release);
        return;
    };
    *TARGET.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
    // SAFETY: plain pthread calls on a zeroed, initialised attribute; the
    // thread's function takes no argument and touches only statics.
    let started = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let mut thread: libc::pthread_t = 0;
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&mut attr, 64 << 10);
        let result =
            libc::pthread_create(&mut thread, &attr, enter_own_cgroup, std::ptr::null_mut());
        libc::pthread_attr_destroy(&mut attr);
        result == 0
    };
    if !started {
        IN_FLIGHT.store(false, Ordering::Release);
    }
}

/// The thread: moves once, and again every 2 ms while a [`Warm`] lives;
/// no allocation.
extern "C" fn enter_own_cgroup(_: *mut c_void) -> *mut c_void {
    loop {
        move_into_own_cgroup();
        if HOLDERS.load(Ordering::Acquire) > 0 {
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: REWARM_NANOS,
            };
            // SAFETY: a valid timespec; the remainder is not wanted.
            unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
            continue;
        }
        IN_FLIGHT.store(false, Ordering::Release);
        // A guard taken as we were leaving found us in flight and started
        // no thread: go on, unless another thread has since.
        if HOLDERS.load(Ordering::Acquire) == 0 || IN_FLIGHT.swap(true, Ordering::AcqRel) {
            return std::ptr::null_mut();
        }
    }
}

/// One open, one write of `0` into our own cgroup's `cgroup.procs`, one
/// close.
fn move_into_own_cgroup() {
    let fd = match TARGET.lock() {
        // SAFETY: a NUL-terminated path kept alive by TARGET while we run.
        Ok(target) => match target.as_ref() {
            Some(path) => unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) },
            None => -1,
        },
        Err(_) => -1,
    };
    if fd >= 0 {
        // SAFETY: a valid descriptor and a static buffer.
        unsafe {
            libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
        }
    }
    MOVES.fetch_add(1, Ordering::Relaxed);
}

/// The `cgroup.procs` of our own cgroup in the first hierarchy that has
/// one: a cgroup v1 controller's (`/sys/fs/cgroup/<controller>/<path>`) or
/// the unified one (`/sys/fs/cgroup/<path>`, or `unified/` on hybrid hosts).
fn own_procs_file() -> Option<CString> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut candidates = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            candidates.push(format!("/sys/fs/cgroup/{path}"));
            candidates.push(format!("/sys/fs/cgroup/unified/{path}"));
        } else if let Some(controller) = controllers.split(',').find(|c| !c.starts_with("name=")) {
            candidates.insert(0, format!("/sys/fs/cgroup/{controller}/{path}"));
        }
    }
    candidates
        .into_iter()
        .map(|dir| format!("{}/cgroup.procs", dir.trim_end_matches('/')))
        .find(|file| std::path::Path::new(file).exists())
        .and_then(|file| CString::new(file).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_cgroup_file_is_found_and_the_move_leaves_us_where_we_were() {
        let before = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let Some(file) = own_procs_file() else {
            return; // no cgroup filesystem here: begin() does nothing
        };
        let listed = std::fs::read_to_string(file.to_str().unwrap()).unwrap();
        let me = std::process::id().to_string();
        assert!(listed.lines().any(|l| l == me), "{file:?} lists {listed}");
        begin();
        while IN_FLIGHT.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").unwrap(),
            before
        );
    }

    #[test]
    fn a_warm_guard_keeps_the_thread_moving_until_it_is_dropped() {
        if own_procs_file().is_none() {
            return; // no cgroup filesystem here: nothing moves
        }
        let wait_for = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !done() {
                assert!(std::time::Instant::now() < deadline, "{what}");
                std::thread::yield_now();
            }
        };
        let warm = keep_warm();
        let from = MOVES.load(Ordering::Relaxed);
        wait_for("moves while the guard lives", &|| {
            MOVES.load(Ordering::Relaxed) >= from + 3
        });
        assert!(IN_FLIGHT.load(Ordering::Acquire));
        drop(warm);
        wait_for("the thread stops once the guard is gone", &|| {
            !IN_FLIGHT.load(Ordering::Acquire)
        });
    }
}
