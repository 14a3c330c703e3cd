//! MySQL's named user locks: `GET_LOCK`, `RELEASE_LOCK`, `RELEASE_ALL_LOCKS`, `IS_FREE_LOCK`,
//! `IS_USED_LOCK`. Migration tools (Rails, Flyway, Laravel's schema dumps) take one so that two
//! deployments do not migrate at once.
//!
//! `SELECT GET_LOCK('migrate', 10)` in connection 7: `sql::rewrite` meets the call with literal
//! arguments and asks the session, which asks [`UserLocks::get`]; the lock is free, so connection
//! 7 holds it (once; asking again counts up, as MySQL 5.7+ does) and the call becomes the literal
//! 1. Connection 8 asking for it waits up to 10 s (woken when it is released, and every 100 ms to
//! see whether it was killed) and gets 0. Locks are server-wide and in memory only; a session's
//! locks go when it ends. Names compare case-insensitively and are at most 64 characters.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Result, SqlError};

#[derive(Default)]
pub struct UserLocks {
    /// Lock name (lower case) → (holder's connection id, times it took the lock).
    held: Mutex<HashMap<String, (u32, u64)>>,
    released: Condvar,
}

/// MySQL's 3057 for an empty or too long name.
fn key(name: &str) -> Result<String> {
    if name.is_empty() || name.chars().count() > 64 {
        return Err(SqlError::new(3057, "42000", format!("Incorrect user-level lock name '{name}'.")));
    }
    Ok(name.to_lowercase())
}

impl UserLocks {
    /// `GET_LOCK(name, timeout)`: whether `conn` holds the lock now (false after `timeout`;
    /// `None` waits without end). `killed` is asked while waiting.
    pub fn get(&self, conn: u32, name: &str, timeout: Option<Duration>, killed: &dyn Fn() -> bool) -> Result<bool> {
        let k = key(name)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut held = self.held.lock();
        loop {
            match held.get_mut(&k) {
                None => {
                    held.insert(k, (conn, 1));
                    return Ok(true);
                }
                Some((holder, n)) if *holder == conn => {
                    *n += 1;
                    return Ok(true);
                }
                Some(_) => {}
            }
            let slice = Instant::now() + Duration::from_millis(100);
            let until = deadline.map_or(slice, |d| d.min(slice));
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.released.wait_until(&mut held, until);
            if killed() {
                return Err(crate::interrupt::interrupted());
            }
        }
    }

    /// `RELEASE_LOCK(name)`: `Some(true)` if `conn` held it (once less now), `Some(false)` if
    /// another connection does, `None` if nobody does.
    pub fn release(&self, conn: u32, name: &str) -> Result<Option<bool>> {
        let k = key(name)?;
        let mut held = self.held.lock();
        let Some((holder, n)) = held.get_mut(&k) else { return Ok(None) };
        if *holder != conn {
            return Ok(Some(false));
        }
        *n -= 1;
        if *n == 0 {
            held.remove(&k);
            self.released.notify_all();
        }
        Ok(Some(true))
    }

    /// `RELEASE_ALL_LOCKS()`: every lock `conn` holds goes; how many times they were taken.
    pub fn release_all(&self, conn: u32) -> u64 {
        let mut held = self.held.lock();
        let mut n = 0;
        held.retain(|_, (holder, times)| {
            if *holder == conn {
                n += *times;
                false
            } else {
                true
            }
        });
        if n > 0 {
            self.released.notify_all();
        }
        n
    }

    /// `IS_USED_LOCK(name)`: the holder's connection id.
    pub fn holder(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.held.lock().get(&key(name)?).map(|(c, _)| *c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_are_held_counted_and_released() {
        let l = UserLocks::default();
        let never = || false;
        assert!(l.get(1, "Migrate", Some(Duration::ZERO), &never).unwrap());
        assert!(l.get(1, "migrate", Some(Duration::ZERO), &never).unwrap());
        assert!(!l.get(2, "MIGRATE", Some(Duration::from_millis(50)), &never).unwrap());
        assert_eq!(l.holder("migrate").unwrap(), Some(1));
        assert_eq!(l.release(2, "migrate").unwrap(), Some(false));
        assert_eq!(l.release(1, "migrate").unwrap(), Some(true));
        assert_eq!(l.holder("migrate").unwrap(), Some(1));
        assert_eq!(l.release(1, "migrate").unwrap(), Some(true));
        assert_eq!(l.release(1, "migrate").unwrap(), None);
        assert!(l.get(1, "a", None, &never).unwrap());
        assert!(l.get(1, "b", None, &never).unwrap());
        assert_eq!(l.release_all(1), 2);
        assert!(l.get(1, "", None, &never).is_err());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_it_is_released() {
        let l = std::sync::Arc::new(UserLocks::default());
        assert!(l.get(1, "x", None, &|| false).unwrap());
        let l2 = l.clone();
        let t = std::thread::spawn(move || l2.get(2, "x", Some(Duration::from_secs(5)), &|| false).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        l.release(1, "x").unwrap();
        assert!(t.join().unwrap());
        assert_eq!(l.holder("x").unwrap(), Some(2));
    }
}
