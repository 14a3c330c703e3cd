//! Stopping a running statement: `KILL QUERY n`, `KILL n`, COM_PROCESS_KILL, or the client going away.
//!
//! Every connection registers an [`Interrupt`] with the engine ([`Registry`]) under its connection
//! id. `KILL QUERY 7` from another connection looks up id 7 and triggers its interrupt; the session
//! resets the interrupt when its next statement starts, so a KILL that arrives between statements
//! stops nothing (MySQL's behaviour). Long waits poll it: the embedding layer races every provider
//! call against [`Interrupt::wait`] and drops the HTTP request when it fires, the local model checks
//! it between batches. The statement then fails with 1317 and is rolled back like any failed
//! statement, so an interrupted INSERT leaves no rows.
//!
//! `KILL n` (connection) also marks the connection closed: the server drops it after the current
//! command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::SqlError;

/// One connection's stop signal.
#[derive(Default)]
pub struct Interrupt {
    query: AtomicBool,
    connection: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn new() -> Arc<Interrupt> {
        Arc::new(Interrupt::default())
    }

    /// Stop the running statement (and, with `connection`, the connection after it).
    pub fn trigger(&self, connection: bool) {
        if connection {
            self.connection.store(true, Ordering::SeqCst);
        }
        self.query.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Called when a statement starts: an earlier KILL QUERY does not carry over. A killed
    /// connection stays killed.
    pub fn reset(&self) {
        if !self.connection.load(Ordering::SeqCst) {
            self.query.store(false, Ordering::SeqCst);
        }
    }

    pub fn is_set(&self) -> bool {
        self.query.load(Ordering::SeqCst)
    }

    pub fn connection_killed(&self) -> bool {
        self.connection.load(Ordering::SeqCst)
    }

    /// `Err(1317)` once triggered.
    pub fn check(&self) -> Result<(), SqlError> {
        if self.is_set() {
            Err(interrupted())
        } else {
            Ok(())
        }
    }

    /// Resolves when the interrupt fires (at once if it already has).
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking the flag so that a trigger in between is not missed.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// MySQL's error for a statement stopped by KILL QUERY.
pub fn interrupted() -> SqlError {
    SqlError::new(1317, "70100", "Query execution was interrupted")
}

/// Connection id → its interrupt, for KILL.
#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<u32, Arc<Interrupt>>>,
}

impl Registry {
    pub fn register(&self, id: u32, i: Arc<Interrupt>) {
        self.map.lock().insert(id, i);
    }

    /// Forget `id` if it still belongs to `i` (a reset connection re-registers under the same id).
    pub fn unregister(&self, id: u32, i: &Arc<Interrupt>) {
        let mut map = self.map.lock();
        if map.get(&id).is_some_and(|cur| Arc::ptr_eq(cur, i)) {
            map.remove(&id);
        }
    }

    /// KILL [QUERY] `id`: MySQL's 1094 when no such connection exists.
    pub fn kill(&self, id: u64, connection: bool) -> Result<(), SqlError> {
        let target = u32::try_from(id).ok().and_then(|id| self.map.lock().get(&id).cloned());
        match target {
            Some(i) => {
                tracing::info!(connection = id, "KILL {}", if connection { "CONNECTION" } else { "QUERY" });
                i.trigger(connection);
                Ok(())
            }
            None => Err(SqlError::new(1094, "HY000", format!("Unknown thread id: {id}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_sees_a_trigger_from_another_thread() {
        let i = Interrupt::new();
        let i2 = i.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            i2.trigger(false);
        });
        futures::executor::block_on(i.wait());
        t.join().unwrap();
        assert_eq!(i.check().unwrap_err().code, 1317);
        i.reset();
        assert!(i.check().is_ok());
        i.trigger(true);
        i.reset();
        assert!(i.is_set() && i.connection_killed(), "a killed connection stays killed");
    }

    #[test]
    fn registry() {
        let r = Registry::default();
        let i = Interrupt::new();
        r.register(3, i.clone());
        r.kill(3, false).unwrap();
        assert!(i.is_set() && !i.connection_killed());
        assert_eq!(r.kill(4, false).unwrap_err().message, "Unknown thread id: 4");
        r.unregister(3, &Interrupt::new());
        assert!(r.kill(3, false).is_ok(), "only its own interrupt unregisters an id");
        r.unregister(3, &i);
        assert!(r.kill(3, true).is_err());
    }
}

/// Runs a blocking wait (a lock, a model run, an HTTP call, an index search) on a statement's
/// thread: on a multi-threaded runtime the worker hands its other tasks to the rest first; on any
/// other thread it simply runs.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
