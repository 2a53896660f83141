//! Locks that survive a panic elsewhere.
//!
//! A thread that panics while holding a lock poisons it. In an emulator that is
//! a device model or a vCPU thread that failed; the data behind the lock is as
//! that thread left it, which is what the machine (or the report of the
//! failure) should go on with, rather than panic again in every other thread.
//! One helper instead of the same `unwrap_or_else` at every lock.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// `lock()` that takes over a poisoned mutex.
pub trait LockRecover<T: ?Sized> {
    /// Locks, recovering the guard if another thread panicked holding it.
    fn lock_recover(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockRecover<T> for Mutex<T> {
    fn lock_recover(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `read()` and `write()` that take over a poisoned read-write lock.
pub trait RwLockRecover<T: ?Sized> {
    /// Locks for reading, recovering from poisoning.
    fn read_recover(&self) -> RwLockReadGuard<'_, T>;
    /// Locks for writing, recovering from poisoning.
    fn write_recover(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockRecover<T> for RwLock<T> {
    fn read_recover(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_recover(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_poisoned_lock_still_hands_out_its_data() {
        let shared = Arc::new((Mutex::new(1), RwLock::new(2)));
        let poisoner = shared.clone();
        let result = std::thread::spawn(move || {
            let _a = poisoner.0.lock().unwrap();
            let _b = poisoner.1.write().unwrap();
            panic!("a device model failed");
        })
        .join();
        assert!(result.is_err());
        assert!(shared.0.is_poisoned() && shared.1.is_poisoned());
        *shared.0.lock_recover() += 1;
        *shared.1.write_recover() += 1;
        assert_eq!(*shared.0.lock_recover(), 2);
        assert_eq!(*shared.1.read_recover(), 3);
    }
}
