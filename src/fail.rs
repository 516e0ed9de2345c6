//! Named crash points for tests: `fail::point("evict.after_punch")` aborts the process (as a
//! power cut or `kill -9` would end it, with no destructor, flush or unlock run) when the
//! environment variable `FOOTAGE_FAILPOINT` names that point.
//!
//! `FOOTAGE_FAILPOINT=name` aborts at the first pass through `name`; `name@N` at the N-th
//! pass (1-based), so a test can crash in the middle of a batch. Several points may be given,
//! separated by commas. With the variable unset (every production run) a point costs one
//! relaxed atomic load.
//!
//! `err:name` (or `err:name@N`) arms an *error* point instead: [`error`] returns true at the
//! N-th pass and every later one, so a test can make the cloud fail part-way through a
//! batch and go on running.
//!
//! [`hook`]`("name")` is an interleaving point: a test in the same process sets a one-shot
//! closure for it with `set_hook` (bound to the test's thread), which runs there, for example
//! to delete a segment while a read of it is between two steps.
//!
//! Invariants: a point never changes what the code does unless it aborts; the process exits
//! through `std::process::abort` (SIGABRT), so nothing buffered in user space reaches disk
//! and the kernel keeps what was written, exactly as after `kill -9`.
//!
//! Only a build with the cargo feature `failpoints` has any of this: the tests turn it on
//! (a self dev-dependency in Cargo.toml), every other build (`cargo build --release`, `cargo
//! install`) leaves it off, and then [`point`] and [`error`] are empty inline functions, the
//! variable is never read, and `inject_eio` does not exist. A stray `FOOTAGE_FAILPOINT` in
//! a production environment can therefore not abort a server.

/// The environment variable that arms failpoints (read only by a `failpoints` build).
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
pub const ENV: &str = "FOOTAGE_FAILPOINT";

/// Whether this build has fail points (the cargo feature `failpoints`).
#[cfg_attr(not(feature = "internals"), allow(dead_code))] // used by the tests
pub const COMPILED: bool = cfg!(feature = "failpoints");

#[cfg(feature = "failpoints")]
pub use armed::{clear_eio, eio, error, hook, inject_eio, point, set_hook};

/// A crash point: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn point(_name: &str) {}

/// An error point: never fails in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn error(_name: &str) -> bool {
    false
}

/// An interleaving hook: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hook(_name: &str) {}

/// An injected read error: never in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn eio(_path: &std::path::Path) -> Option<std::io::Error> {
    None
}

#[cfg(feature = "failpoints")]
mod armed {
    use super::ENV;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU8, Ordering};

    use parking_lot::Mutex;

    /// Error points: name -> passes left before it starts failing (0 = failing).
    static ERRORS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

    /// 0 = not read yet, 1 = no failpoints configured, 2 = some configured.
    static STATE: AtomicU8 = AtomicU8::new(0);
    static POINTS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

    fn load() -> bool {
        match STATE.load(Ordering::Relaxed) {
            1 => return false,
            2 => return true,
            _ => {}
        }
        let spec = std::env::var(ENV).unwrap_or_default();
        let mut map = HashMap::new();
        let mut errors = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (item, target) = match item.strip_prefix("err:") {
                Some(rest) => (rest, &mut errors),
                None => (item, &mut map),
            };
            let (name, n) = match item.split_once('@') {
                Some((name, n)) => (name, n.parse::<u64>().unwrap_or(1).max(1)),
                None => (item, 1),
            };
            target.insert(name.to_string(), n);
        }
        let armed = !map.is_empty() || !errors.is_empty();
        *POINTS.lock() = Some(map);
        *ERRORS.lock() = Some(errors);
        STATE.store(if armed { 2 } else { 1 }, Ordering::Relaxed);
        armed
    }

    /// A crash point named `name`: aborts the process here if `FOOTAGE_FAILPOINT` asks for it.
    pub fn point(name: &str) {
        if !load() {
            return;
        }
        let mut guard = POINTS.lock();
        let Some(map) = guard.as_mut() else { return };
        if let Some(left) = map.get_mut(name) {
            *left -= 1;
            if *left == 0 {
                eprintln!("footage: failpoint {name} reached: aborting");
                std::process::abort();
            }
        }
    }

    /// One-shot hooks: (name, thread that set it, what to run).
    type Hook = (String, std::thread::ThreadId, Box<dyn FnOnce() + Send>);
    static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());
    /// True while a hook is set, so an unarmed [`hook`] is one relaxed load.
    static HOOKS_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Runs `f` the next time the calling thread passes [`hook`] `name` (once), so a test can
    /// force an interleaving (delete a segment between a cache fill's fetch and its rename).
    /// Thread-bound, so tests running side by side in one binary do not fire each other's.
    pub fn set_hook(name: &str, f: impl FnOnce() + Send + 'static) {
        HOOKS
            .lock()
            .push((name.to_string(), std::thread::current().id(), Box::new(f)));
        HOOKS_ARMED.store(true, Ordering::Relaxed);
    }

    /// An interleaving point named `name`: runs the hook the calling thread set for it, if
    /// any (outside any lock of this module).
    pub fn hook(name: &str) {
        if !HOOKS_ARMED.load(Ordering::Relaxed) {
            return;
        }
        let me = std::thread::current().id();
        let f = {
            let mut hooks = HOOKS.lock();
            let at = hooks.iter().position(|(n, t, _)| n == name && *t == me);
            let f = at.map(|i| hooks.remove(i).2);
            if hooks.is_empty() {
                HOOKS_ARMED.store(false, Ordering::Relaxed);
            }
            f
        };
        if let Some(f) = f {
            f();
        }
    }

    /// Path prefixes whose reads fail with `EIO`, as a dead disk's would (`inject_eio`).
    static EIO_PREFIXES: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());
    /// True while `EIO_PREFIXES` is non-empty, so an unarmed check is one relaxed load.
    static EIO_ARMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Makes every read of a volume under `prefix` fail with `EIO` from now on in this process,
    /// as reads from a disk that died under a mounted file system do. For tests of a data dir
    /// failing while the store is open: a lazily unmounted file system (`umount -l`) keeps open
    /// files readable, so a real run-time failure cannot be produced without a device mapper.
    pub fn inject_eio(prefix: &std::path::Path) {
        EIO_PREFIXES.lock().push(prefix.to_path_buf());
        EIO_ARMED.store(true, Ordering::Relaxed);
    }

    /// Undoes every [`inject_eio`].
    pub fn clear_eio() {
        EIO_PREFIXES.lock().clear();
        EIO_ARMED.store(false, Ordering::Relaxed);
    }

    /// The injected error for a read of `path`, if one is armed for it.
    pub fn eio(path: &std::path::Path) -> Option<std::io::Error> {
        if !EIO_ARMED.load(Ordering::Relaxed) {
            return None;
        }
        EIO_PREFIXES
            .lock()
            .iter()
            .any(|p| path.starts_with(p))
            .then(|| std::io::Error::from_raw_os_error(libc::EIO))
    }

    /// An error point named `name`: true (the caller fails as if the operation had failed) from
    /// the N-th pass on when `FOOTAGE_FAILPOINT` holds `err:name@N`.
    pub fn error(name: &str) -> bool {
        if !load() {
            return false;
        }
        let mut guard = ERRORS.lock();
        let Some(map) = guard.as_mut() else {
            return false;
        };
        match map.get_mut(name) {
            Some(left) if *left > 1 => {
                *left -= 1;
                false
            }
            Some(left) => {
                *left = 0;
                true
            }
            None => false,
        }
    }
}
