//! Locking a `std::sync::Mutex` whose last holder may have panicked.
//!
//! A panic while a lock is held poisons it. Every mutex locked through [`lock`] guards a value
//! that each critical section leaves consistent (one insert, remove, count or whole
//! replacement), so a poisoned one still holds a good value: the lock is taken anyway rather
//! than turning one panic into a panic of every later caller.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
