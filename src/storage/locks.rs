//! Row locks of pessimistic transactions (TiDB's default mode).
//!
//! A statement of a pessimistic transaction runs, then locks every key it wrote (rows and index
//! entries) before it returns; `SELECT … FOR UPDATE` locks the rows it selects. A lock is held by
//! its transaction (an *owner* id) until that transaction commits or rolls back. A statement
//! that meets another owner's lock waits: until the lock is released (then it checks whether
//! the holder changed what it read — `session` retries it on a fresh snapshot if so), until
//! `innodb_lock_wait_timeout` passes (1205), or at once with `NOWAIT` (3572). Before it waits
//! it follows the waits-for chain from the holder: reaching itself is a deadlock (1213).
//!
//! One mutex guards the table and one `Notify` wakes every waiter on each release: waits are
//! rare and short-lived next to the statements that take locks, so a waiter re-checks instead
//! of being handed the lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::error::SqlError;

#[derive(Default)]
struct State {
    /// Key → owner.
    owners: HashMap<Vec<u8>, u64>,
    /// Owner → the keys it holds.
    held: HashMap<u64, Vec<Vec<u8>>>,
    /// Owner → the owner it waits for.
    waits_for: HashMap<u64, u64>,
}

#[derive(Default)]
pub struct LockTable {
    state: Mutex<State>,
    released: Notify,
    next_owner: AtomicU64,
}

/// How a statement meets a lock held by another transaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OnLocked {
    Wait(Duration),
    NoWait,
}

pub fn lock_wait_timeout() -> SqlError {
    SqlError::new(1205, "HY000", "Lock wait timeout exceeded; try restarting transaction")
}

pub fn deadlock() -> SqlError {
    SqlError::new(1213, "40001", "Deadlock found when trying to get lock; try restarting transaction")
}

pub fn nowait() -> SqlError {
    SqlError::new(3572, "HY000", "Statement aborted because lock(s) could not be acquired immediately and NOWAIT is set.")
}

impl LockTable {
    /// A new owner id (one per transaction).
    pub fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Take `keys` for `owner`, waiting for other owners as `on_locked` says. Keys taken before an
    /// error stay held until [`LockTable::release_all`].
    pub async fn lock(&self, owner: u64, keys: &[Vec<u8>], on_locked: OnLocked) -> Result<(), SqlError> {
        if keys.is_empty() {
            return Ok(());
        }
        let deadline = match on_locked {
            OnLocked::Wait(d) => Some(Instant::now() + d),
            OnLocked::NoWait => None,
        };
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut st = self.state.lock();
                let blocker = self.take_free(&mut st, owner, keys);
                let Some(holder) = blocker else {
                    st.waits_for.remove(&owner);
                    return Ok(());
                };
                if deadline.is_none() {
                    return Err(nowait());
                }
                // Would waiting close a cycle?
                let mut at = holder;
                let mut steps = 0;
                while let Some(&next) = st.waits_for.get(&at) {
                    if next == owner || steps > 10_000 {
                        st.waits_for.remove(&owner);
                        return Err(deadlock());
                    }
                    at = next;
                    steps += 1;
                }
                st.waits_for.insert(owner, holder);
            }
            let left = deadline.expect("waiting").saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, released).await.is_err() {
                self.state.lock().waits_for.remove(&owner);
                return Err(lock_wait_timeout());
            }
        }
    }

    /// Take every free key of `keys`; the owner of the first one held by someone else, if any.
    fn take_free(&self, st: &mut State, owner: u64, keys: &[Vec<u8>]) -> Option<u64> {
        for k in keys {
            match st.owners.get(k) {
                Some(&o) if o == owner => {}
                Some(&o) => return Some(o),
                None => {
                    st.owners.insert(k.clone(), owner);
                    st.held.entry(owner).or_default().push(k.clone());
                }
            }
        }
        None
    }

    /// Take `key` only if it is free (SKIP LOCKED); true when `owner` holds it now.
    pub fn try_lock(&self, owner: u64, key: &[u8]) -> bool {
        let mut st = self.state.lock();
        self.take_free(&mut st, owner, std::slice::from_ref(&key.to_vec())).is_none()
    }

    /// Whether another owner holds `key`.
    pub fn held_by_other(&self, owner: u64, key: &[u8]) -> bool {
        self.state.lock().owners.get(key).is_some_and(|&o| o != owner)
    }

    /// Release everything `owner` holds (its transaction ended) and wake the waiters.
    pub fn release_all(&self, owner: u64) {
        let mut st = self.state.lock();
        st.waits_for.remove(&owner);
        let Some(keys) = st.held.remove(&owner) else { return };
        for k in keys {
            if st.owners.get(&k) == Some(&owner) {
                st.owners.remove(&k);
            }
        }
        drop(st);
        self.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn k(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_waiter_gets_the_lock_when_it_is_released() {
        let t = Arc::new(LockTable::default());
        let (a, b) = (t.new_owner(), t.new_owner());
        t.lock(a, &[k("r1")], OnLocked::Wait(Duration::from_secs(5))).await.unwrap();
        assert_eq!(t.lock(b, &[k("r1")], OnLocked::NoWait).await.unwrap_err().code, 3572);
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.lock(b, &[k("r1")], OnLocked::Wait(Duration::from_secs(5))).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        t.release_all(a);
        waiter.await.unwrap().unwrap();
        assert!(t.held_by_other(a, b"r1"));
    }

    #[tokio::test]
    async fn timeouts_and_deadlocks() {
        let t = Arc::new(LockTable::default());
        let (a, b) = (t.new_owner(), t.new_owner());
        t.lock(a, &[k("x")], OnLocked::Wait(Duration::from_secs(1))).await.unwrap();
        t.lock(b, &[k("y")], OnLocked::Wait(Duration::from_secs(1))).await.unwrap();
        assert_eq!(t.lock(b, &[k("x")], OnLocked::Wait(Duration::from_millis(50))).await.unwrap_err().code, 1205);
        let t2 = t.clone();
        let b_waits = tokio::spawn(async move { t2.lock(b, &[k("x")], OnLocked::Wait(Duration::from_secs(5))).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // a now asks for y, held by b, which waits for a: a deadlock, reported to a.
        assert_eq!(t.lock(a, &[k("y")], OnLocked::Wait(Duration::from_secs(5))).await.unwrap_err().code, 1213);
        t.release_all(a);
        b_waits.await.unwrap().unwrap();
        assert!(t.try_lock(a, b"z") && !t.try_lock(a, b"y"));
    }
}
